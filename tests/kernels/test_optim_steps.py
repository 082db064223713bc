"""The optimizer-step kernels of tinygradattn._optim (SGD with momentum, Adam / AdamW) in every
ISA build the CPU runs, against float64 numpy oracles of torch's arithmetic, float32 and float64,
1 and 2 threads; and every build gives the same bits. Against torch itself: test_optim.py.
"""
import math

import numpy as np
import pytest

from tinygradattn import _optim
from tinygradattn.backend import isa
from helpers import close


DTYPES = [np.float32, np.float64]


DT_IDS = ["f32", "f64"]


THREADS = [1, 2]


TOL = {np.float32: dict(rtol=3e-5, atol=3e-6), np.float64: dict(rtol=1e-11, atol=1e-12)}


# ---- optimizers -----------------------------------------------------------------------------
CHUNK = 16384                        # _optim's work item; vector widths 4..16 inside a chunk


OPT_SIZES = [1, 2, 13, 15, 16, 17, 37, CHUNK - 1, CHUNK, CHUNK + 1, 6 * CHUNK + 5]   # > 2 x 64K


OPT_SIZES_TOTAL = sum(OPT_SIZES)


@pytest.fixture(params=isa.isas("optim"))
def optim_level(request):
    assert isa.set_isa("optim", request.param) == request.param
    yield request.param
    isa.set_isa("optim", "auto")


def opt_data(dtype, seed, n=4):
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(s).astype(dtype) for s in OPT_SIZES] for _ in range(n)]


@pytest.mark.parametrize("n_threads", THREADS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_sgd(optim_level, dtype, n_threads):
    assert OPT_SIZES_TOTAL > 2 * 65536                  # 2 threads really run
    lr, mom, damp, wd = 0.05, 0.9, 0.1, 0.01
    for nesterov in (False, True):
        p, g1, g2, _ = opt_data(dtype, 1)
        p0 = [a.astype(np.float64) for a in p]
        bufs = [np.empty_like(a) for a in p]
        _optim.sgd_step(p, g1, bufs, lr, mom, damp, wd, nesterov, True, n_threads)
        _optim.sgd_step(p, g2, bufs, lr, mom, damp, wd, nesterov, False, n_threads)
        for i, (pi, a, b1, b2) in enumerate(zip(p, p0, g1, g2)):
            a = a.copy()
            buf = None
            for g in (b1.astype(np.float64), b2.astype(np.float64)):
                g = g + wd * a
                buf = g if buf is None else mom * buf + (1 - damp) * g
                a = a - lr * (g + mom * buf if nesterov else buf)
            close(pi, a, TOL[dtype], f"sgd [{optim_level}] nesterov={nesterov} size {pi.size}")


@pytest.mark.parametrize("n_threads", THREADS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_adam(optim_level, dtype, n_threads):
    lr, b1, b2, eps, wd = 1e-2, 0.9, 0.999, 1e-8, 0.05
    for decoupled in (False, True):
        p, g, _, _ = opt_data(dtype, 2)
        p0 = [a.astype(np.float64) for a in p]
        m = [np.zeros_like(a) for a in p]
        v = [np.zeros_like(a) for a in p]
        for step in (1, 2):
            _optim.adam_step(p, g, m, v, step, lr, b1, b2, eps, wd, decoupled, n_threads)
        for pi, a, gi in zip(p, p0, g):
            a, gi = a.copy(), gi.astype(np.float64)
            mm = vv = 0.0
            for step in (1, 2):
                if decoupled:
                    a = a * (1 - lr * wd)
                    gg = gi
                else:
                    gg = gi + wd * a
                mm = b1 * mm + (1 - b1) * gg
                vv = b2 * vv + (1 - b2) * gg * gg
                denom = np.sqrt(vv) / math.sqrt(1 - b2 ** step) + eps
                a = a - lr / (1 - b1 ** step) * mm / denom
            close(pi, a, TOL[dtype], f"adam [{optim_level}] decoupled={decoupled} size {pi.size}")


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_optim_variants_give_the_same_bits(dtype):
    """fma() is exact and nothing else contracts: every build rounds alike."""
    results = []
    try:
        for name in isa.isas("optim"):
            isa.set_isa("optim", name)
            p, g, _, _ = opt_data(dtype, 3)
            m, v = [np.zeros_like(a) for a in p], [np.zeros_like(a) for a in p]
            for step in (1, 2, 3):
                _optim.adam_step(p, g, m, v, step, 1e-2, 0.9, 0.999, 1e-8, 0.01, True, 2)
            results.append((name, p))
    finally:
        isa.set_isa("optim", "auto")
    for name, p in results[1:]:
        for a, b in zip(results[0][1], p):
            np.testing.assert_array_equal(a, b, err_msg=f"{results[0][0]} vs {name}")
