"""tga.viz: the autograd graph as data (exact nodes and edges of known graphs), its labels,
named parameters and gradients, max_depth and the collapse of a GPT's repeated blocks, the
graphviz.Digraph it becomes, rendering without Graphviz's `dot` (pygraphviz, then the
pure-Python SVG), and the messages when an optional package is missing.

graphviz (the Python package) is in the [test] extra; tests that need it skip without it.
"""
import math
import os
import pathlib
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import tinygradattn as tga
from tinygradattn import nn, viz
from tinygradattn.models import GPT, GPTConfig

SVG = "{http://www.w3.org/2000/svg}"
ROOT = pathlib.Path(__file__).resolve().parent.parent


def small_graph():
    """loss = sum(w * w + w): 4 nodes (Sum, Add, Mul, w), 4 edges (w feeds Mul once)."""
    w = tga.tensor([[1.0, -2.0, 3.0], [0.5, 0.0, -1.0]], requires_grad=True)   # (2, 3)
    return (w * w + w).sum(), w


def edge_titles(graph):
    title = {n.key: n.title for n in graph.nodes}
    return sorted((title[e.src], title[e.dst]) for e in graph.edges)


def svg_groups(svg_text, cls):
    root = ET.fromstring(svg_text)                    # raises on malformed XML
    return [g for g in root.iter(f"{SVG}g") if g.get("class") == cls]


@pytest.fixture
def gpt_loss():
    config = GPTConfig(vocab_size=29, block_size=8, n_layer=4, n_head=2, n_embd=16)
    model = GPT(config)
    idx = tga.randint(0, 29, (2, 8))
    _, loss = model(idx, idx)
    loss.backward()
    return model, loss


@pytest.fixture
def graphviz():
    return pytest.importorskip("graphviz", reason="graphviz (pip install graphviz) not installed")


# ---- the graph as data ------------------------------------------------------------------------
def test_known_graph_nodes_and_edges():
    loss, w = small_graph()
    g = viz.autograd_graph(loss, {"w": w})
    assert [n.title for n in g.nodes] == ["Sum", "Add", "Mul", "w"]
    assert [n.kind for n in g.nodes] == ["op", "op", "op", "leaf"]
    assert (g.n_nodes, g.n_edges) == (4, 4)
    assert edge_titles(g) == [("Add", "Sum"), ("Mul", "Add"), ("w", "Add"), ("w", "Mul")]
    assert g.nodes[0].is_root and not any(n.is_root for n in g.nodes[1:])


def test_inputs_without_grad_are_not_nodes_and_a_leaf_is_one_node():
    x = tga.randn(4, 2)                                   # data: no gradient, no node
    w = tga.randn(2, 3, requires_grad=True)
    b = tga.zeros(3, requires_grad=True)
    g = viz.autograd_graph((x @ w + b).relu().mean(), {"w": w, "b": b})
    assert (g.n_nodes, g.n_edges) == (6, 5)
    assert edge_titles(g) == [("Add", "Relu"), ("MatMul", "Add"), ("Relu", "Mean"),
                              ("b", "Add"), ("w", "MatMul")]
    leaf = viz.autograd_graph(w)
    assert (leaf.n_nodes, leaf.n_edges) == (1, 0) and leaf.nodes[0].kind == "leaf"


def test_labels_carry_op_names_shapes_and_dtypes():
    w = tga.randn(2, 3, dtype=tga.float64, requires_grad=True)
    g = viz.autograd_graph((w.t() @ w).sum())
    labels = [n.label() for n in g.nodes]
    assert labels[0] == "Sum\n() float64"
    assert "MatMul\n(3, 3) float64" in labels
    assert "leaf\n(2, 3) float64" in labels               # unnamed leaf


def test_leaves_are_named_after_a_modules_parameters():
    tga.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    loss = model(tga.randn(5, 3)).sum()
    g = viz.autograd_graph(loss, model)
    leaves = sorted(n.title for n in g.nodes if n.kind == "leaf")
    assert leaves == ["0.bias", "0.weight", "2.bias", "2.weight"]
    assert viz.autograd_graph(loss, list(model.named_parameters())).nodes == g.nodes
    with pytest.raises(TypeError, match="params must be a Module"):
        viz.autograd_graph(loss, [model[0].weight])
    with pytest.raises(TypeError, match="expected a Tensor, got list"):
        viz.autograd_graph([loss])


