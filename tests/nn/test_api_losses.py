"""Issue 15's losses: the nn loss modules, F.kl_div / l1_loss / binary_cross_entropy(_with_logits)
/ one_hot / pad, and mse_loss's torch signature, against torch (values, gradients, errors) and
on the cuda device (numba's simulator in CI). The op table has the float64 gradcheck entries."""
import warnings

import numpy as np
import pytest

import tinygradattn as tga
from helpers import check_op, check_raises_like_torch

F = tga.nn.functional
torch = pytest.importorskip("torch")
tF = torch.nn.functional
pytestmark = [pytest.mark.filterwarnings("ignore:.*target size:UserWarning"),
              pytest.mark.filterwarnings("ignore:size_average and reduce:UserWarning"),
              pytest.mark.filterwarnings("ignore:reduction. 'mean' divides:UserWarning")]

PROB = lambda rng, shape, slot: rng.uniform(0.05, 0.95, shape)        # noqa: E731
TARGET = np.array([0, 3, 1, 4, 3])


def _fn(L):
    return L.nn.functional


# ---- modules: each calls its functional with its options, as torch's does ---------------------
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_loss_modules_match_torch(reduction):
    cases = [
        ("CrossEntropyLoss", dict(ignore_index=1, label_smoothing=0.1), [(5, 6), TARGET],
         None),
        ("NLLLoss", dict(ignore_index=3), [(5, 6), TARGET], "log_softmax"),
        ("MSELoss", {}, [(3, 4), (3, 4)], None),
        ("L1Loss", {}, [(3, 4), (3, 4)], None),
        ("KLDivLoss", dict(log_target=True), [(3, 4), (3, 4)], "log_softmax_both"),
        ("BCELoss", {}, [(3, 4), (3, 4)], "probs"),
        ("BCEWithLogitsLoss", {}, [(3, 4), (3, 4)], "probs_target"),
    ]
    for name, kw, inputs, prep in cases:
        def fn(L, x, t, name=name, kw=kw, prep=prep):
            if prep == "log_softmax":
                x = x.log_softmax(1)
            elif prep == "log_softmax_both":
                x, t = x.log_softmax(1), t.log_softmax(1)
            return getattr(L.nn, name)(reduction=reduction, **kw)(x, t)
        domain = {"probs": [PROB, PROB], "probs_target": ["real", PROB]}.get(prep, "distinct")
        if name in ("CrossEntropyLoss", "NLLLoss"):
            domain = "real"
        check_op(f"{name}_{reduction}", lambda *a, fn=fn: fn(tga, *a),
                 lambda *a, fn=fn: fn(torch, *a), inputs, domain=domain, tol="composite")


def test_weighted_bce_modules_match_torch():
    w = np.array([0.5, 1.0, 2.0, 0.25])
    pw = np.array([1.5, 0.5, 3.0, 1.0])

    def bce(L, x, t):
        return L.nn.BCELoss(weight=L.tensor(w, dtype=x.dtype))(x, t)

    def bce_logits(L, x, t):
        return L.nn.BCEWithLogitsLoss(weight=L.tensor(w, dtype=x.dtype),
                                      pos_weight=L.tensor(pw, dtype=x.dtype))(x, t)

    check_op("BCELoss_weight", lambda *a: bce(tga, *a), lambda *a: bce(torch, *a),
             [(2, 4), (2, 4)], domain=[PROB, PROB], tol="composite")
    check_op("BCEWithLogitsLoss_weights", lambda *a: bce_logits(tga, *a),
             lambda *a: bce_logits(torch, *a), [(3, 4), (3, 4)], domain=["real", PROB],
             tol="composite")


def test_loss_module_buffers_and_repr():
    m = tga.nn.BCEWithLogitsLoss(pos_weight=tga.ones(3), reduction="sum")
    assert list(m.state_dict()) == ["pos_weight"]
    assert repr(m) == "BCEWithLogitsLoss(reduction='sum')"
    assert tga.nn.BCELoss().weight is None


def test_legacy_size_average_reduce():
    x, t = tga.randn(3, 4), tga.randn(3, 4)
    for kw, reduction in [(dict(reduce=False), "none"), (dict(size_average=False), "sum"),
                          (dict(size_average=True), "mean")]:
        with pytest.warns(UserWarning, match="size_average and reduce"):
            m = tga.nn.MSELoss(**kw)
        assert m.reduction == reduction == torch.nn.MSELoss(**kw).reduction
        with pytest.warns(UserWarning):
            got = F.l1_loss(x, t, **kw)
        want = tF.l1_loss(torch.tensor(x.numpy()), torch.tensor(t.numpy()), **kw)
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6)


