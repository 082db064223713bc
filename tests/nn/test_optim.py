"""Optimizers, schedulers and clip_grad_norm_ against torch.optim / torch.nn.utils.

- kernels: `_optim.sgd_step` / `adam_step` one step against torch's single-tensor CPU step
  (SGD to the bit; Adam to 1 ulp: torch's vectorised sqrt is SLEEF's, ours is IEEE sqrt),
  both ISA builds, 1 and 2 threads, float32 and float64, and their argument checks;
- trajectories: 20 steps on a small MLP from identical weights. Own gradients in float64
  (tight); in float32 torch is fed our gradients, so only the optimizers' rounding differs;
- groups, zero_grad, state_dict round trips (resume == uninterrupted), the fused kernel vs
  its composed twin, validation errors like torch's;
- schedulers: lr sequences vs torch over 30 steps (cosine to 1e-12 over 2*T_max);
- clip_grad_norm_: returned norm and clipped gradients vs torch (2, 1, inf).
"""
import math

import numpy as np
import pytest

import tinygradattn as tga
from tinygradattn import _optim, optim
from tinygradattn.backend import isa as backend_isa
from tinygradattn.nn.utils import clip_grad_norm_
from tinygradattn.optim import lr_scheduler

DTYPES = [np.float32, np.float64]
# float32 Adam: 1-ulp sqrt differences per step, amplified a little by the division
ADAM_F32 = dict(rtol=2e-6, atol=1e-7)
F64 = dict(rtol=1e-12, atol=1e-13)

SGD_CASES = {
    "plain": dict(lr=0.1),
    "momentum": dict(lr=0.1, momentum=0.9),
    "dampening": dict(lr=0.1, momentum=0.9, dampening=0.3),
    "nesterov": dict(lr=0.05, momentum=0.8, nesterov=True),
    "weight_decay": dict(lr=0.1, momentum=0.5, weight_decay=0.05),
}
ADAM_CASES = {
    "adam": ("Adam", dict(lr=0.01)),
    "adam_wd": ("Adam", dict(lr=0.01, weight_decay=0.1)),
    "adamw": ("AdamW", dict(lr=0.01)),
    "adamw_wd": ("AdamW", dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.3)),
    "adamw_small_beta1": ("AdamW", dict(lr=0.01, betas=(0.3, 0.9))),   # lerp's other branch
}


def _torch():
    return pytest.importorskip("torch", reason="parity tests need PyTorch")


@pytest.fixture(params=["avx2", "generic"])
def isa(request):
    if request.param not in backend_isa.isas("optim"):
        pytest.skip(f"this CPU has no {request.param} build")
    yield backend_isa.set_isa("optim", request.param)
    backend_isa.set_isa("optim", "auto")


# ---- kernels ------------------------------------------------------------------------------------
def _kernel_vs_torch(torch, dtype, kind, kw, n_threads, sizes=(1, 37, 1037), steps=4):
    rng = np.random.default_rng(3)
    ps = [rng.standard_normal(n).astype(dtype) for n in sizes]
    tps = [torch.tensor(p.copy(), requires_grad=True) for p in ps]
    cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[kind]
    topt = cls(tps, foreach=False, **kw)
    bufs = [np.zeros_like(p) for p in ps]
    m, v = [np.zeros_like(p) for p in ps], [np.zeros_like(p) for p in ps]
    for s in range(steps):
        gs = [rng.standard_normal(p.shape).astype(dtype) for p in ps]
        for tp, g in zip(tps, gs):
            tp.grad = torch.tensor(g.copy())
        topt.step()
        if kind == "sgd":
            _optim.sgd_step(ps, gs, bufs, kw["lr"], kw.get("momentum", 0),
                            kw.get("dampening", 0), kw.get("weight_decay", 0),
                            kw.get("nesterov", False), s == 0, n_threads)
        else:
            b1, b2 = kw.get("betas", (0.9, 0.999))
            wd = kw.get("weight_decay", 1e-2 if kind == "adamw" else 0)
            _optim.adam_step(ps, gs, m, v, s + 1, kw["lr"], b1, b2, kw.get("eps", 1e-8), wd,
                             kind == "adamw", n_threads)
    return ps, [tp.detach().numpy() for tp in tps]


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", list(SGD_CASES))
def test_sgd_kernel_bitwise_vs_torch(isa, case, dtype, n_threads):
    torch = _torch()
    ours, theirs = _kernel_vs_torch(torch, dtype, "sgd", SGD_CASES[case], n_threads)
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a, b, err_msg=f"{case} {dtype.__name__} {isa}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", list(ADAM_CASES))
def test_adam_kernel_vs_torch(isa, case, dtype):
    torch = _torch()
    name, kw = ADAM_CASES[case]
    ours, theirs = _kernel_vs_torch(torch, dtype, name.lower(), kw, 1)
    for a, b in zip(ours, theirs):
        # a one-ulp sqrt difference per step: a few ulps of an O(1) parameter at most
        eps = np.finfo(dtype).eps
        np.testing.assert_allclose(a, b, rtol=4 * eps, atol=4 * eps, err_msg=case)


