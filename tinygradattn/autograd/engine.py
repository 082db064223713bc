"""backward(): walk the graph from an output in reverse topological order, calling each
Function's backward and adding gradients up per tensor.

The order comes from an iterative depth-first search (no recursion: a chain of 100,000 ops
is fine). Inputs are visited in argument order, so gradients accumulate in a fixed order and
rounding is reproducible. Broadcasting is undone here, once, for every op. Instruments
(autograd/instruments.py) see each node's backward only when one is on.

Two extension points, torch's names, both free when unused:
- `register_post_accumulate_grad_hook(leaf, hook)`: hook(leaf) runs right after leaf.grad
  got this pass's gradient. While any is registered, each leaf's gradient is accumulated as
  soon as it is final (after the last node that feeds it) instead of at the end of the pass,
  so a hook sees it while the rest of backward still runs (DistributedDataParallel starts
  its gradient Allreduce there). The values are the same either way.
- `queue_callback(fn)`: fn() runs once the outermost backward pass in progress has finished.
"""
import weakref

from . import instruments

# id -> weakref of each leaf with post-accumulate hooks. The hooks themselves live on the leaf
# (its _post_accumulate_hooks slot), so a hook that refers to its leaf dies with it.
_hooked_leaves = {}
_queued_callbacks = []        # run at the end of the outermost backward
_depth = [0]                  # run_backward calls in progress (nested: activation checkpointing)


class HookHandle:
    """remove() unregisters the hook (torch.utils.hooks.RemovableHandle's shape)."""

    def __init__(self, leaf, hook):
        self._leaf, self._hook = weakref.ref(leaf), hook

    def remove(self):
        leaf = self._leaf()
        if leaf is None:
            return
        hooks = tuple(h for h in _post_hooks_of(leaf) if h is not self._hook)
        leaf._post_accumulate_hooks = hooks
        if not hooks:
            _hooked_leaves.pop(id(leaf), None)


def _post_hooks_of(leaf):
    return getattr(leaf, "_post_accumulate_hooks", ())     # the slot is unset until a hook


def register_post_accumulate_grad_hook(leaf, hook):
    """hook(leaf) after each accumulation of a gradient into leaf.grad; a HookHandle."""
    leaf._post_accumulate_hooks = _post_hooks_of(leaf) + (hook,)
    key = id(leaf)
    _hooked_leaves[key] = weakref.ref(leaf, lambda _, key=key, table=_hooked_leaves:
                                      table.pop(key, None))
    return HookHandle(leaf, hook)


def queue_callback(fn):
    """Run fn() when the backward pass in progress (the outermost one) ends."""
    if not _depth[0]:
        raise RuntimeError("queue_callback: no backward pass is running")
    _queued_callbacks.append(fn)


def _topological_order(root):
    """Non-leaf tensors reachable from root, each before every tensor it was computed from."""
    order, visited = [], set()
    stack = [(root, False)]
    while stack:
        t, children_done = stack.pop()
        if children_done:
            order.append(t)          # post-order: after everything t depends on
            continue
        if id(t) in visited:         # marked when expanded, not when pushed: a tensor pushed
            continue                 # twice is expanded once, at its deepest point
        visited.add(id(t))
        stack.append((t, True))
        for inp in reversed(t._ctx.inputs or ()):
            if inp is not None and inp._ctx is not None and id(inp) not in visited:
                stack.append((inp, False))
    order.reverse()                  # root first
    return order


def _accumulate_leaf(t, g):
    """Hooks see the total gradient of this backward pass, then it is added into .grad.

    The caller hands over its reference to g. A fresh g (a kernel's output, a sum) becomes
    .grad as it is; one that anything else can still see (the same array returned for two
    inputs, a view of dout, one a hook kept) is copied: .grad is the user's to modify.
    """
    for hook in t._hooks:
        g = _run_hook(hook, t, g)
    if t.grad is None:
        box = [g]                    # take_or_copy pops it: then nothing here refers to g
        del g
        t.grad = t._wrap(t._backend.take_or_copy(box), t._backend)
    else:
        t.grad._data = t._backend.add(t.grad._data, g)
    if _hooked_leaves:
        for hook in _post_hooks_of(t):
            hook(t)


