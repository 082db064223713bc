"""Issue 16, finding 4: every `tinygradattn train` failure is one line on stderr and exit code
2, found before any training; `--resume` of a finished run says it is complete and exits 0.

Before the fix: --resume of a finished run died with KeyError 'exact_match'; --warmup -5 was
accepted; --out naming a file or a path under a file raised FileExistsError /
NotADirectoryError tracebacks after the model was built; --batch-size 1000000000 ran until
the machine ran out of memory."""
import os
import re

import pytest

from tinygradattn import cli
from tinygradattn.train.memory import estimate_training_bytes

TINY = ["--task", "copy", "--d-model", "16", "--n-head", "2", "--n-layer", "1",
        "--batch-size", "8", "--no-progress"]


def _fails_in_one_line(capsys, argv, *words):
    """cli.main(argv) exits 2 with one stderr line holding every word (argparse exits)."""
    try:
        code = cli.main(argv)
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def test_resume_of_a_finished_run_says_complete_and_exits_0(tmp_path, capsys):
    argv = ["train", *TINY, "--steps", "2", "--eval-interval", "2", "--out", str(tmp_path)]
    assert cli.main(argv) == 0
    capsys.readouterr()
    ckpts = sorted(os.listdir(tmp_path / "copy" / "ckpt"))
    assert cli.main([*argv, "--name", "copy", "--resume"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"is complete: .* at step 2 of 2; nothing to train", out), out
    assert "final: task copy" in out and "val_loss" in out
    assert sorted(os.listdir(tmp_path / "copy" / "ckpt")) == ckpts      # nothing rewritten


@pytest.mark.parametrize("value", ["-5", "-1"])
def test_negative_warmup_is_refused(capsys, value):
    _fails_in_one_line(capsys, ["train", *TINY, "--warmup", value], "--warmup", value, ">= 0")


def test_out_naming_a_file_is_refused_before_training(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli, "_run_dir", _no_training)
    afile = tmp_path / "afile"
    afile.write_text("x")
    _fails_in_one_line(capsys, ["train", *TINY, "--out", str(afile)], str(afile), "not a folder")
    _fails_in_one_line(capsys, ["train", *TINY, "--out", str(afile / "runs")],
                       str(afile / "runs"), "cannot write there")
    assert afile.read_text() == "x"


def test_out_in_an_unwritable_place_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli, "_run_dir", _no_training)
    locked = tmp_path / "locked"
    locked.mkdir()
    real_open = open

    def refusing_open(path, *args, **kwargs):       # root writes anywhere: the OS says no here
        if str(path).startswith(str(locked)):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)
    monkeypatch.setattr("builtins.open", refusing_open)
    _fails_in_one_line(capsys, ["train", *TINY, "--out", str(locked)], str(locked),
                       "Permission denied")


def _no_training(args):
    raise AssertionError("the bad --out should have been refused before the run started")


def test_huge_batch_is_refused_with_the_memory_estimate(capsys, monkeypatch):
    monkeypatch.setattr(cli, "_run_dir", _no_training)
    line = _fails_in_one_line(capsys, ["train", *TINY, "--batch-size", "1000000000"],
                              "--batch-size 1000000000", "GiB", "memory")
    figures = [float(n.replace(",", "")) for n in re.findall(r"([0-9][0-9,.]*) GiB", line)]
    need, available = figures[0], figures[-1]
    assert need > available


def test_memory_estimate_grows_with_the_batch_and_is_small_for_the_defaults():
    from tinygradattn.tasks import make_task
    task = make_task("numwords", None, 0, dict(n_layer=None, dropout=None, nhead=None,
                                               d_model=None))
    n_params = sum(p.numel() for p in task.build_model().parameters())
    small, _, state = estimate_training_bytes(task.model_config(), n_params, task.batch_size)
    big, _, _ = estimate_training_bytes(task.model_config(), n_params, 1000 * task.batch_size)
    assert state == 16 * n_params                        # weights, gradients, Adam's m and v
    assert small < 2 ** 30 and big > 500 * small
