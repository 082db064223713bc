"""Activation memory per module: what one forward pass keeps alive for backward.

activation_report(model, *inputs, loss_fn=...) runs one forward with a pre-hook and a hook on
every submodule. When a module returns, the nodes recorded between its arguments and its
outputs that no submodule claimed are its own. What a node keeps alive until backward:
- the arrays it saved (Context.saved, and arrays set as attributes in forward): "saved";
- the tensor it made, which the next node holds among its inputs (our engine keeps input
  tensors, not only their shapes), when no node saved it: "kept".
Each storage (allocation) counts once: a saved one at the first module that claims a node
saving it (submodules before their parent, in call order), a kept one at the module that
made it. Parameters and buffers are not activations and are left out. The forward runs under
tracemalloc (numpy reports its allocations to it), so the report also gives what the forward
measurably kept and its peak, to set the count against.
"""
import gc
import tracemalloc
from collections import namedtuple

from ..autograd.graph_memory import claim_nodes, saved_storages, tensor_storage
from ..runtime import empty_cache
from ..tensor import Tensor

__all__ = ["ActivationReport", "ActivationRow", "activation_report", "LOSS_ROW"]

ActivationRow = namedtuple("ActivationRow", ["name", "type", "saved_bytes", "self_saved_bytes",
                                             "kept_bytes", "self_kept_bytes", "output_bytes",
                                             "calls"])
ActivationRow.__doc__ = """One module's row. saved_bytes / kept_bytes count its submodules'
too, self_saved_bytes / self_kept_bytes only the nodes of its own forward (see the module's
docstring); output_bytes: what it returned, summed over calls (already counted as saved or
kept when the graph holds it)."""

LOSS_ROW = "(loss_fn)"


class ActivationReport:
    """Rows per module (named_modules order; then LOSS_ROW when a loss_fn ran) and totals.

    total_saved_bytes, total_kept_bytes: the distinct storages saved for backward, and those
    the graph holds besides; total_bytes, their sum: the forward's activation memory.
    measured_kept_bytes / measured_peak_bytes: tracemalloc's traced memory after the forward
    (idle pooled buffers released) and its peak during it, both above the start; host
    (numpy) memory only.
    """

    def __init__(self, rows, kept, peak):
        self.rows = rows
        self.total_saved_bytes = sum(r.self_saved_bytes for r in rows)
        self.total_kept_bytes = sum(r.self_kept_bytes for r in rows)
        self.total_bytes = self.total_saved_bytes + self.total_kept_bytes
        self.measured_kept_bytes, self.measured_peak_bytes = kept, peak

    def __iter__(self):
        return iter(self.rows)

    def row(self, name):
        """The row of the module with this dotted name ('' is the model)."""
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(f"activation_report: no module named {name!r}")

    def table(self, max_depth=None):
        """The rows as text, sizes in KiB; max_depth limits the dotted-name depth shown."""
        head = (f"{'module':<34} {'type':<20} {'saved KiB':>10} {'self':>9} {'+kept KiB':>10} "
                f"{'self':>9} {'out KiB':>9}")
        lines = [head, "-" * len(head)]
        for r in self.rows:
            depth = 0 if r.name in ("", LOSS_ROW) else r.name.count(".") + 1
            if max_depth is not None and depth > max_depth:
                continue
            name = ("  " * depth + (r.name.rsplit(".", 1)[-1] or "(model)"))[:34]
            lines.append(f"{name:<34} {r.type[:20]:<20} {_kib(r.saved_bytes):>10} "
                         f"{_kib(r.self_saved_bytes):>9} {_kib(r.kept_bytes):>10} "
                         f"{_kib(r.self_kept_bytes):>9} {_kib(r.output_bytes):>9}")
        lines.append(f"activations: {_kib(self.total_bytes)} KiB = saved for backward "
                     f"{_kib(self.total_saved_bytes)} + kept by the graph "
                     f"{_kib(self.total_kept_bytes)}")
        lines.append(f"measured (tracemalloc): kept after forward "
                     f"{_kib(self.measured_kept_bytes)} KiB, forward peak "
                     f"{_kib(self.measured_peak_bytes)} KiB")
        return "\n".join(lines)

    def __str__(self):
        return self.table()


def _kib(n):
    return f"{n / 1024:.1f}"


def activation_report(model, *inputs, loss_fn=None, verbose=True, **kwargs):
    """Run model(*inputs, **kwargs) once (then loss_fn on its output when given) and report
    the activation memory each submodule keeps for backward.

    Args:
        model: a Module; its submodules get a row each (named_modules' dotted names).
        *inputs, **kwargs: the forward's arguments.
        loss_fn: output -> loss tensor (e.g. `lambda out: out[1]` for GPT's (logits, loss));
            nodes it records count in the LOSS_ROW row.
        verbose: print the table.

    Returns an ActivationReport. The graph is dropped on return (no backward is run).
    Ours: torch has no per-module activation report (its memory snapshot is per allocation).

        >>> import tinygradattn as tga
        >>> net = tga.nn.Sequential(tga.nn.Linear(8, 16), tga.nn.GELU(), tga.nn.Linear(16, 4))
        >>> x = tga.ones(2, 8)
        >>> rep = activation_report(net, x, verbose=False)
        >>> rep.row("1").saved_bytes      # GELU saves its derivative: (2, 16) float32
        128
    """
    claim = _Claimer(model)
    handles = []
    try:
        for _, module in model.named_modules():
            handles.append(module.register_forward_pre_hook(claim.enter, with_kwargs=True))
            handles.append(module.register_forward_hook(claim.leave, with_kwargs=True))
        kept, peak = _measured_forward(model, inputs, kwargs, loss_fn, claim)
    finally:
        for h in handles:
            h.remove()
    report = ActivationReport(claim.rows(model, with_loss=loss_fn is not None), kept, peak)
    if verbose:
        print(report.table())
    return report


