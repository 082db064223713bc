"""draw_graph: the autograd graph as a graphviz.Digraph, renderable even without `dot`.

The `graphviz` Python package (`pip install graphviz`, or tinygradattn[viz]) writes DOT
source; it is imported here, when a graph is drawn, never at `import tinygradattn`.
Rendering (`.render`, `.pipe`, Jupyter's inline display) runs Graphviz's `dot` program when
it is installed. Without it the Digraph we return falls back, in this order, on
- pygraphviz (`pip install pygraphviz`, tinygradattn[viz-render]): its manylinux wheel
  bundles Graphviz's libraries and the dot layout plugin: any format, the same drawing;
- for SVG only, the small pure-Python renderer of svg.py (a layered layout).
A PNG or PDF asked for with neither raises graphviz.ExecutableNotFound (a RuntimeError)
naming what to install.
"""
import functools
import os

from .collapse import collapse as collapse_graph
from .graph import autograd_graph

INSTALL_GRAPHVIZ = ("draw_graph needs the Python package graphviz: pip install graphviz "
                    "(or pip install 'tinygradattn[viz]')")
INSTALL_RENDERER = ("Graphviz's `dot` program is not installed, nor pygraphviz: install one "
                    "(apt-get install graphviz, brew install graphviz, conda install graphviz; "
                    "or pip install pygraphviz, which bundles the layout engine: "
                    "pip install 'tinygradattn[viz-render]'). Without them only SVG renders "
                    "(a simpler pure-Python layout)")

STYLE = {
    "op": {"shape": "box", "style": "rounded,filled", "fillcolor": "lightgrey"},
    "leaf": {"shape": "box", "style": "filled", "fillcolor": "lightblue"},
    "more": {"shape": "plaintext"},
    "root": {"shape": "box", "style": "rounded,filled", "fillcolor": "darkolivegreen1"},
}
EDGE_STYLE = {
    "": {},
    "more": {"style": "dotted"},
    "repeat": {"style": "dashed", "color": "firebrick", "fontcolor": "firebrick",
               "constraint": "false"},
}


def import_graphviz():
    """The graphviz module, or ImportError saying how to install it."""
    try:
        import graphviz
    except ImportError as err:
        raise ImportError(INSTALL_GRAPHVIZ) from err
    return graphviz


def draw_graph(tensor, params=None, *, max_depth=None, collapse=False, graph_attr=None):
    """The autograd graph that produced `tensor` as a graphviz.Digraph (torchviz's make_dot).

    Ops are grey boxes titled with the Function's name and the shape and dtype of the tensor
    they made; leaves are blue, named after the parameter when `params` names them, with the
    norm of their gradient once backward has run; the root is green. Edges follow the
    forward pass. The result displays inline in Jupyter and renders with `.render()` /
    `.pipe()`; `save_svg(graph, path)` writes an SVG anywhere (see the module docstring).

    Args:
        tensor: the output to draw from (a loss, usually).
        params: a Module (its named_parameters name the leaves), a dict name -> tensor or
            (name, tensor) pairs.
        max_depth: draw nodes at most this many edges from the root; one "... N more nodes"
            node stands for the rest (None: draw all).
        collapse: cluster the nodes of each repeated block (`transformer.h.0`, ...) and draw
            blocks of identical structure once, labelled "x N" (needs named parameters).
        graph_attr: extra graphviz graph attributes (e.g. {"rankdir": "LR"}).

    Raises:
        ImportError: the graphviz package is not installed (the message says how).

    Example:
        >>> import tinygradattn as tga
        >>> w = tga.ones(2, 3, requires_grad=True)
        >>> dot = tga.viz.draw_graph(w.sum(), {"w": w})
        >>> print(dot.tga_graph.node("n1").label())
        w
        (2, 3) float32
    """
    graph = autograd_graph(tensor, params, max_depth=max_depth)
    if collapse:
        graph = collapse_graph(graph)
    return to_digraph(graph, graph_attr)


