"""nanoGPT's README CPU recipe, run twice on the same files: on PyTorch (`python train.py`)
and on tinygradattn (`tinygradattn run train.py`), unmodified. Prints the final val loss
and ms/iter of each (the median of train.py's own per-iteration times, evaluation
iterations left out) and the ratio.

    python -m benchmarks.nanogpt_recipe                   # the full recipe: 2000 iterations
    python -m benchmarks.nanogpt_recipe --max-iters 200   # shorter (the loss is not final)
    python -m benchmarks.nanogpt_recipe --seeds 3         # each library under 3 seeds
    python -m benchmarks.nanogpt_recipe --seeds 2 --first-seed 1339   # two more

train.py seeds torch with 1337; the seed spread (the val loss's own scatter from one
initialisation and batch order to another) comes from copies of train.py that differ from
it only in that number (1338, 1339, ...: the first run is always the unmodified file).

Needs ../shared/clients/nanoGPT and ../shared/data/tinyshakespeare.txt beside the repository,
and PyTorch for its half (--only tga skips it). The runs go one after the other in a
temporary copy of nanoGPT; each log is kept in benchmarks/results/.
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SHARED = os.path.join(os.path.dirname(ROOT), "shared")
RECIPE = ["config/train_shakespeare_char.py", "--device=cpu", "--compile=False",
          "--eval_iters=20", "--log_interval=1", "--block_size=64", "--batch_size=12",
          "--n_layer=4", "--n_head=4", "--n_embd=128", "--dropout=0.0"]


def script_for_seed(work, seed):
    """train.py for seed 1337 (the file itself), else a copy seeded `seed` instead."""
    if seed == 1337:
        return "train.py"
    text = open(os.path.join(work, "train.py")).read()
    assert text.count("torch.manual_seed(1337 + seed_offset)") == 1
    name = f"train_seed{seed}.py"
    with open(os.path.join(work, name), "w") as f:
        f.write(text.replace("torch.manual_seed(1337 + seed_offset)",
                             f"torch.manual_seed({seed} + seed_offset)"))
    return name


def run(impl, work, max_iters, log_path, seed=1337):
    args = RECIPE + [f"--max_iters={max_iters}", f"--lr_decay_iters={max_iters}",
                     f"--out_dir=out-{impl}-{seed}"]
    script = script_for_seed(work, seed)
    cmd = ([sys.executable, script] if impl == "torch"
           else [sys.executable, "-m", "tinygradattn", "run", script]) + args
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    start = time.time()
    with open(log_path, "w") as log:
        p = subprocess.run(cmd, cwd=work, stdout=log, stderr=subprocess.STDOUT, env=env)
    wall = time.time() - start
    text = open(log_path).read()
    if p.returncode != 0:
        raise SystemExit(f"{impl} failed (exit {p.returncode}); log: {log_path}\n{text[-2000:]}")
    evals = {int(m.group(1)): (float(m.group(2)), float(m.group(3))) for m in re.finditer(
        r"step (\d+): train loss ([\d.]+), val loss ([\d.]+)", text)}
    times = {int(m.group(1)): float(m.group(2)) for m in re.finditer(
        r"iter (\d+): loss [\d.]+, time ([\d.]+)ms", text)}
    steady = [t for i, t in times.items() if i not in evals and i > 0]
    return {"evals": evals, "ms_per_iter": statistics.median(steady), "wall_s": wall}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-iters", type=int, default=2000)
    ap.add_argument("--only", choices=("tga", "torch"))
    ap.add_argument("--seeds", type=int, default=1, help="runs per library, seeds 1337, 1338, ...")
    ap.add_argument("--first-seed", type=int, default=1337, help="the first of those seeds")
    args = ap.parse_args(argv)
    if not os.path.isdir(os.path.join(SHARED, "clients", "nanoGPT")):
        raise SystemExit("../shared/clients/nanoGPT is not beside the repository")
    results_dir = os.path.join(HERE, "results")
    os.makedirs(results_dir, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    with tempfile.TemporaryDirectory() as tmp:
        work = os.path.join(tmp, "nanoGPT")
        shutil.copytree(os.path.join(SHARED, "clients", "nanoGPT"), work)
        data = os.path.join(work, "data", "shakespeare_char")
        shutil.copy(os.path.join(SHARED, "data", "tinyshakespeare.txt"),
                    os.path.join(data, "input.txt"))
        subprocess.run([sys.executable, os.path.join(data, "prepare.py")], check=True,
                       stdout=subprocess.DEVNULL)
        out = {}
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            for impl in ("torch", "tga"):
                if args.only and impl != args.only:
                    continue
                log = os.path.join(results_dir, f"{stamp}-nanogpt-{impl}-{seed}.log")
                r = out.setdefault(impl, {})[seed] = run(impl, work, args.max_iters, log, seed)
                last = max(r["evals"])
                print(f"{impl:6} seed {seed} step {last}: train loss {r['evals'][last][0]:.4f}, "
                      f"val loss {r['evals'][last][1]:.4f}; {r['ms_per_iter']:.1f} ms/iter "
                      f"(median); {r['wall_s']:.0f} s in all; log {log}", flush=True)
    for impl, runs in out.items():
        vals = [r["evals"][max(r["evals"])][1] for r in runs.values()]
        ms = statistics.median(r["ms_per_iter"] for r in runs.values())
        spread = f", spread {min(vals):.4f} .. {max(vals):.4f}" if len(vals) > 1 else ""
        print(f"{impl:6} val loss mean {statistics.mean(vals):.4f}{spread}; {ms:.1f} ms/iter")
    if len(out) == 2:
        ms = {impl: statistics.median(r["ms_per_iter"] for r in runs.values())
              for impl, runs in out.items()}
        print(f"torch / ours ms/iter: {ms['torch'] / ms['tga']:.2f} (> 1: tinygradattn is faster)")

if __name__ == "__main__":
    main()
