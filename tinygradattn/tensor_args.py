"""Argument checks and small helpers shared by tensor.py, tensor_functions.py and the Tensor
mixins in tensor_methods/: dims, reduce axes, broadcasting, shapes and indices, numbers and
host data turned into Tensors, and the (values, indices) result tuples.

Sits below tensor.py and never imports it: a Tensor is recognised by autograd's is_tensor,
and made through a tensor's (or the given) `_wrap`.
"""
import numbers
import operator

from . import host
from .autograd.function import is_tensor


def _check_dim(dim, ndim, what="dim"):
    """A dim in [-ndim, ndim) (0-d tensors accept -1 and 0), as a non-negative int."""
    if type(dim) is not int and (not isinstance(dim, numbers.Integral)
                                 or isinstance(dim, bool)):      # (int first: ABC checks cost)
        raise TypeError(f"{what} must be an int, got {type(dim).__name__}")
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], "
                         f"but got {dim})")
    return dim + n if dim < 0 else dim


def _reduce_axes(dim, ndim):
    """None (all) or a sorted tuple of non-negative dims, duplicates rejected."""
    if dim is None:
        return None
    dims = dim if isinstance(dim, (tuple, list)) else (dim,)
    axes = tuple(sorted(_check_dim(d, ndim) for d in dims))
    if len(set(axes)) != len(axes):
        raise RuntimeError(f"dim {dim} appears multiple times in the list of dims")
    if ndim == 0:
        return None
    return axes


def _broadcast_shape(name, sa, sb):
    """numpy/torch broadcasting of two shapes, or RuntimeError naming both."""
    if sa == sb:
        return sa
    n = max(len(sa), len(sb))
    pa, pb = (1,) * (n - len(sa)) + sa, (1,) * (n - len(sb)) + sb
    out = []
    for i, (x, y) in enumerate(zip(pa, pb)):
        if x != y and x != 1 and y != 1:
            raise RuntimeError(f"{name}: shapes {sa} and {sb} cannot be broadcast together "
                               f"(size {x} != {y} at dimension {i})")
        out.append(y if x == 1 else x)
    return tuple(out)


def _priority(t):
    return 2 if t._data.ndim else 1


# torch's dtype names in its messages; the kinds in the order casts may go (no float -> int)
_TORCH_NAMES = {"float32": "Float", "float64": "Double", "int64": "Long", "bool": "Bool"}
_KIND_RANK = {"b": 0, "u": 1, "i": 1, "f": 2}


class MinMaxResult(tuple):
    """(values, indices), like torch.return_types.max."""

    def __new__(cls, values, indices):
        return super().__new__(cls, (values, indices))

    values = property(lambda self: self[0])
    indices = property(lambda self: self[1])


class SortResult(MinMaxResult):
    """(values, indices), like torch.return_types.sort."""

    def __repr__(self):
        return f"SortResult(values={self.values!r}, indices={self.indices!r})"


class TopkResult(MinMaxResult):
    """(values, indices), like torch.return_types.topk."""

    def __repr__(self):
        return f"TopkResult(values={self.values!r}, indices={self.indices!r})"


