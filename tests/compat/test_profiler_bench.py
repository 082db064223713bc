"""nanoGPT's bench.py with profile=True (issue 17): torch.profiler.profile with activities,
schedule(wait=5, warmup=5, active=5, repeat=1), tensorboard_trace_handler, record_shapes,
profile_memory, with_stack, with_flops, with_modules and prof.step() runs through
`tinygradattn run`, and the trace of the 5 active steps lands in ./bench_log.

The one change to the copy: the model's size (bench.py fixes GPT-2 small, 124M parameters,
about a minute on a CPU; unmodified it runs too, see the issue 17 report). Skipped where
../shared is absent.
"""
import json
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NANOGPT = os.path.join(os.path.dirname(ROOT), "shared", "clients", "nanoGPT")

pytestmark = pytest.mark.skipif(not os.path.isdir(NANOGPT),
                                reason="../shared/clients/nanoGPT is not beside the repository")

GPT2_SMALL = "n_layer = 12, n_head = 12, n_embd = 768,"


def test_nanogpt_bench_profile_runs_and_writes_the_active_steps_trace(tmp_path):
    for name in ("bench.py", "configurator.py", "model.py"):
        shutil.copy(os.path.join(NANOGPT, name), tmp_path / name)
    bench = (tmp_path / "bench.py").read_text()
    assert GPT2_SMALL in bench
    (tmp_path / "bench.py").write_text(bench.replace(GPT2_SMALL,
                                                     "n_layer = 2, n_head = 2, n_embd = 32,"))
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    p = subprocess.run([sys.executable, "-m", "tinygradattn", "run", "bench.py", "--device=cpu",
                        "--compile=False", "--real_data=False", "--profile=True",
                        "--batch_size=2", "--block_size=16", "--dtype=float32"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "14/15 loss:" in p.stdout
    traces = list((tmp_path / "bench_log").glob("*.pt.trace.json"))
    assert len(traces) == 1
    events = json.loads(traces[0].read_text())["traceEvents"]
    steps = sorted(e["name"] for e in events if e["name"].startswith("ProfilerStep#"))
    assert steps == [f"ProfilerStep#{n}" for n in range(10, 15)]     # the 5 active steps
    counts = {}
    for e in events:
        counts[(e["cat"], e["name"])] = counts.get((e["cat"], e["name"]), 0) + 1
    # per step, forward: 2 layers of c_attn, c_proj and c_fc, and lm_head (7 Linear); the mlp's
    # c_proj after the GELU, recognised with c_fc as GeluMLPOfParts (2), whose backward
    # replaces c_fc's (5 LinearBackward); 2 attentions (q, k, v split out of c_attn:
    # recognised as QKVAttention); 2 x 2 + 1 layer norms; one cross-entropy
    for name, fwd, bwd in (("Linear", 7, 5), ("GeluMLPOfParts", 2, 2), ("QKVAttention", 2, 2),
                           ("LayerNorm", 5, 5), ("CrossEntropyMean", 1, 1)):
        assert (counts[("forward", name)], counts[("backward", name + "Backward")]) \
            == (5 * fwd, 5 * bwd), name
