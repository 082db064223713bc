"""tinygradattn: a small reverse-mode autograd library with its own CPU kernels.

Public surface only: everything is defined in the modules below.
"""
from . import _openmp_env  # noqa: F401  (first: sets the OpenMP wait policy before libgomp loads)
from . import autograd, cuda, nn, optim
from .autograd import enable_grad, is_grad_enabled, no_grad
from .creation import (arange, empty, empty_like, from_numpy, full, full_like, manual_seed, ones,
                       ones_like, rand, rand_like, randint, randn, randn_like, tensor, zeros,
                       zeros_like)
from .creation import Generator, randperm
from .dtypes import bool_ as bool
from .dtypes import float32, float64, int64
from .functional import (abs, clamp, exp, log, logsumexp, maximum, mean, minimum, relu, sigmoid,
                         softmax, log_softmax, sqrt, sum, tanh, erf, argmax, split, chunk,
                         flatten, reshape, permute, transpose, unsqueeze, squeeze)
from .functional import argsort, multinomial, sort, topk
from .runtime import backend_info, empty_cache, get_num_threads, set_num_threads
from .serialization import load, save
from .tensor import Tensor, cat, stack, where
from .tensor import matmul_ as matmul

float = float32
double = float64
long = int64

from . import models   # last: models build on everything above

__version__ = "0.1.0"