def _measured_forward(model, inputs, kwargs, loss_fn, claim):
    """Run the forward (and loss_fn) under tracemalloc; -> (kept, peak) bytes above the
    start. The outputs are dropped before returning."""
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    try:
        gc.collect()
        empty_cache()
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        out = model(*inputs, **kwargs)
        if loss_fn is not None:
            out = loss_fn(out)
            claim.claim(LOSS_ROW, _tensors(out), (set(), len(claim.claimed)))
        claim.account()
        peak = tracemalloc.get_traced_memory()[1] - base
        empty_cache()
        kept = tracemalloc.get_traced_memory()[0] - base
        return kept, peak
    finally:
        if started:
            tracemalloc.stop()


class _Claimer:
    """The hooks' state: each call's arguments (where its walk back stops), the nodes
    claimed so far and by whom."""

    def __init__(self, model):
        self.names = {id(m): name for name, m in model.named_modules()}
        self.stack = []            # per module being run: (ids of its tensor arguments,
                                   # nodes claimed when it started)
        self.claimed = {}          # id of each node given to a module -> its rank
        self.found = []            # (module name, tensor, node) in claiming order
        self.saved = {}            # storage key -> (n_bytes, name of its first saver)
        self.kept = {}             # storage key -> (n_bytes, name of its maker), not saved
        self.outputs = {}          # module name -> bytes returned, summed over calls
        self.calls = {}            # module name -> number of calls
        self.params = {tensor_storage(t)[0] for t in model.parameters()}
        self.params |= {tensor_storage(t)[0] for t in model.buffers()}

    def enter(self, module, args, kwargs):
        self.stack.append(({id(t) for t in _tensors((args, kwargs))}, len(self.claimed)))

    def leave(self, module, args, kwargs, output):
        name = self.names[id(module)]
        outs = _tensors(output)
        self.claim(name, outs, self.stack.pop())
        self.outputs[name] = self.outputs.get(name, 0) + sum(dict(
            tensor_storage(t) for t in outs).values())
        self.calls[name] = self.calls.get(name, 0) + 1

    def claim(self, name, outs, frame):
        """Give name the unclaimed nodes between its arguments and outs (frame: the ids of
        the arguments, the number of nodes claimed when it started)."""
        stop, since = frame
        self.found.extend((name, t, ctx) for t, ctx in claim_nodes(outs, stop, self.claimed,
                                                                      since))

    def account(self):
        """Each storage to its first saver; then the made tensors no node saved, to their
        makers (parameters and buffers left out)."""
        for name, _, ctx in self.found:
            for key, n in saved_storages(ctx):
                if key not in self.params:
                    self.saved.setdefault(key, (n, name))
        for name, t, _ in self.found:
            key, n = tensor_storage(t)
            if key not in self.saved and key not in self.params:
                self.kept.setdefault(key, (n, name))
        self.found = []

    def rows(self, model, with_loss):
        saved, kept = _per_name(self.saved), _per_name(self.kept)
        modules = dict(model.named_modules())
        rows = []
        for name, module in modules.items():
            inside = [m for m in set(saved) | set(kept)
                      if m == name or (name == "" and m != LOSS_ROW) or m.startswith(name + ".")]
            rows.append(ActivationRow(
                name, type(module).__name__, sum(saved.get(m, 0) for m in inside),
                saved.get(name, 0), sum(kept.get(m, 0) for m in inside), kept.get(name, 0),
                self.outputs.get(name, 0), self.calls.get(name, 0)))
        if with_loss:
            rows.append(ActivationRow(LOSS_ROW, "function", saved.get(LOSS_ROW, 0),
                                      saved.get(LOSS_ROW, 0), kept.get(LOSS_ROW, 0),
                                      kept.get(LOSS_ROW, 0), 0, 1))
        return rows


def _per_name(storages):
    """{module name: bytes} from {storage key: (n_bytes, module name)}."""
    out = {}
    for n, name in storages.values():
        out[name] = out.get(name, 0) + n
    return out


def _tensors(obj):
    """The Tensors in obj, through tuples, lists and dict values, in order."""
    if isinstance(obj, Tensor):
        return [obj]
    if isinstance(obj, dict):
        obj = list(obj.values())
    if isinstance(obj, (tuple, list)):
        return [t for item in obj for t in _tensors(item)]
    return []
