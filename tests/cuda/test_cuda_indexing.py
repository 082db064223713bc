"""CUDA indexing (tinygradattn/cuda/indexing.py) against numpy and the CPU backend: getitem,
setitem, index_add, concatenate; every index kind (ints, slices, None, Ellipsis, integer
arrays on the device or the host, boolean masks), repeated and negative indices, empty
results, non-contiguous inputs, numpy's errors. Runs in numba's CUDA simulator
(tests/conftest.py): sizes stay tiny.
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


def on_device(x, layout="contiguous"):
    """x as a CudaArray: contiguous, transposed (a permuted view of a contiguous copy of
    x.T) or sliced (every other element of a larger array along the last axis)."""
    if layout == "contiguous":
        return cuda.from_host(x)
    if layout == "transposed":
        axes = tuple(reversed(range(x.ndim)))
        return cuda.permute(cuda.from_host(np.ascontiguousarray(np.transpose(x, axes))), axes)
    big = np.zeros(x.shape[:-1] + (2 * x.shape[-1] + 1,), x.dtype)
    big[..., 1::2] = x
    return cuda.getitem(cuda.from_host(big), (Ellipsis, slice(1, None, 2)))


def device_index(index):
    """The index with its numpy arrays on the device."""
    items = index if isinstance(index, tuple) else (index,)
    return tuple(cuda.from_host(i) if isinstance(i, np.ndarray) else i for i in items)


def host_index(index):
    return index if isinstance(index, tuple) else (index,)


A = np.array
B3 = A([True, False, True])
# (x shape, index): every index kind, numpy's placement rules, repeats, negatives, empties
GETITEM_CASES = [
    ((7,), (A([3, 0, -1, 3, 6]),)),                             # repeats and negatives
    ((5, 3), (A([4, 0, 4, -5]),)),                              # an embedding lookup
    ((5, 3), (A([[1, 2], [0, -1]]),)),                          # 2-D index
    ((5, 3), (slice(None), A([2, 0, 2]))),                      # columns
    ((3, 4, 5), (A([0, 2]), A([1, -1]))),                       # two arrays, adjacent
    ((3, 4, 5), (slice(None), A([[0], [3]]), A([1, 2, 4]))),    # broadcast, kept in place
    ((3, 4, 5), (A([1, 2]), slice(None), A([0, 4]))),           # separated: first
    ((3, 4, 5), (0, slice(None), A([1, 2]))),                   # int + array separated
    ((3, 4, 5), (slice(None), 1, A([4, 0]))),                   # int + array adjacent
    ((3, 4, 5), (A([2, 0]), None, A([1, 1]))),                  # None separates
    ((3, 4, 5), (Ellipsis, A([3, 1]))),                         # after an Ellipsis
    ((3, 4, 5), (A([1]), Ellipsis, A([2]))),                    # Ellipsis separates
    ((3, 4, 5), (slice(1, None), A([3, 0, 3]), slice(None, None, -2))),
    ((3, 4, 5), (A(1),)),                                       # 0-d index array
    ((5, 3), (A([], dtype=np.int64),)),                         # empty result
    ((5, 0), (A([1, 2]),)),                                     # empty rows
    ((3, 4), (B3,)),                                            # masks
    ((3, 4), (slice(None), A([True, False, True, True]))),
    ((3, 4), (np.zeros((3, 4), bool),)),                        # all False: empty
    ((3, 4, 2), ((np.arange(12).reshape(3, 4) % 3 == 1),)),     # a 2-D mask
    ((3, 4, 5), (B3, slice(None), A([0, 4]))),                  # mask + array, separated
    ((3, 4, 5), (1, A([True, False, False, True]), A([4, 0]))),
    ((3, 4), (np.True_,)),                                      # 0-d masks
    ((3, 4), (slice(None), np.False_, A([1]))),
]


@pytest.mark.parametrize("dtype", DTYPES)
def test_getitem_matches_numpy_for_every_index_kind(dtype):
    for k, (shape, index) in enumerate(GETITEM_CASES):
        x = data(shape, dtype, k)
        expected = x[index]
        for idx in (device_index(index), host_index(index)):
            got = cuda.to_host(cuda.getitem(on_device(x), idx))
            assert got.shape == expected.shape and got.dtype == expected.dtype, (k, index)
            np.testing.assert_array_equal(got, expected, err_msg=f"case {k}: {index}")


@pytest.mark.parametrize("layout", ["transposed", "sliced"])
def test_getitem_reads_non_contiguous_x_in_place(layout):
    x = data((4, 5, 3), np.float32, 1)
    for index in [(A([3, 0, 3]),), (slice(None), A([4, 1])), (A([1, 2]), slice(None), A([2, 0])),
                  (x[..., 0] > 0,), (Ellipsis, A([2, 2, 0]))]:
        got = cuda.to_host(cuda.getitem(on_device(x, layout), device_index(index)))
        np.testing.assert_array_equal(got, x[index])


def test_basic_index_is_a_view():
    x = data((4, 5), np.float32)
    X = cuda.from_host(x)
    v = cuda.getitem(X, (slice(1, 3), None, -1))
    assert v.block is X.block
    np.testing.assert_array_equal(cuda.to_host(v), x[1:3, None, -1])


def test_int_index_reads_nothing_back_and_mask_reads_its_count_once():
    x = cuda.from_host(data((6, 3), np.float32))
    idx, mask = cuda.from_host(A([5, 0, 5])), cuda.from_host(A([True, False] * 3))
    before = driver.COPIES["device_to_host"]
    cuda.getitem(x, (idx,))
    assert driver.COPIES["device_to_host"] == before
    cuda.getitem(x, (mask,))
    assert driver.COPIES["device_to_host"] == before + 1


def test_mask_coordinates_longer_than_one_scan_block():
    """More chunks than the scan block has threads: runs of chunks per thread."""
    x = data((300,), np.float32, 3)
    mask = x > 0.3
    got = cuda.to_host(cuda.getitem(on_device(x), (cuda.from_host(mask),)))
    np.testing.assert_array_equal(got, x[mask])


def test_getitem_errors_as_numpy():
    x = data((3, 4), np.float32)
    X = cuda.from_host(x)
    with pytest.raises(IndexError, match="index 3 is out of bounds for axis 0 with size 3"):
        cuda.getitem(X, (A([0, 3]),))                      # host index: checked at once
    with pytest.raises(IndexError, match="index -5 is out of bounds for axis 1 with size 4"):
        cuda.getitem(X, (slice(None), A([-5])))
    with pytest.raises(IndexError, match="boolean index did not match"):
        cuda.getitem(X, (cuda.from_host(B3[:2]),))
    with pytest.raises(IndexError, match="shape mismatch"):
        cuda.getitem(X, (A([0, 1]), A([0, 1, 2])))
    with pytest.raises(IndexError, match="too many indices"):
        cuda.getitem(X, (A([0]), 0, 0))
    with pytest.raises(IndexError, match="integer"):
        cuda.getitem(X, (A([0.5]),))
    # a device index: flagged by the kernel, raised at the next host read
    out = cuda.getitem(X, (cuda.from_host(A([1, 3])),))
    with pytest.raises(IndexError, match="out of bounds for axis 0 with size 3"):
        cuda.to_host(out)
    out = cuda.getitem(X, (slice(None), cuda.from_host(A([[0], [-5]]))))      # general kernel
    with pytest.raises(IndexError, match="axis 1 with size 4"):
        cuda.to_host(out)
    cuda.to_host(cuda.getitem(X, (cuda.from_host(A([-3, 2])),)))             # cleared, in range


@pytest.mark.parametrize("dtype", DTYPES)
def test_setitem_matches_numpy(dtype):
    cases = [
        ((7,), (A([3, 0, -1]),), "array"),
        ((5, 3), (A([4, 0]),), "row"),                      # broadcast over rows
        ((5, 3), (A([1, 3]), A([2, 0])), "scalar"),
        ((3, 4, 5), (slice(None), A([[0], [3]]), A([1, 2, 4])), "array"),
        ((3, 4, 5), (A([1, 2]), slice(None), A([0, 4])), "array"),
        ((3, 4), (np.arange(12).reshape(3, 4) % 5 == 0,), "scalar"),
        ((3, 4), (slice(None), A([True, False, True, True])), "array"),
        ((3, 4), (slice(1, None), 2), "scalar"),            # basic: assigned through a view
        ((3, 4), (Ellipsis, slice(None, None, 2)), "array"),
        ((5, 3), (A([], dtype=np.int64),), "scalar"),
    ]
    for k, (shape, index, kind) in enumerate(cases):
        x = data(shape, dtype, k)
        target_shape = x[index].shape
        value = (data(target_shape, dtype, 50 + k) if kind == "array" else
                 data(target_shape[-1:], dtype, 50 + k) if kind == "row" else
                 dtype(1) if dtype != np.bool_ else True)
        expected = x.copy()
        expected[index] = value
        for idx in (device_index(index), host_index(index)):
            X = on_device(x)
            cuda_value = cuda.from_host(value) if isinstance(value, np.ndarray) else value
            cuda.setitem(X, idx, cuda_value)
            np.testing.assert_array_equal(cuda.to_host(X), expected, err_msg=f"case {k}")


def test_setitem_repeated_indices_last_write_wins():
    x = np.zeros((6, 3))
    index = (A([4, 1, 4, 4, -2, 1]),)
    value = np.arange(18.).reshape(6, 3)
    expected = x.copy()
    expected[index] = value
    for idx in (device_index(index), host_index(index)):
        X = cuda.from_host(x)
        cuda.setitem(X, idx, cuda.from_host(value))
        np.testing.assert_array_equal(cuda.to_host(X), expected)
    X = cuda.from_host(x)                                   # two arrays, repeated pairs
    index = (A([0, 2, 0, 0]), A([1, 1, 1, 2]))
    cuda.setitem(X, device_index(index), cuda.from_host(A([1., 2., 3., 4.])))
    expected = x.copy()
    expected[index] = A([1., 2., 3., 4.])
    np.testing.assert_array_equal(cuda.to_host(X), expected)


def test_setitem_into_a_non_contiguous_view_and_casts():
    x = data((4, 5), np.float64)
    X = on_device(x, "transposed")
    cuda.setitem(X, (A([3, 0]), slice(1, 4)), cuda.from_host(A([[1, 2, 3]])))   # int64, cast
    expected = x.copy()
    expected[A([3, 0]), 1:4] = [[1, 2, 3]]
    np.testing.assert_array_equal(cuda.to_host(X), expected)
    with pytest.raises(ValueError, match="could not be broadcast"):
        cuda.setitem(X, (A([3, 0]),), cuda.from_host(np.ones((3, 5))))


@pytest.mark.parametrize("dtype", ADDABLE)
def test_index_add_matches_cpu_backend(dtype):
    cases = [
        ((7,), (A([3, 0, -1, 3, 3, 6]),)),                       # repeats accumulate
        ((5, 3), (A([4, 0, 4, -5, 4]),)),                         # embedding backward
        ((5, 3), (A([[1, 2], [1, -1]]),)),
        ((5, 3), (slice(None), A([2, 0, 2]))),
        ((3, 4, 5), (A([0, 2, 0]), A([1, -1, 1]))),
        ((3, 4, 5), (slice(None), A([[0], [3], [0]]), A([1, 2, 1]))),
        ((3, 4, 5), (A([1, 1]), slice(None), A([0, 0]))),
        ((3, 4, 5), (0, slice(None), A([1, 2, 1]))),
        ((3, 4), (np.arange(12).reshape(3, 4) % 5 == 0,)),
        ((3, 4), (slice(None), A([True, False, True, True]))),
        ((3, 4), (slice(1, None), A(2))),
        ((3, 4), (slice(1, None), slice(None, None, 2))),        # basic: a strided view
        ((3, 4), (Ellipsis, 1)),
        ((5, 3), (A([], dtype=np.int64),)),
        ((5, 0), (A([1, 1]),)),
    ]
    for k, (shape, index) in enumerate(cases):
        dst = data(shape, dtype, k)
        src = data(dst[index].shape, dtype, 60 + k)
        expected = dst.copy()
        cpu.index_add(expected, index, src)
        for idx in (device_index(index), host_index(index)):
            D = on_device(dst)
            cuda.index_add(D, idx, cuda.from_host(src))
            got = cuda.to_host(D)
            if dtype == np.float32:
                np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4,
                                           err_msg=f"case {k}")
            else:
                np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0,
                                           err_msg=f"case {k}")


@pytest.mark.parametrize("layout", ["transposed", "sliced"])
def test_index_add_into_non_contiguous_dst_with_broadcast_src(layout):
    dst = data((5, 4), np.float64, 2)
    for index, src in [((A([4, 1, 4]),), data((4,), np.float64, 3)),          # src broadcast
                       ((A([0, 0]), slice(None)), data((2, 4), np.float64, 4)),
                       ((slice(None), A([3, 3, 0])), 2.5),                     # a number
                       ((slice(1, 4), slice(None, None, 3)), data((3, 2), np.float64, 5))]:
        expected = dst.copy()
        np.add.at(expected, index, src)         # (the CPU backend takes full-shape src only)
        D = on_device(dst, layout)
        cuda.index_add(D, device_index(index), cuda.from_host(src)
                       if isinstance(src, np.ndarray) else src)
        np.testing.assert_allclose(cuda.to_host(D), expected, rtol=1e-12)


def test_index_add_source_strided_and_errors():
    dst = np.zeros((4, 3), np.float32)
    src = data((3, 2), np.float32, 9)
    D = cuda.from_host(dst)
    src_t = cuda.permute(cuda.from_host(src), (1, 0))       # (2, 3), a transposed view
    cuda.index_add(D, (A([3, 3]),), src_t)
    np.testing.assert_allclose(cuda.to_host(D)[3], src.T.sum(0), rtol=1e-6)
    with pytest.raises(ValueError, match="could not be broadcast"):
        cuda.index_add(D, (A([0, 1]),), cuda.from_host(np.ones((3, 3), np.float32)))
    with pytest.raises(TypeError, match="same_kind"):
        cuda.index_add(cuda.from_host(np.zeros(3, np.int64)), (A([0]),),
                       cuda.from_host(np.ones(1)))
    cuda.index_add(D, (cuda.from_host(A([4])),), cuda.from_host(np.ones((1, 3), np.float32)))
    with pytest.raises(IndexError, match="axis 0 with size 4"):
        cuda.to_host(D)


def test_index_add_float32_accumulates_many_repeats():
    """Every source row into one of two rows: the atomics race, the sum must not lose terms."""
    src = data((64, 3), np.float32, 7)
    rows = np.arange(64) % 2
    D = cuda.zeros((2, 3), np.float32)
    cuda.index_add(D, (cuda.from_host(rows),), cuda.from_host(src))
    expected = np.stack([src[0::2].sum(0, dtype=np.float64), src[1::2].sum(0, dtype=np.float64)])
    np.testing.assert_allclose(cuda.to_host(D), expected, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("axis", [0, 1, -1, None])
def test_concatenate_matches_numpy(axis):
    parts = [data((3, 2), np.float32, 1), data((3, 1), np.float32, 2),
             data((3, 0), np.float32, 3), data((3, 5), np.float32, 4)]
    if axis == 0:
        parts = [p.T.copy() for p in parts]
    layouts = ["contiguous", "transposed", "contiguous", "sliced"]
    got = cuda.concatenate([on_device(p, lay) for p, lay in zip(parts, layouts)], axis)
    np.testing.assert_array_equal(cuda.to_host(got), np.concatenate(parts, axis=axis))


def test_concatenate_promotes_dtypes_and_raises_as_numpy():
    a, b = np.ones((2, 3), np.float32), np.arange(6).reshape(2, 3)
    got = cuda.concatenate([cuda.from_host(a), cuda.from_host(b)], 0)
    expected = np.concatenate([a, b], 0)
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(cuda.to_host(got), expected)
    bools = cuda.concatenate([cuda.from_host(A([True])), cuda.from_host(A([False, True]))], 0)
    np.testing.assert_array_equal(cuda.to_host(bools), [True, False, True])
    cases = [([np.zeros((2, 3)), np.zeros((2, 4))], 0),
             ([np.zeros((2, 3)), np.zeros((3,))], 0),
             ([np.zeros((2, 3))], 2),
             ([], 0),
             ([np.zeros(())], 0)]
    for arrays, axis in cases:
        with pytest.raises(ValueError) as numpy_error:
            np.concatenate(arrays, axis=axis)
        with pytest.raises(type(numpy_error.value), match=str(numpy_error.value)[:40]
                           .replace("(", r"\(").replace(")", r"\)")):
            cuda.concatenate([cuda.from_host(x) for x in arrays], axis)
