"""examples/rnn_vs_attention.py --quick: it runs (as a user runs it, in a subprocess with the
repository on PYTHONPATH), writes its three figures and its numbers, the two models have the
same parameter budget, and the numbers are those of a deterministic run."""
import importlib.util
import json
import os
import pathlib
import re
import subprocess
import sys

import pytest

import tinygradattn as tga

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "rnn_vs_attention.py"
FIGURES = ("accuracy", "gradnorm", "time")


def run_quick(out):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    return subprocess.run([sys.executable, str(SCRIPT), "--quick", "--out", str(out)],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)


def _load_example():
    """The example as a module, to call its main() in this process."""
    spec = importlib.util.spec_from_file_location("rnn_vs_attention", SCRIPT)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    return example


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    pytest.importorskip("matplotlib", reason="the example draws its figures with matplotlib")
    out = tmp_path_factory.mktemp("rnn_vs_attention")
    proc = run_quick(out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out, proc.stdout


def test_writes_figures_and_numbers(quick_run):
    out, stdout = quick_run
    for name in FIGURES:
        path = out / f"rnn_vs_attention_{name}.png"
        assert path.stat().st_size > 5000, path
        assert str(path) in stdout
    results = json.loads((out / "rnn_vs_attention.json").read_text())
    assert [r["k"] for r in results["accuracy"]] == [2, 8]
    for r in results["accuracy"]:
        assert 0.0 <= r["rnn_acc"] <= 1.0 and 0.0 <= r["transformer_acc"] <= 1.0
    grads = results["gradients"]
    assert len(grads["rnn_init"]) == len(grads["transformer_trained"]) == 8 + 1
    assert all(g > 0 for g in grads["rnn_init"])
    assert [r["T"] for r in results["timing"]] == [8, 16]
    table = (out / "rnn_vs_attention_tables.md").read_text()
    assert "| k | RNN accuracy (each seed) |" in table and "| T | RNN ms/step |" in table


def test_same_parameter_budget(quick_run):
    out, stdout = quick_run
    results = json.loads((out / "rnn_vs_attention.json").read_text())
    n_rnn, n_gpt = results["rnn_params"], results["transformer_params"]
    assert abs(n_rnn - n_gpt) <= 0.1 * n_gpt, (n_rnn, n_gpt)
    assert re.search(rf"parameters: RNN {n_rnn:,} .*transformer {n_gpt:,}", stdout), stdout


def test_vanishing_gradient_and_ops_visible(quick_run):
    """At initialisation the RNN's gradient shrinks step by step back from the loss; the
    RNN's ops grow with the length, the transformer's do not."""
    out, _ = quick_run
    results = json.loads((out / "rnn_vs_attention.json").read_text())
    init = results["gradients"]["rnn_init"]
    assert all(a < b for a, b in zip(init, init[1:])), init
    assert init[0] < 0.1 * init[-1], init
    short, long = results["timing"]
    assert long["rnn_ops"] > short["rnn_ops"] + 8                  # a few ops per extra step
    assert long["transformer_ops"] == short["transformer_ops"]


def test_deterministic(quick_run, tmp_path):
    """Same seed, same numbers (all but the timings): run again, in this process."""
    out, _ = quick_run
    example = _load_example()
    try:
        example.main(["--quick", "--out", str(tmp_path)])
    finally:
        tga.set_num_threads(None)                     # main pins one thread
    a, b = (json.loads((d / "rnn_vs_attention.json").read_text()) for d in (out, tmp_path))
    untimed = [{k: v for k, v in r.items() if not k.endswith("_ss")} for r in a["accuracy"]]
    assert untimed == [{k: v for k, v in r.items() if not k.endswith("_ss")}
                       for r in b["accuracy"]]
    assert a["gradients"] == b["gradients"]


def test_replot_redraws_from_the_json(quick_run, tmp_path):
    """--replot reads rnn_vs_attention.json in --out and writes the figures and tables again,
    without training."""
    out, _ = quick_run
    (tmp_path / "rnn_vs_attention.json").write_text((out / "rnn_vs_attention.json").read_text())
    example = _load_example()
    example.main(["--replot", "--out", str(tmp_path)])
    for name in FIGURES:
        assert (tmp_path / f"rnn_vs_attention_{name}.png").stat().st_size > 5000
    assert (tmp_path / "rnn_vs_attention_tables.md").read_text() == \
        (out / "rnn_vs_attention_tables.md").read_text()
