"""`tinygradattn run SCRIPT` and `run --check`: a script runs with `torch` meaning
tinygradattn, and a name we lack is one line naming it (issue 15)."""
import os
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run(tmp_path, *args):
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    return subprocess.run([sys.executable, "-m", "tinygradattn", "run", *args], cwd=tmp_path,
                          capture_output=True, text=True, env=env, timeout=120)


def script(tmp_path, body, name="s.py"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return name


def test_a_script_runs_with_torch_resolved_to_tinygradattn(tmp_path):
    (tmp_path / "helper_mod.py").write_text("import torch.nn as nn\nLayer = nn.Linear\n")
    name = script(tmp_path, """
        import sys
        import torch
        import torch.nn.functional as F
        from torch import nn
        import tinygradattn
        from helper_mod import Layer             # the script's folder is on sys.path
        assert torch is tinygradattn and nn is tinygradattn.nn and Layer is nn.Linear
        assert F is tinygradattn.nn.functional and __name__ == "__main__"
        torch.manual_seed(0)
        y = F.relu(nn.Linear(3, 2)(torch.ones(4, 3)))
        print("shape", tuple(y.shape), "argv", sys.argv[1:])
        sys.exit(3)
    """)
    p = run(tmp_path, name, "--flag", "x")
    assert p.returncode == 3, p.stderr
    assert "shape (4, 2) argv ['--flag', 'x']" in p.stdout


@pytest.mark.parametrize("body, missing", [
    ("import torch\nx = torch.ones(2)\ny = torch.not_a_function(x)\n", "torch.not_a_function"),
    ("import torch\nimport torch.not_a_module\n", "torch.not_a_module"),
    ("from torch.nn import NotALayer\n", "torch.nn.NotALayer"),
    ("import torch\nx = torch.ones(2)\nx.not_a_method()\n", "torch.Tensor.not_a_method"),
    ("import torch.nn.functional as F\nF.not_a_loss(1)\n", "torch.nn.functional.not_a_loss"),
])
def test_a_missing_name_is_one_line(tmp_path, body, missing):
    name = script(tmp_path, "# a comment line\n" + body)
    p = run(tmp_path, name)
    line = body.count("\n") + 1
    assert p.returncode == 1
    assert p.stderr.strip() == f"tinygradattn run: s.py:{line}: {missing} is not in " \
                               "tinygradattn (yet)", p.stderr
    assert "Traceback" not in p.stderr


def test_an_unsupported_feature_is_one_line(tmp_path):
    name = script(tmp_path, "import torch\nwith torch.autocast('cpu', dtype=torch.bfloat16):\n"
                            "    pass\n")
    p = run(tmp_path, name)
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert p.stderr.startswith("tinygradattn run: s.py:2: not supported by tinygradattn: "
                               "autocast to bfloat16")


def test_the_scripts_own_error_is_a_traceback_without_the_runner(tmp_path):
    name = script(tmp_path, "import torch\n\ndef f():\n    return 1 / 0\n\nf()\n")
    p = run(tmp_path, name)
    assert p.returncode == 1 and "ZeroDivisionError" in p.stderr
    assert 's.py", line 4, in f' in p.stderr and "runpy" not in p.stderr
    assert "runner.py" not in p.stderr


def test_full_traceback_on_request(tmp_path):
    name = script(tmp_path, "import torch\ntorch.not_a_function()\n")
    p = subprocess.run([sys.executable, "-m", "tinygradattn", "run", name], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, PYTHONPATH=ROOT, TGA_RUN_TRACEBACK="1"))
    assert "Traceback" in p.stderr and "AttributeError" in p.stderr


def test_usage_errors(tmp_path):
    p = run(tmp_path, "no_such.py")
    assert p.returncode == 2 and "no such script: no_such.py" in p.stderr
    p = run(tmp_path, "--check", "nowhere")
    assert p.returncode == 2 and "no such file or folder: nowhere" in p.stderr


def test_check_lists_names_and_the_missing_ones(tmp_path):
    pkg = tmp_path / "prog"
    pkg.mkdir()
    (pkg / "a.py").write_text(textwrap.dedent("""
        import torch
        import torch.nn as nn
        from torch.nn import functional as F
        from torch.utils.data import NotALoader
        x = torch.zeros(3)
        y = F.softmax(x, dim=0)
        torch.backends.cuda.matmul.allow_tf32 = True
        z = torch.not_there(x)
        class M(nn.Module):
            pass
    """))
    (pkg / "b.py").write_text("import torch\nprint(torch.zeros(1).sum())\n"
                              "[3, 1].sort()\n")
    p = run(tmp_path, "--check", "prog")
    assert p.returncode == 1, p.stderr
    lines = p.stdout.splitlines()
    first = lines[0]
    assert first.startswith("prog: ") and "2 missing" in first, first
    rows = {line.split()[1]: line.split()[0] for line in lines[1:] if line.startswith("  ")}
    assert rows["torch.not_there"] == "MISSING"
    assert rows["torch.utils.data.NotALoader"] == "MISSING"
    for name in ("torch.zeros", "torch.nn.functional.softmax", "torch.nn.Module",
                 "torch.backends.cuda.matmul.allow_tf32"):
        assert rows[name] == "ok", name
    assert "torch.nn" not in rows                        # a prefix of used names
    missing_first = [line.split()[0] for line in lines[1:] if line.startswith("  ")]
    assert missing_first[:2] == ["MISSING", "MISSING"]
    (pkg / "a.py").unlink()
    p = run(tmp_path, "--check", "prog")
    assert p.returncode == 0 and "0 missing" in p.stdout.splitlines()[0]
    if "Tensor methods: not checked" not in p.stdout:       # PyTorch there: methods listed
        assert "Tensor.sum" in p.stdout and "Tensor.sort" in p.stdout
