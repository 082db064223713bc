"""The DataLoader's default collation (torch.utils.data.default_collate): a list of samples
-> one batch, with torch's rules.

Tensors are stacked on a new first dim; numpy arrays become tensors (their dtype kept) and
are stacked; Python floats give a float64 tensor, ints int64, bools bool; strings stay a
list; tuples and lists are transposed (a batch of (x, y) pairs gives [xs, ys]: tuples become
lists, as in torch), namedtuples keep their type, dicts are collated per key.
"""
import collections.abc
import numbers

from ... import host
from ...creation import tensor
from ...tensor import Tensor, stack

_ERR = ("default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; "
        "found {}")


def _is_numpy(x):
    return type(x).__module__ == "numpy" and not isinstance(x, (str, bytes))


def default_collate(batch):
    """Merge a list of samples into a batch (see the module docstring)."""
    elem = batch[0]
    if isinstance(elem, Tensor):
        return stack(batch, 0)
    if _is_numpy(elem):
        if host.is_host_array(elem) and elem.dtype.kind in "SaUO":
            raise TypeError(_ERR.format(elem.dtype))
        return stack([tensor(b) for b in batch], 0)
    if isinstance(elem, bool):
        return tensor(batch)
    if isinstance(elem, float):
        return tensor(batch, dtype="float64")
    if isinstance(elem, numbers.Integral):
        return tensor(batch)
    if isinstance(elem, (str, bytes)):
        return batch
    if isinstance(elem, collections.abc.Mapping):
        collated = {key: default_collate([d[key] for d in batch]) for key in elem}
        try:
            return type(elem)(collated)
        except TypeError:
            return collated
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):            # namedtuple
        return type(elem)(*(default_collate(list(s)) for s in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        size = len(elem)
        if any(len(e) != size for e in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        transposed = [default_collate(list(s)) for s in zip(*batch)]
        if isinstance(elem, tuple):
            return transposed
        try:
            return type(elem)(transposed)
        except TypeError:
            return transposed
    raise TypeError(_ERR.format(type(elem)))


def default_convert(data):
    """numpy arrays (also inside dicts, tuples and lists) -> tensors; everything else as it is
    (the collate_fn of a DataLoader with batch_size=None)."""
    if _is_numpy(data) and not (host.is_host_array(data) and data.dtype.kind in "SaUO"):
        return tensor(data)
    if isinstance(data, collections.abc.Mapping):
        converted = {key: default_convert(v) for key, v in data.items()}
        try:
            return type(data)(converted)
        except TypeError:
            return converted
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, (list, tuple)):
        return type(data)(default_convert(d) for d in data)
    return data
