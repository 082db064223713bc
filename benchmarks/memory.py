"""Peak memory (RSS) of ours vs torch, each case in a fresh interpreter that imports only its
own library: resource.getrusage(RUSAGE_SELF).ru_maxrss after the work, and after the setup.

    python -m benchmarks.memory                  # both cases, a small table
    python -m benchmarks.memory gpt tga          # one child: prints JSON

Cases:
- "gpt": the benchmark GPT (tests/torch_gpt.py's BENCH_CONFIG, batch 12) trained for 3
  steps (forward, backward, clip_grad_norm_, AdamW). The torch child builds the twin with
  GPT-2's initialisation instead of copying our weights (that would load tinygradattn into
  its process); memory does not depend on the values.
- "usergpt-nano", "usergpt-base": the user-written GPT of benchmarks/user_gpt.py, 3 steps at
  each preset (own random weights on each side).
- "numwords": the default task's Seq2Seq step (benchmarks/bench_numwords.py), 3 steps; the
  torch child imports tinygradattn for the task's batches.
- "attention": causal scaled_dot_product_attention forward + backward at B=1, H=8, T=4096,
  D=64, float32 (one T x T float32 matrix per head would be 8 x 64 MiB = 512 MiB).
The peak includes the interpreter and the library import (torch's import alone is a few
hundred MiB); "setup" is the peak before the measured work started, and the report's target
compares the growth over it (peak - setup), which the imports do not enter.
"""
import json
import resource
import subprocess
import sys
import types

ATTN_SHAPE = (1, 8, 4096, 64)
GPT_STEPS = 3


def _rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024     # KiB on Linux


def _child_gpt(impl):
    import numpy as np

    from tests.torch_gpt import BATCH_SIZE, BENCH_CONFIG, BETAS, CLIP, LR, WEIGHT_DECAY, \
        gpt2_init_, torch_adamw, torch_gpt
    T, V = BENCH_CONFIG["block_size"], BENCH_CONFIG["vocab_size"]
    data = np.random.default_rng(0).integers(0, V, size=(BATCH_SIZE, T + 1))
    if impl == "tga":
        import tinygradattn as tga
        from tinygradattn.models import GPT, GPTConfig
        tga.manual_seed(0)
        model = GPT(GPTConfig(**BENCH_CONFIG))
        opt = model.configure_optimizers(WEIGHT_DECAY, LR, betas=BETAS)
        clip = tga.nn.utils.clip_grad_norm_
        x, y = tga.tensor(data[:, :-1].copy()), tga.tensor(data[:, 1:].copy())
    else:
        import torch
        torch.set_num_threads(_threads())
        torch.manual_seed(0)
        model = torch_gpt(torch, types.SimpleNamespace(**BENCH_CONFIG))
        gpt2_init_(torch, model, BENCH_CONFIG["n_layer"])
        opt = torch_adamw(torch, model)
        clip = torch.nn.utils.clip_grad_norm_
        x, y = torch.from_numpy(data[:, :-1].copy()), torch.from_numpy(data[:, 1:].copy())
    params = list(model.parameters())
    setup = _rss_mib()
    for _ in range(GPT_STEPS):
        _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        clip(params, CLIP)
        opt.step()
    return setup, _rss_mib()


def _child_attention(impl):
    B, H, T, D = ATTN_SHAPE
    if impl == "tga":
        import tinygradattn as tga
        import tinygradattn.nn.functional as F
        tga.manual_seed(0)
        q, k, v = (tga.randn(B, H, T, D, requires_grad=True) for _ in range(3))
        dout = tga.randn(B, H, T, D)
    else:
        import torch
        import torch.nn.functional as F
        torch.set_num_threads(_threads())
        torch.manual_seed(0)
        q, k, v = (torch.randn(B, H, T, D, requires_grad=True) for _ in range(3))
        dout = torch.randn(B, H, T, D)
    setup = _rss_mib()
    F.scaled_dot_product_attention(q, k, v, is_causal=True).backward(dout)
    return setup, _rss_mib()


def _child_usergpt(impl, preset):
    import numpy as np

    from benchmarks import user_gpt
    if impl == "tga":
        import tinygradattn as lib
        wrap = lib.tensor
    else:
        import torch as lib
        lib.set_num_threads(_threads())
        wrap = lib.from_numpy
    cfg = user_gpt.PRESETS[preset]
    lib.manual_seed(0)
    model = user_gpt.build(lib, **cfg)
    opt = user_gpt.optimizer(lib, model)
    B, T, V = cfg["batch_size"], cfg["block_size"], cfg["vocab_size"]
    data = np.random.default_rng(0).integers(0, V, size=(B, T + 1))
    x, y = wrap(data[:, :-1].copy()), wrap(data[:, 1:].copy())
    setup = _rss_mib()
    for _ in range(GPT_STEPS):
        user_gpt.train_step(lib, model, opt, x, y)
    return setup, _rss_mib()


def _child_numwords(impl):
    """The default task's step. Its batches come from our task, so the torch child imports
    tinygradattn too (its import is in "setup", not in the growth)."""
    from benchmarks.bench_numwords import NumwordsStep
    if impl == "torch":
        import torch
        torch.set_num_threads(_threads())
    step = NumwordsStep(impl)
    setup = _rss_mib()
    for _ in range(GPT_STEPS):
        step()
    return setup, _rss_mib()


def _threads():
    """torch's thread count in its child = ours (read without importing tinygradattn)."""
    import os
    return int(os.environ.get("TGA_BENCH_THREADS") or os.cpu_count() or 1)


CASES = {
    "gpt": (_child_gpt, "GPT train step peak RSS",
            "L4 H4 C128 T64 B12 V65, 3 steps"),
    "usergpt-nano": (lambda impl: _child_usergpt(impl, "nano"), "user GPT train step peak RSS",
                     "nano, 3 steps"),
    "usergpt-base": (lambda impl: _child_usergpt(impl, "base"), "user GPT train step peak RSS",
                     "base, 3 steps"),
    "numwords": (_child_numwords, "numwords train step peak RSS", "B128, 3 steps"),
    "attention": (_child_attention, "attention fwd+bwd peak RSS",
                  "causal " + "x".join(map(str, ATTN_SHAPE))),
}


def measure(case, impl, threads=None, timeout=600):
    """{"setup": MiB, "peak": MiB} of one case for one library, in a fresh interpreter."""
    import os
    import pathlib
    env = dict(os.environ)
    if threads:
        env["TGA_BENCH_THREADS"] = str(threads)
    res = subprocess.run([sys.executable, "-m", "benchmarks.memory", case, impl],
                         cwd=pathlib.Path(__file__).resolve().parent.parent, env=env,
                         capture_output=True, text=True, timeout=timeout)
    if res.returncode != 0:
        raise RuntimeError(f"memory child {case} {impl} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv):
    if len(argv) == 2:
        case, impl = argv
        setup, peak = CASES[case][0](impl)
        print(json.dumps({"setup": setup, "peak": peak}))
        return 0
    print(f"{'case':<30}{'impl':<7}{'setup MiB':>10}{'peak MiB':>10}")
    for case, (_, label, _) in CASES.items():
        for impl in ("tga", "torch"):
            r = measure(case, impl)
            print(f"{label:<30}{impl:<7}{r['setup']:10.0f}{r['peak']:10.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
