"""A caching device allocator: size-bucketed free lists of flat device buffers.

`cudaMalloc` and `cudaFree` are slow and `cudaFree` synchronises the device, so a training
step must not call them. Every cuda array's memory is a `Block` from here: a flat 1-D device
buffer of one dtype whose length is the request rounded up to a bucket. When the last array
on a block dies (its reference count, as for any Python object), the block goes back on its
bucket's free list and the next request of that bucket takes it, with no device call.

Reuse is safe without events because everything runs on one stream, in order: a kernel that
writes a reused block runs after every kernel that read it before it was freed.

Buckets: a power of two up to 1 MiB, then steps of 1/8 of the power of two (waste <= 12.5%).
Statistics (`stats()`): device allocations made, requests served from the cache, bytes held
and in use; `empty_cache()` gives the free blocks back to the driver.
"""
import os

import numpy as np

from . import driver

MIN_BYTES = 512
FINE_FROM_BYTES = 1 << 20
# TGA_CUDA_POISON=1 (a debugging aid for kernel writers): every block handed out is first
# filled with NaN (floats) or a large value (ints), so a kernel that reads memory it never
# wrote gives visibly wrong results instead of whatever an earlier kernel left there
POISON = os.environ.get("TGA_CUDA_POISON") == "1"


def bucket_elements(n, itemsize):
    """The element count a request of n elements is rounded up to."""
    n_bytes = max(n * itemsize, MIN_BYTES)
    if n_bytes <= FINE_FROM_BYTES:
        rounded = 1 << (n_bytes - 1).bit_length()
    else:
        step = (1 << (n_bytes - 1).bit_length()) // 8
        rounded = -(-n_bytes // step) * step
    return rounded // itemsize


class Block:
    """One flat device buffer of `n` elements of `dtype`; back to the pool when it dies."""

    __slots__ = ("buf", "dtype", "n", "pool")

    def __init__(self, buf, dtype, n, pool):
        self.buf, self.dtype, self.n, self.pool = buf, dtype, n, pool

    def __del__(self):
        pool = self.pool
        if pool is not None:
            pool._release(self)


class DevicePool:
    def __init__(self):
        self._free = {}             # (dtype, n elements) -> [device buffer, ...]
        self.device_allocs = 0      # device buffers allocated (cudaMalloc)
        self.cache_hits = 0         # requests served from a free list
        self.held_bytes = 0         # all buffers the pool owns (in use or free)
        self.in_use_bytes = 0
        self.peak_in_use_bytes = 0

    def allocate(self, n, dtype):
        """A Block of at least n elements of dtype (uninitialised)."""
        dtype = np.dtype(dtype)
        size = bucket_elements(n, dtype.itemsize)
        free = self._free.get((dtype, size))
        if free:
            buf = free.pop()
            self.cache_hits += 1
        else:
            buf = self._device_alloc(size, dtype)
        self.in_use_bytes += size * dtype.itemsize
        self.peak_in_use_bytes = max(self.peak_in_use_bytes, self.in_use_bytes)
        if POISON:
            junk = np.nan if dtype.kind == "f" else (True if dtype.kind == "b" else 0x5A5A5A5A)
            buf.copy_to_device(np.full(size, junk, dtype=dtype))     # not counted: a debug aid
        return Block(buf, dtype, size, self)

    def _device_alloc(self, size, dtype):
        cuda = driver.numba_cuda()
        try:
            buf = cuda.device_array(size, dtype=dtype)
        except Exception as first:  # noqa: BLE001 - out of memory: drop the cache, try again
            self.empty_cache()
            try:
                buf = cuda.device_array(size, dtype=dtype)
            except Exception:       # noqa: BLE001
                raise RuntimeError(
                    f"CUDA out of memory: tried to allocate {size * dtype.itemsize} bytes "
                    f"({size} x {dtype.name}) with {self.in_use_bytes} bytes in use "
                    f"({type(first).__name__}: {first})") from None
        self.device_allocs += 1
        self.held_bytes += size * dtype.itemsize
        return buf

    def _release(self, block):
        self.in_use_bytes -= block.n * block.dtype.itemsize
        self._free.setdefault((block.dtype, block.n), []).append(block.buf)

    def empty_cache(self):
        """Give every free buffer back to the driver (buffers in use stay)."""
        for (dtype, size), bufs in self._free.items():
            self.held_bytes -= len(bufs) * size * dtype.itemsize
        self._free.clear()

    def stats(self):
        return {"device_allocs": self.device_allocs, "cache_hits": self.cache_hits,
                "held_bytes": self.held_bytes, "in_use_bytes": self.in_use_bytes,
                "peak_in_use_bytes": self.peak_in_use_bytes}


POOL = DevicePool()