def to_digraph(graph, graph_attr=None):
    """A Graph as an AutogradDigraph (a graphviz.Digraph); the Graph is kept as .tga_graph."""
    graphviz = import_graphviz()
    attrs = {"rankdir": "TB", "fontsize": "11", "nodesep": "0.25", "ranksep": "0.35"}
    attrs.update(graph_attr or {})
    dot = _digraph_class(graphviz)(name="autograd", graph_attr=attrs,
                                   node_attr={"fontsize": "10", "fontname": "Helvetica"},
                                   edge_attr={"fontsize": "9", "arrowsize": "0.6"})
    dot.tga_graph = graph
    for key, label in graph.clusters.items():
        with dot.subgraph(name=f"cluster_{key}") as sub:
            sub.attr(label=label, style="rounded,dashed", color="steelblue",
                     fontcolor="steelblue")
            for n in graph.nodes:
                if n.group == key:
                    _add_node(sub, n)
    for n in graph.nodes:
        if n.group not in graph.clusters:
            _add_node(dot, n)
    for e in graph.edges:
        dot.edge(e.src, e.dst, label=e.label or None, **EDGE_STYLE.get(e.style, {}))
    return dot


def _add_node(dot, node):
    style = STYLE["root" if node.is_root else node.kind]
    dot.node(node.key, node.label(), **style)


@functools.cache
def _digraph_class(graphviz):
    """graphviz.Digraph whose pipe/render fall back on pygraphviz, then (SVG) on svg.py."""

    class AutogradDigraph(graphviz.Digraph):
        """A graphviz.Digraph of an autograd graph; `.tga_graph` is the Graph it draws."""

        tga_graph = None

        def pipe(self, format=None, *args, encoding=None, **kwargs):
            try:
                return super().pipe(format, *args, encoding=encoding, **kwargs)
            except graphviz.ExecutableNotFound as err:
                data = fallback_render(self, format or self.format, err)
            return data.decode(encoding) if encoding else data

        def render(self, filename=None, *args, **kwargs):
            try:
                return super().render(filename, *args, **kwargs)
            except graphviz.ExecutableNotFound as err:
                return _render_without_dot(self, filename, err, *args, **kwargs)

    return AutogradDigraph


def fallback_render(dot, fmt, err=None):
    """Bytes of `dot` drawn as fmt by pygraphviz, else (SVG only) by svg.py."""
    try:
        import pygraphviz
    except ImportError:
        pygraphviz = None
    if pygraphviz is not None:
        return pygraphviz.AGraph(string=dot.source).draw(format=fmt, prog=dot.engine)
    if fmt == "svg" and dot.tga_graph is not None:
        from .svg import render_svg
        return render_svg(dot.tga_graph).encode("utf-8")
    not_found = _not_found_class(import_graphviz())
    raise not_found(f"cannot render the graph as {fmt}: {INSTALL_RENDERER}") from err


@functools.cache
def _not_found_class(graphviz):
    """graphviz.ExecutableNotFound (a RuntimeError) with our message: code that catches
    graphviz's error still catches it."""

    class RendererNotFound(graphviz.ExecutableNotFound):
        def __init__(self, message):
            RuntimeError.__init__(self, message)

    return RendererNotFound


def _render_without_dot(dot, filename, err, directory=None, view=False, cleanup=False,
                        format=None, *_, outfile=None, **__):
    """What graphviz's render does (save the source, write filename.format or outfile), with
    fallback_render in place of the `dot` program; `view` is not supported there."""
    if view:
        raise _not_found_class(import_graphviz())(f"render(view=True): {INSTALL_RENDERER}") \
            from err
    fmt = format
    if outfile is not None:
        outfile = os.fspath(outfile)
        fmt = fmt or os.path.splitext(outfile)[1].lstrip(".")
        if directory is None:
            outfile = os.path.join(dot.directory, outfile)
    fmt = fmt or dot.format
    data = fallback_render(dot, fmt, err)
    if filename is None and outfile is not None:       # graphviz: the source beside outfile
        filename, directory = os.path.splitext(outfile)[0] + ".gv", ""
    source = dot.save(filename, directory=directory)
    target = outfile or f"{source}.{fmt}"
    with open(target, "wb") as f:
        f.write(data)
    if cleanup:
        os.remove(source)
    return target


def save_svg(graph, path):
    """Write an SVG drawing of `graph` to path and return path.

    graph: what draw_graph returns (drawn by `dot`, else pygraphviz, else svg.py), or a
    Graph from autograd_graph (drawn by svg.py: graphviz not needed).
    """
    if hasattr(graph, "pipe"):
        data = graph.pipe(format="svg")
    else:
        from .svg import render_svg
        data = render_svg(graph).encode("utf-8")
    with open(path, "wb") as f:
        f.write(data)
    return path
