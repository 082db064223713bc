"""The package's import graph points down only (issue 13, item 3):

    cli -> train -> models -> nn / optim -> tensor -> ops -> autograd -> backend -> kernels

Every module of tinygradattn is parsed with `ast` (imports at any depth: module level and
inside functions, relative or absolute) and placed in a layer by LAYERS below; a module that
is not there fails the test, asking to be placed. The rules, each failure naming file:line:
(a) no import of a higher layer; (b) no import cycle, even within a layer (the cycle's path is
printed); (c) numpy, numba and our compiled extensions (`_core`, ...) are named in kernels/
backend only, exceptions listed with their reason; (d) no `._data` / `._backend` above ops/:
nn, optim, models, train and the CLI reach a tensor's storage through public ops only.
The checker is tested on a small synthetic package too, so it cannot pass by seeing nothing.
"""
import ast
import pathlib
from dataclasses import dataclass

import pytest

PACKAGE = "tinygradattn"
PACKAGE_DIR = pathlib.Path(__file__).resolve().parent.parent / PACKAGE

# Bottom to top. A module may import modules of its own layer (without a cycle) or lower ones.
# Names are relative to the package: "nn" is nn/__init__.py, "__init__" the package's own.
LAYERS = [
    ("kernels", [
        "_support",                                   # compiled (Cython) extensions: the shared
        "_core", "_rows", "_elementwise", "_indexing",   # state, then one per kernel family
        "_attention", "_optim",
        "_openmp_env",                                # OpenMP wait policy, set before they load
        # the Numba-CUDA kernels: numba itself, the allocator, the device array, launching,
        # then one module per kernel family
        "cuda.driver", "cuda.allocator", "cuda.array", "cuda.launch", "cuda.scalar_ops",
        "cuda.elementwise", "cuda.transfer", "cuda.views", "cuda.reduce", "cuda.indexing",
        "cuda.linalg", "cuda.rows", "cuda.attention", "cuda.optim", "cuda.sorting",
        "cuda.random", "cuda.scatter",
    ]),
    ("backend", [
        "backend.dlpack",                             # DLPack: device codes, capsules, cpu
        "backend", "backend.base", "backend.cpu", "backend.cpu_kernels", "backend.isa",
        "backend.pool", "backend.cuda",
        "cuda",                                       # tga.cuda: torch.cuda's functions
        "dtypes", "host",                             # dtype rules; host data -> numpy arrays
        "safetensors_io",                             # the checkpoint file's bytes -> arrays
        "runtime",                                    # thread count, build facts of the kernels
        "device",                                     # tga.device
        "backend.mpi",                                # MPI collectives on arrays (mpi4py, lazily)
        "multiprocessing",                            # torch.multiprocessing: stdlib + spawn
        "backends", "backends.cuda", "backends.cudnn", "backends.mps",   # torch.backends' flags
    ]),
    ("autograd", [
        "autograd", "autograd.function", "autograd.engine", "autograd.grad_mode",
        "autograd.gradcheck",
        # the instruments: the observer hook apply and the engine call, then its observers
        "autograd.instruments", "autograd.backward_trace", "autograd.anomaly_mode",
        "profiler", "profiler.events", "profiler.recorder",   # tga.profiler: torch.profiler
        "autograd.checkpoint",                        # Recompute: activation checkpointing's node
        "autograd.folding",                           # views a fused op took out of the path
        "autograd.graph_memory",                      # a graph's nodes and saved storages
    ]),
    ("ops", [
        "ops", "ops.attention", "ops.elementwise", "ops.foreach", "ops.fused", "ops.indexing",
        "ops.linear", "ops.matmul", "ops.movement", "ops.reduce", "ops.sorting",
        "ops.loss",
        "ops.attention_weights",                      # attention maps rebuilt from lse
        "ops.patterns",                               # user code recognised as a fused op
    ]),
    ("tensor", [
        "tensor_args",                                # argument checks and helpers, then the
        "tensor_functions",                           # module-level ops (cat, where, matmul_)
        "tensor_methods", "tensor_methods.math",      # Tensor's themed method mixins, below
        "tensor_methods.reductions", "tensor_methods.sorting",   # the tensor.py that
        "tensor_methods.shape", "tensor_methods.indexing",       # inherits them
        "tensor_methods.inplace",
        "tensor",
        "creation", "functional", "serialization",    # above tensor.py, which imports none
        "linalg",                                     # tga.linalg (vector_norm)
        "compiler",                                   # tga.compile: the identity
        "defaults",                                   # default dtype, matmul precision, ...
        "legacy",                                     # torch.FloatTensor, LongTensor, ...
        "distributed", "distributed.reducer",         # tga.distributed: collectives on tensors;
                                                      # DDP's gradient buckets
    ]),
    ("nn / optim", [
        "nn", "nn.activation", "nn.attention", "nn.container", "nn.embedding", "nn.functional",
        "nn.init", "nn.linear", "nn.module", "nn.norm", "nn.positional", "nn.reference",
        "nn.transformer", "nn.utils",
        "optim", "optim.adam", "optim.lr_scheduler", "optim.optimizer", "optim.sgd",
        "nn.parallel", "amp", "cuda.amp",             # torch's wrappers for one float32 process
        "nn.loss",
        "nn.rnn",                                     # nn.RNN / nn.RNNCell from our ops
        "nn.attention_maps",                          # capture / collect / plot attention maps
        # torch.utils.data: datasets, samplers, DataLoader (tensors in, batches out)
        "utils", "utils.data", "utils.data.collate", "utils.data.dataloader",
        "utils.data.dataset", "utils.data.sampler", "utils.data.distributed",
        "utils.tensorboard",                          # SummaryWriter: scalar event files
        "utils.dlpack",                               # torch.utils.dlpack: to_dlpack, ...
        "utils.checkpoint",                           # torch.utils.checkpoint: recompute
        "utils.memory",                               # activation memory per module
        # tga.viz: the autograd graph of a tensor (and a module's parameter names) drawn as
        # a graphviz.Digraph or, without graphviz, a pure-Python SVG
        "viz", "viz.graph", "viz.collapse", "viz.dot", "viz.svg",
    ]),
    ("models", ["models", "models.gpt", "models.seq2seq"]),
    ("train", [
        "train", "train.checkpoint", "train.trainer",
        "tasks", "tasks.charlm", "tasks.common", "tasks.moons", "tasks.numwords",   # the tasks
        "tasks.registry", "tasks.seq2seq",                                          # it runs
        "train.memory",                               # a training step's memory estimate
    ]),
    ("cli", ["cli",
             "compat", "compat.hook", "compat.runner", "compat.coverage"]),  # torch -> us
    ("package", ["__init__", "__main__"]),          # the public surface: nothing imports it
]

