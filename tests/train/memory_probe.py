"""Is memory flat over many training steps / generate calls? The instrument and its workloads
(issue 16, "Memory"), used by test_memory_flat.py; run as a script it prints the figures:

    python tests/train/memory_probe.py [--steps 1000] [--device cpu]

`measure(step, n_steps, marks)` calls `step()` n_steps times and, before the first call and
after each call whose number is in marks, records a `Sample`:
- rss: resident memory of the process (/proc/self/statm; None where there is no /proc). It
  sees everything, C allocations of the kernels included, but moves by a few hundred KiB with
  the allocator's arenas, so it only catches leaks of a few KiB a step.
- n_tensors: live tinygradattn Tensors (gc.get_objects() after gc.collect(), filtered on
  Tensor; Tensors are gc-tracked, numpy arrays are not). Exact: one leaked Tensor shows.
- blocks: sys.getallocatedblocks(), the small blocks Python's allocator holds: every Python
  object (an ndarray's header, a dict, an int, a Context) is at least one. Free to read.
- traced: bytes held by Python allocations and numpy buffers (tracemalloc; numpy reports its
  data buffers to it), when trace=True. Close to exact, but costs ~4x in run time, so the
  tests leave it off; the script reports it.
- device: tga.cuda.memory_allocated() when the workload runs on cuda, else None.
`flat_report(samples, since=100)` names every figure that grew past its tolerance between
step `since` and any later mark (an empty list: flat). The tolerances and why:
- n_tensors: 0. Any growth is a leaked Tensor.
- blocks: 450. Measured growth from step 100 to 1,000: ~150 (training), ~30 (generate), and
  it levels off (+18 from step 1,000 to 3,000): caches filling, version counters passing 256
  becoming heap ints. A leak of one object a step adds >= 900 blocks over 900 steps; the
  bound catches a leaked object every second step.
- traced: 64 KiB. Measured growth from step 100 to 1,000 of the flat workloads: ~15 KiB
  (version counters passing 256 become heap ints; numpy's small-buffer cache fills). One
  leaked (32,) float32 array a step holds 128 B of data + ~112 B of ndarray header, so over
  900 steps ~210 KiB; the bound catches any leak above ~73 B a step (64 KiB / 900).
- rss: 2 MiB. Measured noise from step 100 to 1,000: 0.1-0.4 MiB. A leak above ~2.3 KiB a
  step (2 MiB / 900) fails; that covers a kernel's scratch buffer of one activation
  (B*T*C*4 = 4*16*32*4 = 8 KiB) that neither blocks nor tracemalloc see. Alone it would
  miss one leaked (32,) Tensor a step (~0.4 MiB over 900 steps): n_tensors is there for that.
- device: 0 (like n_tensors: the live blocks of the cuda allocator). Not run yet: under the
  CUDA simulator the first training step had not finished after 200 s; no GPU was at hand.
Nothing is added to the library for this: no counter on the Tensor hot path.
"""
import argparse
import gc
import os
import sys
import tracemalloc
from dataclasses import dataclass

import numpy as np

import tinygradattn as tga
from tinygradattn.models import GPT, GPTConfig

TENSOR_TOL = 0
BLOCKS_TOL = 450
TRACED_TOL = 64 * 1024              # bytes
RSS_TOL = 2 * 1024 * 1024           # bytes
TOLERANCES = {"n_tensors": TENSOR_TOL, "blocks": BLOCKS_TOL, "traced": TRACED_TOL,
              "rss": RSS_TOL, "device": 0}
MARKS = (1, 100, 250, 500, 750, 1000)

# a small GPT: 1,000 training steps take ~3 s of CPU untraced (the Python per op
# dominates); n_embd is the size of the "one small tensor" in the tolerance arithmetic
CONFIG = dict(vocab_size=64, block_size=16, n_layer=2, n_head=2, n_embd=32, dropout=0.1)
BATCH = 4
PROMPT_LEN, NEW_TOKENS = 3, 4       # generate: 3 + 4 tokens stay within block_size


@dataclass
class Sample:
    step: int
    rss: int | None                 # bytes
    n_tensors: int
    blocks: int
    traced: int | None              # bytes
    device: int | None              # bytes


def rss_bytes():
    """The process's resident memory now (not the peak), or None without /proc."""
    try:
        with open("/proc/self/statm") as f:
            resident_pages = int(f.read().split()[1])
    except OSError:
        return None
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def live_tensors():
    """How many tinygradattn Tensors are reachable (garbage in cycles collected first)."""
    gc.collect()
    return sum(1 for obj in gc.get_objects() if isinstance(obj, tga.Tensor))


def _sample(step, device):
    n_tensors = live_tensors()
    blocks = sys.getallocatedblocks()
    traced = tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else None
    on_device = tga.cuda.memory_allocated() if device == "cuda" else None
    return Sample(step, rss_bytes(), n_tensors, blocks, traced, on_device)


