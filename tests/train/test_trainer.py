"""The Trainer: exact resume, atomic checkpoints under SIGKILL, Ctrl-C, NaN stops, outputs.

Tiny models (a 1-layer seq2seq of width 32, a 1-layer GPT of width 16) and a few steps each,
dropout on so that the global generator's state matters for resume.
"""
import json
import os
import pathlib
import random
import signal
import subprocess
import sys
import time

import pytest

import tinygradattn as tga
from tinygradattn.optim.lr_scheduler import warmup_cosine
from tinygradattn.tasks import CharLMTask, DigitsTask, NumwordsTask, task_from_config
from tinygradattn.train.checkpoint import list_checkpoints, load_latest, save_checkpoint
from tinygradattn.train.trainer import TrainConfig, Trainer, TrainingDiverged

ROOT = pathlib.Path(__file__).resolve().parents[2]
TINY_S2S = dict(d_model=32, nhead=2, n_layer=1, dim_feedforward=64, dropout=0.1)
TINY_GPT = dict(n_layer=1, n_head=2, n_embd=16, block_size=8, batch_size=4, dropout=0.1,
                lr=3e-3, min_lr=1e-4, warmup=2)
_RNG = random.Random(0)
TEXT = "".join(_RNG.choice("abcdefgh \n") for _ in range(3000))


def make_task(kind, seed=0):
    if kind == "seq2seq":
        return DigitsTask("reverse", batch_size=8, seed=seed, model=TINY_S2S, max_digits=5,
                          n_test=16)
    return CharLMTask(text=TEXT, preset=TINY_GPT, seed=seed, eval_batches=2, sample_chars=5)


def make_trainer(kind, out_dir, steps, total_steps=None, seed=0, **cfg):
    """A fresh task / model / AdamW / warmup-cosine trainer; the schedule spans total_steps."""
    tga.manual_seed(seed)
    task = make_task(kind)
    model = task.build_model()
    opt = tga.optim.AdamW(model.parameters(), lr=3e-3)
    sched = warmup_cosine(opt, 2, total_steps or steps, min_lr=1e-4)
    config = TrainConfig(steps=steps, log_interval=1, progress=False,
                         **{"eval_interval": 1000, "ckpt_interval": 1000, **cfg})
    return Trainer(task, model, opt, sched, config, str(out_dir), log=lambda s: None)


def losses(trainer):
    return [(r["step"], r["loss"]) for r in trainer.read_metrics() if "loss" in r]


# ---- exact resume --------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["seq2seq", "gpt"])
def test_resume_gives_the_losses_of_a_straight_run(tmp_path, kind):
    N = 5
    straight = make_trainer(kind, tmp_path / "a", 2 * N)
    assert straight.fit() == "done"
    first = make_trainer(kind, tmp_path / "b", N, total_steps=2 * N)
    assert first.fit() == "done"                        # evaluates at step N: must not matter
    # a different seed for the fresh objects: the checkpoint must restore everything
    second = make_trainer(kind, tmp_path / "b", 2 * N, seed=99)
    assert second.resume() and second.step == N
    assert second.fit() == "done"
    a, b = losses(straight), losses(second)
    assert [s for s, _ in a] == [s for s, _ in b] == list(range(1, 2 * N + 1))
    for (step, la), (_, lb) in zip(a, b):
        assert abs(la - lb) <= 1e-6 * max(1.0, abs(la)), (step, la, lb)
    wa = straight.model.state_dict()
    wb = second.model.state_dict()
    for k in wa:
        assert (wa[k] - wb[k]).abs().max().item() <= 1e-6, k


def test_resume_refuses_a_checkpoint_of_another_model(tmp_path):
    t = make_trainer("seq2seq", tmp_path, 2)
    t.fit()
    tga.manual_seed(0)
    task = DigitsTask("reverse", batch_size=8, model={**TINY_S2S, "d_model": 16},
                      max_digits=5, n_test=4)
    model = task.build_model()
    opt = tga.optim.AdamW(model.parameters())
    other = Trainer(task, model, opt, None, TrainConfig(steps=4, progress=False), str(tmp_path))
    with pytest.raises(ValueError, match="another task or model"):
        other.resume()


def test_task_state_survives_json(tmp_path):
    task = NumwordsTask(batch_size=4, n_test=10)
    task.train_batch()
    state = json.loads(json.dumps(task.get_state()))
    want = task.train_batch()[0].tolist()
    other = NumwordsTask(batch_size=4, seed=7, n_test=10)
    other.set_state(state)
    assert other.train_batch()[0].tolist() == want


