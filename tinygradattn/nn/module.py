"""nn.Module and nn.Parameter: the containers models are built from (torch.nn.Module's API).

A Module registers the Parameters, buffers and sub-Modules assigned to its attributes, so
named_parameters / state_dict can walk them with PyTorch's dotted names.
"""
from collections import OrderedDict, namedtuple

from .. import dtypes
from ..autograd.grad_mode import no_grad
from ..creation import empty
from ..tensor import Tensor

# what load_state_dict returns (torch's _IncompatibleKeys): a tuple with named fields
IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class Parameter(Tensor):
    """A Tensor that a Module registers as a learnable parameter (torch.nn.Parameter).

    Shares memory with `data`; requires grad unless told otherwise.

        >>> import tinygradattn as tga
        >>> p = tga.nn.Parameter(tga.zeros(2))
        >>> p.requires_grad, p.is_leaf
        (True, True)
    """

    __slots__ = ()

    def __new__(cls, data=None, requires_grad=True):
        data = empty(0) if data is None else data
        if not isinstance(data, Tensor):
            raise TypeError(f"Parameter: expected a Tensor, got {type(data).__name__}")
        return Tensor._make_subclass(cls, data, requires_grad)

    def __init__(self, data=None, requires_grad=True):
        pass                  # made in __new__; Tensor.__init__ would copy data

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


