"""Tensor: what the user holds. A backend array, its device, grad and the Context that made it.

Sits above ops/ (the Functions it applies) and autograd/; below creation.py, nn/ and optim/,
which reach a tensor's storage only through its public methods (copy_, fill_, data, ...).
Every differentiable method is a thin wrapper: check arguments (naming shapes and dtypes in
errors, with PyTorch's exception types), promote dtypes, then `SomeFunction.apply(...)`.
"""
import copy
import numbers
import warnings

from . import dtypes, host
from .autograd import engine
from .autograd.grad_mode import is_grad_enabled, no_grad
from .backend import get_backend
from .device import device as _device
from .ops import elementwise as ew
from .ops import fused, indexing, matmul, movement, reduce, sorting


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


class Tensor:
    """An n-dimensional array on a device that records the ops applied to it for backward.

    Create tensors with `tga.tensor`, `tga.zeros`, `tga.randn`, ... (see creation.py).
    """

    __slots__ = ("_data", "_backend", "_requires_grad", "grad", "_ctx", "_hooks",
                 "_retains_grad", "__weakref__")
    __array_priority__ = 1000     # numpy defers `ndarray * Tensor` to our reflected methods

    def __init__(self, data, requires_grad=False, device="cpu"):
        backend = get_backend(device)
        self._data = backend.from_host(_host_array(data, None))
        self._backend = backend
        self._requires_grad = False
        self.grad = None
        self._ctx = None
        self._hooks = ()
        self._retains_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @staticmethod
    def _wrap(data, backend, cls=None):
        """A Tensor around an existing backend array (no copy, no checks).

        A plain Tensor even when reached through a subclass (what ops and backward give an
        nn.Parameter is a Tensor, as in torch) unless cls names the class. autograd/ makes
        its outputs through this.
        """
        t = object.__new__(cls or Tensor)
        t._data = data
        t._backend = backend
        t._requires_grad = False
        t.grad = None
        t._ctx = None
        t._hooks = ()
        t._retains_grad = False
        return t

    # ---- attributes ------------------------------------------------------------------
    @property
    def shape(self):
        return self._data.shape

    @property
    def ndim(self):
        return self._data.ndim

    @property
    def dtype(self):
        return dtypes.from_numpy_dtype(self._data.dtype)

    @property
    def device(self):
        """A tga.device ('cpu' or 'cuda'): it compares equal to its string and has .type."""
        return _device(self._backend.name)

    @property
    def requires_grad(self):
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value):
        if value and not self._data.dtype.kind == "f":
            raise RuntimeError(f"only Tensors of floating point dtype can require gradients, "
                               f"got {self.dtype.name}")
        if not value and self._ctx is not None:
            raise RuntimeError("you can only change requires_grad flags of leaf variables; "
                               "use detach() for a non-leaf tensor")
        self._requires_grad = bool(value)

    @property
    def is_leaf(self):
        return self._ctx is None

    @property
    def grad_fn(self):
        return None if self._ctx is None else self._ctx.fn

    @property
    def T(self):
        return self.permute(*reversed(range(self.ndim)))

    @property
    def mT(self):
        return self.transpose(-2, -1)

    def dim(self):
        return self._data.ndim

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[_check_dim(dim, self.ndim)]

    def numel(self):
        return self._data.size

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def is_floating_point(self):
        return self._data.dtype.kind == "f"

    def __repr__(self):
        body = host.format_array(self._backend.to_host(self._data), "tensor(")
        extras = []
        if self.dtype not in (dtypes.float32, dtypes.int64, dtypes.bool_):
            extras.append(f"dtype={self.dtype!r}")
        if self._ctx is not None:
            extras.append(f"grad_fn=<{self._ctx.fn.__name__}Backward>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + ", ".join([body] + extras) + ")"

    # ---- conversion --------------------------------------------------------------------
    def numpy(self):
        """The data as a numpy array (shares memory on the CPU, like torch's numpy())."""
        if self.requires_grad:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. "
                               "Use tensor.detach().numpy() instead.")
        return self._backend.to_host(self._data)

    def item(self):
        if self.numel() != 1:
            raise RuntimeError(f"a Tensor with {self.numel()} elements cannot be converted "
                               "to Scalar")
        return self._backend.to_host(self._data).reshape(-1)[0].item()

    def tolist(self):
        return self._backend.to_host(self._data).tolist()

    def __float__(self):
        return float(self._scalar())

    def __int__(self):
        return int(self._scalar())

    def _scalar(self):
        if self.numel() != 1:
            raise ValueError("only one element tensors can be converted to Python scalars, "
                             f"got shape {tuple(self.shape)}")
        return self.item()

    def __bool__(self):
        if self.numel() != 1:
            raise RuntimeError(f"Boolean value of Tensor with {self.numel()} values is "
                               "ambiguous")
        return bool(self.item())

    def __index__(self):
        if self._data.dtype.kind not in "iub" or self.numel() != 1:
            raise TypeError("only integer tensors of a single element can be converted "
                            "to an index")
        return int(self.item())

    def to(self, *args, dtype=None, device=None):
        """to(device), to(dtype) or to(device, dtype); returns self when nothing changes."""
        for a in args:
            if isinstance(a, str) and a.split(":")[0] in ("cpu", "cuda"):
                device = a
            else:
                dtype = a
        out = self
        if dtype is not None:
            out = out._cast(dtypes.as_dtype(dtype))
        if device is not None and get_backend(device) is not out._backend:
            out = movement.ToDevice.apply(out, get_backend(device))
        return out

    def new_tensor(self, data, *, dtype=None, device=None, requires_grad=False):
        """A new tensor holding a copy of data, with this tensor's dtype and device unless
        given (torch.Tensor.new_tensor).

            >>> import tinygradattn as tga
            >>> tga.zeros(2, dtype=tga.float64).new_tensor([1, 2])
            tensor([1., 2.], dtype=tinygradattn.float64)
        """
        backend = self._backend if device is None else get_backend(device)
        t = _from_data(data, self.dtype if dtype is None else dtype, backend)
        return t.requires_grad_() if requires_grad else t

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    def pin_memory(self):
        """self: there is no page-locked host memory here (copies to the GPU go through
        numba's transfers); scripts that pin before `.to("cuda", non_blocking=True)` run."""
        if self._backend.name != "cpu":
            raise RuntimeError(f"cannot pin '{self._backend.name}' memory: only CPU tensors "
                               "can be pinned")
        return self

    def is_pinned(self):
        return False

    def float(self):
        return self._cast(dtypes.float32)

    def double(self):
        return self._cast(dtypes.float64)

    def long(self):
        return self._cast(dtypes.int64)

    def bool(self):
        return self._cast(dtypes.bool_)

    _LEGACY_NAMES = {"float32": "FloatTensor", "float64": "DoubleTensor", "int64": "LongTensor",
                     "bool": "BoolTensor"}

    def type(self, dtype=None, non_blocking=False):
        """torch.Tensor.type: with no argument the type's name ('torch.FloatTensor',
        'torch.cuda.LongTensor'); else this tensor cast to dtype, given as a dtype, a legacy
        type (torch.LongTensor) or its name ('torch.LongTensor', 'torch.cuda.FloatTensor',
        which also moves it to that device)."""
        if dtype is None:
            where = "cuda." if self.device.type == "cuda" else ""
            return f"torch.{where}{self._LEGACY_NAMES[self.dtype.name]}"
        if isinstance(dtype, str) and dtype.startswith("torch."):
            name, device = dtype[len("torch."):], "cpu"
            if name.startswith("cuda."):
                name, device = name[len("cuda."):], "cuda"
            by_name = {v: k for k, v in self._LEGACY_NAMES.items()}
            if name not in by_name:
                raise ValueError(f"invalid type: '{dtype}'")
            return self.to(device)._cast(dtypes.as_dtype(by_name[name]))
        if isinstance(getattr(dtype, "dtype", None), dtypes.DType):      # torch.LongTensor
            return self.to("cpu")._cast(dtype.dtype)
        return self._cast(dtypes.as_dtype(dtype))

    def _cast(self, dtype):
        if self._data.dtype == dtype.np:
            return self
        return ew.Cast.apply(self, dtype.np)

    # ---- autograd -------------------------------------------------------------------------
    def backward(self, gradient=None, retain_graph=False):
        """Accumulate d(self)/d(leaf) into every leaf's .grad (torch.Tensor.backward)."""
        if not self.requires_grad:
            raise RuntimeError("element 0 of tensors does not require grad and does not have "
                               "a grad_fn")
        if gradient is None:
            if self.numel() != 1:
                raise RuntimeError(f"grad can be implicitly created only for scalar outputs; "
                                   f"this tensor has shape {tuple(self.shape)}: pass gradient=")
            dout = self._backend.full(self.shape, 1, self._data.dtype)
        else:
            g = gradient if isinstance(gradient, Tensor) else \
                _from_data(gradient, self.dtype, self._backend)
            if g._backend is not self._backend:
                raise RuntimeError(f"backward: gradient on device {g.device} for a tensor on "
                                   f"device {self.device}")
            if tuple(g.shape) != tuple(self.shape):
                raise RuntimeError(f"backward: gradient has shape {tuple(g.shape)}, expected "
                                   f"{tuple(self.shape)}")
            dout = self._backend.astype(g._data, self._data.dtype)
        engine.run_backward(self, dout, retain_graph)

    def detach(self):
        return Tensor._wrap(self._data, self._backend)

    @property
    def data(self):
        """This tensor's storage as a new tensor outside the graph (torch.Tensor.data)."""
        return Tensor._wrap(self._data, self._backend)

    @data.setter
    def data(self, value):
        """Make this tensor use value's storage, shape, dtype and device, keeping its grad and
        requires_grad (torch's `param.data = ...`, as nn.Module.to does)."""
        if not isinstance(value, Tensor):
            raise TypeError(f"data: expected a Tensor, got {type(value).__name__}")
        if self._requires_grad and not value.is_floating_point():
            raise RuntimeError("data set to a tensor that requires gradients must be floating "
                               f"point, got {value.dtype.name}")
        self._data, self._backend = value._data, value._backend

    @staticmethod
    def _make_subclass(cls, data, require_grad=False):
        """A new leaf of Tensor subclass cls sharing data's storage and device
        (torch.Tensor._make_subclass: how nn.Parameter is made)."""
        t = Tensor._wrap(data._data, data._backend, cls)
        t.requires_grad = require_grad
        return t

    def __deepcopy__(self, memo):
        """A leaf with its own copy of the storage on the same device (copy.deepcopy): the
        class (nn.Parameter), requires_grad and a copy of .grad are kept, as in torch."""
        if self._ctx is not None:
            raise RuntimeError("Only Tensors created explicitly by the user (graph leaves) "
                               "support the deepcopy protocol at the moment")
        new = Tensor._wrap(self._backend.copy(self._data), self._backend, type(self))
        new._requires_grad = self._requires_grad
        new._retains_grad = self._retains_grad
        if self.grad is not None:
            new.grad = copy.deepcopy(self.grad, memo)
        return new

    def requires_grad_(self, requires_grad=True):
        self.requires_grad = requires_grad
        return self

    def retain_grad(self):
        self._retains_grad = True

    def register_hook(self, hook):
        """hook(grad) -> None or a new grad, called when this tensor's gradient is computed."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        self._hooks = self._hooks + (hook,)
        return hook

    def clone(self):
        return movement.Clone.apply(self)

    # ---- arithmetic -------------------------------------------------------------------------
    def _binary(self, cls, other, name, reverse=False, true_div=False):
        a = self
        if isinstance(other, Tensor):
            b = other
            if a._data.dtype != b._data.dtype:
                dt = dtypes.promote(a.dtype, _priority(a), b.dtype, _priority(b))
                a, b = a._cast(dt), b._cast(dt)
            if a._data.shape != b._data.shape:
                _broadcast_shape(name, a.shape, b.shape)
        elif isinstance(other, (numbers.Number,)) and not isinstance(other, complex):
            sdt = dtypes.scalar_dtype(other)
            b = float(other) if sdt is dtypes.float32 else int(other)
            dt = dtypes.promote(a.dtype, _priority(a), sdt, 0)
            a = a._cast(dt)
        else:
            b = _to_tensor(other, self)
            return a._binary(cls, b, name, reverse, true_div)
        if true_div and not a.is_floating_point():
            a = a._cast(dtypes.float32)
            b = b._cast(dtypes.float32) if isinstance(b, Tensor) else b
        return cls.apply(b, a) if reverse else cls.apply(a, b)

    def __add__(self, other):
        return self._binary(ew.Add, other, "add")

    def __radd__(self, other):
        return self._binary(ew.Add, other, "add", reverse=True)

    def __sub__(self, other):
        return self._binary(ew.Sub, other, "sub")

    def __rsub__(self, other):
        return self._binary(ew.Sub, other, "sub", reverse=True)

    def __mul__(self, other):
        return self._binary(ew.Mul, other, "mul")

    def __rmul__(self, other):
        return self._binary(ew.Mul, other, "mul", reverse=True)

    def __truediv__(self, other):
        return self._binary(ew.Div, other, "div", true_div=True)

    def __rtruediv__(self, other):
        return self._binary(ew.Div, other, "div", reverse=True, true_div=True)

    def __pow__(self, other):
        return self._binary(ew.Pow, other, "pow")

    def __rpow__(self, other):
        return self._binary(ew.Pow, other, "pow", reverse=True)

    def __matmul__(self, other):
        return matmul_(self, other)

    def __rmatmul__(self, other):
        return matmul_(_to_tensor(other, self), self)

    def __neg__(self):
        return ew.Neg.apply(self)

    def __abs__(self):
        return ew.Abs.apply(self)

    add, sub, mul, div, pow = __add__, __sub__, __mul__, __truediv__, __pow__
    matmul, neg, abs = __matmul__, __neg__, __abs__

    # comparisons: bool results, never part of the graph
    def _compare(self, other, prim, name):
        a, b = self, other
        if isinstance(b, Tensor):
            if a._data.dtype != b._data.dtype:
                dt = dtypes.promote(a.dtype, _priority(a), b.dtype, _priority(b))
                a, b = a._cast(dt), b._cast(dt)
            _broadcast_shape(name, a.shape, b.shape)
            b = b._data
        elif not isinstance(b, numbers.Number):
            b = _to_tensor(b, self)._data
        return Tensor._wrap(getattr(self._backend, prim)(a._data, b), self._backend)

    def __eq__(self, other):
        return self._compare(other, "eq", "eq")

    def __ne__(self, other):
        return self._compare(other, "ne", "ne")

    def __lt__(self, other):
        return self._compare(other, "lt", "lt")

    def __le__(self, other):
        return self._compare(other, "le", "le")

    def __gt__(self, other):
        return self._compare(other, "gt", "gt")

    def __ge__(self, other):
        return self._compare(other, "ge", "ge")

    __hash__ = object.__hash__
    eq, ne, lt, le, gt, ge = __eq__, __ne__, __lt__, __le__, __gt__, __ge__

    def logical_not(self):
        return Tensor._wrap(self._backend.logical_not(self._data), self._backend)

    def __invert__(self):
        if self._data.dtype.kind != "b":
            raise TypeError(f"~ is defined for bool tensors here, got {self.dtype.name}")
        return self.logical_not()

    # ---- unary math -----------------------------------------------------------------------------
    def _float_unary(self, cls):
        x = self if self.is_floating_point() else self._cast(dtypes.float32)
        return cls.apply(x)

    def exp(self):
        return self._float_unary(ew.Exp)

    def log(self):
        return self._float_unary(ew.Log)

    def sqrt(self):
        return self._float_unary(ew.Sqrt)

    def tanh(self):
        return self._float_unary(ew.Tanh)

    def sigmoid(self):
        return self._float_unary(ew.Sigmoid)

    def erf(self):
        return self._float_unary(ew.Erf)

    def relu(self):
        return ew.Relu.apply(self)

    def clamp(self, min=None, max=None):
        if min is None and max is None:
            raise RuntimeError("clamp: at least one of 'min' or 'max' must not be None")
        for v in (min, max):
            if v is not None and not isinstance(v, numbers.Number):
                raise TypeError(f"clamp: min and max must be numbers, got {type(v).__name__}")
        x = self
        if any(isinstance(v, float) for v in (min, max)) and not x.is_floating_point():
            x = x._cast(dtypes.float32)
        return ew.Clamp.apply(x, min, max)

    clip = clamp

    def maximum(self, other):
        return self._binary(ew.Maximum, _to_tensor(other, self), "maximum")

    def minimum(self, other):
        return self._binary(ew.Minimum, _to_tensor(other, self), "minimum")

    def masked_fill(self, mask, value):
        """Where mask (bool, broadcast to self) is True, value; elsewhere self."""
        mask = _to_tensor(mask, self)
        if mask.dtype != dtypes.bool_:
            raise RuntimeError(f"masked_fill only supports boolean masks, but got mask with "
                            f"dtype {mask.dtype.name}")
        if isinstance(value, Tensor):
            if value.numel() != 1:
                raise RuntimeError("masked_fill only supports a 0-dimensional value tensor, "
                                   f"got shape {tuple(value.shape)}")
            if not (value.requires_grad and is_grad_enabled()):
                value = value.item()
        if _broadcast_shape("masked_fill", self.shape, mask.shape) != self.shape:
            raise RuntimeError(f"masked_fill: mask of shape {tuple(mask.shape)} does not "
                               f"broadcast to the tensor's shape {tuple(self.shape)}")
        if isinstance(value, Tensor):      # a value requiring grad gets one, as in torch
            return where(mask, value.reshape(())._cast(self.dtype), self)
        return where(mask, self._backend_scalar(value), self)

    def _backend_scalar(self, value):
        return Tensor._wrap(self._backend.full((), value, self._data.dtype), self._backend)

    def tril(self, diagonal=0):
        """Zero the elements above the diagonal-th diagonal of the last two dims."""
        return where(self._triangle(diagonal, lower=True), self, self._backend_scalar(0))

    def triu(self, diagonal=0):
        """Zero the elements below the diagonal-th diagonal of the last two dims."""
        return where(self._triangle(diagonal, lower=False), self, self._backend_scalar(0))

    def _triangle(self, diagonal, lower):
        if self.ndim < 2:
            raise RuntimeError(f"tril/triu: input tensor must have at least 2 dimensions, got "
                               f"{tuple(self.shape)}")
        be = self._backend
        rows = be.reshape(be.arange(0, self.shape[-2], 1, "int64"), (-1, 1))
        cols = be.reshape(be.arange(0, self.shape[-1], 1, "int64"), (1, -1))
        keep = (be.ge if lower else be.le)(be.add(rows, diagonal), cols)   # (R, C) bool
        return Tensor._wrap(keep, be)

    def any(self, dim=None, keepdim=False):
        x = self._data if self._data.dtype.kind == "b" else self._backend.ne(self._data, 0)
        axes = _reduce_axes(dim, self.ndim)
        return Tensor._wrap(self._backend.ne(self._backend.sum(
            self._backend.astype(x, "int64"), axes, keepdim), 0), self._backend)

    def all(self, dim=None, keepdim=False):
        return self.logical_not().any(dim, keepdim).logical_not() if self._data.dtype.kind == "b" \
            else (self != 0).all(dim, keepdim)

    def __and__(self, other):
        return self._logical(other, "logical_and")

    def __or__(self, other):
        return self._logical(other, "logical_or")

    def _logical(self, other, prim):
        other = _to_tensor(other, self)
        for t in (self, other):
            if t._data.dtype.kind != "b":
                raise TypeError(f"{prim}: & and | are defined for bool tensors here, got "
                                f"{t.dtype.name}")
        _broadcast_shape(prim, self.shape, other.shape)
        return Tensor._wrap(getattr(self._backend, prim)(self._data, other._data), self._backend)

    # ---- reductions -----------------------------------------------------------------------------
    def sum(self, dim=None, keepdim=False, dtype=None):
        x = self if dtype is None else self._cast(dtypes.as_dtype(dtype))
        if x._data.dtype.kind == "b":
            x = x._cast(dtypes.int64)           # torch sums bools as int64
        return reduce.Sum.apply(x, _reduce_axes(dim, x.ndim), keepdim)

    def mean(self, dim=None, keepdim=False):
        if not self.is_floating_point():
            raise RuntimeError(f"mean(): could not infer output dtype. Input dtype must be "
                               f"floating point, got {self.dtype.name}")
        return reduce.Mean.apply(self, _reduce_axes(dim, self.ndim), keepdim)

    def _extremum(self, dim, keepdim, is_max):
        name = "max" if is_max else "min"
        if dim is None:
            if self.numel() == 0:
                raise RuntimeError(f"{name}(): Expected reduction dim to be specified for "
                                   "input.numel() == 0. Specify the reduction dim with the "
                                   "'dim' argument.")
            return reduce.MaxMin.apply(self, None, False, is_max)
        axis = _reduce_axes(dim, self.ndim)
        if self.ndim and self.shape[axis[0]] == 0:
            raise IndexError(f"{name}(): cannot compute over dim {dim} of size 0")
        values = reduce.MaxMin.apply(self, axis, keepdim, is_max)
        indices = (self.argmax if is_max else self.argmin)(dim, keepdim)
        return MinMaxResult(values, indices)

    def max(self, dim=None, keepdim=False):
        """max() -> the largest value; max(dim) -> (values, indices) like torch."""
        if isinstance(dim, Tensor):
            return self.maximum(dim)
        return self._extremum(dim, keepdim, True)

    def min(self, dim=None, keepdim=False):
        if isinstance(dim, Tensor):
            return self.minimum(dim)
        return self._extremum(dim, keepdim, False)

    def argmax(self, dim=None, keepdim=False):
        axis = None if dim is None else _check_dim(dim, self.ndim)
        if self.ndim == 0:
            axis = None
        return Tensor._wrap(self._backend.argmax(self._data, axis, keepdim and axis is not None),
                            self._backend)

    def argmin(self, dim=None, keepdim=False):
        axis = None if dim is None else _check_dim(dim, self.ndim)
        if self.ndim == 0:
            axis = None
        return Tensor._wrap(self._backend.argmin(self._data, axis, keepdim and axis is not None),
                            self._backend)

    # ---- sorting and sampling (torch.sort, argsort, topk, multinomial) -------------------------
    def sort(self, dim=-1, descending=False, *, stable=False):
        """(values, indices) of this tensor sorted along dim (torch.sort); values carry the
        gradient back to the positions they came from.

        Always stable: equal values keep their order, which is torch's result with
        stable=True (with stable=False torch leaves the order of ties unspecified; ours is
        still this one). NaN sorts above every number, as in torch.

            >>> import tinygradattn as tga
            >>> tga.tensor([3., 1., 2.]).sort(descending=True)
            SortResult(values=tensor([3., 2., 1.]), indices=tensor([0, 2, 1]))
        """
        d = _check_dim(dim, self.ndim)
        values, indices = sorting.sort_along(self._backend, self._data, d, bool(descending))
        return SortResult(self._sorted_values(values, indices, d),
                          Tensor._wrap(indices, self._backend))

    def argsort(self, dim=-1, descending=False, *, stable=False):
        """The indices that sort this tensor along dim (torch.argsort): sort(...).indices,
        stable whatever `stable` says (see sort)."""
        return self.sort(dim, descending, stable=stable).indices

    def topk(self, k, dim=-1, largest=True, sorted=True):
        """(values, indices) of the k largest (or smallest) entries along dim (torch.topk),
        in sorted order whatever `sorted` says (torch leaves the order unspecified with
        sorted=False). Among equal values the lower index is chosen first; NaN counts as the
        largest value, as in torch. Gradient flows to the chosen positions.

            >>> import tinygradattn as tga
            >>> tga.tensor([1., 3., 2., 3.]).topk(2)
            TopkResult(values=tensor([3., 3.]), indices=tensor([1, 3]))
        """
        d = _check_dim(dim, self.ndim)
        n = self.shape[d] if self.ndim else 1
        if type(k) is bool or not isinstance(k, numbers.Integral):
            raise TypeError(f"topk(): argument 'k' must be int, not {type(k).__name__}")
        if not 0 <= k <= n:
            raise RuntimeError(f"selected index k out of range: k={k} for a dimension of size "
                               f"{n} (shape {tuple(self.shape)})")
        values, indices = sorting.sort_along(self._backend, self._data, d, bool(largest),
                                             int(k))
        return TopkResult(self._sorted_values(values, indices, d),
                          Tensor._wrap(indices, self._backend))

    def _sorted_values(self, values, indices, dim):
        if self._requires_grad and is_grad_enabled():
            return sorting.SortedValues.apply(self, values, indices, dim)
        return Tensor._wrap(values, self._backend)

    def multinomial(self, num_samples, replacement=False, *, generator=None):
        """Indices drawn from each row's categorical distribution with probabilities
        proportional to this tensor's weights (torch.multinomial): 1-D (C,) gives
        (num_samples,), 2-D (N, C) gives (N, num_samples), int64, not differentiable.

        Without replacement no index repeats within a row: torch's exponential race (the
        num_samples largest w / Exp(1)), so zero weights come after every positive one.
        Draws come from `generator` (a tga.Generator on this tensor's device) or the global
        generator (tga.manual_seed). Errors as torch: RuntimeError for a weight that is
        negative, inf or NaN or a row summing to 0 (on cuda flagged by the kernel and raised
        at the next host read, as a CUDA device assert).

            >>> import tinygradattn as tga
            >>> tga.tensor([0., 1., 0.]).multinomial(2, replacement=True).tolist()
            [1, 1]
        """
        if not self.is_floating_point():
            raise RuntimeError(f"multinomial only supports floating-point dtypes for input, "
                               f"got: {self.dtype.name}")
        if self.ndim not in (1, 2):
            raise RuntimeError(f"prob_dist must be 1 or 2 dim, got shape {tuple(self.shape)}")
        if type(num_samples) is bool or not isinstance(num_samples, numbers.Integral):
            raise TypeError(f"multinomial(): argument 'num_samples' must be int, not "
                            f"{type(num_samples).__name__}")
        if num_samples <= 0:
            raise RuntimeError(f"cannot sample n_sample <= 0 samples (num_samples="
                               f"{num_samples})")
        C = self.shape[-1]
        if not replacement and num_samples > C:
            raise RuntimeError(f"cannot sample n_sample > prob_dist.size(-1) samples without "
                               f"replacement ({num_samples} > {C})")
        gen = None if generator is None else generator._for(self.device)
        be = self._backend
        probs = self._data if self.ndim == 2 else be.reshape(self._data, (1, C))
        out = be.multinomial(probs, int(num_samples), bool(replacement), gen)   # (N, S)
        if self.ndim == 1:
            out = be.reshape(out, (int(num_samples),))
        return Tensor._wrap(out, be)

    def var(self, dim=None, keepdim=False, *, correction=1, unbiased=None):
        """Variance; correction=1 (Bessel) by default as in torch, 0 for the population one."""
        if unbiased is not None:
            correction = int(unbiased)
        axes = _reduce_axes(dim, self.ndim)
        n = self.numel() if axes is None else 1
        for a in axes or ():
            n *= self.shape[a]
        diff = self - self.mean(dim if axes is not None else None, keepdim=True)
        return (diff * diff).sum(dim, keepdim) / max(n - correction, 0)

    def std(self, dim=None, keepdim=False, *, correction=1, unbiased=None):
        return self.var(dim, keepdim, correction=correction, unbiased=unbiased).sqrt()

    def logsumexp(self, dim, keepdim=False):
        """log(sum(exp(x), dim)), shifted by the max so exp cannot overflow."""
        m = Tensor._wrap(self._backend.max(self._data, _reduce_axes(dim, self.ndim), True),
                         self._backend)                          # the max, outside the graph
        m = m.masked_fill(m.abs() == float("inf"), 0.0)   # all -inf rows stay -inf, not nan
        out = (self - m).exp().sum(dim, keepdim=True).log() + m
        return out if keepdim else out.squeeze(dim)

    def softmax(self, dim):
        return fused.Softmax.apply(self._float_for("softmax"), _check_dim(dim, self.ndim))

    def log_softmax(self, dim):
        return fused.LogSoftmax.apply(self._float_for("log_softmax"), _check_dim(dim, self.ndim))

    def _float_for(self, name):
        if not self.is_floating_point():
            raise RuntimeError(f"{name}: expected a floating point tensor, got {self.dtype.name}")
        return self

    # ---- more of torch's elementwise math and reductions ----------------------------------------
    def sin(self):
        return self._float_unary(ew.Sin)

    def cos(self):
        return self._float_unary(ew.Cos)

    def rsqrt(self):
        """1 / sqrt(x) (torch.rsqrt); integer tensors give float32."""
        return self._float_unary(ew.Rsqrt)

    def _stepwise(self, cls, name, *args):
        """floor / ceil / round: integer tensors come back as a copy, bool is refused
        (torch's NotImplementedError)."""
        if self._data.dtype.kind == "b":
            raise NotImplementedError(f"{name}: not implemented for 'Bool' tensors")
        if not self.is_floating_point():
            return self.clone()
        return cls.apply(self, *args)

    def floor(self):
        return self._stepwise(ew.Floor, "floor")

    def ceil(self):
        return self._stepwise(ew.Ceil, "ceil")

    def round(self, *, decimals=0):
        """Round half to even (torch.round); decimals > 0 rounds to that many decimal places,
        < 0 to tens, hundreds, ... A zero gradient, as torch gives."""
        if not isinstance(decimals, numbers.Integral) or isinstance(decimals, bool):
            raise TypeError(f"round(): argument 'decimals' must be int, not "
                            f"{type(decimals).__name__}")
        return self._stepwise(ew.Round, "round", int(decimals))

    def sign(self):
        """-1, 0 or 1 elementwise, 0 for NaN (torch.sign); bool tensors come back as a copy."""
        if self._data.dtype.kind == "b":
            return self.clone()
        return ew.Sign.apply(self)

    def _classify(self, floats, others):
        """A bool tensor outside the graph: floats(backend, data) for floating tensors, the
        constant `others` for integer and bool ones (never NaN or inf)."""
        be = self._backend
        if self.is_floating_point():
            return Tensor._wrap(floats(be, self._data), be)
        return Tensor._wrap(be.full(self.shape, others, "bool"), be)

    def isnan(self):
        return self._classify(lambda be, x: be.ne(x, x), False)

    def isinf(self):
        return self._classify(lambda be, x: be.eq(be.abs(x), float("inf")), False)

    def isfinite(self):
        return self._classify(lambda be, x: be.lt(be.abs(x), float("inf")), True)

    def cumsum(self, dim, *, dtype=None):
        """Running sums along dim (torch.cumsum); bool and int64 sum as int64, dtype casts the
        input first."""
        x = self if dtype is None else self._cast(dtypes.as_dtype(dtype))
        d = _check_dim(dim, x.ndim)
        if x._data.dtype.kind == "b":
            x = x._cast(dtypes.int64)
        if x.ndim == 0:
            return reduce.Cumsum.apply(x.reshape(1), 0).reshape(())
        return reduce.Cumsum.apply(x, d)

    def prod(self, dim=None, keepdim=False, *, dtype=None):
        """The product of all elements, or along one dim (torch.prod: dim is an int); bool
        multiplies as int64. The gradient is right with zeros in the input, as torch's."""
        if dim is not None and (not isinstance(dim, numbers.Integral) or isinstance(dim, bool)):
            raise TypeError(f"prod(): argument 'dim' must be int, not {type(dim).__name__}")
        x = self if dtype is None else self._cast(dtypes.as_dtype(dtype))
        if x._data.dtype.kind == "b":
            x = x._cast(dtypes.int64)
        if dim is None:
            return reduce.Prod.apply(x, None, False)
        return reduce.Prod.apply(x, _reduce_axes(dim, x.ndim), keepdim)

    def norm(self, p="fro", dim=None, keepdim=False, dtype=None):
        """torch.norm: 'fro' (or None) is the 2-norm over dim (all elements by default), a
        number p the vector p-norm (inf: max |x|, -inf: min |x|, 0: the non-zero count).
        'nuc' and other matrix norms are not implemented here."""
        if p is None or p == "fro":
            if isinstance(dim, (tuple, list)) and len(dim) > 2:
                raise RuntimeError(f"norm: 'fro' takes at most 2 dims, got dim={dim}")
            p = 2
        elif isinstance(p, str):
            raise NotImplementedError(f"norm: p={p!r} (a matrix norm) is not implemented; "
                                      "'fro' and numbers are")
        return self._vector_norm("norm", p, dim, keepdim, dtype)

    def _vector_norm(self, name, ord, dim, keepdim, dtype):
        if not isinstance(ord, numbers.Real) or isinstance(ord, bool):
            raise TypeError(f"{name}: the order must be a number, got {type(ord).__name__}")
        if not self.is_floating_point():
            raise RuntimeError(f"linalg.vector_norm: Expected a floating point or complex tensor "
                               f"as input. Got {self.dtype.name}")
        x = self if dtype is None else self._cast(dtypes.as_dtype(dtype))
        axes = _reduce_axes(dim, x.ndim)
        n_reduced = x.numel() if axes is None else 1
        for a in axes or ():
            n_reduced *= x.shape[a]
        if n_reduced == 0 and (ord < 0 or ord == float("inf")):
            raise RuntimeError(f"linalg.vector_norm cannot compute the {ord} norm on an empty "
                               f"tensor of shape {tuple(x.shape)} (dim={dim}) because the "
                               "operation does not have an identity")
        return reduce.VectorNorm.apply(x, float(ord), axes, keepdim)

    # ---- shape ------------------------------------------------------------------------------------
    def reshape(self, *shape):
        shape = _shape_arg(shape)
        numel, unknown = 1, [i for i, n in enumerate(shape) if n == -1]
        for n in shape:
            if n != -1:
                if n < 0:
                    raise RuntimeError(f"reshape: invalid shape dimension {n} in {shape}")
                numel *= n
        if len(unknown) > 1:
            raise RuntimeError(f"reshape: only one dimension can be inferred, got {shape}")
        if unknown:
            if numel == 0 or self.numel() % numel:
                raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size "
                                   f"{self.numel()}")
            shape = shape[:unknown[0]] + (self.numel() // numel,) + shape[unknown[0] + 1:]
        elif numel != self.numel():
            raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size "
                               f"{self.numel()}")
        if shape == self.shape:
            return self
        return movement.Reshape.apply(self, shape)

    view = reshape

    def flatten(self, start_dim=0, end_dim=-1):
        if self.ndim == 0:
            return self.reshape(1)
        s, e = _check_dim(start_dim, self.ndim), _check_dim(end_dim, self.ndim)
        if s > e:
            raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
        return self.reshape(*self.shape[:s], -1, *self.shape[e + 1:])

    def permute(self, *dims):
        dims = tuple(_check_dim(d, self.ndim) for d in _shape_arg(dims))
        if sorted(dims) != list(range(self.ndim)):
            raise RuntimeError(f"permute: dims {dims} are not a permutation of "
                               f"{self.ndim} dims")
        if dims == tuple(range(self.ndim)):
            return self
        return movement.Permute.apply(self, dims)

    def transpose(self, dim0, dim1):
        axes = list(range(self.ndim))
        d0, d1 = _check_dim(dim0, self.ndim), _check_dim(dim1, self.ndim)
        axes[d0], axes[d1] = axes[d1], axes[d0]
        return self.permute(*axes)

    def unsqueeze(self, dim):
        d = _check_dim(dim, self.ndim + 1)
        return self.reshape(*self.shape[:d], 1, *self.shape[d:])

    def squeeze(self, dim=None):
        if dim is None:
            return self.reshape(*[n for n in self.shape if n != 1])
        dims = {_check_dim(d, self.ndim) for d in (dim if isinstance(dim, tuple) else (dim,))}
        return self.reshape(*[n for i, n in enumerate(self.shape) if i not in dims or n != 1])

    def expand(self, *sizes):
        sizes = _shape_arg(sizes)
        if len(sizes) < self.ndim:
            raise RuntimeError(f"expand: the number of sizes provided ({len(sizes)}) must be "
                               f"greater or equal to the number of dimensions ({self.ndim})")
        lead = len(sizes) - self.ndim
        shape = []
        for i, n in enumerate(sizes):
            old = self.shape[i - lead] if i >= lead else None
            if n == -1:
                if old is None:
                    raise RuntimeError("expand: -1 is not allowed in a leading, new dimension")
                n = old
            elif old is not None and old != 1 and old != n:
                raise RuntimeError(f"The expanded size of the tensor ({n}) must match the "
                                   f"existing size ({old}) at non-singleton dimension {i}.  "
                                   f"Target sizes: {list(sizes)}.  Tensor sizes: "
                                   f"{list(self.shape)}")
            shape.append(n)
        shape = tuple(shape)
        return self if shape == self.shape else movement.Expand.apply(self, shape)

    def expand_as(self, other):
        return self.expand(*other.shape)

    def contiguous(self):
        return movement.Contiguous.apply(self)

    def split(self, split_size_or_sections, dim=0):
        d = _check_dim(dim, self.ndim)
        n = self.shape[d]
        if isinstance(split_size_or_sections, numbers.Integral):
            step = int(split_size_or_sections)
            if step <= 0:
                raise RuntimeError(f"split: split_size must be positive, got {step}")
            sizes = [min(step, n - s) for s in range(0, n, step)] or [0]
        else:
            sizes = list(split_size_or_sections)
            if sum(sizes) != n:
                raise RuntimeError(f"split_with_sizes expects split_sizes to sum exactly to {n} "
                                   f"(input tensor's size at dimension {d}), but got "
                                   f"split_sizes={sizes}")
        lead, out, start = (slice(None),) * d, [], 0
        for s in sizes:
            out.append(self[lead + (slice(start, start + s),)])
            start += s
        return tuple(out)

    def chunk(self, chunks, dim=0):
        if chunks <= 0:
            raise RuntimeError(f"chunk expects `chunks` to be greater than 0, got: {chunks}")
        n = self.shape[_check_dim(dim, self.ndim)]
        return self.split(max(-(-n // chunks), 1), dim)

    # ---- indexing ---------------------------------------------------------------------------------
    def __getitem__(self, index):
        return indexing.Index.apply(self, _raw_index(index, self))

    def __setitem__(self, index, value):
        """In-place write; only for tensors outside the graph (as torch forbids on leaves)."""
        self._check_inplace(value)
        value = value.to(self.device)._data if isinstance(value, Tensor) else value
        self._backend.setitem(self._data, _raw_index(index, self), value)

    # ---- indexing along a dim, flips, rolls, repeats (torch's gather, scatter, ...) -------------
    def gather(self, dim, index, *, sparse_grad=False):
        """out[i][j][k] = self[index[i][j][k]][j][k] for dim=0, and so on (torch.gather);
        differentiable wrt self.

        Args:
            dim: the dim that index picks along.
            index: int64 Tensor of self's rank, no larger than self apart from dim; values in
                [0, self.size(dim)) (RuntimeError otherwise; on cuda at the next host read).

            >>> import tinygradattn as tga
            >>> tga.tensor([[1., 2.], [3., 4.]]).gather(1, tga.tensor([[0, 0], [1, 0]]))
            tensor([[1., 1.],
                    [4., 3.]])
        """
        if sparse_grad:
            raise RuntimeError("gather(): sparse_grad=True is not supported (no sparse "
                               "tensors here); the gradient is dense with sparse_grad=False")
        d = _check_dim(dim, self.ndim)
        idx = _dim_index(index, self, "gather")
        x, idx = _at_least_1d(self), _at_least_1d(idx, self._backend)    # torch: 0-d as (1,)
        _check_index_shape(x, d, idx, None, "gather")
        return indexing.Gather.apply(x, d, idx).reshape(index.shape)

    def scatter(self, dim, index, src=None, value=None, *, reduce=None):
        """A copy of self with self[.., index[i], ..] = src[i] along dim (src a Tensor of
        index's rank, at least its shape, self's dtype) or = value (a number) (torch.scatter);
        differentiable wrt self and src. Of repeated targets one write wins (which one is
        unspecified, as in torch). reduce='add' adds instead (as scatter_add); torch's
        'multiply' is not supported (RuntimeError)."""
        return self._scatter(dim, index, src, value, reduce, "scatter", False)

    def scatter_(self, dim, index, src=None, value=None, *, reduce=None):
        """scatter in place (torch.Tensor.scatter_); self may not require grad (as copy_); a
        src requiring grad makes self part of the graph, as in torch."""
        return self._scatter(dim, index, src, value, reduce, "scatter_", True)

    def scatter_add(self, dim, index, src):
        """A copy of self with src[i] added at self[.., index[i], ..] along dim, repeats
        accumulating (torch.scatter_add); differentiable wrt self and src.

            >>> import tinygradattn as tga
            >>> tga.zeros(3).scatter_add(0, tga.tensor([0, 2, 0]), tga.tensor([1., 2., 3.]))
            tensor([4., 0., 2.])
        """
        return self._scatter(dim, index, src, None, "add", "scatter_add", False)

    def scatter_add_(self, dim, index, src):
        """scatter_add in place (torch.Tensor.scatter_add_); self may not require grad (as
        copy_); a src requiring grad makes self part of the graph, as in torch."""
        return self._scatter(dim, index, src, None, "add", "scatter_add_", True)

    def _scatter(self, dim, index, src, value, reduce, name, inplace):
        if inplace:
            self._check_inplace()
        if reduce is not None and reduce != "add":
            raise RuntimeError(f"{name}(): reduce={reduce!r} is not supported here (only 'add')")
        if src is not None and value is not None:
            raise TypeError(f"{name}(): give src or value, not both")
        if src is None:
            src = value
        if src is None:
            raise TypeError(f"{name}(): missing the src (a Tensor) or value (a number) argument")
        d = _check_dim(dim, self.ndim)
        idx = _dim_index(index, self, name)
        x, idx = _at_least_1d(self), _at_least_1d(idx, self._backend)    # torch: 0-d as (1,)
        if isinstance(src, Tensor):
            if src.dtype != self.dtype:
                raise RuntimeError(f"{name}(): Expected self.dtype to be equal to src.dtype, "
                                   f"got {self.dtype.name} and {src.dtype.name}")
            if src._backend is not self._backend:
                raise RuntimeError(f"{name}(): Expected all tensors to be on the same device, "
                                   f"got {self.device} and {src.device}")
            src = _at_least_1d(src)
            _check_index_shape(x, d, idx, src, name)
        elif isinstance(src, numbers.Number) and not isinstance(src, complex):
            _check_index_shape(x, d, idx, None, name)
        else:
            raise TypeError(f"{name}(): src must be a Tensor or a number, got "
                            f"{type(src).__name__}")
        if not inplace:
            return indexing.Scatter.apply(x, d, idx, src, reduce).reshape(self.shape)
        if isinstance(src, Tensor) and src.requires_grad and is_grad_enabled():
            return self._become(indexing.Scatter.apply(x.detach(), d, idx, src, reduce)
                                .reshape(self.shape))
        self._backend.scatter(x._data, d, idx, src._data if isinstance(src, Tensor) else src,
                              reduce)
        return self

    def index_select(self, dim, index):
        """The slices of self at index (a 1-D or 0-d int64 Tensor, values in
        [0, self.size(dim))) along dim, in index's order (torch.index_select); differentiable
        wrt self (repeats accumulate)."""
        d = _check_dim(dim, self.ndim)
        if not isinstance(index, Tensor):
            raise TypeError(f"index_select(): argument 'index' must be Tensor, not "
                            f"{type(index).__name__}")
        if index.ndim > 1:
            raise IndexError("index_select(): Index is supposed to be a vector")
        idx = _dim_index(index, self, "index_select")
        be, n = self._backend, index.numel()
        if self.ndim == 0:
            return self.gather(0, Tensor._wrap(idx, be)).reshape(())
        shape = self.shape[:d] + (n,) + self.shape[d + 1:]
        at = be.reshape(idx, (1,) * d + (n,) + (1,) * (self.ndim - d - 1))
        return indexing.Gather.apply(self, d, be.broadcast_to(at, shape))   # index: stride 0

    def index_fill(self, dim, index, value):
        """A copy of self with the slices at index (1-D or 0-d int64; negative values count
        from the end; IndexError outside [-n, n)) along dim set to value (a number or a 0-d
        Tensor, taken as a constant) (torch.index_fill); differentiable wrt self."""
        d, idx, value = self._index_fill_args(dim, index, value, "index_fill")
        be = self._backend
        n = self.shape[d] if self.ndim else 1
        keep = (1,) * d + (n,) + (1,) * max(self.ndim - d - 1, 0)
        hit = be.zeros(keep, "bool")                   # True on the filled slices
        be.setitem(hit, (0,) * d + (idx,), True)
        return self.masked_fill(Tensor._wrap(be.reshape(hit, self.shape) if self.ndim == 0
                                             else hit, be), value)

    def index_fill_(self, dim, index, value):
        """index_fill in place (torch.Tensor.index_fill_); self may not require grad (as
        copy_); a value Tensor requiring grad makes self part of the graph, as in torch."""
        self._check_inplace()
        d, idx, value = self._index_fill_args(dim, index, value, "index_fill_")
        if isinstance(value, Tensor):      # requires grad: self joins the graph
            return self._become(self.detach().index_fill(dim, index, value))
        data = self._data if self.ndim else self._backend.reshape(self._data, (1,))
        self._backend.setitem(data, (slice(None),) * d + (idx,), value)
        return self

    def _index_fill_args(self, dim, index, value, name):
        d = _check_dim(dim, self.ndim)
        if not isinstance(index, Tensor):
            raise TypeError(f"{name}(): argument 'index' must be Tensor, not "
                            f"{type(index).__name__}")
        if index.ndim > 1:
            raise IndexError(f"{name}(): Index has to be a vector/scalar, got shape "
                             f"{tuple(index.shape)}")
        if index.dtype != dtypes.int64:
            raise IndexError(f"{name}(): Expected dtype int64 for index, got {index.dtype.name}")
        if index._backend is not self._backend:
            raise RuntimeError(f"{name}(): Expected all tensors to be on the same device, got "
                               f"{self.device} and {index.device}")
        if isinstance(value, Tensor):
            if value.ndim != 0:
                raise RuntimeError(f"{name} only supports a 0-dimensional value tensor, but got "
                                   f"tensor with {value.ndim} dimension(s).")
            if not (value.requires_grad and is_grad_enabled()):
                value = value.item()
        return d, self._backend.reshape(index._data, (-1,)), value

    def masked_fill_(self, mask, value):
        """Set self to value where mask (bool, broadcast to self) is True, in place
        (torch.Tensor.masked_fill_); self may not require grad (as copy_); a value Tensor
        requiring grad makes self part of the graph, as in torch."""
        self._check_inplace()
        return self._become(self.detach().masked_fill(mask, value))

    def _become(self, out):
        """In place: self takes out's values (views of self see them). When out is in the
        graph (an operand requires grad; self does not, _check_inplace saw to it), self
        becomes out's node, as in torch: safe, since no earlier op kept self as a graph
        input (it needed no grad)."""
        self._backend.assign(self._data, out._data)
        if out._ctx is not None:
            self._ctx, self._requires_grad = out._ctx, True
        return self

    def nonzero(self, *, as_tuple=False):
        """The indices of the nonzero elements (torch.nonzero): an int64 (count, ndim) Tensor
        in C order, or with as_tuple=True one 1-D Tensor per dim (a 0-d self counts as 1-D).
        On cuda the count is read back from the device (the result's shape depends on it)."""
        be = self._backend
        coords = be.nonzero(self._data if self.ndim else be.reshape(self._data, (1,)))
        if as_tuple:
            return tuple(Tensor._wrap(be.getitem(coords, i), be) for i in range(len(coords)))
        if self.ndim == 0:
            return Tensor._wrap(be.zeros((coords.shape[1], 0), "int64"), be)
        return Tensor._wrap(be.contiguous(be.permute(coords, (1, 0))), be)   # (count, ndim)

    def roll(self, shifts, dims=None):
        """Shift elements along dims, wrapping around (torch.roll); with dims None, over the
        flattened tensor, shape kept. Differentiable."""
        shifts = shifts if isinstance(shifts, (tuple, list)) else (shifts,)
        if dims is None:
            if len(shifts) != 1:
                raise RuntimeError(f"roll: with dims=None shifts must be one int, got {shifts}")
            return self.flatten().roll(shifts, 0).view(self.shape)
        dims = dims if isinstance(dims, (tuple, list)) else (dims,)
        if len(shifts) != len(dims):
            raise RuntimeError(f"shifts and dimensions must align. shifts: {len(shifts)}, "
                               f"dims:{len(dims)}")
        out = self
        for s, dim in zip(shifts, dims):
            d = _check_dim(dim, self.ndim)
            n = self.shape[d] if self.ndim else 1
            s = int(s) % n if n else 0
            if s:
                lead = (slice(None),) * d
                out = cat([out[lead + (slice(n - s, n),)], out[lead + (slice(0, n - s),)]], d)
        return out if out is not self else self.clone()

    def flip(self, *args, dims=None):
        """A copy with the order of elements reversed along dims (torch.flip: x.flip(0, 1),
        x.flip((0, 1)) or x.flip(dims=(0, 1))); differentiable."""
        dims = _shape_arg(args if dims is None else (dims,)) if args or dims is not None else ()
        axes = _reduce_axes(dims, self.ndim) if dims else ()
        index = tuple(slice(None, None, -1) if d in (axes or ()) else slice(None)
                      for d in range(self.ndim))
        return self[index].clone()

    def t(self):
        """The transpose of a tensor of at most 2 dims (torch.t): 0-d and 1-d come back
        as they are."""
        if self.ndim > 2:
            raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is "
                               f"{self.ndim}D")
        return self.transpose(0, 1) if self.ndim == 2 else self

    def repeat(self, *sizes):
        """self tiled sizes[i] times along dim i (torch.Tensor.repeat); extra leading sizes add
        dims. One copy: each dim is viewed as (1, n), expanded to (r, n), then merged."""
        sizes = _shape_arg(sizes)
        if len(sizes) < self.ndim:
            raise RuntimeError("Number of dimensions of repeat dims can not be smaller than "
                               "number of dimensions of tensor")
        shape = (1,) * (len(sizes) - self.ndim) + tuple(self.shape)
        final = [r * n for r, n in zip(sizes, shape)]
        if any(r < 0 for r in sizes):
            bad = next(r * n for r, n in zip(sizes, shape) if r < 0)
            raise RuntimeError(f"Trying to create tensor with negative dimension {bad}: {final}")
        pairs = [v for n in shape for v in (1, n)]                    # (1, n0, 1, n1, ...)
        wide = [v for r, n in zip(sizes, shape) for v in (r, n)]      # (r0, n0, r1, n1, ...)
        return self.reshape(*pairs).expand(*wide).reshape(*final)

    def mm(self, mat2):
        return mm(self, mat2)

    def bmm(self, mat2):
        return bmm(self, mat2)

    # ---- in place ---------------------------------------------------------------------------------
    # In-place ops compute the out-of-place result (torch's promotion and broadcasting) and
    # write it into this tensor's storage (its views see it). The result must keep this
    # tensor's shape and be castable to its dtype (float into an integer tensor is refused, as
    # torch does). Under grad mode:
    # - a leaf that requires grad is refused (torch's rule; under no_grad it is written, as
    #   nn.init and optimizers do);
    # - a non-leaf that requires grad (part of the graph) is refused too: there is no version
    #   counter to protect the copies of it that ops saved for backward (torch has one);
    # - a tensor that does not require grad, with an operand that does, joins the graph as the
    #   result's node, as in torch (`buf.add_(w)`): nothing recorded before needed its grad.
    # NOTE: with no version counter, an in-place write into a tensor that an op saved for
    # backward without it requiring grad (`y = w * x; x.mul_(2)`) is not detected. And when a
    # view joins the graph this way, the tensor it views does not (torch's CopySlices).
    def _check_inplace(self, *operands):
        """RuntimeError where an in-place write is refused (see above); operands given here
        are refused too when they require grad (for writes that cannot join the graph)."""
        if not is_grad_enabled():
            return
        if self._requires_grad:
            if self._ctx is None:
                raise RuntimeError("a leaf Variable that requires grad is being used in an "
                                   "in-place operation.")
            raise RuntimeError(
                f"in-place operation on a tensor that is part of the autograd graph (it requires "
                f"grad and has grad_fn={self._ctx.fn.__name__}Backward): tinygradattn has no "
                "version counter to protect the copies of it saved for backward; use the "
                "out-of-place form (y = y + x instead of y.add_(x)), or run it under "
                "tga.no_grad()")
        for o in operands:
            if isinstance(o, Tensor) and o._requires_grad:
                raise RuntimeError(
                    "in-place write of a value that requires grad into a tensor that does not "
                    "is not recorded here (the gradient would be lost): use an out-of-place op "
                    "(torch.where, index_put, cat), or run it under tga.no_grad()")

    def _inplace(self, name, compute, *operands):
        """self = compute(self), in place; compute gets self (or, when an operand requires
        grad and self joins the graph, a copy of it: no op may save self's storage, which is
        overwritten) and returns a Tensor."""
        self._check_inplace()
        if is_grad_enabled() and any(isinstance(o, Tensor) and o._requires_grad
                                     for o in operands):
            return self._become(self._checked_result(compute(self.detach().clone()), name))
        with no_grad():
            result = self._checked_result(compute(self), name)
        self._backend.assign(self._data, result._data)
        return self

    def _checked_result(self, result, name):
        if tuple(result.shape) != tuple(self.shape):
            raise RuntimeError(f"{name}: output with shape {list(self.shape)} doesn't match the "
                               f"broadcast shape {list(result.shape)}")
        if _KIND_RANK[result._data.dtype.kind] > _KIND_RANK[self._data.dtype.kind]:
            raise RuntimeError(f"{name}: result type {_TORCH_NAMES[result.dtype.name]} can't be "
                               f"cast to the desired output type "
                               f"{_TORCH_NAMES[self.dtype.name]}")
        return result

    def copy_(self, src, non_blocking=False):
        """Copy src's values into this tensor in place, cast to its dtype (torch.Tensor.copy_).

        Args:
            src: a Tensor (any device) or host data (a numpy array, nested lists, a number),
                broadcastable to this tensor's shape.
        A tensor that requires grad takes it under tga.no_grad() only (torch.nn.init's way);
        a src that requires grad makes this tensor part of the graph, as in torch.

            >>> import tinygradattn as tga
            >>> tga.zeros(2, 2).copy_(tga.tensor([1, 2]))
            tensor([[1., 2.],
                    [1., 2.]])
        """
        self._check_inplace()
        if isinstance(src, Tensor):
            value = src.to(self.device)._data
        else:
            value = self._backend.asarray(src, self._data.dtype)
        if tuple(value.shape) != self.shape and \
                _broadcast_shape("copy_", self.shape, tuple(value.shape)) != self.shape:
            raise RuntimeError(f"copy_: source of shape {tuple(value.shape)} does not broadcast "
                               f"to the destination's shape {tuple(self.shape)}")
        if isinstance(src, Tensor) and src._requires_grad and is_grad_enabled():
            return self._become(src.to(self.device, self.dtype).expand(*self.shape).clone())
        self._backend.assign(self._data, value)
        return self

    def fill_(self, value):
        """Set every element to value (a number or a 0-d Tensor) in place
        (torch.Tensor.fill_); rules as copy_."""
        self._check_inplace()
        if isinstance(value, Tensor):
            if value.ndim:
                raise RuntimeError(f"fill_ only supports 0-dimension value tensor but got tensor "
                                   f"with {value.ndim} dimensions.")
            if value._requires_grad and is_grad_enabled():
                return self.copy_(value)
            value = value.item()
        self._backend.assign(self._data, value)
        return self

    def zero_(self):
        """Set every element to 0 in place (torch.Tensor.zero_); rules as copy_."""
        return self.fill_(0)

    # ---- issue 15: in-place arithmetic and random fills, new_*, type_as, format, sizes -----
    def _check_alpha(self, alpha, name):
        if isinstance(alpha, float) and not self.is_floating_point():
            raise RuntimeError(f"{name}: For integral input tensors, argument alpha must not be "
                               "a floating point number.")

    def add_(self, other, *, alpha=1):
        """self += alpha * other in place (torch.Tensor.add_); the rules above."""
        self._check_alpha(alpha, "add_")
        return self._inplace("add_", lambda x: x + (other if alpha == 1 else other * alpha),
                             other)

    def sub_(self, other, *, alpha=1):
        """self -= alpha * other in place (torch.Tensor.sub_)."""
        self._check_alpha(alpha, "sub_")
        return self._inplace("sub_", lambda x: x - (other if alpha == 1 else other * alpha),
                             other)

    def mul_(self, other):
        return self._inplace("mul_", lambda x: x * other, other)

    def div_(self, other, *, rounding_mode=None):
        """self /= other in place (torch.Tensor.div_): true division (an integer tensor
        cannot hold it); rounding_mode is not supported (NotImplementedError)."""
        if rounding_mode is not None:
            raise NotImplementedError(f"div_: rounding_mode={rounding_mode!r} is not supported "
                                      "(only true division, rounding_mode=None)")
        return self._inplace("div_", lambda x: x / other, other)

    def pow_(self, exponent):
        return self._inplace("pow_", lambda x: x ** exponent, exponent)

    def clamp_(self, min=None, max=None):
        return self._inplace("clamp_", lambda x: x.clamp(min, max), min, max)

    clip_ = clamp_

    # masked_fill_: with the indexing methods above (a value requiring grad joins the graph)

    def addcmul_(self, tensor1, tensor2, *, value=1):
        """self += value * tensor1 * tensor2 in place (torch.Tensor.addcmul_)."""
        return self._inplace("addcmul_", lambda x: x + tensor1 * tensor2 * value,
                             tensor1, tensor2)

    def addcdiv_(self, tensor1, tensor2, *, value=1):
        """self += value * tensor1 / tensor2 in place (torch.Tensor.addcdiv_)."""
        return self._inplace("addcdiv_", lambda x: x + tensor1 / tensor2 * value,
                             tensor1, tensor2)

    def lerp_(self, end, weight):
        """self += weight * (end - self) in place (torch.Tensor.lerp_)."""
        return self._inplace("lerp_", lambda x: x + (end - x) * weight, end, weight)

    def neg_(self):
        return self._inplace("neg_", lambda x: -x)

    def exp_(self):
        return self._inplace("exp_", lambda x: x.exp())

    def log_(self):
        return self._inplace("log_", lambda x: x.log())

    def sqrt_(self):
        return self._inplace("sqrt_", lambda x: x.sqrt())

    def abs_(self):
        return self._inplace("abs_", lambda x: x.abs())

    def tanh_(self):
        return self._inplace("tanh_", lambda x: x.tanh())

    def sigmoid_(self):
        return self._inplace("sigmoid_", lambda x: x.sigmoid())

    def relu_(self):
        return self._inplace("relu_", lambda x: x.relu())

    # x += y, x -= y, x *= y, x /= y: in place, as in torch. Where that would be refused
    # because x is part of the graph (see _check_inplace) they are recorded out of place
    # instead, which gives the right gradient. NOTE: then x is rebound to a new tensor, so
    # views of the old x do not see the update.
    def _augmented(self, inplace, outplace, other):
        if self._requires_grad and self._ctx is not None and is_grad_enabled():
            return outplace(other)
        return inplace(other)

    def __iadd__(self, other):
        return self._augmented(self.add_, self.__add__, other)

    def __isub__(self, other):
        return self._augmented(self.sub_, self.__sub__, other)

    def __imul__(self, other):
        return self._augmented(self.mul_, self.__mul__, other)

    def __itruediv__(self, other):
        return self._augmented(self.div_, self.__truediv__, other)

    def detach_(self):
        """Make this tensor a leaf that does not require grad, in place (torch.detach_)."""
        self._ctx = None
        self._requires_grad = False
        return self

    def normal_(self, mean=0.0, std=1.0, *, generator=None):
        """Fill with samples of N(mean, std^2) in place (torch.Tensor.normal_), drawn from
        generator or the device's global generator (tga.manual_seed)."""
        self._check_random("normal_kernel", generator)
        if std < 0:
            raise RuntimeError(f"normal expects std >= 0.0, but found std {std}")
        z = self._random_like("randn", generator)
        return self._inplace("normal_", lambda x: z * std + mean)

    def uniform_(self, a=0.0, b=1.0, *, generator=None, **bounds):
        """Fill with samples of U[a, b) in place (torch.Tensor.uniform_(from=0, to=1); `from`
        and `to` are accepted as keywords too)."""
        a, b = bounds.pop("from", a), bounds.pop("to", b)
        if bounds:
            raise TypeError(f"uniform_() got an unexpected keyword argument "
                            f"'{next(iter(bounds))}'")
        self._check_random("check_uniform_bounds", generator)
        if a > b:
            raise RuntimeError(f"uniform_ expects to return a [from, to) range, but found "
                               f"from={a} > to={b}")
        u = self._random_like("rand", generator)
        return self._inplace("uniform_", lambda x: u * (b - a) + a)

    def _check_random(self, kernel, generator):
        if not self.is_floating_point():
            raise NotImplementedError(f'"{kernel}" not implemented for '
                                      f"'{_TORCH_NAMES[self.dtype.name]}'")
        if generator is not None and not callable(getattr(generator, "_for", None)):
            raise TypeError(f"generator must be a tinygradattn.Generator, got "
                            f"{type(generator).__name__}")

    def _random_like(self, kind, generator):
        """Samples shaped like self in its dtype on its device: kind 'rand' or 'randn', from
        generator (a tga.Generator of this device: its backend generator) or the global one."""
        draw = getattr(self._backend, kind)
        if generator is None:
            return Tensor._wrap(draw(self.shape, self._data.dtype), self._backend)
        return Tensor._wrap(draw(self.shape, self._data.dtype,
                                 generator=generator._for(self.device)), self._backend)

    def type_as(self, other):
        """This tensor with other's dtype and device (torch.Tensor.type_as)."""
        return self.to(other.device, other.dtype)

    def _new(self, make, size, dtype, device, requires_grad):
        backend = self._backend if device is None else get_backend(device)
        np_dtype = (self.dtype if dtype is None else dtypes.as_dtype(dtype)).np
        t = Tensor._wrap(make(backend, _shape_arg(size), np_dtype), backend)
        return t.requires_grad_() if requires_grad else t

    def new_zeros(self, *size, dtype=None, device=None, requires_grad=False):
        """zeros of size with this tensor's dtype and device unless given
        (torch.Tensor.new_zeros; also new_ones, new_empty, new_full)."""
        return self._new(lambda be, s, dt: be.zeros(s, dt), size, dtype, device, requires_grad)

    def new_ones(self, *size, dtype=None, device=None, requires_grad=False):
        return self._new(lambda be, s, dt: be.full(s, 1, dt), size, dtype, device,
                         requires_grad)

    def new_empty(self, *size, dtype=None, device=None, requires_grad=False):
        return self._new(lambda be, s, dt: be.empty(s, dt), size, dtype, device, requires_grad)

    def new_full(self, size, fill_value, *, dtype=None, device=None, requires_grad=False):
        """size filled with fill_value, in this tensor's dtype (not fill_value's) and device."""
        return self._new(lambda be, s, dt: be.full(s, fill_value, dt), (size,), dtype, device,
                         requires_grad)

    def __format__(self, format_spec):
        """format(t, '.4f') / f'{t:.3f}' format a 0-d plain Tensor's value, as torch does; any
        other tensor takes only an empty spec (TypeError otherwise)."""
        if self.ndim == 0 and type(self) is Tensor:
            return self.item().__format__(format_spec)
        return object.__format__(self, format_spec)

    def element_size(self):
        """Bytes per element (torch.Tensor.element_size)."""
        return self._data.dtype.itemsize

    def nelement(self):
        return self.numel()

    @property
    def is_cuda(self):
        return self._backend.name == "cuda"

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.shape[0]))


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
        if isinstance(n, Tensor):
            n = int(n)
        if not isinstance(n, numbers.Integral) or isinstance(n, bool):
            raise TypeError(f"sizes must be ints, got {type(n).__name__} in {tuple(shape)}")
        out.append(int(n))
    return tuple(out)


def _raw_index(index, like):
    """Replace Tensors in an index by backend arrays; lists of ints become arrays."""
    items = index if isinstance(index, tuple) else (index,)
    raw = []
    for i in items:
        if isinstance(i, Tensor):
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


def _dim_index(index, like, name):
    """gather / scatter / index_select's index Tensor as an int64 backend array on like's
    device (int32 and other integer dtypes widened; torch takes int32 and int64)."""
    if not isinstance(index, Tensor):
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
    """A Tensor on like's device from a Tensor, number, list or host array."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, numbers.Number) and like.is_floating_point() and \
            not isinstance(value, bool):
        return _from_data(value, like.dtype, like._backend)
    return _from_data(value, None, like._backend)


def _from_data(data, dtype, backend):
    """A new Tensor holding a copy of data (tensor() without requires_grad). A number is
    filled in on the device (no host -> device copy for a constant)."""
    array = _host_array(data, dtype)
    if array.ndim == 0 and isinstance(data, numbers.Number):
        return Tensor._wrap(backend.full((), data, array.dtype), backend)
    return Tensor._wrap(backend.from_host(array), backend)


def _host_array(data, dtype):
    """A fresh host array of data for tensor(): Tensors (also inside nested lists) are read
    back from their device first; see host.host_array for the dtype rules."""
    if isinstance(data, Tensor):
        data = data._backend.to_host(data._data)
    elif isinstance(data, (list, tuple)) and _has_tensor(data):
        data = _tensors_to_lists(data)
    return host.host_array(data, dtype)


def _has_tensor(seq):
    return any(isinstance(x, Tensor) or (isinstance(x, (list, tuple)) and _has_tensor(x))
               for x in seq)


def _tensors_to_lists(seq):
    return [x.tolist() if isinstance(x, Tensor) else
            (_tensors_to_lists(x) if isinstance(x, (list, tuple)) else x) for x in seq]


# ---- module-level ops (re-exported by tinygradattn/__init__.py) ------------------------------------
def write_out(result, out, name):
    """torch's `out=` argument: result written into out (cast to out's dtype) and out returned.
    As torch: not under autograd (RuntimeError when the result requires grad), and an out of
    another shape is resized (with torch's warning unless it was empty)."""
    if out is None:
        return result
    if not isinstance(out, Tensor):
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
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        x, y = a._data, b._data
        xs, ys = x.shape, y.shape
        if (len(xs) == len(ys) >= 2 and x.dtype == y.dtype and x.dtype.kind == "f"
                and xs[-1] == ys[-2] and xs[:-2] == ys[:-2]):
            return matmul.MatMul.apply(a, b)    # matrices, or the same batch dims: checked
    if not isinstance(a, Tensor) or not isinstance(b, Tensor):
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
        if not isinstance(t, Tensor):
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
    if input is None and other is None and isinstance(condition, Tensor):
        return condition.nonzero(as_tuple=True)
    like = input if isinstance(input, Tensor) else other
    if not isinstance(like, Tensor):
        like = condition
    if not isinstance(like, Tensor) or input is None or other is None:
        raise TypeError("where: expected where(condition) or where(condition, input, other) "
                        "with a Tensor among them")
    cond = _to_tensor(condition, like)
    if cond.dtype != dtypes.bool_:
        raise RuntimeError(f"where expected condition to be a boolean tensor, but got a tensor "
                        f"with dtype {cond.dtype.name}")
    a, b = _to_tensor(input, like), _to_tensor(other, like)
    if a._data.dtype != b._data.dtype:
        dt = dtypes.promote(a.dtype, _priority(a), b.dtype, _priority(b))
        a, b = a._cast(dt), b._cast(dt)
    _broadcast_shape("where", _broadcast_shape("where", cond.shape, a.shape), b.shape)
    return ew.Where.apply(cond, a, b)


def cat(tensors, dim=0):
    """Concatenate along an existing dim (torch.cat). As torch, 1-D empty tensors (shape
    (0,)) are skipped beside tensors of another rank, and 0-d tensors are refused."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat(): expected a non-empty list of Tensors")
    dt = tensors[0].dtype
    for i, t in enumerate(tensors):
        if t.ndim == 0:
            raise RuntimeError(f"zero-dimensional tensor (at position {i}) cannot be "
                               "concatenated")
        dt = dtypes.promote(dt, 2, t.dtype, 2) if i else dt
    tensors = [t for t in tensors if t.shape != (0,)] or tensors[:1]   # torch's legacy skip
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
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("stack expects a non-empty TensorList")
    for i, t in enumerate(tensors):
        if t.shape != tensors[0].shape:
            raise RuntimeError(f"stack expects each tensor to be equal size, but got "
                               f"{list(tensors[0].shape)} at entry 0 and {list(t.shape)} at "
                               f"entry {i}")
    d = _check_dim(dim, tensors[0].ndim + 1)
    return cat([t.unsqueeze(d) for t in tensors], d)