def test_task_from_config_rebuilds_the_same_model():
    for task in (make_task("seq2seq"), make_task("gpt")):
        again = task_from_config(json.loads(json.dumps(task.config())))
        assert again.config() == task.config()
        a, b = task.build_model().state_dict(), again.build_model().state_dict()
        assert {k: tuple(v.shape) for k, v in a.items()} == {k: tuple(v.shape) for k, v in b.items()}


# ---- outputs ------------------------------------------------------------------------------------
def test_fit_writes_metrics_curve_and_keeps_last_checkpoints(tmp_path):
    t = make_trainer("seq2seq", tmp_path, 6, eval_interval=3, ckpt_interval=2, keep_last=2)
    assert t.fit() == "done"
    records = t.read_metrics()
    assert [r["step"] for r in records if "loss" in r] == list(range(1, 7))
    evals = [r for r in records if "val_loss" in r]
    assert [r["step"] for r in evals] == [3, 6]
    assert 0.0 <= evals[-1]["exact_match"] <= 1.0
    assert all(r["tokens_per_s"] > 0 for r in records if "loss" in r)
    assert (tmp_path / "loss_curve.png").stat().st_size > 1000
    assert [s for s, _ in list_checkpoints(tmp_path / "ckpt")] == [4, 6]
    paths = t.task.report(t.model, str(tmp_path))
    assert "| input | output | correct |" in pathlib.Path(paths["samples"]).read_text()
    assert all(os.path.getsize(p) > 1000 for p in paths["attention"])


def test_resume_truncates_metrics_written_after_the_checkpoint(tmp_path):
    t = make_trainer("seq2seq", tmp_path, 4, ckpt_interval=2)
    t.fit()
    os.remove(list_checkpoints(tmp_path / "ckpt")[-1][1])          # back to the step-2 one
    again = make_trainer("seq2seq", tmp_path, 4)
    again.resume()
    assert again.step == 2
    assert max(r["step"] for r in again.read_metrics()) == 2


# ---- NaN ----------------------------------------------------------------------------------------
def test_nan_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(tmp_path):
    t = make_trainer("seq2seq", tmp_path, 20, ckpt_interval=3)
    loss_fn = t.task.loss
    calls = []

    def poisoned(model, batch):
        loss, n = loss_fn(model, batch)
        calls.append(1)
        return (loss * float("nan") if len(calls) == 8 else loss), n

    t.task.loss = poisoned
    with pytest.raises(TrainingDiverged, match="at step 8") as exc:
        t.fit()
    assert "step_00000006" in str(exc.value)
    assert [s for s, _ in list_checkpoints(tmp_path / "ckpt")] == [3, 6]
    state, path = load_latest(str(tmp_path / "ckpt"))
    assert state["step"] == 6
    assert all(v.isfinite().all() if hasattr(v, "isfinite") else True
               for v in state["model"].values())


