"""The profiler's results: events, their averages per op, the table and the Chrome trace.

What `tga.profiler.profile` hands back (torch.autograd.profiler_util's shapes, with its names):
- FunctionEvent: one op's forward or backward, or a record_function region: name, category
  ('forward', 'backward', 'user_annotation'), times in microseconds, bytes it made.
- EventList: a list of them; `key_averages()` groups them by name (and input shapes when
  asked) into FunctionEventAvg rows; `table(sort_by=..., row_limit=...)` prints those;
  `export_chrome_trace(path)` writes chrome://tracing / Perfetto JSON.
Self time is an event's time less the time of the events nested directly in it, per thread.
"""
import json
import os
from dataclasses import dataclass, field

from ..autograd import instruments

CATEGORIES = ("forward", "backward", "user_annotation")


@dataclass
class FunctionEvent:
    """One op run or region. Times are microseconds from a fixed origin of this process (the
    Chrome trace starts at its first event)."""
    name: str
    category: str                     # 'forward', 'backward' or 'user_annotation'
    start_us: float
    end_us: float
    thread: int                       # threading.get_ident() of the thread that ran it
    nbytes: int = 0                   # bytes of the arrays it made (forward: its output;
                                      # backward: its input gradients); 0 for a region
    input_shapes: list = field(default_factory=list)    # with record_shapes
    stack: tuple = ()                 # with with_stack: 'file:line' of the user's frames
    self_cpu_time_total: float = 0.0  # set by EventList: time less its direct children's
    cpu_memory_usage: int = 0         # bytes made by it and everything nested in it

    @property
    def key(self):
        return self.name

    @property
    def cpu_time_total(self):
        return self.end_us - self.start_us

    @property
    def self_cpu_memory_usage(self):
        return self.nbytes

    @property
    def count(self):
        return 1


@dataclass
class FunctionEventAvg:
    """The events of one name (and input shapes) added up: a row of the table."""
    key: str
    category: str
    input_shapes: str = ""
    count: int = 0
    cpu_time_total: float = 0.0       # microseconds, children included
    self_cpu_time_total: float = 0.0  # microseconds, children excluded
    cpu_memory_usage: int = 0         # bytes, children included
    self_cpu_memory_usage: int = 0    # bytes made by these events themselves

    @property
    def cpu_time(self):
        """Average microseconds per call."""
        return self.cpu_time_total / self.count if self.count else 0.0

    def add(self, event):
        self.count += event.count
        self.cpu_time_total += event.cpu_time_total
        self.self_cpu_time_total += event.self_cpu_time_total
        self.cpu_memory_usage += event.cpu_memory_usage
        self.self_cpu_memory_usage += event.self_cpu_memory_usage


# sort_by names (torch's) -> the attribute sorted on. NOTE: there is no separate device
# clock: the device names sort by the CPU columns, which hold a GPU op's kernel time when the
# profile synchronizes each op (activities with ProfilerActivity.CUDA).
SORT_KEYS = {
    "cpu_time_total": "cpu_time_total", "self_cpu_time_total": "self_cpu_time_total",
    "cpu_time": "cpu_time", "count": "count",
    "cpu_memory_usage": "cpu_memory_usage", "self_cpu_memory_usage": "self_cpu_memory_usage",
    "cuda_time_total": "cpu_time_total", "self_cuda_time_total": "self_cpu_time_total",
    "device_time_total": "cpu_time_total", "self_device_time_total": "self_cpu_time_total",
}


class EventList(list):
    """A list of FunctionEvent (or FunctionEventAvg after key_averages)."""

    def __init__(self, events=(), set_self_times=False):
        super().__init__(events)
        if set_self_times:
            _set_self_values(self)

    @property
    def self_cpu_time_total(self):
        """Microseconds of self time over all events (the profiled time, each moment once)."""
        return sum(e.self_cpu_time_total for e in self)

    def key_averages(self, group_by_input_shape=False):
        """One FunctionEventAvg per name (per name and input shapes when asked), in the order
        each first ran."""
        rows = {}
        for e in self:
            shapes = str(e.input_shapes) if group_by_input_shape else ""
            row = rows.get((e.key, shapes))
            if row is None:
                row = rows[(e.key, shapes)] = FunctionEventAvg(e.key, e.category, shapes)
            row.add(e)
        return EventList(rows.values())

    def table(self, sort_by=None, row_limit=100, max_name_column_width=55, header=None,
              top_level_events_only=False, **ignored):
        """The rows as torch's profiler table: sorted (largest first) by sort_by, row_limit
        rows (-1: all), then the total self time. ValueError for an unknown sort_by."""
        rows = list(self)
        if sort_by is not None:
            if sort_by not in SORT_KEYS:
                raise ValueError(f"table(): sort_by={sort_by!r} is not one of "
                                 f"{', '.join(sorted(SORT_KEYS))}")
            rows.sort(key=lambda r: getattr(r, SORT_KEYS[sort_by]), reverse=True)
        if row_limit is not None and row_limit >= 0:
            rows = rows[:row_limit]
        text = _format_table(rows, self.self_cpu_time_total, max_name_column_width, header)
        return instruments.Table(text)

    def export_chrome_trace(self, path):
        """Write the events as Chrome trace JSON (gzip when path ends in .gz)."""
        write_chrome_trace(self, path)


