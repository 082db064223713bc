"""Elementwise math methods of Tensor: unary math (exp, log, sqrt, clamp, maximum, masked_fill,
tril / triu, any / all, & and |), then more of torch's elementwise math (sin, cos, floor,
round, sign, isnan, ...), cumsum, prod and norm.

A mixin that tensor.py's Tensor inherits (the methods moved out of tensor.py as they were).
It never imports tensor.py: Tensors are made through `self._wrap` and recognised by
autograd's is_tensor.
"""
import numbers

from .. import dtypes
from ..autograd.function import is_tensor
from ..autograd.grad_mode import is_grad_enabled
from ..ops import elementwise as ew
from ..ops import reduce
from ..tensor_args import (_broadcast_shape, _check_dim, _check_fill_value, _check_int_arg,
                           _check_tensor_arg, _reduce_axes, _to_tensor)
from ..tensor_functions import where


class MathMethods:
    __slots__ = ()     # no __dict__: Tensor's instances keep only Tensor's slots

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
        mask = _check_tensor_arg("masked_fill", "mask", mask)
        _check_fill_value("masked_fill", "value", value)
        if mask.dtype != dtypes.bool_:
            raise RuntimeError(f"masked_fill only supports boolean masks, but got mask with "
                            f"dtype {mask.dtype.name}")
        if is_tensor(value):
            if value.numel() != 1:
                raise RuntimeError("masked_fill only supports a 0-dimensional value tensor, "
                                   f"got shape {tuple(value.shape)}")
            if not (value.requires_grad and is_grad_enabled()):
                value = value.item()
        if _broadcast_shape("masked_fill", self.shape, mask.shape) != self.shape:
            raise RuntimeError(f"masked_fill: mask of shape {tuple(mask.shape)} does not "
                               f"broadcast to the tensor's shape {tuple(self.shape)}")
        if is_tensor(value):      # a value requiring grad gets one, as in torch
            return where(mask, value.reshape(())._cast(self.dtype), self)
        return where(mask, self._backend_scalar(value), self)

    def _backend_scalar(self, value):
        return self._wrap(self._backend.full((), value, self._data.dtype), self._backend)

    def tril(self, diagonal=0):
        """Zero the elements above the diagonal-th diagonal of the last two dims."""
        return where(self._triangle(diagonal, lower=True), self, self._backend_scalar(0))

    def triu(self, diagonal=0):
        """Zero the elements below the diagonal-th diagonal of the last two dims."""
        return where(self._triangle(diagonal, lower=False), self, self._backend_scalar(0))

    def _triangle(self, diagonal, lower):
        _check_int_arg("tril" if lower else "triu", "diagonal", diagonal)
        if self.ndim < 2:
            raise RuntimeError(f"tril/triu: input tensor must have at least 2 dimensions, got "
                               f"{tuple(self.shape)}")
        be = self._backend
        rows = be.reshape(be.arange(0, self.shape[-2], 1, "int64"), (-1, 1))
        cols = be.reshape(be.arange(0, self.shape[-1], 1, "int64"), (1, -1))
        keep = (be.ge if lower else be.le)(be.add(rows, diagonal), cols)   # (R, C) bool
        return self._wrap(keep, be)

    def any(self, dim=None, keepdim=False):
        x = self._data if self._data.dtype.kind == "b" else self._backend.ne(self._data, 0)
        axes = _reduce_axes(dim, self.ndim)
        return self._wrap(self._backend.ne(self._backend.sum(
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
        return self._wrap(getattr(self._backend, prim)(self._data, other._data), self._backend)

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
            return self._wrap(floats(be, self._data), be)
        return self._wrap(be.full(self.shape, others, "bool"), be)

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
