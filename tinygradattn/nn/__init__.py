"""Neural-network building blocks: Module, Parameter, layers, and nn.functional."""
from . import functional, init, utils
from .activation import GELU, Dropout, LogSoftmax, ReLU, Sigmoid, SiLU, Softmax, Tanh
from .attention import KVCache, MultiheadAttention, generate_square_subsequent_mask
from .positional import LearnedPositionalEmbedding, SinusoidalPositionalEncoding
from .transformer import (DecoderLayerCache, TransformerDecoder, TransformerDecoderLayer,
                          TransformerEncoder, TransformerEncoderLayer)
from .container import ModuleDict, ModuleList, Sequential
from .embedding import Embedding
from .linear import Flatten, Identity, Linear
from .loss import (BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, KLDivLoss, L1Loss, MSELoss,
                   NLLLoss)
from .module import Module, Parameter
from .norm import LayerNorm, RMSNorm
from .rnn import RNN, RNNCell

__all__ = ["Softmax", "LogSoftmax",
           "GELU", "Dropout", "Embedding", "Identity", "LayerNorm", "Linear", "Module",
           "ModuleDict", "ModuleList", "Parameter", "ReLU", "Sequential", "Tanh", "functional",
           "init", "KVCache", "MultiheadAttention", "generate_square_subsequent_mask",
           "LearnedPositionalEmbedding", "SinusoidalPositionalEncoding", "DecoderLayerCache",
           "TransformerDecoder", "TransformerDecoderLayer", "TransformerEncoder",
           "TransformerEncoderLayer", "utils", "Flatten", "RMSNorm", "Sigmoid", "SiLU",
           "BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss", "KLDivLoss", "L1Loss", "MSELoss",
           "NLLLoss", "RNN", "RNNCell"]
