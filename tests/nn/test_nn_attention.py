"""nn.MultiheadAttention, KVCache, Transformer layers/stacks and positional encodings.

Parity with torch: weights move through numpy (torch state_dict -> our load_state_dict), the
same inputs go through both, and outputs plus the gradients of every input and parameter are
compared (float64 tight, float32 to rounding).
"""
import math

import numpy as np
import pytest

import tinygradattn as tga
from tinygradattn import nn
from helpers import TOLS, assert_close

TORCH_REASON = "parity tests need PyTorch"
NP = {"float32": np.float32, "float64": np.float64}


# ---- helpers -----------------------------------------------------------------------------------
def _copy_from_torch(ours, theirs):
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})


def _to_both(torch, arrays, dtype):
    """name -> (our tensor, torch tensor); float arrays in dtype and requiring grad."""
    out = {}
    for name, a in arrays.items():
        if a is None:
            out[name] = (None, None)
        elif a.dtype.kind == "f":
            a = a.astype(NP[dtype])
            out[name] = (tga.tensor(a, requires_grad=True),
                         torch.tensor(a, requires_grad=True))
        else:
            out[name] = (tga.tensor(a), torch.tensor(a))
    return out


def _check_parity(torch, ours, theirs, call, arrays, dtype, what, grad_inputs=()):
    """call(module, inputs: name -> tensor) -> tuple of outputs; compares outputs and the
    gradients of a random projection of them w.r.t. inputs and parameters."""
    tol = TOLS[dtype]["composite"]
    if dtype == "float64":
        ours.double()
        theirs.double()
    _copy_from_torch(ours, theirs)
    both = _to_both(torch, arrays, dtype)
    mine = call(ours, {k: v[0] for k, v in both.items()})
    ref = call(theirs, {k: v[1] for k, v in both.items()})
    rng = np.random.default_rng(7)
    loss_ours, loss_ref = 0, 0
    for i, (o, r) in enumerate(zip(mine, ref)):
        if r is None:
            assert o is None, f"{what}: output {i} should be None"
            continue
        assert tuple(o.shape) == tuple(r.shape), f"{what} output {i}: {o.shape} vs {r.shape}"
        assert_close(o.detach().numpy(), r.detach().numpy(), tol, f"{what} output {i}", dtype)
        up = rng.standard_normal(tuple(r.shape)).astype(NP[dtype])
        loss_ours = loss_ours + (o * tga.tensor(up)).sum()
        loss_ref = loss_ref + (r * torch.tensor(up)).sum()
    loss_ours.backward()
    loss_ref.backward()
    for name in grad_inputs:
        assert_close(both[name][0].grad.numpy(), both[name][1].grad.numpy(), tol,
                     f"{what} grad of {name}", dtype)
    params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        assert_close(p.grad.numpy(), params[name].grad.numpy(), tol, f"{what} grad of {name}",
                     dtype)


def _mha_call(need_weights=True, average=True, is_causal=False):
    def call(m, x):
        return m(x["q"], x["k"], x["v"], key_padding_mask=x.get("kpm"),
                 need_weights=need_weights, attn_mask=x.get("mask"),
                 average_attn_weights=average, is_causal=is_causal)
    return call


# ---- MultiheadAttention: parity ------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("need_weights,average", [(True, True), (True, False), (False, True)])
def test_mha_self_attention_parity(dtype, batch_first, need_weights, average):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    torch.manual_seed(0)
    E, H, B, T = 8, 2, 3, 5
    theirs = torch.nn.MultiheadAttention(E, H, batch_first=batch_first)
    ours = nn.MultiheadAttention(E, H, batch_first=batch_first)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, T, E) if batch_first else (T, B, E))

    def call(m, t):
        return m(t["x"], t["x"], t["x"], need_weights=need_weights,
                 average_attn_weights=average)
    _check_parity(torch, ours, theirs, call, {"x": x}, dtype, "mha self", grad_inputs=["x"])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("need_weights", [True, False])
