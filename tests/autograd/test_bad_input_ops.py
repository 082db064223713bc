"""Bad input everywhere (issue 16), tensor-level half: every public function of tga, of
tga.nn.functional and every public Tensor method gets wrong shapes, dtypes, NaN/inf, empty
tensors, out-of-range dims and indices and wrong types, from the table in bad_input_table.py.

- each case raises the recorded exception class (PyTorch's: checked against torch where it is
  installed) with a message naming what is at fault;
- cases that could crash the process (indices into kernels, huge sizes) run together in one
  child process, whose exit status and per-case results are checked;
- NaN/inf inputs that torch computes with propagate (same NaN pattern as torch's);
- every public callable is in the table or in EXEMPT with a reason.
"""
import inspect
import json
import os
import re
import subprocess
import sys
import types

import numpy as np
import pytest

import tinygradattn as tga

import bad_input_table as table

HERE = os.path.dirname(os.path.abspath(__file__))
ALLOWED = (ValueError, TypeError, IndexError, RuntimeError)

IN_PROCESS = [c for c in table.CASES if not c.sub]
IN_CHILD = [c for c in table.CASES if c.sub]


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def _check_against_torch(case):
    """torch raises the recorded class too (or a subclass: NotImplementedError is a
    RuntimeError). torch's own leaks (AttributeError for a list given to F.softmax, say)
    are not ours to follow: only a raise of one of the four classes is compared."""
    torch = _torch()
    if torch is None or not case.torch:
        return
    try:
        case.call(torch)
    except ALLOWED as e:
        assert isinstance(e, case.expected), (
            f"{case.name}: we expect {case.expected}, torch raises {type(e).__name__}: {e}")
        return
    except Exception:     # noqa: BLE001 - torch leaks another class here: not compared
        return
    pytest.fail(f"{case.name}: torch accepts this call; mark the case torch=False with the "
                "reason, or fix the table")


@pytest.mark.filterwarnings("ignore")     # torch's size-mismatch warnings in the losses
@pytest.mark.parametrize("case", IN_PROCESS, ids=[c.name for c in IN_PROCESS])
def test_bad_input_raises(case):
    with pytest.raises(case.expected, match=case.match):
        case.call(tga)
    _check_against_torch(case)


# ---- the cases that could crash the process: one child runs them all -------------------------
_CHILD = r"""
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))   # a huge allocation fails, not OOMs
sys.path[:0] = sys.argv[1:3]
import tinygradattn as tga
import bad_input_table as table
for case in table.CASES:
    if not case.sub:
        continue
    try:
        case.call(tga)
        out = {"name": case.name, "raised": None, "message": ""}
    except Exception as e:      # noqa: BLE001 - reported to the parent, which judges it
        out = {"name": case.name, "raised": type(e).__name__,
               "mro": [k.__name__ for k in type(e).__mro__], "message": str(e)}
    print(json.dumps(out), flush=True)
"""