def test_kernels_threads_agree_on_large_lists():
    """2 threads over chunks give the same bits as 1 (sizes past the threading threshold)."""
    rng = np.random.default_rng(0)
    sizes = (200_000, 3, 70_001)
    base = [rng.standard_normal(n).astype(np.float32) for n in sizes]
    grads = [rng.standard_normal(n).astype(np.float32) for n in sizes]
    results = []
    for nt in (1, 2):
        ps = [p.copy() for p in base]
        m, v = [np.zeros_like(p) for p in ps], [np.zeros_like(p) for p in ps]
        for step in (1, 2):
            _optim.adam_step(ps, grads, m, v, step, 1e-3, 0.9, 0.999, 1e-8, 0.01, True, nt)
        results.append(ps)
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_kernel_argument_errors():
    p = np.zeros(4, np.float32)
    g = np.zeros(4, np.float32)
    with pytest.raises(ValueError, match=r"grads\[0\]: shape \(5,\)"):
        _optim.sgd_step([p], [np.zeros(5, np.float32)], None, 0.1, 0, 0, 0, False, True)
    with pytest.raises(TypeError, match=r"grads\[0\]: dtype float64, expected float32"):
        _optim.sgd_step([p], [np.zeros(4)], None, 0.1, 0, 0, 0, False, True)
    with pytest.raises(ValueError, match="not C-contiguous"):
        _optim.sgd_step([p], [np.zeros(8, np.float32)[::2]], None, 0.1, 0, 0, 0, False, True)
    ro = np.zeros(4, np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match=r"params\[0\]: array is read-only"):
        _optim.sgd_step([ro], [g], None, 0.1, 0, 0, 0, False, True)
    with pytest.raises(ValueError, match="momentum_bufs holds 0 arrays, params 1"):
        _optim.sgd_step([p], [g], [], 0.1, 0.9, 0, 0, False, True)
    with pytest.raises(ValueError, match="momentum != 0 needs momentum_bufs"):
        _optim.sgd_step([p], [g], None, 0.1, 0.9, 0, 0, False, True)
    with pytest.raises(ValueError, match="step must be >= 1"):
        _optim.adam_step([p], [g], [g.copy()], [g.copy()], 0, 1e-3, 0.9, 0.999, 1e-8, 0, True)
    with pytest.raises(TypeError, match=r"params\[0\]: expected a float32 or float64"):
        _optim.sgd_step([np.zeros(4, np.int64)], [g], None, 0.1, 0, 0, 0, False, True)
    _optim.sgd_step([], [], None, 0.1, 0, 0, 0, False, True)      # nothing to do: fine


# ---- trajectories on a small MLP ----------------------------------------------------------------
def _mlp_weights(dtype, seed=0):
    rng = np.random.default_rng(seed)
    return {"w1": rng.standard_normal((4, 6)).astype(dtype) * 0.5,
            "b1": rng.standard_normal(6).astype(dtype) * 0.1,
            "w2": rng.standard_normal((6, 3)).astype(dtype) * 0.5,
            "b2": np.zeros(3, dtype)}


def _mlp_data(dtype):
    rng = np.random.default_rng(1)
    return rng.standard_normal((8, 4)).astype(dtype), rng.standard_normal((8, 3)).astype(dtype)


def _mlp_loss(lib, p, x, y):
    h = (x @ p["w1"] + p["b1"]).tanh()
    d = h @ p["w2"] + p["b2"] - y
    return (d * d).mean()


def _make(lib, weights):
    if lib is tga:
        return {k: tga.tensor(v, requires_grad=True) for k, v in weights.items()}
    return {k: lib.tensor(v.copy(), requires_grad=True) for k, v in weights.items()}


