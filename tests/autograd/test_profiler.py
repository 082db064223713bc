"""tga.profiler (issue 17): counts match the ops run, forward and backward; the table is
sorted; the Chrome trace is valid JSON with one event per op and region; record_function,
schedule / step / on_trace_ready and tensorboard_trace_handler behave as torch.profiler's."""
import gzip
import json

import pytest

import tinygradattn as tga
from tinygradattn.autograd import instruments
from tinygradattn.profiler import ProfilerAction, ProfilerActivity


@pytest.fixture(autouse=True)
def _no_instrument_left_on():
    assert instruments.observers == ()
    yield
    assert instruments.observers == (), "a profile was left attached"


def _program(n_matmul, n_softmax, x):
    """n_matmul matmuls then n_softmax softmaxes over x (C, C), summed: backward included."""
    y = x
    for _ in range(n_matmul):
        y = y @ x
    for _ in range(n_softmax):
        y = y.softmax(-1)
    y.sum().backward()


def _counts(prof):
    return {r.key: r.count for r in prof.key_averages()}


@pytest.mark.parametrize("n_matmul,n_softmax", [(3, 2), (1, 4)])
def test_counts_match_the_ops_run_forward_and_backward(n_matmul, n_softmax):
    x = tga.randn(8, 8, requires_grad=True)
    with tga.profiler.profile() as prof:
        _program(n_matmul, n_softmax, x)
    assert _counts(prof) == {"MatMul": n_matmul, "Softmax": n_softmax, "Sum": 1,
                             "MatMulBackward": n_matmul, "SoftmaxBackward": n_softmax,
                             "SumBackward": 1}
    kinds = {r.key: r.category for r in prof.key_averages()}
    assert kinds["Softmax"] == "forward" and kinds["SoftmaxBackward"] == "backward"


def test_bytes_are_the_outputs_made():
    a = tga.randn(4, 5, requires_grad=True)
    b = tga.randn(5, 6)
    with tga.profiler.profile() as prof:
        (a @ b).sum().backward()
    mem = {r.key: r.self_cpu_memory_usage for r in prof.key_averages()}
    assert mem["MatMul"] == 4 * 6 * 4            # the (4, 6) float32 product
    assert mem["Sum"] == 4                        # a 0-d float32
    assert mem["SumBackward"] == 4 * 6 * 4        # dout expanded to (4, 6)
    assert mem["MatMulBackward"] == 4 * 5 * 4     # only a needs a gradient


def test_table_is_sorted_and_limited():
    x = tga.randn(16, 16, requires_grad=True)
    with tga.profiler.profile() as prof:
        _program(3, 2, x)
    rows = prof.key_averages()
    for key in ("self_cpu_time_total", "cpu_time_total", "count", "self_cpu_memory_usage"):
        text = rows.table(sort_by=key, row_limit=4)
        names = [line.split()[0] for line in text.splitlines()[3:7]]
        want = sorted(rows, key=lambda r: getattr(r, key), reverse=True)[:4]
        assert [getattr(r, key) for r in want] == \
            [getattr(next(r for r in rows if r.key == n), key) for n in names], key
        assert text.splitlines()[7].startswith("---")          # 4 rows, then the rule
    assert "Self CPU time total" in text
    with pytest.raises(ValueError, match="sort_by='bogus'"):
        rows.table(sort_by="bogus")


def test_self_time_of_a_region_excludes_the_ops_inside():
    x = tga.randn(32, 32, requires_grad=True)
    with tga.profiler.profile() as prof:
        with tga.profiler.record_function("block"):
            _program(2, 1, x)
    events = prof.events()
    region = next(e for e in events if e.name == "block")
    inside = [e for e in events if e is not region]
    assert all(region.start_us <= e.start_us and e.end_us <= region.end_us for e in inside)
    assert region.self_cpu_time_total == pytest.approx(
        region.cpu_time_total - sum(e.cpu_time_total for e in inside), abs=1e-6)
    assert region.cpu_memory_usage == sum(e.nbytes for e in inside)
    assert prof.key_averages().self_cpu_time_total == pytest.approx(region.cpu_time_total)


def test_chrome_trace_is_valid_json_one_complete_event_per_op_and_region(tmp_path):
    x = tga.randn(8, 8, requires_grad=True)
    with tga.profiler.profile(record_shapes=True, with_stack=True) as prof:
        with tga.profiler.record_function("forward+backward"):
            _program(2, 3, x)
    for name in ("trace.json", "trace.json.gz"):
        path = tmp_path / name
        prof.export_chrome_trace(str(path))
        opener = gzip.open if name.endswith(".gz") else open
        with opener(path, "rt") as f:
            data = json.load(f)
        events = data["traceEvents"]
        assert len(events) == 2 * (2 + 3 + 1) + 1            # ops forward and backward, region
        assert {e["ph"] for e in events} == {"X"}
        assert all(isinstance(e["ts"], (int, float)) and e["dur"] >= 0 and "pid" in e
                   and "tid" in e for e in events)
        by_cat = {}
        for e in events:
            by_cat.setdefault(e["cat"], []).append(e["name"])
        assert sorted(by_cat["forward"]) == ["MatMul"] * 2 + ["Softmax"] * 3 + ["Sum"]
        assert sorted(by_cat["backward"]) == \
            ["MatMulBackward"] * 2 + ["SoftmaxBackward"] * 3 + ["SumBackward"]
        assert by_cat["user_annotation"] == ["forward+backward"]
        matmul = next(e for e in events if e["name"] == "MatMul")
        assert matmul["args"]["Input Dims"] == [[8, 8], [8, 8]]
        assert __file__ in matmul["args"]["Call stack"]
        assert [e["ts"] for e in events] == sorted(e["ts"] for e in events)


