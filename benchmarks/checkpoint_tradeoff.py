"""Activation checkpointing's trade-off, measured: memory and time of a GPT training step with
and without `gradient_checkpointing` (tga.utils.checkpoint on every block).

    python -m benchmarks.checkpoint_tradeoff              # the table (each case a child)
    python -m benchmarks.checkpoint_tradeoff nano on      # one case (off, on, time): JSON

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
- "step ms", "step CPU ms": the fastest of STEPS steps, wall-clock and CPU time, on one
  thread, in a third child that flips the switch on one model between steps; the ratio is
  of CPU times (on a shared, loaded machine the work done, not the waiting).
"""
import gc
import json
import pathlib
import resource
import subprocess
import sys
import time
import tracemalloc

STEPS = 10
SIZES = {
    # charlm's nano preset (nanoGPT's CPU recipe): B=12, T=64
    "nano": dict(n_layer=4, n_head=4, n_embd=128, block_size=64, vocab_size=65, batch=12),
    # the same model on 4x the context and 2x the batch: attention's T^2 and the stream grow
    "nano-T256-B24": dict(n_layer=4, n_head=4, n_embd=128, block_size=256, vocab_size=65,
                          batch=24),
}


def _setup(size, checkpointing):
    """(model, step) for a GPT of this size; step() runs one training step, -> its loss."""
    import tinygradattn as tga
    from tinygradattn.models import GPT, GPTConfig
    sizes = dict(SIZES[size])
    B = sizes.pop("batch")
    tga.manual_seed(0)
    model = GPT(GPTConfig(**sizes, gradient_checkpointing=checkpointing))
    opt = model.configure_optimizers(0.1, 1e-3, betas=(0.9, 0.99))
    idx = tga.randint(0, sizes["vocab_size"], (B, sizes["block_size"]))
    targets = tga.randint(0, sizes["vocab_size"], (B, sizes["block_size"]))

    def step():
        opt.zero_grad(set_to_none=True)
        _, loss = model(idx, targets)
        loss.backward()
        opt.step()
        return loss.item()
    return model, step, (idx, targets)


def _child(size, mode):
    """Memory of one case, in its own process."""
    import tinygradattn as tga
    from tinygradattn.utils.memory import activation_report
    model, step, (idx, targets) = _setup(size, mode == "on")
    step()                                                   # warm-up
    activations = activation_report(model, idx, targets, loss_fn=lambda out: out[1],
                                    verbose=False).total_bytes
    for p in model.parameters():
        p.grad = None
    gc.collect()
    tga.empty_cache()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    loss = step()
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"activations_mib": activations / 2 ** 20, "peak_mib": peak / 2 ** 20,
            "rss_mib": rss, "loss": loss}


def _timing(size):
    """Step time without and with checkpointing, on one thread: one model, the switch
    flipped between steps (a change of load hits both alike); per mode the fastest of STEPS
    steps, in wall-clock and in CPU time (the CPU time of one thread is the work done,
    whatever else runs on the machine)."""
    import tinygradattn as tga
    tga.set_num_threads(1)
    model, step, _ = _setup(size, False)
    step()
    wall, cpu = {"off": [], "on": []}, {"off": [], "on": []}
    for _ in range(STEPS):
        for mode in wall:
            if mode == "on":
                model.gradient_checkpointing_enable()
            else:
                model.gradient_checkpointing_disable()
            t0, c0 = time.perf_counter(), time.process_time()
            step()
            wall[mode].append(time.perf_counter() - t0)
            cpu[mode].append(time.process_time() - c0)
    return {**{mode: 1e3 * min(t) for mode, t in wall.items()},
            **{f"cpu_{mode}": 1e3 * min(t) for mode, t in cpu.items()}}


def measure(size, mode, timeout=600):
    res = subprocess.run([sys.executable, "-m", "benchmarks.checkpoint_tradeoff", size, mode],
                         cwd=pathlib.Path(__file__).resolve().parent.parent,
                         capture_output=True, text=True, timeout=timeout)
    if res.returncode != 0:
        raise RuntimeError(f"child {size} {mode} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv):
    if len(argv) == 2 and argv[0] in SIZES:
        size, mode = argv
        print(json.dumps(_timing(size) if mode == "time" else _child(size, mode)))
        return 0
    print("| size | checkpointing | activations MiB | step peak MiB | peak RSS MiB "
          "| step ms | step CPU ms | CPU time ratio | peak ratio |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for size in SIZES:
        off, on = measure(size, "off"), measure(size, "on")
        assert off["loss"] == on["loss"], (off["loss"], on["loss"])   # the same step
        ms = measure(size, "time")
        for mode, r in (("off", off), ("on", on)):
            ratios = "| | |" if mode == "off" else \
                f"| {ms['cpu_on'] / ms['cpu_off']:.2f}x | {r['peak_mib'] / off['peak_mib']:.2f}x |"
            print(f"| {size} | {mode} | {r['activations_mib']:.1f} | {r['peak_mib']:.1f} | "
                  f"{r['rss_mib']:.0f} | {ms[mode]:.1f} | {ms['cpu_' + mode]:.1f} {ratios}",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
