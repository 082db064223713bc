"""tga.viz: draw the autograd graph (torchviz's make_dot, for tinygradattn).

    dot = tga.viz.draw_graph(loss, model, collapse=True)   # a graphviz.Digraph
    dot                                                   # inline in Jupyter
    dot.render("loss", format="svg")                       # or tga.viz.save_svg(dot, path)

graph.py builds the graph as plain data, collapse.py shrinks repeated blocks, dot.py makes
the graphviz.Digraph (graphviz imported on first use) and renders it without the `dot`
program when it must, svg.py is the pure-Python SVG fallback. The attention maps of a model
(every head of every layer, `tga.viz.attention_maps(model, idx)`) and their heatmap grid come
from nn/attention_maps.py.
"""
from .collapse import collapse
from .dot import draw_graph, save_svg, to_digraph
from .graph import Edge, Graph, Node, autograd_graph
from .svg import render_svg
from ..nn.attention_maps import attention_maps, capture_attention, plot_attention_maps

__all__ = ["draw_graph", "save_svg", "autograd_graph", "collapse", "to_digraph", "render_svg",
           "Graph", "Node", "Edge", "attention_maps", "capture_attention",
           "plot_attention_maps"]
