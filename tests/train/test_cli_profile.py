"""`tinygradattn train --profile` (issue 17): a few steps after a warm-up step are profiled;
the table is printed at the end and profile.json (a Chrome trace) lands in the run's folder."""
import json

from tinygradattn import cli
from tinygradattn.autograd import instruments

TINY = ["--task", "copy", "--d-model", "16", "--n-head", "2", "--n-layer", "1",
        "--batch-size", "8", "--no-progress"]


def test_train_profile_prints_the_table_and_writes_a_chrome_trace(tmp_path, capsys):
    # 3 steps, --profile 5: step 1 warms up, steps 2 and 3 are profiled, then the run ends
    code = cli.main(["train", *TINY, "--steps", "3", "--profile", "5", "--out", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    trace_path = tmp_path / "copy" / "profile.json"
    assert f"profile of 2 training steps (after a warm-up step), Chrome trace: {trace_path}" \
        in out
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("Name "))
    end = next(i for i in range(header + 2, len(lines)) if lines[i].startswith("---"))
    rows = lines[header + 2:end]
    assert 5 <= len(rows) <= 20                      # row_limit=20
    names = [row.split()[0] for row in rows]
    assert "train_step" in names and "LinearBackward" in names
    events = json.loads(trace_path.read_text())["traceEvents"]
    steps = [e for e in events if e["name"] == "train_step"]
    assert len(steps) == 2 and all(e["ph"] == "X" for e in events)
    assert {e["cat"] for e in events} == {"forward", "backward", "user_annotation"}
    # every op of the trace lies inside one of the two profiled steps
    for e in events:
        assert any(s["ts"] <= e["ts"] and e["ts"] + e["dur"] <= s["ts"] + s["dur"] + 1e-3
                   for s in steps), e["name"]
    assert instruments.observers == ()


def test_train_without_profile_writes_no_trace_and_moons_refuses_it(tmp_path, capsys):
    assert cli.main(["train", *TINY, "--steps", "2", "--out", str(tmp_path)]) == 0
    assert not (tmp_path / "copy" / "profile.json").exists()
    assert "profile of" not in capsys.readouterr().out
    assert cli.main(["train", "--task", "moons", "--profile"]) == 2
    assert "--profile" in capsys.readouterr().err
