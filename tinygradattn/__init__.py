"""tinygradattn: a small reverse-mode autograd library with its own CPU kernels.

Public surface only: everything is defined in the modules below.
"""
from . import _openmp_env  # noqa: F401  (first: sets the OpenMP wait policy before libgomp loads)
from . import autograd, backends, cuda, distributed, nn, optim, profiler, utils
from .autograd import enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled
from .creation import (Generator, arange, empty, empty_like, eye, from_dlpack, from_numpy, full,
                       full_like, manual_seed, ones, ones_like, rand, rand_like, randint, randn,
                       randn_like, randperm, tensor, zeros, zeros_like)
from .device import device
from .dtypes import bool_ as bool
from .dtypes import bfloat16, finfo, float16, float32, float64, iinfo, int8, int16, int32, int64, uint8
from .functional import (abs, clamp, exp, log, logsumexp, maximum, mean, minimum, relu, sigmoid,
                         softmax, log_softmax, sqrt, sum, tanh, erf, argmax, split, chunk,
                         flatten, reshape, permute, transpose, unsqueeze, squeeze)
from .functional import (sin, cos, rsqrt, floor, ceil, round, sign, isnan, isinf, isfinite,
                         pow, max, min, all, any, cumsum, prod, norm)
from .functional import argsort, multinomial, sort, topk
from .functional import (gather, scatter, scatter_add, index_select, index_fill, masked_fill,
                         nonzero, roll, flip, t, tril, triu)
from .functional import add, sub, mul, multiply
from . import linalg
from .runtime import backend_info, empty_cache, get_num_threads, set_num_threads
from .serialization import load, save
from .defaults import (are_deterministic_algorithms_enabled, get_default_dtype,
                       get_float32_matmul_precision, is_floating_point, is_tensor, numel,
                       set_default_dtype, set_float32_matmul_precision,
                       use_deterministic_algorithms)
from .tensor import Tensor, cat, stack, where
from .tensor import bmm, mm
from .tensor import matmul_ as matmul
from .legacy import BoolTensor, DoubleTensor, FloatTensor, LongTensor
from . import multiprocessing

float = float32
double = float64
long = int64
half = float16
int = int32
short = int16

from . import amp, models   # last: they build on everything above
from .amp import autocast
from .cuda import amp as _cuda_amp  # noqa: F401  (torch.cuda.amp.GradScaler after import torch)
from .compiler import compile
from . import viz      # tga.viz.draw_graph (graphviz is imported when a graph is drawn)

__version__ = "0.1.0"
