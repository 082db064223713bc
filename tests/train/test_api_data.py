"""tinygradattn.utils.data (torch.utils.data): datasets, samplers, DataLoader and its default
collation, against torch's on the same data; lazy infinite sampling (minGPT's trainer);
shuffling reproducible under tga.manual_seed."""
import collections
import itertools
import time
import warnings

import numpy as np
import pytest

import tinygradattn as tga
from helpers import check_raises_like_torch
from tinygradattn.utils.data import (BatchSampler, ConcatDataset, DataLoader, Dataset,
                                     IterableDataset, RandomSampler, SequentialSampler, Subset,
                                     TensorDataset, default_collate, random_split)

Pair = collections.namedtuple("Pair", "a b")


def _torch():
    return pytest.importorskip("torch")


def _as_np(x):
    return x.detach().numpy() if hasattr(x, "detach") else x


def _same(ours, theirs, where="batch"):
    """Recursively equal structure, types, dtypes and values (tga vs torch batches)."""
    if isinstance(theirs, _torch().Tensor):
        assert isinstance(ours, tga.Tensor), f"{where}: {type(ours).__name__}, torch a Tensor"
        assert ours.dtype.name == str(theirs.dtype).split(".")[-1], (
            f"{where}: dtype {ours.dtype.name}, torch {theirs.dtype}")
        assert tuple(ours.shape) == tuple(theirs.shape), f"{where}: shape"
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy(), err_msg=where)
        return
    assert type(ours) is type(theirs), f"{where}: {type(ours)} vs torch {type(theirs)}"
    if isinstance(theirs, dict):
        assert list(ours) == list(theirs)
        for k in theirs:
            _same(ours[k], theirs[k], f"{where}[{k!r}]")
    elif isinstance(theirs, (list, tuple)):
        assert len(ours) == len(theirs), where
        for i, (o, t) in enumerate(zip(ours, theirs)):
            _same(o, t, f"{where}[{i}]")
    else:
        assert ours == theirs, where


class ListDataset(Dataset):
    def __init__(self, items):
        self.items = items

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def _samples(L):
    """Per-sample structures default_collate must handle, built with library L's tensors."""
    return [
        [(L.tensor([i, i + 1.0]), i) for i in range(5)],                     # (x, label)
        [{"f": i * 0.5, "i": i, "b": i % 2 == 0, "s": f"w{i}"} for i in range(5)],
        [np.full((2, 2), i, dtype=np.float32) for i in range(3)],
        [np.arange(3, dtype=np.int32) + i for i in range(3)],
        [np.float64(i) / 3 for i in range(4)],
        [[i, [i * 1.5, i]] for i in range(3)],
        [Pair(L.tensor(i), float(i)) for i in range(3)],
        [(L.zeros(2, 3, dtype=L.float64) + i,) for i in range(2)],
    ]


@pytest.mark.parametrize("case", range(8))
def test_default_collation_matches_torch(case):
    torch = _torch()
    ours = list(DataLoader(ListDataset(_samples(tga)[case]), batch_size=2))
    theirs = list(torch.utils.data.DataLoader(ListDataset(_samples(torch)[case]),
                                              batch_size=2))
    assert len(ours) == len(theirs)
    for o, t in zip(ours, theirs):
        if isinstance(t, torch.Tensor) and t.dtype == torch.int32:      # no int32 here:
            t = t.long()                                                 # widened to int64
        if isinstance(t, dict):
            t = {k: v.long() if isinstance(v, torch.Tensor) and v.dtype == torch.int32
                 else v for k, v in t.items()}
        _same(o, t)


def test_collate_errors_like_torch():
    torch = _torch()
    for bad, exc in [([[1, 2], [3]], RuntimeError), ([object(), object()], TypeError),
                     ([np.array(["a"]), np.array(["b"])], TypeError)]:
        with pytest.raises(exc) as ours:
            default_collate(bad)
        with pytest.raises(exc):
            torch.utils.data.default_collate(bad)
        assert "equal size" in str(ours.value) or "default_collate" in str(ours.value)


def test_batch_size_none_and_custom_collate():
    ds = ListDataset([np.ones(2) * i for i in range(3)])
    items = list(DataLoader(ds, batch_size=None))
    assert len(items) == 3 and isinstance(items[0], tga.Tensor) and items[2].tolist() == [2, 2]
    loader = DataLoader(ds, batch_size=2, collate_fn=lambda b: len(b))
    assert list(loader) == [2, 1] and len(loader) == 2


