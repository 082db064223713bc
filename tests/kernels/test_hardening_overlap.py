"""Issue 16, finding 6: one overlap rule for every kernel that writes outputs, and tuning hooks
that refuse settings the kernels cannot run with.

The rule (_support.check_apart): an output may not overlap another output or an input, except
that it may be the very same array as an input where the kernel documents in-place use as
safe. Every refusal is a ValueError naming the arrays, like softmax's ("partially overlaps" for
a pair that may alias, "overlaps" otherwise). Before the fix the cases below ran and wrote
wrong values (or, for _set_tuning, killed the process with SIGFPE: the subprocess test).
"""
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tinygradattn import _core, _elementwise, _indexing, _optim, _rows


N, C = 4, 7
OVERLAP = "overlaps"


def _rng():
    return np.random.default_rng(16)


def _logits_target():
    rng = _rng()
    return rng.standard_normal((N, C)), rng.integers(0, C, N)


# ---------------------------------------------------------------------------- cross-entropy

def test_cross_entropy_fwd_refuses_loss_overlapping_lse():
    logits, target = _logits_target()
    buf = np.zeros(N + 1)
    with pytest.raises(ValueError, match=OVERLAP):
        _rows.cross_entropy_fwd(buf[:N], buf[1:], logits, target, -100, 0.0)


def test_cross_entropy_fwd_refuses_loss_inside_logits():
    logits, target = _logits_target()
    with pytest.raises(ValueError, match="loss .* overlaps input logits"):
        _rows.cross_entropy_fwd(logits.reshape(-1)[C:C + N], np.zeros(N), logits, target,
                                -100, 0.0)


def test_cross_entropy_fwd_refuses_probs_overlapping_inv_sum():
    logits, target = _logits_target()
    probs = np.zeros((N, C))
    with pytest.raises(ValueError, match=OVERLAP):
        _rows.cross_entropy_fwd(np.zeros(N), np.zeros(N), logits, target, -100, 0.0,
                                probs=probs, inv_sum=probs.reshape(-1)[:N])


def test_cross_entropy_bwd_refuses_dlogits_partially_overlapping_logits():
    logits, target = _logits_target()
    loss, lse = np.zeros(N), np.zeros(N)
    _rows.cross_entropy_fwd(loss, lse, logits, target, -100, 0.0)
    buf = np.zeros(N * C + 1)
    buf[:N * C] = logits.reshape(-1)
    with pytest.raises(ValueError, match="dlogits partially overlaps logits"):
        _rows.cross_entropy_bwd(buf[1:].reshape(N, C), np.ones(N), buf[:N * C].reshape(N, C),
                                target, lse, -100, 0.0)


def test_cross_entropy_bwd_refuses_dlogits_over_lse():
    logits, target = _logits_target()
    dlogits = np.zeros((N, C))
    lse = dlogits.reshape(-1)[:N]
    with pytest.raises(ValueError, match="dlogits .* overlaps input lse"):
        _rows.cross_entropy_bwd(dlogits, np.ones(N), logits, target, lse, -100, 0.0)


def test_cross_entropy_bwd_in_place_still_matches():
    logits, target = _logits_target()
    loss, lse = np.zeros(N), np.zeros(N)
    _rows.cross_entropy_fwd(loss, lse, logits, target, -100, 0.0)
    apart = np.zeros((N, C))
    _rows.cross_entropy_bwd(apart, np.ones(N), logits, target, lse, -100, 0.0)
    inplace = logits.copy()
    _rows.cross_entropy_bwd(inplace, np.ones(N), inplace, target, lse, -100, 0.0)
    np.testing.assert_allclose(inplace, apart, rtol=1e-12, atol=1e-15)


def test_cross_entropy_bwd_probs_refuses_dlogits_over_inv_sum():
    logits, target = _logits_target()
    probs, inv_sum = np.zeros((N, C)), np.zeros(N)
    _rows.cross_entropy_fwd(np.zeros(N), np.zeros(N), logits, target, -100, 0.0,
                            probs=probs, inv_sum=inv_sum)
    dlogits = np.zeros((N, C))
    dlogits.reshape(-1)[:N] = inv_sum
    with pytest.raises(ValueError, match="dlogits .* overlaps input inv_sum"):
        _rows.cross_entropy_bwd_probs(dlogits, np.ones(N), probs, target, -100, 0.0,
                                      inv_sum=dlogits.reshape(-1)[:N])


