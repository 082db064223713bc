"""Whole training steps of the main job's models, ours next to a PyTorch twin: the numwords
Seq2Seq (2+2 layers, d=128, batch 128) and the nano char GPT (nanoGPT's CPU preset).

    python -m benchmarks.bench_numwords                 # steps/s and tokens/s, one table
    python -m benchmarks.bench_numwords --steps 20      # more steps per measurement
    python -m pytest benchmarks/bench_numwords.py       # the same, as pytest-benchmark groups

The twins are built from the same weights (our state_dict names are PyTorch's), take the same
batches and run forward + backward + clip + AdamW step, dropout on, as the trainer does.
"""
import argparse
import math
import time

import numpy as np
import pytest

import tinygradattn as tga
from tests.torch_gpt import torch_gpt

from .common import require, torch


# ---- torch twins --------------------------------------------------------------------------------
def torch_seq2seq(config):
    """torch module with the names and computation of tga's Seq2SeqTransformer(config)."""
    nn = torch.nn
    c = config

    class PE(nn.Module):
        def __init__(self):
            super().__init__()
            pos = torch.arange(c.max_len, dtype=torch.float64)[:, None]
            freqs = torch.exp(torch.arange(0, c.d_model, 2, dtype=torch.float64)
                              * (-math.log(10000.0) / c.d_model))
            pe = torch.zeros(c.max_len, c.d_model, dtype=torch.float64)
            pe[:, 0::2] = torch.sin(pos * freqs)
            pe[:, 1::2] = torch.cos(pos * freqs)
            self.register_buffer("pe", pe.float(), persistent=False)

        def forward(self, x):
            return x + self.pe[:x.shape[1]]

    class Seq2Seq(nn.Module):
        def __init__(self):
            super().__init__()
            d = c.d_model
            kw = dict(dim_feedforward=c.dim_feedforward, dropout=c.dropout,
                      activation=c.activation, batch_first=True, norm_first=c.norm_first)
            self.src_embed = nn.Embedding(c.src_vocab_size, d)
            self.tgt_embed = nn.Embedding(c.tgt_vocab_size, d)
            self.pos = PE()
            self.dropout = nn.Dropout(c.dropout)
            self.encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(d, c.nhead, **kw),
                                                 c.num_encoder_layers, norm=nn.LayerNorm(d),
                                                 enable_nested_tensor=False)
            self.decoder = nn.TransformerDecoder(nn.TransformerDecoderLayer(d, c.nhead, **kw),
                                                 c.num_decoder_layers, norm=nn.LayerNorm(d))
            self.generator = nn.Linear(d, c.tgt_vocab_size)

        def forward(self, src, tgt_in):
            scale = math.sqrt(c.d_model)
            pad = src == c.pad_id
            mem = self.encoder(self.dropout(self.pos(self.src_embed(src) * scale)),
                               src_key_padding_mask=pad)
            T = tgt_in.shape[1]
            mask = nn.Transformer.generate_square_subsequent_mask(T)
            y = self.decoder(self.dropout(self.pos(self.tgt_embed(tgt_in) * scale)), mem,
                             tgt_mask=mask, tgt_is_causal=True, memory_key_padding_mask=pad)
            return self.generator(y)

    return Seq2Seq()


def copy_weights(ours, theirs):
    """Load our state_dict into the torch twin (same names); fails on any mismatch."""
    state = {k: torch.from_numpy(v.numpy().copy()) for k, v in ours.state_dict().items()}
    theirs.load_state_dict(state, strict=True)


# ---- the two workloads --------------------------------------------------------------------------
class NumwordsStep:
    """One training step of the default task's model, for impl in ("tga", "torch")."""

    def __init__(self, impl, batch_size=128, seed=0):
        from tinygradattn.tasks import NumwordsTask
        self.impl = impl
        tga.manual_seed(seed)
        self.task = NumwordsTask(batch_size=batch_size, seed=seed)
        self.model = self.task.build_model()
        c = self.model.config
        self.shape = (f"{c.num_encoder_layers}+{c.num_decoder_layers} layers d{c.d_model} "
                      f"B{batch_size} dropout {c.dropout:g}")
        self.tokens = None
        if impl == "torch":
            torch.manual_seed(seed)
            twin = torch_seq2seq(self.model.config)
            copy_weights(self.model, twin)
            self.model = twin
            self.opt = torch.optim.AdamW(twin.parameters(), lr=1e-3, weight_decay=0.01)
        else:
            self.opt = tga.optim.AdamW(self.model.parameters(), lr=1e-3, weight_decay=0.01)
        self.model.train()
        self.batches = [self._batch() for _ in range(4)]
        self.i = 0

    def _batch(self):
        src, tin, tout = self.task.train_batch()
        self.tokens = int((tout != 0).sum())
        if self.impl == "torch":
            return tuple(torch.from_numpy(t.numpy().copy()) for t in (src, tin, tout))
        return src, tin, tout

    def __call__(self):
        src, tin, tout = self.batches[self.i % len(self.batches)]
        self.i += 1
        logits = self.model(src, tin)
        V = logits.shape[-1]
        if self.impl == "torch":
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), tout.reshape(-1),
                                                     ignore_index=0)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        else:
            loss = tga.nn.functional.cross_entropy(logits.reshape(-1, V), tout.reshape(-1),
                                                   ignore_index=0)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            tga.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()
        return float(loss)


