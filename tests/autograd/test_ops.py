"""Every op of op_table.py through check_op: forward and backward against PyTorch in float32
and float64, then gradcheck in float64. Plus the meta-test that no Function goes untested."""
import importlib
import inspect
import pkgutil

import pytest

import tinygradattn as tga
import tinygradattn.ops
from tinygradattn.autograd import Function

from helpers import check_op
from op_table import OPS


def _torch_module():
    import torch
    return torch


def _callables(entry):
    ours = lambda *xs: entry.fn(tga, *xs)                             # noqa: E731
    theirs_fn = entry.torch_fn or entry.fn
    theirs = lambda *xs: theirs_fn(_torch_module(), *xs)              # noqa: E731
    return ours, theirs


@pytest.mark.parametrize("entry", OPS, ids=[o.name for o in OPS])
def test_op(entry):
    ours, theirs = _callables(entry)
    check_op(entry.name, ours, theirs, entry.inputs, domain=entry.domain, grad=entry.grad,
             gradcheck=entry.gradcheck, tol=entry.tol)


def test_op_names_are_unique():
    names = [o.name for o in OPS]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


def _function_classes():
    """Every public Function subclass defined in a module of tinygradattn.ops."""
    found = {}
    for info in pkgutil.iter_modules(tinygradattn.ops.__path__):
        module = importlib.import_module(f"tinygradattn.ops.{info.name}")
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if (issubclass(cls, Function) and cls is not Function and
                    cls.__module__ == module.__name__ and not name.startswith("_")):
                found[name] = module.__name__
    return found


def test_every_function_is_in_the_op_table():
    classes = _function_classes()
    assert classes, "no Function subclasses found in tinygradattn.ops"
    covered = {c for o in OPS for c in o.covers}
    missing = {n: m for n, m in classes.items() if n not in covered}
    assert not missing, (f"Functions with no entry in tests/op_table.py (add one per op, with "
                         f"covers=(...)): {missing}")


def test_op_table_covers_only_existing_functions():
    classes = _function_classes()
    stale = {c for o in OPS for c in o.covers} - set(classes)
    assert not stale, f"op_table names Functions that no longer exist: {sorted(stale)}"
