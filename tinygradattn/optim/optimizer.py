"""Optimizer: the base class of SGD, Adam and AdamW (torch.optim.Optimizer's layout).

An optimizer holds `param_groups` (a list of dicts: 'params' plus the hyper-parameters of
that group, so a GPT can exempt biases and norms from weight decay) and `state` (a dict keyed
by the parameter tensor itself, i.e. by identity). `state_dict()` has torch's layout:

    {'state': {index: {'step': tensor, 'exp_avg': tensor, ...}},
     'param_groups': [{'lr': ..., ..., 'params': [index, ...]}, ...]}

with parameters numbered in group order, so it survives a restart (the tensors differ,
the order does not) and moves between libraries through numpy.

Subclasses implement `_step_group(group)`; the math lives in the foreach ops of ops/foreach.py
(`sgd_step_`, `adam_step_`: one fused backend call per list of parameters), never numpy and
never a tensor's array: optim/ sits above ops/ and tensor.py.
"""
import numbers

from ..autograd.grad_mode import enable_grad, no_grad
from ..tensor import Tensor

# NOTE: torch keeps 'step' as a float32 0-d tensor; we keep a Python float in `state` (one
# less tensor op per parameter per step) and give torch's tensor in state_dict().
_STEP = "step"


class Optimizer:
    """Base class of the optimizers (torch.optim.Optimizer).

    Args:
        params: an iterable of Tensors (leaves with requires_grad, e.g. nn.Parameters), or of
            dicts, each {'params': iterable of Tensors, <hyper-parameter>: value, ...}.
        defaults: hyper-parameters used where a group does not set its own.
    """

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.state = {}
        self.param_groups = []
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of "
                            f"Tensors or dicts, but got {type(params).__name__}")
        try:
            param_groups = list(params)
        except TypeError:
            raise TypeError("params argument given to the optimizer should be an iterable of "
                            f"Tensors or dicts, but got {type(params).__name__}") from None
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)

    def __repr__(self):
        lines = [type(self).__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {group[k]}" for k in sorted(group) if k != "params"]
        return "\n".join(lines + [")"])

    # ---- groups ---------------------------------------------------------------------------------
    def add_param_group(self, param_group):
        """Add a group of parameters, with its own hyper-parameters (torch's add_param_group)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        group = dict(param_group)
        params = group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError("optimizer parameters need to be organized in ordered collections, "
                            "but the ordering of tensors in sets will change between runs. "
                            "Please use a list instead.")
        group["params"] = list(params)
        for i, p in enumerate(group["params"]):
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but one of the params "
                                f"(index {i}) is {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError(f"can't optimize a non-leaf Tensor (index {i}, shape "
                                 f"{tuple(p.shape)})")
        for name, default in self.defaults.items():
            group.setdefault(name, default)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if len({id(p) for p in group["params"]}) != len(group["params"]):
            raise ValueError("optimizer contains a parameter group with duplicate parameters")
        if any(id(p) in seen for p in group["params"]):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    # ---- gradients and steps --------------------------------------------------------------------
    def zero_grad(self, set_to_none=True):
        """Forget the gradients: p.grad = None (default), or zero them in place."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.zero_()

    def step(self, closure=None):
        """One update of every parameter that has a gradient; returns closure() if given."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad():
            for group in self.param_groups:
                self._step_group(group)
        return loss

    def _step_group(self, group):
        raise NotImplementedError

    @staticmethod
    def _with_grads(group):
        """(param, grad) pairs of a group, params without a gradient skipped (as torch).

        Shapes are checked here, before a step changes any state: a step that raised halfway
        would leave step counts and moment buffers advanced for a retry.
        """
        out = []
        for p in group["params"]:
            g = p.grad
            if g is not None:
                if g.shape != p.shape:
                    raise RuntimeError(f"grad of shape {tuple(g.shape)} for a parameter of "
                                       f"shape {tuple(p.shape)}")
                out.append((p, g))
        return out

    # ---- saving ---------------------------------------------------------------------------------
    def state_dict(self):
        """{'state': {index: {...}}, 'param_groups': [{..., 'params': [indices]}]} (torch's).

        State tensors are the optimizer's own (not copies), as in torch.
        """
        index = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            for p in group["params"]:
                index.setdefault(id(p), len(index))
            packed["params"] = [index[id(p)] for p in group["params"]]
            groups.append(packed)
        state = {}
        for p, st in self.state.items():
            state[index[id(p)]] = {k: (_step_tensor(v) if k == _STEP else v)
                                   for k, v in st.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore state and hyper-parameters saved by state_dict() (of an optimizer over the
        same parameters in the same order). Tensors are copied, cast to each parameter's
        dtype and device; 'step' may be a tensor or a number."""
        if not isinstance(state_dict, dict):
            raise TypeError(f"load_state_dict: expected the state_dict to be a dict, got "
                            f"{type(state_dict).__name__}")
        if "param_groups" not in state_dict:
            raise ValueError("load_state_dict: expected a dict with 'state' and 'param_groups'")
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"loaded state dict has a different number of parameter groups: "
                             f"{len(saved_groups)} saved, {len(self.param_groups)} here")
        id_map = {}
        for gi, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(f"loaded state dict contains a parameter group that doesn't "
                                 f"match the size of optimizer's group: group {gi} has "
                                 f"{len(saved['params'])} saved, {len(group['params'])} here")
            for key, p in zip(saved["params"], group["params"]):
                id_map[key] = p
        saved_state = state_dict.get("state", {})
        new_state = {}
        for key, st in saved_state.items():
            key = _state_key(key)
            if not isinstance(st, dict):
                raise TypeError(f"loaded state dict: the state of parameter {key} must be a "
                                f"dict, got {type(st).__name__}")
            if key not in id_map:
                raise ValueError(f"loaded state dict has state for parameter {key}, which no "
                                 f"parameter group lists")
            p = id_map[key]
            new_state[p] = {name: _load_value(name, value, p, key)
                            for name, value in st.items()}
        self.state = new_state
        new_groups = []
        for group, saved in zip(self.param_groups, saved_groups):
            new = {k: v for k, v in saved.items() if k != "params"}
            if "betas" in new:
                new["betas"] = tuple(new["betas"])
            new["params"] = group["params"]
            new_groups.append(new)
        self.param_groups = new_groups


def _step_tensor(step):
    from ..creation import tensor
    return tensor(float(step))          # float32, as torch's _get_scalar_dtype()


def _load_value(name, value, p, key):
    """A copy of one saved state entry, checked against its parameter."""
    if name == _STEP:
        return float(value.item() if isinstance(value, Tensor) else value)
    if not isinstance(value, Tensor):
        return value
    if tuple(value.shape) != tuple(p.shape):
        raise ValueError(f"loaded state dict: state '{name}' of parameter {key} has shape "
                         f"{tuple(value.shape)}, but the parameter has shape {tuple(p.shape)}")
    with no_grad():
        return value.detach().to(p.device, p.dtype).clone()


def _state_key(key):
    """A saved state's parameter index: an int, or its string (JSON turns int keys into
    strings)."""
    try:
        return int(key)
    except (TypeError, ValueError):
        raise ValueError(f"loaded state dict: state key {key!r} is not a parameter index") \
            from None


def check_hyper(name, value, valid):
    """value must be a real number (or a Tensor) with valid(value) true; else TypeError /
    ValueError in torch's words, "Invalid <name>: <value>". NaN fails every range."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, Tensor)):
        raise TypeError(f"Invalid {name}: expected a number, got {type(value).__name__} "
                        f"{value!r}")
    if not valid(value):
        raise ValueError(f"Invalid {name}: {value}")
