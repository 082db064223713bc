"""torch.profiler's recording side: profile, record_function, schedule,
tensorboard_trace_handler, ProfilerActivity, ProfilerAction.

A recording profile is an observer (autograd/instruments.py): after each op's forward or
backward it notes a FunctionEvent (name 'Softmax' or 'SoftmaxBackward', its time, the bytes
of the arrays it made); record_function adds the user's own regions. With no profile
recording, record_function costs one empty-list test and ops run untouched.
"""
import enum
import numbers
import os
import threading
import time

from ..autograd import instruments
from .events import EventList, FunctionEvent, write_chrome_trace

_recording = []           # the profiles recording now: record_function reports to each
_ORIGIN_NS = time.perf_counter_ns()     # event times count from here: the events of several
                                        # profiles can be merged into one EventList


class ProfilerActivity(enum.Enum):
    """What to profile (torch.profiler.ProfilerActivity). CPU: every op, always recorded.
    CUDA: also synchronize the device after each op on a GPU, so its time holds its kernels'
    (without it a GPU op's time is its launch). The others are accepted and do nothing."""
    CPU = "cpu"
    XPU = "xpu"
    MTIA = "mtia"
    CUDA = "cuda"
    HPU = "hpu"
    PrivateUse1 = "privateuseone"


def supported_activities():
    """The activities that do something here (torch.profiler.supported_activities)."""
    return {ProfilerActivity.CPU, ProfilerActivity.CUDA}


class ProfilerAction(enum.Enum):
    """What a schedule asks of a step (torch.profiler.ProfilerAction)."""
    NONE = 0
    WARMUP = 1
    RECORD = 2
    RECORD_AND_SAVE = 3


_RECORDING_ACTIONS = (ProfilerAction.RECORD, ProfilerAction.RECORD_AND_SAVE)


def schedule(*, wait, warmup, active, repeat=0, skip_first=0, skip_first_wait=0):
    """step -> ProfilerAction, torch.profiler.schedule's cycle: after skip_first steps, repeat
    `repeat` times (0: for ever) wait steps idle, warmup steps warming up, active steps
    recorded, the last of them RECORD_AND_SAVE (on_trace_ready is called after it).
    skip_first_wait=1 skips the first cycle's wait. TypeError for a count that is not an
    int; AssertionError (torch's class: it asserts) for a negative one or active < 1."""
    for name, value, least in (("wait", wait, 0), ("warmup", warmup, 0), ("active", active, 1),
                               ("repeat", repeat, 0), ("skip_first", skip_first, 0)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"schedule(): {name} must be an int, got {value!r}")
        if value < least:
            raise AssertionError(f"Invalid profiler schedule arguments: {name} must be an int "
                                 f">= {least}, got {value!r}")
    cycle = wait + warmup + active

    def schedule_fn(step):
        if step < skip_first:
            return ProfilerAction.NONE
        step -= skip_first
        if skip_first_wait:
            step += wait
        if repeat > 0 and step // cycle >= repeat:
            return ProfilerAction.NONE
        k = step % cycle
        if k < wait:
            return ProfilerAction.NONE
        if k < wait + warmup:
            return ProfilerAction.WARMUP
        return ProfilerAction.RECORD if k < cycle - 1 else ProfilerAction.RECORD_AND_SAVE
    return schedule_fn


def _always_record(step):
    return ProfilerAction.RECORD


def tensorboard_trace_handler(dir_name, worker_name=None, use_gzip=False, **ignored):
    """An on_trace_ready that writes each trace as DIR/WORKER.TIME_MS.pt.trace.json(.gz)
    (Chrome trace JSON, the file TensorBoard's profiler plugin reads); worker defaults to
    'host_pid'. The directory is made when missing."""
    def handler(prof):
        import socket                    # here: a few ms that `import tinygradattn` skips
        os.makedirs(dir_name, exist_ok=True)
        worker = worker_name or f"{socket.gethostname()}_{os.getpid()}"
        name = f"{worker}.{time.time_ns() // 1_000_000}.pt.trace.json"
        prof.export_chrome_trace(os.path.join(dir_name, name + (".gz" if use_gzip else "")))
    return handler


class record_function:
    """A named region in the profile (torch.profiler.record_function): a context manager or
    a decorator. Its time holds the ops run inside it; nothing happens when no profile is
    recording.

    Example:
        >>> import tinygradattn as tga
        >>> with tga.profiler.profile() as prof:
        ...     with tga.profiler.record_function("my_block"):
        ...         y = tga.ones(2, 2).softmax(-1)
        >>> [e.name for e in prof.events()]
        ['Softmax', 'my_block']
    """

    def __init__(self, name, args=None):
        self.name = name
        self.args = args
        self._profiles = ()

    def __enter__(self):
        if _recording:
            self._profiles = tuple(_recording)
            self._start = time.perf_counter_ns()
        return self

    def __exit__(self, *exc):
        if self._profiles:
            end = time.perf_counter_ns()
            for prof in self._profiles:
                prof._add_region(self.name, self._start, end)
            self._profiles = ()
        return False

    def __call__(self, func):
        import functools

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with record_function(self.name):
                return func(*args, **kwargs)
        return wrapper


