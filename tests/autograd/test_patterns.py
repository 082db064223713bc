"""User code recognised as a fused op (ops/patterns.py): scaled_dot_product_attention of q, k,
v cut out of one packed projection (QKVAttention: the same numbers bit for bit) and a linear
of gelu(linear(x)) (GeluMLPOfParts: the same to float32 rounding). Each refuses to match anything
else, and a hook added afterwards on a tensor it went around is refused.
"""
import numpy as np
import pytest

import tinygradattn as tga
import tinygradattn.nn.functional as F
from tinygradattn.ops.patterns import packed_qkv

from helpers import TORCH_REASON


@pytest.fixture
def fusion():
    """Yields a setter; the default (on) is restored afterwards."""
    yield F.set_fusion_enabled
    F.set_fusion_enabled(True)


def attention_block(x, w, b, H, is_causal=True, how="split", scale=None):
    """nanoGPT's CausalSelfAttention, as a user writes it: (B, T, C) -> (B, T, C)."""
    B, T, C = x.shape
    qkv = F.linear(x, w, b)                                                  # (B, T, 3C)
    q, k, v = qkv.split(C, dim=2) if how == "split" else qkv.chunk(3, dim=-1)
    q, k, v = (t.view(B, T, H, C // H).transpose(1, 2) for t in (q, k, v))    # (B, H, T, D)
    y = F.scaled_dot_product_attention(q, k, v, is_causal=is_causal, scale=scale)
    return y.transpose(1, 2).contiguous().view(B, T, C)


def leaves(B, T, C, dtype, seed=0):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal((B, T, C)), rng.standard_normal((3 * C, C)) / np.sqrt(C),
              rng.standard_normal(3 * C) * 0.1]
    return [tga.tensor(a, dtype=dtype, requires_grad=True) for a in arrays]


def forward_backward(fuse, fusion, B, T, C, H, dtype, **kw):
    fusion(fuse)
    x, w, b = leaves(B, T, C, dtype)
    y = attention_block(x, w, b, H, **kw)
    g = tga.tensor(np.random.default_rng(1).standard_normal(y.shape), dtype=dtype)
    y.backward(g)
    return [t.detach().numpy() for t in (y, x.grad, w.grad, b.grad)]


def grad_fns(y, depth=6):
    """Names of the ops on the path from y back through its first inputs."""
    names, t = [], y
    while t is not None and t._ctx is not None and len(names) < depth:
        names.append(t._ctx.fn.__name__)
        t = next((i for i in t._ctx.inputs if i is not None), None)
    return names


@pytest.mark.parametrize("B,T,C,H", [(2, 5, 12, 3), (1, 1, 4, 1), (3, 7, 6, 2), (2, 13, 10, 5)])
@pytest.mark.parametrize("dtype", [tga.float32, tga.float64])
@pytest.mark.parametrize("kw", [dict(), dict(is_causal=False), dict(how="chunk"),
                                dict(scale=0.3)], ids=["causal", "full", "chunk", "scale"])
def test_fused_equals_ops_as_written_bit_for_bit(fusion, B, T, C, H, dtype, kw):
    fused = forward_backward(True, fusion, B, T, C, H, dtype, **kw)
    plain = forward_backward(False, fusion, B, T, C, H, dtype, **kw)
    for name, a, b in zip(("y", "dx", "dw", "db"), fused, plain):
        np.testing.assert_array_equal(a, b, err_msg=name)


def test_the_fused_node_is_recorded_only_when_fusion_is_on(fusion):
    x, w, b = leaves(2, 5, 8, tga.float32)
    assert "QKVAttention" in grad_fns(attention_block(x, w, b, 2))
    fusion(False)
    names = grad_fns(attention_block(x, w, b, 2), depth=8)
    assert "QKVAttention" not in names and "ScaledDotProductAttention" in names


def test_user_gpt_step_is_the_same_with_and_without_fusion(fusion):
    from benchmarks.bench_usergpt import UserGPTStep
    results = []
    for fuse in (True, False):
        fusion(fuse)
        step = UserGPTStep("tga", "nano")
        losses = [step() for _ in range(2)]
        results.append((losses, [p.detach().numpy().copy() for p in step.model.parameters()]))
    assert results[0][0] == results[1][0]
    for a, b in zip(results[0][1], results[1][1]):
        np.testing.assert_array_equal(a, b)


def heads(t, B, T, H):
    return t.view(B, T, H, t.shape[-1] // H).transpose(1, 2)


@pytest.mark.parametrize("case", ["two projections", "k before q", "heads the other way",
                                  "not a view", "leading dims", "no grad", "strided root"])
def test_anything_else_is_not_matched(case):
    B, T, C, H = 2, 5, 4, 2                         # D == H: heads the other way fit too
    x, w, b = leaves(B, T, C, tga.float32)
    qkv = F.linear(x, w, b)
    q, k, v = qkv.split(C, dim=2)
    if case == "two projections":
        q2, k, v = F.linear(x, w, b).split(C, dim=2)
        args = heads(q, B, T, H), heads(k, B, T, H), heads(v, B, T, H)
    elif case == "k before q":
        args = heads(k, B, T, H), heads(q, B, T, H), heads(v, B, T, H)
    elif case == "heads the other way":             # (B, T, D, H) -> (B, H, T, D)
        args = [t.view(B, T, C // H, H).permute(0, 3, 1, 2) for t in (q, k, v)]
    elif case == "not a view":
        args = heads(q * 1.0, B, T, H), heads(k, B, T, H), heads(v, B, T, H)
    elif case == "leading dims":
        args = q, k, v                              # (B, T, C): 3-d, not (B, H, T, D)
    elif case == "no grad":
        with tga.no_grad():
            q, k, v = F.linear(x, w, b).split(C, dim=2)
        args = heads(q, B, T, H), heads(k, B, T, H), heads(v, B, T, H)
    else:                                           # the root is itself a strided view
        wide = F.linear(x, tga.cat([w, w]), tga.cat([b, b]))[..., ::2]
        args = [heads(t, B, T, H) for t in wide.split(C, dim=2)]
    assert tuple(args[0].shape) == tuple(args[1].shape) == tuple(args[2].shape)
    assert packed_qkv(*args) is None


def test_a_hook_on_the_way_prevents_the_match_and_runs(fusion):
    B, T, C, H = 2, 5, 8, 2
    seen = []
    out = {}
    for fuse in (True, False):
        fusion(fuse)
        x, w, b = leaves(B, T, C, tga.float32)
        q, k, v = F.linear(x, w, b).split(C, dim=2)
        q, k, v = heads(q, B, T, H), heads(k, B, T, H), heads(v, B, T, H)
        k.register_hook(lambda g: seen.append(g.numpy().copy()))
        q.retain_grad()
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        assert "QKVAttention" not in grad_fns(y)
        y.sum().backward()
        out[fuse] = (q.grad.numpy(), w.grad.numpy())
    assert len(seen) == 2
    for a, b in zip(out[True], out[False]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("what", ["retain_grad", "register_hook"])
def test_a_hook_added_after_the_match_is_refused(what):
    B, T, C, H = 2, 5, 8, 2
    x, w, b = leaves(B, T, C, tga.float32)
    q, k, v = F.linear(x, w, b).split(C, dim=2)
    q, k, v = heads(q, B, T, H), heads(k, B, T, H), heads(v, B, T, H)
    y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert "QKVAttention" in grad_fns(y)
    with pytest.raises(RuntimeError, match=f"{what}.*fused op.*set_fusion_enabled"):
        q.retain_grad() if what == "retain_grad" else v.register_hook(lambda g: g)
    other = tga.randn(2, 2, requires_grad=True) * 2
    other.retain_grad()                             # other tensors are not concerned


def test_masks_and_dropout_take_their_own_paths():
    B, T, C, H = 2, 5, 8, 2
    x, w, b = leaves(B, T, C, tga.float32)
    q, k, v = (heads(t, B, T, H) for t in F.linear(x, w, b).split(C, dim=2))
    mask = tga.ones(T, T, dtype=tga.bool).tril()
    assert "QKVAttention" not in grad_fns(F.scaled_dot_product_attention(q, k, v, mask))
    y = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5, is_causal=True)
    assert "QKVAttention" not in grad_fns(y, depth=8)


def test_gradcheck_float64_through_the_fused_node(fusion):
    x, w, b = leaves(1, 4, 6, tga.float64)
    y = attention_block(x, w, b, 2)
    assert "QKVAttention" in grad_fns(y)
    assert tga.autograd.gradcheck(lambda x, w, b: attention_block(x, w, b, 2), (x, w, b))


def test_parity_with_torch(fusion):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    B, T, C, H = 2, 7, 12, 3
    x, w, b = leaves(B, T, C, tga.float32)
    y = attention_block(x, w, b, H)
    y.sum().backward()
    tx, tw, tb = (torch.tensor(t.detach().numpy(), requires_grad=True) for t in (x, w, b))
    q, k, v = torch.nn.functional.linear(tx, tw, tb).split(C, dim=2)
    q, k, v = (t.view(B, T, H, C // H).transpose(1, 2) for t in (q, k, v))
    ty = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    ty = ty.transpose(1, 2).contiguous().view(B, T, C)
    ty.sum().backward()
    for ours, theirs in ((y, ty), (x.grad, tx.grad), (w.grad, tw.grad), (b.grad, tb.grad)):
        np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(),
                                   rtol=1e-5, atol=1e-5)


# ---- linear of a gelu output -------------------------------------------------------------------
def mlp(x, w1, b1, w2, b2, approximate="none"):
    """nanoGPT's MLP as written: c_proj(gelu(c_fc(x)))."""
    return F.linear(F.gelu(F.linear(x, w1, b1), approximate), w2, b2)


def mlp_leaves(shape, C, hid, dtype, bias=True, seed=0):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(shape + (C,)), rng.standard_normal((hid, C)) / np.sqrt(C),
              rng.standard_normal(hid) * 0.1, rng.standard_normal((C, hid)) / np.sqrt(hid),
              rng.standard_normal(C) * 0.1]
    out = [tga.tensor(a, dtype=dtype, requires_grad=True) for a in arrays]
    return out if bias else [out[0], out[1], None, out[3], None]


def mlp_grads(fuse, fusion, shape, C, hid, dtype, bias=True, approximate="none"):
    fusion(fuse)
    ts = mlp_leaves(shape, C, hid, dtype, bias)
    y = mlp(*ts, approximate)
    g = tga.tensor(np.random.default_rng(1).standard_normal(y.shape), dtype=dtype)
    y.backward(g)
    return grad_fns(y, 1), [y.detach().numpy()] + [t.grad.numpy() for t in ts if t is not None]


@pytest.mark.parametrize("shape,C,hid", [((2, 5), 8, 32), ((1,), 1, 1), ((3, 7), 5, 13),
                                         ((17,), 16, 64)])
@pytest.mark.parametrize("dtype", [tga.float32, tga.float64])
@pytest.mark.parametrize("bias,approximate", [(True, "none"), (False, "none"), (True, "tanh")])
def test_gelu_mlp_of_parts_equals_ops_as_written(fusion, shape, C, hid, dtype, bias, approximate):
    names, fused = mlp_grads(True, fusion, shape, C, hid, dtype, bias, approximate)
    assert names == ["GeluMLPOfParts"]
    names, plain = mlp_grads(False, fusion, shape, C, hid, dtype, bias, approximate)
    assert names == ["Linear"]
    tol = 1e-6 if dtype == tga.float32 else 1e-13
    for a, b in zip(fused, plain):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol * max(1.0, np.abs(b).max()))


def test_gelu_mlp_of_parts_with_the_gelu_used_twice(fusion):
    """a = gelu(h) feeding two linears and a sum: every path's gradient reaches h."""
    grads = {}
    for fuse in (True, False):
        fusion(fuse)
        x, w1, b1, w2, b2 = mlp_leaves((4,), 6, 10, tga.float64)
        a = F.gelu(F.linear(x, w1, b1))
        y = F.linear(a, w2, b2).sum() + F.linear(a, w2 * 2.0).sum() + (a * a).sum()
        y.backward()
        grads[fuse] = [t.grad.numpy() for t in (x, w1, b1, w2, b2)]
    for a, b in zip(grads[True], grads[False]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_gelu_mlp_of_parts_not_matched_with_a_hook_or_without_grad(fusion):
    x, w1, b1, w2, b2 = mlp_leaves((3,), 4, 8, tga.float32)
    a = F.gelu(F.linear(x, w1, b1))
    a.retain_grad()
    assert grad_fns(F.linear(a, w2, b2), 1) == ["Linear"]
    with tga.no_grad():
        assert F.linear(F.gelu(F.linear(x, w1, b1)), w2, b2).grad_fn is None
    a = F.gelu(F.linear(x, w1, b1))
    assert grad_fns(F.linear(a, w2, b2), 1) == ["GeluMLPOfParts"]
    with pytest.raises(RuntimeError, match="retain_grad.*fused op"):
        a.retain_grad()
    assert grad_fns(F.linear(F.relu(F.linear(x, w1, b1)), w2, b2), 1) == ["Linear"]


def test_gelu_mlp_of_parts_gradcheck_float64(fusion):
    ts = mlp_leaves((2, 3), 4, 6, tga.float64)
    assert grad_fns(mlp(*ts), 1) == ["GeluMLPOfParts"]
    assert tga.autograd.gradcheck(mlp, tuple(ts))


def test_gelu_mlp_of_parts_parity_with_torch(fusion):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    ts = mlp_leaves((2, 7), 12, 48, tga.float32)
    mlp(*ts).sum().backward()
    tt = [torch.tensor(t.detach().numpy(), requires_grad=True) for t in ts]
    F_ = torch.nn.functional
    F_.linear(F_.gelu(F_.linear(tt[0], tt[1], tt[2])), tt[3], tt[4]).sum().backward()
    for ours, theirs in zip(ts, tt):
        np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-5, atol=1e-5)


def test_both_patterns_on_each_device(fusion, device):
    """The same matches on the GPU backend (under the simulator in CI): the views' layout
    comes from the device array, the GELU factor from the Gelu node."""
    got = {}
    for fuse in (True, False):
        fusion(fuse)
        x, w, b = (t.detach().to(device).requires_grad_() for t in leaves(1, 3, 4, tga.float32))
        y = attention_block(x, w, b, 2)
        names = grad_fns(y)
        m = [t.detach().to(device).requires_grad_() for t in mlp_leaves((3,), 4, 6, tga.float32)]
        z = mlp(*m)
        assert ("QKVAttention" in names) == fuse and (grad_fns(z, 1) == ["GeluMLPOfParts"]) == fuse
        (y.sum() + z.sum()).backward()
        got[fuse] = [t.grad.cpu().numpy() for t in [x, w, b] + m]
    for a, b in zip(got[True], got[False]):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
