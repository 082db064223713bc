"""Process-wide settings torch scripts set at the top: the default dtype, float32 matmul
precision, deterministic algorithms; and the small predicates (is_tensor, numel).

What is stored and what it changes:
- `set_default_dtype`: float32 only (the default); float64 or others raise
  NotImplementedError rather than silently giving float32 tensors;
- `set_float32_matmul_precision('highest' | 'high' | 'medium')`: stored, no effect: our
  GEMMs always compute in float32 (no TF32 / bfloat16 passes);
- `use_deterministic_algorithms(mode)`: stored; our kernels give the same result for the
  same input and thread count in either mode.
"""
from . import dtypes
from .tensor import Tensor
from .tensor_args import _check_tensor_arg

_MATMUL_PRECISIONS = ("highest", "high", "medium")
_state = {"matmul_precision": "highest", "deterministic": False}


def get_default_dtype():
    return dtypes.float32


def set_default_dtype(d):
    if not dtypes.as_dtype(d).is_floating_point:
        raise TypeError(f"set_default_dtype({d}): only floating-point types are supported as "
                        "the default type")
    if dtypes.as_dtype(d) is not dtypes.float32:
        raise NotImplementedError(f"set_default_dtype({d}): tinygradattn's default dtype is "
                                  "float32 and cannot be changed yet; pass dtype= to the "
                                  "factories instead")


def set_float32_matmul_precision(precision):
    if precision not in _MATMUL_PRECISIONS:
        raise RuntimeError(f"Invalid float32 matmul precision {precision!r}: expected one of "
                           f"{', '.join(_MATMUL_PRECISIONS)}")
    _state["matmul_precision"] = precision


def get_float32_matmul_precision():
    return _state["matmul_precision"]


def use_deterministic_algorithms(mode, *, warn_only=False):
    if not isinstance(mode, bool):
        raise TypeError(f"use_deterministic_algorithms(): mode must be bool, got "
                        f"{type(mode).__name__}")
    _state["deterministic"] = mode


def are_deterministic_algorithms_enabled():
    return _state["deterministic"]


def is_tensor(obj):
    return isinstance(obj, Tensor)


def is_floating_point(input):
    _check_tensor_arg("is_floating_point", "input", input)
    return input.is_floating_point()


def numel(input):
    _check_tensor_arg("numel", "input", input)
    return input.numel()


__all__ = ["get_default_dtype", "set_default_dtype", "set_float32_matmul_precision",
           "get_float32_matmul_precision", "use_deterministic_algorithms",
           "are_deterministic_algorithms_enabled", "is_tensor", "is_floating_point", "numel"]