def _groups(params, group_kw):
    if group_kw is None:
        return list(params.values())
    return [{"params": [params["w1"], params["w2"]]},
            {"params": [params["b1"], params["b2"]], **group_kw}]


def _run_both(torch, name, kw, dtype, steps=20, feed_our_grads=False, group_kw=None):
    weights = _mlp_weights(dtype)
    xs, ys = _mlp_data(dtype)
    ours, theirs = _make(tga, weights), _make(torch, weights)
    opt = getattr(optim, name)(_groups(ours, group_kw), **kw)
    topt = getattr(torch.optim, name)(_groups(theirs, group_kw), foreach=False, **kw)
    x, y = tga.tensor(xs), tga.tensor(ys)
    tx, ty = torch.tensor(xs), torch.tensor(ys)
    for _ in range(steps):
        opt.zero_grad()
        topt.zero_grad()
        _mlp_loss(tga, ours, x, y).backward()
        if feed_our_grads:
            for k in ours:
                theirs[k].grad = torch.tensor(ours[k].grad.numpy().copy())
        else:
            _mlp_loss(torch, theirs, tx, ty).backward()
        opt.step()
        topt.step()
    return ({k: v.detach().numpy() for k, v in ours.items()},
            {k: v.detach().numpy() for k, v in theirs.items()})


ALL_CASES = [("SGD", kw) for kw in SGD_CASES.values()] + list(ADAM_CASES.values())
ALL_IDS = [f"sgd-{k}" for k in SGD_CASES] + list(ADAM_CASES)


@pytest.mark.parametrize("name,kw", ALL_CASES, ids=ALL_IDS)
def test_trajectory_float64_own_gradients(name, kw):
    torch = _torch()
    ours, theirs = _run_both(torch, name, kw, np.float64)
    for k in ours:
        np.testing.assert_allclose(ours[k], theirs[k], **F64, err_msg=f"{name} {kw} {k}")


@pytest.mark.parametrize("name,kw", ALL_CASES, ids=ALL_IDS)
def test_trajectory_float32_same_gradients(name, kw):
    torch = _torch()
    ours, theirs = _run_both(torch, name, kw, np.float32, feed_our_grads=True)
    for k in ours:
        if name == "SGD":            # same gradients, same roundings: the same bits
            np.testing.assert_array_equal(ours[k], theirs[k], err_msg=f"{name} {kw} {k}")
        else:
            np.testing.assert_allclose(ours[k], theirs[k], **ADAM_F32, err_msg=f"{kw} {k}")


def test_trajectory_float32_own_gradients_close():
    torch = _torch()
    ours, theirs = _run_both(torch, "AdamW", dict(lr=0.01), np.float32)
    for k in ours:
        np.testing.assert_allclose(ours[k], theirs[k], rtol=1e-4, atol=1e-5, err_msg=k)


@pytest.mark.parametrize("name,kw,group_kw", [
    ("SGD", dict(lr=0.1, momentum=0.9, weight_decay=0.01), dict(lr=0.3, weight_decay=0.0)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1), dict(weight_decay=0.0)),
    ("Adam", dict(lr=0.01), dict(lr=0.05, betas=(0.5, 0.9), weight_decay=0.2)),
])
def test_param_groups_vs_torch(name, kw, group_kw):
    torch = _torch()
    ours, theirs = _run_both(torch, name, kw, np.float64, steps=10, group_kw=group_kw)
    for k in ours:
        np.testing.assert_allclose(ours[k], theirs[k], **F64, err_msg=k)