def _run_hook(hook, t, g):
    new = hook(t._wrap(g, t._backend))
    if new is None:
        return g
    if tuple(new.shape) != tuple(t.shape):
        raise RuntimeError(f"hook returned a gradient of shape {tuple(new.shape)}, expected "
                           f"{tuple(t.shape)}")
    return new._data


def run_backward(root, dout, retain_graph):
    """Backpropagate dout (an array shaped like root) to every leaf that requires grad."""
    _depth[0] += 1
    try:
        if root._ctx is None:        # a leaf: its gradient is dout itself
            _accumulate_leaf(root, dout)
        else:
            _backward_pass(root, dout, retain_graph)
    except BaseException:
        if _depth[0] == 1:           # the pass failed: its callbacks must not run at the
            _queued_callbacks.clear()   # end of the next one
        raise
    finally:
        _depth[0] -= 1
    if not _depth[0] and _queued_callbacks:
        callbacks = _queued_callbacks[:]
        _queued_callbacks.clear()
        for fn in callbacks:
            fn()


def _leaf_flush_points(order):
    """{index in order: [ids of the leaves whose gradient is final after that node]}."""
    last = {}
    for i, t in enumerate(order):
        for inp in t._ctx.inputs:
            if inp is not None and inp._ctx is None and inp._requires_grad:
                last[id(inp)] = i
    points = {}
    for key, i in last.items():
        points.setdefault(i, []).append(key)
    return points


def _backward_pass(root, dout, retain_graph):
    grads = {id(root): dout}
    leaves = {}                      # id -> leaf tensor, in the order gradients reach them
    order = _topological_order(root)
    flush_points = _leaf_flush_points(order) if _hooked_leaves else None
    for i, t in enumerate(order):
        g = grads.pop(id(t), None)
        if g is None:                # no path carried a gradient here
            continue
        for hook in t._hooks:
            g = _run_hook(hook, t, g)
        if t._retains_grad:
            t.grad = t._wrap(g, t._backend)
        ctx = t._ctx
        if ctx.is_freed:
            ctx.saved_tensors          # raises the retain_graph error
        if instruments.observers:    # an instrument is on: trace, anomaly, profiler
            in_grads = instruments.run_backward(ctx, g)
        else:
            in_grads = ctx.fn.backward(ctx, g)
        if not isinstance(in_grads, tuple):
            in_grads = (in_grads,)
        if len(in_grads) < len(ctx.inputs):
            raise RuntimeError(f"{ctx.fn.__name__}.backward returned {len(in_grads)} "
                               f"gradients for {len(ctx.inputs)} inputs")
        backend = ctx.backend
        for inp, ig in zip(ctx.inputs, in_grads):
            if inp is None or ig is None or not inp._requires_grad:
                continue
            data = inp._data
            if ig.shape != data.shape:
                ig = backend.sum_to_shape(ig, data.shape)        # undo broadcasting
            if ig.dtype is not data.dtype:                       # dtypes are interned: `is`
                ig = backend.astype(ig, data.dtype)              # is the cheap test here
            if inp._ctx is None:
                leaves.setdefault(id(inp), inp)
            prev = grads.pop(id(inp), None)
            if prev is None:
                grads[id(inp)] = ig
            else:                    # in place when nothing else refers to the running sum
                box, prev = [prev], None
                grads[id(inp)] = backend.accumulate(box, ig)
        if not retain_graph:
            ctx.release()
        if flush_points and i in flush_points:   # some leaves' gradients are final: hand
            in_grads = ig = None                 # them over now (post-accumulate hooks)
            for key in flush_points[i]:
                leaf = leaves.pop(key, None)
                if leaf is not None:
                    _accumulate_leaf(leaf, grads.pop(key))
    g = in_grads = ig = None         # no stray references: leaf gradients may be taken as is
    for key, leaf in leaves.items():
        _accumulate_leaf(leaf, grads.pop(key))
