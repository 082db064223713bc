"""Function: one differentiable op, its forward and backward; Context: what backward needs.

Sits below `tensor.py` (which imports this module, never the reverse) and above backend/.
`Function.apply` is where the graph is recorded: it unwraps tensors to backend arrays, runs
`forward`, and (when grad mode is on and an input requires grad) links the output tensor to
a Context holding the inputs and whatever the forward saved. While an instrument is on (the
backward trace, anomaly mode, the profiler: autograd/instruments.py), forward runs through
`instruments.run_forward`, which times it and shows it to them; otherwise it costs one test.

A tensor, to this layer, is any object whose type has `_wrap(array, backend)` (a new tensor
around a backend array) and whose instances carry `_data` (the array), `_backend`,
`_requires_grad` and `_ctx`: tinygradattn.Tensor is one. Outputs are made by the first tensor
argument's `_wrap`, so autograd never imports the Tensor class.
"""
from . import instruments
from .grad_mode import is_grad_enabled

# Argument types are sorted on first sight. A tensor type adds the class of its MRO that
# defines `_wrap` (tinygradattn.Tensor) to _TENSOR_CLASSES, so later tensors, subclasses
# included, pass one isinstance test, as fast as a test against an imported Tensor (a set of
# types or a dict measured slower on apply's hot path); other types go to _OTHER_TYPES.
_TENSOR_CLASSES = ()
_OTHER_TYPES = set()


def _learn_type(tp):
    """Sort tp as a tensor type (True) or not (False), remembering the answer."""
    global _TENSOR_CLASSES
    root = next((c for c in tp.__mro__ if "_wrap" in vars(c)), None)
    if root is None or not callable(getattr(tp, "_wrap")) or not hasattr(tp, "_data"):
        _OTHER_TYPES.add(tp)
        return False
    if root not in _TENSOR_CLASSES:
        _TENSOR_CLASSES = _TENSOR_CLASSES + (root,)
    return True


def is_tensor(obj):
    """True when obj follows the tensor protocol above (a tinygradattn.Tensor or subclass)."""
    return isinstance(obj, _TENSOR_CLASSES) or \
        (type(obj) not in _OTHER_TYPES and _learn_type(type(obj)))


_ESSENTIAL = frozenset(("fn", "inputs", "backend", "needs_input_grad", "saved", "is_freed",
                        "is_recording", "output_backend", "versions"))


class Context:
    """Per-call state: `save_for_backward`, `saved_tensors`, `needs_input_grad`, `backend`.

    Any other attribute set in forward (a shape, an axis) is kept for backward too, and
    released with the saved arrays once backward has run.
    """

    # Defaults, read from the class until a call sets its own (one Context is built per op,
    # so __init__ sets only what differs from call to call).
    inputs = None                 # tuple: a Tensor requiring grad, else None (set once recorded)
    saved = ()
    is_freed = False
    output_backend = None         # set by a forward whose output lives on another device
                                  # (ToDevice)
    versions = ()                 # (counter, version at save, array, what) per saved array
                                  # that is an input or the output

    def __init__(self, fn, backend, needs_input_grad, is_recording):
        self.fn = fn                          # the Function subclass
        self.backend = backend                # the device's primitive set
        self.needs_input_grad = needs_input_grad
        self.is_recording = is_recording      # False under no_grad: nothing is kept

    def save_for_backward(self, *arrays):
        if self.is_recording:
            self.saved = arrays

    @property
    def saved_tensors(self):
        if self.is_freed:
            raise RuntimeError(
                f"Trying to backward through the graph a second time ({self.fn.__name__}): its "
                "saved arrays were freed after the first backward. Specify retain_graph=True "
                "in the first backward() call if you need to backward twice.")
        for counter, version, array, what in self.versions:
            if counter[0] != version:
                raise RuntimeError(
                    f"one of the variables needed for gradient computation has been modified "
                    f"by an inplace operation: [{array.dtype} {list(array.shape)}], {what} "
                    f"{self.fn.__name__}, is at version {counter[0]}; expected version "
                    f"{version} instead. Hint: compute it anew, or write out of place "
                    f"(y = y * 2, not y.mul_(2))")
        return self.saved

    def _record_versions(self, args, raw, out, result):
        """Note the version of every saved array that is one of the tensor arguments' or the
        output's storage: an in-place write into it before backward is an error then."""
        # (array, its tensor, how errors name it): the output first, then the tensor inputs;
        # built once per op, not once per saved array
        owners = [(out, result, "output 0 of")]
        owners += [(r, a, "an input of") for a, r in zip(args, raw)
                   if hasattr(a, "_version") and getattr(r, "shape", None) is not None]
        versions = []
        for array in self.saved:
            owner = self._owner(array, owners)
            if owner is not None:
                tensor, what = owner
                versions.append((tensor._version, tensor._version[0], array, what))
        self.versions = versions

    def _owner(self, array, owners):
        """(tensor, what) of the first owner whose array the saved array is; else of the first
        whose storage it shares (a view of an input or of the output: softmax saves y before
        moving its dim back: the same storage, the same counter); None if none is."""
        for candidate, tensor, what in owners:
            if array is candidate:
                return tensor, what
        if getattr(array, "shape", None) is None:
            return None
        for candidate, tensor, what in owners:
            if self.backend.same_storage(array, candidate):
                return tensor, what
        return None

    def release(self):
        """Drop saved arrays and attributes set in forward (after a backward pass)."""
        attrs = vars(self)
        for name in attrs.keys() - _ESSENTIAL:
            del attrs[name]
        self.saved = ()
        self.is_freed = True


