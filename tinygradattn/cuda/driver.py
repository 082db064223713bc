"""numba-cuda, loaded on first use: whether a device is there, the one error when it is not,
host <-> device copies (each one counted), synchronize.

Nothing imports numba before a cuda tensor is asked for: `import tinygradattn` stays free of
it. `NUMBA_ENABLE_CUDASIM=1` (set before numba is imported) runs every kernel in numba's CUDA
simulator: how the tests run without a GPU.
"""
import os
import sys
import threading

_cuda = None            # numba.cuda once loaded
_error = None           # why it cannot run, once asked

INSTALL_HINT = ('install the CUDA extra: pip install "tinygradattn[cuda]" (numba, numba-cuda '
                'and the CUDA 13 compiler and runtime wheels), on a machine with an NVIDIA GPU '
                'and driver; or set NUMBA_ENABLE_CUDASIM=1 before starting Python to run the '
                'kernels in numba\'s CUDA simulator')

# host <-> device copies made so far; tests read them to show that data stays on the device
COPIES = {"host_to_device": 0, "device_to_host": 0, "bytes_to_device": 0, "bytes_to_host": 0}


def numba_cuda():
    """numba.cuda, imported on first use; RuntimeError (one line, what is missing and how to
    install it) when it cannot run here."""
    global _error
    if _cuda is not None:
        return _cuda
    if _error is None:
        _error = _probe()
        if _error is None:
            return _cuda
    raise RuntimeError(f"device 'cuda' is not available: {_error}; {INSTALL_HINT}")


def _probe():
    """None when numba.cuda runs here (a GPU or the simulator), else what is missing."""
    global _cuda
    try:
        from numba import cuda
    except ImportError as e:
        return f"numba-cuda is not installed ({e})"
    except Exception as e:        # noqa: BLE001 - a broken install must not crash the caller
        return f"numba-cuda failed to import ({type(e).__name__}: {e})"
    try:
        if not cuda.is_available():
            return "no CUDA GPU or driver was found (numba.cuda.is_available() is False)"
    except Exception as e:        # noqa: BLE001
        return f"the CUDA driver could not be initialised ({type(e).__name__}: {e})"
    if _config_simulated():
        _shared_arrays_made_atomically()
    _cuda = cuda
    return None


def _config_simulated():
    from numba import config
    return bool(config.ENABLE_CUDASIM)


def _shared_arrays_made_atomically():
    """Make the simulator's cuda.shared.array a check-then-set under a lock.

    The simulator runs each CUDA thread as a Python thread; the first thread of a block to
    reach a `cuda.shared.array` line makes the array and stores it under (file, line), later
    ones look it up. numba-cuda does the look-up and the store without a lock: a thread
    switch between them (likelier the busier the machine) lets two threads each make their
    own array, and from then on they share nothing: a tile one thread writes is never seen by
    the other, which reads np.empty garbage (wrong or NaN results of any kernel with shared
    memory, only now and then, more often on a loaded machine; tests/cuda/
    test_cuda_simulator.py forces that switch). The same as numba-cuda's
    FakeCUDAShared.array otherwise (dynamic shared memory, shape 0, and alignment go to it
    unchanged). Not a GPU bug: on a GPU a block's shared array is one by construction."""
    import numpy as np
    from numba.cuda.simulator import kernelapi

    original = kernelapi.FakeCUDAShared.array
    if getattr(original, "_tga_atomic", False):
        return
    lock = threading.Lock()

    def array(self, shape, dtype, alignment=None):
        if shape == 0 or alignment is not None:
            return original(self, shape, dtype, alignment)
        if isinstance(dtype, kernelapi.types.Type):                 # as numba-cuda does
            dtype = kernelapi.numpy_support.as_dtype(dtype)
        frame = sys._getframe(1)
        caller = (frame.f_code.co_filename, frame.f_lineno)     # numba's key: file, line
        with lock:
            res = self._allocations.get(caller)
            if res is None:
                res = np.empty(shape, dtype)
                self._allocations[caller] = res
        return res
    array._tga_atomic = True
    kernelapi.FakeCUDAShared.array = array


def is_available():
    """True when cuda tensors can be made here: a GPU with numba-cuda, or the simulator."""
    try:
        numba_cuda()
    except RuntimeError:
        return False
    return True


def simulated():
    """True when kernels run in numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1)."""
    numba_cuda()
    from numba import config
    return bool(config.ENABLE_CUDASIM)


def env_simulated():
    """The simulator's switch as the environment sets it, without importing numba."""
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")


def device_count():
    if not is_available():
        return 0
    cuda = numba_cuda()
    return 1 if simulated() else len(cuda.gpus)


def synchronize():
    """Wait for every kernel launched so far (torch.cuda.synchronize)."""
    numba_cuda().synchronize()


def device_name():
    cuda = numba_cuda()
    if simulated():
        return "numba CUDA simulator"
    name = cuda.get_current_device().name
    return name.decode() if isinstance(name, bytes) else name


def copy_to_device(dst, host):
    """host (a C-contiguous numpy array of dst's dtype and size) -> dst, a flat device
    buffer of at least host.size elements. Counted in COPIES."""
    if host.size:
        dst[:host.size].copy_to_device(host.reshape(-1))
        COPIES["host_to_device"] += 1
        COPIES["bytes_to_device"] += host.nbytes


def copy_to_host(src, n, out):
    """The first n elements of the flat device buffer src -> out (a flat numpy array).
    Counted in COPIES. Raises first what a kernel has flagged (check_word)."""
    raise_pending()
    if n:
        src[:n].copy_to_host(out)
        COPIES["device_to_host"] += 1
        COPIES["bytes_to_host"] += out.nbytes
    return out


# ---- device-side checks (as CUDA's device asserts: raised at the next host read) -----------
# A kernel that validates its input (cross-entropy's targets, an index in range) cannot raise:
# it writes a nonzero code into one device word instead. The word is read back before the
# next device -> host copy (that copy synchronises anyway), and a set code raises the error
# registered for it there. Reading it is a copy of its own, counted under "checks".
_CHECKS = {"word": None, "armed": False, "errors": {}}
COPIES["checks"] = 0


def check_word(error_type, message):
    """(the device error word: a 1-element int32 array, the code a kernel writes into it on
    failure) for an error raised as error_type(message) at the next host read."""
    cuda = numba_cuda()
    if _CHECKS["word"] is None:
        import numpy as np
        _CHECKS["word"] = cuda.to_device(np.zeros(1, dtype=np.int32))
    errors = _CHECKS["errors"]
    code = errors.setdefault((error_type, message), len(errors) + 1)
    _CHECKS["armed"] = True
    return _CHECKS["word"], code


def raise_pending():
    """Raise the error a kernel has flagged since the last check (and clear the word)."""
    if not _CHECKS["armed"]:
        return
    import numpy as np
    _CHECKS["armed"] = False
    word = _CHECKS["word"]
    value = int(word.copy_to_host()[0])
    COPIES["checks"] += 1
    if value:
        word.copy_to_device(np.zeros(1, dtype=np.int32))
        for (error_type, message), code in _CHECKS["errors"].items():
            if code == value:
                raise error_type(message)
        raise RuntimeError(f"a cuda kernel reported error code {value}")
