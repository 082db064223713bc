"""The gradient reducer behind DistributedDataParallel: flat buckets, Allreduce, averages.

The buckets are host arrays. CPU gradients are packed into them as they are; cuda gradients
are host-staged (one device -> host copy each when packed, one host -> device copy each when
the averages are written back): the Allreduce itself always runs on host memory.

Parameters are grouped into buckets in reverse registration order (roughly the order
backward finishes their gradients), one dtype per bucket, each up to `bucket_cap_bytes`
(the first one up to `first_bucket_bytes` when that is smaller, so communication starts early;
torch's 1 MiB).
Each bucket owns a flat buffer (n,). When every parameter of a bucket has its gradient
(`mark_ready`, from a post-accumulate-grad hook), the gradients are copied into the buffer and
a nonblocking Allreduce(SUM) is started. Buckets start strictly in index order on every rank
(MPI's rule for collectives): a bucket ready early waits for the ones before it.
`finalize()` (queued to run when backward ends) starts what has not started (a parameter with
no gradient on this rank adds zeros), waits for everything, and writes sum / world_size back
into each .grad. A parameter that got no gradient on any rank keeps grad None.

A parameter whose gradient grows again after its bucket started (used again in a nested
backward, e.g. by activation checkpointing) marks the bucket stale: finalize reduces it again
from the final gradients.
"""
from ..backend import mpi as _mpi

FIRST_BUCKET_BYTES = 1 << 20


class Bucket:
    """Parameters (same dtype) sharing one flat buffer; offsets[i] = (start, stop) of param i."""

    def __init__(self, params):
        self.params = params
        self.offsets, n = [], 0
        for p in params:
            self.offsets.append((n, n + p.numel()))
            n += p.numel()
        self.flat = _mpi.flat_buffer(n, params[0]._data.dtype)      # (n,)
        backend = params[0]._backend
        self.device = None if backend.name == "cpu" else backend    # None: host arrays as is
        self.ready = set()
        self.entry = None            # the started Allreduce's request
        self.stale = False

    def reset(self):
        self.ready.clear()
        self.entry = None
        self.stale = False

    def grads(self):
        """The gradients as host arrays (device ones copied to the host), None where none."""
        if self.device is None:
            return [None if p.grad is None else p.grad._data for p in self.params]
        return [None if p.grad is None else self.device.to_host(p.grad._data)
                for p in self.params]


def make_buckets(params, bucket_cap_bytes, first_bucket_bytes=FIRST_BUCKET_BYTES):
    """Buckets over params in reverse order, split by dtype and size."""
    buckets, current, size, cap = [], [], 0, min(first_bucket_bytes, bucket_cap_bytes)
    for p in reversed(params):
        nbytes = p.numel() * p.element_size()
        if current and (p.dtype != current[0].dtype or p._backend is not current[0]._backend
                        or size + nbytes > cap):
            buckets.append(Bucket(current))
            current, size, cap = [], 0, bucket_cap_bytes
        current.append(p)
        size += nbytes
    if current:
        buckets.append(Bucket(current))
    return buckets


