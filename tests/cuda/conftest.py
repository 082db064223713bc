"""What every cuda test shares: a quicker simulator, and the check that every kernel a test
launches is one its family lists in `served` (what tests/cuda/test_cuda_compile.py compiles for
the GPU: a key launched but not served would never be compiled before it meets a GPU)."""
import sys

import pytest

from tinygradattn.cuda import driver
from tinygradattn.cuda.launch import KernelSet


@pytest.fixture(autouse=True, scope="session")
def _fast_thread_switches():
    """The simulator runs each CUDA thread as a Python thread while the launching thread
    busy-polls them: at Python's default 5 ms switch interval every barrier waits for the
    poller's time slice. 0.1 ms runs these tests ~3x faster; restored after."""
    interval = sys.getswitchinterval()
    if driver.env_simulated():
        sys.setswitchinterval(1e-4)
    yield
    sys.setswitchinterval(interval)


@pytest.fixture(autouse=True)
def _only_served_keys(monkeypatch):
    launch = KernelSet.launch

    def checked(self, name, key, *args):
        assert key in self.served[name], (f"{self.family}.{name}{key} is launched but not in "
                                           "its served list")
        return launch(self, name, key, *args)
    monkeypatch.setattr(KernelSet, "launch", checked)
