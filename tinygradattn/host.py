"""Host data -> numpy arrays: what tensor() copies from, with PyTorch's dtype inference.

Sits at the bottom with `dtypes.py` and `backend/` (it names numpy; nothing above them does):
`tensor.py` hands it numbers, nested lists and host arrays, never a Tensor, and gives the
resulting array to a backend's `from_host`.
"""
import numpy as np

from . import dtypes


def host_array(data, dtype=None):
    """A fresh numpy array of data, as torch.tensor copies it.

    Python floats give float32, ints int64, bools bool; a numpy array (or scalar) keeps its
    dtype, narrow integers widened to int64. `dtype` (a DType, a name or None) overrides.

        >>> host_array([[1, 2], [3, 4]]).dtype
        dtype('int64')
        >>> host_array([1.5], "float64").dtype
        dtype('float64')
    """
    if dtype is not None:
        dtype = dtypes.as_dtype(dtype)
    if isinstance(data, (np.ndarray, np.generic)):
        arr = np.array(data, copy=True)
        target = dtype or dtypes.from_numpy_dtype(arr.dtype, widen=True)
        return arr.astype(target.np, copy=False)
    try:
        arr = np.array(data)
    except ValueError as e:
        raise ValueError(f"tensor(): could not build a tensor from the data ({e})") from None
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        bad = _first_non_number(data)
        # NOTE: torch: TypeError for 'abc' or [1, 'a']; for a list of strings only (['a'])
        # it says ValueError ("too many dimensions 'str'"): ours is TypeError there too
        if isinstance(bad, str):
            raise TypeError(f"tensor(): invalid data type 'str' ({bad!r}); expected numbers "
                            "or nested lists of numbers")
        raise RuntimeError(f"tensor(): could not infer the dtype of {type(bad).__name__} "
                           "(expected numbers or nested lists of numbers)")
    if dtype is None:
        dtype = {"b": dtypes.bool_, "f": dtypes.float32}.get(arr.dtype.kind, dtypes.int64)
    return arr.astype(dtype.np, copy=False)


def _first_non_number(data):
    """The first leaf of nested lists that is not a number (data itself if not a list);
    data when every leaf is a number (the lists are ragged, say)."""
    stack = [data]
    while stack:
        x = stack.pop()
        if isinstance(x, (list, tuple)):
            stack.extend(reversed(x))
        elif not isinstance(x, (int, float, bool, np.generic)):
            return x
    return data


def is_host_array(data):
    """True for a numpy ndarray (what from_numpy can share memory with)."""
    return isinstance(data, np.ndarray)


def format_array(array, prefix):
    """The body of a tensor's repr: numpy's layout, 4 decimals, rows indented past prefix."""
    return np.array2string(array, separator=", ", prefix=prefix, precision=4)
