"""Thread count and build facts of the CPU kernels (asked of the CPU backend)."""
from .backend import get_backend


def set_num_threads(n):
    """Threads our CPU kernels use (torch.set_num_threads); None resets to the default."""
    if n is not None and (not isinstance(n, int) or n < 1):
        raise ValueError(f"set_num_threads: expected a positive int, got {n!r}")
    get_backend("cpu").set_num_threads(n)


def get_num_threads():
    return get_backend("cpu").get_num_threads()


def backend_info():
    """What the CPU kernels were built with and run: OpenMP on or off, the thread count, the
    ISA of each kernel family (``<family>_isa``, see tinygradattn.backend.isa), the pool."""
    return get_backend("cpu").info()


def empty_cache():
    """Release the CPU buffer pool's idle buffers (like torch.cuda.empty_cache)."""
    get_backend("cpu").empty_cache()
