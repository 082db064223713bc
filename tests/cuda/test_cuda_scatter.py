"""CUDA gather / scatter along a dim (tinygradattn/cuda/scatter.py) against the CPU backend:
every dtype, each dim, indexes smaller than the operand, non-contiguous operands and
broadcast (stride 0) indexes, repeated targets accumulating, more elements than the
simulator's grid (the grid-stride loop), the device error word; plus nonzero. Runs in
numba's CUDA simulator (tests/conftest.py): sizes stay tiny.
"""
import numpy as np
import pytest

from tinygradattn.backend import get_backend
from tinygradattn.cuda import driver

cuda = get_backend("cuda")
cpu = get_backend("cpu")

DTYPES = [np.float32, np.float64, np.int64, np.bool_]
ADDABLE = [np.float32, np.float64, np.int64]


def data(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype) == np.bool_:
        return rng.random(shape) > 0.5
    return (rng.standard_normal(shape) * 10).astype(dtype)


def index_for(x_shape, index_shape, dim, seed=1):
    return np.random.default_rng(seed).integers(0, x_shape[dim], index_shape)


def transposed(x):
    """x on the device as a permuted view of a contiguous copy of x.T."""
    axes = tuple(reversed(range(x.ndim)))
    return cuda.permute(cuda.from_host(np.ascontiguousarray(np.transpose(x, axes))), axes)


