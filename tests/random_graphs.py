"""Random expression graphs: a small interpreter run once on tinygradattn and once on torch.

A graph is a list of `Node`s drawn by hypothesis (`graphs()`): leaves (float tensors, maybe
seen through a non-contiguous view from strategies.views), then 3-15 ops, each naming the
earlier values it takes (by index) and its parameters. `run(lib, graph, dtype)` runs it with
lib = tinygradattn or torch (the same API names serve both), weights some values with fixed
random arrays, calls backward, and returns a `Result`: the values, every leaf's grad, or the
op (or backward) that raised. `compare()` decides match / known difference / failure.

Shapes are drawn constructively: each op draws parameters that fit the shapes of its inputs
(and a partner it needs, such as matmul's right side, is an earlier value of a fitting shape or
a fresh leaf). The shape of every new value comes from running the op on torch with plain
random data while drawing (`_Drawing.shape_run`); an op torch refuses there ends the graph
(both libraries must then raise).
"""
import math
from dataclasses import dataclass, field

import numpy as np
from hypothesis import strategies as st

from strategies import SIZES, View, views

# ---- the graph ---------------------------------------------------------------------------------


@dataclass
class Node:
    kind: str                 # "leaf" or an op family key of OPS
    op: str                   # the op's name inside its family (for leaves: "leaf")
    ins: tuple = ()           # indices of earlier values
    params: dict = field(default_factory=dict)

    def describe(self, i, nout, shapes):
        args = ", ".join(f"v{j}" for j in self.ins)
        ps = ", ".join(f"{k}={_short(v)}" for k, v in self.params.items())
        outs = ", ".join(f"v{i + k}{tuple(shapes[i + k])}" for k in range(nout))
        return f"{outs} = {self.kind}.{self.op}({args}{'; ' if args and ps else ''}{ps})"


def _short(v):
    if isinstance(v, View):
        extra = {"permute": f" perm={v.perm}", "expand": f" dims={v.expand_dims}",
                 "slice": f" starts={v.starts} steps={v.steps}"}.get(v.kind, "")
        return f"<{v.kind}{extra}>"
    if isinstance(v, np.ndarray):
        return f"array({v.tolist()!r}, dtype={v.dtype})" if v.size <= 24 else \
            f"array(shape={v.shape}, dtype={v.dtype})"
    return repr(v)


@dataclass
class Graph:
    nodes: list               # Node
    nouts: list               # values each node appends (split / chunk append several)
    shapes: list              # shape of each value (as torch gave it while drawing)
    outputs: list             # value indices weighted into the loss
    seed: int

    def __str__(self):
        lines, i = [], 0
        for node, n in zip(self.nodes, self.nouts):
            lines.append("  " + node.describe(i, n, self.shapes))
            i += n
        lines.append(f"  loss = sum over {['v%d' % j for j in self.outputs]} of "
                     f"(value * fixed random weights).sum()   seed={self.seed}")
        return "\n".join(lines)


# ---- op families: name -> fn(lib, *tensors, **params) -----------------------------------------
def _F(lib):
    return lib.nn.functional


UNARY = {
    "neg": lambda L, x: -x,
    "exp": lambda L, x: x.exp(),
    "log": lambda L, x: (x * x + 0.5).log(),
    "sqrt": lambda L, x: (x * x + 0.1).sqrt(),
    "rsqrt": lambda L, x: (x * x + 0.5).rsqrt(),
    "tanh": lambda L, x: x.tanh(),
    "sigmoid": lambda L, x: x.sigmoid(),
    "relu": lambda L, x: x.relu(),
    "abs": lambda L, x: x.abs(),
    "erf": lambda L, x: x.erf(),
    "sin": lambda L, x: x.sin(),
    "cos": lambda L, x: L.cos(x),
    "gelu": lambda L, x: _F(L).gelu(x),
    "gelu_tanh": lambda L, x: _F(L).gelu(x, approximate="tanh"),
    "pow2": lambda L, x: x ** 2,
    "pow3": lambda L, x: x ** 3,
    "clamp": lambda L, x: x.clamp(-0.7, 0.4),
    "clamp_min": lambda L, x: x.clamp(min=-0.2),
    "mul_scalar": lambda L, x: 2.5 * x,
    "rsub_scalar": lambda L, x: 1.5 - x,
    "rdiv_scalar": lambda L, x: 1.0 / (x * x + 1.0),
}

BINARY = {
    "add": lambda L, a, b: a + b,
    "sub": lambda L, a, b: a - b,
    "mul": lambda L, a, b: a * b,
    "div": lambda L, a, b: a / (b * b + 0.5),
    "maximum": lambda L, a, b: L.maximum(a, b),
    "minimum": lambda L, a, b: L.minimum(a, b),
    "pow": lambda L, a, b: (a * a + 0.5) ** b.tanh(),
    "where": lambda L, a, b: L.where(a > b, a * 2.0, b),
}


