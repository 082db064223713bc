"""`tinygradattn run --check SCRIPT_OR_FOLDER`: which torch names a program uses, and which of
them tinygradattn lacks. Nothing of the program runs: its source is read with `ast`.

Found, for every .py file:
- names reached from `torch` through the program's imports (`import torch`,
  `import torch.nn as nn`, `from torch.nn import functional as F`, `from torch import nn`):
  `torch.topk`, `nn.Linear` (= torch.nn.Linear), `F.softmax`, the chain as written;
- method calls `x.name(...)` whose name is a method of torch.Tensor: checked against
  tinygradattn.Tensor. Knowing torch's method names needs PyTorch installed (without it this
  part is skipped, and said so); the receiver's type is unknown, so such a name may belong to
  another object (a list's `.sort()`): these are listed apart.

A torch name is present when tinygradattn's module of the same path has it (attribute by
attribute: `torch.backends.cuda.matmul.allow_tf32`).
"""
import ast
import importlib
import os
import sys
from dataclasses import dataclass, field

from ..tensor import Tensor
from . import hook


@dataclass
class Use:
    name: str
    places: list = field(default_factory=list)     # "file:line"


def _python_files(path):
    if os.path.isfile(path):
        return [path]
    if not os.path.isdir(path):
        raise FileNotFoundError(f"no such file or folder: {path}")
    files = []
    for root, dirs, names in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        files += [os.path.join(root, n) for n in sorted(names) if n.endswith(".py")]
    return files


class _Collector(ast.NodeVisitor):
    """Torch names (through import aliases) and method-call names in one module."""

    def __init__(self, filename):
        self.filename = filename
        self.aliases = {}              # local name -> the torch path it stands for
        self.names = {}                # torch path -> [places]
        self.methods = {}              # method name -> [places]

    def _add(self, table, key, node):
        table.setdefault(key, []).append(f"{self.filename}:{node.lineno}")

    def visit_Import(self, node):
        for a in node.names:
            if a.name == hook.TORCH or a.name.startswith(hook.TORCH + "."):
                self._add(self.names, a.name, node)
                if a.asname:
                    self.aliases[a.asname] = a.name
                else:
                    self.aliases[hook.TORCH] = hook.TORCH

    def visit_ImportFrom(self, node):
        module = node.module or ""
        if node.level or not (module == hook.TORCH or module.startswith(hook.TORCH + ".")):
            return
        for a in node.names:
            if a.name == "*":
                self._add(self.names, module, node)
                continue
            full = f"{module}.{a.name}"
            self._add(self.names, full, node)
            self.aliases[a.asname or a.name] = full

    def _chain(self, node):
        parts = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if isinstance(node, ast.Name) and node.id in self.aliases:
            return ".".join([self.aliases[node.id], *reversed(parts)])
        return None

    def visit_Attribute(self, node):
        chain = self._chain(node)
        if chain is not None:
            self._add(self.names, chain, node)
            return                      # the inner attributes are prefixes of this chain
        self.generic_visit(node)

    def visit_Name(self, node):
        if node.id in self.aliases and isinstance(node.ctx, ast.Load):
            self._add(self.names, self.aliases[node.id], node)

    def visit_Call(self, node):
        f = node.func
        if isinstance(f, ast.Attribute) and self._chain(f) is None:
            self._add(self.methods, f.attr, node)
        self.generic_visit(node)


def resolves(torch_path):
    """True when tinygradattn has the object `torch_path` names."""
    parts = torch_path.split(".")
    obj, i = None, len(parts)
    while i > 0:                                     # the longest importable module prefix
        try:
            obj = importlib.import_module(hook.our_name(".".join(parts[:i])))
            break
        except ImportError:
            i -= 1
    if obj is None:
        return False
    for attr in parts[i:]:
        try:
            obj = getattr(obj, attr)
        except Exception:                            # noqa: BLE001  (a property may raise)
            return False
    return True


def _torch_tensor_methods():
    """torch.Tensor's public method names, read from a real PyTorch; None without one."""
    try:
        import torch
    except ImportError:
        return None
    if getattr(torch, "__name__", "") != "torch":      # the hook is active: no real torch
        return None
    return {n for n in dir(torch.Tensor) if not n.startswith("_")}


def scan(path):
    """(names, methods): torch paths and Tensor-method candidates, each a dict name -> Use."""
    names, methods = {}, {}
    for filename in _python_files(path):
        with open(filename, encoding="utf-8") as f:
            source = f.read()
        try:
            tree = ast.parse(source, filename)
        except SyntaxError as e:
            raise SyntaxError(f"{filename}:{e.lineno}: cannot parse: {e.msg}") from None
        c = _Collector(os.path.relpath(filename))
        c.visit(tree)
        for table, found in ((names, c.names), (methods, c.methods)):
            for key, places in found.items():
                table.setdefault(key, Use(key)).places.extend(places)
    return names, methods


def _prune(names):
    """Drop chains that are prefixes of longer used chains (torch.nn when torch.nn.Linear is
    there) unless the prefix itself is missing: the report lists what the program needs."""
    keys = set(names)
    return {k: u for k, u in names.items()
            if not any(o.startswith(k + ".") for o in keys) or not resolves(k)}


def report(path, out=sys.stdout):
    """Print the coverage of `path`; returns the number of missing torch names (method-name
    candidates are listed, not counted: their receiver may be another object)."""
    names, calls = scan(path)
    names = _prune(names)
    rows = sorted(((resolves(k), k, u) for k, u in names.items()),
                  key=lambda r: (r[0], r[1]))
    tensor_methods = _torch_tensor_methods()
    method_rows = []
    if tensor_methods is not None:
        method_rows = sorted((hasattr(Tensor, k), f"Tensor.{k}", u)
                             for k, u in calls.items() if k in tensor_methods)
    missing = [r for r in rows if not r[0]]
    missing_methods = [r for r in method_rows if not r[0]]
    print(f"{path}: {len(rows)} torch names used, {len(missing)} missing", file=out)
    for ok, name, use in rows:
        status = "ok     " if ok else "MISSING"
        print(f"  {status} {name:48} {len(use.places):4}x  {use.places[0]}", file=out)
    if tensor_methods is None:
        print("Tensor methods: not checked (PyTorch is not installed: its method names are "
              "what tells a Tensor method from any other)", file=out)
    else:
        print(f"calls of torch.Tensor method names: {len(method_rows)}, "
              f"{len(missing_methods)} missing on tinygradattn.Tensor (the receiver may be "
              f"another object)", file=out)
        for ok, name, use in method_rows:
            status = "ok     " if ok else "MISSING"
            print(f"  {status} {name:48} {len(use.places):4}x  {use.places[0]}", file=out)
    return len(missing)
