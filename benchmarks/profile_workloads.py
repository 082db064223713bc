"""Where each training workload's step goes, op by op, ours next to PyTorch's: the profile
summary issue 19 asks for. For each workload, both libraries run the same model from the
same weights under their own profiler (tga.profiler / torch.profiler, the same API); the
table lists each side's top ops by self time per step, and the step's wall time.

    python -m benchmarks.profile_workloads                      # every workload, top 12
    python -m benchmarks.profile_workloads user-nano numwords   # some of them
    python -m benchmarks.profile_workloads --top 20 --steps 10

Workloads: gpt (tga.models.GPT, bench_gpt.py), user-nano / user-base (the user-written GPT,
bench_usergpt.py), nanogpt (nanoGPT's model.py, bench_clients.py), numwords (the default
task, bench_numwords.py). "outside ops" is the wall time the profiler's ops do not cover:
the optimizer, clipping, zero_grad and the Python between ops (for torch, its optimizer is
one of its ops).
"""
import argparse
import time

import tinygradattn as tga

from .common import torch


def _steps():
    from .bench_clients import NanoGPTStep
    from .bench_gpt import TrainStep
    from .bench_numwords import NumwordsStep
    from .bench_usergpt import UserGPTStep
    return {
        "gpt": lambda impl: TrainStep(impl),
        "user-nano": lambda impl: UserGPTStep(impl, "nano"),
        "user-base": lambda impl: UserGPTStep(impl, "base"),
        "nanogpt": lambda impl: NanoGPTStep(impl),
        "numwords": lambda impl: NumwordsStep(impl),
    }


def profile(step, lib, steps, warmup=2):
    """(wall seconds per step, [(self seconds per step, op name, calls per step)], best first)."""
    for _ in range(warmup):
        step()
    best = float("inf")
    for _ in range(steps):                      # the least disturbed step, unprofiled
        t0 = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - t0)
    with lib.profiler.profile() as prof:
        for _ in range(steps):
            step()
    rows = [(e.self_cpu_time_total / steps / 1e6, e.key, e.count / steps)
            for e in prof.key_averages()]
    return best, sorted(rows, reverse=True)


def table(name, results, top):
    lines = [f"### {name}", "",
             "| | ours: op | ms/step | calls | torch: op | ms/step | calls |",
             "|---|---|---|---|---|---|---|"]
    ours, theirs = results.get("tga", (None, [])), results.get("torch", (None, []))
    for i in range(top):
        cells = []
        for _, rows in (ours, theirs):
            if i < len(rows):
                s, key, calls = rows[i]
                cells += [key[:48], f"{s * 1e3:.2f}", f"{calls:g}"]
            else:
                cells += ["", "", ""]
        lines.append(f"| {i + 1} | " + " | ".join(cells) + " |")
    walls = []
    for impl, (wall, rows) in results.items():
        outside = wall - sum(r[0] for r in rows)
        walls.append(f"{'ours' if impl == 'tga' else impl} {wall * 1e3:.1f} ms "
                     f"(outside ops {max(outside, 0) * 1e3:.1f} ms)")
    lines.append("")
    lines.append("step (least disturbed of the unprofiled ones): " + ", ".join(walls)
                 + (f"; torch / ours {results['torch'][0] / results['tga'][0]:.2f}"
                    if len(results) == 2 else ""))
    return "\n".join(lines)


def main(argv=None):
    steps = _steps()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("workloads", nargs="*", choices=[[]] + list(steps), default=[])
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument("--steps", type=int, default=5)
    args = ap.parse_args(argv)
    if torch is not None:
        torch.set_num_threads(tga.get_num_threads())
    for name in args.workloads or [w for w in steps if w != "user-base"]:
        n = 2 if name == "user-base" else args.steps
        results = {}
        for impl, lib in (("tga", tga), ("torch", torch)):
            if lib is not None:
                results[impl] = profile(steps[name](impl), lib, n, warmup=1 if n < 3 else 2)
        print(table(name, results, args.top) + "\n", flush=True)


if __name__ == "__main__":
    main()
