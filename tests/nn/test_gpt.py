"""GPT (tinygradattn.models.gpt): parity with a PyTorch twin, generation with and without the
key/value cache, errors, parameter count, nanoGPT's initialisation, optimizer groups."""
import math

import numpy as np
import pytest

import tinygradattn as tga
from tinygradattn.models import GPT, GPTConfig
from tinygradattn.models import gpt as gpt_module
from tinygradattn.models.gpt import Block, CausalSelfAttention

from helpers import TOLS, Tol, assert_close
from torch_gpt import torch_gpt              # the PyTorch twin, nanoGPT's parameter names

TORCH_REASON = "parity tests need PyTorch"
SMALL = dict(vocab_size=13, block_size=8, n_layer=2, n_head=2, n_embd=16)
# logits and gradients chain ~20 matmuls and reductions in float32: a few hundred ulps
F32 = Tol(2e-4, 2e-5)
F64 = TOLS["float64"]["composite"]


def small_model(dtype="float32", **overrides):
    cfg = GPTConfig(**{**SMALL, **overrides})
    model = GPT(cfg)
    return model.double() if dtype == "float64" else model


def load_into_torch(torch, ours, theirs):
    state = {k: torch.from_numpy(v.numpy().copy()) for k, v in ours.state_dict().items()}
    theirs.load_state_dict(state, strict=True)
    return theirs.to(state["lm_head.weight"].dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("bias", [True, False])
def test_logits_loss_and_gradients_match_torch(dtype, bias):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    model = small_model(dtype, bias=bias)
    twin = load_into_torch(torch, model, torch_gpt(torch, model.config))
    assert [n for n, _ in model.named_parameters()] == [n for n, _ in twin.named_parameters()]
    rng = np.random.default_rng(0)
    idx = rng.integers(0, SMALL["vocab_size"], size=(3, 7))
    targets = rng.integers(0, SMALL["vocab_size"], size=(3, 7))
    targets[0, 2] = -1                                          # ignored, as in nanoGPT

    logits, loss = model(tga.tensor(idx), tga.tensor(targets))
    loss.backward()
    t_logits, t_loss = twin(torch.from_numpy(idx), torch.from_numpy(targets))
    t_loss.backward()

    tol = F64 if dtype == "float64" else F32
    assert logits.dtype == getattr(tga, dtype)
    assert_close(logits.detach().numpy(), t_logits.detach().numpy(), tol, "logits")
    assert_close(loss.detach().numpy(), t_loss.detach().numpy(), tol, "loss")
    grads = dict(twin.named_parameters())
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert_close(p.grad.numpy(), grads[name].grad.numpy(), tol, f"grad {name}")


def _assert_paths_agree(module, paths, dtype, what, seed):
    """Each path (a callable of x, built on module) on the same x and upstream gradient: the
    same output, input gradient and gradient of every parameter of module."""
    x0 = np.random.default_rng(seed).standard_normal((3, 7, SMALL["n_embd"]))
    dy = np.random.default_rng(seed + 1).standard_normal((3, 7, SMALL["n_embd"]))
    results = []
    for path in paths:
        module.zero_grad()
        x = tga.tensor(x0, dtype=getattr(tga, dtype), requires_grad=True)
        y = path(x)
        y.backward(tga.tensor(dy, dtype=getattr(tga, dtype)))
        results.append([y.detach().numpy(), x.grad.numpy()]
                       + [p.grad.numpy() for _, p in module.named_parameters()])
    tol = F64 if dtype == "float64" else F32
    for i, (a, b) in enumerate(zip(*results)):
        assert_close(a, b, tol, f"{what}, output/grad {i}")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fused_attention_matches_the_split_path(dtype):
    """CausalSelfAttention without cache or dropout runs qkv_attention on the packed c_attn
    output; with a fresh cache it splits q, k, v and calls F.scaled_dot_product_attention.
    Same values, same gradients of the input and every parameter."""
    block = CausalSelfAttention(GPTConfig(**{**SMALL, "n_head": 4}))
    if dtype == "float64":
        block.double()

    def with_cache(x):
        block.clear_cache()
        return block(x, use_cache=True)

    _assert_paths_agree(block, (block, with_cache), dtype, "fused vs split path", seed=4)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_block_adds_residuals_inside_the_projections(dtype):
    """Block(x) = h + mlp(ln_2(h)), h = x + attn(ln_1(x)), with both adds inside the output
    projections' GEMMs: the same values and gradients as the adds written out."""
    block = Block(GPTConfig(**SMALL))
    if dtype == "float64":
        block.double()

    def written_out(x):
        h = x + block.attn(block.ln_1(x))
        return h + block.mlp(block.ln_2(h))

    _assert_paths_agree(block, (block, written_out), dtype, "residual inside vs written out",
                        seed=6)


def _count_calls(monkeypatch, owner, name):
    """A list that gets an entry at every call of owner.name from now on."""
    calls, real = [], getattr(owner, name)
    monkeypatch.setattr(owner, name, lambda *args, **kw: calls.append(1) or real(*args, **kw))
    return calls


def test_fused_path_choice(monkeypatch):
    """qkv_attention in eval and in training without dropout; the split path with a cache or
    with attention dropout while training. The residuals go into c_proj's GEMMs in eval and
    in training without dropout; with dropout active they are added after it."""
    attn = _count_calls(monkeypatch, gpt_module, "qkv_attention")
    residual = _count_calls(monkeypatch, gpt_module.F, "linear_residual")
    L = SMALL["n_layer"]
    idx = tga.randint(0, SMALL["vocab_size"], (2, 5))
    model = small_model(dropout=0.5)
    model.eval()
    model(idx)
    assert (len(attn), len(residual)) == (L, L)
    model.train()
    model(idx)                                          # dropout: split path, adds after it
    assert (len(attn), len(residual)) == (L, L)
    model.eval()
    with tga.no_grad():
        model(idx, use_cache=True)                      # a cache: split path
    model.clear_cache()
    assert (len(attn), len(residual)) == (L, 2 * L)
    model = small_model(dropout=0.0).train()
    model(idx)
    assert (len(attn), len(residual)) == (2 * L, 3 * L)


def test_targets_none_gives_all_positions():
    model = small_model()
    logits, loss = model(tga.zeros(2, 5, dtype=tga.int64))
    assert loss is None and tuple(logits.shape) == (2, 5, SMALL["vocab_size"])


# ---- generation -----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cache_forward_in_chunks_matches_full_forward(dtype):
    model = small_model(dtype).eval()
    idx = tga.randint(0, SMALL["vocab_size"], (2, 8))
    full, _ = model(idx)
    parts = []
    with tga.no_grad():
        for a, b in ((0, 3), (3, 4), (4, 8)):          # a prefill, one token, then a chunk
            logits, _ = model(idx[:, a:b], use_cache=True)
            parts.append(logits)
    model.clear_cache()
    tol = F64 if dtype == "float64" else F32
    assert_close(tga.cat(parts, dim=1).numpy(), full.detach().numpy(), tol, "cached logits")


@pytest.mark.parametrize("top_k", [1, None, 3])
def test_cached_and_uncached_generation_give_the_same_tokens(top_k):
    model = small_model().eval()
    prompt = tga.randint(0, SMALL["vocab_size"], (2, 3))
    n_new = 12                                      # runs past block_size 8: crop + recompute
    tga.manual_seed(123)
    cached = model.generate(prompt, n_new, temperature=0.8, top_k=top_k)
    tga.manual_seed(123)
    plain = model.generate(prompt, n_new, temperature=0.8, top_k=top_k, use_cache=False)
    assert tuple(cached.shape) == (2, 3 + n_new)
    assert cached.tolist() == plain.tolist()
    assert cached[:, :3].tolist() == prompt.tolist()
    assert all(model.transformer["h"][0].attn.kv_cache is None for _ in range(1))


def test_greedy_generation_is_the_argmax_of_the_full_forward():
    model = small_model().eval()
    idx = tga.randint(0, SMALL["vocab_size"], (1, 2))
    out = model.generate(idx, 4, top_k=1)
    for t in range(2, 6):
        logits, _ = model(out[:, :t])
        assert int(out[0, t]) == int(logits[0, -1].argmax())


def test_sampling_follows_the_softmax():
    model = small_model().eval()
    logits = tga.tensor([[2.0, 0.0, -1.0, 1.0]])
    counts = np.zeros(4)
    for _ in range(3000):
        counts[int(model._sample(logits, 1.0, None))] += 1
    p = np.exp([2.0, 0.0, -1.0, 1.0])
    p /= p.sum()
    assert np.abs(counts / 3000 - p).max() < 0.03
    top2 = {int(model._sample(logits, 1.0, 2)) for _ in range(200)}
    assert top2 == {0, 3}


# ---- errors ---------------------------------------------------------------------------------
def test_n_embd_not_divisible_by_n_head():
    with pytest.raises(ValueError, match=r"n_embd \(30\).*n_head \(4\)"):
        GPTConfig(vocab_size=10, block_size=8, n_layer=1, n_head=4, n_embd=30)
    cfg = GPTConfig(**SMALL)
    cfg.n_head = 3
    with pytest.raises(ValueError, match=r"16.*3"):
        GPT(cfg)


def test_sequence_longer_than_block_size():
    model = small_model()
    with pytest.raises(ValueError, match=r"length 9.*block_size 8"):
        model(tga.zeros(1, 9, dtype=tga.int64))
    with pytest.raises(ValueError, match=r"length 10.*block_size 8"):
        model.generate(tga.zeros(1, 10, dtype=tga.int64), 2)
    with tga.no_grad():
        model(tga.zeros(1, 6, dtype=tga.int64), use_cache=True)
        with pytest.raises(ValueError, match=r"6 cached \+ 3 new.*block_size 8"):
            model(tga.zeros(1, 3, dtype=tga.int64), use_cache=True)
    model.clear_cache()


def test_bad_generate_arguments():
    model = small_model()
    idx = tga.zeros(1, 2, dtype=tga.int64)
    with pytest.raises(ValueError, match="temperature"):
        model.generate(idx, 1, temperature=0.0)
    with pytest.raises(ValueError, match="top_k"):
        model.generate(idx, 1, top_k=0)


# ---- parameters and init --------------------------------------------------------------------
def test_parameter_count_like_nanogpt():
    model = small_model()
    V, S, L, C = (SMALL[k] for k in ("vocab_size", "block_size", "n_layer", "n_embd"))
    per_block = 2 * 2 * C + (C * 3 * C + 3 * C) + (C * C + C) + (C * 4 * C + 4 * C) + (4 * C * C + C)
    total = V * C + S * C + L * per_block + 2 * C          # lm_head tied to wte: counted once
    assert model.num_parameters(non_embedding=False) == total
    assert model.num_parameters() == total - S * C
    assert len(list(model.parameters())) == 2 + 12 * L + 2
    assert "lm_head.weight" in model.state_dict()           # tied names are all in state_dict
    assert model.lm_head.weight is model.transformer["wte"].weight


def test_parameter_count_matches_torch_twin():
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    model = small_model(bias=False)
    twin = torch_gpt(torch, model.config)
    n_torch = sum(p.numel() for p in twin.parameters())
    assert model.num_parameters(non_embedding=False) == n_torch
    assert model.num_parameters() == n_torch - twin.transformer.wpe.weight.numel()


def test_nanogpt_initialisation():
    model = GPT(GPTConfig(vocab_size=64, block_size=32, n_layer=3, n_head=4, n_embd=64))
    params = dict(model.named_parameters())
    for name, p in params.items():
        a = p.detach().numpy()
        if name.endswith("c_proj.weight"):
            assert abs(a.std() - 0.02 / math.sqrt(6)) < 0.1 * 0.02 / math.sqrt(6), name
        elif p.ndim == 2:
            assert abs(a.std() - 0.02) < 0.002, name
            assert abs(a.mean()) < 0.002, name
        elif "ln" in name:
            assert np.all(a == (1.0 if name.endswith("weight") else 0.0)), name
        else:
            assert np.all(a == 0.0), name                       # Linear biases start at 0


def test_dropout_only_while_training():
    model = small_model(dropout=0.5)
    idx = tga.randint(0, SMALL["vocab_size"], (2, 6))
    model.train()
    a, _ = model(idx)
    b, _ = model(idx)
    assert not np.allclose(a.detach().numpy(), b.detach().numpy())
    model.eval()
    c, _ = model(idx)
    d, _ = model(idx)
    assert np.array_equal(c.detach().numpy(), d.detach().numpy())


def test_configure_optimizers_groups():
    optim = pytest.importorskip("tinygradattn.optim", reason="tinygradattn.optim is not there")
    if not hasattr(optim, "AdamW"):
        pytest.skip("tinygradattn.optim has no AdamW yet")
    model = small_model()
    opt = model.configure_optimizers(weight_decay=0.1, learning_rate=1e-3, betas=(0.9, 0.99))
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.ndim == 2 for p in decay["params"])
    assert all(p.ndim == 1 for p in no_decay["params"])
    n = len(decay["params"]) + len(no_decay["params"])
    assert n == len(list(model.parameters()))
    assert decay["lr"] == 1e-3 and tuple(decay["betas"]) == (0.9, 0.99)
    idx = tga.randint(0, SMALL["vocab_size"], (2, 6))
    _, loss0 = model(idx, idx)
    for _ in range(5):
        opt.zero_grad()
        _, loss = model(idx, idx)
        loss.backward()
        opt.step()
    _, loss1 = model(idx, idx)
    assert float(loss1) < float(loss0)


