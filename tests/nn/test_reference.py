"""nn/reference.py: every composed twin agrees with the fused op it documents.

Values and gradients of every input, float32 and float64, on odd shapes (rows and widths that
are 1, primes, or past a vector width), with rows far from uniform. A meta-test fails when a
twin is added to reference.py without a row here.
"""
import inspect

import numpy as np
import pytest

import tinygradattn as tga
from helpers import TOLS, assert_close
from tinygradattn.nn import functional as F
from tinygradattn.nn import reference
from tinygradattn.nn.attention import qkv_attention


_TARGET = [0, 3, 1, 12, 5, 1, 7]                 # class 1 is ignore_index: two rows ignored


def _cross_entropy(fn):
    return lambda x: fn(x, tga.tensor(_TARGET), ignore_index=1, label_smoothing=0.1)


# name -> (fused op, its twin, input shapes)
CASES = {
    "gelu": (F.gelu, reference.gelu, [(3, 17)]),
    "layer_norm": (lambda x, w, b: F.layer_norm(x, (37,), w, b),
                   lambda x, w, b: reference.layer_norm(x, (37,), w, b),
                   [(5, 1, 37), (37,), (37,)]),
    "cross_entropy": (_cross_entropy(F.cross_entropy), _cross_entropy(reference.cross_entropy),
                      [(7, 13)]),
    "qkv_attention": (lambda qkv: qkv_attention(qkv, 2, is_causal=True),
                      lambda qkv: reference.qkv_attention(qkv, 2, is_causal=True),
                      [(2, 5, 3 * 2 * 3)]),
}


def _run(fn, arrays, dtype, seed):
    inputs = [tga.tensor(a, dtype=dtype, requires_grad=True) for a in arrays]
    out = fn(*inputs)
    dout = np.random.default_rng(seed).standard_normal(out.shape)
    out.backward(tga.tensor(dout, dtype=dtype))
    return out.detach().numpy(), [x.grad.numpy() for x in inputs]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_twin_matches_fused(name, dtype):
    rng = np.random.default_rng(7)
    fused, twin, shapes = CASES[name]
    arrays = [rng.standard_normal(s) * 3.0 for s in shapes]
    arrays[0].flat[::5] += 80.0                          # outliers: rows far from uniform
    want_y, want_grads = _run(twin, arrays, getattr(tga, dtype), 1)
    got_y, got_grads = _run(fused, arrays, getattr(tga, dtype), 1)
    tol = TOLS[dtype]["composite"]
    assert_close(got_y, want_y, tol, f"{name} forward", dtype)
    for i, (g, w) in enumerate(zip(got_grads, want_grads)):
        assert_close(g, w, tol, f"{name} d(input {i})", dtype)


def test_every_twin_is_checked():
    twins = {n for n, f in inspect.getmembers(reference, inspect.isfunction)
             if f.__module__ == reference.__name__ and not n.startswith("_")}
    assert twins == set(CASES), f"reference.py twins without a case here: {twins - set(CASES)}"
