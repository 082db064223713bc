"""Containers: Sequential, ModuleList, ModuleDict (names "0", "1", ... as in torch)."""
from collections import OrderedDict

from .module import Module


def _item(kind, modules, i):
    """modules[i] for an int index, with torch's IndexError naming the index."""
    try:
        return modules[i]
    except IndexError:
        raise IndexError(f"{kind}: index {i} is out of range (length {len(modules)})") from None


def _iterable(kind, modules):
    try:
        return iter(modules)
    except TypeError:
        raise TypeError(f"{kind} should be called with an iterable of modules, but got "
                        f"{type(modules).__name__}") from None


class Sequential(Module):
    """Calls its modules in order: Sequential(a, b)(x) == b(a(x))."""

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, m in modules[0].items():
                self.add_module(name, m)
        else:
            for i, m in enumerate(modules):
                self.add_module(str(i), m)

    def __getitem__(self, i):
        if isinstance(i, slice):                    # a Sequential keeping the names
            return Sequential(OrderedDict(list(self._modules.items())[i]))
        return _item("Sequential", list(self._modules.values()), i)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        self.add_module(str(len(self._modules)), module)
        return self

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x


class ModuleList(Module):
    def __init__(self, modules=None):
        super().__init__()
        for m in _iterable("ModuleList", () if modules is None else modules):
            self.append(m)

    def append(self, module):
        self.add_module(str(len(self._modules)), module)
        return self

    def extend(self, modules):
        for m in _iterable("ModuleList.extend", modules):
            self.append(m)
        return self

    def __getitem__(self, i):
        items = list(self._modules.values())
        return ModuleList(items[i]) if isinstance(i, slice) else _item("ModuleList", items, i)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __repr__(self):
        """Runs of identical entries print once, "(0-3): 4 x Block(...)", as torch does."""
        if not self._modules:
            return "ModuleList()"
        runs = []                                   # [first index, last index, repr]
        for i, m in enumerate(self._modules.values()):
            text = repr(m)
            if runs and runs[-1][2] == text:
                runs[-1][1] = i
            else:
                runs.append([i, i, text])
        lines = [(f"({a}): " if a == b else f"({a}-{b}): {b - a + 1} x ") + text.replace(
            "\n", "\n  ") for a, b, text in runs]
        return "ModuleList(\n  " + "\n  ".join(lines) + "\n)"


class ModuleDict(Module):
    """name -> Module; built from a mapping or an iterable of (name, module) pairs."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is None:
            return
        pairs = modules.items() if hasattr(modules, "items") else _iterable(
            "ModuleDict", modules)
        for pair in pairs:
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise TypeError(f"ModuleDict: expected (name, module) pairs, got "
                                f"{type(pair).__name__}")
            self.add_module(*pair)

    def __getitem__(self, name):
        return self._modules[name]

    def __setitem__(self, name, module):
        self.add_module(name, module)

    def __contains__(self, name):
        return name in self._modules

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()
