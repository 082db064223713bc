"""Device name -> backend object. Backends load lazily: `cuda` pulls in numba only when used."""
from .base import Backend, PRIMITIVES

_BACKENDS = {}
_SEED = []          # the last manual_seed: a backend created later starts from it


def get_backend(device):
    """The backend for a device string ('cpu', 'cuda', 'cuda:0')."""
    name = str(device).split(":")[0]
    backend = _BACKENDS.get(name)
    if backend is not None:
        return backend
    if name == "cpu":
        from .cpu import CPUBackend
        backend = CPUBackend()
    elif name == "cuda":
        from ..cuda import driver
        driver.numba_cuda()         # a RuntimeError saying what is missing, or numba loads
        from .cuda import CUDABackend
        backend = CUDABackend()
    else:
        raise RuntimeError(f"unknown device {device!r}: expected 'cpu' or 'cuda'")
    if _SEED:
        backend.manual_seed(_SEED[0])
    _BACKENDS[name] = backend
    return backend


def dlpack_backend(obj):
    """The backend of the device holding obj's memory: obj has __dlpack__ (a numpy array, a
    torch tensor) or is a DLPack capsule. TypeError naming obj's type for anything else;
    BufferError for a device other than cpu / cuda."""
    from .dlpack import device_name, source_device
    return get_backend(device_name(*source_device(obj)))


def manual_seed(seed):
    """Seed every backend's generator, and those created later (torch.manual_seed)."""
    _SEED[:] = [seed]
    for backend in _BACKENDS.values():
        backend.manual_seed(seed)


def all_backends():
    """Backends created so far (for manual_seed)."""
    return list(_BACKENDS.values())


__all__ = ["Backend", "PRIMITIVES", "get_backend", "all_backends", "manual_seed",
           "dlpack_backend"]