@pytest.mark.parametrize("n,bs,drop", [(10, 3, False), (10, 3, True), (9, 3, True), (1, 4, False),
                                       (0, 2, False)])
def test_len_and_order_sequential(n, bs, drop):
    torch = _torch()
    ds = TensorDataset(tga.arange(n), tga.arange(n) * 2)
    loader = DataLoader(ds, batch_size=bs, drop_last=drop)
    tloader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.arange(n)),
                                          batch_size=bs, drop_last=drop)
    assert len(loader) == len(tloader)
    got = [x.tolist() for x, _ in loader]
    assert got == [x.tolist() for (x,) in tloader]
    assert [y.tolist() for _, y in loader] == [[2 * v for v in b] for b in got]


def test_tensor_dataset_and_subset_and_concat():
    x, y = tga.randn(5, 3), tga.arange(5)
    ds = TensorDataset(x, y)
    assert len(ds) == 5 and ds[2][1].item() == 2
    np.testing.assert_array_equal(ds[1][0].numpy(), x[1].numpy())
    with pytest.raises(AssertionError, match="Size mismatch"):
        TensorDataset(tga.zeros(3), tga.zeros(4))
    sub = Subset(ds, [4, 0])
    assert len(sub) == 2 and sub[0][1].item() == 4
    assert [b[1].tolist() for b in DataLoader(sub, batch_size=2)] == [[4, 0]]
    both = ConcatDataset([ListDataset([0, 1]), ListDataset([2, 3, 4])])
    assert len(both) == 5 and [both[i] for i in range(-5, 5)] == [0, 1, 2, 3, 4] * 2
    assert len(ListDataset([1]) + ListDataset([2, 3])) == 3


def test_iterable_dataset_batches_stream():
    class Stream(IterableDataset):
        def __init__(self, n):
            self.n = n

        def __iter__(self):
            return iter(range(self.n))

        def __len__(self):
            return self.n

    assert [b.tolist() for b in DataLoader(Stream(7), batch_size=3)] == [[0, 1, 2], [3, 4, 5],
                                                                         [6]]
    loader = DataLoader(Stream(7), batch_size=3, drop_last=True)
    assert [b.tolist() for b in loader] == [[0, 1, 2], [3, 4, 5]] and len(loader) == 2
    assert list(DataLoader(Stream(2), batch_size=None)) == [0, 1]
    with pytest.raises(ValueError, match="shuffle"):
        DataLoader(Stream(3), shuffle=True)


# ---- samplers -------------------------------------------------------------------------------------
def test_random_sampler_is_lazy_for_huge_num_samples():
    """minGPT's trainer: RandomSampler(ds, replacement=True, num_samples=int(1e10)), read lazily."""
    ds = TensorDataset(tga.arange(20).reshape(10, 2), tga.arange(10))
    start = time.perf_counter()
    sampler = RandomSampler(ds, replacement=True, num_samples=int(1e10))
    loader = DataLoader(ds, sampler=sampler, shuffle=False, pin_memory=True, batch_size=4,
                        num_workers=0)
    it = iter(loader)
    batches = [next(it) for _ in range(50)]
    assert time.perf_counter() - start < 1.0
    assert len(sampler) == int(1e10) and len(loader) == int(1e10) // 4
    x, y = batches[0]
    assert tuple(x.shape) == (4, 2) and tuple(y.shape) == (4,)
    seen = np.concatenate([b[1].numpy() for b in batches])
    assert seen.min() >= 0 and seen.max() < 10 and len(set(seen.tolist())) == 10


def test_random_sampler_without_replacement_covers_every_index():
    ds = ListDataset(list(range(7)))
    order = list(RandomSampler(ds))
    assert sorted(order) == list(range(7)) and order != list(range(7))
    longer = list(RandomSampler(ds, num_samples=17))
    assert len(longer) == 17 and sorted(longer[:14]) == sorted(list(range(7)) * 2)
    assert list(SequentialSampler(ds)) == list(range(7))


