"""Benchmark setup: torch pinned to our thread count, one-time warm-up, the environment in the
header. Torch's first backward() starts its autograd engine (~0.4 s here); without the
warm-up below, short runs (--quick) time that start-up instead of the op.
"""
import os

import numpy as np

import tinygradattn as tga

from .common import torch


def _warm_up():
    for _ in range(3):
        x = tga.randn(64, 64, requires_grad=True)
        (x @ x).softmax(-1).sum().backward()
        if torch is not None:
            y = torch.randn(64, 64, requires_grad=True)
            (y @ y).softmax(-1).sum().backward()


def pytest_configure(config):
    if torch is not None:
        torch.set_num_threads(tga.get_num_threads())
    _warm_up()


def pytest_report_header(config):
    torch_part = (f"torch {torch.__version__} ({torch.get_num_threads()} threads)"
                  if torch is not None else "torch not installed (its cases skip)")
    blas = {k: os.environ.get(k, "unset") for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    return [f"tinygradattn {tga.__version__} {tga.backend_info()}; {torch_part}; "
            f"numpy {np.__version__} {blas}"]
