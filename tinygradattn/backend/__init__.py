"""Device name -> backend object. Backends load lazily: `cuda` pulls in numba only when used."""
from .base import Backend, PRIMITIVES

_BACKENDS = {}


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
        raise RuntimeError("device 'cuda' is not available in this build of tinygradattn "
                           "(it has no CUDA backend: 'cpu' is the only device)")
    else:
        raise RuntimeError(f"unknown device {device!r}: expected 'cpu' or 'cuda'")
    _BACKENDS[name] = backend
    return backend


def all_backends():
    """Backends created so far (for manual_seed)."""
    return list(_BACKENDS.values())


__all__ = ["Backend", "PRIMITIVES", "get_backend", "all_backends"]
