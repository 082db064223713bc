"""Memory stays flat over 1,000 training steps and 1,000 generate calls of a small GPT
(issue 16, "Memory"): from step 100 on, the live Tensor count does not move, Python's
allocated blocks and the resident memory stay within the tolerances that memory_probe.py
derives. The detector is shown to fire on leaks injected here (never in the library): a
Tensor, a bare numpy array, and C memory that Python does not see.
"""
import ctypes
import sys

import numpy as np
import pytest

import tinygradattn as tga

import memory_probe as probe

STEPS = 1000
HAS_PROC = probe.rss_bytes() is not None


def _assert_flat(samples):
    faults = probe.flat_report(samples)
    table = "\n".join(f"  step {s.step}: rss {s.rss} tensors {s.n_tensors} blocks {s.blocks}"
                      for s in samples)
    assert not faults, "memory grows:\n" + "\n".join(faults) + "\n" + table
    since_100 = {s.n_tensors for s in samples if s.step >= 100}
    assert len(since_100) == 1, f"live Tensors move after warm-up: {table}"


def test_training_steps_keep_memory_flat():
    model = probe.make_model()
    _assert_flat(probe.measure(probe.training_step(model), STEPS, trace=False))


def test_generate_calls_keep_memory_flat():
    model = probe.make_model()
    _assert_flat(probe.measure(probe.generate_step(model), STEPS, trace=False))


# ---- the detector fires on injected leaks ---------------------------------------------------
def _with_leak(step, leak):
    def leaky_step():
        step()
        leak()
    return leaky_step


def test_one_leaked_tensor_a_training_step_is_caught():
    kept = []                                   # the leak: one (n_embd,) Tensor a step
    step = _with_leak(probe.training_step(probe.make_model()),
                      lambda: kept.append(tga.zeros(probe.CONFIG["n_embd"])))
    samples = probe.measure(step, STEPS, trace=False)
    faults = probe.flat_report(samples)
    by_step = {s.step: s for s in samples}
    assert by_step[STEPS].n_tensors - by_step[100].n_tensors == STEPS - 100
    assert any(f.startswith("n_tensors grew by 900 ") for f in faults), faults
    assert any(f.startswith("blocks grew") for f in faults), faults


def test_a_leaked_numpy_array_is_caught_by_the_block_count():
    kept = []                                   # not a Tensor: the Tensor count cannot see it
    step = _with_leak(lambda: None, lambda: kept.append(np.zeros(32, np.float32)))
    faults = probe.flat_report(probe.measure(step, STEPS, trace=False))
    assert [f.split()[0] for f in faults] == ["blocks"], faults


@pytest.mark.skipif(not HAS_PROC or not sys.platform.startswith("linux"),
                    reason="resident memory is read from /proc/self/statm (Linux)")
def test_leaked_c_memory_is_caught_by_rss():
    # Fresh anonymous pages from mmap, outside Python's and malloc's allocators: malloc could
    # hand back pages the process already has resident (after a long test session its heap
    # is full of freed ones), which RSS would not see grow.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    prot, flags = 0x1 | 0x2, 0x02 | 0x20        # PROT_READ | PROT_WRITE, MAP_PRIVATE | ANON
    size = 8 * 1024                             # one activation of the probe GPT, B*T*C*4
    kept = np.zeros(STEPS, np.uint64)           # preallocated: keeping a pointer allocates
    n_kept = np.zeros(1, np.int64)              # no Python object, so blocks stay flat

    def leak():
        ptr = libc.mmap(None, size, prot, flags, -1, 0)
        assert ptr not in (None, ctypes.c_void_p(-1).value), ctypes.get_errno()
        ctypes.memset(ptr, 1, size)             # touched, so its pages become resident
        kept[n_kept[0]] = ptr
        n_kept[0] += 1
    try:
        faults = probe.flat_report(probe.measure(_with_leak(lambda: None, leak), STEPS,
                                                 trace=False))
    finally:
        for ptr in kept[:n_kept[0]].tolist():
            libc.munmap(ptr, size)
    assert [f.split()[0] for f in faults] == ["rss"], faults


def test_traced_bytes_catch_a_small_numpy_leak():
    """tracemalloc (the script's extra column) sees numpy's data buffers: 900 (32,) float32
    arrays (~210 KiB) pass its 64 KiB tolerance."""
    kept = []
    step = _with_leak(lambda: None, lambda: kept.append(np.zeros(32, np.float32)))
    faults = probe.flat_report(probe.measure(step, STEPS, trace=True))
    assert sorted(f.split()[0] for f in faults) == ["blocks", "traced"], faults


def test_flat_report_needs_a_sample_after_the_baseline():
    samples = probe.measure(lambda: None, 100, marks=(100,), trace=False)
    with pytest.raises(ValueError, match="no sample after step 100"):
        probe.flat_report(samples)