# ------------------------------------------------------------------------------- layer norm

def test_layer_norm_fwd_refuses_mean_overlapping_rstd():
    x = _rng().standard_normal((N, C))
    buf = np.zeros(N + 1)
    with pytest.raises(ValueError, match="output mean .* overlaps output rstd"):
        _rows.layer_norm_fwd(np.zeros((N, C)), buf[:N], buf[1:], x, None, None, 1e-5)


def test_layer_norm_fwd_refuses_rstd_inside_y():
    x = _rng().standard_normal((N, C))
    y = np.zeros((N, C))
    with pytest.raises(ValueError, match=OVERLAP):
        _rows.layer_norm_fwd(y, np.zeros(N), y.reshape(-1)[C:C + N], x, None, None, 1e-5)


def test_layer_norm_fwd_refuses_y_partially_over_x():
    buf = _rng().standard_normal(N * C + 3)
    with pytest.raises(ValueError, match=OVERLAP):
        _rows.layer_norm_fwd(buf[3:].reshape(N, C), np.zeros(N), np.zeros(N),
                             buf[:N * C].reshape(N, C), None, None, 1e-5)


def test_layer_norm_bwd_refuses_dweight_overlapping_dbias():
    rng = _rng()
    x, dout, w = rng.standard_normal((N, C)), rng.standard_normal((N, C)), np.ones(C)
    mean, rstd = np.zeros(N), np.zeros(N)
    _rows.layer_norm_fwd(np.zeros((N, C)), mean, rstd, x, w, None, 1e-5)
    buf = np.zeros(C + 1)
    with pytest.raises(ValueError, match=OVERLAP):
        _rows.layer_norm_bwd(np.zeros((N, C)), buf[:C], buf[1:], dout, x, w, mean, rstd)


def test_layer_norm_bwd_refuses_dx_partially_over_dout():
    rng = _rng()
    x = rng.standard_normal((N, C))
    mean, rstd = np.zeros(N), np.zeros(N)
    _rows.layer_norm_fwd(np.zeros((N, C)), mean, rstd, x, None, None, 1e-5)
    buf = rng.standard_normal(N * C + 1)
    with pytest.raises(ValueError, match=OVERLAP):
        _rows.layer_norm_bwd(buf[1:].reshape(N, C), None, None, buf[:-1].reshape(N, C), x,
                             None, mean, rstd)


# ------------------------------------------------------------------------------------- GELU

def test_gelu_fwd_refuses_out_partially_over_x():
    buf = _rng().standard_normal(65)
    with pytest.raises(ValueError, match="out partially overlaps x"):
        _elementwise.gelu_fwd(buf[1:], buf[:-1], False)


def test_gelu_bwd_refuses_dx_partially_over_dout_and_x():
    rng = _rng()
    buf, x = rng.standard_normal(65), rng.standard_normal(64)
    with pytest.raises(ValueError, match="dx partially overlaps dout"):
        _elementwise.gelu_bwd(buf[1:], buf[:-1], x, False)
    with pytest.raises(ValueError, match="dx partially overlaps x"):
        _elementwise.gelu_bwd(buf[1:], x, buf[:-1], False)


def test_erf_refuses_out_partially_over_x():
    buf = _rng().standard_normal(65)
    with pytest.raises(ValueError, match="out partially overlaps x"):
        _elementwise.erf(buf[1:], buf[:-1])


def test_gelu_in_place_still_matches():
    x = _rng().standard_normal(64)
    apart = np.zeros(64)
    _elementwise.gelu_fwd(apart, x, False)
    inplace = x.copy()
    _elementwise.gelu_fwd(inplace, inplace, False)
    np.testing.assert_array_equal(inplace, apart)


# ---------------------------------------------------------------------------------- optimizers

def _adam(params, grads, m, v):
    _optim.adam_step(params, grads, m, v, 1, 1e-3, 0.9, 0.999, 1e-8, 0.0, False)


def test_adam_refuses_aliased_moments():
    p, g, m = np.ones(8), np.full(8, 0.5), np.zeros(8)
    with pytest.raises(ValueError, match="exp_avgs\\[0\\] .* overlaps exp_avg_sqs\\[0\\]"):
        _adam([p], [g], [m], [m])
    np.testing.assert_array_equal(p, np.ones(8))          # refused before writing anything


