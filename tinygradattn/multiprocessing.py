"""torch.multiprocessing: Python's multiprocessing under torch's name, plus torch's `spawn`.

torch's module is the standard library's with tensors shared through shared memory; here
tensors cross processes by pickling (a copy), which is what the `spawn` start method does for
arguments anyway. `spawn(fn, args, nprocs)` runs fn(i, *args) in nprocs processes, i = 0 ..
nprocs-1, and with join=True waits for all, raising ProcessExitedException when one fails.
"""
import multiprocessing as _mp

__all__ = ["spawn", "start_processes", "ProcessContext", "ProcessExitedException",
           "get_sharing_strategy", "set_sharing_strategy", "get_all_sharing_strategies"]
__all__ += [n for n in _mp.__all__ if n not in __all__]
globals().update({n: getattr(_mp, n) for n in _mp.__all__})   # Process, Queue, get_context...


class ProcessExitedException(Exception):
    """A spawned process exited with a non-zero code (torch.multiprocessing's)."""

    def __init__(self, msg, error_index, error_pid, exit_code):
        super().__init__(msg)
        self.error_index, self.pid, self.exit_code = error_index, error_pid, exit_code


class ProcessContext:
    """The processes spawn started; join() waits for them and raises on the first failure."""

    def __init__(self, processes):
        self.processes = processes

    def pids(self):
        return [p.pid for p in self.processes]

    def join(self, timeout=None):
        """Wait for every process; True when all are done."""
        for p in self.processes:
            p.join(timeout)
        for i, p in enumerate(self.processes):
            if p.exitcode not in (0, None):
                for other in self.processes:
                    if other.is_alive():
                        other.terminate()
                raise ProcessExitedException(
                    f"process {i} terminated with exit code {p.exitcode}", i, p.pid, p.exitcode)
        return all(p.exitcode is not None for p in self.processes)


def start_processes(fn, args=(), nprocs=1, join=True, daemon=False, start_method="spawn"):
    """fn(i, *args) for i in range(nprocs), each in its own process of start_method."""
    ctx = _mp.get_context(start_method)
    processes = [ctx.Process(target=fn, args=(i, *args), daemon=daemon) for i in range(nprocs)]
    for p in processes:
        p.start()
    context = ProcessContext(processes)
    if not join:
        return context
    context.join()
    return None


def spawn(fn, args=(), nprocs=1, join=True, daemon=False, start_method="spawn"):
    """torch.multiprocessing.spawn: start_processes with the 'spawn' start method."""
    return start_processes(fn, args, nprocs, join, daemon, start_method)


_STRATEGY = ["file_system"]


def get_all_sharing_strategies():
    return {"file_system"}


def get_sharing_strategy():
    return _STRATEGY[0]


def set_sharing_strategy(new_strategy):
    if new_strategy not in get_all_sharing_strategies():
        raise ValueError(f"invalid sharing strategy {new_strategy!r}: tinygradattn has "
                         f"{sorted(get_all_sharing_strategies())}")
    _STRATEGY[0] = new_strategy
