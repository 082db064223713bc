"""The fused paths of MultiheadAttention and the Transformer layers (issue 19): masked
self-attention as one op on the packed projection, and the layers' residual branches inside
their GEMMs (out_proj + residual, GeluMLP + residual). Each is checked against torch, against
our own plain path (to float32 rounding), by float64 gradcheck, and for when it must not run:
dropout while training, forward hooks, a forward replaced on an instance."""
import numpy as np
import pytest

import tinygradattn as tga
from tinygradattn import nn
from tinygradattn.nn import functional as F
from helpers import TOLS, assert_close

NP = {"float32": np.float32, "float64": np.float64}


def _kpm(B, S, seed=0):
    """A bool key padding mask (True = padding) with a few padded keys per row, none empty."""
    rng = np.random.default_rng(seed)
    m = rng.random((B, S)) < 0.4
    m[:, 0] = False
    return m


# ---- MultiheadAttention: masked self-attention on the packed projection -----------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("masks", ["kpm", "bool_mask+kpm", "float_kpm", "3d_mask"])
def test_mha_masked_self_attention_parity(dtype, batch_first, masks):
    torch = pytest.importorskip("torch", reason="parity tests need PyTorch")
    torch.manual_seed(3)
    B, T, E, H = 3, 7, 12, 3                              # T prime, D = 4
    theirs = torch.nn.MultiheadAttention(E, H, batch_first=batch_first).to(getattr(torch, dtype))
    ours = nn.MultiheadAttention(E, H, batch_first=batch_first).to(dtype)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    rng = np.random.default_rng(3)
    x = rng.standard_normal((B, T, E) if batch_first else (T, B, E)).astype(NP[dtype])
    kpm = _kpm(B, T)
    kw = {"kpm": dict(key_padding_mask=kpm),
          "bool_mask+kpm": dict(key_padding_mask=kpm, attn_mask=np.triu(np.ones((T, T), bool), 1)),
          "float_kpm": dict(key_padding_mask=np.where(kpm, -np.inf, 0.0).astype(NP[dtype])),
          "3d_mask": dict(attn_mask=rng.standard_normal((B * H, T, T)).astype(NP[dtype]))}[masks]
    xt, xo = torch.tensor(x, requires_grad=True), tga.tensor(x, requires_grad=True)
    want = theirs(xt, xt, xt, need_weights=False, **{k: torch.tensor(v) for k, v in kw.items()})[0]
    got = ours(xo, xo, xo, need_weights=False, **{k: tga.tensor(v) for k, v in kw.items()})[0]
    tol = TOLS[dtype]["composite"]
    assert_close(got.detach().numpy(), want.detach().numpy(), tol, f"mha {masks}", dtype)
    up = rng.standard_normal(tuple(want.shape)).astype(NP[dtype])
    (want * torch.tensor(up)).sum().backward()
    (got * tga.tensor(up)).sum().backward()
    assert_close(xo.grad.numpy(), xt.grad.numpy(), tol, f"mha {masks} dx", dtype)
    params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        assert_close(p.grad.numpy(), params[name].grad.numpy(), tol, f"mha {masks} {name}", dtype)


def test_mha_masked_self_attention_gradcheck_float64():
    m = nn.MultiheadAttention(6, 3, batch_first=True).double()
    x = tga.randn(2, 5, 6, dtype=tga.float64, requires_grad=True)
    kpm = tga.tensor(_kpm(2, 5, seed=1))
    causal = nn.generate_square_subsequent_mask(5, dtype=tga.float64)

    def fn(x):
        return m(x, x, x, key_padding_mask=kpm, attn_mask=causal, need_weights=False)[0]
    assert tga.autograd.gradcheck(fn, (x,), eps=1e-6, atol=1e-6, rtol=1e-5)


