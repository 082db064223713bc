"""benchmarks/gpu.py runs end to end (toy sizes, a few cases): the GPU benchmark is one command
away and does not rot between sessions that have a GPU. Its figures here mean nothing (the
simulator against torch on the CPU)."""
import json

import pytest

pytestmark = pytest.mark.usefixtures("cuda_device")


def test_gpu_benchmark_script_runs_and_writes_its_table(tmp_path):
    pytest.importorskip("torch", reason="benchmarks/gpu.py compares against PyTorch")
    from benchmarks import gpu
    out = tmp_path / "gpu.json"
    assert gpu.main(["--tiny", "--only", "matmul,ce,adam", "--out", str(out)]) == 0
    saved = json.loads(out.read_text())
    cases = [r["case"] for r in saved["rows"]]
    assert any(c.startswith("matmul") for c in cases) and any("AdamW" in c for c in cases)
    assert all("error" not in r and r["ours_s"] > 0 for r in saved["rows"])
    assert "| case | ours (ms) |" in saved["markdown"]