def _reduce(L, x, op, dim=None, keepdim=False, correction=1):
    kw = {} if dim is None else {"dim": dim, "keepdim": keepdim}
    if op in ("max", "min"):
        r = getattr(x, op)(**kw)
        return r if dim is None else r[0]
    if op in ("var", "std"):
        return getattr(x, op)(**kw, correction=correction)
    if op == "logsumexp":
        return x.logsumexp(dim, keepdim)
    if op == "cumsum":
        return x.cumsum(dim)
    if op == "prod":
        return x.prod(**kw)
    return getattr(x, op)(**kw)


def _getitem(L, x, index):
    """index: a tuple of ("int", i) / ("slice", a, b, s) / ("none",) / ("ellipsis",) /
    ("long", array) / ("bool", array) items."""
    return x[tuple(_index_item(L, it) for it in index)]


def _index_item(L, it):
    if it[0] == "int":
        return it[1]
    if it[0] == "slice":
        return slice(*it[1:])
    if it[0] == "none":
        return None
    if it[0] == "ellipsis":
        return Ellipsis
    return L.tensor(it[1])


SHAPE = {
    "reshape": lambda L, x, shape: x.reshape(*shape) if shape else x.reshape(shape),
    "view": lambda L, x, shape: x.view(*shape) if shape else x.view(shape),
    "permute": lambda L, x, perm: x.permute(*perm),
    "transpose": lambda L, x, d0, d1: x.transpose(d0, d1),
    "mT": lambda L, x: x.mT,
    "expand": lambda L, x, sizes: x.expand(*sizes) if sizes else x.expand(sizes),
    "squeeze": lambda L, x, dim: x.squeeze() if dim is None else x.squeeze(dim),
    "unsqueeze": lambda L, x, dim: x.unsqueeze(dim),
    "flatten": lambda L, x, start, end: x.flatten(start, end),
    "contiguous": lambda L, x: x.contiguous(),
    "clone": lambda L, x: x.clone(),
    "split": lambda L, x, size, dim: x.split(size, dim),
    "chunk": lambda L, x, n, dim: x.chunk(n, dim),
}

JOIN = {
    "cat": lambda L, *xs, dim: L.cat(list(xs), dim),
    "stack": lambda L, *xs, dim: L.stack(list(xs), dim),
}

INDEX = {
    "getitem": lambda L, x, index: _getitem(L, x, index),
    "gather": lambda L, x, dim, index: x.gather(dim, L.tensor(index)),
    "index_select": lambda L, x, dim, index: x.index_select(dim, L.tensor(index)),
}

FUSED = {
    "softmax": lambda L, x, dim: x.softmax(dim),
    "log_softmax": lambda L, x, dim: _F(L).log_softmax(x, dim),
    "layer_norm": lambda L, x, *wb, n: _F(L).layer_norm(x, x.shape[-n:], *wb),
    "cross_entropy": lambda L, x, target, reduction, smoothing: _F(L).cross_entropy(
        x, L.tensor(target), reduction=reduction, label_smoothing=smoothing),
    "sdpa": lambda L, q, k, v, causal, mask, scale: _F(L).scaled_dot_product_attention(
        q, k, v, attn_mask=None if mask is None else L.tensor(mask), is_causal=causal,
        scale=scale),
    "matmul": lambda L, a, b: a @ b,
}


def _inplace(L, x, *operands, op, view, no_grad, **p):
    """An in-place op on x (or on a view of x: view is a getitem index or "T"), maybe under
    no_grad; returns the written tensor (x's view or x itself)."""
    t = _view_of(L, x, view)
    if no_grad:
        with L.no_grad():
            return _inplace_op(L, t, operands, op, p)
    return _inplace_op(L, t, operands, op, p)


def _view_of(L, x, view):
    return x if view is None else (x.mT if view == "T" else _getitem(L, x, view))


def _inplace_op(L, t, operands, op, p):
    o = operands[0] if operands else p.get("scalar")
    if op == "setitem":
        t[_getitem_key(L, p["index"])] = o
        return t
    if op in ("add_", "sub_", "mul_", "copy_"):
        return getattr(t, op)(o)
    if op == "clamp_":
        return t.clamp_(p["lo"], p["hi"])
    if op == "fill_":
        return t.fill_(p["scalar"])
    if op == "masked_fill_":
        return t.masked_fill_(L.tensor(p["mask"]), p["scalar"])
    return getattr(t, op)()            # zero_, relu_, tanh_, exp_, neg_


def _getitem_key(L, index):
    return tuple(_index_item(L, it) for it in index)


FAMILIES = {"unary": UNARY, "binary": BINARY, "shape": SHAPE, "join": JOIN, "index": INDEX,
            "fused": FUSED}


def apply(L, node, args):
    """Run one non-leaf node on tensors `args`; a tensor or a tuple of tensors."""
    if node.kind == "reduce":
        return _reduce(L, args[0], node.op, **node.params)
    if node.kind == "inplace":
        return _inplace(L, *args, op=node.op, **node.params)
    return FAMILIES[node.kind][node.op](L, *args, **node.params)


