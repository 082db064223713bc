"""The row scatter-add of tinygradattn._indexing (an embedding's backward) against np.add.at,
in order, and its errors (which leave dst untouched).
"""
import numpy as np
import pytest

from tinygradattn import _indexing


pytestmark = pytest.mark.usefixtures("core_threads_on_small_work")


# ---- add_rows: dst[rows[i]] += src[i] (embedding backward) ------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("V,N,C", [(1, 1, 1), (5, 17, 3), (65, 768, 128), (7, 0, 4), (3, 11, 1),
                                   (13, 5, 31)])
def test_add_rows_equals_np_add_at_in_order(dtype, V, N, C):
    rng = np.random.default_rng(V * 100 + N + C)
    rows = rng.integers(-V, V, size=N).astype(np.int64)      # repeats and negative rows
    src = rng.standard_normal((N, C)).astype(dtype)
    dst = rng.standard_normal((V, C)).astype(dtype)
    want = dst.copy()
    np.add.at(want, rows, src)                               # sequential, in index order
    _indexing.add_rows(dst, rows, src)
    np.testing.assert_array_equal(dst, want)


def test_add_rows_errors_name_the_problem_and_leave_dst_untouched():
    dst = np.zeros((4, 3), np.float32)
    src = np.ones((2, 3), np.float32)
    with pytest.raises(IndexError, match="row index 4 is out of bounds for dst with 4 rows"):
        _indexing.add_rows(dst, np.array([0, 4]), src)
    with pytest.raises(IndexError, match="row index -5"):
        _indexing.add_rows(dst, np.array([-5, 0]), src)
    assert not dst.any()
    with pytest.raises(TypeError, match="rows must be a 1-D int64"):
        _indexing.add_rows(dst, np.array([0, 1], np.int32), src)
    with pytest.raises(ValueError, match=r"src \(2, 3\) should be \(3, 3\)"):
        _indexing.add_rows(dst, np.array([0, 1, 2]), src)
    with pytest.raises(ValueError, match="must be C-contiguous"):
        _indexing.add_rows(np.zeros((3, 4), np.float32).T, np.array([0, 1]), src)
    with pytest.raises(ValueError, match="overlaps"):
        _indexing.add_rows(dst, np.array([0]), dst[1:2])
    with pytest.raises((TypeError, ValueError), match="dtype"):
        _indexing.add_rows(dst, np.array([0, 1]), src.astype(np.float64))
