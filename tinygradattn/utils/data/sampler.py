"""Samplers (torch.utils.data.sampler): which dataset indices a DataLoader reads, in what
order, and how they are grouped into batches.

Every sampler is lazy: RandomSampler(ds, replacement=True, num_samples=int(1e10)) (minGPT's
trainer) yields one index at a time and never builds the list. Random orders come from a
Python `random.Random` seeded by one draw from `generator` (a tga.Generator) or, without
one, from tga's global CPU generator, once per pass: with `tga.manual_seed(s)` every pass is
reproducible, as in torch (the orders themselves differ from torch's).
"""
import numbers
import random
import typing

from ...creation import randint, tensor

_SEED_HIGH = 2 ** 62


def draw_seed(generator=None):
    """A seed for one pass, drawn from generator or tga's global CPU generator."""
    if generator is None:
        return int(randint(0, _SEED_HIGH, ()).item())
    return int(randint(0, _SEED_HIGH, (), generator=generator).item())


def _check_positive_int(name, value):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{name} should be a positive integer value, but got {name}={value}")
    return int(value)


T_co = typing.TypeVar("T_co", covariant=True)


class Sampler(typing.Generic[T_co]):
    """Base class: an iterable of indices (or of lists of indices, for a batch sampler);
    generic like torch's (Sampler[int])."""

    def __init__(self, data_source=None):
        pass

    def __iter__(self):
        raise NotImplementedError


class SequentialSampler(Sampler):
    """0, 1, ..., len(data_source) - 1."""

    def __init__(self, data_source):
        self.data_source = data_source

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self):
        return len(self.data_source)


class RandomSampler(Sampler):
    """A random order of the indices (torch.utils.data.RandomSampler).

    replacement=False: permutations of range(n), as many (and a part of one more) as
    num_samples needs; replacement=True: num_samples independent uniform draws. num_samples
    defaults to len(data_source). Lazy: nothing is drawn before iteration asks.
    """

    def __init__(self, data_source, replacement=False, num_samples=None, generator=None):
        if not isinstance(replacement, bool):
            raise TypeError(f"replacement should be a boolean value, but got "
                            f"replacement={replacement}")
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = generator
        if num_samples is not None:
            _check_positive_int("num_samples", num_samples)

    @property
    def num_samples(self):
        return len(self.data_source) if self._num_samples is None else int(self._num_samples)

    def __iter__(self):
        n, total = len(self.data_source), self.num_samples
        rng = random.Random(draw_seed(self.generator))
        if self.replacement:
            if n == 0:
                raise ValueError("RandomSampler: cannot draw with replacement from an empty "
                                 "data source")
            return (rng.randrange(n) for _ in range(total))
        return _permutations(rng, n, total)

    def __len__(self):
        return self.num_samples


def _permutations(rng, n, total):
    """total indices: whole random permutations of range(n), then the start of one more."""
    while total > 0:
        perm = list(range(n))
        rng.shuffle(perm)
        yield from perm[:total]
        total -= n


class SubsetRandomSampler(Sampler):
    """The given indices in a random order, without replacement."""

    def __init__(self, indices, generator=None):
        self.indices = indices
        self.generator = generator

    def __iter__(self):
        rng = random.Random(draw_seed(self.generator))
        order = list(range(len(self.indices)))
        rng.shuffle(order)
        return (self.indices[i] for i in order)

    def __len__(self):
        return len(self.indices)


class WeightedRandomSampler(Sampler):
    """num_samples indices drawn with probability proportional to weights (a 1-D sequence)
    (torch.utils.data.WeightedRandomSampler), through tga.multinomial; with replacement
    (the default) they are drawn lazily, a block at a time."""

    _BLOCK = 4096

    def __init__(self, weights, num_samples, replacement=True, generator=None):
        self.num_samples = _check_positive_int("num_samples", num_samples)
        if not isinstance(replacement, bool):
            raise ValueError(f"replacement should be a boolean value, but got "
                             f"replacement={replacement}")
        self.weights = tensor(weights, dtype="float64")
        if self.weights.ndim != 1:
            raise ValueError(f"weights should be a 1d sequence but given weights have shape "
                             f"{tuple(self.weights.shape)}")
        self.replacement = replacement
        self.generator = generator

    def __iter__(self):
        if not self.replacement:
            return iter(self.weights.multinomial(self.num_samples, False,
                                                 generator=self.generator).tolist())
        return self._blocks()

    def _blocks(self):
        left = self.num_samples
        while left > 0:
            n = min(left, self._BLOCK)
            yield from self.weights.multinomial(n, True, generator=self.generator).tolist()
            left -= n

    def __len__(self):
        return self.num_samples


class BatchSampler(Sampler):
    """Lists of batch_size indices from sampler; the last one shorter unless drop_last."""

    def __init__(self, sampler, batch_size, drop_last):
        self.batch_size = _check_positive_int("batch_size", batch_size)
        if not isinstance(drop_last, bool):
            raise ValueError(f"drop_last should be a boolean value, but got "
                             f"drop_last={drop_last}")
        self.sampler = sampler
        self.drop_last = drop_last

    def __iter__(self):
        batch = []
        for idx in self.sampler:
            batch.append(idx)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self):
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
