"""Run the benchmark suites and print one table of ratios: torch time / our time.

    python -m benchmarks.report                 # full run (a few minutes on 2 cores)
    python -m benchmarks.report --quick         # fewer, shorter rounds (~30 s): a smoke check
    python -m benchmarks.report --repeat 3      # best of 3 whole runs (a noisy shared machine)
    python -m benchmarks.report --numpy-alt     # + numpy GEMM under the other OpenBLAS setting
    python -m benchmarks.report --from-json benchmarks/results/<stamp>-*.json   # re-print

A ratio > 1 means we are faster. Times are the minimum over rounds by default (--stat
median for medians): on a small shared machine the minimum is the run least disturbed by
other processes, which matters for 2-thread OpenMP kernels that stall when a core is taken.
GEMM groups also show GFLOP/s. The raw pytest-benchmark JSON goes to benchmarks/results/
(git-ignored); the header prints the load average before and after the run. With --repeat N
the suites run N times one after another and each cell keeps its best run, so another
process stealing a core during one case's timing does not decide that case's ratio.
"""
import argparse
import ctypes
import datetime
import glob
import json
import os
import pathlib
import platform
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
BLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
DOCUMENTED_BLAS_ENV = {"OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_L2_SIZE": "512"}
MODES = {   # pytest-benchmark options per mode
    "full": ["--benchmark-min-rounds=7", "--benchmark-max-time=0.5"],
    "quick": ["--benchmark-min-rounds=3", "--benchmark-max-time=0.1"],
}


def run_pytest(json_path, mode, env=None, select=None):
    cmd = [sys.executable, "-m", "pytest", str(HERE), "-q", "--benchmark-json", str(json_path),
           *MODES[mode]]
    if select:
        cmd += ["-k", select]
    print("$", " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"benchmarks failed (pytest exit code {proc.returncode})")
    return json.loads(pathlib.Path(json_path).read_text())


def openblas_core(env_note=""):
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


def collect(data, stat="min", column_of=lambda impl: impl):
    """{group: {column: (seconds, flops or None)}} from a pytest-benchmark JSON."""
    table = {}
    for b in data["benchmarks"]:
        info = b.get("extra_info", {})
        col = column_of(info.get("impl", b["name"]))
        table.setdefault(b["group"], {})[col] = (b["stats"][stat], info.get("flops"))
    return table


def merge_best(table, new):
    """Fold `new` into `table`, keeping the faster time of each (group, column) cell."""
    for group, cells in new.items():
        row = table.setdefault(group, {})
        for col, (t, fl) in cells.items():
            if col not in row or t < row[col][0]:
                row[col] = (t, fl)


def fmt_time(s):
    if s is None:
        return "-"
    if s < 1e-3:
        return f"{s * 1e6:.1f} us"
    return f"{s * 1e3:.2f} ms" if s < 1 else f"{s:.2f} s"


def render(table, columns):
    """A Markdown table: times, torch/ours (and numpy/ours) ratios, GFLOP/s where known."""
    others = [c for c in columns if c != "tga"]
    has_flops = any(v[1] for g in table.values() for v in g.values())
    head = (["group", "ours"] + others + [f"{c} / ours" for c in others]
            + ([f"GFLOP/s {c}" for c in ["ours"] + others] if has_flops else []))
    rows = [head, ["---"] * len(head)]
    for group in sorted(table, key=_group_order):
        cells = table[group]
        ours = cells.get("tga", (None, None))[0]
        row = [group, fmt_time(ours)] + [fmt_time(cells.get(c, (None,))[0]) for c in others]
        for c in others:
            t = cells.get(c, (None,))[0]
            row.append(f"{t / ours:.2f}" if t and ours else "-")
        if has_flops:
            for c in ["tga"] + others:
                t, fl = cells.get(c, (None, None))
                row.append(f"{fl / t / 1e9:.0f}" if t and fl else "-")
        rows.append(row)
    return "\n".join("| " + " | ".join(r) + " |" for r in rows)


def _group_order(group):
    """GEMM first (square by size, then the transformer shapes), then the rest by name."""
    kind = 0 if group.startswith("matmul") else 1
    size = group.split(" ", 1)[1] if " " in group else group
    square = size.count("x") == 2 and len({p for p in size.replace("@", "x").split("x")}) == 1
    first = int(size.split("x")[0]) if square else 10 ** 9
    return (kind, not square, first, group)


def header(env_note):
    import numpy as np

    import tinygradattn as tga
    try:
        import torch
        torch_v = torch.__version__
    except ImportError:
        torch_v = "not installed"
    blas = ", ".join(f"{k}={os.environ.get(k, 'unset')}" for k in BLAS_VARS)
    return (f"date: {datetime.date.today().isoformat()}\n"
            f"machine: {cpu_model()}, {os.cpu_count()} CPUs, {platform.system()} "
            f"{platform.machine()}, Python {platform.python_version()}\n"
            f"tinygradattn {tga.__version__} {tga.backend_info()}; torch {torch_v} (pinned to "
            f"{tga.get_num_threads()} threads); numpy {np.__version__}, OpenBLAS core "
            f"{openblas_core()} ({blas}){env_note}")


def main(argv=None):
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
    parser.add_argument("--from-json", type=pathlib.Path, nargs="+", metavar="JSON",
                        help="print the table of saved run(s) (the best of them per cell)")
    args = parser.parse_args(argv)

    if args.from_json:
        table = {}
        for path in args.from_json:
            merge_best(table, collect(json.loads(path.read_text()), args.stat))
        print(render(table, _columns(table)))
        return 0
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    mode = "quick" if args.quick else "full"
    load_before = _load()
    table = {}
    for run in range(max(args.repeat, 1)):
        json_path = RESULTS / f"{stamp}-{mode}-run{run + 1}.json"
        merge_best(table, collect(run_pytest(json_path, mode, select=args.select), args.stat))
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
            merge_best(table, collect(run_pytest(alt_path, mode, env=env,
                                                 select="matmul and numpy"),
                                      args.stat, column_of=lambda impl: label))
        core = subprocess.run([sys.executable, "-c", "from benchmarks.report import "
                               "openblas_core; print(openblas_core())"], cwd=ROOT, env=env,
                              capture_output=True, text=True).stdout.strip()
        settings = ("both unset" if label == "numpy[unset]" else
                    ", ".join(f"{k}={v}" for k, v in DOCUMENTED_BLAS_ENV.items()))
        env_note = f"; {label}: numpy with {settings}, OpenBLAS core {core}"
    print()
    print(header(env_note))
    print(f"statistic: {args.stat} over rounds ({mode} mode), best of {args.repeat} "
          f"run(s); load average before / after: "
          f"{load_before} / {_load()}")
    print()
    print(render(table, _columns(table)))
    print(f"\nraw results: benchmarks/results/{stamp}-{mode}-*.json")
    return 0


def _load():
    try:
        return "%.2f" % os.getloadavg()[0]
    except (OSError, AttributeError):
        return "n/a"


def _columns(table):
    seen = []
    for cells in table.values():
        for c in cells:
            if c not in seen:
                seen.append(c)
    order = ["tga", "torch", "numpy"]
    return sorted(seen, key=lambda c: (order.index(c) if c in order else len(order), c))


if __name__ == "__main__":
    sys.exit(main())
