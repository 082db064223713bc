"""How our CUDA kernels are compiled and launched.

- **Explicit signatures.** Each kernel is a factory `factory(tune, *key) -> (python function,
  numba signature)`; the key names what varies (dtypes, variants) and `tune` the block and
  tile sizes, which become compile-time constants. `KernelSet.get` compiles a key once per
  process with `cuda.jit(signature, cache=True)`: no type inference on the launch path, and
  the machine code is cached on disk (numba's cache, under __pycache__ or
  NUMBA_CACHE_DIR), so a second process starts without compiling.
- **Every kernel is listed.** `KernelSet.served` names the keys a kernel serves; the
  compile test (tests/cuda/test_cuda_compile.py) compiles every one of them for sm_90 with
  `compile_ptx` on a machine with no GPU.
- **Launch configurations are cached** (`kernel[grid, block]` builds an object each time).
- **Shapes and strides travel as fixed-length int tuples** (`dims`): one scalar argument
  each, no device array made per call.
- **Sizes are parameters** (`TUNING`): the simulator runs every thread in Python, so there
  they are tiny; on a GPU they are what the kernels were tuned for.
"""
import functools

import numpy as np

from . import driver

MAX_DIMS = 6        # strided kernels see at most this many dims (after merging, launch.merge)

# block and tile sizes: a GPU's, and the simulator's (tiny: it runs each thread in Python)
GPU_TUNING = {
    "threads": 256,          # 1-D kernels: threads per block
    "max_blocks": 65536,     # 1-D kernels: grid-stride loops beyond this many blocks
    "row_threads": 128,      # row kernels (softmax, layer norm, ...): threads per row block
    "rows_colsum_chunks": 64,     # layer-norm dweight / dbias: at most this many row chunks
    "rows_colsum_min_rows": 32,   # ... of at least this many rows each
    "gemm_tile_m": 64, "gemm_tile_n": 64, "gemm_tile_k": 16,   # GEMM block tile
    "gemm_micro_m": 4, "gemm_micro_n": 4,                      # GEMM per-thread register tile
    "linalg_sum_cols": 32, "linalg_sum_rows": 8,               # column sum (dbias) block
    "linalg_sum_chunk_rows": 256, "linalg_sum_max_chunks": 128,  # its row chunks (2 passes)
    "attn_block_q": 64, "attn_block_k": 64,                    # attention tiles (upper
    "attn_threads": 256,                                       # bounds: see attention.py)
    "optim_threads": 256,
    "sort_tile": 1024, "sort_threads": 256,      # row sort: columns per shared-memory tile
    "indexing_mask_chunk": 32,   # boolean masks: mask elements one thread counts / compacts
    "optim_items": 4,            # optimizer steps: elements per thread per block chunk
    "optim_arrays": 8,           # optimizer steps: arrays per launch (tuples of buffers)
    # reductions: threads per block; outputs per block when neighbouring threads own
    # neighbouring outputs (column sums); most elements one lane folds before the reduced
    # range is cut in chunks (two passes); fewest a lane gets when cut for parallelism;
    # blocks wanted (about 2 per SM of an H100) before few outputs are cut for parallelism
    "reduce_threads": 256, "reduce_outputs": 32, "reduce_items": 64, "reduce_min_items": 8,
    "reduce_blocks": 264, "reduce_grid": 65536,      # grid cap: blocks loop over the rest
}
SIM_TUNING = {
    "threads": 16, "max_blocks": 2, "row_threads": 8,
    "rows_colsum_chunks": 3, "rows_colsum_min_rows": 2,
    "gemm_tile_m": 8, "gemm_tile_n": 8, "gemm_tile_k": 4, "gemm_micro_m": 2, "gemm_micro_n": 2,
    "linalg_sum_cols": 4, "linalg_sum_rows": 4, "linalg_sum_chunk_rows": 8,
    "linalg_sum_max_chunks": 4,
    "attn_block_q": 4, "attn_block_k": 4, "attn_threads": 8,
    "optim_threads": 32, "optim_items": 2, "optim_arrays": 4,
    "indexing_mask_chunk": 4,
    "sort_tile": 8, "sort_threads": 4,
    "reduce_threads": 32, "reduce_outputs": 8, "reduce_items": 2, "reduce_min_items": 1,
    "reduce_blocks": 2, "reduce_grid": 2,
}
TUNING = {}         # filled on first use: GPU_TUNING or SIM_TUNING, then any overrides


def tuning():
    """The sizes kernels are compiled with in this process."""
    if not TUNING:
        TUNING.update(SIM_TUNING if driver.simulated() else GPU_TUNING)
    return TUNING


