"""Run the kernel tests against extensions built with bounds checks and sanitizers.

    python tests/kernels/sanitized.py [--sanitize address,undefined] [pytest args ...]
    python tests/kernels/sanitized.py --sanitize none      # bounds checks only (what CI runs)

Copies the tracked sources to a temporary directory, builds the extensions there with
TGA_CYTHON_DEBUG=1 (Cython bounds / wraparound / initialized checks, fortified C) and
TGA_SANITIZE (default address,undefined), then runs pytest on tests/kernels (or the given
arguments) in that copy with the sanitizer runtime preloaded (python itself is not
instrumented, so its allocations are not reported; leak detection is off). Exits with
pytest's status; a sanitizer report aborts the run (halt_on_error) with a non-zero status,
and an exception Cython could only print as "unraisable" (a bounds check firing inside a
`noexcept nogil` kernel, which then returns early) fails its test. The working tree's own
extensions are not touched.

`--sanitize none` builds with TGA_CYTHON_DEBUG=1 alone: every memoryview index of the .pyx
files is checked (an IndexError instead of a read or write out of bounds) and no sanitizer
runtime is needed; .ci/run runs it after the main test suite. Its cost, measured on 2 shared
cores: the build ~80 s of CPU time (-O3, every ISA variant, as shipped), the kernel tests
~23 s against ~21 s on the normal build. Only Cython's indexing is checked: the C kernels of
the _*_kernel.h headers take raw pointers, which the AddressSanitizer mode is there for.
`--jobs N` builds N extensions at once (default: the CPU count).
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _runtime(name):
    """Path of gcc's shared runtime for a sanitizer (libasan.so, libubsan.so), or None."""
    out = subprocess.run(["gcc", f"-print-file-name=lib{name}.so"], capture_output=True,
                         text=True).stdout.strip()
    return out if os.path.isabs(out) and os.path.exists(out) else None


def _source_files():
    """Relative paths of the sources: git's tracked files, or, outside a git checkout, the
    tree less what builds and runs leave (.git, venvs, build/, compiled files, caches)."""
    try:
        return subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        pass
    skip_dirs = {".git", ".ci-venv", "build", "__pycache__", ".pytest_cache", "runs"}
    files = []
    for here, dirs, names in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in skip_dirs and not d.endswith(".egg-info")]
        files += [os.path.relpath(os.path.join(here, n), ROOT) for n in names
                  if n != ".git" and not n.endswith((".so", ".pyd", ".o"))]
    return files


def _copy_sources(dst):
    for rel in _source_files():
        if os.path.isfile(os.path.join(ROOT, rel)):
            os.makedirs(os.path.dirname(os.path.join(dst, rel)) or dst, exist_ok=True)
            shutil.copy2(os.path.join(ROOT, rel), os.path.join(dst, rel))


def _build(work, names, jobs):
    """Build the extensions in work with the checks on; -> the build's exit status (its
    output is printed only when it fails: Cython's warnings would bury CI's log)."""
    env = dict(os.environ, TGA_CYTHON_DEBUG="1", TGA_SANITIZE=",".join(names))
    start = time.perf_counter()
    res = subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace", "--force",
                          f"--parallel={max(1, jobs)}"],
                         cwd=work, env=env, capture_output=True, text=True)
    if res.returncode:
        print(res.stdout[-5000:] + res.stderr[-20000:], file=sys.stderr)
        print("sanitized.py: the build failed", file=sys.stderr)
    else:
        print(f"sanitized.py: built with TGA_CYTHON_DEBUG=1, sanitizers "
              f"{','.join(names) or 'none'}, in {time.perf_counter() - start:.0f} s", flush=True)
    return res.returncode


def _run_tests(work, names, preload, pytest_args):
    """pytest in work against its build; -> pytest's status. An exception inside a
    `noexcept` kernel (a bounds check firing there) cannot propagate: Cython prints it as
    unraisable and returns, so pytest is told to fail the test on it."""
    env = dict(os.environ, TGA_CYTHON_DEBUG="1", TGA_SANITIZE=",".join(names), PYTHONPATH=work)
    if preload:
        env.update(LD_PRELOAD=":".join(preload),
                   ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=1",
                   UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1")
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
           "-W", "error::pytest.PytestUnraisableExceptionWarning"]
    return subprocess.run(cmd + (pytest_args or ["tests/kernels"]), cwd=work,
                          env=env).returncode


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sanitize", default="address,undefined",
                        help="comma-separated: address, undefined, leak; or none (bounds "
                             "checks only)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="extensions built at once")
    parser.add_argument("--keep", action="store_true", help="keep the build directory")
    args, pytest_args = parser.parse_known_args(argv)
    names = [n for n in args.sanitize.split(",") if n and n != "none"]
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
        return _build(work, names, args.jobs) or _run_tests(work, names, preload, pytest_args)
    finally:
        if args.keep:
            print(f"sanitized.py: build kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
