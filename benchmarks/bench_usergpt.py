"""A GPT written by a user with only the public API (benchmarks/user_gpt.py, one source for
both libraries), as a training step: forward + cross-entropy, backward, clip_grad_norm_(1.0),
AdamW (nanoGPT's two groups), zero_grad(set_to_none=True). Two presets:

- nano: nanoGPT's CPU recipe (4 layers, 4 heads, 128 wide, block 64, batch 12, vocab 65);
- base: nanoGPT's shakespeare_char config (6 layers, 6 heads, 384 wide, block 256, batch 64).

Both libraries start from the same weights (torch builds them; ours loads its state_dict) and
take the same batches; before timing, two steps of both are checked to agree.

    python -m pytest benchmarks/bench_usergpt.py
    python -m pytest benchmarks/bench_usergpt.py -k nano
"""
import math

import numpy as np
import pytest

import tinygradattn as tga

from . import user_gpt
from .common import require, torch

N_BATCHES = 3
ROUNDS = {"nano": None, "base": 3}      # base: ~1-5 s a step, a few pedantic rounds


class UserGPTStep:
    """step() runs one training step of the user's GPT; impl in ("tga", "torch")."""

    def __init__(self, impl, preset, seed=0):
        cfg = user_gpt.PRESETS[preset]
        self.lib = tga if impl == "tga" else torch
        self.lib.manual_seed(seed)
        self.model = user_gpt.build(self.lib, **cfg)
        if impl == "tga" and torch is not None:          # torch's weights, when it is here
            torch.manual_seed(seed)
            ref = user_gpt.build(torch, **cfg)
            self.model.load_state_dict({k: tga.tensor(v.detach().numpy().copy())
                                        for k, v in ref.state_dict().items()})
        self.opt = user_gpt.optimizer(self.lib, self.model)
        B, T, V = cfg["batch_size"], cfg["block_size"], cfg["vocab_size"]
        data = np.random.default_rng(seed).integers(0, V, size=(N_BATCHES, B, T + 1))
        wrap = tga.tensor if impl == "tga" else torch.from_numpy
        self.batches = [(wrap(d[:, :-1].copy()), wrap(d[:, 1:].copy())) for d in data]
        self.model.train()
        self.tokens = B * T
        self.i = 0

    def __call__(self):
        x, y = self.batches[self.i % N_BATCHES]
        self.i += 1
        return user_gpt.train_step(self.lib, self.model, self.opt, x, y)


@pytest.mark.parametrize("impl", ["tga", "torch"])
@pytest.mark.parametrize("preset", ["nano", "base"])
def test_user_gpt_train_step(benchmark, preset, impl):
    require(impl)
    step = UserGPTStep(impl, preset)
    if impl == "tga" and torch is not None:             # same weights, same batches
        twin = UserGPTStep("torch", preset)
        for i in range(2):
            ours, theirs = step(), twin()
            assert abs(ours - theirs) <= 1e-4 * max(1.0, abs(theirs)), \
                f"step {i}: loss {ours} vs torch {theirs}"
        del twin
    cfg = user_gpt.PRESETS[preset]
    benchmark.group = f"user GPT train step {preset}"
    benchmark.extra_info.update(
        impl=impl, tokens=step.tokens, bench="user GPT train step",
        shape=f"{preset} L{cfg['n_layer']} H{cfg['n_head']} C{cfg['n_embd']} "
              f"T{cfg['block_size']} B{cfg['batch_size']}")
    if ROUNDS[preset]:
        loss = benchmark.pedantic(step, rounds=ROUNDS[preset], iterations=1, warmup_rounds=1)
    else:
        loss = benchmark(step)
    assert math.isfinite(loss)
