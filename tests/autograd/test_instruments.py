"""The instruments that watch ops run (issue 17): the observer hook, the backward trace and
anomaly mode. The profiler has its own file (test_profiler.py)."""
import doctest
import linecache
import math
import warnings

import numpy as np
import pytest

import tinygradattn as tga
import tinygradattn.nn.functional as F
from tinygradattn.autograd import anomaly_mode, backward_trace, instruments


@pytest.fixture(autouse=True)
def _no_instrument_left_on():
    """Each test starts and ends with no observer: a leak would slow every later test."""
    assert instruments.observers == ()
    yield
    assert instruments.observers == (), "an instrument was left attached"


def _line_of(text):
    """The line number in this file of the line containing text (a test's own source)."""
    lines = linecache.getlines(__file__)
    hits = [i + 1 for i, line in enumerate(lines) if line.rstrip().endswith(text)]
    assert len(hits) == 1, (text, hits)
    return hits[0]


# ---- the hook -------------------------------------------------------------------------------
def test_an_observer_sees_forward_and_backward_of_each_op_then_nothing_once_detached():
    seen = []

    def observer(event):
        seen.append((event.phase, event.name, event.end_ns >= event.start_ns))
    x = tga.ones(2, 3, requires_grad=True)
    instruments.attach(observer)
    try:
        (x * 2.0).sum().backward()
    finally:
        instruments.detach(observer)
    assert seen == [("forward", "Mul", True), ("forward", "Sum", True),
                    ("backward", "SumBackward", True), ("backward", "MulBackward", True)]
    seen.clear()
    (x * 2.0).sum().backward()
    assert seen == []


def test_instruments_off_route_nothing_through_the_hook(monkeypatch):
    """With no instrument on, apply and the engine never enter instruments.run_*."""
    def boom(*args):
        raise AssertionError("an op went through the instruments while none was on")
    monkeypatch.setattr(instruments, "run_forward", boom)
    monkeypatch.setattr(instruments, "run_backward", boom)
    x = tga.ones(3, requires_grad=True)
    x.exp().log().sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.ones(3), rtol=1e-6)


def test_bytes_made_skips_a_passed_through_gradient_and_a_view():
    with tga.autograd.trace() as t:
        x = tga.ones(4, 5, requires_grad=True)
        (x.reshape(20) + 1.0).sum().backward()
    by_name = {e.name: e.nbytes for e in t.events}
    assert by_name["AddBackward"] == 0           # returns dout itself
    assert by_name["SumBackward"] == 20 * 4      # a new (20,) float32 gradient


# ---- backward trace -------------------------------------------------------------------------
def _names_and_shapes(t):
    return [(e.name, e.grad_in, e.grads_out) for e in t.events]


def test_trace_of_matmul_relu_sum_is_the_expected_list():
    x = tga.randn(4, 3)
    w = tga.randn(3, 5, requires_grad=True)
    with tga.autograd.trace() as t:
        (x @ w).relu().sum().backward()
    assert _names_and_shapes(t) == [
        ("SumBackward", (), ((4, 5),)),
        ("ReluBackward", (4, 5), ((4, 5),)),
        ("MatMulBackward", (4, 5), ((3, 5),)),       # x needs no gradient: only w's
    ]
    assert [e.index for e in t.events] == [0, 1, 2]
    assert all(e.time_s >= 0 for e in t.events)
    assert [e.nbytes for e in t.events] == [4 * 5 * 4, 4 * 5 * 4, 3 * 5 * 4]


