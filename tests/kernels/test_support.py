"""The kernels' support layer (tinygradattn._support): the thread count every kernel defaults
to (set_num_threads, $OMP_NUM_THREADS, OpenMP's default). ISA switches: test_isa.py.
"""
import pytest

from tinygradattn import _support


pytestmark = pytest.mark.usefixtures("core_threads_on_small_work")


def test_thread_helpers():
    assert isinstance(_support.openmp_enabled(), bool)
    default = _support.effective_n_threads()
    assert default >= 1
    try:
        _support.set_num_threads(3)
        assert _support.effective_n_threads() == (3 if _support.openmp_enabled() else 1)
        _support.set_num_threads(None)
        assert _support.effective_n_threads() == default
        _support.set_num_threads(2)
        _support.set_num_threads(0)
        assert _support.effective_n_threads() == default
    finally:
        _support.set_num_threads(None)
    with pytest.raises(ValueError):
        _support.set_num_threads(-1)


def test_omp_num_threads_env(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "5")
    assert _support.effective_n_threads() == (5 if _support.openmp_enabled() else 1)