# ---- drawing -----------------------------------------------------------------------------------
def _broadcast(s1, s2):
    """The broadcast shape of s1 and s2, or None."""
    out = []
    for a, b in zip(reversed((1,) * (len(s2) - len(s1)) + tuple(s1)),
                    reversed((1,) * (len(s1) - len(s2)) + tuple(s2))):
        if a != b and 1 not in (a, b):
            return None
        out.append(max(a, b) if 1 not in (a, b) else a * b)
    return tuple(reversed(out))


def _broadcasts_to(src, dst):
    return _broadcast(src, dst) == tuple(dst) and len(src) <= len(dst)


def _dim(draw, ndim, extra=0):
    """A dim of a tensor with ndim dims (+extra for unsqueeze / stack), maybe negative."""
    n = max(ndim + extra, 1)
    d = draw(st.integers(0, n - 1))
    return d - n if draw(st.booleans()) else d


def _factor(n):
    out, p = [], 2
    while n > 1:
        while n % p == 0:
            out.append(p)
            n //= p
        p += 1
    return out


class _Drawing:
    """The graph being drawn: nodes, and a torch value per graph value (plain random data, no
    grad) that gives each new value's shape."""

    def __init__(self, draw, torch, seed):
        self.draw, self.torch = draw, torch
        self.nodes, self.nouts, self.shapes, self.vals = [], [], [], []
        self.rng = np.random.default_rng(seed)
        self.raised = False

    # -- adding nodes --
    def add(self, node):
        """Append node; its outputs' shapes come from running it on torch. Returns the index
        of its first output (None when torch refused it: the graph ends there)."""
        T = self.torch
        try:
            with T.no_grad():
                if node.kind == "leaf":
                    base = T.tensor(self.rng.standard_normal(node.params["base"]))
                    out = node.params["view"].apply(base)
                else:
                    out = apply(T, node, [self.vals[i] for i in node.ins])
        except Exception:        # noqa: BLE001 - torch refuses: both libraries must raise
            self.raised = True
            out = ()
        outs = list(out) if isinstance(out, (tuple, list)) else [out]
        first = len(self.vals)
        self.nodes.append(node)
        self.nouts.append(len(outs))
        self.vals.extend(outs)
        self.shapes.extend(tuple(o.shape) for o in outs)
        return None if self.raised else first

    def leaf(self, shape, requires_grad=True, view=None):
        view = view or View("plain", tuple(shape), tuple(shape))
        return self.add(Node("leaf", "leaf", (), {"base": view.base_shape, "view": view,
                                                  "requires_grad": requires_grad}))

    # -- picking inputs --
    def any_value(self, pred=lambda s: True):
        ids = [i for i, s in enumerate(self.shapes) if pred(s)]
        return self.draw(st.sampled_from(ids)) if ids else None

    def partner(self, fits, make_shape, p_existing=0.5):
        """An earlier value whose shape fits, or a fresh leaf of make_shape()."""
        if self.draw(st.floats(0, 1)) < p_existing:
            i = self.any_value(fits)
            if i is not None:
                return i
        return self.leaf(make_shape(), requires_grad=self.draw(st.integers(0, 3)) < 3)

    def variant(self, shape, grow=True):
        """A shape that broadcasts with shape: leading dims dropped, some dims set to 1 (and,
        with grow, maybe a new leading dim)."""
        d = self.draw
        s = list(shape[d(st.integers(0, len(shape))):] if d(st.booleans()) else shape)
        s = [1 if d(st.integers(0, 3)) == 0 else n for n in s]
        if grow and d(st.integers(0, 4)) == 0:
            s = [d(st.sampled_from(SIZES))] + s
        return tuple(s)


# ---- one drawer per op family: D is the _Drawing; each adds one node (and fresh leaves) ----
def draw_unary(D, op=None):
    x = D.any_value()
    return D.add(Node("unary", op or D.draw(st.sampled_from(sorted(UNARY))), (x,)))


def draw_binary(D, op=None):
    a = D.any_value()
    sa = D.shapes[a]
    b = D.partner(lambda s: _broadcast(s, sa) is not None, lambda: D.variant(sa))
    ins = (a, b) if D.draw(st.booleans()) else (b, a)
    return D.add(Node("binary", op or D.draw(st.sampled_from(sorted(BINARY))), ins))


def _reduced_count(shape, dim):
    dims = range(len(shape)) if dim is None else (dim if isinstance(dim, tuple) else (dim,))
    return math.prod(shape[d] for d in dims) if shape else 1


REDUCE_OPS = ["sum", "mean", "max", "min", "logsumexp", "var", "std", "prod", "cumsum"]


def draw_reduce(D, op=None):
    from strategies import reduction_dims
    d = D.draw
    op = op or d(st.sampled_from(REDUCE_OPS))
    x = D.any_value((lambda s: len(s) >= 1) if op in ("logsumexp", "cumsum") else
                    (lambda s: True))
    if x is None:
        return None
    shape = D.shapes[x]
    p = {}
    if op in ("sum", "mean", "var", "std", "logsumexp"):
        dim = d(reduction_dims(len(shape)))
        if op == "logsumexp" and dim is None:
            dim = _dim(d, len(shape))
    elif op == "cumsum":
        dim = _dim(d, len(shape))
    else:
        dim = None if not shape or d(st.booleans()) else _dim(d, len(shape))
    if dim is not None:
        p["dim"] = dim
        if op != "cumsum":
            p["keepdim"] = d(st.booleans())
    if op in ("var", "std"):       # one element: correction 1 divides by 0 (torch: nan)
        p["correction"] = d(st.integers(0, 1)) if _reduced_count(shape, dim) > 1 else 0
    return D.add(Node("reduce", op, (x,), p))


