"""tga.distributed (torch.distributed's names) over MPI: ranks, collectives on tensors, a timeout.

Launch N processes with mpiexec (see README "Data-parallel training over MPI"), then in each:

    import tinygradattn as tga
    import tinygradattn.distributed as dist
    dist.init()                                 # or dist.init_process_group(backend="mpi")
    t = tga.ones(3) * dist.get_rank()
    dist.all_reduce(t)                          # in place: the sum over ranks, on every rank

Without init(), a process answers as torch.distributed does without a process group:
`is_initialized()` False, and the calls that need a group raise torch's "not initialized"
RuntimeError; nothing here imports mpi4py until init() (backend/mpi.py does, lazily), so a
single process needs no MPI installed and pays nothing. `is_available()` says whether
mpi4py can be found.

Every collective waits at most `timeout` seconds (init(timeout=...), else the environment's
TGA_DIST_TIMEOUT, else 300 s): past it, the ranks that did not answer are named on stderr and
the whole job is aborted (exit status != 0) instead of hanging.

Tensors of float32, float64, int64 or int32. CPU tensors go through their host buffer; a
non-contiguous one is reduced through a contiguous copy, written back into it. CUDA tensors
are host-staged: copied to a host buffer, reduced there over MPI, copied back into the
tensor's device memory (it stays on cuda; no CUDA-aware MPI is needed). In-place writes bump
the tensor's version counter, as any in-place op does.
"""
from ..backend import mpi as _mpi

_NOT_INITIALIZED = ("Default process group has not been initialized, please make sure to call "
                    "init_process_group.")
_BACKENDS = (None, "mpi", "gloo")     # gloo: torch's CPU backend; the same collectives here

_state = {"comm": None}


class ReduceOp:
    """The reduction names collectives take (torch.distributed.ReduceOp)."""
    SUM, PRODUCT, MIN, MAX, AVG = "sum", "product", "min", "max", "avg"


_OPS = (ReduceOp.SUM, ReduceOp.PRODUCT, ReduceOp.MIN, ReduceOp.MAX, ReduceOp.AVG)


# ---- the process group ------------------------------------------------------------------------
def is_available():
    """True when mpi4py can be imported (found without importing it)."""
    return _mpi.mpi4py_available()


def is_initialized():
    return _state["comm"] is not None


def is_mpi_available():
    return is_available()


def is_torchelastic_launched():
    return False


# what mpiexec puts in each rank's environment: Open MPI, PMIx launchers, MPICH (Hydra)
_LAUNCHER_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK")


def is_mpi_launched():
    """True when this process is a rank started by mpiexec (from its environment; nothing is
    imported): the test a program uses to decide whether to call init()."""
    import os
    return any(name in os.environ for name in _LAUNCHER_VARIABLES)


def init(timeout=None):
    """Join the MPI job (MPI_Init through mpi4py): every rank of `mpiexec -n N` calls it once.

    Args:
        timeout: seconds any collective may wait before the job is aborted naming the ranks
            that did not answer (a float, or a datetime.timedelta as torch takes); default
            TGA_DIST_TIMEOUT from the environment, else 300.
    Run alone (no mpiexec), it is a world of one rank. A second call is a RuntimeError (as
    torch's init_process_group). An uncaught exception on a rank then aborts the whole job
    (as `python -m mpi4py` does), so the other ranks do not wait for it.
    """
    if is_initialized():
        raise RuntimeError("trying to initialize the default process group twice!")
    seconds = _timeout_seconds(timeout)
    _state["comm"] = _mpi.Comm.open(seconds)
    _install_excepthook()


def init_process_group(backend=None, init_method=None, timeout=None, world_size=-1, rank=-1,
                       store=None, group_name="", pg_options=None, device_id=None):
    """torch.distributed.init_process_group over MPI: init(timeout). backend: "mpi" (or
    None, or "gloo": the same CPU collectives); world_size / rank, when given, must match
    mpiexec's (MPI assigns them)."""
    if backend not in _BACKENDS:
        raise ValueError(f"init_process_group(backend={backend!r}): tinygradattn runs its "
                         "collectives over MPI: use backend='mpi' (or 'gloo') and launch with "
                         "mpiexec -n N")
    init(timeout)
    comm = _state["comm"]
    for name, given, actual in (("world_size", world_size, comm.size), ("rank", rank, comm.rank)):
        if given not in (-1, None) and given != actual:
            destroy_process_group()
            raise ValueError(f"init_process_group({name}={given}): mpiexec gave this process "
                             f"{name} {actual}")


