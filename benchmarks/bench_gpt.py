"""A whole GPT training step, ours vs a PyTorch twin of the same model with the same weights.

Model: tinygradattn.models.GPT with n_layer=4, n_head=4, n_embd=128, block_size=64, vocab 65,
no dropout; batch 12 x 64 tokens. One timed step = forward (logits + cross-entropy), backward,
clip_grad_norm_(1.0), AdamW step (nanoGPT's two parameter groups), zero_grad(set_to_none).
The torch twin (tests/torch_gpt.py) gets our initial weights through numpy and torch's
foreach AdamW (its fastest CPU AdamW for many small tensors). Before timing, the first two
steps of both are checked against each other (losses and one parameter after the updates).
Reported also as tokens/s (extra_info "tokens": tokens per step).

    python -m pytest benchmarks/bench_gpt.py
"""
import math
import types

import numpy as np
import pytest

import tinygradattn as tga
from tests.torch_gpt import BATCH_SIZE, BENCH_CONFIG, BETAS, CLIP, LR, WEIGHT_DECAY, torch_adamw, \
    torch_gpt

from .common import assert_close, require, torch

N_BATCHES = 4


def batches(seed=0):
    """N_BATCHES (x, y) int64 pairs of (BATCH_SIZE, block_size) token ids."""
    T, V = BENCH_CONFIG["block_size"], BENCH_CONFIG["vocab_size"]
    data = np.random.default_rng(seed).integers(0, V, size=(N_BATCHES, BATCH_SIZE, T + 1))
    return [(d[:, :-1].copy(), d[:, 1:].copy()) for d in data]


class TrainStep:
    """step() runs one training step and returns the loss; impl in ("tga", "torch")."""

    def __init__(self, impl, seed=0):
        from tinygradattn.models import GPT, GPTConfig
        self.impl = impl
        tga.manual_seed(seed)
        model = GPT(GPTConfig(**BENCH_CONFIG))
        data = batches(seed)
        if impl == "tga":
            self.model = model
            self.opt = model.configure_optimizers(WEIGHT_DECAY, LR, betas=BETAS)
            self.clip = tga.nn.utils.clip_grad_norm_
            self.batches = [(tga.tensor(x), tga.tensor(y)) for x, y in data]
        else:
            twin = torch_gpt(torch, types.SimpleNamespace(**BENCH_CONFIG))
            state = {k: torch.from_numpy(v.numpy().copy())
                     for k, v in model.state_dict().items()}
            twin.load_state_dict(state, strict=True)
            self.model = twin
            self.opt = torch_adamw(torch, twin)
            self.clip = torch.nn.utils.clip_grad_norm_
            self.batches = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in data]
        self.params = list(self.model.parameters())
        self.model.train()
        self.tokens = BATCH_SIZE * BENCH_CONFIG["block_size"]
        self.i = 0

    def __call__(self):
        x, y = self.batches[self.i % len(self.batches)]
        self.i += 1
        _, loss = self.model(x, y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.clip(self.params, CLIP)
        self.opt.step()
        return float(loss.detach())

    def param(self, name):
        return dict(self.model.named_parameters())[name].detach().numpy()


@pytest.mark.parametrize("impl", ["tga", "torch"])
def test_gpt_train_step(benchmark, impl):
    require(impl)
    step = TrainStep(impl)
    if impl == "tga" and torch is not None:             # same model, same steps: same numbers
        twin = TrainStep("torch")
        for i in range(2):
            ours, theirs = step(), twin()
            assert abs(ours - theirs) <= 1e-4 * max(1.0, abs(theirs)), \
                f"step {i}: loss {ours} vs torch {theirs}"
        name = "transformer.h.0.attn.c_attn.weight"
        assert_close(step.param(name), twin.param(name).astype(np.float64), rtol=1e-4,
                     what=f"{name} after 2 steps")
    else:
        assert math.isfinite(step())
    cfg = BENCH_CONFIG
    benchmark.group = "GPT train step"
    benchmark.extra_info.update(
        impl=impl, tokens=step.tokens, bench="GPT train step",
        shape=f"L{cfg['n_layer']} H{cfg['n_head']} C{cfg['n_embd']} T{cfg['block_size']} "
              f"B{BATCH_SIZE} V{cfg['vocab_size']}")
    loss = benchmark(step)
    assert math.isfinite(loss)
