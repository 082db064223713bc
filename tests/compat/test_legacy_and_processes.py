"""Names older teaching code needs (the Annotated Transformer, makemore): torch's legacy tensor
types and Tensor.type() names, DistributedSampler, torch.multiprocessing; and 0-d results that
in-place ops can write into (`total += batch_sum`), on every device.
Compared with the installed PyTorch where it gives a reference."""
import os

import numpy as np
import pytest
import torch

import tinygradattn as tga
import tinygradattn.multiprocessing as tmp
from tinygradattn.utils.data.distributed import DistributedSampler


# ---- legacy tensor types ------------------------------------------------------------------
@pytest.mark.parametrize("name", ["FloatTensor", "DoubleTensor", "LongTensor", "BoolTensor"])
def test_legacy_constructors_match_torch(name):
    ours, theirs = getattr(tga, name), getattr(torch, name)
    for args in [([[0, 0.2, 1], [3, 1, 0]],), ((2, 3),), ([1, 0],), (np.array([1, 0, 1]),)]:
        a, b = ours(*args), theirs(*args)
        assert a.dtype.name == str(b.dtype).replace("torch.", "")
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    e = ours(2, 3)                                            # sizes: uninitialized
    assert e.shape == (2, 3) and e.dtype is ours.dtype
    assert ours().shape == (0,) and ours(5).shape == (5,)


def test_legacy_isinstance_and_aliasing():
    x = tga.FloatTensor([1.0, 2.0])
    assert isinstance(x, tga.FloatTensor) and not isinstance(x, tga.LongTensor)
    assert isinstance(tga.nn.Parameter(tga.ones(2)), tga.FloatTensor)
    assert isinstance(tga.tensor([1]), tga.LongTensor) and not isinstance(3, tga.LongTensor)
    y = tga.FloatTensor(x)                                    # same dtype: shares storage
    y.add_(1)
    assert x.tolist() == [2.0, 3.0]
    with pytest.raises(TypeError, match="float32"):
        tga.FloatTensor(tga.tensor([1, 2]))
    with pytest.raises(TypeError, match="sequence"):
        tga.FloatTensor(2.5)
    with pytest.raises(RuntimeError, match="negative dimension"):
        tga.LongTensor(-1)
    with pytest.raises(TypeError):
        tga.FloatTensor([1], [2])
    assert repr(tga.LongTensor) == "<class 'torch.LongTensor'>"


def test_tensor_type_names(device):
    x = tga.tensor([1.5, -2.0], device=device)
    where = "cuda." if device == "cuda" else ""
    assert x.type() == f"torch.{where}FloatTensor"
    assert x.long().type() == f"torch.{where}LongTensor"
    assert (x > 0).type() == f"torch.{where}BoolTensor"
    assert x.double().type() == f"torch.{where}DoubleTensor"
    y = x.type("torch.LongTensor")                            # a name: that dtype on the cpu
    assert y.dtype == tga.int64 and y.device == "cpu" and y.tolist() == [1, -2]
    z = x.type(tga.DoubleTensor)
    assert z.dtype == tga.float64 and z.device == "cpu"
    assert x.type(tga.float32) is x
    with pytest.raises(ValueError, match="invalid type"):
        x.type("torch.HalfTensor")
    t = torch.tensor([1.5, -2.0])
    assert (t.type(), t.type("torch.LongTensor").tolist()) == ("torch.FloatTensor", [1, -2])


# ---- DistributedSampler -------------------------------------------------------------------
@pytest.mark.parametrize("n,replicas,drop_last", [(10, 3, False), (10, 3, True), (2, 5, False),
                                                  (7, 1, False), (0, 2, False), (12, 4, True)])
def test_distributed_sampler_matches_torch_without_shuffle(n, replicas, drop_last):
    from torch.utils.data.distributed import DistributedSampler as TorchSampler
    for rank in range(replicas):
        ours = DistributedSampler(range(n), replicas, rank, shuffle=False, drop_last=drop_last)
        theirs = TorchSampler(range(n), replicas, rank, shuffle=False, drop_last=drop_last)
        if n == 0:
            assert len(ours) == len(theirs) == 0
            continue
        assert list(ours) == list(theirs) and len(ours) == len(theirs)


def test_distributed_sampler_shuffle_partitions_and_epochs():
    samplers = [DistributedSampler(range(11), 3, r, seed=5) for r in range(3)]
    parts = [list(s) for s in samplers]
    flat = sorted(i for p in parts for i in p)
    assert len(flat) == 12 and set(flat) == set(range(11))     # padded by one repeat
    assert parts == [list(s) for s in samplers]                # same epoch: same order
    for s in samplers:
        s.set_epoch(1)
    assert [list(s) for s in samplers] != parts
    loader = tga.utils.data.DataLoader(range(11), batch_size=2, sampler=samplers[0])
    assert sum(len(b) for b in loader) == 4


def test_distributed_sampler_errors():
    # no process group here: "not available" without mpi4py, "not initialized" with it
    with pytest.raises(RuntimeError, match="distributed package|not been initialized"):
        DistributedSampler(range(4))
    with pytest.raises(ValueError, match=r"Invalid rank 3, rank should be in the interval \[0, 2\]"):
        DistributedSampler(range(4), num_replicas=3, rank=3)


# ---- torch.multiprocessing ----------------------------------------------------------------
def _write_rank(i, folder, fail_rank):
    if i == fail_rank:
        raise SystemExit(3)
    with open(os.path.join(folder, f"rank{i}"), "w") as f:
        f.write(str(i))


def test_multiprocessing_spawn(tmp_path):
    import torch.multiprocessing as torch_mp
    assert set(torch_mp.__all__) & {"spawn", "Process", "Queue"} <= set(dir(tmp))
    tmp.spawn(_write_rank, args=(str(tmp_path), -1), nprocs=2, start_method="fork")
    assert sorted(os.listdir(tmp_path)) == ["rank0", "rank1"]
    with pytest.raises(tmp.ProcessExitedException, match="process 1 terminated with exit code 3"):
        tmp.spawn(_write_rank, args=(str(tmp_path), 1), nprocs=2, start_method="fork")
    ctx = tmp.start_processes(_write_rank, args=(str(tmp_path), -1), nprocs=1, join=False,
                              start_method="fork")
    assert ctx.join() is True
    assert tmp.get_sharing_strategy() == "file_system"
    with pytest.raises(ValueError):
        tmp.set_sharing_strategy("file_descriptor_x")


# ---- 0-d results are storage that in-place ops write into --------------------------------
def test_inplace_on_zero_dim_results(device):
    x = tga.tensor([[1, 2, 0], [0, 5, 6]], device=device)
    total = 0
    for _ in range(3):
        total += (x != 0).sum()                       # int + tensor, then tensor += tensor
    assert total.item() == 12 and total.dtype == tga.int64
    s = x.float().sum()
    s += 1.5
    s *= 2
    assert s.item() == 31.0
    m = x.max()
    m.sub_(1)
    assert m.item() == 5 and x.max().item() == 6
    for r in [-s, s.exp(), s.relu(), s.sigmoid(), s.clamp(0, 1), s * s, s > 0, tga.where(s > 0, s, s)]:
        r.zero_()                                      # every 0-d result is writable
        assert r.item() == 0