@functools.cache
def device_function(fn):
    """fn compiled as a numba device function, once per process (kernels call it)."""
    from numba import cuda
    return cuda.jit(device=True)(fn)


def numba_type(dtype):
    """numpy dtype -> numba scalar type."""
    from numba import from_dtype
    return from_dtype(np.dtype(dtype))


def array_type(dtype):
    """The type of a flat C-contiguous buffer of dtype (what every kernel receives)."""
    return numba_type(dtype)[::1]


def dims_type():
    """The type of a shape or strides argument: a tuple of MAX_DIMS int64."""
    from numba import types
    return types.UniTuple(types.int64, MAX_DIMS)


def dims(values, fill):
    """values padded at the front with `fill` to MAX_DIMS (a shape pads with 1, strides 0)."""
    values = tuple(int(v) for v in values)
    if len(values) > MAX_DIMS:
        raise RuntimeError(f"cuda kernels take at most {MAX_DIMS} dims after merging, "
                           f"got {len(values)}: {values}")
    return (fill,) * (MAX_DIMS - len(values)) + values


def merge(shape, *strides):
    """shape and each operand's strides with size-1 dims dropped and neighbouring dims merged
    where every operand reads them as one: (shape, [strides, ...]) with the fewest dims."""
    keep = [i for i, n in enumerate(shape) if n != 1]
    shape = [shape[i] for i in keep]
    strides = [[s[i] for i in keep] for s in strides]
    d = len(shape) - 1
    while d > 0:
        if all(s[d - 1] == s[d] * shape[d] for s in strides):
            shape[d - 1] *= shape[d]
            del shape[d]
            for s in strides:
                s[d - 1] = s[d]
                del s[d]
        d -= 1
    return tuple(shape), [tuple(s) for s in strides]


def blocks_for(n, threads):
    """Blocks of `threads` covering n items, capped (kernels loop over the rest)."""
    return max(1, min(-(-n // threads), tuning()["max_blocks"]))


class KernelSet:
    """The kernels of one family.

        kernels = KernelSet("elementwise")

        @kernels.define(served=[(np.float32,), (np.float64,)])
        def scale(tune, dtype):
            T = numba_type(dtype)
            def kernel(out, x, n): ...
            return kernel, (array_type(dtype), array_type(dtype), types.int64)

        kernels.launch("scale", (np.float32,), n_blocks, n_threads, out.buf, x.buf, n)
    """

    def __init__(self, family):
        self.family = family
        self.factories = {}         # name -> factory
        self.served = {}            # name -> [key, ...] every key the backend may ask for
        self._compiled = {}         # (name, key) -> dispatcher
        self._configs = {}          # (name, key, grid, block) -> launch configuration

    def define(self, served):
        def register(factory):
            self.factories[factory.__name__] = factory
            self.served[factory.__name__] = [tuple(np.dtype(k) if _is_dtype(k) else k
                                                   for k in key) for key in served]
            return factory
        return register

    def source(self, name, key, tune):
        """(python function, signature) of a kernel, for compile_ptx or cuda.jit."""
        return self.factories[name](tune, *key)

    def get(self, name, key):
        """The compiled kernel for key (compiled on first use)."""
        kernel = self._compiled.get((name, key))
        if kernel is None:
            cuda = driver.numba_cuda()
            fn, signature = self.source(name, key, tuning())
            if driver.simulated():
                kernel = cuda.jit(fn)
            else:
                kernel = cuda.jit(signature, cache=True)(fn)
            self._compiled[(name, key)] = kernel
        return kernel

    def launch(self, name, key, n_blocks, n_threads, *args):
        """Run kernel `name` for `key` on a grid of n_blocks x n_threads (ints or tuples)."""
        cfg_key = (name, key, n_blocks, n_threads)
        config = self._configs.get(cfg_key)
        if config is None:
            config = self.get(name, key)[n_blocks, n_threads]
            # NOTE: the simulator's kernel[grid, block] sets the grid on the kernel itself
            # and returns it: a cached configuration would run with the last grid asked for
            if not driver.simulated():
                self._configs[cfg_key] = config
        config(*args)

    def specs(self, tune=None):
        """Every (name, key, python function, signature) this family serves."""
        tune = GPU_TUNING if tune is None else tune
        for name, keys in self.served.items():
            for key in keys:
                fn, signature = self.source(name, key, tune)
                yield name, key, fn, signature


def _is_dtype(k):
    try:
        return isinstance(k, np.dtype) or (isinstance(k, type) and issubclass(k, np.generic))
    except TypeError:
        return False


FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
DTYPES = FLOATS + (np.dtype(np.int64), np.dtype(np.bool_))
