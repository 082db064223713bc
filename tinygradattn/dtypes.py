"""Tensor dtypes (float32, float64, int64, bool; float16, bfloat16 and the small integer types
named but not computable) and PyTorch's type-promotion rules.

Sits below `tensor.py`: it knows dtype names and numpy's dtype objects, nothing about devices.
"""
import numpy as np


class DType:
    """A tensor dtype. Compares equal to itself, to its name and to the matching numpy dtype."""

    __slots__ = ("name", "np", "is_floating_point", "_rank", "itemsize")

    def __init__(self, name, np_dtype, is_floating_point, rank, itemsize=None):
        self.name = name
        self.np = None if np_dtype is None else np.dtype(np_dtype)
        self.is_floating_point = is_floating_point
        self._rank = rank                     # bool < int64 < float32 < float64
        self.itemsize = self.np.itemsize if itemsize is None else itemsize

    def __repr__(self):
        return f"tinygradattn.{self.name}"

    def __eq__(self, other):
        if isinstance(other, DType):
            return self is other
        if isinstance(other, str):
            return other == self.name
        if self.np is None:
            return False
        try:
            return np.dtype(other) == self.np
        except TypeError:
            return False

    def __hash__(self):
        return hash(self.name)


float32 = DType("float32", np.float32, True, 2)
float64 = DType("float64", np.float64, True, 3)
int64 = DType("int64", np.int64, False, 1)
bool_ = DType("bool", np.bool_, False, 0)

# Named so that code mentioning them imports and compares (torch.float16 in a dtype table,
# `dtype == torch.bfloat16`); a tensor of one cannot be made: as_dtype says so.
float16 = DType("float16", np.float16, True, -1)
bfloat16 = DType("bfloat16", None, True, -1, itemsize=2)
int32 = DType("int32", np.int32, False, -1)
int16 = DType("int16", np.int16, False, -1)
int8 = DType("int8", np.int8, False, -1)
uint8 = DType("uint8", np.uint8, False, -1)
UNSUPPORTED = (float16, bfloat16, int32, int16, int8, uint8)

_BY_NP = {d.np: d for d in (float32, float64, int64, bool_)}
# Integer numpy dtypes other than int64 are widened on copy (torch.tensor would keep them).
_WIDENED = {np.dtype(t): int64 for t in (np.int8, np.int16, np.int32, np.uint8, np.uint16,
                                         np.uint32)}


# Arrays carry numpy's builtin dtype objects, one per type, held alive by _BY_NP: looked up
# by identity, Tensor.dtype skips np.dtype() and a dtype hash (0.2 us instead of 1 us).
_BY_ID = {id(np_dtype): dtype for np_dtype, dtype in _BY_NP.items()}


def from_numpy_dtype(np_dtype, widen=False):
    """Our DType for a numpy dtype; TypeError for those we do not support."""
    dtype = _BY_ID.get(id(np_dtype))
    if dtype is not None:
        return dtype
    np_dtype = np.dtype(np_dtype)
    dtype = _BY_NP.get(np_dtype)
    if dtype is None and widen:
        dtype = _WIDENED.get(np_dtype)
    if dtype is None:
        raise TypeError(f"unsupported dtype {np_dtype}: tinygradattn supports float32, float64, "
                        "int64 and bool")
    return dtype


def as_dtype(dtype):
    """Accept a DType, a name ('float32') or a numpy dtype; return the DType."""
    if isinstance(dtype, DType):
        if dtype._rank < 0:
            raise TypeError(f"tinygradattn has no {dtype.name} tensors: it computes in float32, "
                            "float64, int64 and bool (use float32 where a script offers a "
                            "choice, e.g. nanoGPT's --dtype=float32)")
        return dtype
    if isinstance(dtype, str) and dtype in ("float", "double", "long"):
        return {"float": float32, "double": float64, "long": int64}[dtype]
    return from_numpy_dtype(dtype)


def scalar_dtype(value):
    """The dtype PyTorch gives a Python scalar: bool -> bool, int -> int64, float -> float32."""
    if isinstance(value, (bool, np.bool_)):
        return bool_
    if isinstance(value, (int, np.integer)):
        return int64
    if isinstance(value, (float, np.floating)):
        return float32
    raise TypeError(f"expected a Python number, got {type(value).__name__}")


def _category(dtype):
    return 2 if dtype.is_floating_point else (1 if dtype is int64 else 0)


def promote(a, a_priority, b, b_priority):
    """Result dtype of a binary op, as torch.result_type.

    Priorities: 2 for a tensor with dimensions, 1 for a 0-d tensor, 0 for a Python scalar.
    A higher category (bool < integer < floating) wins. Within one category, the operand of
    higher priority decides; two of the same priority take the wider type.
    """
    ca, cb = _category(a), _category(b)
    if ca != cb:
        return a if ca > cb else b
    if a_priority != b_priority:
        return a if a_priority > b_priority else b
    return a if a._rank >= b._rank else b


class finfo:
    """torch.finfo(dtype): the limits of a floating dtype (bits, eps, max, min, tiny,
    resolution), float32 by default."""

    def __init__(self, dtype=None):
        dtype = float32 if dtype is None else dtype
        if not isinstance(dtype, DType):
            dtype = as_dtype(dtype)
        if not dtype.is_floating_point:
            raise TypeError(f"torch.finfo() requires a floating point input type, got "
                            f"{dtype.name}")
        info = np.finfo(np.float16 if dtype is bfloat16 else dtype.np)
        self.dtype, self.bits = dtype.name, info.bits
        if dtype is bfloat16:                      # 8 exponent bits, 7 mantissa bits
            self.eps, self.max, self.tiny, self.resolution = 2.0 ** -7, 3.3895313892515355e38, \
                2.0 ** -126, 0.01
        else:
            self.eps, self.max = float(info.eps), float(info.max)
            self.tiny, self.resolution = float(info.tiny), 10.0 ** -info.precision
        self.min = -self.max
        self.smallest_normal = self.tiny

    def __repr__(self):
        return (f"finfo(resolution={self.resolution}, min={self.min:.6g}, max={self.max:.6g}, "
                f"eps={self.eps:.6g}, tiny={self.tiny:.6g}, dtype={self.dtype})")


class iinfo:
    """torch.iinfo(dtype): bits, min and max of an integer dtype."""

    def __init__(self, dtype):
        if not isinstance(dtype, DType):
            dtype = as_dtype(dtype)
        if dtype.is_floating_point or dtype is bool_:
            raise TypeError(f"torch.iinfo() requires an integer input type, got {dtype.name}")
        info = np.iinfo(dtype.np)
        self.dtype, self.bits, self.min, self.max = dtype.name, info.bits, int(info.min), \
            int(info.max)

    def __repr__(self):
        return f"iinfo(min={self.min}, max={self.max}, dtype={self.dtype})"
