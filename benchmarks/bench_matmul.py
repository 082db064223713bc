"""float32 GEMM: tinygradattn (our packed, register-tiled kernel) vs torch vs numpy (OpenBLAS).

Square sizes, then the shapes a small transformer multiplies (d_model 128, 4 heads of 32,
768 tokens): QKV projection, MLP down-projection, and batched attention scores.
"""
import numpy as np
import pytest

from .common import assert_close, convert, require, rng_array

CASES = [
    ((128, 128), (128, 128)),
    ((256, 256), (256, 256)),
    ((512, 512), (512, 512)),
    ((1024, 1024), (1024, 1024)),
    ((768, 128), (128, 384)),          # x @ W_qkv: (tokens, d_model) @ (d_model, 3 d_model)
    ((768, 512), (512, 128)),          # MLP down: (tokens, 4 d_model) @ (4 d_model, d_model)
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


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_matmul(benchmark, impl, case):
    require(impl)
    a_shape, b_shape = case
    a_np, b_np = rng_array(a_shape, seed=1), rng_array(b_shape, seed=2)
    a, b = convert(impl, a_np), convert(impl, b_np)
    benchmark.group = f"matmul {case_id(case)}"
    benchmark.extra_info.update(impl=impl, flops=flops(a_shape, b_shape))
    out = benchmark(lambda: a @ b)
    want = np.matmul(a_np.astype(np.float64), b_np.astype(np.float64))
    assert_close(out, want, rtol=1e-4 * max(1.0, a_shape[-1] / 256) ** 0.5,
                 what=f"{impl} {case_id(case)}")