def destroy_process_group(group=None):
    """Leave the process group (collectives raise 'not initialized' again); MPI itself is
    finalized at exit."""
    comm = _comm()
    comm.close()
    _state["comm"] = None


def _timeout_seconds(timeout):
    if timeout is None:
        return _mpi.default_timeout()
    seconds = timeout.total_seconds() if hasattr(timeout, "total_seconds") else timeout
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds <= 0:
        raise ValueError(f"init: timeout must be a positive number of seconds, got {timeout!r}")
    return float(seconds)


def _install_excepthook():
    import sys
    previous = sys.excepthook

    def abort_job(kind, value, tb):
        previous(kind, value, tb)
        comm = _state["comm"]
        if comm is not None and comm.size > 1:
            comm.abort(f"tga.distributed: rank {comm.rank} raised {kind.__name__}: aborting the "
                       "job")
    sys.excepthook = abort_job


def _comm():
    comm = _state["comm"]
    if comm is None:
        raise RuntimeError(_NOT_INITIALIZED)
    return comm


def get_rank(group=None):
    return _comm().rank


def get_world_size(group=None):
    return _comm().size


def get_backend(group=None):
    _comm()
    return "mpi"


def get_timeout():
    """The seconds a collective may wait before the job is aborted."""
    return _comm().timeout


# ---- collectives on tensors --------------------------------------------------------------------
class Work:
    """What async_op=True returns (torch's Work): wait() completes the collective and writes
    its result into the tensor; is_completed() says whether wait() has run."""

    def __init__(self, entry, finish):
        self._entry, self._finish, self._done = entry, finish, False

    def wait(self, timeout=None):
        if not self._done:
            _comm().wait(self._entry)
            self._finish()
            self._done = True
        return True

    def is_completed(self):
        return self._done


def _buffer(tensor, name):
    """(the host array a collective works in, a function writing it back into tensor)."""
    if not hasattr(tensor, "_data") or not hasattr(tensor, "_version"):
        raise TypeError(f"{name}: expected a Tensor, got {type(tensor).__name__}")
    data = tensor._data
    if tensor._backend.name != "cpu":
        return _staged_buffer(tensor)
    buf, copied = _mpi.to_contiguous(data)

    def write_back():
        if copied:
            _mpi.copy_into(data, buf)
        tensor._version[0] += 1
    return buf, write_back


def _staged_buffer(tensor):
    """_buffer for a device (cuda) tensor: the collective works in a host copy of it (one
    device -> host copy), written back with one host -> device copy into the tensor's own
    memory (any view), so the tensor stays where it is."""
    backend = tensor._backend
    buf = backend.to_host(tensor._data)             # a new contiguous numpy array

    def write_back():
        _store(tensor, buf)
    return buf, write_back


def _store(tensor, host):
    """tensor[...] = host (a numpy array of tensor's shape), in place on tensor's device; bumps
    its version."""
    data = tensor._data
    if tensor._backend.name == "cpu":
        _mpi.copy_into(data, host)
    else:
        tensor._backend.assign(data, tensor._backend.from_host(host))
    tensor._version[0] += 1


def all_reduce(tensor, op=ReduceOp.SUM, group=None, async_op=False):
    """tensor = op(tensor over all ranks), in place on every rank (torch.distributed.all_reduce).

    Args:
        tensor: a cpu or cuda tensor of float32 / float64 / int64 / int32, any shape.
        op: ReduceOp.SUM, AVG, MAX, MIN or PRODUCT. AVG needs a floating dtype.
        async_op: True returns a Work whose wait() completes it (the tensor is written then).
    """
    if op not in _OPS:
        raise ValueError(f"all_reduce: op must be one of {', '.join(_OPS)}, got {op!r}")
    comm = _comm()
    if op == ReduceOp.AVG and not tensor.is_floating_point():
        raise RuntimeError(f"all_reduce: ReduceOp.AVG needs a floating point tensor, got "
                           f"{tensor.dtype}")
    buf, write_back = _buffer(tensor, "all_reduce")

    def finish():
        if op == ReduceOp.AVG:
            _mpi.divide_(buf, comm.size)
        write_back()
    return _run(comm.iallreduce(buf, op), finish, async_op)