# ---- checkpoints under crashes --------------------------------------------------------------------
def test_error_mid_write_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    from tinygradattn import serialization
    ckpt = tmp_path / "ckpt"
    save_checkpoint(str(ckpt), 1, {"w": tga.ones(1000), "step": 1}, keep_last=3)
    chunks = []

    def dying(f, chunk):                  # the process "dies" after writing half the bytes
        f.write(chunk[:len(chunk) // 2])
        chunks.append(1)
        raise KeyboardInterrupt

    monkeypatch.setattr(serialization, "_write_chunk", dying)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(str(ckpt), 2, {"w": tga.zeros(1000), "step": 2}, keep_last=3)
    assert chunks and [s for s, _ in list_checkpoints(ckpt)] == [1]
    state, _ = load_latest(str(ckpt))
    assert state["step"] == 1 and state["w"].sum().item() == 1000


def test_damaged_newest_checkpoint_falls_back_to_the_one_before(tmp_path):
    ckpt = tmp_path / "ckpt"
    save_checkpoint(str(ckpt), 1, {"w": tga.ones(10), "step": 1}, keep_last=3)
    save_checkpoint(str(ckpt), 2, {"w": tga.ones(10), "step": 2}, keep_last=3)
    newest = list_checkpoints(ckpt)[-1][1]
    data = pathlib.Path(newest).read_bytes()
    pathlib.Path(newest).write_bytes(data[:len(data) - 17])       # truncated (a bad disk)
    state, path = load_latest(str(ckpt))
    assert state["step"] == 1 and path.endswith("step_00000001.safetensors")
    pathlib.Path(list_checkpoints(ckpt)[0][1]).write_bytes(b"garbage")
    with pytest.raises(RuntimeError, match="no loadable checkpoint"):
        load_latest(str(ckpt))


def _flip_weight_bit(path):
    """A bit flipped in the last tensor byte of a checkpoint (a bad disk): it still parses."""
    data = bytearray(pathlib.Path(path).read_bytes())
    data[-2] ^= 0x04
    pathlib.Path(path).write_bytes(bytes(data))


def test_resume_skips_a_checkpoint_that_fails_its_checksum_and_says_so(tmp_path):
    t = make_trainer("seq2seq", tmp_path, 4, ckpt_interval=2)
    t.fit()
    newest = list_checkpoints(tmp_path / "ckpt")[-1][1]
    _flip_weight_bit(newest)
    lines = []
    again = make_trainer("seq2seq", tmp_path, 4)
    again.log = lines.append
    assert again.resume()
    assert again.step == 2
    skipped = [line for line in lines if "skipped" in line]
    assert len(skipped) == 1 and "\n" not in skipped[0]
    assert "step_00000004.safetensors" in skipped[0] and "checksum" in skipped[0]


def test_a_save_after_a_fallback_removes_the_skipped_newer_checkpoint(tmp_path):
    ckpt = str(tmp_path / "ckpt")
    for step in (1, 2, 9):
        save_checkpoint(ckpt, step, {"w": tga.ones(4), "step": step}, keep_last=3)
    _flip_weight_bit(list_checkpoints(ckpt)[-1][1])        # step 9 damaged: resume took 2 ...
    save_checkpoint(ckpt, 2, {"w": tga.ones(4), "step": 2}, keep_last=1)   # ... and went on
    assert [s for s, _ in list_checkpoints(ckpt)] == [2]    # the good one is the one kept


def test_nan_stop_never_calls_a_damaged_checkpoint_good(tmp_path):
    t = make_trainer("seq2seq", tmp_path, 20, ckpt_interval=3)
    loss_fn = t.task.loss
    calls = []

    def poisoned(model, batch):
        loss, n = loss_fn(model, batch)
        calls.append(1)
        if len(calls) == 7:                                 # the step-6 file goes bad on disk
            _flip_weight_bit(list_checkpoints(tmp_path / "ckpt")[-1][1])
        return (loss * float("nan") if len(calls) == 8 else loss), n

    t.task.loss = poisoned
    with pytest.raises(TrainingDiverged, match="at step 8") as exc:
        t.fit()
    message = str(exc.value)
    assert "last good checkpoint is kept" not in message and "\n" not in message
    assert "step_00000006.safetensors is not good" in message and "checksum" in message
    assert message.endswith("step_00000003.safetensors")


SAVER = """
import sys, tinygradattn as tga
from tinygradattn.train.checkpoint import save_checkpoint
d = sys.argv[1]
w = tga.zeros(1 << 20)                                            # 4 MiB per checkpoint
step = 0
while True:
    step += 1
    save_checkpoint(d, step, {"w": w + step, "step": step}, keep_last=2)
    print(step, flush=True)
"""


def test_sigkill_while_saving_leaves_a_loadable_checkpoint(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    rng = random.Random(0)
    for trial in range(3):
        d = tmp_path / f"ckpt{trial}"
        proc = subprocess.Popen([sys.executable, "-c", SAVER, str(d)], stdout=subprocess.PIPE,
                                text=True, env=env)
        try:
            for _ in range(2 + trial):                            # wait for a few saves
                assert proc.stdout.readline()
            time.sleep(rng.uniform(0.0, 0.05))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            proc.stdout.close()
        state, path = load_latest(str(d))
        step = state["step"]
        assert path.endswith(f"step_{step:08d}.safetensors")
        w = state["w"]
        assert w.min().item() == w.max().item() == step           # the whole tensor, intact


# ---- Ctrl-C -------------------------------------------------------------------------------------
def _cli(*args, **kw):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "tinygradattn", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def test_ctrl_c_saves_a_checkpoint_and_resume_continues(tmp_path):
    args = ["train", "--task", "reverse", "--d-model", "16", "--n-head", "2",
            "--batch-size", "8", "--eval-interval", "100000", "--out", str(tmp_path),
            "--name", "run", "--no-progress"]
    proc = _cli(*args, "--steps", "100000")
    metrics = tmp_path / "run" / "metrics.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline and not (metrics.exists() and metrics.read_text().count("\n")
                                          >= 2):
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err and "--resume" in err
    assert "interrupted at step" in out
    saved = list_checkpoints(tmp_path / "run" / "ckpt")
    assert len(saved) == 1
    step = saved[0][0]
    assert step >= 20
    proc = _cli(*args, "--steps", str(step + 3), "--resume")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "resumed from" in out and f"at step {step}" in out
    assert list_checkpoints(tmp_path / "run" / "ckpt")[-1][0] == step + 3
    assert "final: task reverse  exact match" in out
