"""MPI collectives on host (numpy) arrays, with a deadline: the transport of tga.distributed.

mpi4py is imported by `Comm.open()` only, so a single process never loads MPI. Every
collective is started nonblocking (Iallreduce, Ibcast, Ibarrier, ...) and waited for by
`Comm.wait`, which polls the request until it completes or `timeout` seconds pass. On the
deadline the ranks that are still alive exchange a short status message on a side
communicator; the ranks that sent none are named as suspected (dead or hung), and the job is
aborted (MPI_Abort: mpiexec then stops every rank and exits non-zero). A rank that dies is
usually caught sooner by mpiexec itself, which aborts the job when a rank exits abnormally.

NOTE: Open MPI has no asynchronous progress thread: a nonblocking collective advances only
while some MPI call runs on each rank. `Comm.progress()` (a Test of the pending requests) is
what the gradient reducer calls between backward nodes to let buckets move while compute runs.
"""
import os
import sys
import time

import numpy as np

DEFAULT_TIMEOUT_S = 300.0
TIMEOUT_ENV = "TGA_DIST_TIMEOUT"
SPIN_S = 0.002              # wait() polls without sleeping this long: each Test moves the
                            # collective a step (no progress thread), sleeping would delay it
_STATUS_TAG = 7177          # the side communicator's only tag: "I am alive, at collective k"
_ARRAY_DTYPES = ("float32", "float64", "int64", "int32", "uint8", "bool")


def default_timeout():
    """TGA_DIST_TIMEOUT (seconds) when set, else DEFAULT_TIMEOUT_S."""
    text = os.environ.get(TIMEOUT_ENV)
    if not text:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{TIMEOUT_ENV}={text!r}: expected a number of seconds") from None
    if value <= 0:
        raise ValueError(f"{TIMEOUT_ENV}={text!r}: the timeout must be > 0 seconds")
    return value


def mpi4py_available():
    """True when mpi4py can be found (without importing it: a single process pays nothing)."""
    import importlib.util
    return importlib.util.find_spec("mpi4py") is not None