# (c): only these layers may name numpy, numba or an extension module.
BOTTOM_LAYERS = ("kernels", "backend")
HOST_ONLY = ("numpy", "numba")
# (module, what it imports) -> why it may, though it sits above backend/.
HOST_EXCEPTIONS = {
    # tga.save / tga.load: the file format's own numpy API, on arrays from Tensor.numpy()
    # (host I/O, no compute); the safetensors format is the point of the module.
    ("serialization", "safetensors.numpy"):
        "safetensors' numpy API is the file format's reader and writer",
}

# (d): from this layer up, no attribute named like a tensor's storage.
PRIVATES = ("_data", "_backend")
PRIVATES_FROM_LAYER = "nn / optim"


@dataclass(frozen=True)
class Import:
    """One import statement's edge: src imports dst (module names relative to the package)."""
    src: str
    dst: str
    where: str            # "tinygradattn/x.py:12"
    stmt: str             # the statement, as written (ast.unparse)
    implicit: bool = False   # importing a.b first runs package a's __init__


# ---- the checker ------------------------------------------------------------------------------
def find_modules(package_dir):
    """{module name: path} of every .py file, and the set of compiled extensions (.pyx)."""
    modules = {}
    for path in sorted(package_dir.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        parts = path.relative_to(package_dir).with_suffix("").parts
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        modules[".".join(parts)] = path
    extensions = {".".join(p.relative_to(package_dir).with_suffix("").parts)
                  for p in package_dir.rglob("*.pyx")}
    return modules, extensions


def _where(path, package_dir, line):
    return f"{path.relative_to(package_dir.parent).as_posix()}:{line}"


def _package_of(name, path):
    """The package a module's relative imports start from ('' for the top level)."""
    if path.name == "__init__.py":
        return "" if name == "__init__" else name
    return name.rpartition(".")[0]


def parse_imports(package_dir, package=PACKAGE):
    """(edges inside the package, imports of outside modules as (src, module, where, stmt))."""
    modules, extensions = find_modules(package_dir)
    known = set(modules) | extensions
    edges, outside = [], []

    def inside(src, target, where, stmt):
        edges.append(Import(src, target or "__init__", where, stmt))

    for name, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            where, stmt = _where(path, package_dir, node.lineno), ast.unparse(node)
            if isinstance(node, ast.Import):
                for alias in node.names:
                    top, _, rest = alias.name.partition(".")
                    if top == package:
                        inside(name, rest, where, stmt)
                    else:
                        outside.append((name, alias.name, where, stmt))
                continue
            if node.level == 0:
                top, _, rest = (node.module or "").partition(".")
                if top != package:
                    outside.append((name, node.module, where, stmt))
                    continue
                base = rest
            else:
                base = _package_of(name, path)
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                if node.module:
                    base = f"{base}.{node.module}" if base else node.module
            for alias in node.names:            # a submodule, or a name from base's __init__
                sub = f"{base}.{alias.name}" if base else alias.name
                inside(name, sub if sub in known else base, where, stmt)
    return edges + _implicit_edges(edges), outside


def _implicit_edges(edges):
    """Importing a.b.c runs a's and a.b's __init__ first, unless the importer is inside them."""
    out = []
    for e in edges:
        src_packages = {e.src.rsplit(".", i)[0] for i in range(e.src.count(".") + 1)}
        parts = e.dst.split(".")
        for i in range(1, len(parts)):
            package = ".".join(parts[:i])
            if package not in src_packages:
                out.append(Import(e.src, package, e.where, e.stmt, implicit=True))
    return out


def layer_table(layers=LAYERS):
    return {m: (i, layer) for i, (layer, names) in enumerate(layers) for m in names}


def unplaced_modules(modules, extensions, layer_of):
    return [f"{m}: not in the layer table of tests/test_layering.py; place it in LAYERS"
            for m in sorted(set(modules) | extensions) if m not in layer_of]


def upward_imports(edges, layer_of):
    """(a) an import of a module in a higher layer."""
    errors = []
    for e in edges:
        if e.implicit or e.src not in layer_of or e.dst not in layer_of:
            continue
        (i, src_layer), (j, dst_layer) = layer_of[e.src], layer_of[e.dst]
        if j > i:
            errors.append(f"{e.where}: `{e.stmt}`: {e.src} (layer {src_layer}) imports {e.dst} "
                          f"(layer {dst_layer}), a higher layer")
    return errors


def import_cycles(edges):
    """(b) every cycle of the import graph (one path per strongly connected component)."""
    graph = {}
    for e in edges:
        graph.setdefault(e.src, {}).setdefault(e.dst, e)
    errors = []
    for component in _strongly_connected(graph):
        start = min(component)
        if len(component) == 1 and start not in graph.get(start, {}):
            continue
        path = _shortest_cycle(graph, start, component)
        steps = " -> ".join(f"{e.dst} ({e.where}: `{e.stmt}`"
                            f"{', implicitly: runs its __init__' if e.implicit else ''})"
                            for e in path)
        errors.append(f"import cycle: {start} -> {steps}")
    return errors


def _strongly_connected(graph):
    """Tarjan's components, iteratively (no recursion limit to meet)."""
    index, low, on_stack, stack, components = {}, {}, set(), [], []
    nodes = set(graph) | {d for targets in graph.values() for d in targets}
    for root in sorted(nodes):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, {}))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        m = stack.pop()
                        on_stack.discard(m)
                        component.add(m)
                        if m == node:
                            break
                    components.append(component)
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph.get(child, {})))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return components


