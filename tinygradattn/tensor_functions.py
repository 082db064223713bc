"""The module-level ops on tensors: torch's cat, stack, where, matmul, mm, bmm and the out=
argument (write_out). tensor.py re-exports them (as tinygradattn/__init__.py does).

Sits below tensor.py and never imports it: a Tensor is recognised by autograd's is_tensor.
"""
import warnings

from . import dtypes
from .autograd.function import is_tensor
from .ops import elementwise as ew
from .ops import matmul, movement
from .tensor_args import _broadcast_shape, _check_dim, _check_tensor_arg, _priority, _to_tensor


# ---- module-level ops (re-exported by tinygradattn/__init__.py) ------------------------------------
def write_out(result, out, name):
    """torch's `out=` argument: result written into out (cast to out's dtype) and out returned.
    As torch: not under autograd (RuntimeError when the result requires grad), and an out of
    another shape is resized (with torch's warning unless it was empty)."""
    if out is None:
        return result
    if not is_tensor(out):
        raise TypeError(f"{name}(): argument 'out' must be Tensor, not {type(out).__name__}")
    if result.requires_grad:
        raise RuntimeError(f"{name}(): functions with out=... arguments don't support automatic "
                           "differentiation, but one of the arguments requires grad.")
    if tuple(out.shape) != tuple(result.shape):
        if out.numel() != 0:
            warnings.warn(f"An output with one or more elements was resized since it had shape "
                          f"{list(out.shape)}, which does not match the required output shape "
                          f"{list(result.shape)}.", UserWarning, stacklevel=3)
        out.data = result.to(out.dtype).detach().clone()
        return out
    out.copy_(result)
    return out


def matmul_(a, b, *, out=None):
    """a @ b with torch.matmul's rules for 1-D operands and broadcast batch dims; out= as
    torch's (see write_out)."""
    if out is not None:
        return write_out(matmul_(a, b), out, "matmul")
    if is_tensor(a) and is_tensor(b):
        x, y = a._data, b._data
        xs, ys = x.shape, y.shape
        if (len(xs) == len(ys) >= 2 and x.dtype == y.dtype and x.dtype.kind == "f"
                and xs[-1] == ys[-2] and xs[:-2] == ys[:-2]):
            return matmul.MatMul.apply(a, b)    # matrices, or the same batch dims: checked
    if not is_tensor(a) or not is_tensor(b):
        raise TypeError(f"matmul: expected Tensors, got {type(a).__name__} and "
                        f"{type(b).__name__}")
    if a.ndim == 0 or b.ndim == 0:
        raise RuntimeError(f"matmul: both arguments need at least 1 dimension, got shapes "
                           f"{tuple(a.shape)} and {tuple(b.shape)}")
    if a._data.dtype != b._data.dtype:
        raise RuntimeError(f"matmul: expected both operands to have the same dtype, got "
                           f"{a.dtype.name} and {b.dtype.name}")
    if not a.is_floating_point():
        raise RuntimeError(f"matmul: only float32 and float64 are supported, got {a.dtype.name}")
    a2 = a.unsqueeze(0) if a.ndim == 1 else a
    b2 = b.unsqueeze(-1) if b.ndim == 1 else b
    if a2.shape[-1] != b2.shape[-2]:
        raise RuntimeError(f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} are not "
                           f"aligned ({a2.shape[-1]} != {b2.shape[-2]})")
    _broadcast_shape("matmul (batch dims)", a2.shape[:-2], b2.shape[:-2])
    out = matmul.MatMul.apply(a2, b2)
    if b.ndim == 1:
        out = out.squeeze(-1)
    if a.ndim == 1:
        out = out.squeeze(-2 if b.ndim > 1 else -1)
    return out


def mm(input, mat2):
    """The matrix product of two 2-D tensors (torch.mm): no broadcasting, one dtype."""
    _check_matrices("mm", input, mat2, 2, ("self", "mat2"), "a matrix")
    if input.shape[1] != mat2.shape[0]:
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({input.shape[0]}x"
                           f"{input.shape[1]} and {mat2.shape[0]}x{mat2.shape[1]})")
    return matmul_(input, mat2)


def bmm(input, mat2):
    """Batched matrix products of two 3-D tensors (torch.bmm): (B, M, K) @ (B, K, N) ->
    (B, M, N), the same B on both sides (no broadcasting), one dtype."""
    _check_matrices("bmm", input, mat2, 3, ("batch1", "batch2"), "a 3D tensor")
    want = [input.shape[0], input.shape[2]]
    if list(mat2.shape[:2]) != want:
        raise RuntimeError(f"Expected size for first two dimensions of batch2 tensor to be: "
                           f"{want} but got: {list(mat2.shape[:2])}.")
    return matmul_(input, mat2)