class Module:
    """Base class of every layer and model. Subclasses define `forward` and call
    `super().__init__()` before assigning parameters or sub-modules."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # ---- registration ------------------------------------------------------------------
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign {name!r} before Module.__init__() is called")
        if isinstance(value, (Parameter, Module)):
            table = self._modules if isinstance(value, Module) else self._parameters
            if name not in table:           # re-assigning keeps its place, as in torch
                self._forget(name)
            table[name] = value
        elif value is None and (name in self._parameters or name in self._modules):
            (self._parameters if name in self._parameters else self._modules)[name] = None
        elif name in self._parameters:
            raise TypeError(f"cannot assign '{type(value).__name__}' as parameter '{name}' "
                            f"(nn.Parameter or None expected)")
        elif name in self._modules:
            raise TypeError(f"cannot assign '{type(value).__name__}' as child module '{name}' "
                            f"(nn.Module or None expected)")
        elif name in self._buffers and (value is None or isinstance(value, Tensor)):
            self._buffers[name] = value
        else:
            self._forget(name)
            object.__setattr__(self, name, value)

    def _forget(self, name):
        for table in (self._parameters, self._buffers, self._modules):
            table.pop(name, None)
        self._non_persistent.discard(name)
        self.__dict__.pop(name, None)

    def __getattr__(self, name):
        d = self.__dict__
        for table in ("_parameters", "_buffers", "_modules"):
            if table in d and name in d[table]:
                return d[table][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for table in (self._parameters, self._buffers, self._modules):
            if name in table:
                del table[name]
                self._non_persistent.discard(name)
                return
        object.__delattr__(self, name)

    def register_buffer(self, name, tensor, persistent=True):
        """A tensor that is state but not a parameter (saved in state_dict if persistent)."""
        self._register("register_buffer", self._buffers, name, tensor, Tensor)
        if not persistent:
            self._non_persistent.add(name)

    def register_parameter(self, name, param):
        self._register("register_parameter", self._parameters, name, param, Parameter)

    def _register(self, fn, store, name, value, cls):
        """store[name] = value (a cls or None), after the checks torch makes (an attribute
        of another kind under that name is a KeyError, as in torch)."""
        if value is not None and not isinstance(value, cls):
            raise TypeError(f"{fn}: {name!r} must be a {cls.__name__} or None, got "
                            f"{type(value).__name__}")
        _check_name(fn, name)
        if name not in store and hasattr(self, name):
            raise KeyError(f"{fn}: attribute '{name}' already exists")
        self._forget(name)
        store[name] = value

    def add_module(self, name, module):
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: {name!r} must be a Module, got {type(module).__name__}")
        _check_name("add_module", name)
        self._forget(name)
        self._modules[name] = module

    # ---- traversal ----------------------------------------------------------------------
    def named_modules(self, memo=None, prefix=""):
        memo = set() if memo is None else memo
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, child in self._modules.items():
            if child is not None:
                yield from child.named_modules(memo, f"{prefix}.{name}" if prefix else name)

    def modules(self):
        return (m for _, m in self.named_modules())

    def named_children(self):
        return ((n, m) for n, m in self._modules.items() if m is not None)

    def children(self):
        return (m for _, m in self.named_children())

    def _named_members(self, table, prefix, recurse, remove_duplicate=True):
        seen = set()
        modules = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        for mod_prefix, module in modules:
            for name, value in getattr(module, table).items():
                if value is None or (remove_duplicate and id(value) in seen):
                    continue
                seen.add(id(value))
                yield (f"{mod_prefix}.{name}" if mod_prefix else name), value

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        """(dotted name, Parameter) pairs; a shared (tied) parameter is listed once."""
        return self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse=True):
        return (p for _, p in self.named_parameters(recurse=recurse))

    def named_buffers(self, prefix="", recurse=True):
        return self._named_members("_buffers", prefix, recurse)

    def buffers(self, recurse=True):
        return (b for _, b in self.named_buffers(recurse=recurse))

    def apply(self, fn):
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # ---- state ------------------------------------------------------------------------------
    def state_dict(self, prefix=""):
        """name -> tensor (sharing memory) for every parameter and persistent buffer.

        Tied parameters appear under each of their names, as in PyTorch.
        """
        out = OrderedDict()
        self._save_to(out, prefix)
        return out

    def _save_to(self, out, prefix):
        for name, p in self._parameters.items():
            if p is not None:
                out[prefix + name] = p.detach()
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent:
                out[prefix + name] = b.detach()
        for name, child in self._modules.items():      # no dedup: every path, as torch
            if child is not None:
                child._save_to(out, f"{prefix}{name}.")

    def load_state_dict(self, state_dict, strict=True):
        """Copy values into this module's parameters and buffers (in place).

        strict=True: missing keys, unexpected keys and shape mismatches raise one
        RuntimeError that lists each by name; strict=False still raises on a shape mismatch
        (as torch). Returns IncompatibleKeys(missing_keys, unexpected_keys). Values may be
        Tensors or host arrays (numpy, or torch CPU tensors); they are cast to the
        parameter's dtype.
        """
        if not hasattr(state_dict, "keys") or not hasattr(state_dict, "__getitem__"):
            raise TypeError(f"Expected state_dict to be dict-like, got "
                            f"{type(state_dict).__name__}")
        own = self.state_dict()
        not_tensors = [f"{k!r} is a {type(state_dict[k]).__name__}" for k in own
                       if k in state_dict and not hasattr(state_dict[k], "shape")]
        if not_tensors:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}: "
                               f"expected a tensor (or a host array) for each key, but "
                               + ", ".join(not_tensors))
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        mismatched = [f"{k}: checkpoint {tuple(_shape_of(state_dict[k]))}, model "
                      f"{tuple(own[k].shape)}" for k in own
                      if k in state_dict and tuple(_shape_of(state_dict[k])) != tuple(own[k].shape)]
        errors = []
        if strict and unexpected:
            errors.append("Unexpected key(s) in state_dict: " + ", ".join(map(repr, unexpected)))
        if strict and missing:
            errors.append("Missing key(s) in state_dict: " + ", ".join(map(repr, missing)))
        if mismatched:
            errors.append("size mismatch for " + "; ".join(mismatched))
        if errors:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                               + "\n\t".join(errors))
        with no_grad():
            for k, target in own.items():
                if k in state_dict:
                    target.copy_(state_dict[k])   # a Tensor, or a host array (e.g. from torch)
        return IncompatibleKeys(missing, unexpected)

    def train(self, mode=True):
        if not isinstance(mode, bool):
            raise ValueError(f"training mode is expected to be boolean, got {mode!r}")
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self, set_to_none=True):
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad.zero_()

    def requires_grad_(self, requires_grad=True):
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def to(self, *args, dtype=None, device=None):
        """Move / cast every parameter and buffer in place (torch.nn.Module.to).

        A dtype applies to floating-point tensors only (integer and bool buffers keep
        theirs) and must itself be floating; parameters stay the same objects.
        """
        for a in args:
            if isinstance(a, str) and a.split(":")[0] in ("cpu", "cuda"):
                device = a
            else:
                dtype = a
        if isinstance(dtype, str) and not _is_dtype_name(dtype):
            device, dtype = dtype, None         # neither a dtype nor a known device
        if device is not None and str(device).split(":")[0] not in ("cpu", "cuda"):
            raise RuntimeError(f"nn.Module.to: expected a device 'cpu' or 'cuda', got "
                               f"{device!r}")
        if dtype is not None:
            dtype = dtypes.as_dtype(dtype)
            if not dtype.is_floating_point:
                raise TypeError(f"nn.Module.to only accepts floating point dtypes, but got "
                                f"desired dtype={dtype.name}")
        seen = set()
        with no_grad():
            for m in self.modules():
                for table in (m._parameters, m._buffers):
                    for t in table.values():
                        if t is None or id(t) in seen:
                            continue
                        seen.add(id(t))
                        t_dtype = dtype if t.is_floating_point() else None
                        moved = t.to(dtype=t_dtype, device=device)
                        if moved is not t:
                            t.data = moved                  # same object, new storage
                            if t.grad is not None:
                                t.grad = t.grad.to(dtype=t_dtype, device=device)
        return self

    def float(self):
        return self.to("float32")

    def double(self):
        return self.to("float64")

    # ---- calling and printing -----------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = [f"({name}): " + repr(m).replace("\n", "\n  ") for name, m in self._modules.items()]
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not lines:
            return head + ")"
        return head + "\n  " + "\n  ".join(lines) + "\n)"


def _is_dtype_name(name):
    """False for a string that names no dtype at all (e.g. a device 'tpu'): those are refused
    as a device; a dtype we do not support ('float16') keeps its own TypeError."""
    try:
        dtypes.as_dtype(name)
    except TypeError as e:
        return "not understood" not in str(e)
    return True


def _shape_of(value):
    return value.shape


def _check_name(what, name):
    if not isinstance(name, str):
        raise TypeError(f"{what}: name must be a str, got {type(name).__name__}")
    if "." in name or name == "":
        raise KeyError(f"{what}: a name must not contain a dot or be empty, got {name!r}")