def test_mha_cross_attention_with_masks_parity(dtype, batch_first, need_weights):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    torch.manual_seed(1)
    E, H, B, T, S = 12, 3, 2, 4, 6
    theirs = torch.nn.MultiheadAttention(E, H, batch_first=batch_first)
    ours = nn.MultiheadAttention(E, H, batch_first=batch_first)
    rng = np.random.default_rng(1)
    shape = (lambda L: (B, L, E)) if batch_first else (lambda L: (L, B, E))
    kpm = np.zeros((B, S), bool)
    kpm[1, 4:] = True                                           # batch 1 has 2 pad keys
    kpm = np.where(kpm, -np.inf, 0.0)                           # float, as the attn_mask
    mask = rng.standard_normal((T, S))                          # float mask: added
    arrays = {"q": rng.standard_normal(shape(T)), "k": rng.standard_normal(shape(S)),
              "v": rng.standard_normal(shape(S)), "kpm": kpm, "mask": mask}
    _check_parity(torch, ours, theirs, _mha_call(need_weights, average=False), arrays, dtype,
                  "mha cross", grad_inputs=["q", "k", "v", "mask"])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("mask_kind", ["bool2d", "bool3d", "float3d", "causal"])
def test_mha_attn_mask_kinds_parity(dtype, need_weights, mask_kind):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    torch.manual_seed(2)
    E, H, B, T = 8, 2, 2, 5
    theirs = torch.nn.MultiheadAttention(E, H, batch_first=True)
    ours = nn.MultiheadAttention(E, H, batch_first=True)
    rng = np.random.default_rng(2)
    causal = np.triu(np.ones((T, T), bool), 1)                  # True = masked out
    mask = {"bool2d": causal,
            "bool3d": np.stack([np.roll(causal, i % 2, axis=1) & ~np.eye(T, dtype=bool)
                                for i in range(B * H)]),
            "float3d": rng.standard_normal((B * H, T, T)),
            "causal": causal}[mask_kind]
    x = rng.standard_normal((B, T, E))
    kpm = np.zeros((B, T), bool)
    kpm[0, -1] = True
    if mask.dtype.kind == "f":
        kpm = np.where(kpm, -np.inf, 0.0)                       # same mask types, as torch asks

    def call(m, t):
        return m(t["x"], t["x"], t["x"], attn_mask=t["mask"],
                 key_padding_mask=t["kpm"] if mask_kind != "causal" else None,
                 need_weights=need_weights, is_causal=mask_kind == "causal")
    grads = ["x", "mask"] if mask_kind == "float3d" else ["x"]
    _check_parity(torch, ours, theirs, call, {"x": x, "mask": mask, "kpm": kpm}, dtype,
                  f"mha {mask_kind}", grad_inputs=grads)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("bias", [True, False])
def test_mha_kdim_vdim_parity(dtype, bias):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    torch.manual_seed(3)
    E, H, B, T, S, KD, VD = 8, 4, 2, 3, 4, 5, 7
    theirs = torch.nn.MultiheadAttention(E, H, bias=bias, kdim=KD, vdim=VD)
    ours = nn.MultiheadAttention(E, H, bias=bias, kdim=KD, vdim=VD)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    rng = np.random.default_rng(3)
    arrays = {"q": rng.standard_normal((T, B, E)), "k": rng.standard_normal((S, B, KD)),
              "v": rng.standard_normal((S, B, VD))}
    _check_parity(torch, ours, theirs, _mha_call(), arrays, dtype, "mha kdim/vdim",
                  grad_inputs=["q", "k", "v"])


def test_mha_unbatched_parity():
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    torch.manual_seed(4)
    theirs = torch.nn.MultiheadAttention(6, 3)
    ours = nn.MultiheadAttention(6, 3)
    rng = np.random.default_rng(4)
    arrays = {"q": rng.standard_normal((4, 6)), "k": rng.standard_normal((5, 6)),
              "v": rng.standard_normal((5, 6)), "kpm": np.array([0, 0, 0, 1, 0], bool)}
    _check_parity(torch, ours, theirs, _mha_call(average=False), arrays, "float64",
                  "mha unbatched", grad_inputs=["q", "k", "v"])


