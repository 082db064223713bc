"""Tensor: what the user holds. A backend array, its device, grad and the Context that made it.

Sits above ops/ (the Functions it applies) and autograd/; below creation.py, nn/ and optim/,
which reach a tensor's storage only through its public methods (copy_, fill_, data, ...).
Every differentiable method is a thin wrapper: check arguments (naming shapes and dtypes in
errors, with PyTorch's exception types), promote dtypes, then `SomeFunction.apply(...)`.

This module keeps the core (construction, attributes, conversion, autograd, arithmetic);
the other methods live in themed mixins under tensor_methods/ (math, reductions, sorting,
shape, indexing, inplace) that Tensor inherits. Argument checks and small helpers are in
tensor_args.py, the module-level ops (cat, stack, where, matmul_, mm, bmm, write_out) in
tensor_functions.py; this module re-exports the names other modules import from it.
"""
import copy
import numbers

from . import dtypes, host
from .autograd import engine, folding, instruments
from .autograd.grad_mode import is_grad_enabled
from .backend import get_backend
from .device import device as _device
from .ops import elementwise as ew
from .ops import movement
from .tensor_args import (_broadcast_shape, _bool_sub_error, _check_dim, _from_data,
                          _host_array, _priority, _to_tensor)
from .tensor_functions import bmm, cat, matmul_, mm, stack, where, write_out
from .tensor_methods.indexing import IndexingMethods
from .tensor_methods.inplace import InPlaceMethods
from .tensor_methods.math import MathMethods
from .tensor_methods.reductions import ReductionMethods
from .tensor_methods.shape import ShapeMethods
from .tensor_methods.sorting import SortingMethods

__all__ = ["Tensor", "cat", "stack", "where", "matmul_", "mm", "bmm", "write_out",
           "_host_array"]


def _arithmetic(cls, primitive, name, reverse=False, true_div=False):
    """Tensor's `__name__` (or `__rname__`) method for the binary op cls, whose forward is the
    one backend primitive named (Add.forward returns backend.add(a, b), ...). Its first lines
    serve the commonest call of all (inference, and every tensor that needs no gradient): a
    float tensor with one of the same dtype, shape and device, or with a Python float or int,
    nothing to record, no instrument watching. Then the primitive on the operands is the
    whole op (Function.apply's bookkeeping would have no effect), and every Python call
    before it counts at a few elements (the 2x2 add of benchmarks/bench_overhead.py); the
    rest goes through _binary."""
    def method(self, other):
        x = self._data
        if x.dtype.kind == "f" and not instruments.observers:
            kind = type(other)
            if kind is Tensor:
                y = other._data
                plain = (y.dtype is x.dtype and y.shape == x.shape
                         and other._backend is self._backend)
                wants_grad = self._requires_grad or other._requires_grad
            else:
                y, plain, wants_grad = other, kind is float or kind is int, self._requires_grad
            if plain and not (wants_grad and is_grad_enabled()):
                backend = self._backend
                a, b = (y, x) if reverse else (x, y)
                return Tensor._wrap(getattr(backend, primitive)(a, b), backend)
        return self._binary(cls, other, name, reverse, true_div)
    op = "truediv" if true_div else name
    method.__name__ = method.__qualname__ = f"__{'r' if reverse else ''}{op}__"
    return method


