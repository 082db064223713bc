"""The `tinygradattn` command: train runs and prints the accuracy; --help works; bad
arguments give one line on stderr, exit code 2 and no traceback."""
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

from tinygradattn import cli

ROOT = pathlib.Path(__file__).resolve().parents[1]


def run_cli(*args, timeout=120):
    """`python -m tinygradattn ARGS` in a subprocess, the repository on PYTHONPATH."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    return subprocess.run([sys.executable, "-m", "tinygradattn", *args], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=timeout)


def test_train_in_process_prints_accuracy(capsys):
    assert cli.main(["train", "--steps", "150", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    match = re.search(r"final: task moons .*test accuracy ([0-9.]+)", out)
    assert match, out
    assert float(match.group(1)) >= 0.97


def test_python_m_train_runs():
    proc = run_cli("train", "--task", "moons", "--steps", "40", "--lr", "0.03",
                   "--hidden", "16", "--seed", "2")
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"test accuracy [0-9.]+", proc.stdout), proc.stdout
    assert "step    40/40" in proc.stdout


def test_help():
    proc = run_cli("--help")
    assert proc.returncode == 0 and "train" in proc.stdout and proc.stderr == ""
    proc = run_cli("train", "--help")
    assert proc.returncode == 0
    for flag in ("--task", "--steps", "--lr", "--hidden", "--seed", "moons"):
        assert flag in proc.stdout


@pytest.mark.parametrize("args, words", [
    (["train", "--task", "imagenet"], ["--task", "imagenet"]),
    (["train", "--steps", "ten"], ["--steps", "ten"]),
    (["train", "--lr", "fast"], ["--lr", "fast"]),
    (["train", "--hidden", "2.5"], ["--hidden", "2.5"]),
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
            "('torch', 'numba', 'matplotlib', 'tqdm') or m == 'tinygradattn.tasks.moons']; "
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
    proc = subprocess.run([exe, "train", "--steps", "20"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "test accuracy" in proc.stdout
    bad = subprocess.run([exe, "train", "--steps", "many"], capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