def test_mha_state_dict_names_match_torch():
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    for kw in ({}, {"bias": False}, {"kdim": 3}, {"vdim": 5, "batch_first": True}):
        ours = nn.MultiheadAttention(8, 2, **kw)
        theirs = torch.nn.MultiheadAttention(8, 2, **kw)
        assert list(ours.state_dict()) == list(theirs.state_dict()), kw
        for k, v in theirs.state_dict().items():
            assert tuple(ours.state_dict()[k].shape) == tuple(v.shape), k


def test_mha_dropout_only_in_training():
    m = nn.MultiheadAttention(8, 2, dropout=0.5, batch_first=True)
    x = tga.randn(2, 4, 8)
    m.eval()
    a, _ = m(x, x, x)
    b, _ = m(x, x, x)
    np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    m.train()
    _, w = m(x, x, x, average_attn_weights=False)
    assert (w.detach().numpy() == 0).any()          # dropped weights are returned


def test_mha_gradcheck_float64():
    m = nn.MultiheadAttention(4, 2, kdim=3).double()
    q = tga.randn(3, 1, 4, dtype=tga.float64, requires_grad=True)
    k = tga.randn(2, 1, 3, dtype=tga.float64, requires_grad=True)
    v = tga.randn(2, 1, 4, dtype=tga.float64, requires_grad=True)
    mask = tga.randn(3, 2, dtype=tga.float64, requires_grad=True)

    def fn(q, k, v, mask):
        out, w = m(q, k, v, attn_mask=mask, average_attn_weights=False)
        return out.sum() + (w * w).sum()
    assert tga.autograd.gradcheck(fn, (q, k, v, mask), eps=1e-6, atol=1e-6, rtol=1e-5)


def test_mha_packed_self_attention_path(monkeypatch):
    """Self-attention with no weights, no dropout and no cache runs as one op on the packed
    in_proj output, masks included (the causal hint, a key padding mask); weights, dropout,
    a cache or cross-attention take the general path. Both give the same result."""
    calls = []
    real = nn.MultiheadAttention._packed_self_attention
    monkeypatch.setattr(nn.MultiheadAttention, "_packed_self_attention",
                        lambda *args: calls.append(1) or real(*args))
    m = nn.MultiheadAttention(8, 2, dropout=0.5).eval()
    x, other = tga.randn(5, 3, 8), tga.randn(4, 3, 8)
    causal = nn.generate_square_subsequent_mask(5)
    kpm = tga.tensor(np.array([[0, 0, 0, 1, 1], [0] * 5, [0, 1, 0, 1, 0]], bool))
    fused = m(x, x, x, need_weights=False)[0]
    fused_causal = m(x, x, x, attn_mask=causal, is_causal=True, need_weights=False)[0]
    fused_kpm = m(x, x, x, key_padding_mask=kpm, need_weights=False)[0]
    assert len(calls) == 3
    general = m(x, x, x, need_weights=True)[0]
    general_causal = m(x, x, x, attn_mask=causal, need_weights=True)[0]
    general_kpm = m(x, x, x, key_padding_mask=kpm, need_weights=True)[0]
    m(x, other, other, need_weights=False)
    m(x, x, x, need_weights=False, cache=nn.KVCache())
    m.train()
    m(x, x, x, need_weights=False)
    assert len(calls) == 3
    tol = TOLS["float32"]["composite"]
    for got, want, what in ((fused, general, "plain"), (fused_causal, general_causal, "causal"),
                            (fused_kpm, general_kpm, "key padding")):
        assert_close(got.detach().numpy(), want.detach().numpy(), tol, f"fused vs general {what}")


@pytest.mark.parametrize("is_causal", [False, True])
def test_mha_packed_self_attention_gradcheck_float64(is_causal):
    m = nn.MultiheadAttention(6, 3, batch_first=True).double()
    x = tga.randn(2, 4, 6, dtype=tga.float64, requires_grad=True)
    mask = nn.generate_square_subsequent_mask(4, dtype=tga.float64) if is_causal else None

    def fn(x):
        return m(x, x, x, attn_mask=mask, is_causal=is_causal, need_weights=False)[0]
    assert tga.autograd.gradcheck(fn, (x,), eps=1e-6, atol=1e-6, rtol=1e-5)


