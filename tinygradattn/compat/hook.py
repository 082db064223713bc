"""The import hook that makes `torch` mean tinygradattn.

A finder on sys.meta_path, ahead of the real importers, answers for `torch` and every
`torch.X.Y`: it imports `tinygradattn.X.Y` and registers that very module object under the
torch name too, so `torch.nn is tinygradattn.nn` and a class is the same class under either
name. A `torch.*` module that tinygradattn lacks is a ModuleNotFoundError naming the torch
module, as an uninstalled package would be.

    with torch_as_tinygradattn():
        import torch                      # tinygradattn
"""
import contextlib
import importlib
import importlib.abc
import importlib.util
import sys

PACKAGE = "tinygradattn"
TORCH = "torch"


def our_name(torch_name):
    """'torch.nn.functional' -> 'tinygradattn.nn.functional'."""
    return PACKAGE + torch_name[len(TORCH):]


def torch_name(our_module_name):
    """'tinygradattn.nn.functional' -> 'torch.nn.functional' (other names unchanged)."""
    if our_module_name == PACKAGE or our_module_name.startswith(PACKAGE + "."):
        return TORCH + our_module_name[len(PACKAGE):]
    return our_module_name


class _AliasLoader(importlib.abc.Loader):
    """Loads a torch name as the already imported tinygradattn module (no second copy)."""

    def __init__(self, module):
        self.module = module
        self.spec = module.__spec__

    def create_module(self, spec):
        return self.module

    def exec_module(self, module):
        module.__spec__ = self.spec          # importlib set the alias spec: keep our own


class TorchFinder(importlib.abc.MetaPathFinder):
    """Finds `torch` and `torch.*` as tinygradattn's modules."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != TORCH and not fullname.startswith(TORCH + "."):
            return None
        ours = our_name(fullname)
        try:
            module = importlib.import_module(ours)
        except ModuleNotFoundError as e:
            if e.name is not None and (e.name == ours or ours.startswith(e.name + ".")):
                raise ModuleNotFoundError(
                    f"No module named '{fullname}' (tinygradattn has no {ours})",
                    name=fullname) from None
            raise
        return importlib.util.spec_from_loader(fullname, _AliasLoader(module))


_FINDER = TorchFinder()


def install():
    """Put the finder first on sys.meta_path (once); a `torch` imported before stays."""
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)


def uninstall():
    """Remove the finder and forget the `torch*` names it registered."""
    if _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)
    for name in [n for n, m in sys.modules.items()
                 if (n == TORCH or n.startswith(TORCH + "."))
                 and getattr(m, "__name__", "").startswith(PACKAGE)]:
        del sys.modules[name]


@contextlib.contextmanager
def torch_as_tinygradattn():
    """Within the block, `import torch` (and its submodules) gives tinygradattn. A real torch
    already imported in this process is set aside for the block and put back after."""
    saved = {n: m for n, m in sys.modules.items() if n == TORCH or n.startswith(TORCH + ".")}
    for name in saved:
        del sys.modules[name]
    install()
    try:
        yield
    finally:
        uninstall()
        sys.modules.update(saved)


def load_module(path, name, on_tinygradattn=True):
    """The Python file at `path` imported as module `name` (not added to sys.modules), its
    `import torch` meaning tinygradattn, or the real PyTorch with on_tinygradattn=False:
    the same model code on both libraries in one process, for comparing them."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    with torch_as_tinygradattn() if on_tinygradattn else contextlib.nullcontext():
        spec.loader.exec_module(module)
    return module
