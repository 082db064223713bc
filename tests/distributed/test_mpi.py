"""tga.distributed and DistributedDataParallel over MPI: 2 ranks on loopback (issue 18).

Each test launches `mpiexec -n 2 python -m mpi4py ranks.py SCENARIOS OUT` (shared memory
transport, one thread per rank) and judges the JSON each rank wrote. Skipped with a reason
where mpi4py or mpiexec is missing (`pip install -e ".[test]"` or ".[mpi]" brings both).
"""
import json
import os
import pathlib
import subprocess
import sys
import time

import pytest

from mpi_env import HERE, MPIEXEC, ROOT, mpi_environ, needs_mpi  # noqa: E402



def launch(scenarios, out, timeout=60, env=None, runner=("-m", "mpi4py")):
    """Run ranks.py under mpiexec -n 2; (CompletedProcess, seconds, [rank 0's, rank 1's])."""
    environ = mpi_environ(**(env or {}))
    cmd = [MPIEXEC, "-n", "2", "--oversubscribe", sys.executable, *runner,
           str(HERE / "ranks.py"), scenarios, str(out)]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, env=environ, capture_output=True, text=True, timeout=timeout)
    seconds = time.monotonic() - t0
    found = []
    for r in range(2):
        path = pathlib.Path(out) / f"rank{r}.json"
        found.append(json.loads(path.read_text()) if path.exists() else None)
    return proc, seconds, found


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("mpi")
    proc, _, found = launch("collectives,ddp,no_sync,unused,stale", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return found


@needs_mpi
def test_collectives_semantics_and_dtypes(two_ranks):
    for rank, found in enumerate(two_ranks):
        c = found["collectives"]
        assert found["world"] == 2 and found["launched"] is True
        assert c["sum_tinygradattn.float32"] == [3.0, 6.0, 9.0]
        assert c["sum_tinygradattn.float64"] == [3.0, 6.0, 9.0]
        assert c["sum_tinygradattn.int64"] == [3, 6, 9]
        assert c["dtype_tinygradattn.int64"] == "tinygradattn.int64"
        assert c["max"] == [3.0, -4.0] and c["min"] == [2.0, -6.0]       # x * 2, x * 3
        assert c["avg"] == [2.5, -5.0] and c["product"] == [6.0, 24.0]
        assert c["non_contiguous"] == [[0.0, 3.0, 6.0], [9.0, 12.0, 15.0]]   # written back
        assert c["broadcast"] == [1.0, 1.0, 1.0]                         # rank 1's
        assert c["async_is_work"] is True
        assert c["all_gather"] == [[0, 0], [1, 10]]
        assert c["objects"] == [{"run": "out/1", "step": 7}, None]
    assert two_ranks[0]["collectives"]["barrier_waited"] > 0.25           # rank 1 slept 0.3 s


@needs_mpi
def test_ddp_parameters_bitwise_identical_across_ranks(two_ranks):
    a, b = (found["ddp"] for found in two_ranks)
    assert a["n_buckets"] > 1                   # several buckets were started and finished
    # overlap: every bucket was started by backward's hooks (the engine hands a leaf's
    # gradient over when its last node has run), before the pass ended
    assert a["started_before_end"] == [a["n_buckets"]] * 4, a["started_before_end"]
    assert a["params"].keys() == b["params"].keys()
    differ = [k for k in a["params"] if a["params"][k] != b["params"][k]]
    assert not differ, f"parameters differ across ranks: {differ}"


@needs_mpi
def test_ddp_two_ranks_follow_the_one_process_trajectory(two_ranks):
    sys.path.insert(0, str(HERE))
    try:
        import ranks
    finally:
        sys.path.remove(str(HERE))
    import tinygradattn as tga
    tga.manual_seed(0)                           # rank 0's weights, which DDP broadcast
    model = ranks.GPT(ranks.GPTConfig(**ranks.CONFIG))
    expected = ranks.train(model, ranks.global_batches())      # batch B in one process
    got = two_ranks[0]["ddp"]["losses"]
    assert got == two_ranks[1]["ddp"]["losses"]
    # float32 rounding: the two half-batch means are averaged instead of one mean of B rows
    assert got == pytest.approx(expected, rel=2e-5, abs=2e-5), (got, expected)


@needs_mpi
def test_no_sync_keeps_gradients_local_then_averages_the_sums(two_ranks):
    a, b = (found["no_sync"] for found in two_ranks)
    assert a["local_after_no_sync"] == [[3.0] * 3]      # x = 1 + 2 on rank 0
    assert b["local_after_no_sync"] == [[5.0] * 3]      # x = 2 + 3 on rank 1
    assert a["synced"] == b["synced"] == [[7.5] * 3]     # ((3 + 3) + (5 + 4)) / 2


@needs_mpi
def test_unused_parameters(two_ranks):
    for found in two_ranks:
        grads = found["unused"]
        assert grads["a.weight"] == [[1.0, 1.0]] and grads["a.bias"] == [1.0]   # both ranks
        assert grads["b.weight"] == [[2.0, 2.0]] and grads["b.bias"] == [2.0]   # (4 + 0) / 2
        assert grads["never.weight"] is None and grads["never.bias"] is None


@needs_mpi
def test_a_gradient_that_grows_after_its_bucket_started_is_reduced_again(two_ranks):
    for found in two_ranks:
        assert found["stale"]["stale"] == [True]
        assert found["stale"]["grad"] == [3.0, 3.0]      # ((1 + 1) + (2 + 2)) / 2


@needs_mpi
def test_a_killed_rank_stops_the_whole_job(tmp_path):
    proc, seconds, found = launch("kill", tmp_path, env={"TGA_DIST_TIMEOUT": "10"})
    assert proc.returncode != 0 and found == [None, None]
    assert seconds < 10 + 8, f"the job took {seconds:.1f} s to stop"


@needs_mpi
def test_a_hung_rank_is_named_and_the_job_aborted_within_the_timeout(tmp_path):
    proc, seconds, found = launch("hang", tmp_path, env={"TGA_DIST_TIMEOUT": "2"})
    assert proc.returncode != 0 and found == [None, None]
    assert "rank 0 of 2: collective #" in proc.stderr, proc.stderr
    assert "suspected dead or hung rank(s): 1\n" in proc.stderr, proc.stderr
    assert seconds < 2 + 8, f"the job took {seconds:.1f} s to stop"


@needs_mpi
def test_an_exception_on_one_rank_ends_the_job_without_python_m_mpi4py(tmp_path):
    proc, seconds, found = launch("raises", tmp_path, env={"TGA_DIST_TIMEOUT": "30"},
                                  runner=())
    assert proc.returncode != 0 and found == [None, None]
    assert "rank 1 raised ValueError" in proc.stderr, proc.stderr
    assert seconds < 15, f"the job took {seconds:.1f} s to stop"


def test_one_process_needs_no_mpi4py_and_answers_as_before():
    code = (
        "import sys, tinygradattn as tga\n"
        "from tinygradattn.nn.parallel import DistributedDataParallel\n"
        "dist = tga.distributed\n"
        "assert dist.is_initialized() is False and dist.is_mpi_launched() is False\n"
        "for f in (dist.get_rank, dist.get_world_size, dist.barrier):\n"
        "    try: f(); raise SystemExit(f.__name__ + ' did not raise')\n"
        "    except RuntimeError as e: assert 'not been initialized' in str(e)\n"
        "try: DistributedDataParallel(tga.nn.Linear(2, 2)); raise SystemExit('DDP')\n"
        "except RuntimeError as e: assert 'not been initialized' in str(e)\n"
        "try: dist.all_reduce(tga.ones(2)); raise SystemExit('all_reduce')\n"
        "except RuntimeError as e: assert 'not been initialized' in str(e)\n"
        "dist.is_available()\n"
        "assert 'mpi4py' not in sys.modules, 'mpi4py imported'\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_init_process_group_refuses_other_backends():
    import tinygradattn as tga
    with pytest.raises(ValueError, match="backend='nccl'"):
        tga.distributed.init_process_group(backend="nccl")
    assert tga.distributed.is_initialized() is False


def test_timeout_from_the_environment(monkeypatch):
    from tinygradattn.backend import mpi
    monkeypatch.delenv("TGA_DIST_TIMEOUT", raising=False)
    assert mpi.default_timeout() == 300.0
    monkeypatch.setenv("TGA_DIST_TIMEOUT", "2.5")
    assert mpi.default_timeout() == 2.5
    monkeypatch.setenv("TGA_DIST_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="TGA_DIST_TIMEOUT='soon'"):
        mpi.default_timeout()