class profile:
    """Records each op's forward and backward time and bytes (torch.profiler.profile).

    Args (torch's; keyword only):
        activities: ProfilerActivity values. CPU is always recorded; CUDA also synchronizes
            a GPU after each op, so the op's time holds its kernels'.
        schedule: step -> ProfilerAction (see `schedule`); default: record from start to stop.
        on_trace_ready: called with the profile after each recorded cycle (and at stop).
        record_shapes: keep each op's input shapes (key_averages(group_by_input_shape=True),
            the trace's 'Input Dims').
        profile_memory: accepted; the bytes each op makes are always counted.
        with_stack: keep the user's file:line of each forward op (the trace's 'Call stack').
        with_flops, with_modules, experimental_config, ...: accepted, and do nothing.

    Example:
        >>> import tinygradattn as tga
        >>> x = tga.ones(4, 4, requires_grad=True)
        >>> with tga.profiler.profile() as prof:
        ...     (x @ x).softmax(-1).sum().backward()
        >>> sorted((r.key, r.count) for r in prof.key_averages())[:2]
        [('MatMul', 1), ('MatMulBackward', 1)]
        >>> text = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=10)
    """

    def __init__(self, *, activities=None, schedule=None, on_trace_ready=None,
                 record_shapes=False, profile_memory=False, with_stack=False, with_flops=False,
                 with_modules=False, experimental_config=None, execution_trace_observer=None,
                 acc_events=False, use_cuda=None, custom_trace_id_callback=None,
                 post_processing_timeout_s=None):
        activities = set(activities) if activities is not None else supported_activities()
        for a in activities:
            if not isinstance(a, ProfilerActivity):
                raise TypeError(f"profile(): activities must hold ProfilerActivity values, "
                                f"got {a!r}")
        self.activities = activities
        self.sync_device = ProfilerActivity.CUDA in activities or bool(use_cuda)
        self.schedule = schedule or _always_record
        self.record_steps = schedule is not None
        self.on_trace_ready = on_trace_ready
        self.record_shapes = record_shapes
        self.profile_memory = profile_memory
        self.with_stack = with_stack
        self.step_num = 0
        self.current_action = self.schedule(0)
        self._raw = []                   # (name, category, start_ns, end_ns, bytes, shapes,
                                         #  thread, stack) of the cycle being recorded
        self._events = EventList()       # the last finished cycle's events
        self._is_recording = False
        self._step_start = None

    # ---- recording ------------------------------------------------------------------------
    def __call__(self, event):
        """The observer: note one op's forward or backward."""
        end = event.end_ns
        if self.sync_device:
            sync = getattr(event.ctx.backend, "synchronize", None)
            if sync is not None:
                sync()
                end = time.perf_counter_ns()
        shapes = ([list(s) for s in map(instruments.array_shape, event.inputs) if s is not None]
                  if self.record_shapes else [])
        stack = (tuple(f"{f}:{n}" for f, n, _ in instruments.user_stack())
                 if self.with_stack and event.phase == "forward" else ())
        self._raw.append((event.name, event.phase, event.start_ns, end,
                          instruments.bytes_made(event), shapes, threading.get_ident(), stack))

    def _add_region(self, name, start, end):
        if self._is_recording:
            self._raw.append((name, "user_annotation", start, end, 0, [],
                              threading.get_ident(), ()))

    def _start_recording(self):
        self._raw = []
        self._is_recording = True
        _recording.append(self)
        instruments.attach(self)

    def _stop_recording(self):
        """Stop, turn the raw notes into events; on_trace_ready gets the profile."""
        instruments.detach(self)
        if self in _recording:
            _recording.remove(self)
        self._is_recording = False
        self._events = EventList([self._event(*raw) for raw in self._raw], set_self_times=True)
        self._raw = []
        if self.on_trace_ready is not None:
            self.on_trace_ready(self)

    def _event(self, name, category, start, end, nbytes, shapes, thread, stack):
        return FunctionEvent(name, category, (start - _ORIGIN_NS) / 1e3,
                             (end - _ORIGIN_NS) / 1e3, thread, nbytes, shapes, stack)

    # ---- steps ----------------------------------------------------------------------------
    def _transit(self, previous, current):
        """Start or stop recording as the schedule moves from one action to the next."""
        was = previous in _RECORDING_ACTIONS
        if was and (previous == ProfilerAction.RECORD_AND_SAVE or
                    current not in _RECORDING_ACTIONS):
            self._stop_recording()
            was = False
        if current in _RECORDING_ACTIONS and not was:
            self._start_recording()

    def _open_step(self):
        if self.record_steps and self._is_recording:
            self._step_start = (self.step_num, time.perf_counter_ns())

    def _close_step(self):
        if self._step_start is not None:
            n, start = self._step_start
            self._add_region(f"ProfilerStep#{n}", start, time.perf_counter_ns())
            self._step_start = None

    def start(self):
        """Begin profiling (what entering the `with` block does)."""
        self._transit(ProfilerAction.NONE, self.current_action)
        self._open_step()

    def stop(self):
        """End profiling; a cycle being recorded is finished and handed to on_trace_ready."""
        self._close_step()
        self._transit(self.current_action, None)

    def step(self):
        """Mark the end of a training step: the schedule decides what the next one does."""
        self._close_step()
        previous = self.current_action
        self.step_num += 1
        self.current_action = self.schedule(self.step_num)
        self._transit(previous, self.current_action)
        self._open_step()

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    # ---- results --------------------------------------------------------------------------
    def events(self):
        """The last recorded cycle's events (EventList of FunctionEvent), in the order they
        ended."""
        return self._events

    def key_averages(self, group_by_input_shape=False, group_by_stack_n=0):
        """The events grouped per name (and input shapes): an EventList of
        FunctionEventAvg, whose .table(sort_by=..., row_limit=...) prints them."""
        return self._events.key_averages(group_by_input_shape)

    def export_chrome_trace(self, path):
        """Write the events as Chrome trace / Perfetto JSON: one 'X' (complete) event each,
        ts and dur in microseconds, cat 'forward', 'backward' or 'user_annotation'."""
        write_chrome_trace(self._events, path)