def test_qkv_attention_op_with_mask_gradcheck_and_composed_twin():
    """QKVAttention with a bool (B, 1, 1, S) mask = split + heads + sdpa with that mask."""
    from tinygradattn.ops.attention import QKVAttention
    B, T, H, D = 2, 5, 2, 3
    qkv = tga.randn(B, T, 3 * H * D, dtype=tga.float64, requires_grad=True)
    may_attend = tga.tensor(~_kpm(B, T, seed=2)).reshape(B, 1, 1, T)

    def fused(qkv):
        return QKVAttention.apply(qkv, H, False, 0.5, may_attend)

    def composed(qkv):
        q, k, v = (t.reshape(B, T, H, D).transpose(1, 2) for t in qkv.chunk(3, dim=-1))
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=may_attend, scale=0.5)
        return y.transpose(1, 2).reshape(B, T, H * D)
    assert_close(fused(qkv).detach().numpy(), composed(qkv).detach().numpy(),
                 TOLS["float64"]["composite"], "QKVAttention with mask", "float64")
    assert tga.autograd.gradcheck(fused, (qkv,), eps=1e-6, atol=1e-6, rtol=1e-5)


# ---- Transformer layers: residual branches inside the GEMMs -------------------------------------
def _layer(kind, activation, norm_first, dropout=0.0):
    kw = dict(dim_feedforward=20, dropout=dropout, activation=activation, norm_first=norm_first,
              batch_first=True)
    tga.manual_seed(11)
    if kind == "encoder":
        return nn.TransformerEncoderLayer(12, 3, **kw)
    return nn.TransformerDecoderLayer(12, 3, **kw)


def _run(layer, kind, x, mem, kpm):
    """Output and the gradients of x, mem and every parameter, for a fixed upstream."""
    for p in layer.parameters():
        p.grad = None
    x.grad = mem.grad = None
    if kind == "encoder":
        y = layer(x, src_key_padding_mask=kpm)
    else:
        T = x.shape[1]
        y = layer(x, mem, tgt_mask=nn.generate_square_subsequent_mask(T, dtype=x.dtype),
                  tgt_is_causal=True, memory_key_padding_mask=kpm)
    up = tga.tensor(np.random.default_rng(5).standard_normal(tuple(y.shape)), dtype=y.dtype)
    (y * up).sum().backward()
    grads = {n: p.grad.numpy() for n, p in layer.named_parameters()}
    grads["x"] = x.grad.numpy()
    if mem.grad is not None:
        grads["mem"] = mem.grad.numpy()
    return y.detach().numpy(), grads


def _inputs(dtype, B=3, T=6, S=7):
    """x (B, T, 12), memory (B, S, 12) and a key padding mask (B, S) (S = T: the encoder's)."""
    rng = np.random.default_rng(4)
    x = tga.tensor(rng.standard_normal((B, T, 12)).astype(NP[dtype]), requires_grad=True)
    mem = tga.tensor(rng.standard_normal((B, S, 12)).astype(NP[dtype]), requires_grad=True)
    return x, mem, tga.tensor(_kpm(B, S, seed=6))


class _Calls:
    """Counts the fused functions the layers call (F.gelu_mlp, F.linear_residual)."""

    def __init__(self, monkeypatch):
        self.n = {"gelu_mlp": 0, "linear_residual": 0}
        for name in self.n:
            real = getattr(F, name)
            monkeypatch.setattr(F, name, self._counting(name, real))

    def _counting(self, name, real):
        def wrapped(*args, **kwargs):
            self.n[name] += 1
            return real(*args, **kwargs)
        return wrapped


@pytest.mark.parametrize("kind", ["encoder", "decoder"])
@pytest.mark.parametrize("activation", ["gelu", "relu"])
@pytest.mark.parametrize("norm_first", [True, False])
def test_layer_fused_residuals_equal_plain_path(monkeypatch, kind, activation, norm_first):
    """The fused branches run (counted) and give what the plain path gives (a forward hook
    anywhere turns the fused branches off), to float32 rounding, gradients included."""
    calls = _Calls(monkeypatch)
    layer = _layer(kind, activation, norm_first)
    x, mem, kpm = _inputs("float32", S=6 if kind == "encoder" else 7)
    fused = _run(layer, kind, x, mem, kpm)
    n_attn = 1 if kind == "encoder" else 2
    assert calls.n == {"gelu_mlp": activation == "gelu",
                       "linear_residual": n_attn + (activation == "relu")}
    handle = nn.Identity().register_forward_hook(lambda *a: None)    # any hook: plain path
    try:
        plain = _run(layer, kind, x, mem, kpm)
    finally:
        handle.remove()
    assert calls.n["gelu_mlp"] == (activation == "gelu")               # no new fused calls
    tol = TOLS["float32"]["composite"]
    assert_close(fused[0], plain[0], tol, f"{kind} output")
    for name, g in plain[1].items():
        assert_close(fused[1][name], g, tol, f"{kind} grad of {name}")