# ---- the char_gpt example -----------------------------------------------------------------------
def test_char_gpt_example_short_run(tmp_path):
    import importlib.util
    import json
    import pathlib
    optim = pytest.importorskip("tinygradattn.optim", reason="tinygradattn.optim is not there")
    if not hasattr(optim, "AdamW"):
        pytest.skip("tinygradattn.optim has no AdamW yet")
    path = pathlib.Path(__file__).resolve().parents[2] / "examples" / "char_gpt.py"
    spec = importlib.util.spec_from_file_location("char_gpt", path)
    char_gpt = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(char_gpt)
    # a tiny model so the test stays fast; the schedule and loop are the recipe's own
    char_gpt.RECIPE.update(n_layer=1, n_head=2, n_embd=16, block_size=16, batch_size=4,
                           eval_batches=2)
    data = tmp_path / "text.txt"
    data.write_text("To be, or not to be, that is the question.\n" * 40)
    records = char_gpt.main(["--data", str(data), "--iters", "4", "--eval-interval", "2",
                             "--sample-len", "10", "--out", str(tmp_path / "out")])
    assert [r["iter"] for r in records] == [0, 2, 4]
    assert records[-1]["val_loss"] < records[0]["val_loss"]
    lines = (tmp_path / "out" / "log.jsonl").read_text().splitlines()
    assert [json.loads(line)["iter"] for line in lines] == [0, 2, 4]
    assert len((tmp_path / "out" / "sample.txt").read_text()) == 11
    # the schedule: linear warm-up over 100 steps, cosine to 1e-4 at the last iteration
    assert char_gpt.lr_at(0, 2000) == pytest.approx(1e-5)
    assert char_gpt.lr_at(99, 2000) == pytest.approx(1e-3)
    assert char_gpt.lr_at(2000, 2000) == pytest.approx(1e-4)


