"""The op table of tests/op_table.py a second time, on device "cuda" (numba's CUDA simulator
in CI, a GPU under TGA_TEST_REAL_GPU=1): forward and backward in float32 against our CPU
backend, with float32's tolerances (the simulator computes float32 math in float64, a GPU
does not: nothing tighter than float32 rounding is asked)."""
import numpy as np
import pytest

import tinygradattn as tga

from helpers import TOLS, _is_float, _outputs, _to_np, assert_close, make_inputs, run_tga
from op_table import OPS

pytestmark = pytest.mark.usefixtures("cuda_device")
# entries bigger than this (input elements) are sized for the CPU kernels' tile edges: the
# simulator runs them for minutes, and tests/cuda/test_cuda_linalg.py covers the GPU tile edges
SIMULATOR_MAX_ELEMENTS = 8000


def _cpu_upstream(entry, arrays):
    outs, _ = run_tga(lambda *xs: entry.fn(tga, *xs), arrays, np.float32, [None] * 16, False)
    rng = np.random.default_rng(1)
    return [rng.standard_normal(tuple(o.shape)) if o.dtype.is_floating_point else None
            for o in _outputs(outs)]


@pytest.mark.parametrize("entry", OPS, ids=[o.name for o in OPS])
def test_op_on_cuda_matches_cpu(entry):
    arrays = make_inputs(entry.inputs, entry.domain, seed=0)
    size = sum(a.size for a in arrays)
    if size > SIMULATOR_MAX_ELEMENTS and tga.cuda.is_simulated():
        pytest.skip(f"{size} input elements: too big for the CUDA simulator (runs on a GPU)")
    fn = lambda *xs: entry.fn(tga, *xs)                         # noqa: E731
    upstream = _cpu_upstream(entry, arrays)
    want, want_grads = run_tga(fn, arrays, np.float32, upstream, entry.grad)
    got, got_grads = run_tga(fn, arrays, np.float32, upstream, entry.grad, device="cuda")
    tol = TOLS["float32"][entry.tol]
    for i, (g, w) in enumerate(zip(_outputs(got), _outputs(want))):
        label = f"{entry.name} output {i}"
        assert g.dtype == w.dtype and tuple(g.shape) == tuple(w.shape), (
            f"{label}: cuda gives {g.dtype} {tuple(g.shape)}, cpu {w.dtype} {tuple(w.shape)}")
        if w.dtype.is_floating_point:
            assert_close(_to_np(g), _to_np(w), tol, label, "float32")
        else:
            np.testing.assert_array_equal(_to_np(g), _to_np(w), err_msg=label)
    if not entry.grad:
        return
    for i, (g, w, a) in enumerate(zip(got_grads, want_grads, arrays)):
        if not _is_float(a):
            continue
        label = f"{entry.name} grad of input {i} {a.shape}"
        assert (g is None) == (w is None), f"{label}: cuda grad {g}, cpu grad {w}"
        if w is not None:
            assert g.device == "cuda", f"{label}: the gradient is on {g.device}"
            assert_close(_to_np(g), _to_np(w), tol, label, "float32")
