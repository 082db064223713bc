"""Activation checkpointing (torch.utils.checkpoint): trade compute for memory.

checkpoint(function, *args) runs function without recording its graph, so none of its
intermediate activations stay alive until backward; backward runs it again, with grad on
and the random number generators set back to where they were (dropout draws the same
masks), and backpropagates through that recomputation. A training step then keeps one
tensor per checkpointed block instead of the block's activations, for about one more
forward pass of compute.

The autograd node is autograd/checkpoint.py's Recompute; this module prepares the call:
argument checks and torch's warnings, the RNG state, multiple outputs.
"""
import warnings

from ..autograd.checkpoint import Recompute
from ..autograd.grad_mode import enable_grad, is_grad_enabled, no_grad
from ..creation import get_rng_state, set_rng_state, tensor
from ..tensor import Tensor, cat

__all__ = ["checkpoint", "checkpoint_sequential"]

_NO_USE_REENTRANT = (
    "torch.utils.checkpoint: the use_reentrant parameter should be passed explicitly. "
    "use_reentrant=False is recommended, but if you need to preserve the current default "
    "behavior, you can pass use_reentrant=True. Refer to docs for more details on the "
    "differences between the two variants.")


def checkpoint(function, *args, use_reentrant=None, preserve_rng_state=True, **kwargs):
    """function(*args, **kwargs), its activations recomputed in backward instead of kept
    (torch.utils.checkpoint.checkpoint).

    Args:
        function: a callable (a Module, a block's forward) returning a Tensor, or a tuple /
            list whose tensors are outputs (float tensors of one dtype are differentiable
            outputs; anything else passes through as the first run made it).
        *args: its positional arguments; the tensors among them (and among kwargs' values)
            are kept for backward and get their gradients.
        use_reentrant: as torch. None warns, as torch does, and means True.
            True: kwargs are refused (ValueError) and, when no tensor argument requires
            grad, a warning says gradients will be None (the output does not require
            grad, so parameters used inside get none). False: kwargs pass to function, and
            the node is recorded whenever grad mode is on, so parameters used inside get
            their gradients even when no argument requires grad.
            NOTE: both run the same recompute-in-backward node (torch's reentrant design);
            with use_reentrant=False the output requires grad whenever grad mode is on.
        preserve_rng_state: restore every device's generator state before recomputing, so
            random ops (dropout) draw what the first run drew.

    Under no_grad, function just runs. Gradients equal those of the plain call (the same
    kernels run on the same values; a parameter also used outside the checkpoint may sum
    its parts in another order).

        >>> import tinygradattn as tga
        >>> from tinygradattn.utils.checkpoint import checkpoint
        >>> lin = tga.nn.Linear(3, 3)
        >>> x = tga.ones(2, 3, requires_grad=True)
        >>> checkpoint(lin, x, use_reentrant=False).sum().backward()
        >>> tuple(x.grad.shape), tuple(lin.weight.grad.shape)
        ((2, 3), (3, 3))
    """
    if use_reentrant is None:
        warnings.warn(_NO_USE_REENTRANT, stacklevel=2)
        use_reentrant = True
    if kwargs and use_reentrant:
        raise ValueError("Unexpected keyword arguments: " + ",".join(kwargs))
    if not callable(function):
        raise TypeError(f"checkpoint: function must be callable, got {type(function).__name__}")
    if not is_grad_enabled():
        return function(*args, **kwargs)
    plan = _Plan(function, args, kwargs, preserve_rng_state)
    if use_reentrant and not any(t.requires_grad for t in plan.tensors if t is not None):
        warnings.warn("None of the inputs have requires_grad=True. Gradients will be None",
                      stacklevel=2)
    anchor = () if use_reentrant else (tensor(0.0, requires_grad=True),)
    flat = Recompute.apply(plan, *plan.tensors, *anchor)
    return plan.unflatten(flat)


