"""The CUDA reductions (tinygradattn/cuda/reduce.py) against the CPU backend, in numba's CUDA
simulator (tests/conftest.py): sum / max / min over every axis subset with keepdims both ways,
argmax / argmin, sum_to_shape and foreach_norm; odd shapes, every dtype the CPU takes,
transposed / sliced / broadcast inputs read in place, both the one-pass and the two-pass path
(the simulator's sizes are tiny: 32 threads a block, a lane folds 2 elements before a cut).

Tolerances: float32 sums round differently from numpy's pairwise sum, so a sum's error is
bounded relative to sum(|x|) (rtol 1e-5 for float32, 1e-12 for float64); max, min, argmax,
integer and bool results are exact.
"""
import itertools
import math

import numpy as np
import pytest

from tinygradattn.backend import get_backend
from tinygradattn.cuda import driver, launch, views
from tinygradattn.cuda import reduce as R

cuda = get_backend("cuda")
cpu = get_backend("cpu")

RTOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}


def data(shape, dtype, rng):
    """Values of dtype with ties for max / argmax (small integers in floats too)."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return rng.random(shape) < 0.4
    if dtype.kind == "i":
        return rng.integers(-5, 6, size=shape).astype(dtype)
    return np.asarray(rng.standard_normal(shape), dtype=dtype)


def to_dev(x):
    """x on the device. NOTE: a 0-d array goes up as (1,) and is reshaped: array.from_host
    (np.ascontiguousarray) turns a 0-d array into shape (1,)."""
    x = np.asarray(x)
    return cuda.from_host(x) if x.ndim else cuda.reshape(cuda.from_host(x.reshape(1)), ())


def layouts(x):
    """(name, numpy view, cuda view of the same values) for x laid out contiguous, transposed
    (a permuted view of a contiguous buffer), sliced (every other element of a larger
    buffer) and broadcast (stride 0 along the first axis)."""
    out = [("contiguous", x, to_dev(x))]
    if x.ndim >= 2:
        base = np.ascontiguousarray(np.transpose(x))                 # x's transpose, dense
        perm = tuple(reversed(range(x.ndim)))
        out.append(("transposed", np.transpose(base), views.permute(cuda.from_host(base), perm)))
    if x.ndim >= 1:
        big = np.zeros(x.shape[:-1] + (2 * x.shape[-1] + 1,), x.dtype)
        big[..., 1::2] = x
        index = (Ellipsis, slice(1, None, 2))
        out.append(("sliced", big[index], views.basic_getitem(cuda.from_host(big), index)))
        row = x[:1]
        out.append(("broadcast", np.broadcast_to(row, x.shape),
                    cuda.broadcast_to(cuda.from_host(np.ascontiguousarray(row)), x.shape)))
    return out


def check(op, got, want, x):
    """got (a cuda array) equals want (the CPU's) in shape, dtype and value."""
    got = cuda.to_host(got)
    want = np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype, (
        f"{op}: got {got.shape} {got.dtype}, want {want.shape} {want.dtype}")
    if op.startswith("sum") and want.dtype.kind == "f":
        x = np.abs(x.astype(np.float64))
        scale = np.sum(x[np.isfinite(x)])
        tol = RTOL[want.dtype] * max(float(scale), 1.0)
        np.testing.assert_allclose(got, want, rtol=0, atol=tol, err_msg=op)
    else:
        np.testing.assert_array_equal(got, want, err_msg=op)


def subsets(ndim):
    dims = range(ndim)
    return [None] + [c for k in range(ndim + 1) for c in itertools.combinations(dims, k)]


# ---- sum / max / min -------------------------------------------------------------------------
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("op", ["sum", "max", "min"])
def test_every_axis_subset_of_a_3d_array(op, keepdims):
    x = data((2, 3, 4), np.float32, np.random.default_rng(1))
    dx = cuda.from_host(x)
    for axis in subsets(3):
        check(op, getattr(cuda, op)(dx, axis, keepdims), getattr(cpu, op)(x, axis, keepdims), x)


@pytest.mark.parametrize("dtype", [np.float64, np.int64, np.bool_])
@pytest.mark.parametrize("op", ["sum", "max", "min"])
def test_dtypes_follow_numpy(op, dtype):
    """sum of int64 is int64, of bool int64 (np.add.reduce's rule); max / min keep the dtype."""
    x = data((3, 5), dtype, np.random.default_rng(2))
    dx = cuda.from_host(x)
    for axis, keepdims in [(None, False), ((0,), True), ((1,), False), ((), False)]:
        check(op, getattr(cuda, op)(dx, axis, keepdims), getattr(cpu, op)(x, axis, keepdims), x)


@pytest.mark.parametrize("shape", [(), (1,), (7,), (1, 1)])
def test_tiny_shapes(shape):
    x = data(shape, np.float32, np.random.default_rng(3))
    dx = to_dev(x)
    for op in ("sum", "max", "min"):
        for axis in subsets(len(shape)):
            check(op, getattr(cuda, op)(dx, axis, True), getattr(cpu, op)(x, axis, True), x)


@pytest.mark.parametrize("dtype", [np.float32, np.int64])
def test_non_contiguous_inputs_are_read_in_place(dtype):
    x = data((3, 5), dtype, np.random.default_rng(4))
    for name, hx, dx in layouts(x):
        for op, axis in [("sum", None), ("sum", (0,)), ("max", (1,)), ("min", (0, 1))]:
            check(f"{op} {name}", getattr(cuda, op)(dx, axis, False),
                  getattr(cpu, op)(hx, axis, False), hx)


def test_3d_layouts_over_every_axis_subset():
    """Reduced dims that do not merge (a transposed view over (0, 2)) take the strided index
    path; kept dims that do not merge index their outputs the same way."""
    x = data((2, 3, 5), np.float64, np.random.default_rng(5))
    for name, hx, dx in layouts(x):
        for i, axis in enumerate(subsets(3)):
            for op in ("sum", "max"):
                check(f"{op} {name}", getattr(cuda, op)(dx, axis, i % 2 == 0),
                      getattr(cpu, op)(hx, axis, i % 2 == 0), hx)


@pytest.mark.parametrize("shape, axis", [((150,), None), ((5, 130), (1,)), ((130, 5), (0,)),
                                         ((130, 5), (1,))])
def test_larger_reductions_take_the_two_pass_and_column_paths(shape, axis):
    """A full sum of 150 elements cuts its range into chunks over several blocks, then folds
    the partials; (130, 5) over axis 0 has neighbouring threads own neighbouring columns
    (and two passes too); over axis 1, groups of 8 lanes, 4 rows a block."""
    x = data(shape, np.float32, np.random.default_rng(6)) * np.float32(100)
    dx = cuda.from_host(x)
    check("sum", cuda.sum(dx, axis, False), cpu.sum(x, axis, False), x)
    check("max", cuda.max(dx, axis, False), cpu.max(x, axis, False), x)
    check("argmin", cuda.argmin(dx, None if axis is None else axis[0], False),
          cpu.argmin(x, None if axis is None else axis[0], False), x)


def test_nan_propagates_through_max_and_min():
    x = data((4, 6), np.float32, np.random.default_rng(7))
    x[1, 3] = np.nan
    x[2, 0] = np.inf
    dx = cuda.from_host(x)
    for op in ("max", "min", "sum"):
        for axis in (None, (0,), (1,)):
            check(op, getattr(cuda, op)(dx, axis, False), getattr(cpu, op)(x, axis, False), x)


def test_empty_arrays():
    for shape, axis in [((0, 3), (0,)), ((3, 0), (1,)), ((0, 3), (1,)), ((0,), None),
                        ((2, 0), ())]:
        x = np.zeros(shape, np.float32)
        check("sum", cuda.sum(cuda.from_host(x), axis, False), cpu.sum(x, axis, False), x)
    x = np.zeros((0, 3), np.float32)
    check("max", cuda.max(cuda.from_host(x), (1,), True), cpu.max(x, (1,), True), x)


@pytest.mark.parametrize("op, name", [("max", "maximum"), ("min", "minimum")])
def test_max_over_an_empty_axis_raises_like_numpy(op, name):
    for shape, axis in [((0, 3), (0,)), ((0,), None), ((0, 0), (0,))]:
        with pytest.raises(ValueError, match=f"zero-size array to reduction operation {name} "
                                             "which has no identity"):
            getattr(cuda, op)(cuda.from_host(np.zeros(shape, np.float32)), axis, False)


def test_bad_axes_raise_numpy_errors():
    dx = cuda.from_host(np.zeros((2, 3), np.float32))
    with pytest.raises(np.exceptions.AxisError, match="axis 2 is out of bounds"):
        cuda.sum(dx, (2,), False)
    with pytest.raises(ValueError, match="duplicate value in 'axis'"):
        cuda.sum(dx, (0, 0), False)
    with pytest.raises(np.exceptions.AxisError):
        cuda.argmax(dx, 2, False)


def test_reductions_stay_on_the_device():
    dx = cuda.from_host(np.ones((3, 4), np.float32))
    before = dict(driver.COPIES)
    out = cuda.sum(cuda.max(dx, (1,), True), None, False)
    norms = cuda.foreach_norm([dx, out], 2.0)
    cuda.argmax(dx, 0, False)
    assert driver.COPIES == before
    assert float(cuda.to_host(norms[1])) == 3.0


# ---- argmax / argmin -------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.bool_])
@pytest.mark.parametrize("kind", ["argmax", "argmin"])
def test_arg_reductions_first_index_of_ties(kind, dtype):
    x = data((3, 4, 5), dtype, np.random.default_rng(8))   # few distinct values: many ties
    dx = cuda.from_host(x)
    for axis, keepdims in [(None, False), (None, True), (0, True), (1, False), (2, True)]:
        got = getattr(cuda, kind)(dx, axis, keepdims)
        check(kind, got, getattr(cpu, kind)(x, axis, keepdims), x)


@pytest.mark.parametrize("kind", ["argmax", "argmin"])
def test_arg_reductions_nan_and_layouts(kind):
    x = data((4, 9), np.float64, np.random.default_rng(9))
    x[1, 5] = x[1, 7] = np.nan                 # the first NaN is the argmax and the argmin
    x[3, :] = 2.0                              # all ties: index 0
    for name, hx, dx in layouts(x):
        for axis in (None, 0, 1):
            check(f"{kind} {name}", getattr(cuda, kind)(dx, axis, False),
                  getattr(cpu, kind)(hx, axis, False), hx)


def test_arg_reductions_tiny_and_empty():
    for shape in [(), (1,), (7,)]:
        x = data(shape, np.float32, np.random.default_rng(10))
        for axis in ([None] + list(range(len(shape)))):
            check("argmax", cuda.argmax(to_dev(x), axis, True),
                  cpu.argmax(x, axis, True), x)
    x = np.zeros((2, 0), np.float32)
    check("argmax", cuda.argmax(cuda.from_host(x), 0, False), cpu.argmax(x, 0, False), x)
    for shape, axis in [((0,), None), ((0, 2), 0)]:        # torch's IndexError (issue 16)
        with pytest.raises(IndexError, match="argmin\\(\\): Expected reduction dim"):
            cuda.argmin(cuda.from_host(np.zeros(shape, np.float32)), axis, False)


# ---- sum_to_shape ----------------------------------------------------------------------------
@pytest.mark.parametrize("shape, target", [((2, 3, 4), (3, 4)), ((2, 3, 4), (3, 1)),
                                           ((2, 3, 4), (1, 3, 1)), ((5, 1), (5, 1)),
                                           ((4, 3), ()), ((7,), (1,))])
def test_sum_to_shape(shape, target):
    for dtype in (np.float32, np.bool_):
        x = data(shape, dtype, np.random.default_rng(11))
        check("sum", cuda.sum_to_shape(cuda.from_host(x), target), cpu.sum_to_shape(x, target), x)


def test_sum_to_shape_of_a_broadcast_gradient():
    x = np.arange(3, dtype=np.float32)
    dx = cuda.broadcast_to(cuda.from_host(x), (5, 3))
    check("sum", cuda.sum_to_shape(dx, (3,)), cpu.sum_to_shape(np.broadcast_to(x, (5, 3)), (3,)),
          np.broadcast_to(x, (5, 3)))


# ---- foreach_norm ----------------------------------------------------------------------------
NORM_SHAPES = [(), (1,), (7,), (3, 5), (2, 3, 4), (90,)]


@pytest.mark.parametrize("ord", [2.0, 1.0, math.inf, -math.inf, 0.0, 3.0, 0.5])
def test_foreach_norm_every_order(ord):
    rng = np.random.default_rng(12)
    xs = [data(s, np.float32 if i % 2 else np.float64, rng) for i, s in enumerate(NORM_SHAPES)]
    xs[3][1, 2] = 0.0                          # a zero for ord 0
    got = cuda.foreach_norm([to_dev(x) for x in xs], ord)
    want = cpu.foreach_norm(xs, ord)
    assert len(got) == len(want)
    for x, g, w in zip(xs, got, want):
        g = cuda.to_host(g)
        assert g.shape == () and g.dtype == w.dtype
        np.testing.assert_allclose(g, w, rtol=10 * RTOL[w.dtype], err_msg=f"ord {ord} {x.shape}")


def test_foreach_norm_non_contiguous_and_int():
    x = data((6, 5), np.float32, np.random.default_rng(13))
    arrays = [(hx, dx) for _, hx, dx in layouts(x)]
    ints = data((4, 3), np.int64, np.random.default_rng(14))
    arrays.append((ints, cuda.from_host(ints)))
    for ord in (2.0, math.inf, 1.5):
        got = cuda.foreach_norm([dx for _, dx in arrays], ord)
        want = cpu.foreach_norm([hx for hx, _ in arrays], ord)
        for g, w in zip(got, want):
            g = cuda.to_host(g)
            assert g.dtype == w.dtype
            np.testing.assert_allclose(g, w, rtol=1e-5, err_msg=f"ord {ord}")


def test_foreach_norm_empty_arrays():
    xs = [np.zeros((0,), np.float32), np.ones((3,), np.float32), np.zeros((2, 0), np.float64)]
    for ord in (2.0, 1.0, 0.0, 3.0):
        got = cuda.foreach_norm([cuda.from_host(x) for x in xs], ord)
        for g, w in zip(got, cpu.foreach_norm(xs, ord)):
            np.testing.assert_allclose(cuda.to_host(g), w, rtol=1e-6)
    for ord in (math.inf, -math.inf):
        with pytest.raises(RuntimeError, match=f"cannot compute the {ord} norm of an empty"):
            cuda.foreach_norm([cuda.from_host(x) for x in xs], ord)
    assert cuda.foreach_norm([], 2.0) == []


def test_foreach_norm_nan():
    x = np.array([1.0, np.nan, 3.0], np.float32)
    for ord in (2.0, math.inf, -math.inf, 1.0):
        got = cuda.to_host(cuda.foreach_norm([cuda.from_host(x)], ord)[0])
        assert np.isnan(got) and np.isnan(cpu.foreach_norm([x], ord)[0])


# ---- the GPU's plans (host arithmetic only: nothing is compiled or launched) -----------------
@pytest.fixture
def gpu_tuning(monkeypatch):
    for key, value in launch.GPU_TUNING.items():
        monkeypatch.setitem(launch.tuning(), key, value)


@pytest.mark.parametrize("n_out, n_red, inner", [(1, 10**6, False), (1, 10**8, False),
                                                 (768, 8192, True), (8192, 768, False),
                                                 (10**6, 3, False), (3, 10**6, True)])
def test_gpu_plans_fill_the_device_and_keep_serial_runs_short(gpu_tuning, n_out, n_red, inner):
    """With the GPU's sizes: a lane folds at most reduce_items elements per pass, few outputs
    are cut until reduce_blocks blocks have work, and the chunks cover the range once."""
    tune = launch.tuning()
    plan = R._Plan(n_out, n_red, inner)
    per_block = tune["reduce_threads"] // plan.group
    assert plan.chunk % plan.group == 0
    assert plan.chunk // plan.group <= tune["reduce_items"]
    assert (plan.n_split - 1) * plan.chunk < n_red <= plan.n_split * plan.chunk
    n_busy = -(-n_out * plan.n_split // per_block)
    if n_red >= tune["reduce_threads"] * tune["reduce_min_items"] * tune["reduce_blocks"]:
        assert n_busy >= 0.9 * tune["reduce_blocks"]        # chunks round to whole lane rounds
    assert plan.n_blocks == min(n_busy, tune["reduce_grid"])