def _shortest_cycle(graph, start, component):
    """The edges of a shortest path start -> ... -> start inside component (breadth first)."""
    came_by = {}
    frontier = [start]
    while frontier:
        nxt = []
        for node in frontier:
            for dst, e in sorted(graph.get(node, {}).items()):
                if dst == start:
                    path = [e]
                    while node != start:
                        path.append(came_by[node])
                        node = came_by[node].src
                    return path[::-1]
                if dst in component and dst not in came_by:
                    came_by[dst] = e
                    nxt.append(dst)
        frontier = nxt
    raise AssertionError(f"no cycle through {start}")


def host_imports_above_backend(edges, outside, extensions, layer_of, bottom=BOTTOM_LAYERS,
                               exceptions=HOST_EXCEPTIONS):
    """(c) numpy / numba / an extension module named above backend/; also stale exceptions."""
    errors, used = [], set()
    named = [(src, mod, where, stmt) for src, mod, where, stmt in outside
             if set(mod.split(".")) & set(HOST_ONLY)]
    named += [(e.src, e.dst, e.where, e.stmt) for e in edges
              if not e.implicit and e.dst in extensions]
    for src, mod, where, stmt in named:
        if src not in layer_of or layer_of[src][1] in bottom:
            continue
        if (src, mod) in exceptions:
            used.add((src, mod))
            continue
        errors.append(f"{where}: `{stmt}`: {src} (layer {layer_of[src][1]}) names {mod}; only "
                      f"{' and '.join(bottom)} may (STYLE.md section 1): go through a backend")
    errors += [f"HOST_EXCEPTIONS lists ({src!r}, {mod!r}), which no longer imports it: drop it"
               for src, mod in sorted(set(exceptions) - used)]
    return errors


