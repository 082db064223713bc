"""nn.Linear: y = x @ weight.T + bias, with torch's default initialisation; nn.Identity and
nn.Flatten, the two layers that only pass or reshape their input."""
import math

from .. import creation
from . import functional as F
from . import init
from .module import Module, Parameter


class Linear(Module):
    """Args: in_features, out_features, bias=True. Input (*, in) -> output (*, out).

    weight (out, in) and bias (out,) start uniform in +-1/sqrt(in_features), as in torch
    (kaiming_uniform_ with a=sqrt(5)).
    """

    def __init__(self, in_features, out_features, bias=True, device="cpu", dtype=None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(creation.empty(out_features, in_features, device=device,
                                               dtype=dtype))
        self.bias = Parameter(creation.empty(out_features, device=device, dtype=dtype)) \
            if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features) if self.in_features > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x):                                                    # (*, in)
        return F.linear(x, self.weight, self.bias)     # one GEMM, bias inside (ops/linear.py)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Identity(Module):
    """Returns its input; any arguments are accepted and ignored (torch.nn.Identity)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x


class Flatten(Module):
    """x.flatten(start_dim, end_dim), by default every dim but the batch one (torch.nn.Flatten)."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        F._check_tensor("flatten", "input", x)
        return x.flatten(self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
