"""Activation memory per module: what one forward pass keeps alive for backward.

activation_report(model, *inputs, loss_fn=...) runs one forward with a pre-hook and a hook on
every submodule. When a module returns, the nodes recorded between its arguments and its
outputs that no submodule claimed are its own; the arrays those nodes saved for backward
(Context.saved) are what the module keeps. Each storage counts once, at the first module that
claims a node saving it (submodules before their parent, in call order); parameters and
buffers are not activations and are left out. The forward runs under tracemalloc (numpy
reports its allocations to it), so the report also gives what the forward measurably kept
and its peak, to set the count against.
"""
import gc
import tracemalloc
from collections import namedtuple

from ..autograd.graph_memory import claim_nodes, saved_storages, tensor_storage
from ..runtime import empty_cache
from ..tensor import Tensor

__all__ = ["ActivationReport", "ActivationRow", "activation_report"]

ActivationRow = namedtuple("ActivationRow", ["name", "type", "saved_bytes", "self_saved_bytes",
                                             "output_bytes", "calls"])
ActivationRow.__doc__ = """One module's row: saved_bytes counts its submodules' too,
self_saved_bytes only the nodes of its own forward; output_bytes what it returned (summed
over calls; often saved by the next op, so not added to the total)."""

LOSS_ROW = "(loss_fn)"


class ActivationReport:
    """Rows per module (named_modules order; then LOSS_ROW when a loss_fn ran) and totals.

    total_saved_bytes: the distinct storages saved for backward (the sum of self_saved_bytes).
    measured_kept_bytes / measured_peak_bytes: tracemalloc's traced memory after the forward
    (idle pooled buffers released) and its peak during it, both above the start; host
    (numpy) memory only, None on other devices' tensors.
    """

    def __init__(self, rows, total, kept, peak):
        self.rows, self.total_saved_bytes = rows, total
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
        head = f"{'module':<36} {'type':<22} {'saved KiB':>11} {'self KiB':>10} {'out KiB':>10}"
        lines = [head, "-" * len(head)]
        for r in self.rows:
            depth = 0 if r.name in ("", LOSS_ROW) else r.name.count(".") + 1
            if max_depth is not None and depth > max_depth:
                continue
            name = ("  " * depth + (r.name.rsplit(".", 1)[-1] or "(model)"))[:36]
            lines.append(f"{name:<36} {r.type[:22]:<22} {_kib(r.saved_bytes):>11} "
                         f"{_kib(r.self_saved_bytes):>10} {_kib(r.output_bytes):>10}")
        lines.append(f"total saved for backward: {_kib(self.total_saved_bytes)} KiB")
        if self.measured_kept_bytes is not None:
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
    rows = claim.rows(model, with_loss=loss_fn is not None)
    total = sum(r.self_saved_bytes for r in rows)
    report = ActivationReport(rows, total, kept, peak)
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
            claim.claim(LOSS_ROW, _tensors(out), set())
        peak = tracemalloc.get_traced_memory()[1] - base
        empty_cache()
        kept = tracemalloc.get_traced_memory()[0] - base
        return kept, peak
    finally:
        if started:
            tracemalloc.stop()


class _Claimer:
    """The hooks' state: each call's arguments (where its walk back stops), the nodes
    claimed so far, and each storage's first saver."""

    def __init__(self, model):
        self.names = {id(m): name for name, m in model.named_modules()}
        self.stack = []            # ids of the tensor arguments of each module being run
        self.claimed = set()       # ids of the nodes given to a module already
        self.storages = {}         # storage key -> (n_bytes, name of its first saver)
        self.outputs = {}          # module name -> bytes returned, summed over calls
        self.calls = {}            # module name -> number of calls
        self.params = {tensor_storage(t)[0] for t in model.parameters()}
        self.params |= {tensor_storage(t)[0] for t in model.buffers()}

    def enter(self, module, args, kwargs):
        self.stack.append({id(t) for t in _tensors((args, kwargs))})

    def leave(self, module, args, kwargs, output):
        name = self.names[id(module)]
        outs = _tensors(output)
        self.claim(name, outs, self.stack.pop())
        self.outputs[name] = self.outputs.get(name, 0) + sum(dict(
            tensor_storage(t) for t in outs).values())
        self.calls[name] = self.calls.get(name, 0) + 1

    def claim(self, name, outs, stop):
        """Give name the unclaimed nodes between stop and outs, and the storages they save
        that no one saved before (parameters and buffers left out)."""
        for ctx in claim_nodes(outs, stop, self.claimed):
            for key, n in saved_storages(ctx):
                if key not in self.params:
                    self.storages.setdefault(key, (n, name))

    def rows(self, model, with_loss):
        own = {}
        for n, name in self.storages.values():
            own[name] = own.get(name, 0) + n
        names = [name for name, _ in model.named_modules()]
        modules = dict(model.named_modules())
        rows = []
        for name in names:
            inside = [m for m in own if m == name or name == "" and m != LOSS_ROW
                      or m.startswith(name + ".")]
            rows.append(ActivationRow(name, type(modules[name]).__name__,
                                      sum(own[m] for m in inside), own.get(name, 0),
                                      self.outputs.get(name, 0), self.calls.get(name, 0)))
        if with_loss:
            rows.append(ActivationRow(LOSS_ROW, "function", own.get(LOSS_ROW, 0),
                                      own.get(LOSS_ROW, 0), 0, 1))
        return rows


def _tensors(obj):
    """The Tensors in obj, through tuples, lists and dict values, in order."""
    if isinstance(obj, Tensor):
        return [obj]
    if isinstance(obj, dict):
        obj = list(obj.values())
    if isinstance(obj, (tuple, list)):
        return [t for item in obj for t in _tensors(item)]
    return []