# ---- MultiheadAttention: init, errors -----------------------------------------------------------
def test_mha_default_init_statistics():
    tga.manual_seed(0)
    E = 64
    m = nn.MultiheadAttention(E, 4)
    w = m.in_proj_weight.detach().numpy()
    bound = math.sqrt(6.0 / (E + 3 * E))                        # xavier_uniform on (3E, E)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.03 * bound
    assert abs(w.mean()) < 0.02 * bound
    assert not m.in_proj_bias.detach().numpy().any() and not m.out_proj.bias.detach().numpy().any()
    ow = m.out_proj.weight.detach().numpy()                              # Linear's kaiming uniform
    assert np.abs(ow).max() <= 1 / math.sqrt(E) and np.abs(ow).max() > 0.95 / math.sqrt(E)
    sep = nn.MultiheadAttention(E, 4, kdim=32)
    kb = math.sqrt(6.0 / (32 + E))
    assert sep.in_proj_weight is None
    assert np.abs(sep.k_proj_weight.detach().numpy()).max() <= kb


def test_mha_errors():
    with pytest.raises(AssertionError, match="embed_dim=10 and num_heads=4"):
        nn.MultiheadAttention(10, 4)
    m = nn.MultiheadAttention(8, 2, batch_first=True)
    x = tga.randn(2, 3, 8)
    with pytest.raises(RuntimeError, match=r"2D attn_mask is \(4, 4\).*\(3, 3\)"):
        m(x, x, x, attn_mask=tga.zeros(4, 4))
    with pytest.raises(AssertionError, match=r"key_padding_mask shape of \(2, 3\)"):
        m(x, x, x, key_padding_mask=tga.zeros(2, 5, dtype=tga.bool))
    with pytest.raises(RuntimeError, match="Need attn_mask"):
        m(x, x, x, is_causal=True)
    with pytest.raises(AssertionError, match="embedding dimension of 8, but got 6"):
        m(tga.randn(2, 3, 6), x, x)


# ---- KV cache ----------------------------------------------------------------------------------
@pytest.mark.parametrize("chunks", [[1] * 6, [3, 1, 2], [6]])
def test_kv_cache_incremental_equals_full_causal(chunks):
    m = nn.MultiheadAttention(8, 2, batch_first=True).double().eval()
    x = tga.randn(2, 6, 8, dtype=tga.float64)
    mask = nn.generate_square_subsequent_mask(6, dtype=tga.float64)
    full, _ = m(x, x, x, attn_mask=mask, need_weights=False, is_causal=True)
    cache, outs, start = nn.KVCache(), [], 0
    with tga.no_grad():
        for n in chunks:
            xs = x[:, start:start + n]
            out, _ = m(xs, xs, xs, cache=cache, is_causal=True, need_weights=False)
            outs.append(out)
            start += n
    assert len(cache) == 6
    np.testing.assert_allclose(tga.cat(outs, 1).numpy(), full.detach().numpy(), atol=1e-12)


def test_kv_cache_static_cross_attention_reuses_memory():
    m = nn.MultiheadAttention(8, 2, batch_first=True).double()
    mem = tga.randn(2, 5, 8, dtype=tga.float64)
    q = tga.randn(2, 3, 8, dtype=tga.float64)
    full, w_full = m(q, mem, mem)
    cache = nn.KVCache(static=True)
    outs = [m(q[:, i:i + 1], mem if i == 0 else None, mem if i == 0 else None,
              cache=cache)[0] for i in range(3)]
    assert len(cache) == 5
    np.testing.assert_allclose(tga.cat(outs, 1).detach().numpy(), full.detach().numpy(),
                               atol=1e-12)


