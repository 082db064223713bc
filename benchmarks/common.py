"""Helpers shared by the bench_*.py suites: operands for every implementation from the same
numpy data, callables per implementation, and the check that results agree.

Thread counts: tinygradattn uses tga.get_num_threads(); conftest.py pins torch to the same
number. numpy's OpenBLAS uses its own default (every core; the same number on this machine).
"""
import numpy as np
import pytest

import tinygradattn as tga

try:
    import torch
except ImportError:                       # benchmarks of ours still run; torch cases skip
    torch = None

TORCH_REASON = "torch is not installed: pip install torch==2.13.0 to compare against PyTorch"


def require(impl):
    """Skip the current case if `impl` cannot run here."""
    if impl == "torch" and torch is None:
        pytest.skip(TORCH_REASON)


def rng_array(shape, seed=0, scale=1.0):
    """float32 standard normal data (C-contiguous), the same for every implementation."""
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def convert(impl, array, requires_grad=False):
    """A numpy array as the implementation's tensor (sharing memory where possible)."""
    if impl == "tga":
        t = tga.from_numpy(array.copy())
        return t.requires_grad_() if requires_grad else t
    if impl == "torch":
        return torch.from_numpy(array.copy()).requires_grad_(requires_grad)
    if impl == "numpy":
        return array.copy()
    raise ValueError(impl)


def to_numpy(x):
    if isinstance(x, np.ndarray):
        return x
    if torch is not None and isinstance(x, torch.Tensor):
        return x.detach().numpy()
    return x.numpy()


def assert_close(got, want, rtol=1e-4, what=""):
    """Max abs difference relative to the result's scale (float32 sums K products)."""
    got = np.asarray(to_numpy(got), dtype=np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape} vs {want.shape}"
    scale = max(1.0, float(np.abs(want).max()))
    err = float(np.abs(got - want).max())
    assert err <= rtol * scale, f"{what}: max abs diff {err:.3g} > {rtol:g} * {scale:.3g}"