def test_record_shapes_groups_by_input_shape():
    with tga.profiler.profile(record_shapes=True) as prof:
        tga.ones(2, 3) @ tga.ones(3, 4)
        tga.ones(2, 3) @ tga.ones(3, 4)
        tga.ones(5, 3) @ tga.ones(3, 4)
    rows = prof.key_averages(group_by_input_shape=True)
    assert sorted((r.key, r.input_shapes, r.count) for r in rows) == [
        ("MatMul", "[[2, 3], [3, 4]]", 2), ("MatMul", "[[5, 3], [3, 4]]", 1)]
    assert "Input Shapes" in rows.table()


def test_schedule_steps_record_only_active_steps_and_call_on_trace_ready():
    x = tga.randn(4, 4, requires_grad=True)
    ready = []
    sched = tga.profiler.schedule(wait=1, warmup=1, active=2, repeat=1)
    with tga.profiler.profile(schedule=sched, on_trace_ready=lambda p: ready.append(
            _counts(p))) as prof:
        for step in range(6):
            with tga.profiler.record_function(f"step{step}"):
                _program(1, 0, x)
            prof.step()
    assert ready == [{"step2": 1, "step3": 1, "ProfilerStep#2": 1, "ProfilerStep#3": 1,
                      "MatMul": 2, "Sum": 2, "MatMulBackward": 2, "SumBackward": 2}]
    assert instruments.observers == ()


def test_schedule_matches_torch():
    torch = pytest.importorskip("torch")
    for kw in (dict(wait=1, warmup=1, active=2, repeat=1), dict(wait=0, warmup=2, active=1),
               dict(wait=2, warmup=1, active=3, repeat=2, skip_first=3),
               dict(wait=5, warmup=1, active=2, skip_first=2, skip_first_wait=1)):
        ours, theirs = tga.profiler.schedule(**kw), torch.profiler.schedule(**kw)
        assert [ours(s).name for s in range(30)] == [theirs(s).name for s in range(30)], kw
    for lib in (tga, torch):         # torch asserts: AssertionError, not ValueError
        with pytest.raises(AssertionError, match="active"):
            lib.profiler.schedule(wait=0, warmup=0, active=0)
        with pytest.raises(AssertionError, match="wait"):
            lib.profiler.schedule(wait=-1, warmup=0, active=1)
    with pytest.raises(TypeError, match="warmup"):
        tga.profiler.schedule(wait=0, warmup="1", active=1)


def test_tensorboard_trace_handler_writes_chrome_json_into_the_dir(tmp_path):
    x = tga.randn(4, 4, requires_grad=True)
    with tga.profiler.profile(
            activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA],
            schedule=tga.profiler.schedule(wait=0, warmup=1, active=1, repeat=1),
            on_trace_ready=tga.profiler.tensorboard_trace_handler(str(tmp_path / "log"),
                                                                  worker_name="w"),
            record_shapes=False, profile_memory=False, with_stack=False, with_flops=True,
            with_modules=False) as prof:
        for _ in range(3):
            _program(1, 1, x)
            prof.step()
    files = list((tmp_path / "log").iterdir())
    assert len(files) == 1 and files[0].name.startswith("w.")
    assert files[0].name.endswith(".pt.trace.json")
    names = [e["name"] for e in json.loads(files[0].read_text())["traceEvents"]]
    assert sorted(names) == sorted(["ProfilerStep#1", "MatMul", "Softmax", "Sum",
                                    "MatMulBackward", "SoftmaxBackward", "SumBackward"])


def test_nothing_is_recorded_outside_a_profile_and_bad_activities_are_refused():
    with tga.profiler.record_function("alone"):
        tga.ones(2).exp()
    assert instruments.observers == ()
    prof = tga.profiler.profile()
    assert list(prof.events()) == []
    prof.start()
    tga.ones(2).exp()
    prof.stop()
    tga.ones(2).exp()
    assert [e.name for e in prof.events()] == ["Exp"]
    with pytest.raises(TypeError, match="ProfilerActivity"):
        tga.profiler.profile(activities=["cpu"])
    assert ProfilerAction.RECORD_AND_SAVE.name == "RECORD_AND_SAVE"


def test_profile_and_trace_together_see_the_same_backward():
    x = tga.randn(4, 4, requires_grad=True)
    with tga.profiler.profile() as prof, tga.autograd.trace() as t:
        _program(2, 1, x)
    bwd = [e.name for e in prof.events() if e.category == "backward"]
    assert bwd == [e.name for e in t.events]


def test_cuda_activity_synchronizes_after_each_op_and_cpu_alone_does_not(monkeypatch):
    """ProfilerActivity.CUDA: the profile calls the backend's synchronize after each op, so
    a GPU op's time holds its kernels; with CPU alone it never does."""
    backend = tga.ones(1)._backend
    calls = []
    monkeypatch.setattr(type(backend), "synchronize", lambda *a: calls.append(1), raising=False)
    x = tga.randn(4, 4, requires_grad=True)
    with tga.profiler.profile(activities=[ProfilerActivity.CPU]):
        _program(1, 1, x)
    assert calls == []
    with tga.profiler.profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]):
        _program(1, 1, x)
    assert len(calls) == 6                       # 3 ops forward, 3 backward