@pytest.mark.parametrize("name,kw", ALL_CASES, ids=ALL_IDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_fused_matches_composed_twin(name, kw, dtype):
    """The backend kernel and its plain twin (Tensor arithmetic) agree to rounding."""
    weights = _mlp_weights(dtype)
    xs, ys = _mlp_data(dtype)
    x, y = tga.tensor(xs), tga.tensor(ys)
    results = []
    for fused in (None, False):
        params = _make(tga, weights)
        opt = getattr(optim, name)(list(params.values()), fused=fused, **kw)
        for _ in range(10):
            opt.zero_grad()
            _mlp_loss(tga, params, x, y).backward()
            opt.step()
        results.append({k: v.detach().numpy() for k, v in params.items()})
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else F64
    for k in results[0]:
        np.testing.assert_allclose(results[0][k], results[1][k], **tol, err_msg=k)


# ---- behaviour ----------------------------------------------------------------------------------
def _quadratic_step(opt, params):
    opt.zero_grad()
    sum((p * p).sum() for p in params).backward()
    opt.step()


def test_zero_grad_both_modes():
    w = tga.tensor([1.0, 2.0], requires_grad=True)
    opt = optim.SGD([w], lr=0.1)
    (w * w).sum().backward()
    grad = w.grad
    opt.zero_grad(set_to_none=False)
    assert w.grad is grad and w.grad.tolist() == [0.0, 0.0]       # zeroed in place
    opt.zero_grad()
    assert w.grad is None
    opt.zero_grad()                                                # no grad: nothing to do
    opt.step()                                                     # no grads: params untouched
    assert w.tolist() == [1.0, 2.0]


def test_params_without_grad_are_skipped_and_keep_their_step():
    a = tga.tensor([1.0], requires_grad=True)
    b = tga.tensor([1.0], requires_grad=True)
    opt = optim.Adam([a, b], lr=0.1)
    (a * a).sum().backward()
    opt.step()
    assert b not in opt.state and b.tolist() == [1.0]
    (b * b).sum().backward()
    opt.step()                      # a at step 2, b at step 1: two kernel calls
    assert opt.state[a]["step"] == 2.0 and opt.state[b]["step"] == 1.0
    assert b.item() == pytest.approx(0.9, abs=1e-6)


def test_add_param_group_and_duplicates():
    a = tga.zeros(2, requires_grad=True)
    b = tga.zeros(3, requires_grad=True)
    opt = optim.SGD([a], lr=0.1, momentum=0.9)
    opt.add_param_group({"params": b, "lr": 0.5})
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    assert opt.param_groups[1]["momentum"] == 0.9                 # filled from defaults
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [a]})
    with pytest.raises(ValueError, match="duplicate parameters"):
        optim.SGD([a, a], lr=0.1)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="iterable of Tensors"):
        optim.SGD(a, lr=0.1)
    with pytest.raises(TypeError, match="ordered collections"):
        optim.SGD([{"params": {a}}], lr=0.1)
    with pytest.raises(TypeError, match="can only optimize Tensors"):
        optim.SGD([a, 3.0], lr=0.1)
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([a * 2], lr=0.1)


@pytest.mark.parametrize("make,match", [
    (lambda p: optim.SGD(p, lr=-1), "Invalid learning rate: -1"),
    (lambda p: optim.SGD(p, lr=0.1, momentum=-0.5), "Invalid momentum value: -0.5"),
    (lambda p: optim.SGD(p, lr=0.1, weight_decay=-1), "Invalid weight_decay value: -1"),
    (lambda p: optim.SGD(p, lr=0.1, nesterov=True), "Nesterov momentum requires"),
    (lambda p: optim.Adam(p, lr=-1), "Invalid learning rate: -1"),
    (lambda p: optim.Adam(p, eps=-1), "Invalid epsilon value: -1"),
    (lambda p: optim.Adam(p, betas=(1.0, 0.9)), "Invalid beta parameter at index 0: 1.0"),
    (lambda p: optim.AdamW(p, betas=(0.9, -0.1)), "Invalid beta parameter at index 1: -0.1"),
    (lambda p: optim.AdamW(p, weight_decay=-0.1), "Invalid weight_decay value: -0.1"),
])
def test_argument_validation_like_torch(make, match):
    with pytest.raises(ValueError, match=match):
        make([tga.zeros(1, requires_grad=True)])


def test_argument_validation_same_type_as_torch():
    torch = _torch()
    with pytest.raises(ValueError, match="Invalid learning rate: -1"):
        torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=-1)


@pytest.mark.parametrize("name,kw", [("SGD", dict(lr=0.1, momentum=0.9)),
                                     ("AdamW", dict(lr=0.05))])
def test_state_dict_round_trip_resumes_identically(tmp_path, name, kw):
    def fresh():
        return [tga.tensor(np.linspace(-1, 1, 6).reshape(2, 3), requires_grad=True),
                tga.tensor([0.5, -0.25], requires_grad=True)]

    straight = fresh()
    opt = getattr(optim, name)(straight, **kw)
    for _ in range(10):
        _quadratic_step(opt, straight)

    first = fresh()
    opt1 = getattr(optim, name)(first, **kw)
    for _ in range(5):
        _quadratic_step(opt1, first)
    tga.save({"params": [p.detach() for p in first], "opt": opt1.state_dict()},
             tmp_path / "ckpt.safetensors")
    ckpt = tga.load(tmp_path / "ckpt.safetensors")
    resumed = [p.requires_grad_() for p in ckpt["params"]]
    opt2 = getattr(optim, name)(resumed, lr=123.0)            # hyper-parameters come back too
    opt2.load_state_dict(ckpt["opt"])
    assert opt2.param_groups[0]["lr"] == kw["lr"]
    for _ in range(5):
        _quadratic_step(opt2, resumed)
    for a, b in zip(straight, resumed):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())