def broadcast(tensor, src, group=None, async_op=False):
    """tensor = rank src's tensor, in place on every rank (torch.distributed.broadcast)."""
    comm = _comm()
    if not isinstance(src, int) or not 0 <= src < comm.size:
        raise ValueError(f"broadcast: src must be a rank in [0, {comm.size - 1}], got {src!r}")
    buf, write_back = _buffer(tensor, "broadcast")
    return _run(comm.ibcast(buf, src), write_back, async_op)


def all_gather(tensor_list, tensor, group=None, async_op=False):
    """tensor_list[r] = rank r's tensor, for every r (torch.distributed.all_gather): the list
    holds world_size tensors shaped and typed like tensor."""
    comm = _comm()
    if len(tensor_list) != comm.size:
        raise ValueError(f"all_gather: tensor_list has {len(tensor_list)} tensors, expected "
                         f"world_size {comm.size}")
    buf, _ = _buffer(tensor, "all_gather")
    for i, t in enumerate(tensor_list):
        if tuple(t.shape) != tuple(tensor.shape) or t.dtype != tensor.dtype:
            raise ValueError(f"all_gather: tensor_list[{i}] is {t.dtype} {tuple(t.shape)}, "
                             f"expected {tensor.dtype} {tuple(tensor.shape)}")
    out = _mpi.flat_buffer(buf.size * comm.size, buf.dtype)

    def finish():
        n = buf.size
        for r, t in enumerate(tensor_list):
            _store(t, out[r * n:(r + 1) * n].reshape(buf.shape))
    return _run(comm.iallgather(out, buf), finish, async_op)


def broadcast_object_list(object_list, src=0, group=None, device=None):
    """object_list[:] = rank src's objects, pickled (torch.distributed.broadcast_object_list):
    e.g. a run directory or a resume step that rank 0 decided."""
    comm = _comm()
    if not isinstance(src, int) or not 0 <= src < comm.size:
        raise ValueError(f"broadcast_object_list: src must be a rank in [0, {comm.size - 1}], "
                         f"got {src!r}")
    payload = _mpi.to_bytes_array(list(object_list)) if comm.rank == src else None
    size = _mpi.int64_array([0 if payload is None else payload.size])
    comm.wait(comm.ibcast(size, src))
    if payload is None:
        payload = _mpi.flat_buffer(int(size[0]), "uint8")
    comm.wait(comm.ibcast(payload, src))
    received = _mpi.from_bytes_array(payload)
    if len(received) != len(object_list):
        raise ValueError(f"broadcast_object_list: rank {src} sent {len(received)} objects, this "
                         f"rank's list holds {len(object_list)}")
    object_list[:] = received


def barrier(group=None, async_op=False, device_ids=None):
    """Return once every rank has reached it (or abort the job past the timeout)."""
    return _run(_comm().ibarrier(), lambda: None, async_op)


def _run(entry, finish, async_op):
    work = Work(entry, finish)
    if async_op:
        return work
    work.wait()
    return None


def _needs_group(name):
    def fn(*args, **kwargs):
        _comm()
        raise NotImplementedError(f"torch.distributed.{name} is not implemented over MPI here")
    fn.__name__ = name
    fn.__doc__ = f"torch.distributed.{name}: not implemented (RuntimeError without a group)."
    return fn


reduce = _needs_group("reduce")

__all__ = ["ReduceOp", "Work", "is_available", "is_initialized", "is_mpi_available",
           "is_torchelastic_launched", "is_mpi_launched", "init", "init_process_group",
           "destroy_process_group",
           "get_rank", "get_world_size", "get_backend", "get_timeout", "barrier", "all_reduce",
           "broadcast", "all_gather", "broadcast_object_list", "reduce"]
