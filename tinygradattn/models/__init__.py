"""Models built from tinygradattn.nn: GPT (decoder-only) and the Seq2Seq Transformer."""
from .gpt import GPT, GPTConfig
from .seq2seq import Seq2SeqConfig, Seq2SeqTransformer