def test_state_dict_layout_matches_torch():
    torch = _torch()
    w, b = tga.zeros(2, 3, requires_grad=True), tga.zeros(3, requires_grad=True)
    tw, tb = torch.zeros(2, 3, requires_grad=True), torch.zeros(3, requires_grad=True)
    opt = optim.AdamW([{"params": [w]}, {"params": [b], "weight_decay": 0.0}], lr=0.1)
    topt = torch.optim.AdamW([{"params": [tw]}, {"params": [tb], "weight_decay": 0.0}], lr=0.1)
    for o, ps, lib in ((opt, (w, b), tga), (topt, (tw, tb), torch)):
        for p in ps:
            p.grad = lib.ones(*p.shape)
        o.step()
    sd, tsd = opt.state_dict(), topt.state_dict()
    assert sorted(sd["state"]) == sorted(tsd["state"]) == [0, 1]
    assert [g["params"] for g in sd["param_groups"]] == [[0], [1]]
    assert [g["params"] for g in tsd["param_groups"]] == [[0], [1]]
    for i in (0, 1):
        assert set(sd["state"][i]) == set(tsd["state"][i])
        for k, v in sd["state"][i].items():
            np.testing.assert_allclose(v.numpy(), tsd["state"][i][k].numpy(), rtol=1e-6)
        assert sd["state"][i]["step"].dtype == tga.float32 and sd["state"][i]["step"].ndim == 0
    # torch's state dict loads into ours (through numpy)
    converted = {"state": {i: {k: tga.tensor(v.numpy()) for k, v in st.items()}
                           for i, st in tsd["state"].items()},
                 "param_groups": tsd["param_groups"]}
    opt.load_state_dict(converted)
    assert opt.state[w]["step"] == 1.0 and opt.param_groups[1]["weight_decay"] == 0.0


def test_load_state_dict_errors_name_the_mismatch():
    a, b = tga.zeros(2, requires_grad=True), tga.zeros(3, requires_grad=True)
    opt = optim.SGD([a, b], lr=0.1, momentum=0.9)
    _quadratic_step(opt, [a, b])
    sd = opt.state_dict()
    with pytest.raises(ValueError, match="different number of parameter groups: 1 saved, 2"):
        optim.SGD([{"params": [a]}, {"params": [b]}], lr=0.1).load_state_dict(sd)
    with pytest.raises(ValueError, match="group 0 has 2 saved, 1 here"):
        optim.SGD([a], lr=0.1).load_state_dict(sd)
    c = tga.zeros(4, requires_grad=True)
    with pytest.raises(ValueError, match=r"'momentum_buffer' of parameter 1 has shape \(3,\), "
                                         r"but the parameter has shape \(4,\)"):
        optim.SGD([a, c], lr=0.1, momentum=0.9).load_state_dict(sd)


def test_loaded_state_is_a_copy():
    a = tga.zeros(2, requires_grad=True)
    opt = optim.Adam([a], lr=0.1)
    _quadratic_step(opt, [a])
    b = tga.zeros(2, requires_grad=True)
    opt2 = optim.Adam([b], lr=0.1)
    opt2.load_state_dict(opt.state_dict())
    assert opt2.state[b]["exp_avg"] is not opt.state[a]["exp_avg"]


def test_non_contiguous_and_mixed_dtype_params():
    base = np.arange(12, dtype=np.float32).reshape(3, 4)
    w = tga.from_numpy(base.T).requires_grad_()                 # a non-contiguous leaf
    d = tga.tensor([1.0, 2.0], dtype=tga.float64, requires_grad=True)
    opt = optim.SGD([w, d], lr=0.5)
    ((w * w).sum() + (d * d).sum().float()).backward()
    opt.step()
    np.testing.assert_array_equal(base.T, np.zeros((4, 3)))     # written in place: 0 = x - x
    assert d.tolist() == [0.0, 0.0]