def _set_self_values(events):
    """Self time and inclusive memory of each event: nesting by time within each thread."""
    by_thread = {}
    for e in events:
        by_thread.setdefault(e.thread, []).append(e)
    for evs in by_thread.values():
        evs = sorted(evs, key=lambda e: (e.start_us, -e.end_us))
        open_events = []                     # the chain of events enclosing the current one
        for e in evs:
            e.self_cpu_time_total = e.cpu_time_total
            e.cpu_memory_usage = e.nbytes
            while open_events and open_events[-1].end_us <= e.start_us:
                open_events.pop()
            for outer in open_events:        # every enclosing event holds e's bytes
                outer.cpu_memory_usage += e.nbytes
            if open_events:                  # only the direct parent loses e's time
                open_events[-1].self_cpu_time_total -= e.cpu_time_total
            open_events.append(e)


def format_time(us):
    """Microseconds as torch prints them: '812.000us', '3.211ms', '1.204s'."""
    if us >= 1e6:
        return f"{us / 1e6:.3f}s"
    if us >= 1e3:
        return f"{us / 1e3:.3f}ms"
    return f"{us:.3f}us"


def format_bytes(n):
    """Bytes as '812 B', '3.21 KB', '1.20 MB', '2.00 GB' (powers of 1024, as torch)."""
    for unit, size in (("GB", 2 ** 30), ("MB", 2 ** 20), ("KB", 2 ** 10)):
        if abs(n) >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n} B"


def _format_table(rows, total_us, name_width, header):
    has_shapes = any(getattr(r, "input_shapes", "") for r in rows)
    columns = ["Name", "Kind", "Self CPU %", "Self CPU", "CPU total %", "CPU total",
               "CPU time avg", "Self Mem", "# of Calls"] + (["Input Shapes"] if has_shapes else [])
    total = total_us or 1.0
    cells = []
    for r in rows:
        name = r.key if len(r.key) <= name_width else r.key[:name_width - 3] + "..."
        cells.append([name, r.category.replace("user_annotation", "region"),
                      f"{100 * r.self_cpu_time_total / total:.2f}%",
                      format_time(r.self_cpu_time_total),
                      f"{100 * r.cpu_time_total / total:.2f}%", format_time(r.cpu_time_total),
                      format_time(r.cpu_time), format_bytes(r.self_cpu_memory_usage),
                      str(r.count)] + ([str(r.input_shapes)] if has_shapes else []))
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    rule = "  ".join("-" * w for w in widths)

    def line(values):                        # the name left-aligned, numbers right-aligned
        return "  ".join(v.ljust(w) if i < 2 else v.rjust(w)
                         for i, (v, w) in enumerate(zip(values, widths))).rstrip()
    lines = ([header] if header else []) + [rule, line(columns), rule]
    lines += [line(row) for row in cells] + [rule, f"Self CPU time total: {format_time(total_us)}"]
    return "\n".join(lines) + "\n"


def chrome_trace(events):
    """The events as a Chrome trace dict: one complete ('X') event each, in microseconds."""
    pid = os.getpid()
    trace = []
    origin = min((e.start_us for e in events), default=0.0)      # the first event at ts 0
    for e in sorted(events, key=lambda e: e.start_us):
        args = {"bytes": e.nbytes}
        if e.input_shapes:
            args["Input Dims"] = e.input_shapes
        if e.stack:
            args["Call stack"] = ";".join(e.stack)
        trace.append({"name": e.name, "cat": e.category, "ph": "X",      # a complete event
                      "ts": round(e.start_us - origin, 3), "dur": round(e.cpu_time_total, 3),
                      "pid": pid, "tid": e.thread, "args": args})
    return {"traceEvents": trace, "displayTimeUnit": "ms"}


def write_chrome_trace(events, path):
    """Write chrome_trace(events) as JSON to path (gzip-compressed when it ends in .gz)."""
    import gzip
    data = json.dumps(chrome_trace(events))
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wt") as f:
        f.write(data)
