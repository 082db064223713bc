"""The backward trace: `with tga.autograd.trace() as t: loss.backward()` records every node the
engine visits, in the order it ran; `print(t.table())` shows the backward pass as a list.

An observer (autograd/instruments.py) that keeps backward events only. Each record holds the
node's name ('MatMulBackward': the Function's name + 'Backward'), the incoming gradient's
shape, the shape of the gradient it produced for each forward argument that requires grad
(None where it made none), the time its backward took and the bytes of gradient it made (a
gradient that is dout itself, passed through, makes none).
"""
from dataclasses import dataclass

from . import instruments


@dataclass(frozen=True)
class BackwardRecord:
    """One node of the backward pass, as it ran."""
    index: int                # 0, 1, ...: the order the engine ran the nodes in
    name: str                 # 'MatMulBackward'
    op: str                   # 'MatMul': the Function
    grad_in: tuple            # the shape of the gradient that came in (dout)
    grads_out: tuple          # one per forward argument that requires grad, in argument
                              # order: its gradient's shape (None when backward made none)
    time_s: float             # seconds spent in the node's backward
    nbytes: int               # bytes of the gradients it made

    @property
    def shapes(self):
        """(grad_in, grads_out): the part of a record a test can compare exactly."""
        return self.grad_in, self.grads_out


class trace:
    """Context manager recording the backward pass (no PyTorch counterpart).

    `events` is the list of BackwardRecord in the order the nodes ran; `table()` the same as
    readable text. Several backward calls inside one block append to one list.

    Example:
        >>> import tinygradattn as tga
        >>> x = tga.ones(4, 3)
        >>> w = tga.ones(3, 5, requires_grad=True)
        >>> with tga.autograd.trace() as t:
        ...     (x @ w).relu().sum().backward()
        >>> [(e.name, e.grad_in, e.grads_out) for e in t.events]
        [('SumBackward', (), ((4, 5),)), ('ReluBackward', (4, 5), ((4, 5),)), \
('MatMulBackward', (4, 5), ((3, 5),))]
    """

    def __init__(self):
        self.events = []

    def __enter__(self):
        instruments.attach(self)
        return self

    def __exit__(self, *exc):
        instruments.detach(self)
        return False

    def __call__(self, event):
        """The observer: note one node's backward."""
        if event.phase != "backward":
            return
        needs = event.ctx.needs_input_grad          # one flag per forward argument
        grads = tuple(instruments.array_shape(g) if g is not None else None
                      for g, n in zip(event.outputs, needs) if n)
        self.events.append(BackwardRecord(
            index=len(self.events), name=event.name, op=event.fn.__name__,
            grad_in=instruments.array_shape(event.inputs[0]), grads_out=grads,
            time_s=(event.end_ns - event.start_ns) * 1e-9,
            nbytes=instruments.bytes_made(event)))

    def table(self):
        """The backward pass as text: one line per node, in the order it ran, then totals."""
        header = ("#", "node", "grad in", "grads out", "time (us)", "grad bytes")
        rows = [(str(e.index), e.name, _shape_text(e.grad_in),
                 ", ".join(_shape_text(s) for s in e.grads_out),
                 f"{e.time_s * 1e6:.1f}", f"{e.nbytes:,}") for e in self.events]
        widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]
        right = (True, False, False, False, True, True)

        def line(cells):
            return "  ".join(c.rjust(w) if r else c.ljust(w)
                             for c, w, r in zip(cells, widths, right)).rstrip()
        rule = "  ".join("-" * w for w in widths)
        total_time = sum(e.time_s for e in self.events) * 1e6
        total_bytes = sum(e.nbytes for e in self.events)
        lines = [line(header), rule] + [line(r) for r in rows] + [
            rule, f"{len(self.events)} nodes, {total_time:.1f} us, {total_bytes:,} bytes of "
                  f"gradient"]
        return instruments.Table("\n".join(lines))


def _shape_text(shape):
    """(4, 5) -> '(4, 5)'; None (no gradient made) -> '-'."""
    if shape is None:
        return "-"
    return "(" + ", ".join(str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"