def test_closure_and_repr():
    w = tga.tensor([2.0], requires_grad=True)
    opt = optim.SGD([w], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    assert opt.step(closure).item() == 4.0 and w.item() == 1.0
    assert "Parameter Group 0" in repr(opt) and "lr: 0.25" in repr(opt)


def test_works_on_module_parameters():
    nn = tga.nn
    if not hasattr(nn, "Linear"):
        pytest.skip("nn.Linear not available yet")
    model = nn.Linear(3, 2)
    opt = optim.AdamW(model.parameters(), lr=0.1)
    before = [p.detach().numpy().copy() for p in model.parameters()]
    model(tga.randn(4, 3)).sum().backward()
    opt.step()
    after = [p.detach().numpy() for p in model.parameters()]
    assert all(not np.array_equal(x, y) for x, y in zip(before, after))


# ---- schedulers ---------------------------------------------------------------------------------
def _lr_sequence(lib_optim, make_sched, steps=30, lr=0.1, groups=1):
    params = [[lib_optim["zeros"](2)] for _ in range(groups)]
    opt = lib_optim["SGD"]([{"params": p, "lr": lr * (i + 1)} for i, p in enumerate(params)])
    sched = make_sched(opt)
    seq = []
    for _ in range(steps):
        seq.append(list(sched.get_last_lr()))
        opt.step()
        sched.step()
    return seq


def _libs(torch):
    ours = {"SGD": optim.SGD, "zeros": lambda n: tga.zeros(n, requires_grad=True),
            "sched": lr_scheduler}
    theirs = {"SGD": torch.optim.SGD, "zeros": lambda n: torch.zeros(n, requires_grad=True),
              "sched": torch.optim.lr_scheduler}
    return ours, theirs


@pytest.mark.parametrize("make,steps", [
    (lambda s: (lambda o: s.StepLR(o, step_size=4, gamma=0.5)), 30),
    (lambda s: (lambda o: s.StepLR(o, step_size=1)), 30),
    (lambda s: (lambda o: s.CosineAnnealingLR(o, T_max=15)), 30),
    (lambda s: (lambda o: s.CosineAnnealingLR(o, T_max=10, eta_min=0.01)), 40),
    (lambda s: (lambda o: s.LambdaLR(o, lambda e: 0.9 ** e)), 30),
    (lambda s: (lambda o: s.LambdaLR(o, [lambda e: 1 / (e + 1), lambda e: e % 3])), 30),
], ids=["step", "step1", "cosine", "cosine_eta_min_2Tmax", "lambda", "lambda_per_group"])
def test_scheduler_sequences_vs_torch(make, steps):
    torch = _torch()
    ours, theirs = _libs(torch)
    a = _lr_sequence(ours, make(ours["sched"]), steps, groups=2)
    b = _lr_sequence(theirs, make(theirs["sched"]), steps, groups=2)
    np.testing.assert_allclose(np.array(a), np.array(b), rtol=1e-12, atol=1e-15)


def test_scheduler_state_dict_resumes_and_sets_initial_lr():
    w = tga.zeros(1, requires_grad=True)
    opt = optim.SGD([w], lr=1.0)
    sched = lr_scheduler.CosineAnnealingLR(opt, T_max=10)
    assert opt.param_groups[0]["initial_lr"] == 1.0
    for _ in range(4):
        opt.step()
        sched.step()
    state, lr_at_4 = sched.state_dict(), opt.param_groups[0]["lr"]
    assert "optimizer" not in state and state["last_epoch"] == 4
    rest = []
    for _ in range(3):
        opt.step()
        sched.step()
        rest.append(sched.get_last_lr()[0])
    opt.param_groups[0]["lr"] = lr_at_4
    sched2 = lr_scheduler.CosineAnnealingLR(opt, T_max=10, last_epoch=3)
    sched2.load_state_dict(state)
    again = []
    for _ in range(3):
        opt.step()
        sched2.step()
        again.append(sched2.get_last_lr()[0])
    assert again == rest
    with pytest.raises(KeyError, match="initial_lr"):
        lr_scheduler.StepLR(optim.SGD([w], lr=0.1), step_size=2, last_epoch=3)
    with pytest.raises(ValueError, match="Expected 1 lr_lambdas, but got 2"):
        lr_scheduler.LambdaLR(opt, [lambda e: 1, lambda e: 1])


def test_warmup_cosine_shape():
    w = tga.zeros(1, requires_grad=True)
    opt = optim.AdamW([w], lr=1.0)
    sched = lr_scheduler.warmup_cosine(opt, warmup_steps=10, total_steps=110, min_lr=0.1)
    lrs = []
    for _ in range(130):
        lrs.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    lrs = np.array(lrs)
    np.testing.assert_allclose(lrs[:10], np.arange(1, 11) / 10)       # linear warmup to 1
    assert lrs[10] == pytest.approx(1.0)                               # peak
    assert np.all(np.diff(lrs[10:111]) <= 1e-15)                       # then decreasing
    assert lrs[60] == pytest.approx(0.1 + 0.9 * 0.5)                   # halfway: the midpoint
    np.testing.assert_allclose(lrs[110:], 0.1)                         # min_lr at the end
    assert isinstance(sched, lr_scheduler.LambdaLR)
    state = sched.state_dict()                                         # the multiplier saves
    assert state["lr_lambdas"][0]["warmup_steps"] == 10
    with pytest.raises(ValueError, match="min_lr=2.0 must be in"):
        lr_scheduler.warmup_cosine(optim.SGD([w], lr=1.0), 1, 10, min_lr=2.0)
    with pytest.raises(ValueError, match="warmup_steps <= total_steps"):
        lr_scheduler.warmup_cosine(optim.SGD([w], lr=1.0), 10, 5)


# ---- clip_grad_norm_ ----------------------------------------------------------------------------
@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf, 3.0])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
@pytest.mark.parametrize("dtype", DTYPES)
def test_clip_grad_norm_vs_torch(norm_type, max_norm, dtype):
    torch = _torch()
    rng = np.random.default_rng(7)
    grads = [rng.standard_normal(s).astype(dtype) for s in [(3, 4), (5,), (1,)]]
    ours = [tga.zeros(g.shape, dtype=tga.float32 if dtype == np.float32 else tga.float64,
                      requires_grad=True) for g in grads]
    theirs = [torch.zeros(g.shape, dtype=torch.from_numpy(g).dtype, requires_grad=True)
              for g in grads]
    for p, tp, g in zip(ours, theirs, grads):
        p.grad = tga.tensor(g)
        tp.grad = torch.tensor(g.copy())
    no_grad_param = tga.zeros(2, requires_grad=True)                  # skipped
    total = clip_grad_norm_(ours + [no_grad_param], max_norm, norm_type)
    ttotal = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    tol = dict(rtol=2e-6) if dtype == np.float32 else dict(rtol=1e-13)
    assert total.ndim == 0 and total.dtype == (tga.float32 if dtype == np.float32 else
                                                tga.float64)
    np.testing.assert_allclose(total.item(), ttotal.item(), **tol)
    for p, tp in zip(ours, theirs):
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), **tol)


