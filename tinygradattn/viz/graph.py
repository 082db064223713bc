"""The autograd graph of a tensor as plain data: nodes, edges, clusters (no graphviz needed).

Sits above tensor/ and nn/: it reads what Function.apply recorded (a non-leaf tensor's
`_ctx.fn` and `_ctx.inputs`; a leaf has `_ctx is None`) and, when given, a module's
`named_parameters()`. Only tensors that take a gradient are in the graph: Function.apply
keeps those inputs and None for the rest (an index, a mask, data), as torch's graph does.

    leaf  (a parameter: its name, shape, dtype, the norm of .grad once computed)
      |          edges point the way the forward ran: input -> the op that used it
      v
    op    (the Function's name; the shape and dtype of the tensor it made)
      v
    root  (the tensor drawn: the loss)

`draw_graph` (dot.py) turns a Graph into a graphviz.Digraph, `svg.py` draws one without
graphviz; `collapse.py` shrinks a model's repeated blocks.
"""
import math
from collections import deque
from dataclasses import dataclass, field

from ..autograd.grad_mode import no_grad


@dataclass
class Node:
    """One box of the drawing: an op (a non-leaf tensor and the Function that made it), a
    leaf tensor, or the "more" marker standing for what max_depth cut."""

    key: str                    # DOT id: "n0" is the root
    kind: str                   # "op", "leaf" or "more"
    title: str                  # op name, parameter name, or "... N more nodes"
    shape: tuple = None         # the tensor's shape (None for "more")
    dtype: str = ""             # "float32"
    device: str = "cpu"
    grad_norms: list = field(default_factory=list)   # L2 norm of .grad (several once merged)
    group: str = None           # cluster key (a repeated block's module path), None: top level
    is_root: bool = False

    def lines(self):
        """The label, line by line: title, shape and dtype, grad norm(s)."""
        out = [self.title]
        if self.shape is not None:
            where = "" if self.device == "cpu" else f" {self.device}"
            out.append(f"{tuple(self.shape)} {self.dtype}{where}")
        if len(self.grad_norms) == 1:
            out.append(f"grad norm {self.grad_norms[0]:.3g}")
        elif self.grad_norms:
            out.append(f"grad norm {min(self.grad_norms):.3g} .. {max(self.grad_norms):.3g}")
        return out

    def label(self):
        return "\n".join(self.lines())


@dataclass
class Edge:
    """src feeds dst in the forward pass. style "repeat": the loop of a block drawn once for
    its N identical copies (its output feeds the next copy's input)."""

    src: str
    dst: str
    style: str = ""
    label: str = ""


@dataclass
class Graph:
    """Nodes in discovery order (root first), edges, and cluster key -> cluster label."""

    nodes: list
    edges: list
    clusters: dict = field(default_factory=dict)

    @property
    def n_nodes(self):
        return len(self.nodes)

    @property
    def n_edges(self):
        return len(self.edges)

    def node(self, key):
        return next(n for n in self.nodes if n.key == key)

    def _repr_svg_(self):
        """Jupyter shows a Graph inline with the pure-Python renderer (no graphviz needed)."""
        from .svg import render_svg
        return render_svg(self)


def parameter_names(params):
    """{id(tensor): name} from a Module (named_parameters), a dict name -> tensor, an iterable
    of (name, tensor) pairs, or None."""
    if params is None:
        return {}
    if hasattr(params, "named_parameters"):
        pairs = params.named_parameters()
    elif isinstance(params, dict):
        pairs = params.items()
    else:
        pairs = params
    names = {}
    for pair in pairs:
        if not (isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[0], str)):
            raise TypeError(f"draw_graph: params must be a Module, a dict name -> tensor or "
                            f"(name, tensor) pairs; got an item of type {type(pair).__name__}")
        names.setdefault(id(pair[1]), pair[0])       # a tied weight keeps its first name
    return names


