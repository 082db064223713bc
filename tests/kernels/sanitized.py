"""Run the kernel tests against extensions built with bounds checks and sanitizers.

    python tests/kernels/sanitized.py [--sanitize address,undefined] [pytest args ...]

Copies the tracked sources to a temporary directory, builds the extensions there with
TGA_CYTHON_DEBUG=1 (Cython bounds / wraparound / initialized checks, fortified C) and
TGA_SANITIZE (default address,undefined), then runs pytest on tests/kernels (or the given
arguments) in that copy with the sanitizer runtime preloaded (python itself is not
instrumented, so its allocations are not reported; leak detection is off). Exits with
pytest's status; a sanitizer report aborts the run (halt_on_error) with a non-zero status.
The working tree's own extensions are not touched.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _runtime(name):
    """Path of gcc's shared runtime for a sanitizer (libasan.so, libubsan.so), or None."""
    out = subprocess.run(["gcc", f"-print-file-name=lib{name}.so"], capture_output=True,
                         text=True).stdout.strip()
    return out if os.path.isabs(out) and os.path.exists(out) else None


def _copy_sources(dst):
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    for rel in files:
        if os.path.isfile(os.path.join(ROOT, rel)):
            os.makedirs(os.path.dirname(os.path.join(dst, rel)) or dst, exist_ok=True)
            shutil.copy2(os.path.join(ROOT, rel), os.path.join(dst, rel))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sanitize", default="address,undefined")
    parser.add_argument("--keep", action="store_true", help="keep the build directory")
    args, pytest_args = parser.parse_known_args(argv)
    names = [n for n in args.sanitize.split(",") if n]
    preload = [_runtime({"address": "asan", "undefined": "ubsan"}[n]) for n in names
               if n in ("address", "undefined")]
    if "address" in names:
        preload = preload[:1]           # libasan carries UBSan's runtime too
    if None in preload:
        print("sanitized.py: gcc has no shared sanitizer runtime for "
              f"{args.sanitize}", file=sys.stderr)
        return 2
    work = tempfile.mkdtemp(prefix="tga_sanitized_")
    try:
        _copy_sources(work)
        env = dict(os.environ, TGA_CYTHON_DEBUG="1", TGA_SANITIZE=args.sanitize)
        subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace", "--force"],
                       cwd=work, env=env, check=True, stdout=subprocess.DEVNULL)
        env.update(LD_PRELOAD=":".join(preload),
                   ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=1",
                   UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1",
                   PYTHONPATH=work)
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        return subprocess.run(cmd + (pytest_args or ["tests/kernels"]), cwd=work,
                              env=env).returncode
    finally:
        if args.keep:
            print(f"sanitized.py: build kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
