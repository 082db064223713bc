"""Training steps of two built checkouts of tinygradattn, in alternating processes: each tree
runs its own Python code and its own compiled kernels (unlike ab_commits.py, which lends both
revisions this checkout's extensions).

    python -m benchmarks.ab_trees OLD_TREE NEW_TREE [--workloads gpt user-nano numwords]
                                  [--rounds 6] [--steps 15]

OLD_TREE / NEW_TREE: repository roots with tinygradattn/*.so built in place. The workloads'
code (bench_gpt.py's TrainStep, bench_numwords.py's NumwordsStep, and the user-written GPT of
user_gpt.py, read from this checkout) is the same on both sides; only the library differs.
Prints each tree's minimum and median step time and the ratio OLD / NEW (> 1: NEW is faster).
"""
import argparse
import json
import statistics
import subprocess
import sys

CHILD = r"""
import importlib.util, json, sys, time
tree, here, workload, steps = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
sys.path.insert(0, tree)
import tinygradattn as tga
assert tga.__file__.startswith(tree), tga.__file__
def load(name):
    spec = importlib.util.spec_from_file_location(name, f"{here}/benchmarks/{name}.py")
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod); return mod
if workload == "user-nano":
    user_gpt = load("user_gpt")
    cfg = user_gpt.PRESETS["nano"]
    import numpy as np
    tga.manual_seed(0)
    model = user_gpt.build(tga, **cfg)
    opt = user_gpt.optimizer(tga, model)
    d = np.random.default_rng(0).integers(0, cfg["vocab_size"], (cfg["batch_size"], cfg["block_size"] + 1))
    x, y = tga.tensor(d[:, :-1].copy()), tga.tensor(d[:, 1:].copy())
    step = lambda: user_gpt.train_step(tga, model, opt, x, y)
elif workload == "gpt":
    from benchmarks.bench_gpt import TrainStep
    step = TrainStep("tga")
else:
    from benchmarks.bench_numwords import NumwordsStep
    step = NumwordsStep("tga")
for _ in range(3):
    step()
times = []
for _ in range(steps):
    t0 = time.perf_counter(); step(); times.append(time.perf_counter() - t0)
print(json.dumps(times))
"""


def run(tree, here, workload, steps):
    out = subprocess.run([sys.executable, "-c", CHILD, tree, here, workload, str(steps)],
                         cwd=tree, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    import os
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--workloads", nargs="+", default=["gpt", "user-nano", "numwords"])
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--steps", type=int, default=15)
    args = ap.parse_args(argv)
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    trees = {"old": os.path.abspath(args.old), "new": os.path.abspath(args.new)}
    for workload in args.workloads:
        times = {k: [] for k in trees}
        for _ in range(args.rounds):
            for k, tree in trees.items():
                times[k] += run(tree, here, workload, args.steps)
        mins = {k: min(v) for k, v in times.items()}
        meds = {k: statistics.median(v) for k, v in times.items()}
        print(f"{workload:10} old min {mins['old'] * 1e3:7.2f} ms med {meds['old'] * 1e3:7.2f}"
              f" | new min {mins['new'] * 1e3:7.2f} med {meds['new'] * 1e3:7.2f} | old / new "
              f"min {mins['old'] / mins['new']:.2f} med {meds['old'] / meds['new']:.2f}",
              flush=True)


if __name__ == "__main__":
    main()
