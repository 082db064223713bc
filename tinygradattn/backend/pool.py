"""A pool of large host buffers reused once nothing refers to them any more.

Big kernel outputs pay for allocation and first touch more than for arithmetic: a fresh
32 MiB array comes from mmap, and every page faults in on its first write. The CPU backend
takes its kernel outputs from here; a buffer whose last user (Tensor, saved array, view) is
gone is handed out again for the next request of the same byte size, pages already mapped.

"Nothing refers to it" is read off the reference count: the pool holds each buffer in one
list, and every array handed out is a view whose .base is that buffer, so while any view (or
view of a view) is alive the count is higher. Buffers below min_bytes (64 KiB) are not
pooled (malloc serves those well); at most max_bytes are held; clear() drops them all.

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

_FREE_REFCOUNT = 3      # the bucket's (buffer, offset) pair, the loop variable, getrefcount's
                        # argument
ALIGN = 64              # bytes


class BufferPool:
    def __init__(self, min_bytes=1 << 16, max_bytes=512 << 20):
        self.min_bytes, self.max_bytes = min_bytes, max_bytes
        self._buckets = {}          # n_bytes -> [(1-D uint8 buffer of n_bytes + ALIGN,
                                    #              offset of its first aligned byte), ...]
        self.held_bytes = 0
        self.hits = 0
        self.misses = 0

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
        for i in range(len(bucket) - 1, -1, -1):      # the most recently handed out first
            buf, off = bucket[i]
            if getrefcount(buf) == _FREE_REFCOUNT:
                self.hits += 1
                if i < len(bucket) - 1:
                    bucket.append(bucket.pop(i))
                return ndarray(shape, dtype, buf, off)
        self.misses += 1
        buf = np.empty(n_bytes + ALIGN, dtype=np.uint8)
        off = -buf.ctypes.data % ALIGN
        if self.held_bytes + n_bytes <= self.max_bytes:
            bucket.append((buf, off))
            self.held_bytes += n_bytes
        # An array made on buf's memory records buf as its base, and so does every view of
        # it: each counts as a reference to buf itself. (One ndarray() call, not slicing,
        # .view and .reshape: one array creation instead of three.)
        return ndarray(shape, dtype, buf, off)

    def holds(self, buf):
        """True when buf is one of the pooled buffers (whether in use or free): the .base of
        the arrays it hands out."""
        return any(b is buf for b, _ in self._buckets.get(buf.nbytes - ALIGN, ()))

    def clear(self):
        """Forget every pooled buffer (arrays still in use stay valid: they own a reference)."""
        self._buckets.clear()
        self.held_bytes = 0

    def stats(self):
        return {"held_bytes": self.held_bytes, "hits": self.hits, "misses": self.misses,
                "max_bytes": self.max_bytes}
