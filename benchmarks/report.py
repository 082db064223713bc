"""Run the benchmark suites and print one table: ours vs torch, ratio = torch time / our time.

    python -m benchmarks.report                 # full run (~6-9 min on 2 cores)
    python -m benchmarks.report --quick         # fewer, shorter rounds: a smoke check
    python -m benchmarks.report --numpy-alt     # + numpy GEMM under the other OpenBLAS setting
    python -m benchmarks.report --repeat 2      # best of 2 whole runs (a noisy shared machine)
    python -m benchmarks.report --wait-load 2.5 # first wait (up to --wait-max s) for a quiet CPU
    python -m benchmarks.report -k "matmul"     # a pytest -k selection of cases
    python -m benchmarks.report --from-json benchmarks/results/<stamp>-full-summary.json
    python -m benchmarks.report --device cuda [--quick]   # the GPU report: benchmarks/gpu.py

A ratio > 1 means we are faster (for memory rows: we use less). Times are the minimum over
rounds by default (--stat median for medians): on a small shared machine the minimum is the
run least disturbed by other processes, which matters for 2-thread OpenMP kernels that
stall when a core is taken. Each suite runs in its own pytest process (a broken suite costs
only its rows). Peak RSS rows (GPT training step; attention fwd+bwd at B=1, H=8, T=4096,
D=64) come from fresh interpreters (benchmarks/memory.py). Output: the Markdown table with a
"target" column (the targets of issues 3, 15 and 19), the raw pytest-benchmark JSON and a summary JSON in
benchmarks/results/ (git-ignored), a PNG bar chart of the ratios there, and a copy of the
chart at benchmarks/ratios.png.
"""
import argparse
import ctypes
import datetime
import glob
import json
import os
import pathlib
import platform
import re
import shutil
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
SUITES = ["bench_matmul.py", "bench_softmax.py", "bench_fused.py", "bench_attention.py",
          "bench_optim.py", "bench_gpt.py", "bench_clients.py", "bench_overhead.py",
          "bench_usergpt.py", "bench_numwords.py"]
BLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
DOCUMENTED_BLAS_ENV = {"OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_L2_SIZE": "512"}
MODES = {   # pytest-benchmark options per mode
    "full": ["--benchmark-min-rounds=7", "--benchmark-max-time=0.5"],
    "quick": ["--benchmark-min-rounds=3", "--benchmark-max-time=0.05"],
}
# the columns each benchmark compares against: for AdamW the target's reference is torch's
# foreach implementation, so it takes the "torch" column and the others become notes
RENAME = {"AdamW step": {"torch-foreach": "torch", "torch": "torch (for-loop)",
                         "torch-fused": "torch (fused)"}}
TRANSFORMER_GEMMS = {"768x128@128x384", "768x128@128x512", "768x512@512x128",
                     "768x128@128x65", "48x64x32@48x32x64"}
ATTN_RSS_LIMIT_MIB = 512
NOISY = 1.5             # a cell whose slowest run took > 1.5x its fastest: flagged in notes