@pytest.fixture(scope="module")
def child_results():
    """{case name: result} of the child process running every sub=True case, after checking
    that it exited normally (no crash, no hang)."""
    root = os.path.dirname(os.path.dirname(tga.__file__))
    proc = subprocess.run([sys.executable, "-c", _CHILD, root, HERE], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, (f"the child running the crash-prone cases exited with "
                                  f"{proc.returncode}; last lines:\n{proc.stdout[-2000:]}\n"
                                  f"{proc.stderr[-2000:]}")
    results = {}
    for line in proc.stdout.splitlines():
        r = json.loads(line)
        results[r["name"]] = r
    return results


def _names(expected):
    return {e.__name__ for e in (expected if isinstance(expected, tuple) else (expected,))}


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("case", IN_CHILD, ids=[c.name for c in IN_CHILD])
def test_bad_input_raises_in_child(case, child_results):
    r = child_results.get(case.name)
    assert r is not None, f"{case.name}: the child never reported it"
    assert r["raised"] is not None, f"{case.name}: no exception raised"
    assert _names(case.expected) & set(r["mro"]), (
        f"{case.name}: raised {r['raised']}: {r['message']}; expected {case.expected}")
    assert re.search(case.match, r["message"]), (
        f"{case.name}: message {r['message']!r} does not match {case.match!r}")
    _check_against_torch(case)


# ---- NaN / inf propagate ----------------------------------------------------------------------
def _nan_mask(t):
    return np.isnan(np.asarray(t.detach().cpu().numpy(), dtype=np.float64))


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("name,call", table.NAN_CASES, ids=[n for n, _ in table.NAN_CASES])
def test_nan_propagates(name, call):
    ours = _nan_mask(call(tga))
    if name.endswith("/nan_is_zero"):
        assert not ours.any(), f"{name}: NaN in the result, torch gives a number"
    else:
        assert ours.any(), f"{name}: no NaN in the result of a NaN input"
    torch = _torch()
    if torch is not None:
        theirs = _nan_mask(call(torch))
        assert ours.shape == theirs.shape and (ours == theirs).all(), (
            f"{name}: NaN pattern {ours.tolist()}, torch's {theirs.tolist()}")


# ---- every public callable is in the table or exempted -------------------------------------
NO_ARGUMENTS = "takes no argument: nothing to get wrong"
EXEMPT = {
    "tga.are_deterministic_algorithms_enabled": NO_ARGUMENTS,
    "tga.backend_info": NO_ARGUMENTS,
    "tga.empty_cache": NO_ARGUMENTS,
    "tga.get_default_dtype": NO_ARGUMENTS,
    "tga.get_float32_matmul_precision": NO_ARGUMENTS,
    "tga.get_num_threads": NO_ARGUMENTS,
    "tga.is_grad_enabled": NO_ARGUMENTS,
    "tga.is_tensor": "takes any object by contract (False for non-Tensors)",
    "tga.compile": "the identity (torch.compile's options are accepted and ignored)",
    "tga.load": "serialization: tests/train (badnn's half of issue 16)",
    "tga.save": "serialization: tests/train (badnn's half of issue 16)",
    "F.is_fusion_enabled": NO_ARGUMENTS,
    "F.set_fusion_enabled": "any value, read as a bool (as torch's set_*_enabled flags)",
    "Tensor.cpu": "no argument; to() is in the table",
    "Tensor.cuda": "needs a cuda backend; to() is in the table",
    "Tensor.is_pinned": NO_ARGUMENTS,
    "Tensor.pin_memory": "the identity on the CPU; other devices refuse (tests/cuda)",
}


def _public(namespace, owner):
    """{'owner.name': object} of namespace's public callables (no classes, no modules)."""
    out = {}
    for name in dir(namespace):
        value = getattr(namespace, name)
        if name.startswith("_") or isinstance(value, types.ModuleType) or \
                inspect.isclass(value) or not callable(value):
            continue
        out[f"{owner}.{name}"] = value
    return out


OWNERS = {"tga": tga, "F": tga.nn.functional, "Tensor": tga.Tensor}


def public_callables():
    out = {}
    for owner, namespace in OWNERS.items():
        out.update(_public(namespace, owner))
    return out


def covered_names():
    """The public names the table's cases (and NaN cases) call, as 'owner.name'."""
    names = {c.name.split("/")[0] for c in table.CASES}
    return names | {n.split("/")[0] for n, _ in table.NAN_CASES}


def test_case_names_resolve():
    for q in covered_names():
        owner, name = q.split(".", 1)
        assert owner in OWNERS and hasattr(OWNERS[owner], name), f"{q}: no such public name"


def test_every_public_callable_is_in_the_table_or_exempt():
    """A new public name must get a line in bad_input_table.py or an EXEMPT entry (with a
    reason). An alias (F.cat is tga.cat, clip is clamp) is covered through its target."""
    covered = covered_names()
    covered_ids = {id(getattr(OWNERS[q.split(".", 1)[0]], q.split(".", 1)[1]))
                   for q in covered}
    public = public_callables()
    missing = sorted(q for q, v in public.items()
                     if q not in covered and q not in EXEMPT and id(v) not in covered_ids)
    assert not missing, f"public callables with no bad-input case and no exemption: {missing}"
    stale = sorted(q for q in EXEMPT if q not in public or q in covered)
    assert not stale, f"EXEMPT entries that are gone or now covered: {stale}"


def test_table_breadth():
    """The table keeps its breadth (issue 16: ~250 cases over ~80 public names)."""
    assert len(table.CASES) >= 250
    assert len(covered_names()) >= 80
    assert len({c.name for c in table.CASES}) == len(table.CASES), "duplicate case names"


# ---- the checks refuse no input torch takes ---------------------------------------------------
def test_the_checks_keep_what_torch_accepts():
    """The argument checks added for the table stay as wide as torch: lists and arrays in
    []=, numpy scalars as fill values, a 0-d tensor as arange's end, a generator for cat."""
    x = tga.zeros(2, 3)
    x[0] = [1.0, 2.0, 3.0]
    x[1] = np.arange(3.0)
    assert x.tolist() == [[1.0, 2.0, 3.0], [0.0, 1.0, 2.0]]
    assert tga.zeros(2).fill_(np.float32(2.0)).tolist() == [2.0, 2.0]
    assert tga.zeros(2).masked_fill(tga.ones(2) > 0, np.int64(3)).tolist() == [3.0, 3.0]
    assert tga.full((2,), np.float64(1.5)).tolist() == [1.5, 1.5]
    assert tga.arange(tga.tensor(3)).tolist() == [0, 1, 2]
    assert tga.arange(5, 0, -2).tolist() == [5, 3, 1]
    assert tga.cat(t for t in (tga.ones(1), tga.zeros(1))).tolist() == [1.0, 0.0]
    assert tga.ones(3).flip(0).tolist() == [1.0, 1.0, 1.0]      # flip steps backwards inside
    assert tga.ones(2).new_zeros(0).shape == (0,)


def test_int_arguments_take_zero_d_int_tensors():
    """An int argument checked for the table takes what torch does: a 0-d integer Tensor or
    a numpy integer (both have __index__); a float Tensor stays a TypeError."""
    x = tga.arange(3)
    assert x.roll(tga.tensor(1)).tolist() == [2, 0, 1]
    assert x.roll(np.int64(1)).tolist() == [2, 0, 1]
    assert tga.ones(2, 2).triu(tga.tensor(1)).tolist() == [[0.0, 1.0], [0.0, 0.0]]
    assert sorted(tga.randperm(tga.tensor(3)).tolist()) == [0, 1, 2]
    assert tga.nn.functional.pad(tga.ones(2), (tga.tensor(1), 0)).tolist() == [0.0, 1.0, 1.0]
    with pytest.raises(TypeError, match="shifts"):
        x.roll(tga.tensor(1.0))
    with pytest.raises(TypeError, match="tuple of ints"):
        tga.nn.functional.pad(tga.ones(2), (tga.tensor(1.0), 0))


def test_slice_step_given_as_a_tensor_is_checked_too():
    """A 0-d int Tensor step <= 0 is torch's ValueError (numpy would reverse); > 0 works."""
    x = tga.arange(5)
    assert x[::tga.tensor(2)].tolist() == [0, 2, 4]
    with pytest.raises(ValueError, match="step must be greater than zero"):
        x[::tga.tensor(-1)]
    with pytest.raises(ValueError, match="step must be greater than zero"):
        x[::np.int64(0)] = 1


def test_comparing_with_none_is_pythons_identity_as_in_torch():
    """torch: `t == None` is False, `t != None` True (so `t in [None, t]` works); the
    methods t.eq(None) / t.ne(None) are TypeErrors."""
    t = tga.ones(2)
    assert (t == None) is False        # noqa: E711 - the operator is what is tested
    assert (t != None) is True         # noqa: E711
    assert (None == t) is False        # noqa: E711
    assert t in [None, t]
    for method in (t.eq, t.ne):
        with pytest.raises(TypeError):
            method(None)
    assert (t == tga.ones(2)).tolist() == [True, True]


@pytest.mark.parametrize("call", [
    lambda L: L.tensor([True]) - L.tensor([True]),
    lambda L: L.tensor([True]) - True,
    lambda L: True - L.tensor([True]),
    lambda L: L.tensor([True]) - 1,
    lambda L: 1 - L.tensor([True]),
    lambda L: L.tensor([1]) - L.tensor([True]),
    lambda L: L.tensor([True]) - L.tensor([1.0]),
    lambda L: L.tensor([1]) - True,
    lambda L: L.tensor([True]).sub(1),
])
def test_subtraction_with_any_bool_operand_is_refused_as_in_torch(call):
    """torch refuses `-` when either operand is bool (a bool tensor or a Python bool), before
    any promotion; the message says which case it is."""
    with pytest.raises(RuntimeError, match="Subtraction, the `-` operator, with"):
        call(tga)
    torch = pytest.importorskip("torch")
    with pytest.raises(RuntimeError, match="Subtraction, the `-` operator, with"):
        call(torch)


def test_sizes_take_zero_d_int_tensors_as_torch():
    """torch.zeros(lengths.max()): a one-element int Tensor (and a numpy int) is a size; a
    float Tensor or a float is not."""
    lengths = tga.tensor([2, 3])
    assert tga.zeros(lengths.max()).shape == (3,)
    assert tga.ones(2, lengths.max()).shape == (2, 3)
    assert tga.zeros((np.int64(2), 1)).shape == (2, 1)
    assert tga.ones(2).new_zeros(lengths.max()).shape == (3,)
    for bad in (tga.tensor(2.0), 2.0, True):
        with pytest.raises(TypeError, match="sizes must be ints"):
            tga.zeros(bad)
