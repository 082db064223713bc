"""In-place methods of Tensor: copy_, fill_, zero_ (the rules every in-place op follows), then
the in-place arithmetic (add_, ..., +=), random fills (normal_, uniform_), type_as, new_*
and sizes.

A mixin that tensor.py's Tensor inherits (the methods moved out of tensor.py as they were).
It never imports tensor.py: Tensors are made through `self._wrap` and recognised by
autograd's is_tensor.
"""
from .. import dtypes
from ..autograd.function import is_tensor
from ..autograd.grad_mode import is_grad_enabled, no_grad
from ..backend import get_backend
from ..tensor_args import (_KIND_RANK, _TORCH_NAMES, _broadcast_shape, _check_fill_value,
                           _check_tensor_arg, _size_arg)


class InPlaceMethods:
    __slots__ = ()     # no __dict__: Tensor's instances keep only Tensor's slots

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
    # Every in-place write passes here and bumps the storage's version counter (shared by
    # views and detach() aliases): backward refuses a saved tensor whose version moved
    # (autograd/function.py), as torch does. When a view joins the graph as above, the
    # tensor it views does not (torch's CopySlices).
    def _check_inplace(self, *operands):
        """RuntimeError where an in-place write is refused (see above); operands given here
        are refused too when they require grad (for writes that cannot join the graph).
        Otherwise counts the write in the version counter."""
        if not is_grad_enabled():
            self._version[0] += 1
            return
        if self._requires_grad:
            if self._ctx is None:
                raise RuntimeError("a leaf Variable that requires grad is being used in an "
                                   "in-place operation.")
            raise RuntimeError(
                f"in-place operation on a tensor that is part of the autograd graph (it requires "
                f"grad and has grad_fn={self._ctx.fn.__name__}Backward): tinygradattn does not "
                "record in-place ops on a tensor in the graph; use the out-of-place form "
                "(y = y + x instead of y.add_(x)), or run it under tga.no_grad()")
        for o in operands:
            if is_tensor(o) and o._requires_grad:
                raise RuntimeError(
                    "in-place write of a value that requires grad into a tensor that does not "
                    "is not recorded here (the gradient would be lost): use an out-of-place op "
                    "(torch.where, index_put, cat), or run it under tga.no_grad()")
        self._version[0] += 1

    def _inplace(self, name, compute, *operands):
        """self = compute(self), in place; compute gets self (or, when an operand requires
        grad and self joins the graph, a copy of it: no op may save self's storage, which is
        overwritten) and returns a Tensor."""
        self._check_inplace()
        if is_grad_enabled() and any(is_tensor(o) and o._requires_grad
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
        if src is None or isinstance(src, (str, bytes)):
            raise TypeError(f"copy_(): argument 'src' must be Tensor, not {type(src).__name__}")
        if is_tensor(src):
            value = src.to(self.device)._data
        else:
            value = self._backend.asarray(src, self._data.dtype)
        if tuple(value.shape) != self.shape and \
                _broadcast_shape("copy_", self.shape, tuple(value.shape)) != self.shape:
            raise RuntimeError(f"copy_: source of shape {tuple(value.shape)} does not broadcast "
                               f"to the destination's shape {tuple(self.shape)}")
        if is_tensor(src) and src._requires_grad and is_grad_enabled():
            return self._become(src.to(self.device, self.dtype).expand(*self.shape).clone())
        self._backend.assign(self._data, value)
        return self

    def fill_(self, value):
        """Set every element to value (a number or a 0-d Tensor) in place
        (torch.Tensor.fill_); rules as copy_."""
        self._check_inplace()
        _check_fill_value("fill_", "value", value)
        if is_tensor(value):
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
        if not std >= 0:          # NaN too
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
            return self._wrap(draw(self.shape, self._data.dtype), self._backend)
        return self._wrap(draw(self.shape, self._data.dtype,
                                 generator=generator._for(self.device)), self._backend)

    def type_as(self, other):
        """This tensor with other's dtype and device (torch.Tensor.type_as)."""
        _check_tensor_arg("type_as", "other", other)
        return self.to(other.device, other.dtype)

    def _new(self, make, size, dtype, device, requires_grad):
        backend = self._backend if device is None else get_backend(device)
        np_dtype = (self.dtype if dtype is None else dtypes.as_dtype(dtype)).np
        t = self._wrap(make(backend, _size_arg(size, np_dtype.itemsize), np_dtype), backend)
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
        _check_fill_value("new_full", "fill_value", fill_value)
        return self._new(lambda be, s, dt: be.full(s, fill_value, dt), (size,), dtype, device,
                         requires_grad)

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
