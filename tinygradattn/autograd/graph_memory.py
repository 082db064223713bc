"""What a recorded graph keeps alive for backward: its nodes between some tensors, the
storages (allocations) their saved arrays lie in, and the tensors the nodes made (a node's
inputs hold them).

An instrument reads this after a forward pass (tga.utils.memory.activation_report); nothing
here runs during forward or backward. A storage is named by the backend's `storage`
primitive, (key, n_bytes) of the allocation an array's memory lies in, so a view and its
base, or two views of one buffer, count once.
"""
from .function import _ESSENTIAL


def claim_nodes(outputs, stop_ids, claimed, since=0):
    """The nodes (Contexts) recorded between `outputs` and the tensors named in stop_ids that
    no one has claimed yet.

    Walks back from each tensor in outputs through the nodes' inputs; stops at leaves and at
    a tensor whose id is in stop_ids (a module's arguments). `claimed` maps the id of each
    node claimed so far to its rank (len(claimed) when it was claimed) and is updated here:
    a node ranked `since` or later (claimed by a module called inside this one) is walked
    through, not claimed again; one ranked before `since` ends the walk there. Returns
    (tensor, node) pairs, the newly claimed nodes with the tensor each made, outputs' side
    first. Every such tensor stays alive until backward: the node that consumes it holds it
    in its inputs (or it is one of the outputs).
    """
    found, seen = [], set()
    stack = [t for t in outputs if t is not None]
    while stack:
        t = stack.pop()
        ctx = t._ctx
        if ctx is None or id(t) in stop_ids or id(ctx) in seen:
            continue
        seen.add(id(ctx))
        rank = claimed.get(id(ctx))
        if rank is None:
            claimed[id(ctx)] = len(claimed)
            found.append((t, ctx))
        elif rank < since:
            continue
        stack.extend(inp for inp in (ctx.inputs or ()) if inp is not None)
    return found


def saved_storages(ctx):
    """[(key, n_bytes)] of the storages of the arrays ctx keeps for backward: those saved
    (inside a saved tuple too: an op may save a statistic as several arrays) and those set
    as attributes in forward (an index array, say)."""
    extra = [v for k, v in vars(ctx).items() if k not in _ESSENTIAL]
    found, stack = [], list(ctx.saved) + extra
    while stack:
        a = stack.pop()
        if isinstance(a, (tuple, list)):
            stack.extend(a)
        elif hasattr(a, "shape") and hasattr(a, "dtype"):
            found.append(ctx.backend.storage(a))
    return found


def tensor_storage(t):
    """(key, n_bytes) of the storage tensor t's data lies in."""
    return t._backend.storage(t._data)
