"""Shape methods of Tensor: reshape / view, flatten, permute, transpose, unsqueeze, squeeze,
expand, contiguous, split, chunk.

A mixin that tensor.py's Tensor inherits (the methods moved out of tensor.py as they were).
It never imports tensor.py: Tensors are made through `self._wrap` and recognised by
autograd's is_tensor.
"""
import math
import numbers

from ..ops import movement
from ..tensor_args import _check_dim, _check_tensor_arg, _shape_arg


class ShapeMethods:
    __slots__ = ()     # no __dict__: Tensor's instances keep only Tensor's slots

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

    view = reshape      # NOTE: copies where torch's view raises (the data loader relies on it)

    def flatten(self, start_dim=0, end_dim=-1):
        if self.ndim == 0:
            return self.reshape(1)
        s, e = _check_dim(start_dim, self.ndim), _check_dim(end_dim, self.ndim)
        if s > e:
            raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
        # the merged size, not -1: -1 cannot be inferred when another dim is 0
        return self.reshape(*self.shape[:s], math.prod(self.shape[s:e + 1]),
                            *self.shape[e + 1:])

    def permute(self, *dims):
        dims = tuple(_check_dim(d, self.ndim) for d in _shape_arg(dims))
        if sorted(dims) != list(range(self.ndim)):
            raise RuntimeError(f"permute: dims {dims} are not a permutation of "
                               f"{self.ndim} dims")
        if dims == tuple(range(self.ndim)):
            return self
        return movement.Permute.apply(self, dims)

    def transpose(self, dim0, dim1):
        d0, d1 = _check_dim(dim0, self.ndim), _check_dim(dim1, self.ndim)
        if d0 == d1:
            return self
        axes = list(range(self.ndim))
        axes[d0], axes[d1] = axes[d1], axes[d0]
        # a permutation by construction: straight to the op, without permute's checks
        return movement.Permute.apply(self, tuple(axes))

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
            if n < -1:
                raise RuntimeError(f"expand: the expanded size {n} at dimension {i} is "
                                   f"negative (only -1 keeps a size); sizes {list(sizes)}")
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
        _check_tensor_arg("expand_as", "other", other)
        return self.expand(*other.shape)

    def contiguous(self):
        """This tensor if it is contiguous already (torch returns self too), else a
        contiguous copy."""
        out = movement.Contiguous.apply(self)
        return self if out._data is self._data else out

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