class CharLMStep:
    """One training step of the nano char GPT preset (batch 12 x 64 tokens, vocab 65)."""

    def __init__(self, impl, seed=0, vocab_size=65):
        from tinygradattn.models import GPT
        from tinygradattn.tasks import CHARLM_PRESETS, gpt_config
        self.impl = impl
        p = CHARLM_PRESETS["nano"]
        tga.manual_seed(seed)
        cfg = gpt_config(p, vocab_size)
        self.model = GPT(cfg)
        self.B, self.T = p["batch_size"], p["block_size"]
        rng = np.random.default_rng(seed)
        data = rng.integers(0, vocab_size, size=(4, self.B, self.T + 1))
        if impl == "torch":
            twin = torch_gpt(torch, cfg)
            copy_weights(self.model, twin)
            self.model = twin
            self.opt = torch.optim.AdamW(twin.parameters(), lr=1e-3, betas=(0.9, 0.99),
                                         weight_decay=0.1)
            self.batches = [(torch.from_numpy(d[:, :-1].copy()), torch.from_numpy(d[:, 1:].copy()))
                            for d in data]
        else:
            self.opt = self.model.configure_optimizers(0.1, 1e-3, betas=(0.9, 0.99))
            self.batches = [(tga.tensor(d[:, :-1].copy()), tga.tensor(d[:, 1:].copy()))
                            for d in data]
        self.model.train()
        self.tokens = self.B * self.T
        self.shape = f"nano B{self.B} T{self.T} dropout {cfg.dropout:g}"
        self.i = 0

    def __call__(self):
        x, y = self.batches[self.i % len(self.batches)]
        self.i += 1
        _, loss = self.model(x, y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        clip = torch.nn.utils.clip_grad_norm_ if self.impl == "torch" else tga.nn.utils.clip_grad_norm_
        clip(self.model.parameters(), 1.0)
        self.opt.step()
        return float(loss)


WORKLOADS = {"numwords": NumwordsStep, "charlm-nano": CharLMStep}


@pytest.mark.parametrize("impl", ["tga", "torch"])
@pytest.mark.parametrize("workload", sorted(WORKLOADS))
def test_train_step(benchmark, impl, workload):
    require(impl)
    step = WORKLOADS[workload](impl)
    benchmark.group = f"train step {workload}"
    benchmark.extra_info.update(impl=impl, tokens=step.tokens, bench=f"{workload} train step",
                                shape=step.shape)
    loss = benchmark(step)
    assert math.isfinite(loss)


def measure(workload, impl, steps, warmup=2):
    step = WORKLOADS[workload](impl)
    for _ in range(warmup):
        step()
    best = float("inf")
    for _ in range(steps):                 # the minimum: least disturbed by other processes
        t0 = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - t0)
    return best, step.tokens


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8, help="timed steps per measurement")
    args = parser.parse_args(argv)
    if torch is None:
        raise SystemExit("PyTorch is needed for the comparison: pip install torch==2.13.0")
    torch.set_num_threads(tga.get_num_threads())
    print(f"tinygradattn {tga.backend_info()}; torch {torch.__version__} "
          f"({torch.get_num_threads()} threads); best of {args.steps} steps")
    print(f"{'workload':<13}{'impl':<7}{'s/step':>9}{'steps/s':>9}{'tokens/s':>11}"
          f"{'tga/torch speed':>17}")
    for workload in WORKLOADS:
        res = {impl: measure(workload, impl, args.steps) for impl in ("tga", "torch")}
        for impl, (sec, tokens) in res.items():
            ratio = res["torch"][0] / res["tga"][0] if impl == "tga" else 1.0
            print(f"{workload:<13}{impl:<7}{sec:9.3f}{1 / sec:9.2f}{tokens / sec:11,.0f}"
                  f"{ratio:17.2f}", flush=True)


if __name__ == "__main__":
    main()
