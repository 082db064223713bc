"""One AdamW step over ~1M float32 parameters: our fused kernel vs torch's AdamW.

Two layouts: "gpt-1M" (the 65 tensors of a 5-layer, 128-wide GPT with a 65-token vocab:
embeddings, qkv / proj / MLP weights and biases, layer norms) and "flat-1M" (4 tensors of
256K). Columns: "torch" is torch.optim.AdamW with its defaults (on the CPU that is the
single-tensor for-loop: foreach and fused are off by default there); "torch-foreach" and
"torch-fused" are its foreach=True and fused=True implementations. Gradients stay fixed;
each timed call is one optimizer.step(). Before timing, one step from the same start is
checked against a float64 numpy AdamW step.
"""
import numpy as np
import pytest

import tinygradattn as tga

from .common import assert_close, require, rng_array, torch

N_EMBD, N_LAYER, VOCAB, BLOCK = 128, 5, 65, 256
LR, BETAS, EPS, WD = 1e-3, (0.9, 0.999), 1e-8, 0.1


def gpt_shapes():
    c = N_EMBD
    layer = [(c,), (c,), (3 * c, c), (3 * c,), (c, c), (c,), (c,), (c,), (4 * c, c), (4 * c,),
             (c, 4 * c), (c,)]
    return [(VOCAB, c), (BLOCK, c)] + layer * N_LAYER + [(c,), (c,), (VOCAB, c)]


LAYOUTS = {"gpt-1M": gpt_shapes(), "flat-1M": [(512, 512)] * 4}
IMPLS = ["tga", "torch", "torch-foreach", "torch-fused"]


def make_optimizer(impl, params_np, grads_np):
    """(optimizer, params) for an implementation, from the same numpy data."""
    if impl == "tga":
        params = [tga.from_numpy(p.copy()).requires_grad_() for p in params_np]
        for p, g in zip(params, grads_np):
            p.grad = tga.from_numpy(g.copy())
        return tga.optim.AdamW(params, lr=LR, betas=BETAS, eps=EPS, weight_decay=WD), params
    params = [torch.from_numpy(p.copy()).requires_grad_() for p in params_np]
    for p, g in zip(params, grads_np):
        p.grad = torch.from_numpy(g.copy())
    kw = {"torch": {}, "torch-foreach": {"foreach": True}, "torch-fused": {"fused": True}}[impl]
    return torch.optim.AdamW(params, lr=LR, betas=BETAS, eps=EPS, weight_decay=WD, **kw), params


def reference_first_step(p, g):
    """AdamW's first step in float64: m = (1-b1) g, v = (1-b2) g^2, bias-corrected."""
    p, g = p.astype(np.float64), g.astype(np.float64)
    m, v = (1 - BETAS[0]) * g, (1 - BETAS[1]) * g * g
    m_hat, v_hat = m / (1 - BETAS[0]), v / (1 - BETAS[1])
    return p * (1 - LR * WD) - LR * m_hat / (np.sqrt(v_hat) + EPS)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_adamw_step(benchmark, impl, layout):
    require("torch" if impl.startswith("torch") else impl)
    shapes = LAYOUTS[layout]
    params_np = [rng_array(s, seed=i, scale=0.02) for i, s in enumerate(shapes)]
    grads_np = [rng_array(s, seed=1000 + i, scale=1e-3) for i, s in enumerate(shapes)]
    n_params = sum(p.size for p in params_np)

    opt, params = make_optimizer(impl, params_np, grads_np)
    opt.step()                                       # checked before it is timed
    for p, p0, g in zip(params, params_np, grads_np):
        assert_close(p.detach(), reference_first_step(p0, g), rtol=1e-5, what=f"{impl} AdamW")

    benchmark.group = f"AdamW step {layout} ({n_params / 1e6:.2f}M params, {len(shapes)} tensors)"
    benchmark.extra_info.update(impl=impl, n_params=n_params, bench="AdamW step",
                                shape=f"{layout}: {n_params / 1e6:.2f}M in {len(shapes)} tensors")
    benchmark(opt.step)