# ---- running ------------------------------------------------------------------------------
def run_suite(suite, json_path, mode, env=None, select=None):
    """Run one bench file under pytest-benchmark; the parsed JSON, or None if nothing ran."""
    cmd = [sys.executable, "-m", "pytest", str(HERE / suite), "-q", "--benchmark-json",
           str(json_path), *MODES[mode]]
    if select:
        cmd += ["-k", select]
    print("$", " ".join(cmd[2:]), flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    print(f"  ({time.perf_counter() - t0:.0f} s)", flush=True)
    if proc.returncode == 5:                              # nothing selected
        return None
    if proc.returncode != 0:
        failed = [ln for ln in proc.stdout.splitlines() if ln.startswith(("FAILED", "ERROR"))]
        sys.stderr.write(f"WARNING: {suite}: pytest exit code {proc.returncode}; its failing "
                         f"cases are left out of the table\n"
                         + ("\n".join(failed) or proc.stdout[-3000:] + proc.stderr[-3000:])
                         + "\n")
    if not json_path.exists():
        return None
    return json.loads(json_path.read_text())


def split_group(group):
    """'sdpa causal fwd 12x4x64x32' -> ('sdpa causal fwd', '12x4x64x32')."""
    bench, _, shape = group.rpartition(" ")
    return (bench, shape) if bench and re.match(r"^[\dx@]+$", shape) else (group, "")


def collect(data, stat="min", column_of=lambda impl: impl):
    """{(bench, shape): {column: {"t": seconds, "flops": .., "tokens": ..}}} from one JSON."""
    table = {}
    for b in data["benchmarks"]:
        info = b.get("extra_info", {})
        if "bench" in info:
            key = (info["bench"], info.get("shape", ""))
        else:
            key = split_group(b["group"] or b["name"])
        impl = info.get("impl", b["name"])
        col = column_of(RENAME.get(key[0], {}).get(impl, impl))
        table.setdefault(key, {})[col] = {"t": b["stats"][stat], "flops": info.get("flops"),
                                          "tokens": info.get("tokens")}
    return table


def merge_best(table, new):
    """Fold `new` into `table`, keeping the faster time of each (row, column) cell; "runs"
    lists every run's time of the cell (the spread flags rows the machine's load disturbed)."""
    for key, cells in new.items():
        row = table.setdefault(key, {})
        for col, cell in cells.items():
            runs = row.get(col, {}).get("runs", []) + [cell["t"]]
            if col not in row or cell["t"] < row[col]["t"]:
                row[col] = dict(cell)
            row[col]["runs"] = runs


def run_memory(threads):
    """Peak-RSS rows, each library in a fresh interpreter (see benchmarks/memory.py)."""
    from .memory import CASES, measure
    rows = {}
    for case, (_, label, shape) in CASES.items():
        print(f"$ python -m benchmarks.memory {case} {{tga,torch}}", flush=True)
        cells = {}
        for impl in ("tga", "torch"):
            try:
                cells[impl] = measure(case, impl, threads=threads)
            except Exception as exc:                     # noqa: BLE001 - report and go on
                sys.stderr.write(f"WARNING: memory {case} {impl}: {exc}\n")
        rows[(label, shape)] = cells
    return rows


# ---- targets (issues 3, 15 and 19; float32, 2 threads) -----------------------------------
ADD_2X2_MAX_S = 1.0e-6     # issue 19: a 2x2 add forward in at most 1.0 us (an absolute target)


def target_of(bench, shape):
    """(minimum ratio, reference: 'torch' or 'best') or None."""
    if bench == "matmul":
        dims = set(re.split(r"[x@]", shape))
        if len(dims) == 1 and 512 <= int(dims.pop()) <= 2048:
            return 0.9, "best"
        if shape == "128x128@128x128":                 # issue 19: small-op overhead
            return 0.9, "torch"
        if shape in TRANSFORMER_GEMMS:
            return 1.0, "torch"
        return None
    if bench in ("softmax fwd+bwd", "cross_entropy fwd+bwd", "layer_norm fwd+bwd",
                 "AdamW step"):
        return 1.5, "torch"
    if bench == "sdpa causal fwd+bwd":
        return 1.0, "torch"
    if bench == "GPT train step":                      # issue 19: no regression from 1.44
        return 1.44, "torch"
    if bench == "user GPT train step":                 # issue 19: the user's own model
        return (1.4 if shape.startswith("nano") else 1.25), "torch"
    if bench in ("numwords train step", "nanoGPT model.py train step"):     # issue 19
        return 1.4, "torch"
    if bench == "overhead: (a@b).sum().backward()":
        return 1.1, "torch"
    if bench.endswith("peak RSS") and bench != "attention fwd+bwd peak RSS":
        return 1.0, "torch"
    return None


def ratio(cells, col, ours_key="t"):
    ours, theirs = cells.get("tga", {}).get(ours_key), cells.get(col, {}).get(ours_key)
    return theirs / ours if ours and theirs else None


def best_other(cells):
    """(column, time) of the fastest non-ours implementation among torch and numpy*."""
    cands = [(c["t"], col) for col, c in cells.items()
             if col == "torch" or col.startswith("numpy")]
    if not cands:
        return None, None
    t, col = min(cands)
    return col, t


def evaluate(key, cells):
    """{"target": text, "met": bool or None, "target_ratio": value compared} for one row."""
    bench, shape = key
    if bench == "attention fwd+bwd peak RSS":
        ours = cells.get("tga")
        if not ours:
            return {"target": "-", "met": None, "target_ratio": None}
        grow = ours["peak"] - ours["setup"]
        met = grow < ATTN_RSS_LIMIT_MIB / 2
        return {"target": f"ours +{grow:.0f} MiB << {ATTN_RSS_LIMIT_MIB} MiB: "
                          f"{'met' if met else 'MISSED'}", "met": met, "target_ratio": None}
    if bench == "overhead: a + b fwd":
        ours = cells.get("tga", {}).get("t")
        if ours is None:
            return {"target": "-", "met": None, "target_ratio": None}
        met = ours <= ADD_2X2_MAX_S
        return {"target": f"ours <= {ADD_2X2_MAX_S * 1e6:.1f} us: {ours * 1e6:.2f} us "
                          f"{'met' if met else 'MISSED'}", "met": met, "target_ratio": None}
    tgt = target_of(bench, shape)
    if tgt is None:
        return {"target": "", "met": None, "target_ratio": None}
    need, ref = tgt
    if "peak" in cells.get("tga", {}):
        grow = {c: v["peak"] - v["setup"] for c, v in cells.items() if "peak" in v}
        r = grow["torch"] / max(grow["tga"], 1.0) if "torch" in grow else None
        what = "RSS growth <= torch"
    elif ref == "best":
        col, t = best_other(cells)
        r = t / cells["tga"]["t"] if col and "tga" in cells else None
        what = f">= {need:g}x best ({col})"
    else:
        r = ratio(cells, "torch")
        what = f">= {need:g}x torch" + (" foreach" if bench == "AdamW step" else "")
    if r is None:
        return {"target": what + ": n/a", "met": None, "target_ratio": None}
    met = r >= need
    text = f"{what}: {r:.2f} met" if met else \
        f"{what}: {r:.2f} MISSED by {(1 - r / need) * 100:.0f}% (needs {need / r:.2f}x)"
    return {"target": text, "met": met, "target_ratio": r}


# ---- rendering ----------------------------------------------------------------------------
def fmt_time(s):
    if s is None:
        return "-"
    if s < 1e-3:
        return f"{s * 1e6:.1f} us"
    return f"{s * 1e3:.2f} ms" if s < 1 else f"{s:.2f} s"


def fmt_cell(cell):
    if not cell:
        return "-"
    if "peak" in cell:
        return f"{cell['peak']:.0f} MiB (+{cell['peak'] - cell['setup']:.0f})"
    return fmt_time(cell["t"])


def notes(key, cells):
    """Free text: GFLOP/s, tokens/s, other implementations (e.g. torch's other AdamWs)."""
    out = []
    ours = cells.get("tga", {})
    if ours.get("flops"):
        gf = {c: v["flops"] / v["t"] / 1e9 for c, v in cells.items() if v.get("flops")}
        out.append("GFLOP/s " + ", ".join(f"{'ours' if c == 'tga' else c} {g:.0f}"
                                          for c, g in gf.items()))
    if ours.get("tokens"):
        out.append("tokens/s " + ", ".join(
            f"{'ours' if c == 'tga' else c} {v['tokens'] / v['t']:,.0f}"
            for c, v in cells.items() if v.get("tokens")))
    for col, cell in cells.items():
        if col in ("tga", "torch", "numpy") or "t" not in cell:
            continue
        r = ratio(cells, col)
        out.append(f"{col} {fmt_time(cell['t'])} ({r:.2f}x)" if r else col)
    spread = {c: max(v["runs"]) / min(v["runs"]) for c, v in cells.items()
              if len(v.get("runs", ())) > 1 and c in ("tga", "torch")}
    if spread and max(spread.values()) > NOISY:
        out.append("NOISY: best/worst run " + ", ".join(
            f"{'ours' if c == 'tga' else c} x{x:.1f}" for c, x in spread.items()))
    return "; ".join(out)


ORDER = ["matmul", "softmax fwd", "softmax fwd+bwd", "cross_entropy fwd+bwd",
         "layer_norm fwd+bwd", "sdpa causal fwd", "sdpa causal fwd+bwd", "AdamW step",
         "GPT train step", "nanoGPT model.py train step", "user GPT train step",
         "numwords train step", "overhead: a + b fwd", "overhead: (a@b).sum().backward()",
         "GPT train step peak RSS", "user GPT train step peak RSS",
         "numwords train step peak RSS", "attention fwd+bwd peak RSS"]


def row_order(key):
    bench, shape = key
    rank = ORDER.index(bench) if bench in ORDER else len(ORDER)
    if bench == "matmul":
        dims = set(re.split(r"[x@]", shape))
        square = len(dims) == 1
        return (rank, not square, int(dims.pop()) if square else 0, shape)
    nums = [int(n) for n in re.findall(r"\d+", shape)]
    if len(nums) == 4:                                   # attention (B, H, T, D): by T
        return (rank, False, nums[2], shape)
    size = 1
    for n in nums[:4]:
        size *= n
    return (rank, False, size if nums else 0, shape)


def build_rows(table):
    rows = []
    for key in sorted(table, key=row_order):
        cells = table[key]
        ev = evaluate(key, cells)
        mem = "peak" in cells.get("tga", cells.get("torch", {}))
        r = ratio(cells, "torch", "peak" if mem else "t")
        rn = ratio(cells, "numpy")
        rows.append({"bench": key[0], "shape": key[1], "cells": cells,
                     "ours": fmt_cell(cells.get("tga")), "torch": fmt_cell(cells.get("torch")),
                     "ratio": r, "numpy": fmt_cell(cells.get("numpy")) if "numpy" in cells
                     else "", "numpy_ratio": rn, **ev, "notes": notes(key, cells)})
    return rows


def render(rows):
    has_numpy = any(r["numpy"] for r in rows)
    head = ["benchmark", "shape", "ours", "torch", "torch / ours"]
    head += ["numpy", "numpy / ours"] if has_numpy else []
    head += ["target", "notes"]
    lines = [head, ["---"] * len(head)]
    for r in rows:
        line = [r["bench"], r["shape"], r["ours"], r["torch"],
                f"**{r['ratio']:.2f}**" if r["ratio"] else "-"]
        if has_numpy:
            line += [r["numpy"] or "", f"{r['numpy_ratio']:.2f}" if r["numpy_ratio"] else ""]
        line += [r["target"], r["notes"]]
        lines.append(line)
    return "\n".join("| " + " | ".join(x.replace("|", "/") for x in ln) + " |" for ln in lines)


def render_targets(rows):
    met = [r for r in rows if r["met"] is True]
    missed = [r for r in rows if r["met"] is False]
    out = [f"targets met: {len(met)} of {len(met) + len(missed)}"]
    for r in missed:
        out.append(f"  missed: {r['bench']} {r['shape']}: {r['target']}")
    return "\n".join(out)


def plot(rows, path, title):
    """Horizontal bars of torch / ours (log x, a line at 1.0), green where the row's target
    is met, red where missed, grey without one; a tick marks each row's target."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = [r for r in rows if r["ratio"]][::-1]
    if not rows:
        return False
    fig, ax = plt.subplots(figsize=(7.5, 0.2 * len(rows) + 1.0), dpi=80)
    y = range(len(rows))
    colors = ["#4a9a4a" if r["met"] else "#c84a3a" if r["met"] is False else "#9a9a9a"
              for r in rows]
    ax.barh(list(y), [r["ratio"] for r in rows], color=colors, height=0.7)
    for i, r in enumerate(rows):
        if r["numpy_ratio"]:
            ax.plot(r["numpy_ratio"], i, "k.", markersize=4)
        tgt = target_of(r["bench"], r["shape"])
        if tgt and r["met"] is not None:
            ax.plot(tgt[0], i, "k|", markersize=9)
    ax.set_xscale("log")
    ax.axvline(1.0, color="k", linewidth=0.8)
    ax.set_yticks(list(y))
    ax.set_yticklabels([f"{r['bench']} {r['shape']}"[:48] for r in rows], fontsize=6.5)
    ax.tick_params(axis="x", labelsize=7)
    ax.set_xlabel("torch / ours  (> 1: ours faster or smaller; dot: numpy / ours; "
                  "tick: target)", fontsize=7)
    ax.set_title(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


# ---- environment --------------------------------------------------------------------------
def openblas_core():
    """The OpenBLAS kernel family numpy picked at run time (e.g. Haswell, SkylakeX)."""
    import numpy as np
    libs = glob.glob(os.path.join(os.path.dirname(np.__file__) + ".libs", "*openblas*"))
    for lib in libs:
        try:
            dll = ctypes.CDLL(lib)
        except OSError:
            continue
        for name in ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename",
                     "openblas_get_corename64_", "openblas_get_corename"):
            fn = getattr(dll, name, None)
            if fn is not None:
                fn.restype = ctypes.c_char_p
                return fn().decode()
    return "unknown"


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def header(env_note):
    import numpy as np

    import tinygradattn as tga
    try:
        import torch
        torch_v = torch.__version__
    except ImportError:
        torch_v = "not installed"
    blas = ", ".join(f"{k}={os.environ.get(k, 'unset')}" for k in BLAS_VARS)
    try:
        info = tga.backend_info()
    except Exception as exc:                         # noqa: BLE001 - a half-rebuilt tree
        info = f"(backend_info() failed: {exc!r})"
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (f"date: {now}\n"
            f"machine: {cpu_model()}, {os.cpu_count()} CPUs, {platform.system()} "
            f"{platform.machine()}, Python {platform.python_version()}\n"
            f"tinygradattn {tga.__version__} {info}; torch {torch_v} (pinned to "
            f"{tga.get_num_threads()} threads); numpy {np.__version__}, OpenBLAS core "
            f"{openblas_core()} ({blas}){env_note}")


def load1():
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):
        return float("nan")


def wait_for_load(limit, max_wait, poll=60):
    t0 = time.time()
    while load1() >= limit and time.time() - t0 < max_wait:
        print(f"load average {load1():.2f} >= {limit}: waiting ({time.time() - t0:.0f} s of "
              f"{max_wait} s)", flush=True)
        time.sleep(poll)
    print(f"load average {load1():.2f}: starting", flush=True)


def columns_present(table):
    return {c for cells in table.values() for c in cells}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--device" in argv:                  # --device cuda: the GPU report (benchmarks/gpu.py)
        at = argv.index("--device")
        device = argv[at + 1] if at + 1 < len(argv) else ""
        rest = argv[:at] + argv[at + 2:]
        if device == "cuda":
            from . import gpu
            return gpu.main(rest)
        if device != "cpu":
            raise SystemExit(f"--device {device!r}: expected cpu or cuda")
        argv = rest
    parser = argparse.ArgumentParser(prog="python -m benchmarks.report",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds")
    parser.add_argument("-k", dest="select", help="pytest -k expression to select cases")
    parser.add_argument("--numpy-alt", action="store_true",
                        help="also time numpy GEMM with the other OpenBLAS setting: both "
                             f"{'/'.join(BLAS_VARS)} unset if either is set here, else set to "
                             "the documented Haswell/512 values")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run the suites N times and keep each case's best (default 1)")
    parser.add_argument("--stat", choices=("min", "median", "mean"), default="min",
                        help="which timing statistic the table uses (default: %(default)s)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-RSS rows")
    parser.add_argument("--wait-load", type=float, metavar="L",
                        help="first wait until the 1-minute load average is below L")
    parser.add_argument("--wait-max", type=float, default=900, metavar="S",
                        help="give up waiting for the load after S seconds (default 900)")
    parser.add_argument("--from-json", type=pathlib.Path, metavar="SUMMARY",
                        help="re-print the table (and chart) of a saved summary JSON")
    args = parser.parse_args(argv)

    if args.from_json:
        saved = json.loads(args.from_json.read_text())
        rows = build_rows({tuple(k.split(" | ", 1)): v for k, v in saved["table"].items()})
        print(saved["header"] + "\n")
        print(render(rows) + "\n\n" + render_targets(rows))
        return 0

    RESULTS.mkdir(exist_ok=True)
    if args.wait_load:
        wait_for_load(args.wait_load, args.wait_max)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    mode = "quick" if args.quick else "full"
    import tinygradattn as tga
    threads = tga.get_num_threads()
    loads = [load1()]
    t_start = time.perf_counter()
    table = {}
    for run in range(max(args.repeat, 1)):
        for suite in SUITES:
            if not (HERE / suite).exists():
                continue
            json_path = RESULTS / f"{stamp}-{mode}-{suite[6:-3]}-run{run + 1}.json"
            data = run_suite(suite, json_path, mode, select=args.select)
            if data:
                merge_best(table, collect(data, args.stat))
            loads.append(load1())
    env_note = ""
    if args.numpy_alt:
        env = dict(os.environ)
        if any(k in env for k in BLAS_VARS):
            for k in BLAS_VARS:
                env.pop(k, None)
            label = "numpy[unset]"
        else:
            env.update(DOCUMENTED_BLAS_ENV)
            label = "numpy[Haswell]"
        for run in range(max(args.repeat, 1)):
            alt_path = RESULTS / f"{stamp}-{mode}-numpy-alt-run{run + 1}.json"
            sel = "numpy" + (f" and ({args.select})" if args.select else "")
            data = run_suite("bench_matmul.py", alt_path, mode, env=env, select=sel)
            if data:
                merge_best(table, collect(data, args.stat, column_of=lambda impl: label))
        core = subprocess.run([sys.executable, "-c", "from benchmarks.report import "
                               "openblas_core; print(openblas_core())"], cwd=ROOT, env=env,
                              capture_output=True, text=True).stdout.strip()
        settings = ("both unset" if label == "numpy[unset]" else
                    ", ".join(f"{k}={v}" for k, v in DOCUMENTED_BLAS_ENV.items()))
        env_note = f"; {label}: numpy with {settings}, OpenBLAS core {core}"
    if not args.no_memory and not args.select:
        table.update(run_memory(threads))
    loads.append(load1())
    elapsed = time.perf_counter() - t_start

    head = (header(env_note) + "\n"
            f"command: python -m benchmarks.report {' '.join(argv or sys.argv[1:])}\n"
            f"statistic: {args.stat} over rounds ({mode} mode), best of {args.repeat} run(s); "
            f"1-min load average before / max during / after: {loads[0]:.2f} / "
            f"{max(loads):.2f} / {loads[-1]:.2f}; wall time {elapsed / 60:.1f} min")
    rows = build_rows(table)
    print()
    print(head + "\n")
    print(render(rows))
    print()
    print(render_targets(rows))
    summary = RESULTS / f"{stamp}-{mode}-summary.json"
    summary.write_text(json.dumps({
        "header": head, "loads": loads,
        "table": {f"{k[0]} | {k[1]}": v for k, v in table.items()},
        "rows": [{k: v for k, v in r.items() if k != "cells"} for r in rows]}, indent=1))
    png = RESULTS / f"{stamp}-{mode}-ratios.png"
    if plot(rows, png, f"tinygradattn vs PyTorch, {mode} run {stamp} (torch time / our time)"):
        if mode == "full" and not args.select:
            shutil.copyfile(png, HERE / "ratios.png")
        print(f"\nchart: {png.relative_to(ROOT)}"
              + ("  (copied to benchmarks/ratios.png)" if mode == "full" and not args.select
                 else ""))
    print(f"raw results: {summary.relative_to(ROOT)} and benchmarks/results/{stamp}-{mode}-*.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
