"""A pool of large host buffers reused once nothing refers to them any more.

Big kernel outputs pay for allocation and first touch more than for arithmetic: a fresh
32 MiB array comes from mmap, and every page faults in on its first write. The CPU backend
takes its kernel outputs from here; a buffer whose last user (Tensor, saved array, view) is
gone is handed out again for the next request of the same byte size, pages already mapped.

"Nothing refers to it" is read off the reference count: the pool holds each buffer in one
list, and every array handed out is a view whose .base is that buffer, so while any view (or
view of a view) is alive the count is higher. Buffers below min_bytes (64 KiB) are not
pooled (malloc serves those well); clear() drops them all.

max_bytes (512 MiB) bounds the *idle* buffers, not the ones in use: a training step whose
activations outgrow it (the base GPT's are ~3 GiB) still gets every buffer back the next
step, pages already mapped, instead of mmap handing out fresh pages for all but the first
512 MiB. Idle buffers are released (least recently handed out first) before new memory is
mapped, once the pool holds more than max_bytes: a workload whose shapes change (an eval
after training, another batch size) does not keep the old step's buffers beside its own.
Finding which buffers are idle reads every held buffer's reference count, so that check runs
only when the pool has grown by max_bytes / 4 since the last one (amortised: a few per
GiB of new buffers), and at most that much new memory is mapped while idle buffers wait.

Every pooled buffer starts on a 64-byte boundary (one cache line, one zmm register), as
torch's allocations do. numpy's large arrays come from mmap 16 bytes past a page start, and
a GEMM writing such an output splits every other vector store across two cache lines. The
pool over-allocates 64 bytes and hands out views at the aligned offset.

64 KiB rather than 1 MiB: a small transformer's activations (a few hundred KiB) come back
from malloc through fresh pages too. (Measured: benchmarks/README.md, "Why the kernels are
shaped as they are".)
"""
from sys import getrefcount

import numpy as np
from numpy import ndarray

_FREE_REFCOUNT = 3      # the bucket's (buffer, offset, tick) entry, the local name,
                        # getrefcount's argument
ALIGN = 64              # bytes


class BufferPool:
    def __init__(self, min_bytes=1 << 16, max_bytes=512 << 20):
        self.min_bytes, self.max_bytes = min_bytes, max_bytes
        self._buckets = {}          # n_bytes -> [(1-D uint8 buffer of n_bytes + ALIGN,
                                    #              offset of its first aligned byte,
                                    #              tick when last handed out), ...]
        self.held_bytes = 0
        self.hits = 0
        self.misses = 0
        self.released = 0           # idle buffers given back to the system
        self._tick = 0
        self._check_at = max_bytes  # held_bytes past which a miss looks for idle buffers

    def empty(self, shape, dtype):
        """An uninitialised C-contiguous array, from a free pooled buffer when one fits."""
        if type(dtype) is not np.dtype:                # callers mostly pass an array's dtype
            dtype = np.dtype(dtype)
        if type(shape) is not tuple:
            shape = (shape,) if isinstance(shape, int) else tuple(shape)
        n_bytes = dtype.itemsize
        for n in shape:
            n_bytes *= n
        if n_bytes < self.min_bytes:
            return np.empty(shape, dtype=dtype)
        bucket = self._buckets.get(n_bytes)
        if bucket is None:
            bucket = self._buckets[n_bytes] = []
        self._tick += 1
        for i in range(len(bucket) - 1, -1, -1):      # the most recently handed out first
            buf, off, _ = bucket[i]
            if getrefcount(buf) == _FREE_REFCOUNT:
                self.hits += 1
                del bucket[i]                             # now the most recent: last
                bucket.append((buf, off, self._tick))
                return ndarray(shape, dtype, buf, off)
        self.misses += 1
        if self.held_bytes + n_bytes > self._check_at:
            self._release_idle()
        buf = np.empty(n_bytes + ALIGN, dtype=np.uint8)
        off = -buf.ctypes.data % ALIGN
        bucket.append((buf, off, self._tick))
        self.held_bytes += n_bytes
        # An array made on buf's memory records buf as its base, and so does every view of
        # it: each counts as a reference to buf itself. (One ndarray() call, not slicing,
        # .view and .reshape: one array creation instead of three.)
        return ndarray(shape, dtype, buf, off)

    def zeros(self, shape, dtype):
        """A C-contiguous array of zeros; a large one in a pooled buffer (a gradient scattered
        into zeros, as a slice's backward makes, reuses an idle activation's pages)."""
        out = self.empty(shape, dtype)
        out.fill(0)
        return out

    def _release_idle(self):
        """Drop idle buffers, least recently handed out first, until at most max_bytes of
        them are left; the next check waits until the pool has grown by max_bytes / 4."""
        idle = []                                     # (tick, n_bytes, bucket, entry)
        for n_bytes, bucket in self._buckets.items():
            for entry in bucket:
                buf = entry[0]
                if getrefcount(buf) == _FREE_REFCOUNT:
                    idle.append((entry[2], n_bytes, bucket, entry))
        idle.sort(key=lambda item: item[0])
        idle_bytes = sum(item[1] for item in idle)
        dropped = set()                               # ids of the entries released
        for _, n_bytes, bucket, entry in idle:
            if idle_bytes <= self.max_bytes:
                break
            dropped.add(id(entry))
            idle_bytes -= n_bytes
            self.held_bytes -= n_bytes
            self.released += 1
        if dropped:                                   # by identity: == would compare arrays
            for n_bytes, bucket in self._buckets.items():
                bucket[:] = [entry for entry in bucket if id(entry) not in dropped]
        self._check_at = max(self.max_bytes, self.held_bytes + self.max_bytes // 4)

    def holds(self, buf):
        """True when buf is one of the pooled buffers (whether in use or free): the .base of
        the arrays it hands out."""
        return any(entry[0] is buf for entry in self._buckets.get(buf.nbytes - ALIGN, ()))

    def clear(self):
        """Forget every pooled buffer (arrays still in use stay valid: they own a reference)."""
        self._buckets.clear()
        self.held_bytes = 0
        self._check_at = self.max_bytes

    def stats(self):
        return {"held_bytes": self.held_bytes, "hits": self.hits, "misses": self.misses,
                "released": self.released, "max_bytes": self.max_bytes}
