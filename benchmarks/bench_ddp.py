"""DistributedDataParallel on the nano charlm GPT: step time, tokens/s and the Allreduce time
per step, with and without overlap (issue 18). Run under mpiexec, one thread per rank:

    OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 \
      mpiexec -n 2 --mca btl self,sm python -m mpi4py benchmarks/bench_ddp.py
    OMP_NUM_THREADS=1 python benchmarks/bench_ddp.py          # N=1: the same global batch

The global batch is the preset's (12 x 64 tokens); each of N ranks takes 12 / N rows. Rank 0
prints one line per mode: the fastest and the median step time (the machine is shared: the
fastest is the figure other processes disturb least), tokens/s (global, at the fastest
step), "exposed" communication (the
time backward's end waits for buckets and writes the averages back), and a blocking
Allreduce of all gradients alone (what communication costs without any overlap).
"""
import statistics
import sys
import time

import tinygradattn as tga
import tinygradattn.distributed as dist
from tinygradattn.models.gpt import GPT
from tinygradattn.nn.parallel import DistributedDataParallel as DDP
from tinygradattn.tasks.charlm import CHARLM_PRESETS, gpt_config

WARMUP, STEPS = 5, 30
# (overlap_backward, bucket_cap_mb, a timed barrier before the final wait)
MODES = [(False, 25, False), (True, 25, False), (True, 0.5, False), (False, 25, True),
         (True, 25, True), (True, 0.5, True)]
V = 65                                   # shakespeare_char's vocabulary


def batches(world, rank):
    p = CHARLM_PRESETS["nano"]
    B, T = p["batch_size"], p["block_size"]
    g = tga.Generator().manual_seed(0)
    x = tga.randint(0, V, (B, T), generator=g)
    y = tga.randint(0, V, (B, T), generator=g)
    n = B // world
    return x[rank * n:(rank + 1) * n], y[rank * n:(rank + 1) * n], B * T


def run(model, x, y, timer):
    opt = tga.optim.AdamW(model.parameters(), lr=1e-3)
    times = []
    for i in range(WARMUP + STEPS):
        t0 = time.perf_counter()
        _, loss = model(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i >= WARMUP:
            times.append(time.perf_counter() - t0)
    exposed = timer[WARMUP:] if timer is not None else [0.0]
    return min(times), statistics.median(times), min(exposed), statistics.median(exposed)


def timed_finalize(reducer, skew):
    """Wrap reducer.finalize to record its seconds per call (the exposed communication).
    skew: a barrier first, timed apart (how long this rank waits for the slower one; the
    finalize time then is the communication alone). A diagnostic: it costs a barrier."""
    spent, waited, inner = [], [], reducer.finalize

    def finalize():
        if skew:
            t0 = time.perf_counter()
            dist.barrier()
            waited.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        inner()
        spent.append(time.perf_counter() - t0)
    reducer.finalize = finalize
    return spent, waited


def main():
    world, rank = 1, 0
    if "--mpi" in sys.argv or "OMPI_COMM_WORLD_SIZE" in __import__("os").environ:
        dist.init()
        world, rank = dist.get_world_size(), dist.get_rank()
    x, y, tokens = batches(world, rank)
    cfg = gpt_config(CHARLM_PRESETS["nano"], V)
    rows = []
    if world == 1:
        tga.manual_seed(0)
        rows.append(("N=1", *run(GPT(cfg), x, y, None), 0.0))
    else:
        for overlap, cap, skew in MODES * 2:
            tga.manual_seed(0)
            model = DDP(GPT(cfg), overlap_backward=overlap, bucket_cap_mb=cap)
            spent, waited = timed_finalize(model._reducer, skew)
            figures = run(model, x, y, spent)
            name = f"N={world} overlap={overlap} buckets={len(model._reducer.buckets)}"
            if skew:
                name += f" (skew {1e3 * statistics.median(waited[WARMUP:]):.1f} ms)"
            rows.append((name, *figures, 0.0))
        n = sum(p.numel() for p in model.parameters())
        flat = tga.zeros(n)
        walls = []
        for _ in range(20):
            dist.barrier()
            t0 = time.perf_counter()
            dist.all_reduce(flat)
            walls.append(time.perf_counter() - t0)
        rows.append((f"all_reduce of {n} float32 ({4 * n / 1e6:.1f} MB)", 0, 0, 0, 0,
                     statistics.median(walls)))
    if rank == 0:
        print(f"{'mode':48s} step min / median ms  tok/s (min step)  exposed comm min / median"
              " ms  all_reduce alone ms")
        for name, fastest, step, exposed_min, exposed, alone in rows:
            tps = tokens / fastest if fastest else 0
            print(f"{name:48s} {1e3 * fastest:7.2f} / {1e3 * step:7.2f}  {tps:8.0f}  "
                  f"{1e3 * exposed_min:6.2f} / {1e3 * exposed:6.2f}  {1e3 * alone:6.2f}",
                  flush=True)


if __name__ == "__main__":
    main()