def test_adam_refuses_state_overlapping_another_param():
    p = np.ones(16)
    g = [np.full(8, 0.5), np.full(8, 0.5)]
    with pytest.raises(ValueError, match=OVERLAP):
        _adam([p[:8], p[8:]], g, [np.zeros(8), p[4:12]], [np.zeros(8), np.zeros(8)])


def test_adam_refuses_grad_partially_over_param():
    buf = np.ones(9)
    with pytest.raises(ValueError, match="params\\[0\\] .* overlaps grads\\[0\\]"):
        _adam([buf[1:]], [buf[:-1]], [np.zeros(8)], [np.zeros(8)])


def test_sgd_refuses_momentum_buffer_that_is_the_param():
    p, g = np.ones(8), np.full(8, 0.5)
    with pytest.raises(ValueError, match=OVERLAP):
        _optim.sgd_step([p], [g], [p], 0.1, 0.9, 0.0, 0.0, False, True)


def test_optimizers_accept_a_grad_shared_by_two_params():
    g = np.full(8, 0.5)                                   # inputs may overlap each other
    p = [np.ones(8), np.ones(8)]
    _optim.sgd_step(p, [g, g], None, 0.1, 0.0, 0.0, 0.0, False, True)
    np.testing.assert_allclose(p[1], np.full(8, 0.95))


# -------------------------------------------------------------------- indexing, column sum

def test_add_rows_refuses_dst_over_its_row_indices():
    dst = np.zeros((4, 2))
    rows = dst.reshape(-1)[:2].view(np.int64)             # the index array inside dst's bytes
    with pytest.raises(ValueError, match="output dst .* overlaps input rows"):
        _indexing.add_rows(dst, rows, np.ones((2, 2)))


def test_column_sum_names_the_overlap_like_the_other_kernels():
    x = np.ones((3, 4))
    with pytest.raises(ValueError, match="output out .* overlaps input x"):
        _core.column_sum(x.reshape(-1)[:4], x)


# ---------------------------------------------------------------------------------- tuning

BAD_CORE_TUNING = [
    ("nc_max_bytes", 100), ("mt_max_bytes", 1), ("kc_f32", 0), ("kc_f64", -3),
    ("kc_f32", 10 ** 9), ("nc_max_bytes", 1 << 40), ("direct_a_max_n", -1),
    ("min_flops_per_thread", float("nan")), ("row_min_elems_per_thread", "many"),
    ("kc_f32", 2.5),
]


@pytest.mark.parametrize("name, value", BAD_CORE_TUNING)
def test_core_set_tuning_refuses_bad_values(name, value):
    before = _core._set_tuning()
    try:
        with pytest.raises(ValueError, match=name):
            _core._set_tuning(**{name: value})
        assert _core._set_tuning() == before              # nothing half-applied
    finally:
        _core._set_tuning(**before)


@pytest.mark.parametrize("module, name", [
    (_rows, "min_elems_per_thread"), (_elementwise, "min_elems_per_thread"),
    (_elementwise, "binary_min_elems_per_thread")])
def test_other_set_tuning_refuse_bad_values(module, name):
    before = module._set_tuning()
    try:
        for value in (float("nan"), -1.0, "x"):
            with pytest.raises(ValueError, match=name):
                module._set_tuning(**{name: value})
    finally:
        module._set_tuning(**before)


def test_no_tuning_setting_crashes_a_gemm():
    """Run in a subprocess: before the fix _set_tuning(nc_max_bytes=100) let the next GEMM
    divide by zero (SIGFPE), which would take pytest down with it."""
    script = textwrap.dedent("""
        import numpy as np
        from tinygradattn import _core
        default = _core._set_tuning()
        rng = np.random.default_rng(0)
        for kw in [dict(nc_max_bytes=100), dict(mt_max_bytes=1), dict(kc_f32=0),
                   dict(nc_max_bytes=1, mt_max_bytes=1), dict(kc_f32=4096, nc_max_bytes=4096)]:
            try:
                _core._set_tuning(**kw)
            except ValueError:
                pass
            for m, k, n in [(3, 5, 7), (64, 300, 96)]:
                for dt in (np.float32, np.float64):
                    a = rng.standard_normal((1, m, k)).astype(dt)
                    b = rng.standard_normal((1, k, n)).astype(dt)
                    out = np.empty((1, m, n), dt)
                    _core.gemm(out, a, b)
                    assert np.allclose(out, a @ b, rtol=1e-4, atol=1e-3), kw
            _core._set_tuning(**default)
        print("ok")
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    assert proc.stdout.strip() == "ok"
