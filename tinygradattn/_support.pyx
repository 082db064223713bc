# cython: language_level=3, cdivision=True
# NOTE: boundscheck / wraparound / initializedcheck are set by setup.py (off, or on with
# TGA_CYTHON_DEBUG=1); a file-level directive here would override the debug build.
"""The kernel support layer's state: thread count and ISA per family, in one place.

Every kernel module cimports _support.pxd; this module holds the process-wide state those
declarations reach, so nothing is copied between modules:

    threads   openmp_enabled, effective_n_threads, set_num_threads
              effective_n_threads() = set_num_threads(n)  if set
                                    = $OMP_NUM_THREADS     if set (read at call time)
                                    = omp_get_max_threads()
                                    = 1                    when built without OpenMP
    ISA       FAMILIES, isas(family), isa(family), set_isa(family, name): the instruction set
              each kernel family runs (levels of _cpu_features.h), read by the kernel modules
              at each call with isa_level(); set at import from $TGA_ISA_<FAMILY> or $TGA_ISA.
              The public face is tinygradattn.backend.isa.
    checks    check_arrays / check_fail (numpy arrays, one float dtype, shapes, C order),
              check_dtypes, check_out, check_same_or_apart, check_apart, check_strided.

    The overlap rule every kernel applies (check_apart): an output may not overlap another
    output, nor any input, except that it may be the very same array as an input the kernel
    documents as safe to alias (an elementwise or row kernel that reads each element before
    writing it). Any other overlap raises ValueError naming both arrays.
"""

import math
import numbers
import os

import numpy as np

cimport numpy as cnp
from libc.stdlib cimport atoi, getenv

cnp.import_array()


# ==============================================================================================
# threads
# ==============================================================================================

cdef int _n_threads_override = 0    # 0: not set


def openmp_enabled():
    """True when the extensions were built with OpenMP (otherwise every kernel is serial)."""
    return bool(tga_openmp_enabled())


def set_num_threads(n):
    """Threads used by kernels called with ``n_threads < 1``; ``None`` or 0 resets."""
    global _n_threads_override
    if n is None:
        _n_threads_override = 0
        return
    n = int(n)
    if n < 0:
        raise ValueError(f"set_num_threads: n must be >= 1 (or 0/None to reset), got {n}")
    _n_threads_override = n


cdef int default_n_threads() noexcept nogil:
    """effective_n_threads() for the kernels. Called before every kernel launch, so it reads
    the environment with C's getenv (which sees os.environ changes) rather than through
    Python's os.environ, which would cost more than many small kernels."""
    cdef const char *env
    cdef int n
    if not tga_openmp_enabled():
        return 1
    if _n_threads_override > 0:
        return _n_threads_override
    env = getenv("OMP_NUM_THREADS")
    if env != NULL:
        n = atoi(env)                   # "4" -> 4, "4,2" (nested levels) -> 4, junk -> 0
        if n > 0:
            return n
    n = tga_omp_max_threads()
    return n if n > 1 else 1


def effective_n_threads():
    """Threads a kernel uses by default: set_num_threads, else OMP_NUM_THREADS, else OpenMP's."""
    return default_n_threads()


# ==============================================================================================
# ISA per kernel family
#
#   _levels[family] = TGA_ISA_GENERIC (0) | TGA_ISA_AVX2 (1) | TGA_ISA_AVX512 (2)
#
# Every family compiles all three levels (x86-64, gcc/clang; generic only elsewhere), so the
# levels a family may run are the ones the CPU runs. A kernel module reads its family's level
# at each call (isa_level, a load) and picks its own table of that level.
# ==============================================================================================

FAMILIES = ("gemm", "rows", "attention", "optim")     # index = FAMILY_* of _support.pxd

cdef int _levels[N_FAMILIES]


cdef int isa_level(int family) noexcept nogil:
    return _levels[family]


cdef int _family_index(str fn, family) except -1:
    if family not in FAMILIES:
        raise ValueError(f"{fn}: unknown kernel family {family!r}; families: {list(FAMILIES)}")
    return FAMILIES.index(family)


def isas(family):
    """The ISAs this CPU runs for `family`, fastest first (the last is always "generic")."""
    _family_index("isas", family)
    return [tga_isa_names[lv].decode() for lv in range(TGA_N_ISA_LEVELS - 1, -1, -1)
            if tga_cpu_supports_isa(lv)]


def isa(family):
    """The ISA `family` runs now."""
    return tga_isa_names[_levels[_family_index("isa", family)]].decode()


