"""nanoGPT's own model.py, unmodified, as a training step: on tinygradattn (through the
`torch` import hook that `tinygradattn run` uses) and on PyTorch, from the same weights.

The configuration is nanoGPT's README CPU recipe: n_layer=4, n_head=4, n_embd=128,
block_size=64, batch 12, vocab 65 (shakespeare_char), dropout 0, bias False (train.py's
default). One timed step is train.py's: forward (logits + loss), backward,
clip_grad_norm_(1.0), the AdamW of its configure_optimizers (lr 1e-3, betas (0.9, 0.99),
weight decay 0.1), zero_grad(set_to_none=True). Before timing, two steps of both are checked
to agree. Needs ../shared/clients beside the repository (skipped otherwise).

    python -m pytest benchmarks/bench_clients.py
"""
import math
import os

import numpy as np
import pytest

import tinygradattn as tga
from tinygradattn.compat import hook

from .common import require, torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL_PY = os.path.join(os.path.dirname(ROOT), "shared", "clients", "nanoGPT", "model.py")
RECIPE = dict(block_size=64, vocab_size=65, n_layer=4, n_head=4, n_embd=128, dropout=0.0,
              bias=False)
BATCH = 12
N_BATCHES = 4


def _load(ours):
    """nanoGPT's model.py as a module, importing torch (ours: tinygradattn)."""
    return hook.load_module(MODEL_PY, "nanogpt_model_" + ("tga" if ours else "torch"), ours)


class NanoGPTStep:
    """One train.py step of nanoGPT's GPT; impl "tga" (the same weights as torch's) or
    "torch"."""

    def __init__(self, impl, seed=0):
        torch.manual_seed(seed)
        ref = _load(False).GPT(_load(False).GPTConfig(**RECIPE))      # the weights, both sides
        data = np.random.default_rng(seed).integers(0, RECIPE["vocab_size"],
                                                   size=(N_BATCHES, BATCH, 65))
        if impl == "torch":
            self.model = ref
            lib, wrap = torch, torch.from_numpy
        else:
            m = _load(True)
            self.model = m.GPT(m.GPTConfig(**RECIPE))
            self.model.load_state_dict({k: tga.tensor(v.detach().numpy().copy())
                                        for k, v in ref.state_dict().items()})
            lib, wrap = tga, tga.tensor
        self.opt = self.model.configure_optimizers(0.1, 1e-3, (0.9, 0.99), "cpu")
        self.clip = lib.nn.utils.clip_grad_norm_
        self.batches = [(wrap(d[:, :-1].copy()), wrap(d[:, 1:].copy())) for d in data]
        self.params = list(self.model.parameters())
        self.model.train()
        self.i = 0

    def __call__(self):
        x, y = self.batches[self.i % N_BATCHES]
        self.i += 1
        _, loss = self.model(x, y)
        loss.backward()
        self.clip(self.params, 1.0)
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        return loss.item()


@pytest.mark.skipif(not os.path.isfile(MODEL_PY), reason="../shared/clients/nanoGPT is absent")
@pytest.mark.parametrize("impl", ["tga", "torch"])
def test_nanogpt_model_train_step(benchmark, impl):
    require("torch")                          # torch makes the shared initial weights
    step = NanoGPTStep(impl)
    if impl == "tga":
        twin = NanoGPTStep("torch")
        for i in range(2):
            ours, theirs = step(), twin()
            assert abs(ours - theirs) <= 1e-4 * max(1.0, abs(theirs)), \
                f"step {i}: loss {ours} vs torch {theirs}"
    benchmark.group = "nanoGPT model.py train step"
    benchmark.extra_info.update(
        impl=impl, tokens=BATCH * RECIPE["block_size"], bench="nanoGPT model.py train step",
        shape=f"L4 H4 C128 T64 B{BATCH} V65")
    assert math.isfinite(benchmark(step))
