"""Indexing methods of Tensor: [] and []=, then indexing along a dim (gather, scatter,
scatter_add, index_select, index_fill, masked_fill_, nonzero), flips, rolls, repeats, mm, bmm.

A mixin that tensor.py's Tensor inherits (the methods moved out of tensor.py as they were).
It never imports tensor.py: Tensors are made through `self._wrap` and recognised by
autograd's is_tensor.
"""
import numbers

from .. import dtypes
from ..autograd.function import is_tensor
from ..autograd.grad_mode import is_grad_enabled
from ..ops import indexing
from ..tensor_args import (_at_least_1d, _check_dim, _check_fill_value, _check_index_shape,
                           _check_int_arg, _check_numel, _check_tensor_arg,
                           _dim_index, _raw_index, _reduce_axes, _shape_arg)
from ..tensor_functions import bmm, cat, mm


class IndexingMethods:
    __slots__ = ()     # no __dict__: Tensor's instances keep only Tensor's slots

    # ---- indexing ---------------------------------------------------------------------------------
    def __getitem__(self, index):
        return indexing.Index.apply(self, _raw_index(index, self))

    def __setitem__(self, index, value):
        """In-place write; only for tensors outside the graph (as torch forbids on leaves)."""
        self._check_inplace(value)
        if value is None or isinstance(value, (str, bytes)):    # (lists, arrays are taken)
            raise TypeError(f"can't assign a {type(value).__name__} to a tensor: the value "
                            "must be a number, a Tensor or array-like")
        value = value.to(self.device)._data if is_tensor(value) else value
        raw = _raw_index(index, self)
        try:
            self._backend.setitem(self._data, raw, value)
        except ValueError as e:       # numpy's broadcast failure: torch's RuntimeError
            if "broadcast" not in str(e):
                raise                     # (a read-only destination stays numpy's ValueError)
            shape = tuple(getattr(value, "shape", ()))
            raise RuntimeError(f"__setitem__: value of shape {shape} cannot be broadcast to "
                               f"the indexed part of the tensor of shape "
                               f"{tuple(self.shape)} ({e})") from None

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
        _check_tensor_arg("scatter_add", "src", src)
        return self._scatter(dim, index, src, None, "add", "scatter_add", False)

    def scatter_add_(self, dim, index, src):
        """scatter_add in place (torch.Tensor.scatter_add_); self may not require grad (as
        copy_); a src requiring grad makes self part of the graph, as in torch."""
        _check_tensor_arg("scatter_add_", "src", src)
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
        if is_tensor(src):
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
        if is_tensor(src) and src.requires_grad and is_grad_enabled():
            return self._become(indexing.Scatter.apply(x.detach(), d, idx, src, reduce)
                                .reshape(self.shape))
        self._backend.scatter(x._data, d, idx, src._data if is_tensor(src) else src,
                              reduce)
        return self

    def index_select(self, dim, index):
        """The slices of self at index (a 1-D or 0-d int64 Tensor, values in
        [0, self.size(dim))) along dim, in index's order (torch.index_select); differentiable
        wrt self (repeats accumulate)."""
        d = _check_dim(dim, self.ndim)
        if not is_tensor(index):
            raise TypeError(f"index_select(): argument 'index' must be Tensor, not "
                            f"{type(index).__name__}")
        if index.ndim > 1:
            raise IndexError("index_select(): Index is supposed to be a vector")
        idx = _dim_index(index, self, "index_select")
        be, n = self._backend, index.numel()
        if self.ndim == 0:
            return self.gather(0, self._wrap(idx, be)).reshape(())
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
        return self.masked_fill(self._wrap(be.reshape(hit, self.shape) if self.ndim == 0
                                             else hit, be), value)

    def index_fill_(self, dim, index, value):
        """index_fill in place (torch.Tensor.index_fill_); self may not require grad (as
        copy_); a value Tensor requiring grad makes self part of the graph, as in torch."""
        self._check_inplace()
        d, idx, value = self._index_fill_args(dim, index, value, "index_fill_")
        if is_tensor(value):      # requires grad: self joins the graph
            return self._become(self.detach().index_fill(dim, index, value))
        data = self._data if self.ndim else self._backend.reshape(self._data, (1,))
        self._backend.setitem(data, (slice(None),) * d + (idx,), value)
        return self

    def _index_fill_args(self, dim, index, value, name):
        d = _check_dim(dim, self.ndim)
        if not is_tensor(index):
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
        _check_fill_value(name, "value", value)
        if is_tensor(value):
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
            return tuple(self._wrap(be.getitem(coords, i), be) for i in range(len(coords)))
        if self.ndim == 0:
            return self._wrap(be.zeros((coords.shape[1], 0), "int64"), be)
        return self._wrap(be.contiguous(be.permute(coords, (1, 0))), be)   # (count, ndim)

    def roll(self, shifts, dims=None):
        """Shift elements along dims, wrapping around (torch.roll); with dims None, over the
        flattened tensor, shape kept. Differentiable."""
        shifts = shifts if isinstance(shifts, (tuple, list)) else (shifts,)
        shifts = tuple(_check_int_arg("roll", "shifts", s) for s in shifts)
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
        return indexing.Index.apply(self, index).clone()    # (negative steps: not via [])

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
            raise RuntimeError(f"Trying to create tensor with negative dimension {bad}: {final} "
                               f"(repeats {list(sizes)})")
        _check_numel(final, self._data.dtype.itemsize)
        pairs = [v for n in shape for v in (1, n)]                    # (1, n0, 1, n1, ...)
        wide = [v for r, n in zip(sizes, shape) for v in (r, n)]      # (r0, n0, r1, n1, ...)
        return self.reshape(*pairs).expand(*wide).reshape(*final)

    def mm(self, mat2):
        return mm(self, mat2)

    def bmm(self, mat2):
        return bmm(self, mat2)
