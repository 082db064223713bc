"""Sorting and sampling methods of Tensor: sort, argsort, topk, multinomial.

A mixin that tensor.py's Tensor inherits (the methods moved out of tensor.py as they were).
It never imports tensor.py: Tensors are made through `self._wrap` and recognised by
autograd's is_tensor.
"""
import numbers

from ..autograd.grad_mode import is_grad_enabled
from ..ops import sorting
from ..tensor_args import SortResult, TopkResult, _check_dim


class SortingMethods:
    __slots__ = ()     # no __dict__: Tensor's instances keep only Tensor's slots

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
                          self._wrap(indices, self._backend))

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
                          self._wrap(indices, self._backend))

    def _sorted_values(self, values, indices, dim):
        if self._requires_grad and is_grad_enabled():
            return sorting.SortedValues.apply(self, values, indices, dim)
        return self._wrap(values, self._backend)

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
        return self._wrap(out, be)