def _new_shape(D, shape):
    """A shape with the same number of elements: the prime factors regrouped, 1s inserted,
    maybe one -1."""
    d = D.draw
    primes = d(st.permutations(_factor(math.prod(shape))))
    cuts = sorted(d(st.lists(st.integers(0, len(primes)), max_size=3)))
    out, prev = [], 0
    for c in cuts + [len(primes)]:
        out.append(math.prod(primes[prev:c]))
        prev = c
    out = [n for n in out if n != 1 or d(st.integers(0, 3)) == 0]
    if out and d(st.integers(0, 3)) == 0:
        out[d(st.integers(0, len(out) - 1))] = -1
    return tuple(out)


def draw_shape(D, op=None):
    d = D.draw
    op = op or d(st.sampled_from(sorted(SHAPE)))
    need = {"permute": 2, "mT": 2, "transpose": 1, "split": 1, "chunk": 1}.get(op, 0)
    x = D.any_value(lambda s: len(s) >= need)
    if x is None:
        return None
    s = D.shapes[x]
    n = len(s)
    if op in ("reshape", "view"):
        p = {"shape": _new_shape(D, s) if math.prod(s) else s[::-1]}
    elif op == "permute":
        p = {"perm": tuple(d(st.permutations(range(n))))}
    elif op == "transpose":
        p = {"d0": _dim(d, n), "d1": _dim(d, n)}
    elif op == "expand":
        sizes = [d(st.sampled_from(SIZES)) if k == 1 else (k if d(st.booleans()) else -1)
                 for k in s]
        p = {"sizes": tuple([d(st.sampled_from(SIZES))] * d(st.integers(0, 1)) + sizes)}
    elif op == "squeeze":
        p = {"dim": None if n == 0 or d(st.booleans()) else _dim(d, n)}
    elif op == "unsqueeze":
        p = {"dim": _dim(d, n, extra=1)}
    elif op == "flatten":
        a, b = sorted((d(st.integers(0, max(n - 1, 0))), d(st.integers(0, max(n - 1, 0)))))
        p = {"start": a, "end": b - n if n and d(st.booleans()) else b}
    elif op in ("split", "chunk"):
        dim = _dim(d, n)
        size = s[dim]
        if op == "chunk":
            p = {"n": d(st.integers(1, size + 1)), "dim": dim}
        elif d(st.booleans()):
            p = {"size": d(st.integers(1, size + 1)), "dim": dim}
        else:
            cuts = sorted(d(st.lists(st.integers(0, size), max_size=3)))
            p = {"size": [b - a for a, b in zip([0] + cuts, cuts + [size])], "dim": dim}
    else:
        p = {}
    return D.add(Node("shape", op, (x,), p))


def draw_join(D, op=None):
    d = D.draw
    op = op or d(st.sampled_from(["cat", "stack"]))
    x = D.any_value(lambda s: len(s) >= 1) if op == "cat" else D.any_value()
    if x is None:
        return None
    s = D.shapes[x]
    dim = _dim(d, len(s), extra=int(op == "stack"))
    ins = [x]
    for _ in range(d(st.integers(1, 2))):
        if op == "stack":
            ins.append(D.partner(lambda t: t == s, lambda: s))
        else:
            k = dim % len(s)
            ins.append(D.partner(lambda t: len(t) == len(s) and all(
                a == b for i, (a, b) in enumerate(zip(t, s)) if i != k),
                lambda: s[:k] + (d(st.sampled_from(SIZES)),) + s[k + 1:]))
    ins = d(st.permutations(ins))
    return D.add(Node("join", op, tuple(ins), {"dim": dim}))


def _basic_index(D, shape, allow_none=True):
    """A tuple of int / slice (with steps, negative bounds) / None / Ellipsis items."""
    d = D.draw
    items, k = [], d(st.integers(0, len(shape)))
    ellipsis = d(st.sampled_from(["no", "no", "first", "last"]))
    for n in (shape[len(shape) - k:] if ellipsis == "first" else shape[:k]):
        kind = d(st.sampled_from(["int", "slice", "slice", "full"] if n else ["slice"]))
        if kind == "int":
            items.append(("int", d(st.integers(-n, n - 1))))
        elif kind == "slice":
            bound = st.one_of(st.none(), st.integers(-n - 1, n + 1))
            items.append(("slice", d(bound), d(bound), d(st.sampled_from([None, 1, 2, 3]))))
        else:
            items.append(("slice", None, None, None))
    if allow_none and d(st.integers(0, 3)) == 0:
        items.insert(d(st.integers(0, len(items))), ("none",))
    if ellipsis != "no":
        items.insert(0 if ellipsis == "first" else len(items), ("ellipsis",))
    return tuple(items)