def _lift_cpu_scalars(cls, args):
    """args with their 0-d cpu tensors moved to the one other device the tensors are on
    (torch lets a 0-d cpu tensor join an op on the GPU); RuntimeError naming the op and the
    devices when the tensors sit on two devices otherwise."""
    tensors = [a for a in args if is_tensor(a)]
    devices = sorted({t._backend.name for t in tensors})
    others = {t._backend for t in tensors if t._backend.name != "cpu" or t._data.ndim}
    if len(others) != 1 or "cpu" in {b.name for b in others}:
        raise RuntimeError(f"{cls.__name__}: expected all tensors on the same device, found "
                           f"{' and '.join(devices)}")
    target = others.pop()
    return [a.to(target.name) if is_tensor(a) and a._backend is not target else a
            for a in args]


class Function:
    """Base class of every op. Subclasses define static `forward` and `backward`.

    forward(ctx, *args) gets backend arrays in place of Tensors and returns one array;
    backward(ctx, dout) returns one gradient (or None) per forward argument.

    Example:
        >>> import tinygradattn as tga
        >>> class Square(tga.autograd.Function):
        ...     @staticmethod
        ...     def forward(ctx, x):
        ...         ctx.save_for_backward(x)
        ...         return x * x
        ...     @staticmethod
        ...     def backward(ctx, dout):
        ...         x, = ctx.saved_tensors
        ...         return 2 * x * dout            # fwd: y = x^2  =>  dx = 2 x dout
        >>> x = tga.tensor([3.0], requires_grad=True)
        >>> Square.apply(x).sum().backward()
        >>> x.grad.tolist()
        [6.0]
    """

    is_view = False      # True where forward may return a view of its first argument

    @staticmethod
    def forward(ctx, *args):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, dout):
        raise NotImplementedError

    @classmethod
    def apply(cls, *args):
        """Run forward on the tensors' arrays; returns a tensor (recorded when grad is on).

        Tensor arguments are unwrapped to backend arrays, anything else passes as is. The
        output is made by the first tensor argument (its type's `_wrap`); TypeError when
        there is none, RuntimeError when tensors sit on different devices.
        """
        backend = first = None
        raw, needs = [], []                      # one pass over args: this runs for every op
        for a in args:
            if isinstance(a, _TENSOR_CLASSES) or \
                    (type(a) not in _OTHER_TYPES and _learn_type(type(a))):
                if backend is None:
                    backend = a._backend
                    first = a
                elif a._backend is not backend:
                    return cls.apply(*_lift_cpu_scalars(cls, args))
                raw.append(a._data)
                needs.append(a._requires_grad)
            else:
                raw.append(a)
                needs.append(False)
        if backend is None:
            raise TypeError(f"{cls.__name__}.apply() needs at least one Tensor argument, got "
                            f"({', '.join(type(a).__name__ for a in args)})")
        is_recording = True in needs and is_grad_enabled()
        ctx = Context(cls, backend, tuple(needs), is_recording)
        if instruments.observers:                # an instrument is on: trace, anomaly, profiler
            out = instruments.run_forward(cls, ctx, raw)
        else:
            out = cls.forward(ctx, *raw)
        result = first._wrap(out, ctx.output_backend or backend)
        if cls.is_view and backend.same_storage(out, raw[0]):
            result._version = first._version     # a view: one storage, one version counter
        if not is_recording:                     # no_grad, or no input requires grad: done
            return result
        if ctx.saved:
            ctx._record_versions(args, raw, out, result)
        if out.dtype.kind == "f":
            # the graph keeps the inputs that take a gradient; None for the rest
            ctx.inputs = tuple([a if n else None for a, n in zip(args, needs)])
            result._requires_grad = True
            result._ctx = ctx
        return result