def test_gradient_norms_appear_once_backward_has_run():
    loss, w = small_graph()
    before = viz.autograd_graph(loss, {"w": w}, max_depth=None)
    assert not any("grad" in n.label() for n in before.nodes)
    loss.backward()
    after = viz.autograd_graph(loss, {"w": w})            # the freed graph still draws
    expected = float(np.linalg.norm(2 * w.detach().numpy() + 1))
    leaf = after.nodes[3]
    assert leaf.grad_norms == [pytest.approx(expected, rel=1e-6)]
    assert leaf.lines()[-1] == f"grad norm {expected:.3g}"
    assert not any(n.grad_norms for n in after.nodes[:3])   # no retain_grad on the ops


def test_max_depth_keeps_the_nodes_near_the_root_and_counts_the_rest():
    loss, w = small_graph()
    g = viz.autograd_graph(loss, {"w": w}, max_depth=1)
    assert [n.title for n in g.nodes] == ["Sum", "Add", "... 2 more nodes"]
    assert edge_titles(g) == [("... 2 more nodes", "Add"), ("Add", "Sum")]
    assert viz.autograd_graph(loss, max_depth=0).n_nodes == 2     # root + "more"
    assert viz.autograd_graph(loss, max_depth=5).n_nodes == 4     # nothing cut: no "more"
    with pytest.raises(ValueError, match="max_depth must be >= 0"):
        viz.autograd_graph(loss, max_depth=-1)


# ---- collapsing a GPT -----------------------------------------------------------------------
def test_collapse_draws_a_gpts_identical_blocks_once(gpt_loss):
    model, loss = gpt_loss
    full = viz.autograd_graph(loss, model)
    small = viz.collapse(full)
    per_block, rest = divmod(full.n_nodes - small.n_nodes, 3)       # 4 blocks -> 1 drawn
    assert rest == 0 and per_block >= 12                            # 12 parameters a block
    assert full.n_nodes >= 80 and small.n_nodes <= 32               # 83 -> 29 today
    assert list(small.clusters) == ["transformer.h.0"]
    assert "x 4" in small.clusters["transformer.h.0"]
    in_block = [n for n in small.nodes if n.group == "transformer.h.0"]
    assert len(in_block) == per_block
    assert {"ln_1.weight", "attn.c_attn.weight", "mlp.c_proj.bias"} <= {n.title for n in in_block}
    assert all(len(n.grad_norms) == 4 for n in in_block if n.kind == "leaf")
    tops = {n.title for n in small.nodes if n.group is None}        # embeddings, ln_f, head
    assert {"transformer.wte.weight", "transformer.ln_f.weight", "CrossEntropyMean"} <= tops
    assert any(e.style == "repeat" for e in small.edges)
    keys = {n.key for n in small.nodes}
    assert all(e.src in keys and e.dst in keys for e in small.edges)
    assert full.n_nodes == len({n.key for n in full.nodes})         # collapse copied, not cut


def test_collapse_draws_each_stack_of_a_seq2seq_once():
    from tinygradattn.models import Seq2SeqConfig, Seq2SeqTransformer
    config = Seq2SeqConfig(11, 13, d_model=8, nhead=2, num_encoder_layers=3,
                           num_decoder_layers=2, dim_feedforward=16, dropout=0.0)
    model = Seq2SeqTransformer(config)
    loss = model(tga.randint(3, 11, (2, 5)), tga.randint(3, 13, (2, 4))).mean()
    full = viz.autograd_graph(loss, model)
    small = viz.collapse(full)
    assert small.clusters == {
        "decoder.layers.0": "decoder.layers.0 .. decoder.layers.1  (x 2, identical: drawn once)",
        "encoder.layers.0": "encoder.layers.0 .. encoder.layers.2  (x 3, identical: drawn once)"}
    # 3 + 2 layers drawn as 1 + 1: 160 -> 80 nodes here (the layers' fused residual
    # branches leave ~30 nodes a layer; the embeddings, final norms and loss stay)
    assert small.n_nodes <= 0.55 * full.n_nodes