INDEX_OPS = ["getitem", "getitem_long", "getitem_bool", "gather", "index_select"]


def draw_index(D, op=None):
    d = D.draw
    op = op or d(st.sampled_from(["getitem", "getitem", "getitem_long", "getitem_bool", "gather",
                            "index_select"]))
    x = D.any_value(lambda s: len(s) >= 1 and (op == "getitem" or 0 not in s))
    if x is None:
        return None
    s = D.shapes[x]
    n = len(s)
    if op == "getitem":
        return D.add(Node("index", "getitem", (x,), {"index": _basic_index(D, s)}))
    if op == "getitem_long":
        k = d(st.integers(0, n - 1))
        shape = d(st.sampled_from([(), (3,), (1,), (2, 2), (5,)]))
        arr = np.asarray(D.rng.integers(-s[k], s[k], shape), dtype=np.int64)
        index = (("slice", None, None, None),) * k + (("long", arr),)
        if d(st.booleans()) and k + 1 < n:
            index += (("slice", None, None, 2),)
        return D.add(Node("index", "getitem", (x,), {"index": index}))
    if op == "getitem_bool":
        k = d(st.integers(1, n))
        mask = np.asarray(D.rng.random(s[:k]) > 0.4)
        return D.add(Node("index", "getitem", (x,), {"index": (("bool", mask),)}))
    dim = _dim(d, n)
    if op == "gather":
        ishape = tuple(d(st.integers(1, 4)) if i == dim % n else d(st.integers(1, m))
                       for i, m in enumerate(s))
        arr = D.rng.integers(0, s[dim], ishape).astype(np.int64)
    else:
        arr = D.rng.integers(0, s[dim], d(st.integers(1, 5))).astype(np.int64)
    return D.add(Node("index", op, (x,), {"dim": dim, "index": arr}))


def draw_matmul(D, op=None):
    d = D.draw
    a = D.any_value(lambda s: len(s) >= 1)
    if a is None:
        return None
    sa = D.shapes[a]
    k = sa[-1]
    batch = D.variant(sa[:-2]) if len(sa) > 2 and d(st.booleans()) else ()
    m = d(st.sampled_from(SIZES))
    rhs = d(st.sampled_from([(k,), (k, m), batch + (k, m)]))

    def fits(s):
        return (s == (k,)) or (len(s) >= 2 and s[-2] == k and
                               _broadcast(s[:-2], sa[:-2]) is not None)
    b = D.partner(fits, lambda: rhs)
    return D.add(Node("fused", "matmul", (a, b)))


FUSED_OPS = ["softmax", "log_softmax", "layer_norm", "cross_entropy", "sdpa", "matmul"]


def draw_fused(D, op=None):
    d = D.draw
    op = op or d(st.sampled_from(["softmax", "log_softmax", "layer_norm", "cross_entropy", "sdpa",
                            "matmul", "matmul"]))
    if op == "matmul":
        return draw_matmul(D)
    need = 2 if op == "sdpa" else 1
    x = D.any_value(lambda s: need <= len(s) <= (3 if op == "cross_entropy" else 9) and (
        op != "cross_entropy" or 0 not in s))
    if x is None:
        return None
    s = D.shapes[x]
    if op in ("softmax", "log_softmax"):
        return D.add(Node("fused", op, (x,), {"dim": _dim(d, len(s))}))
    if op == "layer_norm":
        nn = d(st.integers(1, min(2, len(s))))
        wb = [D.leaf(s[-nn:]) for _ in range(d(st.integers(0, 2)))]
        return D.add(Node("fused", op, (x, *wb), {"n": nn}))
    if op == "cross_entropy":
        c = s[1] if len(s) >= 2 else s[0]
        tshape = () if len(s) == 1 else (s[0],) + s[2:]
        target = np.asarray(D.rng.integers(0, c, tshape), dtype=np.int64)
        return D.add(Node("fused", op, (x,), {
            "target": target, "reduction": d(st.sampled_from(["mean", "sum", "none"])),
            "smoothing": d(st.sampled_from([0.0, 0.0, 0.1]))}))
    return _draw_sdpa(D, x, s)


def _draw_sdpa(D, q, s):
    d = D.draw
    L, E = s[-2], s[-1]
    if d(st.integers(0, 3)) == 0:
        k = v = q                            # self-attention on the same value
        S = L
    else:
        S = d(st.sampled_from(SIZES))
        k = D.partner(lambda t: t == s[:-2] + (S, E), lambda: s[:-2] + (S, E))
        v = D.leaf(s[:-2] + (S, d(st.sampled_from(SIZES))))
    causal = d(st.booleans())
    mask = None
    if not causal and d(st.booleans()):
        mask = D.rng.random((L, S)) > 0.5
        mask[np.arange(L), D.rng.integers(0, S, L)] = True      # no fully masked row
    scale = d(st.sampled_from([None, None, 0.3]))
    return D.add(Node("fused", "sdpa", (q, k, v), {"causal": causal, "mask": mask,
                                                    "scale": scale}))


