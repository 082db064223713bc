"""Whole models on cuda: a 2-layer GPT and a small Seq2Seq trained for a few steps match the
same runs on the CPU; a training step keeps its data on the device (the one host copy is
loss.item()) and, once warm, allocates no device memory; `tinygradattn train --device cuda`
runs a tiny task. Simulator in CI; the tolerance is float32's over a few steps (1e-4)."""

import numpy as np
import pytest

import tinygradattn as tga
from tinygradattn.models import GPT, GPTConfig
from tinygradattn.models.seq2seq import Seq2SeqConfig, Seq2SeqTransformer

pytestmark = pytest.mark.usefixtures("cuda_device")
GPT_CFG = dict(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=8, dropout=0.0)


def _gpt_run(device, steps, data):
    tga.manual_seed(0)
    model = GPT(GPTConfig(**GPT_CFG)).to(device)
    opt = model.configure_optimizers(0.1, 1e-2, betas=(0.9, 0.95))
    params = list(model.parameters())
    losses = []
    for x, y in data[:steps]:
        x, y = tga.tensor(x, device=device), tga.tensor(y, device=device)
        _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        tga.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        losses.append(loss.item())
    return losses, {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}


def _gpt_batches(n, B=2):
    rng = np.random.default_rng(0)
    d = rng.integers(0, GPT_CFG["vocab_size"], (n, B, GPT_CFG["block_size"] + 1))
    return [(b[:, :-1].copy(), b[:, 1:].copy()) for b in d]


def test_gpt_trained_on_cuda_matches_cpu():
    data = _gpt_batches(3)
    cpu_losses, cpu_state = _gpt_run("cpu", 3, data)
    cuda_losses, cuda_state = _gpt_run("cuda", 3, data)
    np.testing.assert_allclose(cuda_losses, cpu_losses, rtol=1e-4, atol=1e-4)
    for k in cpu_state:
        np.testing.assert_allclose(cuda_state[k], cpu_state[k], rtol=1e-4, atol=1e-4,
                                   err_msg=k)


def test_seq2seq_trained_on_cuda_matches_cpu():
    rng = np.random.default_rng(1)
    src = rng.integers(3, 13, (2, 5))
    src[1, 3:] = 0                                           # padding
    tgt = rng.integers(3, 13, (2, 5))

    def run(device):
        tga.manual_seed(0)
        model = Seq2SeqTransformer(Seq2SeqConfig(
            src_vocab_size=13, tgt_vocab_size=13, d_model=8, nhead=2, num_encoder_layers=1,
            num_decoder_layers=1, dim_feedforward=16, dropout=0.0, max_len=8)).to(device)
        opt = tga.optim.Adam(model.parameters(), lr=1e-2)
        s, t = tga.tensor(src, device=device), tga.tensor(tgt, device=device)
        losses = []
        for _ in range(2):
            logits = model(s, t[:, :-1])
            loss = tga.nn.functional.cross_entropy(logits.reshape(-1, 13),
                                                   t[:, 1:].reshape(-1), ignore_index=0)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        return losses, model.generator.weight.detach().cpu().numpy()

    (cl, cw), (gl, gw) = run("cpu"), run("cuda")
    np.testing.assert_allclose(gl, cl, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(gw, cw, rtol=1e-4, atol=1e-4)


def test_a_training_step_copies_only_the_loss_and_allocates_nothing_once_warm():
    tga.manual_seed(0)
    model = GPT(GPTConfig(**GPT_CFG)).to("cuda")
    opt = model.configure_optimizers(0.1, 1e-2, betas=(0.9, 0.95))
    params = list(model.parameters())
    x, y = (tga.tensor(a, device="cuda") for a in _gpt_batches(1)[0])

    def step():
        _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        tga.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return loss.item()

    step()                                                  # step 1: buckets get made
    copies, memory = tga.cuda.copy_stats(), tga.cuda.memory_stats()
    for _ in range(2):                                      # steps 2 and 3
        step()
    after_copies, after_memory = tga.cuda.copy_stats(), tga.cuda.memory_stats()
    assert after_copies["device_to_host"] - copies["device_to_host"] == 2      # loss.item()
    assert after_copies["host_to_device"] == copies["host_to_device"]
    assert after_memory["device_allocs"] == memory["device_allocs"], (memory, after_memory)
    assert after_memory["cache_hits"] > memory["cache_hits"]


def test_cli_train_on_cuda_runs_a_tiny_task(tmp_path, monkeypatch, capsys):
    """`tinygradattn train --device cuda --steps 3` on the digit-reversal task, in this
    process, with its held-out set and report cut to a few items (the simulator runs every
    GPU thread in Python: 500 greedy decodings would take an hour)."""
    from tinygradattn import cli
    from tinygradattn.tasks import seq2seq

    init, report = seq2seq.DigitsTask.__init__, seq2seq.Seq2SeqTask.report
    monkeypatch.setattr(seq2seq.DigitsTask, "__init__",
                        lambda self, *a, **kw: init(self, *a, **{**kw, "n_test": 2,
                                                                 "max_digits": 3}))
    monkeypatch.setattr(seq2seq.Seq2SeqTask, "report",
                        lambda self, model, out_dir: report(self, model, out_dir, 2, 1))
    rc = cli.main(["train", "--task", "reverse", "--device", "cuda", "--steps", "3",
                   "--n-layer", "1", "--d-model", "8", "--n-head", "2", "--batch-size", "2",
                   "--eval-interval", "100", "--no-progress", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "on cuda" in out and "exact" in out