def private_accesses(modules, layer_of, package_dir, from_layer=PRIVATES_FROM_LAYER):
    """(d) `x._data` / `x._backend` in a module of from_layer or above."""
    first = next(i for i, layer in layer_of.values() if layer == from_layer)
    errors = []
    for name, path in sorted(modules.items()):
        if name not in layer_of or layer_of[name][0] < first:
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Attribute) and node.attr in PRIVATES:
                errors.append(f"{_where(path, package_dir, node.lineno)}: `{ast.unparse(node)}`: "
                              f"{name} (layer {layer_of[name][1]}) reaches a tensor's storage; "
                              "use a public op (Tensor.copy_ / fill_ / data, ops/foreach.py)")
    return errors


# ---- the package ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def package():
    modules, extensions = find_modules(PACKAGE_DIR)
    edges, outside = parse_imports(PACKAGE_DIR)
    return modules, extensions, edges, outside, layer_table()


def _report(errors):
    if errors:
        pytest.fail(f"{len(errors)} problem(s):\n" + "\n".join(errors), pytrace=False)


def test_every_module_is_placed_in_a_layer(package):
    modules, extensions, _, _, layer_of = package
    assert len(modules) > 40 and {"_core", "_optim"} <= extensions   # the walk saw the package
    _report(unplaced_modules(modules, extensions, layer_of))
    listed = [m for _, names in LAYERS for m in names]
    _report([f"{m}: listed twice in LAYERS" for m in set(listed) if listed.count(m) > 1] +
            [f"{m}: in LAYERS but not in the package: remove it" for m in listed
             if m not in modules and m not in extensions])


def test_imports_point_down(package):
    _, _, edges, _, layer_of = package
    assert any(e.src == "tensor" and e.dst == "ops.elementwise" for e in edges)
    _report(upward_imports(edges, layer_of))


def test_no_import_cycles(package):
    _report(import_cycles(package[2]))


def test_numpy_numba_and_extensions_only_at_the_bottom(package):
    _, extensions, edges, outside, layer_of = package
    assert any(mod == "numpy" for _, mod, _, _ in outside)
    _report(host_imports_above_backend(edges, outside, extensions, layer_of))


def test_no_tensor_storage_access_above_ops(package):
    modules, _, _, _, layer_of = package
    _report(private_accesses(modules, layer_of, PACKAGE_DIR))


# ---- the checker, on a synthetic package --------------------------------------------------------
SYNTHETIC = {
    "__init__.py": "from . import top\n",
    "low.py": "import numpy as np\n\ndef f():\n    from .top import g   # upward, in a function\n",
    "top.py": "from . import low\n\ndef g(t):\n    return t._data\n",
    "sub/__init__.py": "from .a import x\n",
    "sub/a.py": "from ..low import f\nfrom .b import y\nx = 1\n",
    "sub/b.py": "import pkg.sub.a\ny = 2\n",
    "stray.py": "",
}
SYNTHETIC_LAYERS = [("bottom", ["low", "sub", "sub.a", "sub.b"]), ("nn / optim", ["top"]),
                    ("package", ["__init__"])]