def test_max_depth_shrinks_a_gpt_graph(gpt_loss):
    model, loss = gpt_loss
    g = viz.autograd_graph(loss, model, max_depth=4)
    assert g.n_nodes <= 12 and g.nodes[-1].kind == "more"


def test_blocks_of_different_structure_stay_separate_clusters():
    a = tga.randn(3, requires_grad=True)
    b = tga.randn(4, requires_grad=True)
    loss = (a * 2).sum() + b.exp().sum()                  # two "blocks", different ops
    g = viz.collapse(viz.autograd_graph(loss, {"blocks.0.w": a, "blocks.1.w": b}))
    assert g.clusters == {"blocks.1": "blocks.1", "blocks.0": "blocks.0"}
    assert g.n_nodes == 7 and not any(e.style == "repeat" for e in g.edges)


def test_split_block_finds_the_first_index_of_a_module_path():
    assert viz.collapse.__module__ == "tinygradattn.viz.collapse"
    from tinygradattn.viz.collapse import split_block
    assert split_block("transformer.h.11.attn.c_attn.weight") == (
        "transformer.h", 11, "attn.c_attn.weight")
    assert split_block("transformer.wte.weight") is None
    assert split_block("0.weight") is None                # a top-level Sequential index


# ---- the pure-Python SVG -----------------------------------------------------------------------
def test_svg_fallback_is_xml_with_one_group_per_node_and_edge(gpt_loss):
    model, loss = gpt_loss
    g = viz.collapse(viz.autograd_graph(loss, model))
    text = viz.render_svg(g)
    nodes, edges = svg_groups(text, "node"), svg_groups(text, "edge")
    assert (len(nodes), len(edges)) == (g.n_nodes, g.n_edges)
    assert len(svg_groups(text, "cluster")) == 1
    assert {n.find(f"{SVG}title").text for n in nodes} == {n.title for n in g.nodes}
    assert "(48, 16) float32" in text                      # c_attn.weight: (3C, C)
    assert g._repr_svg_() == text


def test_save_svg_of_a_graph_needs_no_graphviz(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "graphviz", None)
    loss, w = small_graph()
    path = viz.save_svg(viz.autograd_graph(loss, {"w": w}), tmp_path / "g.svg")
    assert len(svg_groups(path.read_text(), "node")) == 4


# ---- graphviz: the Digraph, rendering without dot, missing packages -----------------------------
def test_draw_graph_returns_a_graphviz_digraph(graphviz):
    loss, w = small_graph()
    dot = viz.draw_graph(loss, {"w": w})
    assert isinstance(dot, graphviz.Digraph)
    body = [line.strip() for line in dot.body]
    assert sum(line.startswith("n") and "[label=" in line for line in body) == 4
    assert sum("->" in line for line in body) == 4
    assert 'n3 [label="w\n(2, 3) float32"' in dot.source
    assert "darkolivegreen1" in dot.source                 # the root stands out


def test_draw_graph_collapse_makes_one_cluster(graphviz, gpt_loss):
    model, loss = gpt_loss
    dot = viz.draw_graph(loss, model, collapse=True, graph_attr={"rankdir": "LR"})
    assert dot.source.count("subgraph ") == 1 and "rankdir=LR" in dot.source
    assert dot.source.count("[label=") == dot.tga_graph.n_nodes + sum(
        1 for e in dot.tga_graph.edges if e.label)
    assert "style=dashed" in dot.source                      # the repeat loop


