"""Shared pytest setup: seeds for every test, hypothesis profiles, the `device` fixture, and
`attention_isa` (each attention kernel set the CPU runs, forced in turn).

Hypothesis profiles: "ci" (the default: deadline=None because the first call of a kernel
pays for thread-pool warm-up, and few examples) and "thorough" (TGA_HYPOTHESIS=thorough);
"graphs-ci" / "graphs-thorough" for the random expression graphs, chosen the same way.
"""
import os
import random

# cuda tests run in numba's CUDA simulator unless TGA_TEST_REAL_GPU=1 (the GPU check script):
# the switch must be set before numba is imported
if os.environ.get("TGA_TEST_REAL_GPU") != "1":
    os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import tinygradattn as tga
from tinygradattn import _attention, _core
from tinygradattn.backend import isa as backend_isa

from helpers import tuned

settings.register_profile("ci", deadline=None, max_examples=25,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", deadline=None, max_examples=400,
                          suppress_health_check=[HealthCheck.too_slow])
PROFILE = "thorough" if os.environ.get("TGA_HYPOTHESIS") == "thorough" else "ci"
settings.load_profile(PROFILE)
# tests/autograd/test_random_graphs.py: CI runs a fixed set of examples (derandomized: the same
# graphs every run); thorough runs TGA_GRAPH_EXAMPLES (default 5000) random ones, minutes
_GRAPH_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
settings.register_profile("graphs-ci", deadline=None, max_examples=150, derandomize=True,
                          database=None, suppress_health_check=_GRAPH_HEALTH)
settings.register_profile("graphs-thorough", deadline=None,
                          max_examples=int(os.environ.get("TGA_GRAPH_EXAMPLES", "5000")),
                          suppress_health_check=_GRAPH_HEALTH)


@pytest.fixture(autouse=True)
def _seed_everything():
    """Every test starts from the same random state, whatever ran before it."""
    tga.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    yield


def _cuda_available():
    try:
        tga.zeros(1, device="cuda")
    except Exception:      # noqa: BLE001 - any failure means "no usable cuda backend here"
        return False
    return True


@pytest.fixture(params=["cpu", "cuda"])
def device(request):
    """The device a test runs on; cuda is skipped (with the reason) where it is not usable."""
    if request.param == "cuda" and not _cuda_available():
        pytest.skip("cuda backend not available in this build / on this machine")
    return request.param


@pytest.fixture
def core_threads_on_small_work():
    """_core's thread thresholds off (GEMM, softmax family, column sum), so that n_threads=2
    really runs two threads on test-sized problems; restored after."""
    with tuned(_core, min_flops_per_thread=0, row_min_elems_per_thread=0,
               colsum_min_elems_per_thread=0):
        yield


@pytest.fixture(params=backend_isa.isas("attention"))
def attention_isa(request, monkeypatch):
    """Each attention kernel set in turn, with the thread threshold off (2 threads run)."""
    monkeypatch.setattr(_attention, "MIN_FLOPS_PER_THREAD", 1e-9)
    assert backend_isa.set_isa("attention", request.param) == request.param
    yield request.param
    backend_isa.set_isa("attention", "auto")


@pytest.fixture
def cuda_device():
    """'cuda', or a skip naming why it cannot run here."""
    if not _cuda_available():
        pytest.skip("cuda backend not available: numba-cuda not installed, or neither a GPU "
                    "nor NUMBA_ENABLE_CUDASIM=1")
    return "cuda"
