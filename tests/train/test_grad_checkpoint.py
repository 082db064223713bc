"""`tinygradattn train --grad-checkpoint`: the charlm GPT recomputes its blocks in backward;
the run is the same run (losses, validation, sample) as without it. (The Seq2Seq tasks'
model is checked in tests/autograd/test_checkpoint.py.)"""
import json

from tinygradattn import cli
from tinygradattn.autograd.checkpoint import Recompute
from tinygradattn.models import GPTConfig
from tinygradattn.train.memory import estimate_training_bytes

TINY = ["--d-model", "16", "--n-head", "2", "--n-layer", "2", "--batch-size", "4",
        "--no-progress", "--steps", "3", "--eval-interval", "3", "--dropout", "0.1"]


def _metrics(path):
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for row in rows:
        row.pop("time", None)
        row.pop("tokens_per_s", None)
    return rows


def test_grad_checkpoint_run_equals_the_plain_run(tmp_path, capsys, monkeypatch):
    text = tmp_path / "text.txt"
    text.write_text("to be or not to be, that is the question\n" * 60)
    recomputed = []                                 # blocks recomputed in backward, per run
    backward = Recompute.backward

    def counting_backward(ctx, dout):
        recomputed[-1] += 1
        return backward(ctx, dout)

    monkeypatch.setattr(Recompute, "backward", staticmethod(counting_backward))
    for name, extra in (("plain", []), ("ckpt", ["--grad-checkpoint"])):
        recomputed.append(0)
        assert cli.main(["train", "--task", "charlm", "--data", str(text), *TINY,
                         "--out", str(tmp_path / "runs"), "--name", name, *extra]) == 0
    assert recomputed == [0, 3 * 2]                 # 3 steps x 2 layers
    capsys.readouterr()
    plain = _metrics(tmp_path / "runs" / "plain" / "metrics.jsonl")
    ckpt = _metrics(tmp_path / "runs" / "ckpt" / "metrics.jsonl")
    assert any("loss" in row for row in plain) and plain == ckpt


def test_grad_checkpoint_is_refused_for_a_model_without_blocks(capsys):
    assert cli.main(["train", "--task", "moons", "--steps", "2", "--grad-checkpoint"]) == 2
    assert "--grad-checkpoint is for the transformer tasks" in capsys.readouterr().err


def test_memory_estimate_with_checkpointing_keeps_one_layer_of_activations():
    config = GPTConfig(vocab_size=65, block_size=256, n_layer=6, n_head=6, n_embd=384)
    _, plain, state = estimate_training_bytes(config, 10 ** 7, 64)
    _, ckpt, state2 = estimate_training_bytes(config, 10 ** 7, 64, checkpointing=True)
    assert state == state2 and ckpt < plain / 2
    T, C, H, L, V = 256, 384, 6, 6, 65
    assert ckpt == 4 * 64 * T * (L * C + 20 * C + 2 * H * T + 3 * V)
