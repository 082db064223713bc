"""`mpiexec -n 2 tinygradattn train`: data-parallel training through the CLI (issue 18).

Each task is trained three ways with the same tiny configuration and global batch: one
process (the reference), two ranks under mpiexec, and the two-rank run resumed in one
process from its step-3 checkpoint. The two-rank and resumed runs must follow the reference's
loss trajectory to float32 rounding; only rank 0 prints and writes. Skipped with a reason
where mpi4py or mpiexec is missing.
"""
import json
import random
import shutil
import subprocess
import sys

import pytest

from mpi_env import MPIEXEC, mpi_environ, needs_mpi  # noqa: E402

STEPS = 6


ENV = mpi_environ()
for _name in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"):     # the reference runs alone
    ENV.pop(_name, None)


def train(args, ranks=1, timeout=90):
    """`tinygradattn train ARGS` in one process or under mpiexec -n ranks."""
    cmd = [sys.executable, "-m", "tinygradattn", "train", *args]
    if ranks > 1:
        cmd = [MPIEXEC, "-n", str(ranks), "--oversubscribe", *cmd]
    return subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=timeout)


def tiny(task, tmp, batch=8):
    """Arguments of a tiny run of task: 6 steps, a checkpoint at step 3, a line per step."""
    args = ["--task", task, "--n-layer", "1", "--n-head", "2", "--d-model", "32",
            "--batch-size", str(batch), "--steps", str(STEPS), "--warmup", "2",
            "--log-interval", "1", "--eval-interval", "100", "--ckpt-interval", "3",
            "--no-progress", "--name", task]
    if task == "charlm":
        text = tmp / "text.txt"
        if not text.exists():
            rng = random.Random(0)
            words = ["the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran"]
            text.write_text(" ".join(rng.choice(words) for _ in range(1500)))
        args += ["--data", str(text)]
    return args


def records(run):
    with open(run / "metrics.jsonl") as f:
        return [json.loads(line) for line in f]


def losses(run):
    return [(r["step"], r["loss"]) for r in records(run) if "loss" in r]


@pytest.fixture(scope="module", params=["charlm", "numwords"])
def runs(request, tmp_path_factory):
    """{one, two, resumed: (run dir, CompletedProcess)} of one task."""
    task = request.param
    tmp = tmp_path_factory.mktemp(f"train_{task}")
    args = tiny(task, tmp)
    found = {}
    for key, ranks in (("one", 1), ("two", 2)):
        proc = train(args + ["--out", str(tmp / key)], ranks)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        found[key] = (tmp / key / task, proc)
    resumed = tmp / "resumed"
    shutil.copytree(tmp / "two", resumed)
    last = sorted((resumed / task / "ckpt").glob("step_*6.*"))
    assert last, list((resumed / task / "ckpt").iterdir())
    for path in last:
        path.unlink()                              # resume from the step-3 checkpoint
    proc = train(args + ["--out", str(resumed), "--resume"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "at step 3" in proc.stdout, proc.stdout
    found["resumed"] = (resumed / task, proc)
    return found


def _close(got, want):
    assert [s for s, _ in got] == [s for s, _ in want] == list(range(1, STEPS + 1))
    # float32 rounding: the ranks' partial sums are added in another order
    assert [v for _, v in got] == pytest.approx([v for _, v in want], rel=2e-6, abs=1e-6), \
        (got, want)


@needs_mpi
def test_two_ranks_follow_the_one_process_trajectory(runs):
    one, two = runs["one"][0], runs["two"][0]
    _close(losses(two), losses(one))
    evals = [[r for r in records(run) if "val_loss" in r] for run in (one, two)]
    assert len(evals[0]) == len(evals[1]) == 1
    assert evals[1][0]["val_loss"] == pytest.approx(evals[0][0]["val_loss"], rel=1e-5)
    if "exact_match" in evals[0][0]:
        assert evals[1][0]["exact_match"] == evals[0][0]["exact_match"]
    lines = [r for r in records(two) if "loss" in r]
    assert {(r["world_size"], r["global_batch"]) for r in lines} == {(2, 8)}
    assert {(r["world_size"], r["global_batch"]) for r in records(one) if "loss" in r} == {(1, 8)}


@needs_mpi
def test_only_rank_0_prints_and_writes(runs):
    one, two = runs["one"], runs["two"]
    out = two[1].stdout
    assert out.count("training ") == 1 and out.count("final: task") == 1, out
    assert "(2 ranks of 4)" in out, out
    steps = [r["step"] for r in records(two[0])]
    assert steps == [r["step"] for r in records(one[0])]          # no line written twice
    names = sorted(p.relative_to(two[0]).as_posix() for p in two[0].rglob("*"))
    assert names == sorted(p.relative_to(one[0]).as_posix() for p in one[0].rglob("*"))
    # the ranks checked at the end that their weights are bitwise identical (else exit != 0)


@needs_mpi
def test_a_two_rank_checkpoint_resumes_in_one_process(runs):
    resumed, one = runs["resumed"][0], runs["one"][0]
    got = losses(resumed)
    _close(got, losses(one))
    assert [r.get("world_size") for r in records(resumed) if "loss" in r] == [2] * 3 + [1] * 3


@needs_mpi
def test_a_batch_that_does_not_split_evenly_is_one_line_and_exit_2(tmp_path):
    proc = train(tiny("numwords", tmp_path, batch=7) + ["--out", str(tmp_path)], ranks=2)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error" in line]
    assert errors == ["tinygradattn train: error: --batch-size 7: the global batch must split "
                      "evenly over the 2 ranks (a multiple of 2)"], proc.stderr
    assert not (tmp_path / "numwords").exists()


def test_one_process_training_imports_no_mpi4py(tmp_path):
    code = ("import sys\n"
            "from tinygradattn.cli import main\n"
            f"rc = main(['train', *{tiny('charlm', tmp_path)!r}, '--steps', '2', "
            f"'--out', {str(tmp_path)!r}])\n"
            "assert rc == 0, rc\n"
            "assert 'mpi4py' not in sys.modules, 'mpi4py imported'\n")
    proc = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@needs_mpi
def test_an_error_only_rank_0_finds_stops_every_rank(runs, tmp_path):
    """The run directory is rank 0's decision: its refusal (a taken --name) must reach rank 1,
    which would otherwise wait for the directory until the collective timeout."""
    run = runs["two"][0]
    task = run.name
    args = tiny(task, tmp_path) + ["--out", str(run.parent)]
    proc = train(args, ranks=2, timeout=40)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error" in line]
    assert errors == [f"tinygradattn train: error: {run} already holds a run: pass --resume "
                      f"to continue it, or another --name"], proc.stderr
