"""float32 GEMM: tinygradattn (our packed, register-tiled kernel) vs torch vs numpy (OpenBLAS).

Square sizes N = 128 .. 2048, then the shapes a small transformer multiplies (d_model 128,
4 heads of 32, 768 tokens = batch 12 x context 64, vocabulary 65): QKV projection, MLP
up- and down-projection, the language-model head, and batched attention scores. numpy runs
with whatever OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE the environment has (the report's
--numpy-alt adds a column under the other setting).
"""
import functools

import numpy as np
import pytest

from .common import assert_close, convert, require, rng_array

CASES = [
    ((128, 128), (128, 128)),
    ((256, 256), (256, 256)),
    ((512, 512), (512, 512)),
    ((1024, 1024), (1024, 1024)),
    ((2048, 2048), (2048, 2048)),
    ((768, 128), (128, 384)),          # x @ W_qkv: (tokens, d_model) @ (d_model, 3 d_model)
    ((768, 128), (128, 512)),          # MLP up: (tokens, d_model) @ (d_model, 4 d_model)
    ((768, 512), (512, 128)),          # MLP down: (tokens, 4 d_model) @ (4 d_model, d_model)
    ((768, 128), (128, 65)),           # LM head: (tokens, d_model) @ (d_model, vocab)
    ((48, 64, 32), (48, 32, 64)),      # q @ k^T: (batch*heads, T, D) @ (batch*heads, D, T)
]
IMPLS = ["tga", "torch", "numpy"]


def case_id(case):
    a, b = case
    return "x".join(map(str, a)) + "@" + "x".join(map(str, b))


def flops(a_shape, b_shape):
    batch = int(np.prod(a_shape[:-2])) if len(a_shape) > 2 else 1
    M, K = a_shape[-2:]
    N = b_shape[-1]
    return 2 * batch * M * N * K


@functools.lru_cache(maxsize=None)
def reference(case):
    a_shape, b_shape = case
    a_np, b_np = rng_array(a_shape, seed=1), rng_array(b_shape, seed=2)
    return a_np, b_np, np.matmul(a_np.astype(np.float64), b_np.astype(np.float64))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_matmul(benchmark, impl, case):
    require(impl)
    a_shape, b_shape = case
    a_np, b_np, want = reference(case)
    a, b = convert(impl, a_np), convert(impl, b_np)
    benchmark.group = f"matmul {case_id(case)}"
    benchmark.extra_info.update(impl=impl, flops=flops(a_shape, b_shape), bench="matmul",
                                shape=case_id(case))
    out = benchmark(lambda: a @ b)
    assert_close(out, want, rtol=1e-4 * max(1.0, a_shape[-1] / 256) ** 0.5,
                 what=f"{impl} {case_id(case)}")
