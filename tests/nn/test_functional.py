"""nn.functional against torch.nn.functional (check_op: float32 and float64 parity, forward and
backward, then gradcheck in float64), plus dropout statistics and numerically hard inputs."""
import numpy as np
import pytest

import tinygradattn as tga
import tinygradattn.nn.functional as F

from helpers import TOLS, assert_close, check_op


def Fn(L):
    """The functional module of a library: tga.nn.functional or torch.nn.functional."""
    return L.nn.functional


def both(fn):
    """(ours, torch's) callables from fn(L, *tensors)."""
    def ours(*xs):
        return fn(tga, *xs)

    def theirs(*xs):
        import torch
        return fn(torch, *xs)
    return ours, theirs


def check(name, fn, inputs, **kw):
    ours, theirs = both(fn)
    kw.setdefault("tol", "composite")
    check_op(name, ours, theirs, inputs, **kw)


TARGET = np.array([0, 3, 4, 1], dtype=np.int64)
TARGET_IGNORED = np.array([0, -100, 4, 1], dtype=np.int64)
TARGET_ND = np.array([[0, 4, 2], [1, 1, 3]], dtype=np.int64)


# ---- linear, activations --------------------------------------------------------------------
def test_linear_with_bias():
    check("linear_bias", lambda L, x, w, b: Fn(L).linear(x, w, b), [(2, 3, 4), (5, 4), (5,)])


def test_linear_without_bias():
    check("linear", lambda L, x, w: Fn(L).linear(x, w), [(3, 4), (5, 4)])


def test_linear_1d_input():
    check("linear_1d", lambda L, x, w, b: Fn(L).linear(x, w, b), [(4,), (2, 4), (2,)])


def test_relu():
    check("relu", lambda L, x: Fn(L).relu(x), [(3, 5)], domain="distinct")


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu(approximate):
    check(f"gelu_{approximate}", lambda L, x: Fn(L).gelu(x * 3.0, approximate=approximate),
          [(4, 6)])


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_and_log_softmax(dim):
    check("F.softmax", lambda L, x: Fn(L).softmax(x, dim), [(3, 4, 5)])
    check("F.log_softmax", lambda L, x: Fn(L).log_softmax(x, dim), [(3, 4, 5)])


# ---- cross_entropy / nll_loss -------------------------------------------------------------------
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_cross_entropy_reductions(reduction):
    check(f"cross_entropy_{reduction}",
          lambda L, x, t: Fn(L).cross_entropy(x, t, reduction=reduction), [(4, 5), TARGET])


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_cross_entropy_ignore_index_default(reduction):
    check(f"cross_entropy_ignore_{reduction}",
          lambda L, x, t: Fn(L).cross_entropy(x, t, reduction=reduction),
          [(4, 5), TARGET_IGNORED])


def test_cross_entropy_custom_ignore_index():
    check("cross_entropy_ignore_3", lambda L, x, t: Fn(L).cross_entropy(x, t, ignore_index=3),
          [(4, 5), TARGET])


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("smoothing", [0.1, 1.0])
def test_cross_entropy_label_smoothing(reduction, smoothing):
    check(f"cross_entropy_ls{smoothing}_{reduction}",
          lambda L, x, t: Fn(L).cross_entropy(x, t, reduction=reduction,
                                              label_smoothing=smoothing),
          [(4, 5), TARGET_IGNORED])


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_cross_entropy_spatial(reduction):
    check(f"cross_entropy_NCd_{reduction}",
          lambda L, x, t: Fn(L).cross_entropy(x, t, reduction=reduction, label_smoothing=0.2),
          [(2, 5, 3), TARGET_ND])


def test_cross_entropy_unbatched():
    check("cross_entropy_1d", lambda L, x, t: Fn(L).cross_entropy(x, t),
          [(5,), np.array(2, dtype=np.int64)])


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("smoothing", [0.0, 0.25])
def test_cross_entropy_probability_targets(reduction, smoothing):
    check(f"cross_entropy_probs_{reduction}_{smoothing}",
          lambda L, x, p: Fn(L).cross_entropy(x, p.softmax(1), reduction=reduction,
                                              label_smoothing=smoothing),
          [(4, 5), (4, 5)])