INPLACE_OPS = ["add_", "sub_", "mul_", "copy_", "setitem", "setitem", "clamp_", "fill_",
               "zero_", "masked_fill_", "relu_", "tanh_", "exp_", "neg_"]


def draw_inplace(D, op=None):
    d = D.draw
    op = op or d(st.sampled_from(INPLACE_OPS))
    t = D.any_value()
    s = D.shapes[t]
    view = None
    kind = d(st.sampled_from(["none", "none", "T", "index"]))
    if kind == "T" and len(s) >= 2:
        view = "T"
    elif kind == "index" and s:
        view = _basic_index(D, s, allow_none=False)
    vs = tuple(_view_of(D.torch, D.vals[t], view).shape)     # the written view's shape
    p = {"view": view, "no_grad": d(st.integers(0, 2)) == 2}
    ins = (t,)
    if op == "setitem":
        p["index"] = _basic_index(D, vs, allow_none=False)
        with D.torch.no_grad():
            sub = vs if not vs else tuple(D.torch.zeros(vs)[_getitem_key(D.torch,
                                                                          p["index"])].shape)
        vs = sub
    if op in ("add_", "sub_", "mul_", "copy_", "setitem"):
        if op != "copy_" and d(st.integers(0, 2)) == 0:
            p["scalar"] = d(st.sampled_from([0.5, -2.0, 3.0]))
        else:
            ins += (D.partner(lambda u: _broadcasts_to(u, vs),
                              lambda: D.variant(vs, grow=False)),)
    elif op in ("fill_", "masked_fill_"):
        p["scalar"] = d(st.sampled_from([0.5, -2.0, 3.0]))
        if op == "masked_fill_":
            p["mask"] = np.asarray(D.rng.random(D.variant(vs, grow=False)) > 0.5)
    elif op == "clamp_":
        p["lo"], p["hi"] = -0.5, d(st.sampled_from([0.3, 1.0]))
    return D.add(Node("inplace", op, ins, p))


DRAWERS = {"unary": draw_unary, "binary": draw_binary, "reduce": draw_reduce,
           "shape": draw_shape, "join": draw_join, "index": draw_index, "fused": draw_fused,
           "inplace": draw_inplace}


# every op the drawers know, as (family, name): the CI test forces each one into a few graphs
ALL_OPS = ([("unary", k) for k in sorted(UNARY)] + [("binary", k) for k in sorted(BINARY)] +
           [("reduce", k) for k in REDUCE_OPS] + [("shape", k) for k in sorted(SHAPE)] +
           [("join", k) for k in sorted(JOIN)] + [("index", k) for k in INDEX_OPS] +
           [("fused", k) for k in FUSED_OPS] + [("inplace", k) for k in sorted(set(INPLACE_OPS))])


def _force(D, force):
    """Add the op force = (family, name) to the graph; a fresh (3, 2, 5) leaf first where no
    value fits its shape needs."""
    kind, op = force
    for _ in range(2):
        if DRAWERS[kind](D, op=op) is not None or D.raised:
            return
        D.leaf((3, 2, 5))


@st.composite
def graphs(draw, torch, min_ops=3, max_ops=15, force=None):
    """A Graph: 1-3 leaves (requires_grad mostly; plain or a non-contiguous view of a base),
    then min_ops..max_ops ops (the first one `force` = (family, name) when given); the loss
    weights the last value and up to two others."""
    from strategies import broadcastable_pairs
    seed = draw(st.integers(0, 2**31 - 1))
    D = _Drawing(draw, torch, seed)
    pair = draw(broadcastable_pairs(allow_zero=False))
    for shape in pair[:draw(st.integers(1, 2))] + (D.variant(pair[0]),) * draw(
            st.integers(0, 1)):
        D.leaf(shape, requires_grad=draw(st.integers(0, 4)) < 4, view=draw(views(shape)))
    n_ops = draw(st.integers(min_ops, max_ops))
    kinds = sorted(DRAWERS)
    done = 0
    if force is not None:
        _force(D, force)
        done = 1
    while done < n_ops and not D.raised:
        kind = draw(st.sampled_from(kinds))
        if DRAWERS[kind](D) is not None or D.raised:
            done += 1
    n = len(D.vals)
    outputs = sorted({n - 1} | set(draw(st.lists(st.integers(0, n - 1), max_size=2))))
    return Graph(D.nodes, D.nouts, D.shapes, outputs if n else [], seed)


# ---- running -----------------------------------------------------------------------------------
@dataclass
class Result:
    values: list = field(default_factory=list)     # numpy copies of every value, at the end
    requires_grad: list = field(default_factory=list)
    grads: list = field(default_factory=list)      # per leaf: numpy or None
    raised_at: object = None                       # node index whose op raised
    error: object = None
    backward_error: object = None
    view_join: bool = False                        # torch: a write into a view made its base join


def _leaf_data(graph, k, node):
    rng = np.random.default_rng([graph.seed, k])
    return rng.standard_normal(node.params["base"])


def _to_np(t):
    return t.detach().cpu().numpy().copy() if hasattr(t, "cpu") else t.detach().numpy().copy()


