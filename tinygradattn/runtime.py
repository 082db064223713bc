"""Thread count and build facts of the CPU kernels."""
from . import _core


def set_num_threads(n):
    """Threads our CPU kernels use (torch.set_num_threads); None resets to the default."""
    if n is not None and (not isinstance(n, int) or n < 1):
        raise ValueError(f"set_num_threads: expected a positive int, got {n!r}")
    _core.set_num_threads(n)


def get_num_threads():
    return _core.effective_n_threads()


def backend_info():
    """What the CPU kernels were built with: OpenMP on or off, and the thread count."""
    info = {"openmp": bool(_core.openmp_enabled()), "n_threads": _core.effective_n_threads()}
    if hasattr(_core, "gemm_isa"):
        info["gemm_isa"] = _core.gemm_isa()
    from . import _attention, _fused, _optim
    info["rowmath_isa"] = _fused.rowmath_isa()          # softmax, layer norm, cross-entropy
    info["attention_isa"] = _attention.kernel_isa()
    info["optim_isa"] = _optim.optim_isa()
    from .backend.cpu import POOL
    info["buffer_pool"] = POOL.stats()
    return info


def empty_cache():
    """Release the CPU buffer pool's idle buffers (like torch.cuda.empty_cache)."""
    from .backend.cpu import POOL
    POOL.clear()