CLASS_W = np.array([0.5, 2.0, 1.0, 0.25, 3.0, 1.5])
TARGET_2D = np.array([[0, 5, 1], [4, 4, 2]])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_class_weights_match_torch(reduction):
    """Per-class weights (composed path): 'mean' divides by the weight of the targets."""
    def w(L, x):
        return L.tensor(CLASS_W, dtype=x.dtype)

    cases = [
        ("ce", lambda L, x, t: L.nn.functional.cross_entropy(x, t, w(L, x), reduction=reduction),
         [(5, 6), TARGET]),
        ("ce_ignore_smooth", lambda L, x, t: L.nn.CrossEntropyLoss(
            weight=w(L, x), ignore_index=3, label_smoothing=0.2, reduction=reduction)(x, t),
         [(5, 6), TARGET]),
        ("ce_3d", lambda L, x, t: L.nn.functional.cross_entropy(
            x, t, weight=w(L, x), reduction=reduction, label_smoothing=0.1),
         [(2, 6, 3), TARGET_2D]),
        ("ce_probs", lambda L, x, p: L.nn.functional.cross_entropy(
            x, p.softmax(1), weight=w(L, x), reduction=reduction, label_smoothing=0.1),
         [(4, 6), (4, 6)]),
        ("nll", lambda L, x, t: L.nn.NLLLoss(weight=w(L, x), ignore_index=1,
                                             reduction=reduction)(x.log_softmax(1), t),
         [(5, 6), TARGET]),
        ("nll_3d", lambda L, x, t: L.nn.functional.nll_loss(x.log_softmax(1), t, w(L, x),
                                                            reduction=reduction),
         [(2, 6, 3), TARGET_2D]),
    ]
    for name, fn, inputs in cases:
        check_op(f"{name}_weighted_{reduction}", lambda *a, fn=fn: fn(tga, *a),
                 lambda *a, fn=fn: fn(torch, *a), inputs, tol="composite")
    call = lambda L: L.nn.functional.cross_entropy(L.ones(2, 3), L.tensor([0, 1]),  # noqa: E731
                                                   L.ones(4))
    check_raises_like_torch(call, call, RuntimeError, "weight tensor should be defined")


def test_cross_entropy_takes_torch_positional_order():
    x, t = tga.randn(4, 5), tga.tensor([0, 2, 4, 1])
    got = F.cross_entropy(x, t, None, None, 2, None, "sum")    # weight, size_average, ignore
    want = tF.cross_entropy(torch.tensor(x.numpy()), torch.tensor(t.numpy()), None, None, 2,
                            None, "sum")
    np.testing.assert_allclose(got.item(), want.item(), rtol=1e-5)
    got = F.nll_loss(x, t, None, None, 2)
    assert got.item() == pytest.approx(tF.nll_loss(torch.tensor(x.numpy()),
                                                   torch.tensor(t.numpy()), None, None,
                                                   2).item(), rel=1e-5)


# ---- binary cross-entropy: the edges ---------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_bce_saturated_inputs_match_torch(dtype):
    """x = 0 or 1 (a saturated sigmoid): log clamped at -100, the input gradient torch's
    (x - t) / max(x (1 - x), 1e-12), finite, no warning from log(0)."""
    x = np.array([0.0, 1.0, 0.5, 1.0, 0.0, 1e-30])
    t = np.array([1.0, 0.0, 0.5, 1.0, 0.0, 1.0])
    ours = tga.tensor(x, dtype=dtype, requires_grad=True)
    theirs = torch.tensor(x, dtype=getattr(torch, dtype), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lo = F.binary_cross_entropy(ours, tga.tensor(t, dtype=dtype), reduction="none")
    lt = tF.binary_cross_entropy(theirs, torch.tensor(t, dtype=getattr(torch, dtype)),
                                 reduction="none")
    lo.sum().backward()
    lt.sum().backward()
    np.testing.assert_allclose(lo.detach().numpy(), lt.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-6)


def test_bce_with_logits_extremes_are_stable():
    x = np.array([0.0, 100.0, -100.0, 1000.0, -1000.0, 3.0])
    t = np.array([0.3, 1.0, 0.0, 0.0, 1.0, 1.0])
    for dtype in ("float32", "float64"):
        ours = tga.tensor(x, dtype=dtype, requires_grad=True)
        theirs = torch.tensor(x, dtype=getattr(torch, dtype), requires_grad=True)
        lo = F.binary_cross_entropy_with_logits(ours, tga.tensor(t, dtype=dtype),
                                                reduction="none")
        lt = tF.binary_cross_entropy_with_logits(theirs, torch.tensor(
            t, dtype=getattr(torch, dtype)), reduction="none")
        lo.sum().backward()
        lt.sum().backward()
        np.testing.assert_allclose(lo.detach().numpy(), lt.detach().numpy(), rtol=1e-6,
                                   atol=1e-6)
        # at x = 0 the gradient is sigmoid(0) - t = 0.5 - 0.3 exactly
        np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-6, atol=1e-7)
        assert ours.grad.numpy()[0] == pytest.approx(0.2)