def run(L, graph, dtype, save_copies=False):
    """Run graph on library L (tinygradattn or torch) in dtype ("float64" / "float32"), then
    backward of the weighted sum of graph.outputs. Never raises: a raising op ends the run.
    save_copies (torch only): autograd saves copies, so that a later in-place write cannot
    reach them (the reference where ours saved a copy and torch's version check raises)."""
    if save_copies:
        with L.autograd.graph.saved_tensors_hooks(lambda t: t.clone(), lambda t: t):
            return run(L, graph, dtype)
    res, vals, leaves = Result(), [], []
    for k, node in enumerate(graph.nodes):
        if node.kind == "leaf":
            leaf = L.tensor(_leaf_data(graph, k, node), dtype=getattr(L, dtype),
                            requires_grad=node.params["requires_grad"])
            leaves.append(leaf)
            out = node.params["view"].apply(leaf)
        else:
            args = [vals[i] for i in node.ins]
            base = _root(args[0]) if node.kind == "inplace" else None
            before = base is not None and base.requires_grad
            try:
                out = apply(L, node, args)
            except Exception as e:      # noqa: BLE001 - compared with the other library
                res.raised_at, res.error = k, e
                break
            if base is not None and not before and base.requires_grad and out is not base:
                res.view_join = True
        vals.extend(out if isinstance(out, (tuple, list)) else [out])
    if res.raised_at is None:
        _backward(L, graph, vals, res)
    res.values = [_to_np(v) for v in vals]
    res.requires_grad = [bool(v.requires_grad) for v in vals]
    res.grads = [None if x.grad is None else _to_np(x.grad) for x in leaves]
    return res


def _root(t):
    """torch's base of a view (None for tinygradattn, which has no _base)."""
    base = getattr(t, "_base", None)
    return None if not hasattr(t, "_base") else (t if base is None else base)


def _backward(L, graph, vals, res):
    try:
        terms = []
        for j in graph.outputs:
            v = vals[j]
            if v.requires_grad:
                w = np.random.default_rng([graph.seed, 7, j]).standard_normal(tuple(v.shape))
                terms.append((v * L.tensor(w, dtype=v.dtype)).sum())
        if not terms:
            return
        loss = terms[0]
        for t in terms[1:]:
            loss = loss + t
        loss.backward()
    except Exception as e:              # noqa: BLE001 - compared with the other library
        res.backward_error = e


# ---- comparing ---------------------------------------------------------------------------------
# tinygradattn's documented differences from torch (tensor_methods/inplace.py): it refuses an
# in-place op on a tensor in the graph (torch records it), and a write of a value requiring
# grad by __setitem__ into a tensor that does not (torch records it: CopySlices); a write into
# a view of a tensor that does not require grad makes the view, not its base, join the graph.
KNOWN_REFUSALS = {"part of the autograd graph": "known: in-place on a tensor in the graph",
                  "is not recorded here": "known: setitem of a value requiring grad"}
KNOWN_VIEW_JOIN = "known: in-place write into a view joins the view only"
MODIFIED = "modified by an inplace operation"
# torch's version counter covers zero-size views; ours does not (np.may_share_memory is False
# for them: autograd/function.py), and a write into nothing changes nothing
KNOWN_EMPTY_VERSION = "known: version error on a zero-size view (torch only)"
# ours saves some tensors torch's backward does not read (scaled_dot_product_attention saves
# every input, Div its output): ours refuses a write that torch's backward ignores (safe)
KNOWN_STRICTER_VERSION = "known: ours' version check is stricter: {}"
# torch refuses in-place writes into the outputs of split / chunk (views from a function
# returning several views), even under no_grad; ours allows them
# ours refuses every write into an expanded (stride-0) tensor; torch lets fill-like ones
# (masked_fill_, fill_, zero_) through
OVERLAP = "more than one element of the written-to tensor refers to a single memory"
KNOWN_OVERLAP = "known: ours refuses fill-like writes into an expanded tensor"
# ours' view is reshape: it copies where torch's view refuses a non-contiguous tensor
KNOWN_VIEW_COPIES = "known: view of a non-viewable tensor copies (torch raises)"
# torch's backward raises a version error where ours saved a copy of the tensor (e.g. a
# non-contiguous input made contiguous): ours' gradients equal torch's run with its saved
# tensors copied (saved_tensors_hooks), which compare() checks
KNOWN_SAVED_COPY = "known: ours saved a copy where torch's version check raises (grads checked)"
# x.T.mul_(x): torch refuses an operand that partly overlaps the written tensor; ours computes
# the out-of-place result first, then writes it (well defined)
PARTIAL_OVERLAP = "some elements of the input tensor and the written-to tensor refer to"
KNOWN_PARTIAL_OVERLAP = "known: ours accepts an operand partly overlapping the written tensor"
KNOWN_MULTI_VIEW = "known: torch refuses in-place on split/chunk outputs"


class Mismatch(AssertionError):
    pass


