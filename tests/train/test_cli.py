"""The `tinygradattn` command: train / translate / sample / bench run; --help works for each;
bad arguments (an unknown task, a missing file, a bad number, a checkpoint of another model or
a damaged one, a device that is not there) give one line on stderr, exit code 2 and no
traceback. Tiny models and a few steps: the default 2-minute job itself is not run here."""
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

from tinygradattn import cli

ROOT = pathlib.Path(__file__).resolve().parents[2]


def run_cli(*args, timeout=120):
    """`python -m tinygradattn ARGS` in a subprocess, the repository on PYTHONPATH."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    return subprocess.run([sys.executable, "-m", "tinygradattn", *args], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=timeout)


def test_train_in_process_prints_accuracy(capsys):
    assert cli.main(["train", "--task", "moons", "--steps", "150", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    match = re.search(r"final: task moons .*test accuracy ([0-9.]+)", out)
    assert match, out
    assert float(match.group(1)) >= 0.97


def test_python_m_train_moons_runs():
    proc = run_cli("train", "--task", "moons", "--steps", "40", "--lr", "0.03",
                   "--hidden", "16", "--seed", "2")
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"test accuracy [0-9.]+", proc.stdout), proc.stdout
    assert "step    40/40" in proc.stdout


def test_help():
    proc = run_cli("--help")
    assert proc.returncode == 0 and proc.stderr == ""
    for command in ("train", "sample", "translate", "bench"):
        assert command in proc.stdout
    proc = run_cli("train", "--help")
    assert proc.returncode == 0
    for flag in ("--task", "--preset", "--n-layer", "--n-head", "--d-model", "--n-embd", "--lr",
                 "--steps", "--batch-size", "--device", "--out", "--name", "--resume", "--seed",
                 "--data", "--no-progress", "--hidden", "numwords", "charlm", "reverse", "moons"):
        assert flag in proc.stdout, flag
    for command, flags in [("sample", ("--ckpt", "--prompt", "--max-new-tokens",
                                       "--temperature", "--top-k")),
                           ("translate", ("--ckpt", "NUMBER")), ("bench", ())]:
        proc = run_cli(command, "--help")
        assert proc.returncode == 0 and proc.stderr == "", proc.stderr
        for flag in flags:
            assert flag in proc.stdout, (command, flag)


@pytest.mark.parametrize("args, words", [
    (["train", "--task", "imagenet"], ["--task", "imagenet"]),
    (["train", "--steps", "ten"], ["--steps", "ten"]),
    (["train", "--lr", "fast"], ["--lr", "fast"]),
    (["train", "--hidden", "2.5"], ["--hidden", "2.5"]),
    (["train", "--preset", "huge"], ["--preset", "huge"]),
    (["train", "--device", "tpu"], ["--device", "tpu"]),
    (["train", "--dropout", "1.5"], ["--dropout"]),
    (["train", "--task", "charlm"], ["--data"]),
    (["train", "--task", "charlm", "--data", "no/such/file.txt"], ["no/such/file.txt"]),
    (["train", "--task", "reverse", "--data", "README.md"], ["--data"]),
    (["train", "--resume", "--out", "no/such/dir"], ["--resume", "no checkpoint"]),
    (["translate", "--ckpt", "no/such/run", "12"], ["no/such/run"]),
    (["sample", "--ckpt", "no/such/run"], ["no/such/run"]),
    (["sample", "--ckpt", "x", "--top-k", "0"], ["--top-k"]),
    (["translate"], ["NUMBER"]),
    (["train", "--seed", "x"], ["--seed"]),
    (["train", "--steps", "0"], ["--steps", "> 0"]),
    (["train", "--lr", "nan"], ["--lr"]),
    (["train", "--steps"], ["--steps"]),
    (["train", "--bogus", "1"], ["--bogus"]),
    (["fly"], ["fly"]),
    ([], ["missing command"]),
])
def test_bad_arguments_one_line_exit_2(args, words):
    proc = run_cli(*args)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("tinygradattn") and "error" in lines[0]
    for word in words:
        assert word in lines[0], lines[0]
    assert proc.stdout == ""


def test_bad_arguments_in_process_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["train", "--task", "nope"])
    assert exc.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_importing_cli_is_light():
    """The CLI module imports no task (and nothing heavy) until a command runs."""
    code = ("import sys, tinygradattn.cli; "
            "heavy = [m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'numba', 'matplotlib', 'tqdm') or m.startswith('tinygradattn.tasks')]; "
            "heavy += [m for m in ('tinygradattn.train.trainer',) if m in sys.modules]; "
            "print(heavy)")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_console_script_when_installed():
    exe = shutil.which("tinygradattn", path=os.path.dirname(sys.executable))
    if exe is None:
        pytest.skip("the tinygradattn console script is not installed in this environment "
                    "(pip install -e . creates it)")
    proc = subprocess.run([exe, "train", "--task", "moons", "--steps", "20"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "test accuracy" in proc.stdout
    bad = subprocess.run([exe, "train", "--steps", "many"], capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1


# ---- the transformer tasks through the CLI: tiny models, a few steps ---------------------------------
TINY = ["--d-model", "16", "--n-head", "2", "--n-layer", "1", "--batch-size", "8",
        "--no-progress"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A tiny numwords run and a tiny charlm run, trained once for the tests below."""
    out = tmp_path_factory.mktemp("runs")
    text = out / "text.txt"
    text.write_text("to be or not to be, that is the question\n" * 60)
    proc = run_cli("train", *TINY, "--steps", "4", "--eval-interval", "2", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    proc2 = run_cli("train", "--task", "charlm", "--data", str(text), *TINY, "--steps", "3",
                    "--out", str(out))
    assert proc2.returncode == 0, proc2.stderr
    return out, proc.stdout, proc2.stdout


def test_default_task_is_numwords_and_prints_exact_match_and_pictures(runs):
    out, stdout, _ = runs
    run = out / "numwords"
    assert re.search(r"final: task numwords  exact match [0-9.]+% on 2,000 held-out", stdout)
    for name in ("metrics.jsonl", "loss_curve.png", "samples.md", "attention_1.png"):
        assert (run / name).exists(), name
        assert str(run / name) in stdout or name == "metrics.jsonl"
    assert list((run / "ckpt").glob("step_*.safetensors"))
    assert "step 2: val_loss" in stdout


def test_a_fresh_run_never_overwrites_another(tmp_path):
    args = ["train", "--task", "copy", *TINY, "--steps", "1", "--out", str(tmp_path)]
    for _ in range(2):
        proc = run_cli(*args)
        assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "copy-2" / "ckpt").exists() and "copy-2" in proc.stdout
    proc = run_cli(*args, "--name", "copy")
    assert proc.returncode == 2 and "--resume" in proc.stderr