def set_isa(family, name="auto"):
    """Run `family` with ISA `name` ("auto": the fastest this CPU runs); returns the ISA.

    Raises ValueError for an unknown family or an ISA this CPU cannot run.
    """
    cdef int f = _family_index("set_isa", family)
    cdef int lv
    if name == "auto":
        lv = TGA_N_ISA_LEVELS - 1
        while lv > 0 and not tga_cpu_supports_isa(lv):
            lv -= 1
        _levels[f] = lv
        return isa(family)
    for lv in range(TGA_N_ISA_LEVELS):
        if tga_isa_names[lv].decode() == name and tga_cpu_supports_isa(lv):
            _levels[f] = lv
            return isa(family)
    raise ValueError(f"set_isa: this CPU cannot run {name!r} for {family}; supported: "
                     f"{isas(family)} or 'auto'")


def _isa_from_environment():
    """$TGA_ISA_<FAMILY>, else $TGA_ISA, else "auto", for each family (at import)."""
    for family in FAMILIES:
        var = f"TGA_ISA_{family.upper()}"
        name = os.environ.get(var, "").strip() or os.environ.get("TGA_ISA", "").strip()
        try:
            set_isa(family, name or "auto")
        except ValueError as e:
            source = var if os.environ.get(var, "").strip() else "TGA_ISA"
            raise ValueError(f"${source}: {e}") from None


_isa_from_environment()


# ==============================================================================================
# checks
# ==============================================================================================

cdef tuple _FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
cdef object _F32 = np.dtype(np.float32), _F64 = np.dtype(np.float64)


cdef object check_arrays(str fn, tuple names, tuple arrays, tuple shapes, int n_out):
    """numpy arrays, one float dtype, the given shapes, C-contiguous; the first n_out writable.

    shapes[k] is a tuple of ints for arrays[k]. Returns the common dtype. The loop only tests,
    with the numpy C API (no Python attribute lookups); the messages are built by check_fail once
    something is off.
    """
    cdef Py_ssize_t k, d, n = len(arrays)
    cdef cnp.ndarray arr
    cdef int t = -1
    cdef tuple shape
    for k in range(n):
        if type(arrays[k]) is not np.ndarray:
            return check_fail(fn, names, arrays, shapes, n_out)
        arr = <cnp.ndarray>arrays[k]
        if k == 0:
            t = cnp.PyArray_TYPE(arr)
            if t != cnp.NPY_FLOAT and t != cnp.NPY_DOUBLE:
                return check_fail(fn, names, arrays, shapes, n_out)
        shape = <tuple>shapes[k]
        if (cnp.PyArray_TYPE(arr) != t or not cnp.PyArray_ISNOTSWAPPED(arr)
                or cnp.PyArray_NDIM(arr) != len(shape) or not cnp.PyArray_IS_C_CONTIGUOUS(arr)
                or (k < n_out and not cnp.PyArray_ISWRITEABLE(arr))):
            return check_fail(fn, names, arrays, shapes, n_out)
        for d in range(len(shape)):
            if cnp.PyArray_DIMS(arr)[d] != <Py_ssize_t>shape[d]:
                return check_fail(fn, names, arrays, shapes, n_out)
    return _F32 if t == cnp.NPY_FLOAT else _F64


cdef object check_fail(str fn, tuple names, tuple arrays, tuple shapes, int n_out,
                       bint c_order=True):
    """The error check_arrays found, with the message naming the arrays at fault.

    Also a check of its own for strided operands (c_order False: any strides). Returns the
    common dtype when nothing is wrong.
    """
    dtype = check_dtypes(fn, names, arrays)
    for name, arr, shape in zip(names, arrays, shapes):
        if arr.shape != shape:
            listed = ", ".join(f"{n} {a.shape}" for n, a in zip(names, arrays))
            raise ValueError(f"{fn}: {name} has shape {arr.shape}, expected {shape} ({listed})")
        if c_order and not arr.flags.c_contiguous:
            raise ValueError(f"{fn}: {name} {arr.shape} must be C-contiguous (strides "
                             f"{arr.strides})")
    for name, arr in zip(names[:n_out], arrays[:n_out]):
        if not arr.flags.writeable:
            raise ValueError(f"{fn}: {name} {arr.shape} is read-only")
    return dtype


cdef object check_strided(str fn, tuple names, tuple arrays, tuple shapes):
    """numpy arrays of one float dtype and the given shapes, any strides; returns the dtype."""
    return check_fail(fn, names, arrays, shapes, 0, False)


