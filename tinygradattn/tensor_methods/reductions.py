"""Reduction methods of Tensor: sum, mean, max, min, argmax, argmin, var, std, logsumexp, and
the row-wise softmax and log_softmax.

A mixin that tensor.py's Tensor inherits (the methods moved out of tensor.py as they were).
It never imports tensor.py: Tensors are made through `self._wrap` and recognised by
autograd's is_tensor.
"""
from .. import dtypes
from ..autograd.function import is_tensor
from ..ops import fused, reduce
from ..tensor_args import MinMaxResult, _check_dim, _reduce_axes


class ReductionMethods:
    __slots__ = ()     # no __dict__: Tensor's instances keep only Tensor's slots

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
        if is_tensor(dim):
            return self.maximum(dim)
        return self._extremum(dim, keepdim, True)

    def min(self, dim=None, keepdim=False):
        if is_tensor(dim):
            return self.minimum(dim)
        return self._extremum(dim, keepdim, False)

    def argmax(self, dim=None, keepdim=False):
        axis = None if dim is None else _check_dim(dim, self.ndim)
        if self.ndim == 0:
            axis = None
        return self._wrap(self._backend.argmax(self._data, axis, keepdim and axis is not None),
                            self._backend)

    def argmin(self, dim=None, keepdim=False):
        axis = None if dim is None else _check_dim(dim, self.ndim)
        if self.ndim == 0:
            axis = None
        return self._wrap(self._backend.argmin(self._data, axis, keepdim and axis is not None),
                            self._backend)

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
        if self.numel():
            m = self._wrap(self._backend.max(self._data, _reduce_axes(dim, self.ndim), True),
                           self._backend)                        # the max, outside the graph
        else:      # empty: no max; zeros of the reduced shape (an empty sum's log is -inf)
            m = self.detach().sum(dim, keepdim=True)
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