class Comm:
    """The world communicator: rank, size, collectives on contiguous numpy arrays, a deadline.

    Collectives start in the same order on every rank (MPI's rule); each returns a request
    that `wait` completes. `seq` counts them: a status message at a timeout says where each
    rank stands.
    """

    def __init__(self, mpi, comm, timeout):
        self.MPI = mpi
        self.comm = comm
        self.side = comm.Dup()         # status messages only: never mixed with collectives
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()
        self.timeout = float(timeout)
        self.seq = 0
        self.pending = []              # requests started and not yet completed
        self._ops = {"sum": mpi.SUM, "product": mpi.PROD, "max": mpi.MAX, "min": mpi.MIN,
                     "avg": mpi.SUM}   # avg: a sum, divided by the caller

    @classmethod
    def open(cls, timeout):
        """MPI_Init (through mpi4py, thread level 'funneled') and the world communicator."""
        try:
            import mpi4py
        except ImportError:
            raise RuntimeError("tga.distributed needs mpi4py and an MPI library: "
                               "pip install 'tinygradattn[mpi]' (mpi4py and Open MPI)") from None
        mpi4py.rc.thread_level = "funneled"     # one thread calls MPI: no locks inside it
        from mpi4py import MPI
        return cls(MPI, MPI.COMM_WORLD, timeout)

    # ---- collectives: start one, get a request ------------------------------------------------
    def iallreduce(self, buf, op):
        """Start buf = op over ranks of buf, in place (buf: contiguous, one of _ARRAY_DTYPES)."""
        self._check(buf, "all_reduce")
        return self._started(self.comm.Iallreduce(self.MPI.IN_PLACE, buf, self._ops[op]),
                             f"all_reduce({op}) of {buf.size} {buf.dtype} elements")

    def ibcast(self, buf, src):
        self._check(buf, "broadcast")
        return self._started(self.comm.Ibcast(buf, root=src),
                             f"broadcast of {buf.size} {buf.dtype} elements from rank {src}")

    def iallgather(self, out, buf):
        """Start out[r * n:(r + 1) * n] = rank r's buf (out: size * n elements)."""
        self._check(buf, "all_gather")
        self._check(out, "all_gather")
        return self._started(self.comm.Iallgather(buf, out),
                             f"all_gather of {buf.size} {buf.dtype} elements")

    def ibarrier(self):
        return self._started(self.comm.Ibarrier(), "barrier")

    def _check(self, buf, name):
        if not buf.flags.c_contiguous or buf.dtype.name not in _ARRAY_DTYPES:
            raise TypeError(f"{name}: expected a contiguous array of {', '.join(_ARRAY_DTYPES)}, "
                            f"got {buf.dtype} of shape {buf.shape}")

    def _started(self, request, what):
        self.seq += 1
        entry = (request, what, self.seq)
        self.pending.append(entry)
        return entry

    # ---- completion --------------------------------------------------------------------------
    def progress(self):
        """Let pending collectives advance (one MPI Test each, oldest first); cheap."""
        for entry in self.pending:
            if not entry[0].Test():
                return
        self.pending.clear()

    def wait(self, entry):
        """Block until the collective completes; past the deadline, name suspects and abort."""
        request, what, seq = entry
        if not request.Test():
            start = time.monotonic()
            deadline, spin_until, pause = start + self.timeout, start + SPIN_S, 0.0
            while not request.Test():
                now = time.monotonic()
                if now > deadline:
                    self._timed_out(what, seq)
                if now > spin_until:               # a long wait (a slower rank): give the
                    time.sleep(pause)              # cores back, checking every 0.2 ms at most
                    pause = min(2e-4, pause + 2e-5)
        if entry in self.pending:
            self.pending.remove(entry)

    def _timed_out(self, what, seq):
        suspects, where = self.exchange_status(seq, grace=min(5.0, self.timeout / 4 + 0.05))
        named = ", ".join(map(str, suspects)) or "none (all answered)"
        message = (f"tga.distributed: rank {self.rank} of {self.size}: collective #{seq} "
                   f"({what}) did not complete within {self.timeout:g} s "
                   f"({TIMEOUT_ENV} / init(timeout=...)); suspected dead or hung rank(s): "
                   f"{named}")
        message += "".join(f"; rank {r} is at collective #{s}" for r, s in sorted(where.items()))
        self.abort(message)

    def exchange_status(self, seq, grace):
        """Send seq to every other rank on the side communicator and collect theirs for up to
        grace seconds: (ranks that sent nothing, {rank: its seq}). Eager small sends: they
        complete without the receiver's help, so a live rank always gets its word out."""
        mine = np.array([seq], dtype=np.int64)
        others = [r for r in range(self.size) if r != self.rank]
        inbox = {r: np.zeros(1, dtype=np.int64) for r in others}
        recvs = {r: self.side.Irecv(inbox[r], source=r, tag=_STATUS_TAG) for r in others}
        sends = [self.side.Isend(mine, dest=r, tag=_STATUS_TAG) for r in others]
        deadline = time.monotonic() + grace
        heard = {}
        while len(heard) < len(others) and time.monotonic() < deadline:
            for r, req in recvs.items():
                if r not in heard and req.Test():
                    heard[r] = int(inbox[r][0])
            time.sleep(1e-3)
        del sends
        return [r for r in others if r not in heard], heard

    def abort(self, message, code=1):
        """Print message on stderr and end every rank of the job (MPI_Abort)."""
        print(message, file=sys.stderr, flush=True)
        self.comm.Abort(code)

    def close(self):
        """Free the side communicator (MPI_Finalize itself runs at exit, through mpi4py)."""
        for entry in list(self.pending):
            self.wait(entry)
        self.side.Free()


# ---- flat buffers: gradient buckets ---------------------------------------------------------
def flat_buffer(n, dtype):
    """A fresh contiguous 1-d array of n elements: a bucket."""
    return np.zeros(n, dtype=dtype)


def pack(flat, arrays, offsets):
    """flat[off:off + a.size] = a.ravel() for each array (None: zeros there)."""
    for a, (start, stop) in zip(arrays, offsets):
        if a is None:
            flat[start:stop] = 0
        else:
            flat[start:stop] = a.reshape(-1)


def unpack(flat, arrays, offsets, scale):
    """a[...] = flat[off:off + a.size] * scale, into each array (in place; None skipped)."""
    if scale != 1:
        flat *= flat.dtype.type(scale)
    for a, (start, stop) in zip(arrays, offsets):
        if a is not None:
            a[...] = flat[start:stop].reshape(a.shape)


def to_contiguous(x):
    """(x itself or a contiguous copy, whether it is a copy)."""
    if x.flags.c_contiguous:
        return x, False
    return np.ascontiguousarray(x), True


def to_bytes_array(obj):
    """obj pickled, as a uint8 array (n,)."""
    import pickle
    return np.frombuffer(pickle.dumps(obj), dtype=np.uint8).copy()


def from_bytes_array(buf):
    import pickle
    return pickle.loads(buf.tobytes())


def int64_array(values):
    return np.array(values, dtype=np.int64)


def copy_into(dst, src):
    dst[...] = src


def divide_(buf, n):
    """buf /= n in place, floating buffers only."""
    buf /= buf.dtype.type(n)


def all_zero(flat, start, stop):
    return not flat[start:stop].any()