cdef object check_dtypes(str fn, tuple names, tuple arrays):
    """numpy arrays of one float dtype (float32 or float64); returns it."""
    for name, arr in zip(names, arrays):
        if not isinstance(arr, np.ndarray):
            raise TypeError(f"{fn}: {name} must be a numpy.ndarray, got {type(arr).__name__}")
    dtype = arrays[0].dtype
    if dtype not in _FLOAT_DTYPES or any(a.dtype != dtype for a in arrays):
        listed = ", ".join(f"{n} {a.dtype}" for n, a in zip(names, arrays))
        raise TypeError(f"{fn}: all arrays must have the same dtype, float32 or float64; got "
                        f"{listed}")
    return dtype


cdef object check_out(str fn, str name, object out):
    """out C-contiguous and writable."""
    if not out.flags.c_contiguous:
        raise ValueError(f"{fn}: {name} {out.shape} must be C-contiguous (strides "
                         f"{out.strides})")
    if not out.flags.writeable:
        raise ValueError(f"{fn}: {name} {out.shape} is read-only")


cdef object check_same_or_apart(str fn, str out_name, object out, str name, object arr):
    """An elementwise kernel's out may be arr itself (each element read before it is
    written), or memory apart from it; a partial overlap would read written elements."""
    if bounds_meet(out, arr) and not _same_array(out, arr):
        raise ValueError(f"{fn}: {out_name} partially overlaps {name}; pass the same array "
                         f"for in-place use or separate arrays")


cdef bint _same_array(cnp.ndarray a, cnp.ndarray b) noexcept:
    """Whether a and b are the very same elements: one data pointer, shape and strides."""
    cdef int d, nd = cnp.PyArray_NDIM(a)
    if (cnp.PyArray_DATA(a) != cnp.PyArray_DATA(b) or cnp.PyArray_NDIM(b) != nd
            or cnp.PyArray_ITEMSIZE(a) != cnp.PyArray_ITEMSIZE(b)):
        return False
    for d in range(nd):
        if (cnp.PyArray_DIMS(a)[d] != cnp.PyArray_DIMS(b)[d]
                or cnp.PyArray_STRIDES(a)[d] != cnp.PyArray_STRIDES(b)[d]):
            return False
    return True


cdef object check_apart(str fn, tuple out_names, tuple outs, tuple in_names, tuple ins,
                        tuple may_alias=()):
    """The overlap rule of every kernel that writes outputs (raises ValueError).

    outs / ins: numpy arrays (None entries skipped), already checked to be arrays. An output
    may not share memory with another output, nor with an input, unless (out name, in name) is
    in may_alias and the two are the very same array (in-place use the kernel documents as
    safe); a partial overlap of such a pair gets the message of check_same_or_apart.
    """
    cdef Py_ssize_t i, j
    for i in range(len(outs)):
        out = outs[i]
        if out is None:
            continue
        for j in range(i + 1, len(outs)):
            other = outs[j]
            if other is not None and bounds_meet(out, other):
                raise ValueError(f"{fn}: output {out_names[i]} {out.shape} overlaps output "
                                 f"{out_names[j]} {other.shape}; pass separate arrays")
        for j in range(len(ins)):
            arr = ins[j]
            if arr is None or not bounds_meet(out, arr):
                continue
            if (out_names[i], in_names[j]) in may_alias:
                if not _same_array(out, arr):
                    raise ValueError(f"{fn}: {out_names[i]} partially overlaps {in_names[j]}; "
                                     f"pass the same array for in-place use or separate arrays")
            else:
                raise ValueError(f"{fn}: output {out_names[i]} {out.shape} overlaps input "
                                 f"{in_names[j]} {arr.shape}; pass separate arrays")



cdef object tuning_value(str fn, str name, object value, double lo, double hi, bint integer):
    """A _set_tuning argument checked: a real number (an integer if asked) in [lo, hi], else
    ValueError naming it. Returns it as int or float, so no setting can reach a kernel as a
    zero tile or a NaN threshold."""
    ok = (isinstance(value, numbers.Real) and not isinstance(value, bool)
          and math.isfinite(value) and lo <= value <= hi
          and (not integer or isinstance(value, numbers.Integral) or float(value).is_integer()))
    if not ok:
        kind = "an integer" if integer else "a number"
        raise ValueError(f"{fn}: {name} must be {kind} in [{lo:g}, {hi:g}], got {value!r}")
    return int(value) if integer else float(value)