class Tensor(MathMethods, ReductionMethods, SortingMethods, ShapeMethods, IndexingMethods,
             InPlaceMethods):
    """An n-dimensional array on a device that records the ops applied to it for backward.

    Create tensors with `tga.tensor`, `tga.zeros`, `tga.randn`, ... (see creation.py).
    """

    __slots__ = ("_data", "_backend", "_requires_grad", "grad", "_ctx", "_hooks",
                 "_retains_grad", "_version", "_post_accumulate_hooks", "__weakref__")
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
        self._version = [0]         # the storage's version counter: shared by its aliases
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
        t._version = [0]
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

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        """A DLPack capsule sharing this tensor's memory (torch.Tensor.__dlpack__): what
        `np.from_dlpack(t)` and `torch.from_dlpack(t)` call. A write on either side is seen
        on the other, but not by this tensor's version counter (as in torch).

        Args: stream: None or -1 on the cpu (BufferError otherwise); max_version: the
        consumer's highest DLPack version, (1, 0) or more for a versioned capsule; dl_device,
        copy: the array API's, as numpy's ndarray.__dlpack__ takes them.

        BufferError, as torch, for a tensor that requires grad (export t.detach()), for
        negative strides (a flip view: export t.contiguous()), and for a cuda tensor (DLPack
        export of cuda tensors is not supported yet).

            >>> import numpy as np, tinygradattn as tga
            >>> t = tga.zeros(3)
            >>> a = np.from_dlpack(t); a[0] = 5.
            >>> t
            tensor([5., 0., 0.])
        """
        if self.requires_grad:
            raise BufferError("Can't export tensors that require gradient, use tensor.detach()")
        return self._backend.to_dlpack(self._data, stream, max_version, dl_device, copy)

    def __dlpack_device__(self):
        """(DLPack device type, index): (1, 0) for the cpu, (2, 0) for cuda (kDLCUDA)."""
        return self._backend.dlpack_device(self._data)

    def to(self, *args, dtype=None, device=None):
        """to(device), to(dtype) or to(device, dtype); returns self when nothing changes."""
        for a in args:
            if isinstance(a, str) and a.split(":")[0] in ("cpu", "cuda"):
                device = a
            else:
                dtype = a
                if isinstance(a, str):
                    try:
                        dtypes.as_dtype(a)
                    except TypeError:
                        raise RuntimeError(f"to(): {a!r} is neither a device (cpu, cuda) nor "
                                           "a dtype") from None
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
        t = _from_data(data, self.dtype if dtype is None else dtype, backend, Tensor._wrap)
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
                _from_data(gradient, self.dtype, self._backend, Tensor._wrap)
            if g._backend is not self._backend:
                raise RuntimeError(f"backward: gradient on device {g.device} for a tensor on "
                                   f"device {self.device}")
            if tuple(g.shape) != tuple(self.shape):
                raise RuntimeError(f"backward: gradient has shape {tuple(g.shape)}, expected "
                                   f"{tuple(self.shape)}")
            dout = self._backend.astype(g._data, self._data.dtype)
        engine.run_backward(self, dout, retain_graph)

    def detach(self):
        return self._alias()

    def _alias(self, cls=None):
        """A new Tensor on this one's storage, sharing its version counter."""
        t = Tensor._wrap(self._data, self._backend, cls)
        t._version = self._version
        return t

    @property
    def data(self):
        """This tensor's storage as a new tensor outside the graph (torch.Tensor.data)."""
        return self._alias()

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
        self._version = value._version
    @staticmethod
    def _make_subclass(cls, data, require_grad=False):
        """A new leaf of Tensor subclass cls sharing data's storage and device
        (torch.Tensor._make_subclass: how nn.Parameter is made)."""
        t = data._alias(cls)
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
        if not self._requires_grad:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        folding.check_not_folded(self, "retain_grad")
        self._retains_grad = True

    def register_hook(self, hook):
        """hook(grad) -> None or a new grad, called when this tensor's gradient is computed."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        folding.check_not_folded(self, "register_hook")
        self._hooks = self._hooks + (hook,)
        return hook

    def register_post_accumulate_grad_hook(self, hook):
        """hook(tensor) -> None, called after this leaf's .grad got a backward pass's gradient
        (torch.Tensor.register_post_accumulate_grad_hook); returns a handle with remove()."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self._ctx is not None:
            raise RuntimeError("post accumulate grad hooks cannot be registered on non-leaf "
                               "tensors")
        return engine.register_post_accumulate_grad_hook(self, hook)

    def clone(self):
        return movement.Clone.apply(self)

    # ---- arithmetic -------------------------------------------------------------------------
    def _binary(self, cls, other, name, reverse=False, true_div=False):
        """cls.apply on self and other (reversed for the r-methods) after torch's checks and
        dtype promotion; other is a Tensor, a Python number or array-like data."""
        x = self._data
        if x.dtype.kind == "f" and (type(other) is float or type(other) is int or (
                isinstance(other, Tensor) and other._data.dtype is x.dtype
                and other._data.shape == x.shape and other._backend is self._backend)):
            # Fast path, most calls in a model: a float tensor with a float tensor of the same
            # dtype, shape and device, or with a Python float/int. Nothing to promote,
            # broadcast or refuse: the general path below would pass the same operands.
            return cls.apply(other, self) if reverse else cls.apply(self, other)
        a = self
        if isinstance(other, Tensor):
            b = other
            if a._data.dtype != b._data.dtype:
                if name == "sub" and "b" in (a._data.dtype.kind, b._data.dtype.kind):
                    _bool_sub_error(a, b)       # torch refuses `-` with a bool operand
                dt = dtypes.promote(a.dtype, _priority(a), b.dtype, _priority(b))
                a, b = a._cast(dt), b._cast(dt)
            elif name == "sub" and a._data.dtype.kind == "b":
                _bool_sub_error(a, b)
            if a._data.shape != b._data.shape:
                _broadcast_shape(name, a.shape, b.shape)
        elif isinstance(other, (numbers.Number,)) and not isinstance(other, complex):
            sdt = dtypes.scalar_dtype(other)
            if name == "sub" and (sdt is dtypes.bool_ or a._data.dtype.kind == "b"):
                _bool_sub_error(a, other)
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

    __add__ = _arithmetic(ew.Add, "add", "add")
    __radd__ = _arithmetic(ew.Add, "add", "add", reverse=True)
    __sub__ = _arithmetic(ew.Sub, "sub", "sub")
    __rsub__ = _arithmetic(ew.Sub, "sub", "sub", reverse=True)
    __mul__ = _arithmetic(ew.Mul, "mul", "mul")
    __rmul__ = _arithmetic(ew.Mul, "mul", "mul", reverse=True)
    __truediv__ = _arithmetic(ew.Div, "div", "div", true_div=True)
    __rtruediv__ = _arithmetic(ew.Div, "div", "div", reverse=True, true_div=True)
    __pow__ = _arithmetic(ew.Pow, "pow", "pow")
    __rpow__ = _arithmetic(ew.Pow, "pow", "pow", reverse=True)

    def __matmul__(self, other):
        return matmul_(self, other)

    def __rmatmul__(self, other):
        return matmul_(_to_tensor(other, self), self)

    def __neg__(self):
        if self._data.dtype.kind == "b":
            raise RuntimeError("Negation, the `-` operator, on a bool tensor is not supported; "
                               "use the `~` or `logical_not()` operator to invert a mask")
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

    def eq(self, other):
        return self._compare(other, "eq", "eq")

    def ne(self, other):
        return self._compare(other, "ne", "ne")

    def __eq__(self, other):
        # NOTE: as torch, `t == None` is False and `t != None` True (Python's identity
        # fallback, so `t in [None, t]` works); t.eq(None) stays a TypeError
        return NotImplemented if other is None else self._compare(other, "eq", "eq")

    def __ne__(self, other):
        return NotImplemented if other is None else self._compare(other, "ne", "ne")

    def __lt__(self, other):
        return self._compare(other, "lt", "lt")

    def __le__(self, other):
        return self._compare(other, "le", "le")

    def __gt__(self, other):
        return self._compare(other, "gt", "gt")

    def __ge__(self, other):
        return self._compare(other, "ge", "ge")

    __hash__ = object.__hash__
    lt, le, gt, ge = __lt__, __le__, __gt__, __ge__

    def logical_not(self):
        return Tensor._wrap(self._backend.logical_not(self._data), self._backend)

    def __invert__(self):
        if self._data.dtype.kind != "b":
            raise TypeError(f"~ is defined for bool tensors here, got {self.dtype.name}")
        return self.logical_not()

    # ---- issue 15: format (kept here: it names the Tensor class itself) ----------------
    def __format__(self, format_spec):
        """format(t, '.4f') / f'{t:.3f}' format a 0-d plain Tensor's value, as torch does; any
        other tensor takes only an empty spec (TypeError otherwise)."""
        if self.ndim == 0 and type(self) is Tensor:
            return self.item().__format__(format_spec)
        return object.__format__(self, format_spec)
