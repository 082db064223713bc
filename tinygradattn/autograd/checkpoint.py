"""Recompute: the autograd node behind activation checkpointing (tga.utils.checkpoint).

Its forward runs a function with grad off, so none of the function's intermediate arrays are
kept: the node saves only the function's tensor arguments. Its backward runs the function
again with grad on, from detached copies of those arguments, and backpropagates the incoming
gradient through that fresh sub-graph with the same engine (run_backward is reentrant: all
its state is local). Parameters used inside are leaves of the sub-graph, so their .grad
accumulates there; the arguments' gradients are read off the detached copies and returned
as the node's input gradients. This is torch's use_reentrant=True design.

What runs the function (arguments, RNG state, grad mode) is a `plan` from the caller (see
utils/checkpoint.py); this module only links the node and drives the inner backward.
"""
from .engine import run_backward
from .function import Function


class Recompute(Function):
    """out = plan.run() with grad off; backward recomputes through plan.rerun().

    apply(plan, *plan.tensors[, anchor]). plan.tensors: the function's tensor arguments in
    order (None in a slot stands for no tensor); plan.run() -> a tensor; plan.rerun(inputs)
    -> a tensor computed with grad on from `inputs`, detached copies of plan.tensors. The
    tensors are the node's inputs: their arrays are saved, so an in-place write into one
    between forward and backward raises the version-counter error in backward. An optional
    last `anchor`, a 0-d tensor that requires grad, records the node even when no argument
    requires grad (torch's use_reentrant=False gives parameters used inside their gradient
    then); it gets no gradient.
    """

    @staticmethod
    def forward(ctx, plan, *arrays):
        out = plan.run()
        ctx.plan = plan
        n_args = len(plan.tensors)              # the anchor, after them, is not kept
        ctx.save_for_backward(*[a for a in arrays[:n_args] if a is not None])
        ctx.output_backend = out._backend       # the anchor tensor may sit on the cpu
        return out._data

    @staticmethod
    def backward(ctx, dout):
        ctx.saved_tensors                       # raises when an input was written in place
        plan = ctx.plan
        inputs = [None if t is None else _detached_like(t) for t in plan.tensors]
        out = plan.rerun(inputs)
        if out._requires_grad:                  # else nothing inside takes a gradient
            run_backward(out, dout, retain_graph=False)
        grads = [None if t is None or t.grad is None else t.grad._data for t in inputs]
        return (None, *grads, None)             # None for the plan, and for an anchor


def _detached_like(t):
    """A leaf on t's storage that requires grad when t does."""
    d = t.detach()
    if t._requires_grad:
        d.requires_grad_(True)
    return d