class Reducer:
    """Averages the gradients of `params` over ranks once per armed backward pass."""

    def __init__(self, comm, params, bucket_cap_bytes, overlap=True):
        self.comm = comm
        self.buckets = make_buckets(params, bucket_cap_bytes)
        self.bucket_of = {id(p): b for b in self.buckets for p in b.params}
        self.overlap = overlap
        self.armed = False           # set by arm() (DDP's forward), cleared by finalize()
        self.queued = False
        self.next_start = 0

    def arm(self):
        """The next backward pass reduces gradients (called at each synced forward)."""
        for b in self.buckets:
            b.reset()
        self.armed, self.queued, self.next_start = True, False, 0

    def mark_ready(self, p, queue_callback):
        """p.grad holds this pass's gradient (a post-accumulate-grad hook)."""
        if not self.armed:
            return
        if not self.queued:
            queue_callback(self.finalize)
            self.queued = True
        bucket = self.bucket_of[id(p)]
        if bucket.entry is not None:
            bucket.stale = True
            return
        bucket.ready.add(id(p))
        if self.overlap:
            self._start_ready()
            self.comm.progress()

    def _start_ready(self):
        while self.next_start < len(self.buckets):
            bucket = self.buckets[self.next_start]
            if len(bucket.ready) < len(bucket.params):
                return
            self._start(bucket)

    def _start(self, bucket):
        _mpi.pack(bucket.flat, bucket.grads(), bucket.offsets)
        bucket.entry = self.comm.iallreduce(bucket.flat, "sum")
        self.next_start += 1

    def finalize(self):
        """Start the rest, wait for all, write the averages into .grad."""
        if not self.armed:
            return
        self.armed = False
        while self.next_start < len(self.buckets):
            self._start(self.buckets[self.next_start])
        for bucket in self.buckets:
            self.comm.wait(bucket.entry)
            if bucket.stale:         # every rank has the same graph: the same buckets here
                _mpi.pack(bucket.flat, bucket.grads(), bucket.offsets)
                self.comm.wait(self.comm.iallreduce(bucket.flat, "sum"))
            self._write_back(bucket)

    def _write_back(self, bucket):
        _mpi.divide_(bucket.flat, self.comm.size)
        for p, (start, stop) in zip(bucket.params, bucket.offsets):
            if p.grad is None:
                if _mpi.all_zero(bucket.flat, start, stop):
                    continue         # no gradient here, and (all but surely) none anywhere
                p.grad = p._wrap(_from_host(bucket, bucket.flat[start:stop].reshape(p.shape)),
                                 p._backend)
            elif bucket.device is None:
                _mpi.unpack(bucket.flat[start:stop], [p.grad._data], [(0, stop - start)], 1)
                p.grad._version[0] += 1
            else:
                _assign_from_host(p.grad, bucket.flat[start:stop])


def _from_host(bucket, host):
    """A new array on the bucket's device holding host's values (a copy on the cpu)."""
    return host.copy() if bucket.device is None else bucket.device.from_host(host)


def _assign_from_host(tensor, host):
    """tensor[...] = host (flat, tensor.numel() values) on tensor's device, in place."""
    backend = tensor._backend
    backend.assign(tensor._data, backend.from_host(host.reshape(tensor._data.shape)))
    tensor._version[0] += 1


def broadcast_coalesced(comm, tensors, src):
    """Each tensor = rank src's, in place, one Ibcast per dtype (parameters, buffers)."""
    by_dtype = {}
    for t in tensors:
        by_dtype.setdefault((t._data.dtype, t._backend.name), []).append(t)
    for (_, device), group in by_dtype.items():
        if device != "cpu":
            _broadcast_staged(comm, group, src)
            continue
        arrays = [t._data for t in group]
        offsets, n = [], 0
        for a in arrays:
            offsets.append((n, n + a.size))
            n += a.size
        flat = _mpi.flat_buffer(n, arrays[0].dtype)
        _mpi.pack(flat, arrays, offsets)
        comm.wait(comm.ibcast(flat, src))
        _mpi.unpack(flat, arrays, offsets, 1)
        for t in group:
            t._version[0] += 1


def _broadcast_staged(comm, tensors, src):
    """broadcast_coalesced for device tensors of one dtype: packed into a host buffer (device
    -> host copies), one Ibcast, each copied back into its device memory."""
    offsets, n = [], 0
    for t in tensors:
        offsets.append((n, n + t.numel()))
        n += t.numel()
    flat = _mpi.flat_buffer(n, tensors[0]._data.dtype)
    _mpi.pack(flat, [t._backend.to_host(t._data) for t in tensors], offsets)
    comm.wait(comm.ibcast(flat, src))
    for t, (start, stop) in zip(tensors, offsets):
        _assign_from_host(t, flat[start:stop])