def _walk(root):
    """Tensors of the graph in depth-first pre-order from root (inputs in argument order),
    and the (input, user) pairs between them, each once, in the same order."""
    order, seen, pairs, seen_pairs = [], set(), [], set()
    stack = [root]
    while stack:
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        order.append(t)
        inputs = [i for i in (t._ctx.inputs or ()) if i is not None] if t._ctx else []
        for inp in inputs:
            if (id(inp), id(t)) not in seen_pairs:
                seen_pairs.add((id(inp), id(t)))
                pairs.append((inp, t))
        stack.extend(reversed(inputs))
    return order, pairs


def _grad_norm(t):
    """L2 norm of t.grad as a float, or None when no gradient was kept."""
    grad = getattr(t, "grad", None)
    if grad is None:
        return None
    with no_grad():
        g = grad.double()
        return math.sqrt(float((g * g).sum().item()))


def _dtype_name(dtype):
    return str(dtype).rpartition(".")[2]               # "tinygradattn.float32" -> "float32"


def _make_node(key, t, names, is_root):
    if t._ctx is not None:
        kind, title = "op", t._ctx.fn.__name__
    else:
        kind, title = "leaf", names.get(id(t), "leaf")
    norm = _grad_norm(t)
    return Node(key=key, kind=kind, title=title, shape=tuple(t.shape),
                dtype=_dtype_name(t.dtype), device=str(t.device),
                grad_norms=[] if norm is None else [norm], is_root=is_root)


def depths(graph):
    """{node key: fewest edges from the root}, walking edges backwards (user -> input)."""
    inputs = {}
    for e in graph.edges:
        inputs.setdefault(e.dst, []).append(e.src)
    root = graph.nodes[0].key
    depth, queue = {root: 0}, deque([root])
    while queue:
        key = queue.popleft()
        for src in inputs.get(key, ()):
            if src not in depth:
                depth[src] = depth[key] + 1
                queue.append(src)
    return depth


def limit_depth(graph, max_depth):
    """graph without the nodes farther than max_depth edges from the root; one "more" node
    ("... N more nodes") feeds every op whose inputs were cut."""
    if max_depth is None:
        return graph
    if max_depth < 0:
        raise ValueError(f"draw_graph: max_depth must be >= 0 or None, got {max_depth}")
    depth = depths(graph)
    kept = [n for n in graph.nodes if depth[n.key] <= max_depth]
    keep = {n.key for n in kept}
    edges = [e for e in graph.edges if e.src in keep and e.dst in keep]
    cut_users = []
    for e in graph.edges:
        if e.src not in keep and e.dst in keep and e.dst not in cut_users:
            cut_users.append(e.dst)
    if cut_users:
        n_cut = len(graph.nodes) - len(kept)
        kept.append(Node(key="more", kind="more", title=f"... {n_cut} more nodes"))
        edges += [Edge("more", dst, style="more") for dst in cut_users]
    return Graph(kept, edges, dict(graph.clusters))


def autograd_graph(tensor, params=None, *, max_depth=None):
    """The autograd graph that produced `tensor`, as a Graph (see the module docstring).

    Args:
        tensor: the output to draw from (a loss, usually); a leaf gives a one-node graph.
        params: a Module (its named_parameters name the leaves), a dict name -> tensor, or
            (name, tensor) pairs; leaves not named are titled "leaf".
        max_depth: keep nodes at most this many edges from the root (None: all).

    Example:
        >>> import tinygradattn as tga
        >>> w = tga.ones(3, requires_grad=True)
        >>> g = autograd_graph((w * 2).sum(), {"w": w})
        >>> [n.title for n in g.nodes], g.n_edges
        (['Sum', 'Mul', 'w'], 2)
    """
    if not hasattr(tensor, "_ctx") or not hasattr(tensor, "shape"):
        raise TypeError(f"draw_graph: expected a Tensor, got {type(tensor).__name__}")
    names = parameter_names(params)
    order, pairs = _walk(tensor)
    key_of = {id(t): f"n{i}" for i, t in enumerate(order)}
    nodes = [_make_node(key_of[id(t)], t, names, i == 0) for i, t in enumerate(order)]
    edges = [Edge(key_of[id(inp)], key_of[id(user)]) for inp, user in pairs]
    return limit_depth(Graph(nodes, edges), max_depth)
