"""Tensors a fused op took out of the gradient's path, so that a hook added later cannot
silently miss part of their gradient.

When a fused op reads its inputs through a chain of views or intermediates (ops/patterns.py:
the q, k, v that `split` + `view` + `transpose` cut out of one packed projection, or the
output of a GELU that a Linear reads) it records one node on the chain's root and sends the
gradient there directly; the tensors in between never see that part of it. Their gradient would still be right for everything that sums into the root,
but a `retain_grad()` or `register_hook()` on one of them, called after the fused op took
it, would see only the other consumers' share. That is refused here, with the way out: ask
for the hook before the fused call (a tensor with a hook is never folded), or turn the
recognition off (`tga.nn.functional.set_fusion_enabled(False)`).

The set holds weak references keyed by id (a Tensor's == is elementwise, so it cannot go in a
WeakSet); an entry leaves with its tensor.
"""
import weakref

_folded = {}            # id(tensor) -> weakref of it


def fold(tensors):
    """Mark tensors as taken out of the gradient's path by a fused op."""
    for t in tensors:
        key = id(t)
        _folded[key] = weakref.ref(t, lambda _, key=key: _folded.pop(key, None))


def check_not_folded(tensor, what):
    """RuntimeError when a fused op folded tensor away and `what` (a hook) would miss part of
    its gradient."""
    ref = _folded.get(id(tensor))
    if ref is not None and ref() is tensor:
        raise RuntimeError(
            f"{what}: this tensor was read by a fused op (scaled_dot_product_attention over the "
            f"thirds of one packed projection, or a linear of a gelu output), whose gradient "
            f"goes around it; a hook added now would miss that part. "
            f"Call {what}() before passing the tensor to it, or turn the recognition off "
            f"with tinygradattn.nn.functional.set_fusion_enabled(False)")