def test_sampler_argument_errors_like_torch():
    cases = [
        (lambda L: L.utils.data.RandomSampler([1, 2], replacement=1), TypeError, "boolean"),
        (lambda L: L.utils.data.RandomSampler([1, 2], num_samples=0), ValueError,
         "positive integer"),
        (lambda L: L.utils.data.BatchSampler(range(3), 0, False), ValueError, "batch_size"),
        (lambda L: L.utils.data.BatchSampler(range(3), 2, 1), ValueError, "drop_last"),
        (lambda L: L.utils.data.DataLoader([1, 2], sampler=[0, 1], shuffle=True), ValueError,
         "mutually exclusive with shuffle"),
        (lambda L: L.utils.data.DataLoader([1, 2], batch_sampler=[[0]], batch_size=2),
         ValueError, "batch_sampler option is mutually exclusive"),
        (lambda L: L.utils.data.DataLoader([1, 2], batch_size=None, drop_last=True),
         ValueError, "drop_last"),
        (lambda L: L.utils.data.DataLoader([1, 2], num_workers=-1), ValueError,
         "non-negative"),
        (lambda L: L.utils.data.DataLoader([1, 2], persistent_workers=True), ValueError,
         "persistent_workers"),
        (lambda L: L.utils.data.random_split(range(5), [2, 2]), ValueError,
         "Sum of input lengths"),
    ]
    for call, exc, match in cases:
        check_raises_like_torch(call, call, exc, match)


def test_batch_sampler_len_and_batches_match_torch():
    torch = _torch()
    for n, bs, drop in [(10, 4, False), (10, 4, True), (8, 4, True)]:
        ours = BatchSampler(SequentialSampler(range(n)), bs, drop)
        theirs = torch.utils.data.BatchSampler(torch.utils.data.SequentialSampler(range(n)), bs,
                                               drop)
        assert list(ours) == list(theirs) and len(ours) == len(theirs)
    loader = DataLoader(ListDataset(list(range(5))), batch_sampler=[[4, 1], [0]])
    assert [b.tolist() for b in loader] == [[4, 1], [0]] and len(loader) == 2


# ---- shuffling under tga.manual_seed ----------------------------------------------------------------
def _epoch(loader):
    return [b.tolist() for b in loader]


def test_shuffle_is_reproducible_under_manual_seed():
    ds = ListDataset(list(range(12)))
    loader = DataLoader(ds, batch_size=5, shuffle=True)
    tga.manual_seed(7)
    first, second = _epoch(loader), _epoch(loader)
    tga.manual_seed(7)
    assert _epoch(loader) == first and _epoch(loader) == second
    assert first != second                                   # a new order every pass
    assert sorted(itertools.chain(*first)) == list(range(12))
    tga.manual_seed(8)
    assert _epoch(loader) != first
    tga.manual_seed(7)
    replay = DataLoader(ds, sampler=RandomSampler(ds, replacement=True, num_samples=30),
                        batch_size=10)
    a = _epoch(replay)
    tga.manual_seed(7)
    assert _epoch(replay) == a


def test_random_split_lengths_fractions_and_seed():
    torch = _torch()
    tga.manual_seed(1)
    parts = random_split(range(10), [3, 7])
    assert [len(p) for p in parts] == [3, 7]
    assert sorted(list(parts[0]) + list(parts[1])) == list(range(10))
    tga.manual_seed(1)
    assert [list(p) for p in random_split(range(10), [3, 7])] == [list(p) for p in parts]
    for n, fracs in [(11, [0.5, 0.5]), (10, [0.33, 0.33, 0.34]), (7, [0.1, 0.9])]:
        ours = [len(p) for p in random_split(range(n), fracs)]
        theirs = [len(p) for p in torch.utils.data.random_split(range(n), fracs)]
        assert ours == theirs
    with pytest.warns(UserWarning, match="Length of split at index 1 is 0"):
        assert [len(p) for p in random_split(range(3), [0.05, 0.05, 0.9])] == [1, 0, 2]
    with pytest.warns(UserWarning, match="Length of split at index 1 is 0"):
        torch.utils.data.random_split(range(3), [0.05, 0.05, 0.9])


def test_generator_argument_when_available():
    if not hasattr(tga, "Generator"):
        pytest.skip("tga.Generator is not available on this branch (issue 15, sampling part)")
    g = tga.Generator().manual_seed(3)
    ds = ListDataset(list(range(9)))
    a = _epoch(DataLoader(ds, batch_size=4, shuffle=True, generator=g))
    g.manual_seed(3)
    assert _epoch(DataLoader(ds, batch_size=4, shuffle=True, generator=g)) == a
    g.manual_seed(3)
    assert [list(p) for p in random_split(ds, [4, 5], generator=g)][0] == \
        [list(p) for p in random_split(ds, [4, 5], generator=g.manual_seed(3))][0]