def test_clip_grad_norm_single_tensor_no_grads_and_nonfinite():
    w = tga.tensor([3.0, 4.0], requires_grad=True)
    assert clip_grad_norm_(w, 1.0).item() == 0.0                       # no grads yet
    w.backward(tga.tensor([3.0, 4.0]))
    assert clip_grad_norm_(w, 10.0).item() == pytest.approx(5.0)
    assert w.grad.tolist() == pytest.approx([3.0, 4.0])                 # coef clamped to 1
    w.grad = tga.tensor([float("inf"), 1.0])
    with pytest.raises(RuntimeError, match="non-finite"):
        clip_grad_norm_([w], 1.0, error_if_nonfinite=True)
    assert tga.nn.utils.clip_grad_norm_ is clip_grad_norm_


def test_clip_grad_norm_empty_grad_and_order_zero():
    """A 0-size gradient adds nothing to the norm; order 0 counts the non-zero per-gradient
    norms (torch's formula); the inf norm of an empty gradient has no value (torch raises)."""
    w, e = tga.zeros(3, requires_grad=True), tga.zeros(0, 2, requires_grad=True)
    w.grad, e.grad = tga.tensor([3.0, 0.0, 4.0]), tga.zeros(0, 2)
    assert clip_grad_norm_([w, e], 100.0).item() == pytest.approx(5.0)
    assert clip_grad_norm_([w, e], 100.0, norm_type=0).item() == 1.0     # torch: 1
    with pytest.raises(RuntimeError, match="inf norm of an empty array of shape \\(0, 2\\)"):
        clip_grad_norm_([w, e], 1.0, norm_type=math.inf)
