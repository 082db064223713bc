"""The GPT training step of bench_gpt.py at two git revisions, in alternating processes.

    python -m benchmarks.ab_commits REV_A REV_B [--rounds 8] [--steps 25] [--threads 1]

Each revision is checked out into a temporary git worktree that gets this checkout's built
extensions (tinygradattn/*.so), so the two differ only in their Python code: use it for
changes above the kernels (the autograd engine, Tensor, ops). Round after round, one process
per revision builds `TrainStep("tga")`, warms up 3 steps and times --steps steps; alternating
spreads the machine's load over both. Prints the minimum, quartile and median step time of
each and the ratios B / A (> 1: B is slower).
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHILD = r"""
import json, sys, time
sys.path.insert(0, ".")
from benchmarks.bench_gpt import TrainStep
step = TrainStep("tga")
for _ in range(3):
    step()
times = []
for _ in range(int(sys.argv[1])):
    t0 = time.perf_counter()
    step()
    times.append(time.perf_counter() - t0)
print(json.dumps(times))
"""


def _checkout(rev, where):
    """A detached worktree of rev at where, with this checkout's compiled extensions."""
    subprocess.run(["git", "worktree", "add", "-q", "--detach", where, rev], cwd=ROOT,
                   check=True)
    package = os.path.join(ROOT, "tinygradattn")
    for name in os.listdir(package):
        if name.endswith(".so"):
            shutil.copy2(os.path.join(package, name), os.path.join(where, "tinygradattn"))


def _times(where, steps, threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    out = subprocess.run([sys.executable, "-c", CHILD, str(steps)], cwd=where, env=env,
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _summary(times):
    times = sorted(times)
    return times[0], times[len(times) // 4], statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rev_a")
    parser.add_argument("rev_b")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    tmp = tempfile.mkdtemp(prefix="tga-ab-")
    trees = {rev: os.path.join(tmp, f"rev{i}") for i, rev in enumerate((args.rev_a, args.rev_b))}
    times = {rev: [] for rev in trees}
    try:
        for rev, where in trees.items():
            _checkout(rev, where)
        for _ in range(args.rounds):
            for rev, where in trees.items():
                times[rev] += _times(where, args.steps, args.threads)
    finally:
        for where in trees.values():
            subprocess.run(["git", "worktree", "remove", "--force", where], cwd=ROOT)
        shutil.rmtree(tmp, ignore_errors=True)
    rows = {rev: _summary(t) for rev, t in times.items()}
    for rev, (low, q1, med) in rows.items():
        print(f"{rev:>12}: {len(times[rev])} steps, min {low * 1e3:.2f} ms, "
              f"p25 {q1 * 1e3:.2f} ms, median {med * 1e3:.2f} ms")
    a, b = rows[args.rev_a], rows[args.rev_b]
    print(f"B / A: min {b[0] / a[0]:.3f}, p25 {b[1] / a[1]:.3f}, median {b[2] / a[2]:.3f} "
          f"({args.threads} thread(s))")


if __name__ == "__main__":
    main()
