"""Smoke tests of the examples and the moons task: they run, and a short run learns.

The examples run in a subprocess (as a user runs them) with the repository on PYTHONPATH,
so they work from a plain checkout as well as from an installed package.
"""
import os
import pathlib
import re
import subprocess
import sys

import pytest

import tinygradattn as tga
from tinygradattn.tasks.moons import make_moons, train_moons

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def run_script(*args, timeout=120):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=timeout)


# ---- the moons task ---------------------------------------------------------------------------
def test_make_moons_shapes_labels_and_geometry():
    x, y = make_moons(2000, noise=0.0)
    assert tuple(x.shape) == (2000, 2) and x.dtype == tga.float32
    assert tuple(y.shape) == (2000,) and y.dtype == tga.int64
    n_lower = int(y.sum())
    assert 800 < n_lower < 1200                                       # two balanced classes
    upper, lower = x[y == 0], x[y == 1]
    # noiseless: the upper moon is on the unit circle above the axis, the lower one is the
    # same half circle flipped and shifted to centre (1, 0.5)
    r_up = ((upper * upper).sum(1)).sqrt()
    assert float((r_up - 1).abs().max()) < 1e-5 and float(upper[:, 1].min()) >= 0
    shifted = lower - tga.tensor([1.0, 0.5])
    assert float(((shifted * shifted).sum(1).sqrt() - 1).abs().max()) < 1e-5
    assert float(lower[:, 1].max()) <= 0.5 + 1e-6


def test_make_moons_is_seeded():
    tga.manual_seed(3)
    a, ya = make_moons(50)
    tga.manual_seed(3)
    b, yb = make_moons(50)
    assert a.tolist() == b.tolist() and ya.tolist() == yb.tolist()


def test_train_moons_short_run_learns():
    lines = []
    metrics = train_moons(steps=150, hidden=32, lr=0.02, seed=0, log=lines.append)
    assert metrics["test_acc"] >= 0.97, metrics
    assert metrics["train_acc"] >= 0.97, metrics
    assert metrics["steps"] == 150
    assert any("test acc" in line for line in lines)
    assert len(lines) >= 10                                           # progress was logged


# ---- examples -----------------------------------------------------------------------------------
def test_mlp_moons_example():
    proc = run_script(EXAMPLES / "mlp_moons.py", "--steps", "200")
    assert proc.returncode == 0, proc.stderr
    match = re.search(r"test accuracy ([0-9.]+)", proc.stdout)
    assert match, proc.stdout
    assert float(match.group(1)) >= 0.97, proc.stdout


def test_autograd_walkthrough_example():
    proc = run_script(EXAMPLES / "autograd_walkthrough.py")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "MISMATCH" not in proc.stdout
    assert "gradcheck(neuron_loss, (w, b)) -> True" in proc.stdout
    assert "all gradients agree" in proc.stdout


def test_readme_autograd_example_runs():
    """The first python block of README.md runs and backward fills every grad."""
    text = (ROOT / "README.md").read_text()
    match = re.search(r"```python\n(.*?)```", text, re.S)
    assert match, "README.md has no python example"
    proc = run_script("-c", match.group(1))
    assert proc.returncode == 0, proc.stderr
    assert re.fullmatch(r"[0-9.]+ \(3, 3\) \[.*\]\n", proc.stdout), proc.stdout


@pytest.mark.parametrize("script", sorted(p.name for p in EXAMPLES.glob("*.py")))
def test_every_example_has_a_docstring_with_its_command(script):
    text = (EXAMPLES / script).read_text()
    assert text.startswith('"""'), script
    assert f"python examples/{script}" in text, f"{script}: docstring shows no command"


def test_translate_numbers_example(tmp_path):
    proc = run_script(EXAMPLES / "translate_numbers.py", "--steps", "3", "--d-model", "16",
                      "--layers", "1", "--batch-size", "8", "--numbers", "40512", "7",
                      "--out", tmp_path, "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"exact match on 2,000 held-out numbers: [0-9.]+%", proc.stdout)
    assert re.search(r"40,512  ->  .*attention_40512\.png", proc.stdout), proc.stdout
    assert (tmp_path / "attention_40512.png").stat().st_size > 1000
    assert (tmp_path / "loss_curve.png").exists()