def test_rendering_without_dot_falls_back(graphviz, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))             # no `dot` on the PATH
    monkeypatch.setitem(sys.modules, "pygraphviz", None)   # nor pygraphviz: svg.py draws
    loss, w = small_graph()
    dot = viz.draw_graph(loss, {"w": w})
    with pytest.raises(graphviz.ExecutableNotFound):
        graphviz.Digraph.pipe(dot, format="svg")           # what graphviz alone would do
    svg = dot.pipe(format="svg", encoding="utf-8")
    assert len(svg_groups(svg, "node")) == 4
    bundle = dot._repr_mimebundle_()                       # Jupyter's inline display
    assert len(svg_groups(bundle["image/svg+xml"], "node")) == 4
    out = dot.render(tmp_path / "g", format="svg")
    assert out.endswith("g.svg") and len(svg_groups(open(out).read(), "node")) == 4
    assert (tmp_path / "g").read_text() == dot.source      # the DOT source is saved too
    assert viz.save_svg(dot, tmp_path / "s.svg") == tmp_path / "s.svg"
    assert dot.render(outfile=tmp_path / "o.svg") == str(tmp_path / "o.svg")
    assert (tmp_path / "o.gv").read_text() == dot.source
    with pytest.raises(graphviz.ExecutableNotFound, match="pip install pygraphviz") as err:
        dot.pipe(format="png")                             # graphviz's error, our message
    assert isinstance(err.value, RuntimeError)
    assert isinstance(err.value.__cause__, graphviz.ExecutableNotFound)
    with pytest.raises(RuntimeError, match="apt-get install graphviz"):
        dot.render(tmp_path / "g", format="png")


def test_pygraphviz_renders_png_without_dot(graphviz, tmp_path, monkeypatch):
    pytest.importorskip("pygraphviz", reason="pygraphviz (tinygradattn[viz-render]) not installed")
    monkeypatch.setenv("PATH", str(tmp_path))
    loss, w = small_graph()
    dot = viz.draw_graph(loss, {"w": w})
    assert dot.pipe(format="png")[:8] == b"\x89PNG\r\n\x1a\n"
    svg = dot.pipe(format="svg", encoding="utf-8")
    assert "Generated by graphviz" in svg and len(svg_groups(svg, "node")) == 4


def test_missing_graphviz_package_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "graphviz", None)      # import graphviz -> ImportError
    loss, w = small_graph()
    with pytest.raises(ImportError, match=r"pip install graphviz.*tinygradattn\[viz\]"):
        viz.draw_graph(loss, {"w": w})


def test_import_tinygradattn_does_not_import_graphviz():
    code = "import sys, tinygradattn; print('graphviz' in sys.modules, 'pygraphviz' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]


def test_the_attention_example_draws_its_graph(graphviz, tmp_path):
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import draw_attention_graph as example
    finally:
        sys.path.pop(0)
    dot, layer, loss = example.attention_graph()
    titles = [n.title for n in dot.tga_graph.nodes]
    assert (dot.tga_graph.n_nodes, dot.tga_graph.n_edges) == (17, 16)
    assert {"Softmax", "Where", "Div", "q_proj.weight", "v_proj.bias"} <= set(titles)
    assert titles.count("MatMul") == 2 and titles.count("Linear") == 3
    assert math.isfinite(loss.item())


def test_a_tie_goes_to_a_block_then_to_the_later_block():
    w0, w1, top = (tga.randn(3, requires_grad=True) for _ in range(3))
    out = (w0 * 2) + (w1 * 3)                   # Add: both parameters 2 edges away
    loss = out.sum() + (top * 4).sum()
    g = viz.collapse(viz.autograd_graph(loss, {"blocks.0.w": w0, "blocks.1.w": w1, "top": top}))
    group = {n.key: n.group for n in g.nodes}
    adds = [n for n in g.nodes if n.title == "Add"]          # the root, then out
    assert [group[n.key] for n in adds] == [None, "blocks.1"]
    assert group[g.nodes[1].key] == "blocks.1"               # out.sum(): 3 edges from both
    mixed = viz.collapse(viz.autograd_graph((top * 4) + (w0 * 5), {"blocks.0.w": w0, "top": top}))
    assert mixed.nodes[0].group == "blocks.0"                # a block over a top-level name


def test_the_example_script_writes_both_drawings(graphviz, tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "draw_attention_graph.py"),
                          str(tmp_path)], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    assert "collapsed: " in out.stdout
    for name in ("graph_attention.svg", "graph_gpt_nano.svg"):
        assert svg_groups((tmp_path / name).read_text(), "node")


def test_docstring_examples_run(graphviz):
    import doctest
    for module in (viz.graph, viz.dot):
        failures, tried = doctest.testmod(module)
        assert tried and not failures, module.__name__
