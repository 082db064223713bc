"""Instruments: observers that watch ops run (backward trace, anomaly mode, the profiler).

The one mechanism the three share. `observers` is a tuple of the active observers, empty
when no instrument is on. `Function.apply` and the backward engine each make one test per op,

    if instruments.observers:
        out = instruments.run_forward(cls, ctx, raw)      # else: cls.forward(ctx, *raw)

so with every instrument off nothing below runs. When the tuple is not empty, the op runs
here: it is timed, and each observer is called with one `OpEvent` after it ran (an observer
may raise: anomaly mode does, and the op's result is then never used).

An observer is any callable taking an OpEvent; `attach` adds one, `detach` removes it. The
tuple is replaced, never changed in place, so an op in flight keeps the tuple it started with.
"""
import os
import sys
import time

observers = ()                        # the active observers, in the order they were attached

PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))   # tinygradattn/


class OpEvent:
    """One op run, as observers see it.

    phase: "forward" or "backward". fn: the Function subclass. ctx: its Context.
    inputs: the arrays in (forward: the arguments, non-arrays as passed; backward: (dout,)).
    outputs: the arrays out (forward: (out,); backward: one gradient or None per input).
    start_ns, end_ns: time.perf_counter_ns() around the op's forward or backward alone.
    """
    __slots__ = ("phase", "fn", "ctx", "inputs", "outputs", "start_ns", "end_ns")

    def __init__(self, phase, fn, ctx, inputs, outputs, start_ns, end_ns):
        self.phase, self.fn, self.ctx = phase, fn, ctx
        self.inputs, self.outputs = inputs, outputs
        self.start_ns, self.end_ns = start_ns, end_ns

    @property
    def name(self):
        """The op's name: the Function's ('Softmax'), 'SoftmaxBackward' for its backward."""
        return self.fn.__name__ + ("Backward" if self.phase == "backward" else "")


def attach(observer):
    """Start calling observer(event) after every op."""
    global observers
    observers = observers + (observer,)


def detach(observer):
    """Stop calling observer (no error when it is not attached)."""
    global observers
    observers = tuple(o for o in observers if o is not observer)


def run_forward(cls, ctx, raw):
    """cls.forward(ctx, *raw), timed and shown to every observer; returns its array."""
    watching = observers
    start = time.perf_counter_ns()
    out = cls.forward(ctx, *raw)
    end = time.perf_counter_ns()
    event = OpEvent("forward", cls, ctx, tuple(raw), (out,), start, end)
    for observer in watching:
        observer(event)
    return out


def run_backward(ctx, dout):
    """ctx.fn.backward(ctx, dout), timed and shown to every observer; returns its result.
    When it raises, each observer with a `backward_failed(ctx, error)` method hears of it
    first (anomaly mode names the forward line), then the error goes on."""
    watching = observers
    start = time.perf_counter_ns()
    try:
        grads = ctx.fn.backward(ctx, dout)
    except Exception as error:
        for observer in watching:
            if hasattr(observer, "backward_failed"):
                observer.backward_failed(ctx, error)
        raise
    end = time.perf_counter_ns()
    event = OpEvent("backward", ctx.fn, ctx, (dout,),
                    grads if isinstance(grads, tuple) else (grads,), start, end)
    for observer in watching:
        observer(event)
    return grads


def array_shape(a):
    """a's shape as a tuple when a is an array, else None (a Python number, an axis)."""
    shape = getattr(a, "shape", None)
    return tuple(shape) if shape is not None else None


def bytes_made(event):
    """Bytes of the arrays the op made: its output (forward) or the gradients of the inputs
    that require one (backward), less any that is one of its inputs (a backward passing dout
    through unchanged, a forward returning its argument) or, for a view op, shares the first
    input's storage."""
    total = 0
    outputs = event.outputs
    if event.phase == "backward":          # the gradients the engine uses: inputs needing one
        outputs = [g for g, n in zip(outputs, event.ctx.needs_input_grad) if n]
    for out in outputs:
        if out is None or not hasattr(out, "nbytes") or any(out is a for a in event.inputs):
            continue
        if event.phase == "forward" and event.fn.is_view and \
                event.ctx.backend.same_storage(out, event.inputs[0]):
            continue
        total += int(out.nbytes)
    return total


class Table(str):
    """The text of an instrument's table: a str that shows as itself at a prompt (no quotes,
    real newlines), so `t.table()` alone prints in a REPL or a notebook."""

    def __repr__(self):
        return str(self)


# ---- the user's stack ---------------------------------------------------------------------
_is_user_file = {}                    # co_filename -> True when outside tinygradattn/


def user_stack():
    """The calling frames outside the tinygradattn package, outermost first, as
    (filename, line number, function name) tuples: where the user's code made this op."""
    frames = []
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        is_user = _is_user_file.get(filename)
        if is_user is None:
            path = os.path.abspath(filename)
            is_user = _is_user_file[filename] = not path.startswith(PACKAGE_DIR + os.sep)
        if is_user:
            frames.append((filename, frame.f_lineno, frame.f_code.co_name))
        frame = frame.f_back
    frames.reverse()
    return tuple(frames)


def format_stack(frames):
    """A traceback-like text of user_stack()'s frames, with each source line."""
    import linecache
    lines = []
    for filename, lineno, name in frames:
        lines.append(f'  File "{filename}", line {lineno}, in {name}')
        source = linecache.getline(filename, lineno).strip()
        if source:
            lines.append(f"    {source}")
    return "\n".join(lines)