def test_cross_entropy_probability_targets_spatial():
    check("cross_entropy_probs_NCd",
          lambda L, x, p: Fn(L).cross_entropy(x, p.softmax(1)), [(2, 4, 3), (2, 4, 3)])


def test_cross_entropy_large_logits_finite():
    torch = pytest.importorskip("torch", reason="torch parity of large logits")
    x = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 5e3]], dtype=np.float32)
    t = np.array([1, 2])
    ours = tga.tensor(x, requires_grad=True)
    loss = F.cross_entropy(ours, tga.tensor(t))
    loss.backward()
    assert np.isfinite(loss.item()) and np.isfinite(ours.grad.numpy()).all()
    theirs = torch.tensor(x, requires_grad=True)
    tl = torch.nn.functional.cross_entropy(theirs, torch.tensor(t))
    tl.backward()
    assert_close(loss.item(), tl.item(), TOLS["float32"]["composite"], "ce 1e4 logits")
    assert_close(ours.grad.numpy(), theirs.grad.numpy(), TOLS["float32"]["composite"],
                 "ce 1e4 grad")


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_nll_loss(reduction):
    check(f"nll_loss_{reduction}",
          lambda L, x, t: Fn(L).nll_loss(x.log_softmax(1), t, reduction=reduction),
          [(4, 5), TARGET_IGNORED])


def test_nll_loss_spatial_and_ignore_index():
    check("nll_loss_NCd",
          lambda L, x, t: Fn(L).nll_loss(x.log_softmax(1), t, ignore_index=1), [(2, 5, 3),
                                                                               TARGET_ND])


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_mse_loss(reduction):
    check(f"mse_loss_{reduction}", lambda L, x, y: Fn(L).mse_loss(x, y, reduction=reduction),
          [(3, 4), (3, 4)])


# ---- layer_norm ----------------------------------------------------------------------------------
@pytest.mark.parametrize("normalized_shape", [4, (4,), (3, 4), (2, 3, 4)])
@pytest.mark.parametrize("affine", ["none", "weight", "both"])
def test_layer_norm(normalized_shape, affine):
    ns = (normalized_shape,) if isinstance(normalized_shape, int) else normalized_shape

    def shape_for(L):      # ours also takes an int, as nn.LayerNorm does; torch's F wants a tuple
        return normalized_shape if L is tga else ns
    if affine == "none":
        fn, inputs = (lambda L, x: Fn(L).layer_norm(x, shape_for(L))), [(2, 3, 4)]
    elif affine == "weight":
        fn, inputs = (lambda L, x, w: Fn(L).layer_norm(x, shape_for(L), w)), [(2, 3, 4), ns]
    else:
        fn = lambda L, x, w, b: Fn(L).layer_norm(x, shape_for(L), w, b)   # noqa: E731
        inputs = [(2, 3, 4), ns, ns]
    check(f"layer_norm_{normalized_shape}_{affine}", fn, inputs)


def test_layer_norm_eps_and_offset_input():
    # a large common offset: the variance must not be computed as E[x^2] - E[x]^2
    check("layer_norm_offset", lambda L, x, w, b: Fn(L).layer_norm(x + 100.0, (5,), w, b,
                                                                    eps=1e-3),
          [(3, 5), (5,), (5,)], gradcheck=False)


# ---- dropout -------------------------------------------------------------------------------------
def test_dropout_p0_and_eval_are_identity():
    x = tga.randn(4, 5, requires_grad=True)
    for out in (F.dropout(x, 0.0), F.dropout(x, 0.7, training=False)):
        np.testing.assert_array_equal(out.detach().numpy(), x.detach().numpy())
    out = F.dropout(x, 0.5, training=False)
    out.backward(tga.ones(4, 5))
    np.testing.assert_array_equal(x.grad.numpy(), np.ones((4, 5), np.float32))


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_mask_statistics_and_scaling(p):
    n = 20000
    x = tga.ones(n)
    out = F.dropout(x, p).numpy()
    zeros = np.mean(out == 0)
    # binomial standard deviation sqrt(p(1-p)/n) <= 0.0036; 5 sigma
    assert abs(zeros - p) < 0.02, f"dropped fraction {zeros}, expected {p}"
    np.testing.assert_allclose(out[out != 0], 1.0 / (1.0 - p), rtol=1e-6)
    assert out.dtype == np.float32


