"""What each rank runs under `mpiexec -n 2 python -m mpi4py ranks_cuda.py OUT` with the CUDA
simulator (NUMBA_ENABLE_CUDASIM=1; launched by test_mpi_cuda.py): host-staged collectives and
DDP on cuda tensors. Each rank writes its findings as JSON into OUT/rank<r>.json. Tiny shapes:
the simulator runs every CUDA thread as a Python thread."""
import json
import os
import sys

import tinygradattn as tga
import tinygradattn.distributed as dist
from tinygradattn.nn.parallel import DistributedDataParallel as DDP

DTYPES = ("float32", "float64", "int64")     # tinygradattn has no int32 tensors


def make_net():
    """Linear(4, 3) -> tanh -> Linear(3, 2), built on the cpu (the seed decides the weights)."""
    return tga.nn.Sequential(tga.nn.Linear(4, 3), tga.nn.Tanh(), tga.nn.Linear(3, 2))


def global_batch():
    """(x (4, 4), y (4, 2)) float32 on the cpu, the same on every rank and in the reference."""
    g = tga.Generator().manual_seed(7)
    return tga.randn(4, 4, generator=g), tga.randn(4, 2, generator=g)


def loss_of(model, x, y):
    return ((model(x) - y) ** 2).mean()


def _report(t):
    return {"values": t.tolist(), "dtype": str(t.dtype), "device": str(t.device)}


def collectives(rank, world):
    found = {}
    for name in DTYPES:
        t = tga.tensor([1, 2, 3], dtype=getattr(tga, name), device="cuda") * (rank + 1)
        data = t._data
        dist.all_reduce(t)
        found[f"sum_{name}"] = _report(t)
        found[f"same_memory_{name}"] = t._data is data
    t = tga.tensor([1.0, -2.0], device="cuda") * (rank + 2)
    dist.all_reduce(t, op=dist.ReduceOp.AVG)
    found["avg"] = _report(t)
    base = (tga.arange(6, dtype=tga.float32) * (rank + 1)).reshape(2, 3).to("cuda")
    dist.all_reduce(base.t())                             # a strided view: written back into base
    found["non_contiguous"] = _report(base)
    for name in DTYPES:
        t = tga.full((3,), rank + 1, dtype=getattr(tga, name), device="cuda")
        version = t._version[0]
        dist.broadcast(t, src=1)
        found[f"broadcast_{name}"] = _report(t)
        found[f"broadcast_bumped_{name}"] = t._version[0] > version
    parts = [tga.zeros(2, dtype=tga.int64, device="cuda") for _ in range(world)]
    dist.all_gather(parts, tga.tensor([rank, 10 * rank], device="cuda"))
    found["all_gather"] = [_report(p) for p in parts]
    return found


def ddp(rank, world):
    """Rank r's own weights (DDP must broadcast rank 0's), its half of the global batch; the
    gradients after one backward, then after a second one accumulated without zero_grad."""
    tga.manual_seed(rank)
    net = make_net().to("cuda")
    model = DDP(net, bucket_cap_mb=0.00003)              # ~30 bytes: several buckets
    found = {"n_buckets": len(model._reducer.buckets),
             "params": {k: v.tolist() for k, v in net.state_dict().items()}}
    x, y = global_batch()
    n = x.shape[0] // world
    x, y = x[rank * n:(rank + 1) * n].to("cuda"), y[rank * n:(rank + 1) * n].to("cuda")
    for name in ("first", "second"):
        loss_of(model, x, y).backward()
        found[name] = {k: p.grad.tolist() for k, p in net.named_parameters()}
    found["grad_devices"] = sorted({str(p.grad.device) for p in net.parameters()})
    found["param_devices"] = sorted({str(p.device) for p in net.parameters()})
    return found


def main(out):
    if tga.cuda.is_simulated():
        sys.setswitchinterval(1e-4)                      # tests/cuda/conftest.py's reason
    dist.init_process_group(backend="mpi")
    rank, world = dist.get_rank(), dist.get_world_size()
    found = {"world": world, "collectives": collectives(rank, world), "ddp": ddp(rank, world)}
    with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
        json.dump(found, f)
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