# (x shape, index shape, dim): index smaller than x apart from dim, 1 to 3 dims; the last one
# has more elements than the simulator's grid (2 blocks of 16 threads)
CASES = [((7,), (5,), 0), ((3, 4), (3, 6), 1), ((4, 3), (2, 2), 0), ((2, 3, 5), (2, 2, 4), 2),
         ((2, 3, 5), (2, 3, 1), 1), ((5, 9), (4, 9), 0)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape,i_shape,dim", CASES)
def test_gather_matches_cpu(dtype, x_shape, i_shape, dim):
    x, idx = data(x_shape, dtype), index_for(x_shape, i_shape, dim)
    got = cuda.to_host(cuda.gather(cuda.from_host(x), dim, cuda.from_host(idx)))
    np.testing.assert_array_equal(got, cpu.gather(x, dim, idx))
    assert got.dtype == x.dtype and got.shape == idx.shape


def test_gather_reads_transposed_x_and_a_broadcast_index():
    x = data((6, 4), np.float32)                                   # strides of a transpose
    idx = np.array([[5], [0], [5]])                                # (3, 1), broadcast to (3, 4)
    want = cpu.gather(x, 0, np.broadcast_to(idx, (3, 4)))
    dev_idx = cuda.broadcast_to(cuda.from_host(idx), (3, 4))       # stride 0 along dim 1
    got = cuda.to_host(cuda.gather(transposed(x), 0, dev_idx))
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape,i_shape,dim", CASES[:4])
def test_scatter_matches_cpu_without_repeats(dtype, x_shape, i_shape, dim):
    x = data(x_shape, dtype)
    n = x_shape[dim]
    i_shape = tuple(min(m, n) if d == dim else m for d, m in enumerate(i_shape))
    rng = np.random.default_rng(2)
    idx = np.moveaxis(np.apply_along_axis(lambda r: rng.permutation(n)[:len(r)], -1,
                                          np.moveaxis(np.zeros(i_shape, np.int64), dim, -1)),
                      -1, dim)                                     # distinct along dim
    src = data(tuple(m + 1 for m in i_shape), dtype, seed=3)       # larger than index
    want, dst = x.copy(), cuda.from_host(x)
    cpu.scatter(want, dim, idx, src, None)
    cuda.scatter(dst, dim, cuda.from_host(idx), cuda.from_host(src), None)
    np.testing.assert_array_equal(cuda.to_host(dst), want)


@pytest.mark.parametrize("dtype", ADDABLE)
@pytest.mark.parametrize("x_shape,i_shape,dim", CASES)
def test_scatter_add_accumulates_repeats(dtype, x_shape, i_shape, dim):
    x, idx = data(x_shape, dtype), index_for(x_shape, i_shape, dim)
    src = data(i_shape, dtype, seed=4)
    want, dst = x.copy(), cuda.from_host(x)
    cpu.scatter(want, dim, idx, src, "add")
    cuda.scatter(dst, dim, cuda.from_host(idx), cuda.from_host(src), "add")
    got = cuda.to_host(dst)
    if dtype == np.int64:
        np.testing.assert_array_equal(got, want)
    else:       # the atomics' order is the hardware's: rounding may differ in the last place
        np.testing.assert_allclose(got, want, rtol=1e-5 if dtype == np.float32 else 1e-12)


def test_scatter_a_number_into_a_view_with_an_offset():
    x = data((3, 8), np.float64)
    want = x.copy()
    idx = np.array([[2, 0], [1, 1], [0, 3]])
    cpu.scatter(want[:, 3:7], 1, idx, -1.5, None)
    dst = cuda.from_host(x)
    cuda.scatter(cuda.getitem(dst, (slice(None), slice(3, 7))), 1, cuda.from_host(idx), -1.5,
                 None)
    np.testing.assert_array_equal(cuda.to_host(dst), want)


def test_scatter_add_casts_src_and_skips_empty_index():
    dst = cuda.from_host(np.zeros((2, 3)))
    cuda.scatter(dst, 0, cuda.from_host(np.array([[1, 1, 0]])),
                 cuda.from_host(np.ones((1, 3), np.float32)), "add")
    np.testing.assert_array_equal(cuda.to_host(dst), [[0, 0, 1], [1, 1, 0]])
    cuda.scatter(dst, 1, cuda.from_host(np.zeros((2, 0), np.int64)), 5.0, None)
    np.testing.assert_array_equal(cuda.to_host(dst), [[0, 0, 1], [1, 1, 0]])


@pytest.mark.parametrize("bad", [3, -1])
def test_out_of_range_index_sets_the_error_word(bad):
    x = cuda.from_host(np.zeros((2, 3)))
    idx = cuda.from_host(np.array([[0, bad]]))
    for run in (lambda: cuda.gather(x, 1, idx), lambda: cuda.scatter(x, 1, idx, 1.0, None),
                lambda: cuda.scatter(x, 1, idx, 1.0, "add")):
        run()
        with pytest.raises(RuntimeError, match="out of bounds for dimension 1 with size 3"):
            driver.raise_pending()
        driver.raise_pending()                          # cleared: nothing raised twice
    with pytest.raises(RuntimeError, match="index 3 is out of bounds for dimension 1"):
        cpu.gather(np.zeros((2, 3)), 1, np.array([[3]]))


def test_shape_checks():
    x = cuda.from_host(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="larger than the operand"):
        cuda.gather(x, 1, cuda.from_host(np.zeros((3, 1), np.int64)))
    with pytest.raises(ValueError, match="one rank"):
        cuda.gather(x, 1, cuda.from_host(np.zeros((3,), np.int64)))
    with pytest.raises(TypeError, match="int64"):
        cuda.gather(x, 1, cuda.from_host(np.zeros((1, 1), np.float32)))
    with pytest.raises(TypeError, match="float32, float64 or int64"):
        cuda.scatter(cuda.from_host(np.zeros(3, bool)), 0, cuda.from_host(np.zeros(1, np.int64)),
                     True, "add")


@pytest.mark.parametrize("dtype", DTYPES)
def test_nonzero_matches_cpu(dtype):
    x = data((3, 5), dtype)
    if dtype != np.bool_:
        x[x < 0] = 0
    got = cuda.to_host(cuda.nonzero(cuda.from_host(x)))
    np.testing.assert_array_equal(got, cpu.nonzero(x))
    assert got.dtype == np.int64 and got.shape[0] == 2
