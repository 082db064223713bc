"""Build of the Cython extensions ``tinygradattn._*.pyx`` (metadata lives in pyproject.toml).

- ``-O3``, never ``-ffast-math`` (it breaks NaN/inf semantics and, at link time, turns off
  subnormals for the whole process).
- No ``-march``: the default build runs on any x86-64 CPU. Every kernel family (the
  ``tinygradattn/_*_kernel.h`` headers) is compiled for AVX-512, AVX2+FMA and a portable
  baseline (``__attribute__((target(...)))``); the set each family runs is picked at run time
  from one CPU probe (``_cpu_features.h``, ``__builtin_cpu_supports``), held in ``_support``.
- OpenMP: a tiny OpenMP program is compiled and linked with the compiler's flag; if that fails,
  or ``TGA_NO_OPENMP=1``, we warn once and build single-threaded (``prange`` runs serially).
- ``TGA_CYTHON_DEBUG=1`` turns Cython's ``boundscheck``, ``wraparound`` and
  ``initializedcheck`` on, and glibc's checked string/memory functions
  (``-D_FORTIFY_SOURCE=2``) and the stack protector in the C.
- ``TGA_SANITIZE=address,undefined`` (any of address, undefined, leak) compiles and links with
  ``-fsanitize=...`` (and frame pointers, debug info); python must then run with the sanitizer
  runtime preloaded: ``tests/kernels/sanitized.py`` builds a copy that way and runs the kernel
  tests under it. Changing either switch needs ``build_ext --force``.

Works for ``pip install .``, ``pip install -e .`` and ``python setup.py build_ext --inplace``.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import warnings

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

OPENMP_PROBE = textwrap.dedent(
    """
    #include <omp.h>
    #include <stdio.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel reduction(+:n)
        n += 1;
        printf("%d\\n", n > 0 && omp_get_max_threads() > 0);
        return 0;
    }
    """
)


def _env_flag(name):
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no", "off")


SANITIZERS = ("address", "undefined", "leak")


def _sanitize_flags():
    """-fsanitize flags from $TGA_SANITIZE (comma-separated), [] when unset."""
    names = [n.strip() for n in os.environ.get("TGA_SANITIZE", "").split(",") if n.strip()]
    bad = [n for n in names if n not in SANITIZERS]
    if bad:
        sys.exit(f"setup.py: TGA_SANITIZE: unknown sanitizer {bad[0]!r}; choose from "
                 f"{', '.join(SANITIZERS)}")
    if not names:
        return []
    return [f"-fsanitize={','.join(names)}", "-fno-omit-frame-pointer", "-g"]


def _debug_c_flags():
    """C checks of the TGA_CYTHON_DEBUG build: glibc's fortified calls, the stack protector."""
    if not _env_flag("TGA_CYTHON_DEBUG"):
        return []
    return ["-D_FORTIFY_SOURCE=2", "-fstack-protector-strong"]


def _openmp_flag_candidates(compiler):
    """(compile args, link args) to try, in order, for this compiler."""
    if compiler.compiler_type == "msvc":
        return [(["/openmp"], [])]
    candidates = [(["-fopenmp"], ["-fopenmp"])]
    if sys.platform == "darwin":  # Apple clang: preprocessor route with Homebrew's libomp
        candidates.append((["-Xpreprocessor", "-fopenmp"], ["-lomp"]))
    return candidates


def _probe_openmp(compiler):
    """Compile, link and run a tiny OpenMP program; return working flags or None."""
    for compile_args, link_args in _openmp_flag_candidates(compiler):
        tmp = tempfile.mkdtemp(prefix="tga_omp_probe_")
        try:
            src = os.path.join(tmp, "probe.c")
            with open(src, "w") as f:
                f.write(OPENMP_PROBE)
            objects = compiler.compile([src], output_dir=tmp, extra_postargs=compile_args)
            exe = os.path.join(tmp, "probe")
            compiler.link_executable(objects, exe, extra_postargs=link_args)
            if compiler.exe_extension:
                exe += compiler.exe_extension
            out = subprocess.run([exe], capture_output=True, text=True, timeout=60)
            if out.returncode == 0 and out.stdout.strip() == "1":
                return compile_args, link_args
        except Exception:  # compile, link or run failed: try the next flag
            pass
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return None


class BuildExt(build_ext):
    """build_ext that probes OpenMP with the real compiler and sets per-compiler flags."""

    def build_extensions(self):
        is_msvc = self.compiler.compiler_type == "msvc"
        opt_args = ["/O2"] if is_msvc else ["-O3"]
        omp = None
        if _env_flag("TGA_NO_OPENMP"):
            warnings.warn("tinygradattn: TGA_NO_OPENMP=1, building _core without OpenMP "
                          "(kernels run on one thread)", stacklevel=1)
        else:
            omp = _probe_openmp(self.compiler)
            if omp is None:
                warnings.warn("tinygradattn: the compiler cannot build OpenMP code, building "
                              "_core without OpenMP (kernels run on one thread)", stacklevel=1)
        checks = [] if is_msvc else _debug_c_flags() + _sanitize_flags()
        for ext in self.extensions:
            ext.extra_compile_args = opt_args + list(ext.extra_compile_args) + checks
            ext.extra_link_args = list(ext.extra_link_args) + [
                f for f in checks if f.startswith("-fsanitize")]
            if omp is not None:
                ext.extra_compile_args += omp[0]
                ext.extra_link_args = list(ext.extra_link_args) + omp[1]
        super().build_extensions()


def _cython_flags_changed(debug):
    """True when the debug switch differs from the last build (so the C must be regenerated).

    The directives are not part of cythonize's timestamp check; a stamp file remembers them.
    """
    stamp = os.path.join("build", "tga_cython_debug.stamp")
    want = "1" if debug else "0"
    try:
        with open(stamp) as f:
            changed = f.read().strip() != want
    except OSError:
        changed = True
    os.makedirs("build", exist_ok=True)
    with open(stamp, "w") as f:
        f.write(want)
    return changed


def _extensions():
    """One extension per ``tinygradattn/_*.pyx`` kernel family (_core, and those beside it)."""
    debug = _env_flag("TGA_CYTHON_DEBUG")
    here = os.path.dirname(os.path.abspath(__file__))
    sources = sorted(f for f in os.listdir(os.path.join(here, "tinygradattn"))
                     if f.startswith("_") and f.endswith(".pyx"))
    headers = sorted("tinygradattn/" + f for f in os.listdir(os.path.join(here, "tinygradattn"))
                     if f.endswith((".h", ".pxd")))
    exts = [
        Extension(
            "tinygradattn." + src[:-4],
            sources=["tinygradattn/" + src],
            depends=headers,              # a kernel header or .pxd change rebuilds every module
            include_dirs=[np.get_include(), "tinygradattn"],
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        )
        for src in sources
    ]
    directives = {
        "language_level": 3,
        "boundscheck": debug,
        "wraparound": debug,
        "cdivision": True,
        "initializedcheck": debug,
    }
    return cythonize(exts, compiler_directives=directives, force=_cython_flags_changed(debug),
                     quiet=True)


setup(ext_modules=_extensions(), cmdclass={"build_ext": BuildExt})