class _Plan:
    """How Recompute runs function: the arguments with tensors in known slots, the RNG
    state at the first call, and how the outputs pack into one flat tensor and back."""

    def __init__(self, function, args, kwargs, preserve_rng_state):
        self.function, self.args, self.kwargs = function, args, kwargs
        # the tensors: positional arguments, then keyword arguments' values (not inside
        # containers: a tensor in a list passes as is, and gets no gradient, as in torch's
        # reentrant checkpoint)
        self.names = list(kwargs)
        self.tensors = [a if isinstance(a, Tensor) else None
                        for a in (*args, *kwargs.values())]
        self.rng_state = get_rng_state() if preserve_rng_state else None
        self.layout = None                  # set by run(): see _pack

    def run(self):
        """The first call, with grad off: the outputs packed into one tensor."""
        with no_grad():
            out = self.function(*self.args, **self.kwargs)
        self.first_out = out
        return self._pack(out)

    def rerun(self, inputs):
        """The call again with grad on, on inputs in the tensors' slots and the generators
        as they were at the first call (then put back as they are now)."""
        values = [a if t is None else t
                  for a, t in zip((*self.args, *self.kwargs.values()), inputs)]
        n_args = len(self.args)
        args, kwargs = values[:n_args], dict(zip(self.names, values[n_args:]))
        now = get_rng_state() if self.rng_state is not None else None
        try:
            if now is not None:
                set_rng_state(self.rng_state)
            with enable_grad():
                return self._pack(self.function(*args, **kwargs))
        finally:
            if now is not None:
                set_rng_state(now)

    def _pack(self, out):
        """One tensor for Recompute's output: out itself, or the flattened differentiable
        tensors of a tuple / list concatenated (layout: (index, shape) of each)."""
        if isinstance(out, Tensor):
            self.layout = "tensor"
            return out
        if not isinstance(out, (tuple, list)):
            raise TypeError(f"checkpoint: function must return a Tensor or a tuple / list of "
                            f"them, got {type(out).__name__}")
        parts = [(i, o) for i, o in enumerate(out)
                 if isinstance(o, Tensor) and o.is_floating_point()]
        if not parts:
            raise TypeError("checkpoint: function returned no floating-point Tensor")
        if len({o.dtype for _, o in parts}) > 1:
            raise TypeError(f"checkpoint: the float outputs must share one dtype, got "
                            f"{sorted({o.dtype.name for _, o in parts})}")
        self.layout = [(i, tuple(o.shape)) for i, o in parts]
        return cat([o.reshape(-1) for _, o in parts])                     # (sum of numels,)

    def unflatten(self, flat):
        """Recompute's output back in function's output structure."""
        if self.layout == "tensor":
            self.first_out = None
            return flat
        out, offset = list(self.first_out), 0
        for i, shape in self.layout:
            n = _numel(shape)
            out[i] = flat[offset:offset + n].view(shape)
            offset += n
        kind, self.first_out = type(self.first_out), None      # kept no longer than needed
        return tuple(out) if kind is tuple else out


def _numel(shape):
    n = 1
    for s in shape:
        n *= s
    return n


def checkpoint_sequential(functions, segments, input, use_reentrant=None, **kwargs):
    """Run functions (a Sequential or a list of modules / callables) in `segments` chunks,
    each but the last checkpointed (torch.utils.checkpoint.checkpoint_sequential).

        >>> import tinygradattn as tga
        >>> from tinygradattn.utils.checkpoint import checkpoint_sequential
        >>> net = tga.nn.Sequential(tga.nn.Linear(4, 4), tga.nn.GELU(), tga.nn.Linear(4, 4))
        >>> x = tga.ones(2, 4, requires_grad=True)
        >>> y = checkpoint_sequential(net, 2, x, use_reentrant=False)
        >>> y.sum().backward(); tuple(x.grad.shape)
        (2, 4)
    """
    if use_reentrant is None:
        warnings.warn(_NO_USE_REENTRANT, stacklevel=2)
        use_reentrant = True
    preserve = kwargs.pop("preserve_rng_state", True)
    if kwargs:
        raise ValueError("Unexpected keyword arguments: " + ",".join(kwargs))
    if hasattr(functions, "children") and not isinstance(functions, (list, tuple)):
        functions = list(functions.children())
    functions = list(functions)
    if isinstance(segments, bool) or not isinstance(segments, int) or segments < 1:
        raise ValueError(f"checkpoint_sequential: segments must be a positive int, got "
                         f"{segments!r}")
    size = max(len(functions) // segments, 1)
    end = -1
    for start in range(0, size * (segments - 1), size):
        end = start + size - 1
        input = checkpoint(_run_range(functions, start, end), input,
                           use_reentrant=use_reentrant, preserve_rng_state=preserve)
    return _run_range(functions, end + 1, len(functions) - 1)(input)


def _run_range(functions, start, end):
    """A callable running functions[start..end] (inclusive) one after the other."""
    def forward(x):
        for j in range(start, end + 1):
            x = functions[j](x)
        return x
    return forward