@pytest.fixture
def synthetic(tmp_path):
    root = tmp_path / "pkg"
    for rel, text in SYNTHETIC.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    (root / "_kern.pyx").write_text("")
    modules, extensions = find_modules(root)
    edges, outside = parse_imports(root, "pkg")
    return root, modules, extensions, edges, outside, layer_table(SYNTHETIC_LAYERS)


def test_checker_resolves_every_import_form(synthetic):
    _, modules, extensions, edges, outside, _ = synthetic
    assert set(modules) == {"__init__", "low", "top", "sub", "sub.a", "sub.b", "stray"}
    assert extensions == {"_kern"}
    found = {(e.src, e.dst, e.implicit) for e in edges}
    assert {("__init__", "top", False), ("low", "top", False), ("top", "low", False),
            ("sub", "sub.a", False), ("sub.a", "low", False), ("sub.a", "sub.b", False),
            ("sub.b", "sub.a", False)} <= found
    assert ("sub.b", "sub", True) not in found        # inside sub: its __init__ already runs
    assert [(src, mod) for src, mod, _, _ in outside] == [("low", "numpy")]


def test_checker_catches_an_unplaced_module(synthetic):
    _, modules, extensions, _, _, layer_of = synthetic
    assert unplaced_modules(modules, extensions, layer_of) == [
        "_kern: not in the layer table of tests/test_layering.py; place it in LAYERS",
        "stray: not in the layer table of tests/test_layering.py; place it in LAYERS"]


def test_checker_catches_an_upward_import(synthetic):
    _, _, _, edges, _, layer_of = synthetic
    assert upward_imports(edges, layer_of) == [
        "pkg/low.py:4: `from .top import g`: low (layer bottom) imports top (layer nn / optim), "
        "a higher layer"]


def test_checker_catches_cycles_with_their_path(synthetic):
    errors = import_cycles(synthetic[3])
    assert errors == [
        "import cycle: low -> top (pkg/low.py:4: `from .top import g`) -> "
        "low (pkg/top.py:1: `from . import low`)",
        "import cycle: sub.a -> sub.b (pkg/sub/a.py:2: `from .b import y`) -> "
        "sub.a (pkg/sub/b.py:1: `import pkg.sub.a`)"]


def test_checker_catches_a_cycle_through_a_package_init(tmp_path):
    root = tmp_path / "pkg"
    (root / "p").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "x.py").write_text("from .p.m import f\n")            # runs p/__init__ first
    (root / "p" / "__init__.py").write_text("from .k import g\n")
    (root / "p" / "m.py").write_text("f = 1\n")
    (root / "p" / "k.py").write_text("from .. import x\n")
    errors = import_cycles(parse_imports(root, "pkg")[0])
    assert errors == ["import cycle: p -> p.k (pkg/p/__init__.py:1: `from .k import g`) -> "
                      "x (pkg/p/k.py:1: `from .. import x`) -> p (pkg/x.py:1: "
                      "`from .p.m import f`, implicitly: runs its __init__)"]


def test_checker_catches_numpy_above_the_bottom_and_stale_exceptions(synthetic):
    _, _, extensions, edges, outside, _ = synthetic
    layer_of = layer_table([("kernels", ["_kern"]), ("backend", ["sub", "sub.a", "sub.b"]),
                            ("ops", ["low"]), ("nn / optim", ["top"])])
    stale = {("top", "numpy"): "no longer true"}
    assert host_imports_above_backend(edges, outside, extensions, layer_of,
                                      exceptions=stale) == [
        "pkg/low.py:1: `import numpy as np`: low (layer ops) names numpy; only kernels and "
        "backend may (STYLE.md section 1): go through a backend",
        "HOST_EXCEPTIONS lists ('top', 'numpy'), which no longer imports it: drop it"]
    allowed = {("low", "numpy"): "a reason"}
    assert host_imports_above_backend(edges, outside, extensions, layer_of,
                                      exceptions=allowed) == []


def test_checker_catches_storage_access_above_ops(synthetic):
    root, modules, _, _, _, layer_of = synthetic
    assert private_accesses(modules, layer_of, root) == [
        "pkg/top.py:4: `t._data`: top (layer nn / optim) reaches a tensor's storage; use a "
        "public op (Tensor.copy_ / fill_ / data, ops/foreach.py)"]