def test_bce_with_logits_gradcheck_all_inputs():
    """Ours also differentiates target and pos_weight (torch refuses pos_weight)."""
    rng = np.random.default_rng(3)
    x = tga.tensor(rng.standard_normal((3, 4)), dtype="float64", requires_grad=True)
    t = tga.tensor(rng.uniform(0.1, 0.9, (3, 4)), dtype="float64", requires_grad=True)
    pw = tga.tensor(rng.uniform(0.5, 2.0, (4,)), dtype="float64", requires_grad=True)
    w = tga.tensor(rng.uniform(0.5, 2.0, (3, 1)), dtype="float64", requires_grad=True)
    assert tga.autograd.gradcheck(
        lambda x, t, pw, w: F.binary_cross_entropy_with_logits(x, t, w, pos_weight=pw),
        (x, t, pw, w))
    assert tga.autograd.gradcheck(
        lambda x, t, w: F.binary_cross_entropy(x.sigmoid(), t, w, reduction="sum"), (x, t, w))


# ---- kl_div ------------------------------------------------------------------------------------
@pytest.mark.parametrize("reduction", ["batchmean", "sum", "none", "mean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div_matches_torch(reduction, log_target):
    def fn(L, x, t):
        t = t.log_softmax(-1) if log_target else t.softmax(-1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return L.nn.functional.kl_div(x.log_softmax(-1), t, reduction=reduction,
                                          log_target=log_target)
    check_op(f"kl_div_{reduction}_{log_target}", lambda *a: fn(tga, *a),
             lambda *a: fn(torch, *a), [(3, 5), (3, 5)], tol="composite")


def test_kl_div_zero_target_and_mean_warning():
    """target == 0 contributes 0 (xlogy), with a finite input gradient; 'mean' warns as torch."""
    x = tga.randn(2, 3, requires_grad=True)
    t = tga.tensor([[0.0, 0.5, 0.5], [1.0, 0.0, 0.0]])
    with pytest.warns(UserWarning, match="batchmean"):
        loss = F.kl_div(x, t)
    want = tF.kl_div(torch.tensor(x.detach().numpy()), torch.tensor(t.numpy()),
                     reduction="mean")
    assert loss.item() == pytest.approx(want.item(), rel=1e-6)
    loss.backward()
    assert np.isfinite(x.grad.numpy()).all()
    assert F.kl_div(tga.tensor(0.5), tga.tensor(0.2), reduction="batchmean").shape == ()


# ---- l1 / mse: broadcasting, weight ------------------------------------------------------------
@pytest.mark.parametrize("name", ["l1_loss", "mse_loss"])
def test_pointwise_losses_broadcast_weight_like_torch(name):
    w = np.array([[0.5, 1.0, 2.0, 0.25]] * 3)
    for red in ("mean", "sum", "none"):
        check_op(f"{name}_weight_{red}",
                 lambda x, t: getattr(F, name)(x, t, reduction=red,
                                               weight=tga.tensor(w, dtype=x.dtype)),
                 lambda x, t: getattr(tF, name)(x, t, reduction=red,
                                                weight=torch.tensor(w, dtype=x.dtype)),
                 [(3, 4), (3, 4)], domain="distinct", tol="composite")
    with pytest.warns(UserWarning, match="target size"):
        got = getattr(F, name)(tga.ones(2, 3), tga.zeros(3) + 0.5)
    assert got.item() == pytest.approx(0.5 if name == "l1_loss" else 0.25)
    check_raises_like_torch(lambda L: getattr(_fn(L), name)(L.ones(2, 3), L.ones(3, 2)),
                            lambda L: getattr(_fn(L), name)(L.ones(2, 3), L.ones(3, 2)),
                            RuntimeError, match="size")
    check_raises_like_torch(
        lambda L: getattr(_fn(L), name)(L.ones(2, 3), L.ones(2, 3), weight=L.ones(3)),
        lambda L: getattr(_fn(L), name)(L.ones(2, 3), L.ones(2, 3), weight=L.ones(3)),
        ValueError, match="same size")


# ---- errors like torch's ---------------------------------------------------------------------------
ERRORS = [
    ("bce_input_range", lambda L: _fn(L).binary_cross_entropy(L.tensor([1.5]), L.tensor([1.0])),
     RuntimeError, "between 0 and 1"),
    ("bce_target_size", lambda L: _fn(L).binary_cross_entropy(L.ones(2, 3) / 2, L.ones(3)),
     ValueError, "target size"),
    ("bce_logits_target_size",
     lambda L: _fn(L).binary_cross_entropy_with_logits(L.ones(2, 3), L.ones(3)),
     ValueError, "same as input size"),
    ("bce_weight_too_big",
     lambda L: _fn(L).binary_cross_entropy(L.ones(2, 3) / 2, L.ones(2, 3), L.ones(2, 1, 3)),
     RuntimeError, "broadcast shape"),
    ("bce_bad_reduction",
     lambda L: _fn(L).binary_cross_entropy_with_logits(L.ones(2), L.ones(2), reduction="x"),
     ValueError, "reduction"),
    ("kl_div_bad_reduction", lambda L: _fn(L).kl_div(L.ones(2), L.ones(2), reduction="bogus"),
     ValueError, "reduction"),
    ("l1_bad_reduction", lambda L: _fn(L).l1_loss(L.ones(2), L.ones(2), reduction="x"),
     ValueError, "reduction"),
    ("one_hot_float", lambda L: _fn(L).one_hot(L.tensor([1.0])), RuntimeError, "LongTensor"),
    ("one_hot_negative", lambda L: _fn(L).one_hot(L.tensor([-1])), RuntimeError,
     "non-negative"),
    ("one_hot_too_big", lambda L: _fn(L).one_hot(L.tensor([3]), 3), RuntimeError,
     "smaller than num_classes"),
    ("one_hot_empty_infer", lambda L: _fn(L).one_hot(L.tensor([], dtype=L.int64)),
     RuntimeError, "empty tensor"),
    ("pad_odd", lambda L: _fn(L).pad(L.ones(2, 3), (1,)), RuntimeError, "divisible by 2"),
    ("pad_too_long", lambda L: _fn(L).pad(L.ones(2, 3), (1,) * 6), RuntimeError,
     "padding length 6 and input of dimension 2"),
    ("pad_crop_too_much", lambda L: _fn(L).pad(L.ones(3), (-2, -2)), RuntimeError, None),
    ("pad_unknown_mode", lambda L: _fn(L).pad(L.ones(2, 3), (1, 1), mode="bogus"),
     NotImplementedError, "bogus"),
]


@pytest.mark.parametrize("name,call,exc,match", ERRORS, ids=[e[0] for e in ERRORS])
def test_errors_like_torch(name, call, exc, match):
    check_raises_like_torch(call, call, exc, match)


PAD_MODE_CASES = [((1, 2), (2, 3, 4)), ((2, 1, 1, 0), (2, 3, 4)), ((-1, 2), (3, 4)),
                  ((1, 1, 0, 1, 1, 0), (1, 2, 3, 3, 2))]


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_pad_modes_match_torch(mode):
    for pad, shape in PAD_MODE_CASES:
        check_op(f"pad_{mode}_{pad}",
                 lambda x, pad=pad: F.pad(x, pad, mode=mode),
                 lambda x, pad=pad: tF.pad(x, pad, mode=mode), [shape])
    view = tga.tensor(np.arange(24.0).reshape(2, 3, 4)).transpose(1, 2)      # non-contiguous
    np.testing.assert_array_equal(
        F.pad(view, (2, 1), mode=mode).numpy(),
        tF.pad(torch.arange(24.0).reshape(2, 3, 4).transpose(1, 2), (2, 1), mode=mode).numpy())
    for call, exc in [(lambda L: _fn(L).pad(L.ones(3), (1, 1), mode=mode), NotImplementedError),
                      (lambda L: _fn(L).pad(L.ones(1, 2, 3), (1,) * 6, mode=mode),
                       NotImplementedError)]:
        check_raises_like_torch(call, call, exc, "not supported")
    if mode != "replicate":
        call = lambda L: _fn(L).pad(L.ones(1, 2, 3), (4, 0), mode=mode)     # noqa: E731
        check_raises_like_torch(call, call, RuntimeError,
                                "less than the corresponding" if mode == "reflect" else
                                "wrapping around more than once")


@pytest.mark.usefixtures("cuda_device")
def test_pad_modes_on_cuda():
    x = np.arange(12.0).reshape(1, 3, 4)
    for mode in ("reflect", "replicate", "circular"):
        outs = []
        for device in ("cpu", "cuda"):
            xt = tga.tensor(x, device=device, requires_grad=True)
            y = F.pad(xt, (2, 1, 1, 0), mode=mode)
            (y * y).sum().backward()
            outs.append((y.detach().cpu().numpy(), xt.grad.cpu().numpy()))
        np.testing.assert_allclose(outs[1][0], outs[0][0])
        np.testing.assert_allclose(outs[1][1], outs[0][1], rtol=1e-6)


# ---- one_hot, pad -----------------------------------------------------------------------------------
def test_one_hot_matches_torch():
    for idx, n in [([[0, 2], [1, 1]], -1), ([0, 2], 5), (3, 4), ([], 3)]:
        got = F.one_hot(tga.tensor(idx, dtype=tga.int64), n)
        want = tF.one_hot(torch.tensor(idx, dtype=torch.int64), n)
        assert got.dtype == tga.int64 and tuple(got.shape) == tuple(want.shape)
        np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_pad_matches_torch():
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    for pad, value in [((1, 1), None), ((0, 0, 2, 1), 7.5), ((-1, 1, 1, -2, 1, 0), 1.0),
                       ((0, 0), None), ((2, 0, 0, 0, 0, 0), -1.0)]:
        got = F.pad(tga.tensor(x), pad, value=value)
        want = tF.pad(torch.tensor(x), pad, value=value)
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    ints = tga.tensor([[1, 2]])
    got = F.pad(ints, (1, 1), value=2.5)
    assert got.dtype == tga.int64 and got.tolist() == [[2, 1, 2, 2]]
    view = tga.tensor(x).permute(2, 0, 1)[1:]                      # non-contiguous input
    np.testing.assert_array_equal(F.pad(view, (1, 2)).numpy(),
                                  tF.pad(torch.tensor(x).permute(2, 0, 1)[1:], (1, 2)).numpy())


# ---- on the cuda device ---------------------------------------------------------------------------
@pytest.mark.usefixtures("cuda_device")
def test_losses_on_cuda_match_cpu():
    rng = np.random.default_rng(0)
    x, t = rng.standard_normal((2, 3)), rng.uniform(0.1, 0.9, (2, 3))
    cases = [
        lambda L, x, t: L.nn.BCEWithLogitsLoss(pos_weight=L.tensor([1.0, 2.0, 0.5],
                                                                    device=x.device))(x, t),
        lambda L, x, t: L.nn.BCELoss()(x.sigmoid(), t),
        lambda L, x, t: L.nn.KLDivLoss(reduction="batchmean")(x.log_softmax(1), t),
        lambda L, x, t: L.nn.L1Loss()(x, t),
        lambda L, x, t: L.nn.MSELoss(reduction="sum")(x, t),
        lambda L, x, t: L.nn.functional.pad(x, (1, 1, 0, 1), value=0.5).sum() * t.sum(),
        lambda L, x, t: L.nn.CrossEntropyLoss(
            weight=L.tensor([1.0, 2.0, 0.5], device=x.device), label_smoothing=0.1)(
                x, L.tensor([0, 2], device=x.device)),
    ]
    for fn in cases:
        outs, grads = [], []
        for device in ("cpu", "cuda"):
            xt = tga.tensor(x, dtype="float32", device=device, requires_grad=True)
            out = fn(tga, xt, tga.tensor(t, dtype="float32", device=device))
            out.backward()
            assert xt.grad.device == device
            outs.append(out.item())
            grads.append(xt.grad.cpu().numpy())
        assert outs[1] == pytest.approx(outs[0], rel=1e-5)
        np.testing.assert_allclose(grads[1], grads[0], rtol=1e-5, atol=1e-6)
    hot = F.one_hot(tga.tensor([[0, 2]], device="cuda"), 3)
    assert hot.device == "cuda" and hot.cpu().tolist() == [[[1, 0, 0], [0, 0, 1]]]
