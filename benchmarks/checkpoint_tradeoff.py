"""Activation checkpointing's trade-off, measured: memory and time of a GPT training step with
and without `gradient_checkpointing` (tga.utils.checkpoint on every block).

    python -m benchmarks.checkpoint_tradeoff [--repeat N]   # the table (each case a child)
    python -m benchmarks.checkpoint_tradeoff nano on      # one case: prints JSON

A step is forward + cross-entropy, backward, AdamW (nanoGPT's two groups). Each case runs in
a fresh interpreter, after one warm-up step:
- "activations": activation_report's count of what the forward keeps for backward (saved
  arrays, and the tensors the graph holds);
- "step peak": tracemalloc's peak above the start of one step (numpy reports its allocations
  to tracemalloc; the buffer pool is emptied first, so every buffer the step needs is
  allocated inside it); the weights, gradients and Adam state of the warm-up are there before
  the start and not counted; the gradients are set to None first, so they are;
- "RSS": the process's peak resident set (ru_maxrss) after the steps, the interpreter and
  the library included;
- "step ms": the median of STEPS timed steps, tracemalloc off; the fastest of --repeat
  children (default 2), run alternately with and without checkpointing.
"""
import gc
import json
import pathlib
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc

STEPS = 5
SIZES = {
    # charlm's nano preset (nanoGPT's CPU recipe): B=12, T=64
    "nano": dict(n_layer=4, n_head=4, n_embd=128, block_size=64, vocab_size=65, batch=12),
    # the same model on 4x the context and 2x the batch: attention's T^2 and the stream grow
    "nano-T256-B24": dict(n_layer=4, n_head=4, n_embd=128, block_size=256, vocab_size=65,
                          batch=24),
}


def _child(size, mode):
    import tinygradattn as tga
    from tinygradattn.models import GPT, GPTConfig
    from tinygradattn.utils.memory import activation_report
    sizes = dict(SIZES[size])
    B = sizes.pop("batch")
    tga.manual_seed(0)
    model = GPT(GPTConfig(**sizes, gradient_checkpointing=(mode == "on")))
    opt = model.configure_optimizers(0.1, 1e-3, betas=(0.9, 0.99))
    idx = tga.randint(0, sizes["vocab_size"], (B, sizes["block_size"]))
    targets = tga.randint(0, sizes["vocab_size"], (B, sizes["block_size"]))

    def step():
        opt.zero_grad(set_to_none=True)
        _, loss = model(idx, targets)
        loss.backward()
        opt.step()
        return loss.item()

    step()                                                   # warm-up
    activations = activation_report(model, idx, targets, loss_fn=lambda out: out[1],
                                    verbose=False).total_bytes
    opt.zero_grad(set_to_none=True)
    gc.collect()
    tga.empty_cache()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    loss = step()
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    times = []
    for _ in range(STEPS):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"activations_mib": activations / 2 ** 20, "peak_mib": peak / 2 ** 20, "rss_mib": rss,
            "step_ms": 1e3 * statistics.median(times), "loss": loss}


def measure(size, mode, timeout=600):
    res = subprocess.run([sys.executable, "-m", "benchmarks.checkpoint_tradeoff", size, mode],
                         cwd=pathlib.Path(__file__).resolve().parent.parent,
                         capture_output=True, text=True, timeout=timeout)
    if res.returncode != 0:
        raise RuntimeError(f"child {size} {mode} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv):
    if len(argv) == 2 and argv[0] in SIZES:
        print(json.dumps(_child(*argv)))
        return 0
    repeat = int(argv[argv.index("--repeat") + 1]) if "--repeat" in argv else 2
    print("| size | checkpointing | activations MiB | step peak MiB | peak RSS MiB "
          "| step ms | time ratio | peak ratio |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for size in SIZES:
        runs = {"off": [], "on": []}
        for _ in range(repeat):                 # alternated: a load change hits both
            for mode in runs:
                runs[mode].append(measure(size, mode))
        off, on = (min(runs[m], key=lambda r: r["step_ms"]) for m in ("off", "on"))
        assert off["loss"] == on["loss"], (off["loss"], on["loss"])   # the same step
        for mode, r in (("off", off), ("on", on)):
            ratios = "| | |" if mode == "off" else \
                f"| {r['step_ms'] / off['step_ms']:.2f}x | {r['peak_mib'] / off['peak_mib']:.2f}x |"
            print(f"| {size} | {mode} | {r['activations_mib']:.1f} | {r['peak_mib']:.1f} | "
                  f"{r['rss_mib']:.0f} | {r['step_ms']:.1f} {ratios}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
