"""What each rank runs under `mpiexec -n 2 python -m mpi4py ranks.py SCENARIO OUT` (launched
by test_mpi.py). Each scenario writes its findings, per rank, as JSON into OUT/rank<r>.json;
the test reads and judges them. Small models: the whole file runs in a few seconds."""
import json
import os
import sys
import time

import tinygradattn as tga
import tinygradattn.distributed as dist
from tinygradattn.models.gpt import GPT, GPTConfig
from tinygradattn.nn.parallel import DistributedDataParallel as DDP

CONFIG = dict(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16, dropout=0.0,
              bias=True)
B, T, STEPS = 4, 8, 4


def global_batches(steps=STEPS, batch=B):
    """The same global batches on every rank and in the one-process reference."""
    g = tga.Generator().manual_seed(123)
    out = []
    for _ in range(steps):
        x = tga.randint(0, CONFIG["vocab_size"], (batch, T), generator=g)
        y = tga.randint(0, CONFIG["vocab_size"], (batch, T), generator=g)
        out.append((x, y))
    return out


def train(model, batches, rank=0, world=1):
    """Losses of the global batch per step (each rank its shard; the mean of the shards)."""
    opt = tga.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)   # SGD: the grad scale shows
    losses = []
    for x, y in batches:
        n = x.shape[0] // world
        _, loss = model(x[rank * n:(rank + 1) * n], y[rank * n:(rank + 1) * n])
        opt.zero_grad()
        loss.backward()
        opt.step()
        value = loss.detach().clone()
        if world > 1:
            dist.all_reduce(value, op=dist.ReduceOp.AVG)
        losses.append(value.item())
    return losses


def collectives(rank, world):
    found = {}
    for dtype in (tga.float32, tga.float64, tga.int64):
        t = tga.tensor([1, 2, 3], dtype=dtype) * (rank + 1)
        dist.all_reduce(t)
        found[f"sum_{dtype}"] = t.tolist()
        found[f"dtype_{dtype}"] = str(t.dtype)
    for op in ("max", "min", "avg", "product"):
        t = tga.tensor([1.0, -2.0]) * (rank + 2)
        dist.all_reduce(t, op=op)
        found[op] = t.tolist()
    base = tga.arange(6, dtype=tga.float32).reshape(2, 3) * (rank + 1)
    view = base.t()                                   # non-contiguous: reduced via a copy
    dist.all_reduce(view)
    found["non_contiguous"] = base.tolist()
    t = tga.full((3,), float(rank))
    dist.broadcast(t, src=1)
    found["broadcast"] = t.tolist()
    work = dist.all_reduce(tga.ones(2) * rank, async_op=True)
    found["async_is_work"] = isinstance(work, dist.Work)
    work.wait()
    parts = [tga.zeros(2, dtype=tga.int64) for _ in range(world)]
    dist.all_gather(parts, tga.tensor([rank, 10 * rank]))
    found["all_gather"] = [p.tolist() for p in parts]
    objects = [{"run": "out/1", "step": 7}, None] if rank == 0 else [None, None]
    dist.broadcast_object_list(objects, src=0)
    found["objects"] = objects
    t0 = time.monotonic()
    if rank == 1:
        time.sleep(0.3)
    dist.barrier()
    found["barrier_waited"] = time.monotonic() - t0
    return found


def ddp(rank, world):
    tga.manual_seed(rank)                             # different weights: DDP must broadcast
    model = DDP(GPT(GPTConfig(**CONFIG)), bucket_cap_mb=0.004)   # several buckets
    reducer = model._reducer
    n_buckets, started_before_end, finalize = len(reducer.buckets), [], reducer.finalize

    def spy():                                    # how many buckets backward itself started
        started_before_end.append(reducer.next_start)
        finalize()
    reducer.finalize = spy
    losses = train(model, global_batches(), rank, world)
    params = {k: v.detach().numpy().tobytes().hex() for k, v in model.state_dict().items()}
    return {"losses": losses, "params": params, "n_buckets": n_buckets,
            "started_before_end": started_before_end}


def no_sync(rank, world):
    """Two micro-batches under no_sync then one synced: grads = mean over ranks of the sums."""
    tga.manual_seed(0)
    lin = tga.nn.Linear(3, 1)
    model = DDP(lin)
    xs = [tga.ones(1, 3) * (rank + 1 + i) for i in range(3)]
    with model.no_sync():
        model(xs[0]).sum().backward()
        model(xs[1]).sum().backward()
    local = lin.weight.grad.tolist()
    model(xs[2]).sum().backward()
    return {"local_after_no_sync": local, "synced": lin.weight.grad.tolist()}


def unused(rank, world):
    """A parameter no rank uses keeps grad None; one only rank 1 uses gets half its grad."""
    tga.manual_seed(0)
    net = tga.nn.ModuleDict({"a": tga.nn.Linear(2, 1), "b": tga.nn.Linear(2, 1),
                             "never": tga.nn.Linear(2, 1)})
    model = DDP(net)
    x = tga.ones(1, 2)
    model._reducer.arm()                      # what DDP's forward does (ModuleDict has none)
    out = net["a"](x) + (net["b"](x) * 4 if rank == 1 else 0)
    out.sum().backward()
    return {name: None if p.grad is None else p.grad.tolist()
            for name, p in net.named_parameters()}


def stale(rank, world):
    """w gets gradient twice in one backward (inside a reentrant checkpoint, and outside it):
    its bucket starts after the first and must be reduced again from the final gradient."""
    from tinygradattn.utils.checkpoint import checkpoint

    class Net(tga.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = tga.nn.Parameter(tga.ones(2))

        def forward(self, x):
            inner = checkpoint(lambda a: a * self.w, x, use_reentrant=True)
            return (inner + x * self.w).sum()

    net = Net()
    model = DDP(net)
    x = (tga.ones(2) * (rank + 1)).requires_grad_()
    model(x).backward()
    return {"grad": net.w.grad.tolist(), "stale": [b.stale for b in model._reducer.buckets]}


def kill(rank, world):
    """Rank 1 dies (SIGKILL) in the middle of training; rank 0 must not hang."""
    model = DDP(GPT(GPTConfig(**CONFIG)))
    opt = tga.optim.SGD(model.parameters(), lr=0.1)
    for step, (x, y) in enumerate(global_batches(steps=1000)):
        if step == 3 and rank == 1:
            os.kill(os.getpid(), 9)
        if step == 3 and rank == 0 and os.environ.get("HANG_INSTEAD"):
            pass
        _, loss = model(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return {}


def hang(rank, world):
    """Rank 1 stops calling collectives (an endless sleep); rank 0 must abort naming it."""
    dist.barrier()
    if rank == 1:
        time.sleep(600)
    dist.barrier()
    return {}


def raises(rank, world):
    """Rank 1 raises (run without `-m mpi4py`: init()'s excepthook must end the job)."""
    if rank == 1:
        raise ValueError("rank 1 fails on purpose")
    dist.barrier()
    return {}


SCENARIOS = {"collectives": collectives, "ddp": ddp, "no_sync": no_sync, "unused": unused,
             "stale": stale, "kill": kill, "hang": hang, "raises": raises}


def main(names, out):
    dist.init_process_group(backend="mpi")
    rank, world = dist.get_rank(), dist.get_world_size()
    found = {"world": world, "launched": dist.is_mpi_launched()}
    for name in names.split(","):
        found[name] = SCENARIOS[name](rank, world)
    with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
        json.dump(found, f)
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
