"""The CUDA optimizer steps and foreach_mul_ (tinygradattn/cuda/optim.py) against the CPU
backend's fused kernels, several steps each, in numba's CUDA simulator (tests/conftest.py).

Parameter lists are longer than the simulator's `optim_arrays` (4), so a step takes several
launches; shapes are odd ((), (1,), primes, 3-d). The simulator computes cuda.fma as a * b + c
(two roundings) where the CPU calls fma(): results agree to a few ulps, not bit for bit
(tolerances below; a GPU runs true FMAs).
"""

import numpy as np
import pytest

from tinygradattn.backend import get_backend
from tinygradattn.cuda import driver, launch, views

cuda = get_backend("cuda")
cpu = get_backend("cpu")

SHAPES = [(), (1,), (7,), (3, 5), (2, 3, 4), (37,)]
TOL = {np.dtype(np.float32): dict(rtol=2e-6, atol=2e-7),
       np.dtype(np.float64): dict(rtol=1e-13, atol=1e-15)}


def to_dev(x):
    """x on the device. NOTE: a 0-d array goes up as (1,) and is reshaped: array.from_host
    (np.ascontiguousarray) turns a 0-d array into shape (1,)."""
    return cuda.from_host(x) if x.ndim else cuda.reshape(cuda.from_host(x.reshape(1)), ())


def for_cpu(x):
    """x as the CPU kernels take it: a 0-d array as a (1,) view (NOTE: the CPU backend's
    _optim_call makes grads with np.ascontiguousarray, which turns 0-d into (1,), and then
    rejects the shape against the 0-d param)."""
    return x.reshape(1) if x.ndim == 0 else x


def arrays(rng, dtype, shapes=SHAPES, scale=1.0):
    return [np.asarray(scale * rng.standard_normal(s), dtype=dtype) for s in shapes]


def assert_same(host, dev, what):
    for i, (h, d) in enumerate(zip(host, dev)):
        d = cuda.to_host(d)
        assert d.shape == h.shape and d.dtype == h.dtype
        np.testing.assert_allclose(d, h, err_msg=f"{what}[{i}] {h.shape}", **TOL[h.dtype])


def test_the_simulator_splits_these_lists_into_several_launches():
    assert launch.tuning()["optim_arrays"] < len(SHAPES)


