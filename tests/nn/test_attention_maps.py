"""Attention maps (issue 17): the fused ops rebuild their weights from lse, per chosen head.

ops/attention_weights.py against a float64 numpy softmax(q k^T * scale + mask) (causal, bool
and float masks, odd T and S, a fully masked row, head subsets); the capture leaves outputs
and gradients as they were and never forms an unrequested head's matrix; attention_maps on
GPT and Seq2SeqTransformer (names, shapes, rows summing to 1, causal maps lower-triangular,
cross-attention equal to MultiheadAttention's own need_weights=True path); the plot.
"""
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

import tinygradattn as tga
import tinygradattn.nn.functional as F
from tinygradattn.backend import get_backend
from tinygradattn.models import GPT, GPTConfig
from tinygradattn.models.seq2seq import Seq2SeqConfig, Seq2SeqTransformer
from tinygradattn.nn.attention import qkv_attention
from tinygradattn.nn.attention_maps import (attention_maps, capture_attention,
                                            plot_attention_maps,
                                            scaled_dot_product_attention_with_weights)
from tinygradattn.ops import attention_weights as aw

from helpers import TOLS, assert_close, rows_with_outliers

TOL = {"float32": TOLS["float32"]["composite"], "float64": TOLS["float64"]["composite"]}


# ---- the oracle ----------------------------------------------------------------------------------
def softmax_oracle(q, k, scale, mask=None, is_causal=False):
    """float64 softmax(q k^T * scale + mask) (..., T, S); a fully masked row gives 0."""
    s = np.matmul(q.astype(np.float64), np.swapaxes(k.astype(np.float64), -1, -2)) * scale
    T, S = s.shape[-2:]
    if is_causal:
        s = np.where(np.tril(np.ones((T, S), bool)), s, -np.inf)
    if mask is not None:
        s = np.where(mask, s, -np.inf) if mask.dtype == bool else s + mask.astype(np.float64)
    top = s.max(-1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    e = np.exp(s - top)
    total = e.sum(-1, keepdims=True)
    return np.where(total > 0, e / np.where(total > 0, total, 1.0), 0.0)


def _qkv(B, H, T, S, D, dtype, seed=0):
    q = rows_with_outliers((B, H, T, D), seed, dtype, scale=1.0)
    k = rows_with_outliers((B, H, S, D), seed + 1, dtype, scale=1.0)
    v = rows_with_outliers((B, H, S, D), seed + 2, dtype, scale=1.0)
    return q, k, v


def _bool_mask(B, H, T, S):
    """(B, 1, T, S) random keep-mask with row 1 of batch 0 fully masked."""
    m = np.random.default_rng(7).random((B, 1, T, S)) < 0.7
    m[0, 0, 1, :] = False
    return m


def _float_mask(B, H, T, S):
    """(B, H, T, S) per-head additive mask: finite biases and some -inf."""
    rng = np.random.default_rng(8)
    m = rng.standard_normal((B, H, T, S)).astype(np.float32)
    m[rng.random((B, H, T, S)) < 0.2] = -np.inf
    m[..., 0] = 0.5                                     # every row keeps a key
    return m


MASKS = {
    "causal": lambda B, H, T, S: None,
    "bool (B,1,T,S), a fully masked row": _bool_mask,
    "float (B,H,T,S) with -inf": _float_mask,
    "float (T,S)": lambda B, H, T, S: _float_mask(1, 1, T, S)[0, 0],
}
HEADS = [None, [2, 0], [1], [1, 2], [-1]]


# ---- sdpa: the fused kernel's rebuilt weights ----------------------------------------------------
@pytest.mark.parametrize("heads", HEADS, ids=str)
@pytest.mark.parametrize("case", list(MASKS))
@pytest.mark.parametrize("T,S", [(5, 5), (7, 3), (3, 11)])
def test_sdpa_weights_equal_composed_softmax(case, heads, T, S):
    B, H, D = 2, 3, 4
    q, k, v = _qkv(B, H, T, S, D, np.float32)
    mask = MASKS[case](B, H, T, S)
    causal = case == "causal"
    attn_mask = None if mask is None else tga.tensor(mask)
    out, w = scaled_dot_product_attention_with_weights(
        tga.tensor(q), tga.tensor(k), tga.tensor(v), attn_mask=attn_mask, is_causal=causal,
        heads=heads)
    want = softmax_oracle(q, k, D ** -0.5, mask, causal)                  # (B, H, T, S)
    pick = list(range(H)) if heads is None else [h % H for h in heads]
    assert_close(w.numpy(), want[:, pick], TOL["float32"], what=f"sdpa weights {case}")
    plain = F.scaled_dot_product_attention(tga.tensor(q), tga.tensor(k), tga.tensor(v),
                                           attn_mask=attn_mask, is_causal=causal)
    assert np.array_equal(out.numpy(), plain.numpy()), "capturing changed the output"


@pytest.mark.parametrize("case", list(MASKS))
def test_sdpa_weights_float64_exact(case):
    """float64: the rebuilt weights equal the oracle to float64 rounding."""
    B, H, T, S, D = 1, 3, 6, 9, 5
    q, k, v = _qkv(B, H, T, S, D, np.float64, seed=3)
    mask = MASKS[case](B, H, T, S)
    attn_mask = None if mask is None else tga.tensor(mask, dtype=tga.float64
                                                     if mask.dtype != bool else tga.bool)
    _, w = scaled_dot_product_attention_with_weights(
        tga.tensor(q), tga.tensor(k), tga.tensor(v), attn_mask=attn_mask,
        is_causal=case == "causal", scale=0.3)
    assert w.dtype == tga.float64
    assert_close(w.numpy(), softmax_oracle(q, k, 0.3, mask, case == "causal"), TOL["float64"],
                 what=f"float64 weights {case}")


def test_fully_masked_row_is_zero_like_the_output():
    B, H, T, S, D = 2, 3, 4, 5, 4
    q, k, v = _qkv(B, H, T, S, D, np.float32)
    mask = _bool_mask(B, H, T, S)
    out, w = scaled_dot_product_attention_with_weights(
        tga.tensor(q), tga.tensor(k), tga.tensor(v), attn_mask=tga.tensor(mask))
    assert np.all(w.numpy()[0, :, 1] == 0.0) and np.all(out.numpy()[0, :, 1] == 0.0)
    assert np.isfinite(w.numpy()).all()


@pytest.mark.parametrize("dropout_p,grad_mask", [(0.5, False), (0.0, True)])
def test_composed_path_gives_the_same_weights(dropout_p, grad_mask):
    """dropout or a mask needing grad take the composed path: weights composed, before dropout."""
    B, H, T, S, D = 2, 3, 5, 6, 4
    q, k, v = _qkv(B, H, T, S, D, np.float32)
    mask = tga.tensor(_float_mask(B, H, T, S), requires_grad=grad_mask)
    _, w = scaled_dot_product_attention_with_weights(
        tga.tensor(q), tga.tensor(k), tga.tensor(v), attn_mask=mask, dropout_p=dropout_p,
        heads=[2, 1])
    want = softmax_oracle(q, k, D ** -0.5, _float_mask(B, H, T, S))[:, [2, 1]]
    assert_close(w.numpy(), want, TOL["float32"], what="composed weights")


@pytest.mark.parametrize("shape", [(5, 4), (2, 5, 4), (2, 2, 3, 5, 4)], ids=str)
def test_with_weights_keeps_the_leading_dims(shape):
    q = tga.randn(*shape)
    out, w = scaled_dot_product_attention_with_weights(q, q, q, is_causal=True)
    assert tuple(out.shape) == shape
    assert tuple(w.shape) == shape[:-1] + (shape[-2],)
    want = softmax_oracle(q.numpy(), q.numpy(), shape[-1] ** -0.5, is_causal=True)
    assert_close(w.numpy(), want, TOL["float32"], what=f"weights of {shape}")
    if len(shape) > 2:
        for dropout_p in (0.0, 0.5):                 # the fused path, then the composed one
            _, w1 = scaled_dot_product_attention_with_weights(q, q, q, dropout_p=dropout_p,
                                                              heads=[1, 0][:shape[-3]])
            h = min(2, shape[-3])
            assert tuple(w1.shape) == shape[:-3] + (h, shape[-2], shape[-2])
            want = softmax_oracle(q.numpy(), q.numpy(), shape[-1] ** -0.5)
            assert_close(w1.numpy(), want[..., [1, 0][:h], :, :] if len(shape) > 3 else
                         want[[1, 0][:h]], TOL["float32"], what=f"heads of {shape}")


# ---- qkv_attention -------------------------------------------------------------------------------
@pytest.mark.parametrize("heads", HEADS, ids=str)
@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("T", [1, 7])
def test_qkv_attention_weights_equal_composed_softmax(causal, heads, T):
    B, H, D = 2, 3, 4
    qkv = rows_with_outliers((B, T, 3 * H * D), 5, np.float32, scale=1.0)
    with capture_attention(heads) as maps:
        y = qkv_attention(tga.tensor(qkv), H, is_causal=causal)
    q, k = (qkv[:, :, i * H * D:(i + 1) * H * D].reshape(B, T, H, D).transpose(0, 2, 1, 3)
            for i in range(2))                                               # (B, H, T, D)
    pick = list(range(H)) if heads is None else [h % H for h in heads]
    assert len(maps) == 1 and maps.names == [None]
    assert_close(maps[0].numpy(), softmax_oracle(q, k, D ** -0.5, None, causal)[:, pick],
                 TOL["float32"], what="qkv_attention weights")
    assert np.array_equal(y.numpy(), qkv_attention(tga.tensor(qkv), H, is_causal=causal).numpy())


# ---- the capture costs nothing it should not -----------------------------------------------------
class SpyBackend:
    """The cpu backend, recording the shapes of the matmuls asked of it."""

    def __init__(self):
        self.real = get_backend("cpu")
        self.matmuls = []

    def __getattr__(self, name):
        return getattr(self.real, name)

    def matmul(self, a, b):
        self.matmuls.append((a.shape, b.shape))
        return self.real.matmul(a, b)


def test_only_the_chosen_heads_are_formed():
    B, H, T, D = 2, 4, 6, 3
    q, k, _ = _qkv(B, H, T, T, D, np.float32)
    lse = np.log(np.exp(np.einsum("bhtd,bhsd->bhts", q, k) * 0.5).sum(-1)).astype(np.float32)
    spy = SpyBackend()
    p = aw.attention_weights(spy, q, k, lse, 0.5, heads=[3, 1])
    assert p.shape == (B, 2, T, T)
    assert [a[1] for a, _ in spy.matmuls] == [2], f"matmuls formed {spy.matmuls}"


def test_capture_changes_no_output_or_gradient_and_closes():
    B, H, T, D = 2, 3, 5, 4
    arrays = _qkv(B, H, T, T, D, np.float32)
    grads = []
    for capture in (False, True):
        q, k, v = (tga.tensor(a, requires_grad=True) for a in arrays)
        if capture:
            with capture_attention(heads=[1]) as maps:
                out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            assert len(maps) == 1
        else:
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        out.sum().backward()
        grads.append([out.detach().numpy()] + [t.grad.numpy() for t in (q, k, v)])
    for a, b in zip(*grads):
        assert np.array_equal(a, b)
    assert aw.RECORDERS == []
    with pytest.raises(ZeroDivisionError):
        with capture_attention():
            1 / 0
    assert aw.RECORDERS == [], "an exception left the recorder open"


def test_heads_are_checked():
    q = tga.randn(1, 2, 3, 4)
    with pytest.raises(IndexError, match="head 2 is out of range for 2 heads"):
        scaled_dot_product_attention_with_weights(q, q, q, heads=[0, 2])
    with pytest.raises(TypeError, match="heads must be integers"):
        scaled_dot_product_attention_with_weights(q, q, q, heads=[0.5])
    assert aw.RECORDERS == []


# ---- models ------------------------------------------------------------------------------------
def _gpt(dropout=0.0):
    tga.manual_seed(0)
    return GPT(GPTConfig(vocab_size=13, block_size=16, n_layer=2, n_head=3, n_embd=12,
                         dropout=dropout))


def test_gpt_maps():
    model = _gpt(dropout=0.1)                        # training mode, dropout on: eval inside
    idx = tga.tensor([[1, 5, 2, 7, 3, 3, 9], [4, 4, 0, 1, 12, 6, 2]])
    maps = attention_maps(model, idx)
    assert model.training and "forward" not in model.__dict__
    assert list(maps) == ["transformer.h.0.attn", "transformer.h.1.attn"]
    for name, w in maps.items():
        w = w.numpy()
        assert w.shape == (2, 3, 7, 7), name
        assert_close(w.sum(-1), np.ones((2, 3, 7)), TOL["float32"], what=f"{name} rows")
        assert np.all(np.triu(w, 1) == 0.0), f"{name} is not lower-triangular"
    sub = attention_maps(model, idx, heads=[2])
    assert np.array_equal(sub["transformer.h.1.attn"].numpy(),
                          maps["transformer.h.1.attn"].numpy()[:, [2]])


def test_gpt_outputs_unchanged_by_capture():
    model = _gpt()
    idx = tga.tensor([[1, 5, 2, 7, 3]])
    plain, _ = model(idx)
    with capture_attention(model=model) as maps:
        captured, _ = model(idx)
    assert np.array_equal(plain.detach().numpy(), captured.detach().numpy())
    assert maps.names == ["transformer.h.0.attn", "transformer.h.1.attn"]
    assert all("forward" not in m.__dict__ for m in model.modules())


def _seq2seq():
    tga.manual_seed(0)
    return Seq2SeqTransformer(Seq2SeqConfig(src_vocab_size=13, tgt_vocab_size=11, d_model=16,
                                            nhead=4, dim_feedforward=32, max_len=16))


SRC = [[5, 6, 7, 8, 9, 0, 0], [4, 5, 6, 7, 8, 9, 10]]            # row 0: two pad positions
TGT = [[1, 3, 4, 5, 6], [1, 3, 3, 4, 4]]


def test_seq2seq_maps():
    model = _seq2seq()
    src, tgt = tga.tensor(SRC), tga.tensor(TGT)
    maps = attention_maps(model, src, tgt)
    shapes = {"encoder.layers.0.self_attn": (2, 4, 7, 7), "encoder.layers.1.self_attn":
              (2, 4, 7, 7), "decoder.layers.0.self_attn": (2, 4, 5, 5),
              "decoder.layers.0.multihead_attn": (2, 4, 5, 7),
              "decoder.layers.1.self_attn": (2, 4, 5, 5),
              "decoder.layers.1.multihead_attn": (2, 4, 5, 7)}
    assert {n: tuple(w.shape) for n, w in maps.items()} == shapes
    for name, w in maps.items():
        w = w.numpy()
        assert_close(w.sum(-1), np.ones(w.shape[:-1]), TOL["float32"], what=f"{name} rows")
        if "self_attn" in name and name.startswith("decoder"):
            assert np.all(np.triu(w, 1) == 0.0), f"{name} is not lower-triangular"
        else:                                        # keys: the source, pads never attended
            assert np.all(w[0, :, :, 5:] == 0.0), f"{name} attends to padding"


def test_seq2seq_cross_attention_equals_need_weights_path():
    """The fused kernel's cross-attention map equals MultiheadAttention's explicit weights."""
    model = _seq2seq()
    model.eval()
    src, tgt = tga.tensor(SRC), tga.tensor(TGT)
    plain = model(src, tgt)
    with capture_attention(model=model) as maps:
        captured = model(src, tgt)
    assert np.array_equal(plain.detach().numpy(), captured.detach().numpy())
    model._keep_cross_attention(True)                # the composed need_weights=True path
    model(src, tgt)
    got = dict(maps.named())
    for i, layer in enumerate(model.decoder.layers):
        assert_close(got[f"decoder.layers.{i}.multihead_attn"].numpy(),
                     layer.cross_attn_weights.numpy(), TOL["float32"], what=f"cross {i}")


def test_a_layer_run_twice_and_the_model_itself_get_numbered_names():
    class TwoCalls(tga.nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = tga.nn.MultiheadAttention(8, 2, batch_first=True)

        def forward(self, x):
            y = self.attn(x, x, x, need_weights=False)[0]
            y = self.attn(y, y, y, need_weights=False)[0]
            return F.scaled_dot_product_attention(y, y, y)

    maps = attention_maps(TwoCalls(), tga.randn(1, 3, 8))
    assert list(maps) == ["attn", "attn#1", "TwoCalls"]


def test_no_fused_attention_is_an_error():
    model = tga.nn.Linear(3, 3)
    with pytest.raises(RuntimeError, match="no fused attention op ran in Linear"):
        attention_maps(model, tga.randn(2, 3))


# ---- the plot ---------------------------------------------------------------------------------
def test_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib is not installed: plot not tested")
    model = _seq2seq()
    maps = attention_maps(model, tga.tensor(SRC), tga.tensor(TGT))
    src_words = [f"s{i}" for i in range(7)]
    tgt_words = [f"t{i}" for i in range(5)]
    tokens = {"encoder.layers.0.self_attn": (src_words, src_words),
              "decoder.layers.1.multihead_attn": (tgt_words, src_words)}
    path = tmp_path / "maps.png"
    fig = plot_attention_maps(maps, tokens=tokens, batch_index=1, path=path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(fig.axes) == 6 * 4 + 1                # layers x heads, and the colorbar
    labels = [t.get_text() for t in fig.axes[20].get_xticklabels()]
    assert labels == src_words
    with pytest.raises(ValueError, match="5 key labels for map 'encoder.layers.0.self_attn'"):
        plot_attention_maps(maps, tokens=src_words, key_tokens=tgt_words)


def test_plot_without_matplotlib_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        plot_attention_maps({"a": tga.ones(1, 1, 2, 2)})


# ---- every device --------------------------------------------------------------------------------
def test_weights_on_device(device):
    B, H, T, S, D = 1, 3, 5, 7, 4
    q, k, v = _qkv(B, H, T, S, D, np.float32)
    mask = _bool_mask(B, H, T, S)
    _, w = scaled_dot_product_attention_with_weights(
        *(tga.tensor(a, device=device) for a in (q, k, v)),
        attn_mask=tga.tensor(mask, device=device), heads=[2, 0])
    assert_close(w.cpu().numpy(), softmax_oracle(q, k, D ** -0.5, mask)[:, [2, 0]],
                 TOL["float32"], what=f"weights on {device}")


# ---- the example that draws docs/attention_maps.png -------------------------------------------
def test_attention_maps_example(tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib is not installed: plot not tested")
    root = pathlib.Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(root)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    out = tmp_path / "maps.png"
    proc = subprocess.run([sys.executable, str(root / "examples" / "attention_maps.py"),
                           "--steps", "2", "--layers", "1", "--digits", "2718", "--out",
                           str(out)], capture_output=True, text=True, cwd=root, env=env,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"decoder.layers.0.multihead_attn +\(1, 4, 5, 5\)", proc.stdout), proc.stdout
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_docstring_examples_run():
    import doctest

    import tinygradattn.nn.attention_maps as module
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 3 and result.failed == 0, result


def test_qkv_weights_on_device(device):
    B, T, H, D = 2, 5, 3, 4
    qkv = rows_with_outliers((B, T, 3 * H * D), 5, np.float32, scale=1.0)
    with capture_attention(heads=[2, 1]) as maps:
        qkv_attention(tga.tensor(qkv, device=device), H, is_causal=True)
    q, k = (qkv[:, :, i * H * D:(i + 1) * H * D].reshape(B, T, H, D).transpose(0, 2, 1, 3)
            for i in range(2))
    assert_close(maps[0].cpu().numpy(), softmax_oracle(q, k, D ** -0.5, None, True)[:, [2, 1]],
                 TOL["float32"], what=f"qkv_attention weights on {device}")


def test_docs_snippet_runs(tmp_path, monkeypatch):
    """The python block of docs/attention_maps.md runs as written (in a scratch directory)."""
    pytest.importorskip("matplotlib", reason="matplotlib is not installed: plot not tested")
    root = pathlib.Path(__file__).resolve().parents[2]
    text = (root / "docs" / "attention_maps.md").read_text()
    snippet = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    scope = {}
    exec(compile(snippet, "docs/attention_maps.md", "exec"), scope)
    assert list(scope["maps"]) == ["transformer.h.0.attn", "transformer.h.1.attn"]
    assert len(scope["captured"]) == 2 and (tmp_path / "maps.png").exists()