def test_num_workers_loads_in_process_and_warns_once():
    from tinygradattn.utils.data import dataloader
    dataloader._WARNED.discard("num_workers")
    ds = ListDataset([1.0, 2.0, 3.0])
    with pytest.warns(UserWarning, match="main process"):
        loader = DataLoader(ds, batch_size=2, num_workers=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        DataLoader(ds, batch_size=2, num_workers=2)
    assert [b.tolist() for b in loader] == [[1.0, 2.0], [3.0]]
    assert loader.num_workers == 4 and tga.utils.data.get_worker_info() is None


def test_torch_layout_imports():
    from tinygradattn.utils.data.dataloader import DataLoader as DL
    from tinygradattn.utils.data.dataset import Dataset as DS
    from tinygradattn.utils.data.sampler import RandomSampler as RS
    assert DL is DataLoader and DS is Dataset and RS is RandomSampler
    assert tga.utils.data.RandomSampler is RandomSampler


def test_classes_are_generic_like_torch():
    class Typed(Dataset[tuple]):
        def __len__(self):
            return 2

        def __getitem__(self, i):
            return (i, float(i))

    class MySampler(tga.utils.data.Sampler[int]):
        def __iter__(self):
            return iter([1, 0])

        def __len__(self):
            return 2

    batch = next(iter(DataLoader(Typed(), batch_size=2, sampler=MySampler())))
    assert batch[0].tolist() == [1, 0] and batch[1].dtype == tga.float64


def test_mingpt_trainer_loop_runs_on_our_dataloader():
    """minGPT's Trainer, unmodified (torch resolved to tinygradattn): DataLoader with
    RandomSampler(replacement=True, num_samples=int(1e10)), pin_memory, num_workers=4."""
    import os
    import sys
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    clients = os.path.join(os.path.dirname(root), "shared", "clients", "minGPT")
    if not os.path.isdir(clients):
        pytest.skip("../shared/clients/minGPT is not beside the repository")
    from tinygradattn.compat.hook import torch_as_tinygradattn

    class Cycle(Dataset):
        def __len__(self):
            return 40

        def __getitem__(self, i):
            return (tga.tensor([i % 7, (i + 1) % 7]), tga.tensor([(i + 1) % 7, (i + 2) % 7]))

    class Model(tga.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = tga.nn.Embedding(7, 7)

        def forward(self, x, y):
            logits = self.emb(x)
            return logits, tga.nn.functional.cross_entropy(logits.view(-1, 7), y.view(-1))

        def configure_optimizers(self, config):
            return tga.optim.AdamW(self.parameters(), lr=0.1)

    sys.path.insert(0, clients)
    saved = {n: m for n, m in sys.modules.items() if n == "mingpt" or n.startswith("mingpt.")}
    try:
        with torch_as_tinygradattn(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for n in saved:
                del sys.modules[n]
            from mingpt.trainer import Trainer
            config = Trainer.get_default_config()
            config.max_iters, config.batch_size, config.device = 25, 8, "cpu"
            trainer = Trainer(config, Model(), Cycle())
            losses = []
            trainer.add_callback("on_batch_end", lambda t: losses.append(t.loss.item()))
            tga.manual_seed(0)
            trainer.run()
    finally:
        sys.path.remove(clients)
        for n in [n for n in sys.modules if n == "mingpt" or n.startswith("mingpt.")]:
            del sys.modules[n]
        sys.modules.update(saved)
    assert len(losses) == 25 and losses[-1] < losses[0] - 0.5


def test_weighted_random_sampler():
    from tinygradattn.utils.data import WeightedRandomSampler
    tga.manual_seed(0)
    draws = list(WeightedRandomSampler([0.0, 1.0, 3.0], 10000))
    counts = np.bincount(draws, minlength=3)
    assert counts[0] == 0 and abs(counts[2] / counts[1] - 3) < 0.3 and len(draws) == 10000
    once = list(WeightedRandomSampler(tga.tensor([1.0, 2.0, 3.0, 4.0]), 4, replacement=False))
    assert sorted(once) == [0, 1, 2, 3]
    huge = WeightedRandomSampler([1.0, 1.0], int(1e10))
    assert len(huge) == int(1e10) and len(list(itertools.islice(iter(huge), 5))) == 5
    for call, exc, match in [
            (lambda L: L.utils.data.WeightedRandomSampler([[1.0, 2.0]], 3), ValueError, "1d"),
            (lambda L: L.utils.data.WeightedRandomSampler([1.0, 2.0], 0), ValueError,
             "positive integer"),
            (lambda L: L.utils.data.WeightedRandomSampler([1.0], 2, replacement=1), ValueError,
             "boolean"),
            (lambda L: list(L.utils.data.WeightedRandomSampler([1.0, 2.0], 3, replacement=False)),
             RuntimeError, None)]:
        check_raises_like_torch(call, call, exc, match)
