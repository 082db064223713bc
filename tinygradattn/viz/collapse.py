"""Collapse a model's repeated blocks (transformer.h.0, h.1, ...) so a GPT's loss stays readable.

1. Each node is placed in a block: a leaf by its parameter name (the module path up to its
   first integer part: "transformer.h.2.attn.c_attn.weight" -> "transformer.h.2"); an op by
   the parameter nearest to it (fewest edges, walking to its inputs). A tie goes to a block
   over a non-block parameter, then to the later block: in a residual stream an op sees the
   previous block's parameters as near as its own. An op whose nearest parameter is in no
   block (the embeddings, ln_f, lm_head, the loss) stays at the top level.
2. Nodes of a block form a cluster (a box labelled with the module path).
3. When every block of a family ("transformer.h") has the same structure (same ops and
   parameter names, same shapes, same edges inside), only the first is drawn, labelled
   "x N"; the edges that ran from one copy into the next become its "repeat" loop.
"""
import re
from dataclasses import replace

from .graph import Edge, Graph

_INDEX = re.compile(r"^\d+$")


def split_block(name):
    """("transformer.h", 2, "attn.c_attn.weight") for "transformer.h.2.attn.c_attn.weight";
    None when no part of the path is an integer (not inside a ModuleList/Sequential)."""
    parts = name.split(".")
    for i, part in enumerate(parts):
        if _INDEX.match(part) and i > 0:
            return ".".join(parts[:i]), int(part), ".".join(parts[i + 1:])
    return None


def _rank(block):
    """Sort key of a candidate block, smaller wins on a tie of distance: a block before
    a top-level parameter, a later block before an earlier one."""
    return (1, 0) if block is None else (0, -block[1])


def assign_blocks(graph):
    """{node key: (family, index)} for the nodes inside a repeated block (see step 1)."""
    inputs = _inputs(graph)
    best = {}                               # key -> (distance, rank, block) of nearest param
    for n in graph.nodes:
        if n.kind == "leaf" and n.title != "leaf":
            parts = split_block(n.title)
            block = None if parts is None else parts[:2]
            best[n.key] = (0, _rank(block), block)
    for n in reversed(graph.nodes):
        _settle(n.key, inputs, best)
    return {key: b[2] for key, b in best.items() if b[2] is not None}


def _settle(key, inputs, best):
    """best[key] from its inputs' best, settling the inputs first (no recursion)."""
    stack = [(key, False)]
    while stack:
        key, ready = stack.pop()
        if key in best:
            continue
        pending = [k for k in inputs.get(key, ()) if k not in best]
        if pending and not ready:
            stack.append((key, True))
            stack.extend((k, False) for k in pending)
            continue
        best[key] = _nearest(key, inputs, best)


def _nearest(key, inputs, best):
    """One edge farther than the nearest parameter among the inputs (ties: see _rank)."""
    found = [(d + 1, r, b) for d, r, b in (best[k] for k in inputs.get(key, ()))
             if d is not None]
    return min(found, key=lambda c: (c[0], c[1])) if found else (None, None, None)


def collapse(graph):
    """A copy of graph with its repeated blocks clustered, and identical ones drawn once."""
    nodes = [replace(n, grad_norms=list(n.grad_norms)) for n in graph.nodes]
    graph = Graph(nodes, list(graph.edges), dict(graph.clusters))
    block_of = assign_blocks(graph)
    for n in nodes:
        if n.key in block_of:
            family, index = block_of[n.key]
            n.group = f"{family}.{index}"
    graph.clusters.update((g, g) for g in _ordered_groups(graph))
    families = {}
    for family, index in sorted(set(block_of.values())):
        families.setdefault(family, []).append(f"{family}.{index}")
    for family, groups in families.items():
        if len(groups) > 1:
            graph = _merge_identical(graph, family, groups)
    return graph


def _inputs(graph):
    inputs = {}
    for e in graph.edges:
        inputs.setdefault(e.dst, []).append(e.src)
    return inputs


def _ordered_groups(graph):
    out = []
    for n in graph.nodes:
        if n.group is not None and n.group not in out:
            out.append(n.group)
    return out


def _signature(graph, group):
    """(members in discovery order, a structure key equal for identical blocks)."""
    members = [n for n in graph.nodes if n.group == group]
    position = {n.key: i for i, n in enumerate(members)}
    prefix = group + "."
    shapes = tuple((n.kind, n.title[len(prefix):] if n.title.startswith(prefix) else n.title,
                    n.shape, n.dtype) for n in members)
    inner = tuple(sorted((position[e.src], position[e.dst]) for e in graph.edges
                         if e.src in position and e.dst in position))
    return members, (shapes, inner)


def _merge_identical(graph, family, groups):
    """Draw the blocks of one family once when they all share one structure."""
    signed = [_signature(graph, g) for g in groups]
    if len({key for _, key in signed}) != 1:
        return graph                                  # blocks differ: keep every cluster
    first = signed[0][0]
    rename = {}
    for members, _ in signed:
        for rep, n in zip(first, members):
            rename[n.key] = rep.key
            if n is not rep:
                rep.grad_norms = rep.grad_norms + n.grad_norms
    prefix = groups[0] + "."
    for rep in first:
        if rep.title.startswith(prefix):
            rep.title = rep.title[len(prefix):]       # the cluster label names the block
    n_copies = len(groups)
    nodes = [n for n in graph.nodes if rename.get(n.key, n.key) == n.key]
    edges = _merge_edges(graph.edges, rename, {n.key: n.group for n in graph.nodes}, n_copies)
    clusters = {g: label for g, label in graph.clusters.items() if g not in groups[1:]}
    last = groups[-1].rpartition(".")[2]
    clusters[groups[0]] = f"{groups[0]} .. {family}.{last}  (x {n_copies}, identical: drawn once)"
    return Graph(nodes, edges, clusters)


def _merge_edges(edges, rename, group_of, n_copies):
    """Edges between the kept nodes, once each; an edge from one copy into another becomes
    a "repeat" edge of the kept block."""
    out, seen = [], set()
    for e in edges:
        src, dst = rename.get(e.src, e.src), rename.get(e.dst, e.dst)
        crosses = (e.src in rename and e.dst in rename and group_of[e.src] != group_of[e.dst])
        style = "repeat" if crosses else e.style
        if (src, dst, style) in seen:
            continue
        seen.add((src, dst, style))
        label = f"next copy (x {n_copies - 1})" if crosses else e.label
        out.append(Edge(src, dst, style=style, label=label))
    return out