def test_dropout_gradient_is_mask_over_keep_probability():
    p = 0.3
    x = tga.randn(50, 40, requires_grad=True)
    out = F.dropout(x, p)
    kept = out.detach().numpy() != 0
    out.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), kept / (1 - p), rtol=1e-6)


def test_dropout_p1_gives_zeros():
    x = tga.randn(3, 4, requires_grad=True)
    out = F.dropout(x, 1.0)
    out.sum().backward()
    assert not out.detach().numpy().any() and not x.grad.numpy().any()


def test_dropout_reproducible_with_manual_seed():
    tga.manual_seed(5)
    a = F.dropout(tga.ones(100), 0.5).numpy()
    tga.manual_seed(5)
    b = F.dropout(tga.ones(100), 0.5).numpy()
    np.testing.assert_array_equal(a, b)


# ---- embedding -----------------------------------------------------------------------------------
def test_embedding_repeated_indices_accumulate():
    idx = np.array([[0, 2, 0], [5, 5, 0]], dtype=np.int64)
    check("embedding", lambda L, i, w: Fn(L).embedding(i, w), [idx, (6, 3)],
          tol="elementwise")


def test_embedding_gradient_counts():
    w = tga.randn(4, 2, requires_grad=True)
    F.embedding(tga.tensor([1, 1, 1, 3]), w).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy()[:, 0], [0, 3, 0, 1])


# ---- scaled_dot_product_attention ----------------------------------------------------------------
Q, K, V = (2, 2, 3, 4), (2, 2, 5, 4), (2, 2, 5, 6)        # (B, H, T, D), T != S, Dv != D
BOOL_MASK = np.array([[True, False, True, True, False],
                      [False, False, False, True, True],
                      [True, True, True, True, True]])


def sdpa(L, *args, **kw):
    return Fn(L).scaled_dot_product_attention(*args, **kw)


def test_sdpa_plain():
    check("sdpa", lambda L, q, k, v: sdpa(L, q, k, v), [Q, K, V])


def test_sdpa_scale():
    check("sdpa_scale", lambda L, q, k, v: sdpa(L, q, k, v, scale=0.3), [Q, K, V])


def test_sdpa_bool_mask():
    check("sdpa_bool_mask", lambda L, q, k, v, m: sdpa(L, q, k, v, attn_mask=m),
          [Q, K, V, BOOL_MASK])


def test_sdpa_float_mask():
    check("sdpa_float_mask", lambda L, q, k, v, m: sdpa(L, q, k, v, attn_mask=m),
          [Q, K, V, (2, 1, 3, 5)])


@pytest.mark.parametrize("t,s", [(4, 4), (3, 5)])
def test_sdpa_causal(t, s):
    check(f"sdpa_causal_{t}_{s}", lambda L, q, k, v: sdpa(L, q, k, v, is_causal=True),
          [(1, 2, t, 4), (1, 2, s, 4), (1, 2, s, 3)])


def test_sdpa_3d_inputs():
    check("sdpa_3d", lambda L, q, k, v: sdpa(L, q, k, v), [(2, 3, 4), (2, 6, 4), (2, 6, 4)])


def test_sdpa_dropout_p0_deterministic():
    q, k, v = tga.randn(*Q), tga.randn(*K), tga.randn(*V)
    a = F.scaled_dot_product_attention(q, k, v, dropout_p=0.0).numpy()
    b = F.scaled_dot_product_attention(q, k, v).numpy()
    np.testing.assert_array_equal(a, b)
