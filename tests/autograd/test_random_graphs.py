"""Random expression graphs against PyTorch (issue 16): 3-15 ops drawn from every
differentiable op family (tests/random_graphs.py: elementwise, broadcasting binary ops,
reductions, shape ops, cat / stack / split, indexing, matmul, softmax, layer norm, attention,
cross-entropy, in-place ops on graph values, views and leaves under no_grad) on shapes with 1s
and primes and non-contiguous leaf views; run on tinygradattn and on torch, then values, every
leaf's gradient and where each raises are compared (random_graphs.compare).

Profiles (tests/conftest.py): CI runs 150 float64 + 40 float32 derandomized examples, and 3
led by each op (test_each_op_in_random_graphs); TGA_HYPOTHESIS=thorough runs
TGA_GRAPH_EXAMPLES (default 5000) random ones, and 20 led by each op. With
TGA_GRAPH_STATS=path the counts of outcomes and of examples per op are written there as JSON
(and printed at the end of the module with -s).

The regression tests below are the library bugs the graphs found, each reduced to a line.
"""
import collections
import json
import os

import numpy as np
import pytest
from hypothesis import event, given, settings

import tinygradattn as tga
from helpers import Tol

torch = pytest.importorskip("torch", reason="random graphs are compared with PyTorch")

from random_graphs import ALL_OPS, Mismatch, compare, graphs, run     # noqa: E402

PROFILE = "graphs-" + ("thorough" if os.environ.get("TGA_HYPOTHESIS") == "thorough" else "ci")
BASE = settings.get_profile(PROFILE)
# float64: the two libraries differ by rounding only; float32 chains of up to 15 ops, some of
# them ill-conditioned (division, softmax of large logits), need looser bounds
TOLS = {"float64": Tol(1e-7, 1e-9), "float32": Tol(2e-3, 2e-4)}
STATS = {"float64": collections.Counter(), "float32": collections.Counter()}


def _check(graph, dtype):
    counts = STATS[dtype]
    counts["examples"] += 1
    for node in graph.nodes:
        if node.kind != "leaf":
            counts[f"op {node.kind}.{node.op}{_index_kind(node)}"] += 1
    for key in {f"graphs with {n.kind}" for n in graph.nodes if n.kind != "leaf"}:
        counts[key] += 1
    ours, theirs = run(tga, graph, dtype), run(torch, graph, dtype)
    try:
        outcome = compare(graph, ours, theirs, TOLS[dtype],
                          lambda: run(torch, graph, dtype, save_copies=True))
    except Mismatch:
        counts["outcome: FAIL"] += 1
        raise
    counts[f"outcome: {outcome}"] += 1
    event(outcome)


def _index_kind(node):
    """'_long' / '_bool' for getitem with an index tensor (as random_graphs.ALL_OPS names)."""
    kinds = {it[0] for it in node.params.get("index", ()) if isinstance(it, tuple)}
    return "_long" if "long" in kinds else "_bool" if "bool" in kinds else ""


@settings(BASE)
@given(graph=graphs(torch))
def test_random_graphs_float64(graph):
    _check(graph, "float64")