def compare(graph, ours, theirs, tol, torch_saving_copies=None):
    """'match' / 'both raise ...' / a known difference's label / 'non-finite', or Mismatch
    with the graph as a reproducer. torch_saving_copies() runs torch with its saved tensors
    copied: where torch's backward raises a version error and ours does not, ours must have
    saved a copy, and its gradients must be those."""
    if ours.raised_at is not None and (theirs.raised_at is None
                                       or theirs.raised_at > ours.raised_at):
        for msg, label in KNOWN_REFUSALS.items():
            if msg in str(ours.error):
                return label
    if theirs.view_join:
        return KNOWN_VIEW_JOIN
    if "view size is not compatible" in str(theirs.error) and (
            ours.raised_at is None or ours.raised_at > theirs.raised_at):
        return KNOWN_VIEW_COPIES
    if OVERLAP in str(ours.error) and (theirs.raised_at is None or
                                       theirs.raised_at > ours.raised_at):
        return KNOWN_OVERLAP
    if PARTIAL_OVERLAP in str(theirs.error) and (
            ours.raised_at is None or ours.raised_at > theirs.raised_at):
        return KNOWN_PARTIAL_OVERLAP
    if "function that returns multiple views" in str(theirs.error) and (
            ours.raised_at is None or ours.raised_at > theirs.raised_at) or \
            "function that returns multiple views" in str(theirs.backward_error):
        return KNOWN_MULTI_VIEW
    fail = _Failure(graph, ours, theirs)
    if ours.raised_at != theirs.raised_at:
        fail(f"op raised in one library only: ours at node {ours.raised_at} "
             f"({ours.error!r}), torch at node {theirs.raised_at} ({theirs.error!r})")
    if ours.raised_at is not None:
        a, b = type(ours.error), type(theirs.error)
        if issubclass(a, b) or issubclass(b, a):
            return "both raise at an op"
        return f"both raise at an op, types differ: ours {a.__name__}, torch {b.__name__}"
    label = _known_backward_difference(ours, theirs)
    if label:
        return label
    if MODIFIED in str(theirs.backward_error) and ours.backward_error is None and \
            torch_saving_copies is not None:
        copied = torch_saving_copies()
        if copied.backward_error is None:
            compare(graph, ours, copied, tol)
            return KNOWN_SAVED_COPY
    if (ours.backward_error is None) != (theirs.backward_error is None):
        fail(f"backward raised in one library only: ours {ours.backward_error!r}, "
             f"torch {theirs.backward_error!r}")
    if not all(np.isfinite(v).all() for v in theirs.values if v.dtype.kind == "f") or \
            not all(g is None or np.isfinite(g).all() for g in theirs.grads):
        return "non-finite"
    if _degenerate(graph, theirs):
        return "degenerate: std of constant values"
    for i, (a, b, ra, rb) in enumerate(zip(ours.values, theirs.values, ours.requires_grad,
                                           theirs.requires_grad)):
        if ra != rb:
            fail(f"v{i}: requires_grad {ra}, torch {rb}")
        _close(fail, a, b, tol, f"value v{i}")
    if ours.backward_error is not None:
        return "both raise in backward"
    for i, (g, tg) in enumerate(zip(ours.grads, theirs.grads)):
        if g is None and tg is not None and np.any(tg):
            fail(f"leaf {i}: no grad, torch has one")
        if g is not None:
            _close(fail, g, np.zeros_like(g) if tg is None else tg, tol, f"grad of leaf {i}")
    return "match"


def _degenerate(graph, theirs):
    """A std whose value is ~0: its derivative does not exist (0/0), and which rounding of
    the variance gives 0 exactly differs between the libraries."""
    i = 0
    for node, n in zip(graph.nodes, graph.nouts):
        if node.kind == "reduce" and node.op == "std" and n and \
                theirs.values[i].size and np.abs(theirs.values[i]).min() < 1e-6:
            return True
        i += n
    return False


def _known_backward_difference(ours, theirs):
    import re
    e_ours, e_torch = str(ours.backward_error or ""), str(theirs.backward_error or "")
    if MODIFIED in e_torch and not e_ours:
        m = re.search(r"\[torch\.\w+ \[([\d, ]*)\]\]", e_torch)
        if m and "0" in [d.strip() for d in m.group(1).split(",")]:
            return KNOWN_EMPTY_VERSION
    if MODIFIED in e_ours and not e_torch:
        m = re.search(r"(?:output 0 of|an input of) (\w+)", e_ours)
        return KNOWN_STRICTER_VERSION.format(m.group(1) if m else "?")
    return None


def _close(fail, a, b, tol, what):
    from helpers import assert_close
    if a.shape != b.shape or a.dtype != b.dtype:
        fail(f"{what}: shape/dtype {a.shape} {a.dtype}, torch {b.shape} {b.dtype}")
    if a.dtype.kind != "f":
        if not np.array_equal(a, b):
            fail(f"{what}: {a} != torch {b}")
        return
    try:
        assert_close(a, b, tol, what)
    except AssertionError as e:
        fail(str(e))


class _Failure:
    def __init__(self, graph, ours, theirs):
        self.graph, self.ours, self.theirs = graph, ours, theirs

    def __call__(self, msg):
        raise Mismatch(f"{msg}\ngraph (a reproducer):\n{self.graph}")