def _check_matrices(name, a, b, ndim, labels, what):
    for t, label in zip((a, b), labels):
        if not is_tensor(t):
            raise TypeError(f"{name}(): argument '{label}' must be Tensor, not "
                            f"{type(t).__name__}")
        if t.ndim != ndim:
            raise RuntimeError(f"{label} must be {what}, got shape {tuple(t.shape)}")
    if a.dtype != b.dtype:
        raise RuntimeError(f"expected m1 and m2 to have the same dtype, but got: "
                           f"{a.dtype.name} != {b.dtype.name}")

def where(condition, input=None, other=None):
    """Elementwise choice: input where condition is True, else other (torch.where); input and
    other may both be numbers (Python floats give float32, ints int64). where(condition)
    alone is condition.nonzero(as_tuple=True), as torch."""
    if input is None and other is None and is_tensor(condition):
        return condition.nonzero(as_tuple=True)
    like = input if is_tensor(input) else other
    if not is_tensor(like):
        like = condition
    if not is_tensor(like) or input is None or other is None:
        raise TypeError("where: expected where(condition) or where(condition, input, other) "
                        "with a Tensor among them")
    cond = _check_tensor_arg("where", "condition", condition)
    if cond.dtype != dtypes.bool_:
        raise RuntimeError(f"where expected condition to be a boolean tensor, but got a tensor "
                        f"with dtype {cond.dtype.name}")
    a, b = _to_tensor(input, like), _to_tensor(other, like)
    if a._data.dtype != b._data.dtype:
        dt = dtypes.promote(a.dtype, _priority(a), b.dtype, _priority(b))
        a, b = a._cast(dt), b._cast(dt)
    _broadcast_shape("where", _broadcast_shape("where", cond.shape, a.shape), b.shape)
    return ew.Where.apply(cond, a, b)


def _tensor_list(tensors, name):
    """cat / stack's sequence of Tensors as a list: a Tensor or a non-Tensor element is a
    TypeError naming it (torch's)."""
    if is_tensor(tensors) or not hasattr(tensors, "__iter__"):
        raise TypeError(f"{name}(): argument 'tensors' must be tuple of Tensors, not "
                        f"{type(tensors).__name__}")
    tensors = list(tensors)
    for i, t in enumerate(tensors):
        if not is_tensor(t):
            raise TypeError(f"{name}(): expected Tensor as element {i} in argument 'tensors', "
                            f"but got {type(t).__name__}")
    return tensors


def cat(tensors, dim=0):
    """Concatenate along an existing dim (torch.cat). As torch, 1-D empty tensors (shape
    (0,)) are skipped beside tensors of another rank (beside 1-D ones they join, and the
    result requires grad if one of them does), and 0-d tensors are refused."""
    tensors = _tensor_list(tensors, "cat")
    if not tensors:
        raise ValueError("cat(): expected a non-empty list of Tensors")
    dt = tensors[0].dtype
    for i, t in enumerate(tensors):
        if t.ndim == 0:
            raise RuntimeError(f"zero-dimensional tensor (at position {i}) cannot be "
                               "concatenated")
        dt = dtypes.promote(dt, 2, t.dtype, 2) if i else dt
    if any(t.ndim != 1 for t in tensors):                               # torch's legacy skip
        tensors = [t for t in tensors if t.shape != (0,)] or tensors[:1]
    ref = tensors[0]
    d = _check_dim(dim, ref.ndim)
    for i, t in enumerate(tensors):
        if t.ndim != ref.ndim or any(t.shape[j] != ref.shape[j]
                                     for j in range(ref.ndim) if j != d):
            raise RuntimeError(f"cat: sizes of tensors must match except in dimension {d}: "
                               f"tensor 0 has shape {tuple(ref.shape)}, tensor {i} has "
                               f"shape {tuple(t.shape)}")
    return movement.Cat.apply(d, *[t._cast(dt) for t in tensors])


def stack(tensors, dim=0):
    """Join along a new dim (torch.stack)."""
    tensors = _tensor_list(tensors, "stack")
    if not tensors:
        raise RuntimeError("stack expects a non-empty TensorList")
    for i, t in enumerate(tensors):
        if t.shape != tensors[0].shape:
            raise RuntimeError(f"stack expects each tensor to be equal size, but got "
                               f"{list(tensors[0].shape)} at entry 0 and {list(t.shape)} at "
                               f"entry {i}")
    d = _check_dim(dim, tensors[0].ndim + 1)
    return cat([t.unsqueeze(d) for t in tensors], d)
