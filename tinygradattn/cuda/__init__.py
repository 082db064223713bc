"""tga.cuda: the GPU as PyTorch's torch.cuda shows it, and the Numba-CUDA kernels behind the
"cuda" device.

The public functions here import no numba until they need it (`import tinygradattn` never
does). The kernels live in this package's modules, one per family, mirroring the CPU side:
elementwise (map / zip / where / fill), reduce, views and indexing, linalg (GEMM and the
linear layers), rows (softmax, log-softmax, layer norm, cross-entropy), attention, optim,
random; array.py is the device array, allocator.py the caching allocator, launch.py how
kernels are compiled and launched, driver.py numba itself.
"""
from . import driver


def is_available():
    """True when cuda tensors can be made: a GPU with numba-cuda installed, or numba's CUDA
    simulator (NUMBA_ENABLE_CUDASIM=1)."""
    return driver.is_available()


def device_count():
    return driver.device_count()


def current_device():
    driver.numba_cuda()
    return 0


def get_device_name(device=None):
    return driver.device_name()


def synchronize(device=None):
    """Wait for every kernel launched so far."""
    driver.synchronize()


def is_simulated():
    """True when the 'GPU' is numba's CUDA simulator."""
    return driver.simulated()


def memory_stats():
    """The caching allocator's counters: device_allocs, cache_hits, held_bytes,
    in_use_bytes, peak_in_use_bytes."""
    from .allocator import POOL
    return POOL.stats()


def memory_allocated(device=None):
    return memory_stats()["in_use_bytes"]


def memory_reserved(device=None):
    return memory_stats()["held_bytes"]


def max_memory_allocated(device=None):
    return memory_stats()["peak_in_use_bytes"]


def empty_cache():
    """Give the allocator's free blocks back to the driver."""
    from .allocator import POOL
    POOL.empty_cache()


def copy_stats():
    """Host <-> device copies made so far: host_to_device, device_to_host and their bytes."""
    return dict(driver.COPIES)


def manual_seed(seed):
    """Seed the device generator (tga.manual_seed seeds it too). Without a usable device it
    does nothing, as torch.cuda.manual_seed, so CPU scripts that seed "every device" run."""
    if not driver.is_available():
        return
    driver.numba_cuda()
    from . import random
    random.default_generator().seed(int(seed))


manual_seed_all = manual_seed


def is_bf16_supported(including_emulation=True):
    """False: tinygradattn has no bfloat16 kernels."""
    return False


def set_device(device):
    """Select the GPU: only device 0 exists here (an int, 'cuda' or 'cuda:0')."""
    index = device if isinstance(device, int) else (str(device).partition(":")[2] or "0")
    if str(index) != "0" or (isinstance(device, str) and not device.startswith("cuda")):
        raise ValueError(f"set_device({device!r}): tinygradattn drives one GPU, cuda:0")
    driver.numba_cuda()

__all__ = ["is_available", "device_count", "current_device", "get_device_name", "synchronize",
           "is_simulated", "memory_stats", "memory_allocated", "memory_reserved",
           "max_memory_allocated", "empty_cache", "copy_stats", "manual_seed",
           "manual_seed_all", "is_bf16_supported", "set_device"]