def test_kv_cache_update_and_reorder():
    c = nn.KVCache()
    assert len(c) == 0 and not c.filled
    k = tga.arange(2 * 1 * 2 * 3, dtype=tga.float64).reshape(2, 1, 2, 3)
    c.update(k, k)
    c.update(k[:, :, :1], k[:, :, :1])
    assert len(c) == 3 and tuple(c.k.shape) == (2, 1, 3, 3)
    c.reorder(tga.tensor([1, 1]))
    np.testing.assert_array_equal(c.k.numpy()[0], c.k.numpy()[1])
    c.reset()
    assert len(c) == 0


# ---- Transformer layers and stacks: parity -----------------------------------------------------
def _layer_kwargs(norm_first, activation, batch_first):
    return dict(dim_feedforward=16, dropout=0.0, activation=activation, norm_first=norm_first,
                batch_first=batch_first)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation,batch_first", [("relu", False), ("gelu", True)])
def test_encoder_layer_parity(dtype, norm_first, activation, batch_first):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    torch.manual_seed(5)
    kw = _layer_kwargs(norm_first, activation, batch_first)
    theirs = torch.nn.TransformerEncoderLayer(8, 2, **kw)
    ours = nn.TransformerEncoderLayer(8, 2, **kw)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    B, S = 2, 5
    rng = np.random.default_rng(5)
    kpm = np.zeros((B, S), bool)
    kpm[1, 3:] = True
    arrays = {"x": rng.standard_normal((B, S, 8) if batch_first else (S, B, 8)),
              "mask": np.triu(np.ones((S, S), bool), 1), "kpm": kpm}

    def call(m, t):
        return (m(t["x"], src_mask=t["mask"], src_key_padding_mask=t["kpm"]),)
    _check_parity(torch, ours, theirs, call, arrays, dtype, "encoder layer", grad_inputs=["x"])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation,batch_first", [("relu", True), ("gelu", False)])
def test_decoder_layer_parity(dtype, norm_first, activation, batch_first):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    torch.manual_seed(6)
    kw = _layer_kwargs(norm_first, activation, batch_first)
    theirs = torch.nn.TransformerDecoderLayer(8, 2, **kw)
    ours = nn.TransformerDecoderLayer(8, 2, **kw)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    B, T, S = 2, 4, 6
    rng = np.random.default_rng(6)
    mkpm = np.zeros((B, S), bool)
    mkpm[0, 4:] = True
    shape = (lambda L: (B, L, 8)) if batch_first else (lambda L: (L, B, 8))
    arrays = {"x": rng.standard_normal(shape(T)), "mem": rng.standard_normal(shape(S)),
              "mask": np.triu(np.ones((T, T), bool), 1), "mkpm": mkpm}

    def call(m, t):
        return (m(t["x"], t["mem"], tgt_mask=t["mask"], memory_key_padding_mask=t["mkpm"],
                  tgt_is_causal=True),)
    _check_parity(torch, ours, theirs, call, arrays, dtype, "decoder layer",
                  grad_inputs=["x", "mem"])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_encoder_decoder_stacks_parity(dtype):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    torch.manual_seed(7)
    kw = _layer_kwargs(True, "gelu", True)

    class Pair(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = torch.nn.TransformerEncoder(
                torch.nn.TransformerEncoderLayer(8, 2, **kw), 2, norm=torch.nn.LayerNorm(8),
                enable_nested_tensor=False)
            self.decoder = torch.nn.TransformerDecoder(
                torch.nn.TransformerDecoderLayer(8, 2, **kw), 2, norm=torch.nn.LayerNorm(8))

    class OurPair(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, **kw), 2,
                                                 norm=nn.LayerNorm(8))
            self.decoder = nn.TransformerDecoder(nn.TransformerDecoderLayer(8, 2, **kw), 2,
                                                 norm=nn.LayerNorm(8))

    theirs, ours = Pair(), OurPair()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    B, T, S = 2, 4, 5
    rng = np.random.default_rng(7)
    kpm = np.zeros((B, S), bool)
    kpm[1, 3:] = True
    arrays = {"src": rng.standard_normal((B, S, 8)), "tgt": rng.standard_normal((B, T, 8)),
              "tmask": np.triu(np.full((T, T), -np.inf), 1), "kpm": kpm}

    def call(m, t):
        mem = m.encoder(t["src"], src_key_padding_mask=t["kpm"])
        return (m.decoder(t["tgt"], mem, tgt_mask=t["tmask"].detach(),
                          memory_key_padding_mask=t["kpm"]),)
    _check_parity(torch, ours, theirs, call, arrays, dtype, "stacks",
                  grad_inputs=["src", "tgt"])