def measure(step, n_steps=1000, marks=MARKS, trace=True, device="cpu"):
    """Call step() n_steps times; -> [Sample] at step 0 (before any call) and at each mark.

    trace=True runs tracemalloc for the whole loop (and stops it after, unless it was on).
    """
    was_tracing = tracemalloc.is_tracing()
    if trace and not was_tracing:
        tracemalloc.start()
    try:
        samples = [_sample(0, device)]
        for i in range(1, n_steps + 1):
            step()
            if i in marks:
                samples.append(_sample(i, device))
    finally:
        if trace and not was_tracing:
            tracemalloc.stop()
    return samples


def flat_report(samples, since=100):
    """-> one line per figure that grew more than its tolerance between step `since` and a
    later sample (the largest growth); [] when all are flat. Figures that are None skip."""
    base = next(s for s in samples if s.step == since)
    later = [s for s in samples if s.step > since]
    if not later:
        raise ValueError(f"flat_report: no sample after step {since}")
    faults = []
    for name, tol in TOLERANCES.items():
        if getattr(base, name) is None:
            continue
        worst = max(later, key=lambda s: getattr(s, name))
        growth = getattr(worst, name) - getattr(base, name)
        if growth > tol:
            faults.append(f"{name} grew by {growth} from step {since} to step {worst.step} "
                          f"(tolerance {tol})")
    return faults


# ---- workloads ----------------------------------------------------------------------------
def make_model(device="cpu"):
    tga.manual_seed(0)
    return GPT(GPTConfig(**CONFIG)).to(device)


def training_step(model, device="cpu"):
    """A step() doing what Trainer._train_step does: a fresh batch, forward with
    cross-entropy, loss.item(), zero_grad(set_to_none), backward, clip_grad_norm_, AdamW."""
    opt = model.configure_optimizers(weight_decay=0.1, learning_rate=1e-3)
    params = list(model.parameters())
    T, V = CONFIG["block_size"], CONFIG["vocab_size"]
    corpus = np.random.default_rng(0).integers(0, V, size=4096)
    rng = np.random.default_rng(1)

    def step():
        model.train()
        starts = rng.integers(0, len(corpus) - T - 1, size=BATCH)
        rows = np.stack([corpus[s:s + T + 1] for s in starts])          # (B, T + 1)
        x = tga.tensor(rows[:, :-1].copy(), device=device)               # (B, T)
        y = tga.tensor(rows[:, 1:].copy(), device=device)                # (B, T)
        _, loss = model(x, y)
        loss.item()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        tga.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
    return step


def generate_step(model, device="cpu"):
    """A step() calling model.generate on a fresh prompt (KV cache on; top_k on odd calls)."""
    V = CONFIG["vocab_size"]
    rng = np.random.default_rng(2)
    calls = [0]

    def step():
        model.eval()
        calls[0] += 1
        prompt = tga.tensor(rng.integers(0, V, size=(1, PROMPT_LEN)), device=device)
        top_k = 5 if calls[0] % 2 else None
        out = model.generate(prompt, NEW_TOKENS, top_k=top_k)           # (1, 3 + 4)
        assert out.shape == (1, PROMPT_LEN + NEW_TOKENS)
    return step


# ---- script -------------------------------------------------------------------------------
def _kib(n):
    return "-" if n is None else f"{n / 1024:.0f}"


def print_table(title, samples):
    """Print the samples, then "flat" or the figures that grew; -> True when flat."""
    print(f"{title}\n{'step':>6} {'RSS KiB':>9} {'Tensors':>8} {'blocks':>8} "
          f"{'traced KiB':>11} {'device KiB':>11}")
    for s in samples:
        print(f"{s.step:>6} {_kib(s.rss):>9} {s.n_tensors:>8} {s.blocks:>8} "
              f"{_kib(s.traced):>11} {_kib(s.device):>11}")
    faults = flat_report(samples)
    print("flat from step 100" if not faults else "GROWTH: " + "; ".join(faults))
    return not faults


def run_workload(make_step, n_steps, marks, device, trace):
    """Samples of a fresh model's workload; with trace, the traced column comes from a
    second, traced run (RSS stays as a user sees it, without tracemalloc's bookkeeping)."""
    plain = measure(make_step(make_model(device), device), n_steps, marks, trace=False,
                    device=device)
    if trace:
        traced = measure(make_step(make_model(device), device), n_steps, marks, trace=True,
                         device=device)
        for p, t in zip(plain, traced):
            p.traced = t.traced
    return plain


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-trace", action="store_true", help="skip the tracemalloc runs")
    args = parser.parse_args(argv)
    marks = (1, 100, 500, args.steps)
    print(f"GPT {CONFIG}, batch {BATCH}; generate {NEW_TOKENS} tokens after {PROMPT_LEN}; "
          f"device {args.device}")
    ok = True
    for name, make_step in (("training steps", training_step), ("generate calls", generate_step)):
        samples = run_workload(make_step, args.steps, marks, args.device, not args.no_trace)
        ok &= print_table(f"\n{args.steps} {name}", samples)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
