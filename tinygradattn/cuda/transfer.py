"""Host <-> device copies of whole arrays: the only way data crosses (each one counted in
driver.COPIES)."""
import numpy as np

from . import driver
from .array import empty
from .elementwise import copy


def from_host(host):
    """A numpy array -> a new contiguous CudaArray (one counted host -> device copy)."""
    host = np.asarray(host, order="C")
    out = empty(host.shape, host.dtype)
    driver.copy_to_device(out.buf, host)
    return out


def to_host(x):
    """A CudaArray -> a new numpy array (one counted device -> host copy; a strided view is
    gathered into a contiguous array on the device first)."""
    if not x.is_contiguous:
        x = copy(x)
    out = np.empty(x.size, dtype=x.dtype)
    driver.copy_to_host(x.buf[x.offset:], x.size, out)
    return out.reshape(x.shape)