@settings(BASE, max_examples=max(BASE.max_examples // 4, 40))
@given(graph=graphs(torch, max_ops=8))
def test_random_graphs_float32(graph):
    _check(graph, "float32")


@pytest.mark.parametrize("force", ALL_OPS, ids=[f"{k}.{o}" for k, o in ALL_OPS])
def test_each_op_in_random_graphs(force):
    """Every op the drawers know leads a few graphs (the random tests above may miss some)."""
    @settings(BASE, max_examples=3 if PROFILE == "graphs-ci" else 20)
    @given(graph=graphs(torch, force=force))
    def check(graph):
        _check(graph, "float64")
    check()


@pytest.fixture(scope="module", autouse=True)
def _report_stats():
    yield
    path = os.environ.get("TGA_GRAPH_STATS")
    if path:
        with open(path, "w") as f:
            json.dump({k: dict(sorted(v.items())) for k, v in STATS.items()}, f, indent=1)
    for dtype, counts in STATS.items():
        if counts:
            print(f"\nrandom graphs ({PROFILE}, {dtype}):")
            for k, v in sorted(counts.items()):
                print(f"  {k}: {v}")


# ---- the bugs the random graphs found (each failed before its fix) -----------------------------
def test_an_element_picked_by_ints_is_a_view():
    """x[0, 1] was a numpy scalar: an in-place op on it raised TypeError."""
    x = tga.zeros(2, 3)
    x[0, 1].add_(5.0)
    x[1][2].fill_(-1.0)
    assert x.tolist() == [[0.0, 5.0, 0.0], [0.0, 0.0, -1.0]]


def test_a_0d_int_tensor_index_is_a_view_as_in_torch():
    """x[tensor(1)] selects (a view) in torch; numpy took the 0-d array as an index array."""
    for L in (tga, torch):
        x = L.zeros(3, 2)
        x[L.tensor(1)].fill_(2.0)
        assert x.tolist() == [[0.0, 0.0], [2.0, 2.0], [0.0, 0.0]], L.__name__


def test_contiguous_keeps_a_0d_shape_and_returns_a_contiguous_tensor_itself():
    x = tga.tensor(3.0, requires_grad=True)
    assert x.contiguous().shape == () and x.sum().contiguous().shape == ()
    y = tga.zeros(2, 3)
    assert y.contiguous() is y and y.T.contiguous() is not y
    assert y.T.contiguous().shape == (3, 2)


def test_layer_norm_over_a_zero_size_normalized_shape():
    for L in (tga, torch):
        x = L.zeros(1, 0, requires_grad=True)
        y = L.nn.functional.layer_norm(x, (1, 0))
        y.sum().backward()
        assert tuple(y.shape) == (1, 0) and tuple(x.grad.shape) == (1, 0)


def test_logsumexp_of_an_empty_reduction_is_minus_inf():
    x = tga.zeros(0, 1, 1, requires_grad=True)
    y = x.logsumexp((0, 1, 2), keepdim=True)
    assert y.shape == (1, 1, 1) and y.item() == float("-inf")
    y.sum().backward()
    assert x.grad.shape == (0, 1, 1)
    assert x.logsumexp(1).shape == (0, 1)


def test_softmax_output_saved_as_a_view_is_under_the_version_counter():
    """Softmax over a dim other than the last saves y before moving the dim back: the saved
    array is a view of the output, which the counter did not cover (silently wrong grad)."""
    x = tga.ones(2, 3, requires_grad=True)
    y = x.softmax(0)
    with tga.no_grad():
        y.sub_(0.5)
    with pytest.raises(RuntimeError, match="modified by an inplace operation.*Softmax"):
        y.sum().backward()


def test_write_into_an_expanded_tensor_as_torch():
    """numpy's read-only broadcast view raised ValueError for every write; torch writes
    where the written elements do not overlap, and raises RuntimeError where they do."""
    for L in (tga, torch):
        base = L.zeros(1, 3)
        x = base.expand(4, 3)
        x[0].add_(1.0)
        x[1, 2:] = 5.0
        assert base.tolist() == [[1.0, 1.0, 5.0]] and x.tolist()[3] == [1.0, 1.0, 5.0]
        with pytest.raises(RuntimeError, match="refers to a single memory location"):
            x.clamp_(0.0, 1.0)
        with pytest.raises(RuntimeError, match="refers to a single memory location"):
            x[1:] = 2.0


def test_flatten_of_a_zero_size_tensor():
    """flatten reshaped to (..., -1, ...), which cannot be inferred when another dim is 0."""
    for L in (tga, torch):
        assert tuple(L.zeros(0, 1).flatten(1, 1).shape) == (0, 1)
        assert tuple(L.zeros(0, 3, 2).flatten(1).shape) == (0, 6)
        assert tuple(L.zeros(2, 0, 3).flatten(0, 1).shape) == (0, 3)


def test_attention_with_a_zero_size_head_dim_gives_uniform_weights():
    """scale 1/sqrt(0) raised ZeroDivisionError; torch attends uniformly."""
    got = []
    for L in (tga, torch):
        q, k = L.zeros(1, 0, dtype=L.float64), L.zeros(7, 0, dtype=L.float64)
        v = L.tensor(np.arange(14.0).reshape(7, 2), requires_grad=True)
        out = L.nn.functional.scaled_dot_product_attention(q, k, v)
        out.sum().backward()
        got.append((out.detach().numpy(), v.grad.numpy()))
    np.testing.assert_allclose(got[0][0], got[1][0], rtol=1e-6)
    np.testing.assert_allclose(got[0][1], got[1][1], rtol=1e-6)
