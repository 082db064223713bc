"""Compile every CUDA kernel we serve for a real GPU (sm_90) on a machine without one, and
report what the compiler says of each: float64 instructions in float32 kernels, registers,
spills, shared and local memory (nvJitLink's verbose log).

    python tests/cuda/compile_kernels.py [family ...] [--cc 9.0] > report.json

Runs without NUMBA_ENABLE_CUDASIM (the simulator compiles nothing). numba-cuda types device
functions for the current device's compute capability; with no device, it is told sm_90's
(`_offline`). The CUDA compiler wheels (numba-cuda[cu13]) must be installed.
"""
import argparse
import importlib
import json
import os
import re
import sys
import time
import types as pytypes

FAMILIES = ("elementwise", "reduce", "indexing", "linalg", "rows", "attention", "optim",
            "sorting", "random", "scatter")
F64_OP = re.compile(r"^\s*(?:@%p\d+\s+)?(?!cvt|ld|st|mov)[a-z][\w.]*\.f64\b", re.M)


def _offline(cc):
    """Let device functions be typed with no GPU present: numba-cuda asks the current
    device for its compute capability; answer cc."""
    import numba.cuda.dispatcher as dispatcher
    dispatcher.get_current_device = lambda: pytypes.SimpleNamespace(compute_capability=cc)


def _link_report(ptx, cc):
    """nvJitLink -verbose on the PTX: {registers, spill_stores, spill_loads, smem, lmem}."""
    from cuda.bindings import nvjitlink
    options = [f"-arch=sm_{cc[0]}{cc[1]}", "-verbose"]
    handle = nvjitlink.create(len(options), options)
    try:
        data = ptx.encode()
        nvjitlink.add_data(handle, nvjitlink.InputType.PTX, data, len(data), "kernel")
        nvjitlink.complete(handle)
        log = bytearray(nvjitlink.get_info_log_size(handle))
        nvjitlink.get_info_log(handle, log)
    finally:
        nvjitlink.destroy(handle)
    log = log.decode(errors="replace")

    def num(pattern):
        found = re.findall(pattern, log)
        return max((int(v) for v in found), default=0)
    return {"registers": num(r"[Uu]sed (\d+) registers"),
            "spill_stores": num(r"(\d+) bytes spill stores"),
            "spill_loads": num(r"(\d+) bytes spill loads"),
            "smem": num(r"(\d+) bytes smem"), "lmem": num(r"(\d+) bytes lmem"),
            "stack": num(r"(\d+) bytes stack frame")}


def compile_all(families, cc=(9, 0)):
    if os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0"):
        raise SystemExit("compile_kernels: unset NUMBA_ENABLE_CUDASIM (the simulator compiles "
                         "nothing)")
    _offline(cc)
    from numba import cuda
    rows = []
    for family in families:
        module = importlib.import_module(f"tinygradattn.cuda.{family}")
        kernels = getattr(module, "kernels", None)
        if kernels is None:
            continue
        for name, key, fn, signature in kernels.specs():
            start = time.perf_counter()
            row = {"family": family, "kernel": name, "key": [str(k) for k in key]}
            try:
                ptx, _ = cuda.compile_ptx(fn, signature, cc=cc)
            except Exception as e:          # noqa: BLE001 - reported, the test fails on it
                row["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"
                rows.append(row)
                continue
            row["f64_ops"] = len(F64_OP.findall(ptx))
            row.update(_link_report(ptx, cc))
            row["seconds"] = round(time.perf_counter() - start, 3)
            rows.append(row)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("families", nargs="*", default=list(FAMILIES))
    parser.add_argument("--cc", default="9.0")
    args = parser.parse_args()
    cc = tuple(int(v) for v in args.cc.split("."))
    json.dump(compile_all(args.families, cc), sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