def _shape_arg(shape):
    """Accept f(2, 3) and f((2, 3)); every size an int."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    out = []
    for n in shape:
        if type(n) is int:          # the common case first: the checks below cost 10x more
            out.append(n)
            continue
        if is_tensor(n):
            n = int(n)
        if not isinstance(n, numbers.Integral) or isinstance(n, bool):
            raise TypeError(f"sizes must be ints, got {type(n).__name__} in {tuple(shape)}")
        out.append(int(n))
    return tuple(out)


def _raw_index(index, like):
    """Replace Tensors in an index by backend arrays; lists of ints become arrays. A slice
    must step forward (torch: ValueError for a zero or negative step; numpy would reverse)."""
    items = index if isinstance(index, tuple) else (index,)
    raw = []
    for i in items:
        if type(i) is slice:
            if i.step is not None:
                _check_step(i.step)
        elif is_tensor(i):
            if i._data.dtype.kind not in "iub":
                raise IndexError(f"tensors used as indices must be long, int or bool tensors, "
                                 f"got {i.dtype.name}")
            i = i._data
        elif isinstance(i, list):
            i = _to_tensor(i, like)._data
        elif isinstance(i, bool) or not (i is None or i is Ellipsis or
                                         isinstance(i, (numbers.Integral, slice))):
            if not hasattr(i, "shape"):
                raise IndexError(f"unsupported index of type {type(i).__name__}")
        raw.append(i)
    return tuple(raw)


def _check_step(step):
    """ValueError for a slice step (an int, or what has __index__: a 0-d int Tensor) that is
    zero or negative; any other step is left to the backend."""
    if hasattr(type(step), "__index__") and operator.index(step) <= 0:
        raise ValueError(f"step must be greater than zero, got slice step {step}")


def _dim_index(index, like, name):
    """gather / scatter / index_select's index Tensor as an int64 backend array on like's
    device (int32 and other integer dtypes widened; torch takes int32 and int64)."""
    if not is_tensor(index):
        raise TypeError(f"{name}(): argument 'index' must be Tensor, not {type(index).__name__}")
    if index._data.dtype.kind not in "iu":
        raise RuntimeError(f"{name}(): Expected dtype int32/int64 for index, got "
                           f"{index.dtype.name}")
    if index._backend is not like._backend:
        raise RuntimeError(f"{name}(): Expected all tensors to be on the same device, got "
                           f"{like.device} and {index.device}")
    return like._backend.astype(index._data, "int64")


def _at_least_1d(t, backend=None):
    """A 0-d Tensor (or backend array, given its backend) viewed as shape (1,); others as
    they are."""
    if backend is None:
        return t.reshape(1) if t.ndim == 0 else t
    return backend.reshape(t, (1,)) if t.ndim == 0 else t

def _check_index_shape(x, dim, index, src, name):
    """torch's gather / scatter shape rule: index has x's rank (and src's), is no larger than
    x apart from dim, and no larger than src anywhere."""
    ranks = {x.ndim, index.ndim} | ({src.ndim} if src is not None else set())
    if len(ranks) > 1:
        raise RuntimeError(f"{name}(): Index tensor must have the same number of dimensions as "
                           f"self tensor (index {tuple(index.shape)}, self {tuple(x.shape)}"
                           + (f", src {tuple(src.shape)})" if src is not None else ")"))
    over = any(m > n for d, (m, n) in enumerate(zip(index.shape, x.shape)) if d != dim)
    over_src = src is not None and any(
        m > n for m, n in zip(index.shape, src.shape))
    if over or over_src:
        raise RuntimeError(f"{name}(): Expected index {list(index.shape)} to be no larger than "
                           f"self {list(x.shape)} apart from dimension {dim}"
                           + (f" and to be no larger size than src {list(src.shape)}"
                              if src is not None else ""))

def _to_tensor(value, like):
    """A Tensor on like's device from a Tensor, number, list or host array (None: TypeError)."""
    if is_tensor(value):
        return value
    if value is None:
        raise TypeError("expected a Tensor or a number as the other operand, got NoneType")
    if isinstance(value, numbers.Number) and like.is_floating_point() and \
            not isinstance(value, bool):
        return _from_data(value, like.dtype, like._backend, like._wrap)
    return _from_data(value, None, like._backend, like._wrap)


def _from_data(data, dtype, backend, wrap):
    """A new Tensor holding a copy of data (tensor() without requires_grad). A number is
    filled in on the device (no host -> device copy for a constant). wrap is Tensor._wrap
    (this module sits below tensor.py and never imports it)."""
    array = _host_array(data, dtype)
    if array.ndim == 0 and isinstance(data, numbers.Number):
        return wrap(backend.full((), data, array.dtype), backend)
    return wrap(backend.from_host(array), backend)


def _host_array(data, dtype):
    """A fresh host array of data for tensor(): Tensors (also inside nested lists) are read
    back from their device first; see host.host_array for the dtype rules."""
    if is_tensor(data):
        data = data._backend.to_host(data._data)
    elif isinstance(data, (list, tuple)) and _has_tensor(data):
        data = _tensors_to_lists(data)
    return host.host_array(data, dtype)


def _has_tensor(seq):
    return any(is_tensor(x) or (isinstance(x, (list, tuple)) and _has_tensor(x))
               for x in seq)


def _tensors_to_lists(seq):
    return [x.tolist() if is_tensor(x) else
            (_tensors_to_lists(x) if isinstance(x, (list, tuple)) else x) for x in seq]


# ---- issue 16: argument checks shared by the factories, fills and Tensor-only arguments ----
_MAX_BYTES = (1 << 63) - 1


def _size_arg(size, itemsize=8):
    """A new tensor's sizes as a tuple of ints, given as f(2, 3) or f((2, 3)): ints, numpy
    ints or one-element int Tensors (`zeros(lengths.max())`, as torch) and nothing else
    (TypeError), none negative and the byte count representable (RuntimeError, as torch)."""
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    size = tuple([n if type(n) is int else _size_int(n, size) for n in size])
    for n in size:
        if n < 0:
            raise RuntimeError(f"Trying to create tensor with negative dimension {n}: "
                               f"{list(size)}")
    _check_numel(size, itemsize)
    return size


def _as_index(value):
    """value as an int through __index__ (a numpy integer, a one-element integer Tensor), or
    None for what has none (bools are refused, as torch does)."""
    if not isinstance(value, bool) and hasattr(type(value), "__index__"):
        try:
            return operator.index(value)
        except TypeError:                   # a float Tensor's __index__ refuses
            pass
    return None


def _size_int(n, size):
    """One size that is not an int, as an int through __index__ (TypeError otherwise)."""
    i = _as_index(n)
    if i is None:
        raise TypeError(f"sizes must be ints, got {type(n).__name__} in {tuple(size)}")
    return i


def _check_numel(shape, itemsize=8):
    """RuntimeError when shape's byte count overflows a signed 64-bit int (numpy would raise
    ValueError 'array is too big')."""
    n_bytes = itemsize
    for n in shape:
        n_bytes *= n
    if n_bytes > _MAX_BYTES:
        raise RuntimeError(f"Storage size calculation overflowed with sizes={list(shape)}")


def _check_tensor_arg(name, arg, value):
    """TypeError naming the argument unless value is a Tensor (torch refuses lists, numbers,
    None, strings where a Tensor is needed)."""
    if not is_tensor(value):
        raise TypeError(f"{name}(): argument '{arg}' must be Tensor, not {type(value).__name__}")
    return value


def _check_fill_value(name, arg, value):
    """A fill value: a real number (numpy scalars too) or a Tensor (TypeError naming the
    argument otherwise, as torch; numpy would raise ValueError for a string)."""
    if type(value) is float or type(value) is int or is_tensor(value):
        return value
    if not (isinstance(value, numbers.Real) or hasattr(type(value), "__float__")):
        raise TypeError(f"{name}(): argument '{arg}' must be Number, not {type(value).__name__}")
    return value


def _bool_sub_error(a, b):
    """Raise torch's RuntimeError for `a - b` where an operand is bool (a bool tensor or a
    Python bool): a is a Tensor, b the other operand as given, before promotion."""
    a_bool = a._data.dtype.kind == "b"
    b_bool = isinstance(b, bool) or (is_tensor(b) and b._data.dtype.kind == "b")
    if a_bool and b_bool:
        raise RuntimeError("Subtraction, the `-` operator, with two bool tensors is not "
                           "supported. Use the `^` or `logical_xor()` operator instead.")
    raise RuntimeError("Subtraction, the `-` operator, with a bool tensor is not supported. "
                       "If you are trying to invert a mask, use the `~` or `logical_not()` "
                       "operator instead.")


def _check_int_arg(name, arg, value):
    """An int argument: an int, a numpy integer or a one-element integer Tensor (what has
    __index__, as torch takes them); bools, floats and the rest refused with TypeError
    naming it."""
    if type(value) is int:
        return value
    i = _as_index(value)
    if i is None:
        raise TypeError(f"{name}(): argument '{arg}' must be int, not {type(value).__name__}")
    return i