def test_training_steps_match_torch():
    """configure_optimizers' AdamW groups + clip_grad_norm_ + a schedule, three steps, float64:
    the same parameters as torch's twin trained the same way."""
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    optim = pytest.importorskip("tinygradattn.optim", reason="tinygradattn.optim is not there")
    if not hasattr(optim, "AdamW"):
        pytest.skip("tinygradattn.optim has no AdamW yet")
    from tinygradattn.nn.utils import clip_grad_norm_
    model = small_model("float64")
    twin = load_into_torch(torch, model, torch_gpt(torch, model.config))
    opt = model.configure_optimizers(0.1, 1e-2, (0.9, 0.99))
    params = list(twin.parameters())
    t_opt = torch.optim.AdamW([{"params": [p for p in params if p.dim() >= 2],
                                "weight_decay": 0.1},
                               {"params": [p for p in params if p.dim() < 2],
                                "weight_decay": 0.0}], lr=1e-2, betas=(0.9, 0.99))
    rng = np.random.default_rng(0)
    for step in range(3):
        idx = rng.integers(0, SMALL["vocab_size"], size=(2, 8))
        lr = 1e-2 * (step + 1) / 3
        for group in opt.param_groups:
            group["lr"] = lr
        for group in t_opt.param_groups:
            group["lr"] = lr
        opt.zero_grad()
        _, loss = model(tga.tensor(idx[:, :-1]), tga.tensor(idx[:, 1:]))
        loss.backward()
        norm = clip_grad_norm_(model.parameters(), 0.5)
        opt.step()
        t_opt.zero_grad()
        _, t_loss = twin(torch.from_numpy(idx[:, :-1]), torch.from_numpy(idx[:, 1:]))
        t_loss.backward()
        t_norm = torch.nn.utils.clip_grad_norm_(twin.parameters(), 0.5)
        t_opt.step()
        assert_close(loss.detach().numpy(), t_loss.detach().numpy(), F64, f"loss {step}")
        assert_close(norm.numpy(), t_norm.numpy(), F64, f"grad norm {step}")
    theirs = dict(twin.named_parameters())
    for name, p in model.named_parameters():
        assert_close(p.detach().numpy(), theirs[name].detach().numpy(), F64, name)