def test_trace_of_a_small_causal_attention_is_the_expected_list():
    B, H, T, D = 1, 2, 3, 4
    q, k, v = (tga.randn(B, H, T, D, requires_grad=True) for _ in range(3))
    mask = tga.ones(T, T).tril() == 0
    with tga.autograd.trace() as t:
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(D))      # (B, H, T, T)
        att = att.masked_fill(mask, float("-inf")).softmax(-1)
        (att @ v).sum().backward()
    qkv, scores = (B, H, T, D), (B, H, T, T)
    assert _names_and_shapes(t) == [
        ("SumBackward", (), (qkv,)),
        ("MatMulBackward", qkv, (scores, qkv)),                      # att @ v
        ("SoftmaxBackward", scores, (scores,)),
        ("WhereBackward", scores, (scores,)),                        # masked_fill
        ("MulBackward", scores, (scores,)),                          # * 1/sqrt(D)
        ("MatMulBackward", scores, (qkv, (B, H, D, T))),             # q @ k^T
        ("PermuteBackward", (B, H, D, T), (qkv,)),                   # k.transpose
    ]
    with tga.autograd.trace() as fused:
        F.scaled_dot_product_attention(q, k, v, is_causal=True).sum().backward()
    assert _names_and_shapes(fused) == [
        ("SumBackward", (), (qkv,)),
        ("ScaledDotProductAttentionBackward", qkv, (qkv, qkv, qkv)),
    ]


def test_trace_keeps_backward_only_appends_over_passes_and_stops_at_exit():
    x = tga.ones(3, requires_grad=True)
    with tga.autograd.trace() as t:
        y = x.exp()                          # forward inside the block: not a record
        y.sum().backward()
        x.sum().backward()
    x.sum().backward()                       # after the block: not recorded
    assert [e.name for e in t.events] == ["SumBackward", "ExpBackward", "SumBackward"]


def test_trace_table_lists_every_node_in_order_with_totals():
    w = tga.ones(3, 5, requires_grad=True)
    with tga.autograd.trace() as t:
        (tga.ones(4, 3) @ w).relu().sum().backward()
    text = t.table()
    lines = text.splitlines()
    assert lines[0].split()[:2] == ["#", "node"]
    body = lines[2:5]
    assert [line.split()[1] for line in body] == ["SumBackward", "ReluBackward",
                                                   "MatMulBackward"]
    assert "(3, 5)" in body[2] and "(4, 5)" in body[2]
    assert lines[-1].startswith("3 nodes,") and f"{20 * 4 * 2 + 15 * 4} bytes" in lines[-1]
    assert repr(text) == text                # shows as a table at a prompt


def test_module_doctests_run():
    from tinygradattn.profiler import recorder
    for module in (backward_trace, anomaly_mode, recorder):
        with warnings.catch_warnings():          # anomaly_mode's example takes log(-1)
            warnings.simplefilter("ignore", RuntimeWarning)
            result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0 and result.attempted > 0, module.__name__


# ---- anomaly mode ---------------------------------------------------------------------------
def _anomaly(fn):
    with warnings.catch_warnings():          # numpy warns about the very values we provoke
        warnings.simplefilter("ignore", RuntimeWarning)
        with tga.autograd.detect_anomaly():
            with pytest.raises(RuntimeError) as info:
                fn()
    return str(info.value)


def test_anomaly_forward_names_log_of_a_negative_and_its_line():
    x = tga.tensor([1.0, -2.0], requires_grad=True)

    def f():
        return x.log() * 2.0                 # LOG-OF-NEGATIVE
    message = _anomaly(f)
    line = _line_of("# LOG-OF-NEGATIVE")
    assert message.startswith("Function 'Log' returned nan values in its output")
    assert f"{__file__}:{line}: return x.log() * 2.0" in message
    assert "in f" in message and "test_anomaly_forward_names_log" in message   # the user stack
    assert "tinygradattn/" not in message.replace(__file__, "")   # only the user's frames


def test_anomaly_backward_names_sqrt_of_zero_and_the_forward_line():
    x = tga.tensor([0.0, 4.0], requires_grad=True)

    def f():
        y = x.sqrt()                         # SQRT-OF-ZERO
        y.sum().backward()
    message = _anomaly(f)
    line = _line_of("# SQRT-OF-ZERO")
    assert message.startswith("Function 'SqrtBackward' returned inf values in its 0th output")
    assert f"the op Sqrt, created at {__file__}:{line}: y = x.sqrt()" in message


