"""The simulator itself: numba-cuda makes a block's shared array with a look-up and a store
that another thread can run between (driver._shared_arrays_made_atomically closes that gap).
A thread switch forced right after a missed look-up must still leave every thread of the
block on one array; before the fix each thread got its own and read garbage."""
import time

import numpy as np
import pytest

import tinygradattn as tga
from tinygradattn.cuda import driver

pytestmark = pytest.mark.usefixtures("cuda_device")
cuda = None                 # numba.cuda, set by the test: a module global, as the simulator
                            # swaps a kernel's global `cuda` for its per-launch fake


class _SwitchAfterMiss(dict):
    """A shared-array table whose missed look-up sleeps: every other thread of the block
    runs its own look-up in that gap (the interleaving a loaded machine makes by chance)."""

    def get(self, key, default=None):
        found = super().get(key, default)
        if found is None:
            time.sleep(0.002)
        return found


@pytest.fixture
def switch_after_miss(monkeypatch):
    if not driver.simulated():
        pytest.skip("the simulator's shared memory only")
    from numba.cuda.simulator import kernelapi
    init = kernelapi.FakeCUDAShared.__init__

    def slow_init(self, *args):
        init(self, *args)
        self._allocations = _SwitchAfterMiss()
    monkeypatch.setattr(kernelapi.FakeCUDAShared, "__init__", slow_init)


def test_one_shared_array_per_block_even_when_threads_switch_mid_allocation(switch_after_miss):
    global cuda
    cuda = driver.numba_cuda()

    @cuda.jit
    def reverse(out):
        tile = cuda.shared.array(32, np.float32)
        t = cuda.threadIdx.x
        tile[t] = t
        cuda.syncthreads()
        out[t] = tile[31 - t]                               # written by another thread

    out = cuda.to_device(np.zeros(32, np.float32))
    reverse[1, 32](out)
    np.testing.assert_array_equal(out.copy_to_host(), np.arange(32)[::-1])


def test_a_matmul_is_right_when_threads_switch_mid_allocation(switch_after_miss):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((5, 7)).astype(np.float32), rng.standard_normal((7, 3))
    b = b.astype(np.float32)
    got = (tga.tensor(a, device="cuda") @ tga.tensor(b, device="cuda")).cpu().numpy()
    np.testing.assert_allclose(got, a @ b, rtol=1e-5, atol=1e-5)