@pytest.mark.parametrize("kind", ["encoder", "decoder"])
def test_layer_fused_path_gradcheck_float64(kind):
    layer = _layer(kind, "gelu", True).double()
    x, mem, kpm = _inputs("float64", B=2, T=3, S=3 if kind == "encoder" else 4)

    def fn(x, mem):
        if kind == "encoder":
            return layer(x, src_key_padding_mask=kpm) + 0 * mem.sum()
        return layer(x, mem, tgt_mask=nn.generate_square_subsequent_mask(3, dtype=tga.float64),
                     tgt_is_causal=True, memory_key_padding_mask=kpm)
    assert tga.autograd.gradcheck(fn, (x, mem), eps=1e-6, atol=1e-6, rtol=1e-5)


def test_layer_takes_the_plain_path_for_dropout_hooks_and_replaced_forwards(monkeypatch):
    calls = _Calls(monkeypatch)
    layer = _layer("encoder", "gelu", True, dropout=0.1)
    x = tga.randn(2, 4, 12)
    layer.train()
    layer(x)                                           # dropout active: as torch writes it
    assert calls.n == {"gelu_mlp": 0, "linear_residual": 0}
    layer.eval()
    layer(x)                                           # dropout idle in eval: fused
    assert calls.n == {"gelu_mlp": 1, "linear_residual": 1}
    seen = []
    handle = layer.linear1.register_forward_hook(lambda m, args, out: seen.append(out.shape))
    layer(x)                                           # the hook sees linear1's output
    handle.remove()
    assert seen == [(2, 4, 20)] and calls.n["gelu_mlp"] == 1
    inner = layer.self_attn.forward
    layer.self_attn.forward = lambda *a, **k: inner(*a, **k)     # replaced on the instance
    layer(x)
    assert calls.n == {"gelu_mlp": 2, "linear_residual": 1}     # attention ran its forward


def test_seq2seq_training_step_matches_the_plain_path():
    """A whole Seq2Seq forward + backward: fused (default) against plain (a hook registered)."""
    from tinygradattn.models import Seq2SeqConfig, Seq2SeqTransformer
    cfg = Seq2SeqConfig(13, 11, d_model=16, nhead=2, num_encoder_layers=2,
                        num_decoder_layers=2, dim_feedforward=24, dropout=0.0, max_len=12)
    tga.manual_seed(2)
    model = Seq2SeqTransformer(cfg)
    rng = np.random.default_rng(2)
    src = rng.integers(3, 13, (4, 9))
    src[1, 6:] = 0
    src[3, 2:] = 0
    tgt = rng.integers(3, 11, (4, 7))
    src, tgt = tga.tensor(src), tga.tensor(tgt)

    def run():
        model.zero_grad()
        logits = model(src, tgt)
        F.cross_entropy(logits.reshape(-1, 11), tgt.reshape(-1)).backward()
        return logits.detach().numpy(), {n: p.grad.numpy() for n, p in model.named_parameters()}
    fused = run()
    handle = nn.Identity().register_forward_pre_hook(lambda *a: None)
    try:
        plain = run()
    finally:
        handle.remove()
    tol = TOLS["float32"]["composite"]
    assert_close(fused[0], plain[0], tol, "seq2seq logits")
    for name, g in plain[1].items():
        assert_close(fused[1][name], g, tol, f"seq2seq grad of {name}")