def test_stack_layers_start_from_the_same_weights_as_torch():
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, dim_feedforward=16), 3)
    w = [layer.linear1.weight.detach().numpy() for layer in enc.layers]
    np.testing.assert_array_equal(w[0], w[2])
    assert enc.layers[0].linear1.weight is not enc.layers[1].linear1.weight


def test_layer_errors_and_activation_callable():
    with pytest.raises(RuntimeError, match="activation should be relu/gelu, not tanh"):
        nn.TransformerEncoderLayer(8, 2, activation="tanh")
    layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, activation=nn.GELU(),
                                       batch_first=True)
    assert "activation" not in "".join(layer.state_dict())       # a module without parameters
    assert tuple(layer(tga.randn(2, 3, 8)).shape) == (2, 3, 8)


def test_decoder_layer_cache_equals_full_and_keeps_cross_weights():
    layer = nn.TransformerDecoderLayer(8, 2, dim_feedforward=16, dropout=0.0, batch_first=True,
                                       norm_first=True).double().eval()
    tgt = tga.randn(2, 5, 8, dtype=tga.float64)
    mem = tga.randn(2, 3, 8, dtype=tga.float64)
    mask = nn.generate_square_subsequent_mask(5, dtype=tga.float64)
    layer.keep_cross_attention = True
    with tga.no_grad():
        full = layer(tgt, mem, tgt_mask=mask, tgt_is_causal=True)
        w_full = layer.cross_attn_weights
        assert tuple(w_full.shape) == (2, 2, 5, 3)
        cache = nn.DecoderLayerCache()
        steps = [layer(tgt[:, i:i + 1], mem, tgt_is_causal=True, cache=cache) for i in range(5)]
    np.testing.assert_allclose(tga.cat(steps, 1).numpy(), full.numpy(), atol=1e-12)
    np.testing.assert_allclose(layer.cross_attn_weights.numpy(), w_full.numpy()[:, :, -1:],
                               atol=1e-12)


# ---- positional encodings -----------------------------------------------------------------------
def test_sinusoidal_positional_encoding_formula_and_buffer():
    pe = nn.SinusoidalPositionalEncoding(6, max_len=10)
    assert "pe" not in pe.state_dict() and list(pe.parameters()) == []
    table = pe.pe.numpy()                                         # (max_len, d_model)
    pos, i = 7, 2                                                 # dims 2i and 2i+1
    angle = pos / 10000 ** (2 * i / 6)
    assert table.shape == (10, 6)
    np.testing.assert_allclose(table[pos, 2 * i], math.sin(angle), rtol=1e-6)
    np.testing.assert_allclose(table[pos, 2 * i + 1], math.cos(angle), rtol=1e-6)
    x = tga.zeros(2, 4, 6)
    np.testing.assert_array_equal(pe(x).numpy()[1], table[:4])
    np.testing.assert_array_equal(pe(x[:, :1], offset=3).numpy()[0, 0], table[3])
    with pytest.raises(ValueError, match="length 11.*max_len 10"):
        pe(tga.zeros(1, 11, 6))


def test_learned_positional_embedding():
    pe = nn.LearnedPositionalEmbedding(10, 6)
    assert list(pe.state_dict()) == ["weight"] and tuple(pe.weight.shape) == (10, 6)
    x = tga.zeros(2, 4, 6, requires_grad=True)
    y = pe(x, offset=2)
    np.testing.assert_array_equal(y.detach().numpy()[0], pe.weight.detach().numpy()[2:6])
    y.sum().backward()
    g = pe.weight.grad.numpy()
    assert (g[2:6] == 2).all() and not g[:2].any() and not g[6:].any()
    with pytest.raises(ValueError, match="max_len 10"):
        pe(tga.zeros(1, 9, 6), offset=2)
