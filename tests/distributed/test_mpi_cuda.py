"""Collectives and DistributedDataParallel on cuda tensors over MPI, host-staged (issue 18):
2 ranks under `mpiexec -n 2 python -m mpi4py ranks_cuda.py OUT`, in numba's CUDA simulator
(NUMBA_ENABLE_CUDASIM=1 in the ranks' environment, as tests/conftest.py sets it here; with
TGA_TEST_REAL_GPU=1 the ranks run on the GPU, sharing cuda:0). One launch, judged by several
tests. Skipped with a reason without mpi4py / mpiexec / numba."""
import importlib.util
import json
import os
import subprocess
import sys

import pytest

from mpi_env import HERE, MPIEXEC, mpi_environ, needs_mpi  # noqa: E402

pytestmark = pytest.mark.skipif(importlib.util.find_spec("numba") is None,
                                reason="needs numba (the cuda backend): pip install -e '.[cuda]'")


def _ranks_module():
    sys.path.insert(0, str(HERE))
    try:
        import ranks_cuda
    finally:
        sys.path.remove(str(HERE))
    return ranks_cuda


def launch(script, out, timeout=120):
    """`mpiexec -n 2 python -m mpi4py SCRIPT OUT` in the simulator; the CompletedProcess."""
    env = mpi_environ()
    if os.environ.get("TGA_TEST_REAL_GPU") != "1":
        env["NUMBA_ENABLE_CUDASIM"] = "1"      # read when numba is imported, in each rank
    cmd = [MPIEXEC, "-n", "2", "--oversubscribe", sys.executable, "-m", "mpi4py",
           str(HERE / script), str(out)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("mpicuda")
    proc = launch("ranks_cuda.py", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]


@needs_mpi
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


@needs_mpi
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


@needs_mpi
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


# ---- the CLI: `mpiexec -n N tinygradattn train --device cuda`, one GPU per rank -------------
def test_local_rank_from_the_launchers_environment(monkeypatch):
    from tinygradattn import cli
    for name in ("OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "PMIX_LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert cli._local_rank(5) == 5                      # no launcher variable: the world rank
    monkeypatch.setenv("MPI_LOCALRANKID", "2")          # MPICH / Hydra
    assert cli._local_rank(5) == 2
    monkeypatch.setenv("OMPI_COMM_WORLD_LOCAL_RANK", "1")   # Open MPI
    assert cli._local_rank(5) == 1


def _fake_gpus(monkeypatch, count, supported):
    """tga.cuda with `count` GPUs of which set_device accepts `supported`; the calls made."""
    import tinygradattn as tga
    calls = []

    def set_device(index):
        calls.append(index)
        if index not in supported:
            raise ValueError(f"set_device({index!r}): tinygradattn drives one GPU, cuda:0")
    monkeypatch.setattr(tga.cuda, "device_count", lambda: count)
    monkeypatch.setattr(tga.cuda, "set_device", set_device)
    monkeypatch.setenv("OMPI_COMM_WORLD_LOCAL_RANK", "3")
    return calls


def test_each_rank_selects_local_rank_modulo_device_count(monkeypatch, capsys):
    from tinygradattn import cli
    calls = _fake_gpus(monkeypatch, 2, supported=(0, 1))
    cli._select_gpu(3)
    assert calls == [1] and capsys.readouterr().err == ""          # 3 % 2
    calls = _fake_gpus(monkeypatch, 1, supported=(0,))              # the simulator: one GPU
    cli._select_gpu(3)
    assert calls == [0] and capsys.readouterr().err == ""


def test_a_gpu_tinygradattn_cannot_drive_is_shared_cuda0_and_said(monkeypatch, capsys):
    from tinygradattn import cli
    calls = _fake_gpus(monkeypatch, 4, supported=(0,))              # today's tga.cuda
    cli._select_gpu(3)
    assert calls == [3, 0]
    err = capsys.readouterr().err
    assert "rank 3" in err and "cuda:0" in err and "CUDA_VISIBLE_DEVICES" in err


def test_the_real_set_device_accepts_what_the_simulator_selects():
    import tinygradattn as tga
    from tinygradattn import cli
    assert tga.cuda.device_count() >= 1
    cli._select_gpu(0)                                  # no error: cuda:0


@needs_mpi
@pytest.mark.skipif(os.environ.get("TGA_TEST_SLOW") != "1",
                    reason="~70 s in the CUDA simulator on 2 cores: TGA_TEST_SLOW=1 runs it")
def test_cli_trains_on_cuda_under_mpiexec(tmp_path):
    """`mpiexec -n 2 tinygradattn train --device cuda` (cli_cuda.py: the reverse task, 2 steps,
    a cut held-out set) runs to the end: both ranks on cuda, rank 0 writes the metrics."""
    proc = launch("cli_cuda.py", tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "(2 ranks of 1)" in proc.stdout and "on cuda" in proc.stdout, proc.stdout
    lines = [json.loads(line) for line in (tmp_path / "reverse" / "metrics.jsonl").open()]
    steps = [r for r in lines if "loss" in r]
    assert [r["step"] for r in steps] == [1, 2] and steps[0]["world_size"] == 2