def test_anomaly_backward_names_a_0_over_0_in_a_gradient():
    """sqrt at 0 with a zero upstream gradient: forward is finite (sqrt(0) * 0 = 0), backward
    computes 0 / (2 sqrt(0)) = 0/0 = nan in SqrtBackward."""
    x = tga.tensor([0.0, 4.0], requires_grad=True)

    def f():
        y = x.sqrt() * 0.0                   # SQRT-TIMES-ZERO
        y.sum().backward()
    message = _anomaly(f)
    assert message.startswith("Function 'SqrtBackward' returned nan values in its 0th output")
    assert f":{_line_of('# SQRT-TIMES-ZERO')}: y = x.sqrt() * 0.0" in message


def test_anomaly_stack_kept_with_check_nan_off_names_div_backward():
    """check_nan=False in forward (torch's meaning: keep stacks, check nothing): 0/0 passes;
    backward then checked: DivBackward's first gradient, dout / 0, is inf."""
    x = tga.tensor([0.0], requires_grad=True)
    y = tga.tensor([0.0], requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with tga.autograd.detect_anomaly(check_nan=False):
            z = x / y                        # DIV-0-0-NOCHECK
            total = z.sum()
        with tga.autograd.detect_anomaly():
            with pytest.raises(RuntimeError) as info:
                total.backward()
    message = str(info.value)
    assert message.startswith("Function 'DivBackward' returned inf values in its 0th output")
    assert f":{_line_of('# DIV-0-0-NOCHECK')}: z = x / y" in message


def test_anomaly_lets_a_minus_inf_mask_through_attention():
    """-inf that an argument carried in (a causal mask) is not an anomaly; the result stays
    finite, and backward is clean."""
    q = tga.randn(1, 2, 3, 4, requires_grad=True)
    mask = tga.ones(3, 3).tril() == 0
    with tga.autograd.detect_anomaly():
        att = (q @ q.transpose(-2, -1)).masked_fill(mask, float("-inf")).softmax(-1)
        (att @ q).sum().backward()
        bias = tga.full((3, 3), float("-inf")).triu(1)       # an inf tensor argument
        (tga.ones(3, 3) + bias).softmax(-1)
    assert np.isfinite(q.grad.numpy()).all()


def test_anomaly_forward_flags_an_inf_the_op_made():
    x = tga.tensor([0.0, 1.0])
    message = _anomaly(lambda: x.log())      # log(0) = -inf, made by Log
    assert message.startswith("Function 'Log' returned inf values in its output")


def test_anomaly_without_a_forward_stack_says_how_to_get_one():
    x = tga.tensor([0.0], requires_grad=True)
    y = x.sqrt()                             # made with anomaly mode off
    message = _anomaly(lambda: y.sum().backward())
    assert message.startswith("Function 'SqrtBackward' returned inf")
    assert "enable anomaly detection during the forward pass" in message


def test_anomaly_off_checks_and_keeps_nothing():
    x = tga.tensor([-1.0, 0.0], requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        y = x.log()                          # nan and -inf: no error when off
        y.sum().backward()
    assert np.isnan(y.detach().numpy()[0])
    assert not hasattr(y._ctx, "anomaly_stack") if y._ctx is not None else True
    z = x.exp()
    assert not hasattr(z._ctx, "anomaly_stack")
    with tga.autograd.detect_anomaly():
        w = x.exp()
    assert w._ctx.anomaly_stack[-1][0] == __file__       # on: the creating stack is kept


def test_set_detect_anomaly_switches_and_restores_like_torch():
    assert not tga.autograd.is_anomaly_enabled()
    tga.autograd.set_detect_anomaly(True)
    try:
        assert tga.autograd.is_anomaly_enabled()
        assert tga.autograd.is_anomaly_check_nan_enabled()
        with tga.autograd.set_detect_anomaly(False):
            assert not tga.autograd.is_anomaly_enabled()
        assert tga.autograd.is_anomaly_enabled()
        assert len(instruments.observers) == 1
    finally:
        tga.autograd.set_detect_anomaly(False)
    assert not tga.autograd.is_anomaly_enabled()
    with tga.autograd.detect_anomaly(check_nan=False):
        assert tga.autograd.is_anomaly_enabled()
        assert not tga.autograd.is_anomaly_check_nan_enabled()
    with pytest.raises(TypeError, match="mode must be a bool"):
        tga.autograd.set_detect_anomaly("yes")


def test_detect_anomaly_as_a_decorator():
    @tga.autograd.detect_anomaly()
    def f(x):
        return x.log()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(RuntimeError, match="'Log' returned nan"):
            f(tga.tensor([-1.0]))
    assert not tga.autograd.is_anomaly_enabled()


def test_readme_examples_of_the_instruments_run(tmp_path, monkeypatch, capsys):
    """The python blocks of README.md's 'Watching autograd run' run and print what they say."""
    import pathlib
    import re
    readme = (pathlib.Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Watching autograd run", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 3
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for block in blocks:
            exec(compile(block, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "MatMulBackward" in out and "Function 'SqrtBackward' returned inf" in out
    assert "SoftmaxBackward" in out and (tmp_path / "trace.json").exists()


def test_anomaly_forward_lets_a_nan_carried_in_pass_and_flags_one_made_from_infs():
    with tga.autograd.detect_anomaly():
        (tga.tensor([float("nan"), 1.0]) * 2.0).exp()      # nan was there before: no error
    row = tga.full((1, 3), float("-inf"))                   # a fully masked row
    message = _anomaly(lambda: row.softmax(-1))             # -inf in, nan out: made here
    assert message.startswith("Function 'Softmax' returned nan values in its output")


def _without_times(table):
    """A trace table with its time figures starred: what must match from run to run."""
    import re
    rows = []
    for line in table.strip().splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) == 6 and re.fullmatch(r"[\d.]+", cells[4]):
            cells[4] = "*"
        rows.append(re.sub(r", [\d.]+ us,", ", * us,", "  ".join(cells)))
    return rows


def test_docs_instruments_traces_match_the_library(capsys):
    """docs/instruments.md: each python block followed by a text block prints that text
    (times aside), so the page cannot drift from the code."""
    import pathlib
    import re
    doc = (pathlib.Path(__file__).resolve().parents[2] / "docs" / "instruments.md").read_text()
    pairs = re.findall(r"```python\n(.*?)```\n\n```text\n(.*?)```", doc, re.S)
    assert len(pairs) == 2
    for code, shown in pairs:
        exec(compile(code, "docs/instruments.md", "exec"), {})
        printed = capsys.readouterr().out
        assert _without_times(printed) == _without_times(shown)


def test_instruments_on_each_device(device):
    """Trace, anomaly mode and the profiler on the cpu and the cuda backend (the simulator
    in CI): the checks read values back through the backend's primitives. (No log(-1) or
    x / 0 here: the simulator runs kernels with Python's math, which raises on them.)"""
    inf = float("inf")
    x = tga.tensor([inf, 1.0], device=device)
    message = _anomaly(lambda: x - x)                      # inf - inf: a nan Sub made
    assert message.startswith("Function 'Sub' returned nan values in its output")
    z = tga.tensor([1.0, 4.0], device=device, requires_grad=True)
    w = tga.tensor([inf, 1.0], device=device)
    with tga.autograd.trace() as t:
        message = _anomaly(lambda: (z * w).sum().backward())   # forward: inf carried in
    assert message.startswith("Function 'MulBackward' returned inf values in its 0th")
    assert [e.name for e in t.events] == ["SumBackward", "MulBackward"]
    with tga.profiler.profile() as prof:
        (z * 2.0).sum().backward()
    assert {r.key: r.count for r in prof.key_averages()} == {
        "Mul": 1, "Sum": 1, "SumBackward": 1, "MulBackward": 1}


def test_anomaly_an_error_inside_backward_warns_with_the_forward_line():
    """As torch: 'Error detected in ...' with the line that made the op, then the error."""
    w = tga.ones(3, requires_grad=True)
    a = tga.ones(3)
    with tga.autograd.detect_anomaly():
        y = w * a                            # MUL-SAVES-A
        a.mul_(2.0)                          # Mul saved a: backward must refuse
        with pytest.warns(UserWarning) as record:
            with pytest.raises(RuntimeError, match="modified by an inplace operation"):
                y.sum().backward()
    message = str(record[0].message)
    assert message.startswith("Error detected in MulBackward, created at ")
    assert f":{_line_of('# MUL-SAVES-A')}: y = w * a" in message