def test_translate_and_sample(runs):
    out, _, charlm_stdout = runs
    proc = run_cli("translate", "--ckpt", str(out / "numwords"), "40512", "7", "1,000")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 3 and lines[0].strip().startswith("40512  ->")
    proc = run_cli("translate", "--ckpt", str(out / "numwords"), "--beam", "2", "12")
    assert proc.returncode == 0, proc.stderr
    assert "final: task charlm  val loss" in charlm_stdout and "--- sample ---" in charlm_stdout
    proc = run_cli("sample", "--ckpt", str(out / "charlm"), "--prompt", "to be",
                   "--max-new-tokens", "20", "--temperature", "0.8", "--top-k", "5")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("to be") and len(proc.stdout.rstrip("\n")) >= 20


@pytest.mark.parametrize("args, words", [
    (["translate", "--ckpt", "{out}/numwords", "12x"], ["12x", "not an integer"]),
    (["translate", "--ckpt", "{out}/numwords", "1000000000"], ["1000000000"]),
    (["translate", "--ckpt", "{out}/numwords", "-5"], ["-5"]),
    (["translate", "--ckpt", "{out}/charlm", "12"], ["charlm", "--ckpt"]),
    (["sample", "--ckpt", "{out}/numwords"], ["numwords", "--ckpt"]),
    (["sample", "--ckpt", "{out}/charlm", "--prompt", "XYZ"], ["--prompt"]),
    (["translate", "--ckpt", "{out}/damaged.safetensors", "12"], ["damaged"]),
    (["translate", "--ckpt", "{out}/text.txt", "12"], ["text.txt"]),
    (["train", "--out", "{out}", "--name", "numwords", "--resume", "--d-model", "24"],
     ["--resume", "another task or model"]),
    (["train", "--out", "{out}", "--name", "charlm", "--resume"], ["--resume"]),
])
def test_error_paths_one_line_exit_2(runs, args, words):
    out, _, _ = runs
    (out / "damaged.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    proc = run_cli(*[a.replace("{out}", str(out)) for a in args])
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_damaged_newest_checkpoint_is_skipped_by_translate(runs, tmp_path):
    import shutil as sh
    out, _, _ = runs
    run = tmp_path / "copy"
    sh.copytree(out / "numwords", run)
    newest = sorted((run / "ckpt").glob("step_*.safetensors"))[-1]
    (run / "ckpt" / "step_99999999.safetensors").write_bytes(newest.read_bytes()[:100])
    proc = run_cli("translate", "--ckpt", str(run), "5")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "skipped checkpoint" in lines[0], proc.stderr
    assert "step_99999999.safetensors: it is truncated" in lines[0]


def test_translate_refuses_a_damaged_or_unsupported_file_in_one_line(runs, tmp_path):
    import numpy as np
    from safetensors.numpy import save_file
    out, _, _ = runs
    flipped = tmp_path / "flipped.safetensors"
    data = bytearray(sorted((out / "numwords" / "ckpt").glob("step_*"))[-1].read_bytes())
    data[-5] ^= 0x01
    flipped.write_bytes(bytes(data))
    save_file({"w": np.ones(2, np.float16)}, str(tmp_path / "half.safetensors"))
    save_file({"w": np.ones(2, np.complex64)}, str(tmp_path / "cplx.safetensors"))
    for name, words in [("flipped", "do not match their checksum"),
                        ("half", "not a tinygradattn training checkpoint"),
                        ("cplx", "complex64")]:
        proc = run_cli("translate", "--ckpt", str(tmp_path / f"{name}.safetensors"), "5")
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1, proc.stderr
        assert words in lines[0] and f"{name}.safetensors" in lines[0]


def test_nan_loss_exits_1_naming_the_step(tmp_path, monkeypatch, capsys):
    from tinygradattn.tasks import seq2seq as tasks
    real = tasks.Seq2SeqTask.loss
    calls = []

    def poisoned(self, model, batch):
        loss, n = real(self, model, batch)
        calls.append(1)
        return (loss * float("nan") if len(calls) == 3 else loss), n

    monkeypatch.setattr(tasks.Seq2SeqTask, "loss", poisoned)
    code = cli.main(["train", "--task", "copy", *TINY, "--steps", "10", "--ckpt-interval", "2",
                     "--out", str(tmp_path)])
    assert code == 1
    err = capsys.readouterr().err
    assert "at step 3" in err and "step_00000002" in err and len(err.strip().splitlines()) == 1


def test_bench_without_the_benchmarks_folder(monkeypatch, capsys):
    monkeypatch.setattr(cli.os.path, "isfile", lambda p: False)
    assert cli.main(["bench"]) == 2
    assert "benchmarks/" in capsys.readouterr().err