# ---- SGD -------------------------------------------------------------------------------------
SGD_CASES = [  # momentum, dampening, nesterov, weight_decay
    (0.0, 0.0, False, 0.0), (0.0, 0.0, False, 0.01), (0.9, 0.0, False, 0.0),
    (0.9, 0.1, False, 0.01), (0.8, 0.0, True, 0.0), (0.9, 0.0, True, 0.05)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("momentum, dampening, nesterov, weight_decay", SGD_CASES)
def test_sgd_steps(momentum, dampening, nesterov, weight_decay, dtype):
    rng = np.random.default_rng(1)
    params = arrays(rng, dtype)
    bufs = [np.zeros_like(p) for p in params] if momentum else None
    d_params = [to_dev(p) for p in params]
    d_bufs = [to_dev(b) for b in bufs] if momentum else None
    for step in range(3):
        grads = arrays(rng, dtype)
        args = (0.1, momentum, dampening, weight_decay, nesterov, step == 0)
        cpu.sgd_step([for_cpu(p) for p in params], [for_cpu(g) for g in grads],
                     [for_cpu(b) for b in bufs] if momentum else None, *args)
        cuda.sgd_step(d_params, [to_dev(g) for g in grads], d_bufs, *args)
    assert_same(params, d_params, "params")
    if momentum:
        assert_same(bufs, d_bufs, "momentum_bufs")


# ---- Adam / AdamW ----------------------------------------------------------------------------
ADAM_CASES = [  # beta1, beta2, weight_decay, decoupled
    (0.9, 0.999, 0.0, False), (0.9, 0.999, 0.01, False), (0.9, 0.99, 0.1, True),
    (0.3, 0.999, 0.01, True)]         # beta1 0.3: torch's lerp takes its other branch


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("beta1, beta2, weight_decay, decoupled", ADAM_CASES)
def test_adam_steps(beta1, beta2, weight_decay, decoupled, dtype):
    rng = np.random.default_rng(2)
    params = arrays(rng, dtype)
    ms = [np.zeros_like(p) for p in params]
    vs = [np.zeros_like(p) for p in params]
    d_params, d_ms, d_vs = ([to_dev(a) for a in lst] for lst in (params, ms, vs))
    for step in range(1, 4):
        grads = arrays(rng, dtype)
        args = (step, 1e-2, beta1, beta2, 1e-8, weight_decay, decoupled)
        cpu.adam_step(*([for_cpu(a) for a in lst] for lst in (params, grads, ms, vs)), *args)
        cuda.adam_step(d_params, [to_dev(g) for g in grads], d_ms, d_vs, *args)
    assert_same(params, d_params, "params")
    assert_same(ms, d_ms, "exp_avgs")
    assert_same(vs, d_vs, "exp_avg_sqs")


def test_mixed_dtypes_non_contiguous_params_and_cast_grads():
    """float32 and float64 params in one list (a launch per dtype); a transposed param and
    state updated in place through a copy; float64 grads cast to a float32 param; a sliced
    grad read through a contiguous copy."""
    rng = np.random.default_rng(3)
    params = [np.asarray(rng.standard_normal((4, 3)), np.float32),
              np.asarray(rng.standard_normal(5), np.float64),
              np.asarray(rng.standard_normal((3, 4)), np.float32)]
    ms = [np.zeros_like(p) for p in params]
    vs = [np.full_like(p, 0.5) for p in params]
    d_params = [views.permute(to_dev(np.ascontiguousarray(params[0].T)), (1, 0)),
                to_dev(params[1]), to_dev(params[2])]
    d_ms = [to_dev(m) for m in ms]
    d_vs = [views.permute(to_dev(np.ascontiguousarray(vs[0].T)), (1, 0)), to_dev(vs[1]),
            to_dev(vs[2])]
    for step in range(1, 3):
        grads = [np.asarray(rng.standard_normal((4, 3)), np.float64),
                 np.asarray(rng.standard_normal(5), np.float64),
                 np.asarray(rng.standard_normal((3, 8)), np.float32)[:, ::2]]
        d_grads = [to_dev(grads[0]), to_dev(grads[1]),
                   views.basic_getitem(to_dev(np.ascontiguousarray(grads[2].base)),
                                       (slice(None), slice(None, None, 2)))]
        args = (step, 1e-2, 0.9, 0.999, 1e-8, 0.01, True)
        cpu.adam_step(params, grads, ms, vs, *args)
        cuda.adam_step(d_params, d_grads, d_ms, d_vs, *args)
    assert_same(params, d_params, "params")
    assert_same(vs, d_vs, "exp_avg_sqs")


def test_steps_stay_on_the_device():
    p, g, b = (to_dev(np.ones(9, np.float32)) for _ in range(3))
    before = dict(driver.COPIES)
    cuda.sgd_step([p], [g], [b], 0.1, 0.9, 0.0, 0.0, False, True)
    cuda.adam_step([p], [g], [b], [g], 1, 0.1, 0.9, 0.999, 1e-8, 0.0, False)
    cuda.foreach_mul_([p], cuda.full((), 0.5, np.float32))
    assert driver.COPIES == before


def test_bad_arguments_raise_like_the_cpu():
    p = to_dev(np.ones(3, np.float32))
    with pytest.raises(ValueError, match="momentum != 0 needs momentum_bufs"):
        cuda.sgd_step([p], [p], None, 0.1, 0.9, 0.0, 0.0, False, True)
    with pytest.raises(ValueError, match="step must be >= 1"):
        cuda.adam_step([p], [p], [p], [p], 0, 0.1, 0.9, 0.999, 1e-8, 0.0, False)
    with pytest.raises(ValueError, match=r"grads\[0\]: shape \(2,\), params\[0\] has shape"):
        cuda.sgd_step([p], [to_dev(np.ones(2, np.float32))], None, 0.1, 0.0, 0, 0, False, True)
    with pytest.raises(TypeError, match=r"exp_avgs\[0\]: dtype float64, expected float32"):
        m = to_dev(np.ones(3, np.float64))
        cuda.adam_step([p], [p], [m], [p], 1, 0.1, 0.9, 0.999, 1e-8, 0.0, False)
    with pytest.raises(TypeError, match="expected a float32 or float64"):
        cuda.sgd_step([to_dev(np.ones(3, np.int64))], [p], None, 0.1, 0.0, 0, 0, False, True)
    cuda.sgd_step([], [], None, 0.1, 0.0, 0.0, 0.0, False, True)        # nothing to do


# ---- foreach_mul_ ----------------------------------------------------------------------------
@pytest.mark.parametrize("scale_dtype", [np.float32, np.float64])
def test_foreach_mul_(scale_dtype):
    rng = np.random.default_rng(4)
    xs = arrays(rng, np.float32) + arrays(rng, np.float64, [(5,), (2, 2)])
    xs[2][3] = np.nan
    d_xs = [to_dev(x) for x in xs]
    scale = np.asarray(0.37, scale_dtype)
    cuda.foreach_mul_(d_xs, to_dev(scale))
    cpu.foreach_mul_(xs, scale)
    assert_same(xs, d_xs, "xs")


def test_foreach_mul_by_one_and_non_contiguous():
    x = np.arange(12, dtype=np.float32).reshape(3, 4) - 5
    dx = views.permute(to_dev(np.ascontiguousarray(x.T)), (1, 0))            # transposed
    dy = to_dev(np.array([-0.0, np.inf, np.nan], np.float32))
    cuda.foreach_mul_([dx, dy], cuda.full((), 1.0, np.float32))
    np.testing.assert_array_equal(cuda.to_host(dx), x)
    got = cuda.to_host(dy)
    assert np.signbit(got[0]) and got[1] == np.inf and np.isnan(got[2])
    cuda.foreach_mul_([dx], cuda.full((), -2.0, np.float64))
    np.testing.assert_array_equal(cuda.to_host(dx), x * -2)
