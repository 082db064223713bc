"""Activation and dropout modules: ReLU, GELU, Tanh, Sigmoid, SiLU, Softmax, LogSoftmax,
Dropout."""
import warnings

from . import functional as F
from .module import Module


class ReLU(Module):
    """max(x, 0). NOTE: inplace=True is accepted for torch's signature but the result is
    computed out of place (autograd here never overwrites an input)."""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, x):
        return F.relu(x)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class GELU(Module):
    """approximate="none" (erf form) or "tanh", as torch.nn.GELU."""

    def __init__(self, approximate="none"):
        super().__init__()
        self.approximate = approximate

    def forward(self, x):
        return F.gelu(x, approximate=self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class Tanh(Module):
    def forward(self, x):
        return F.tanh(x)


class Sigmoid(Module):
    def forward(self, x):
        return F.sigmoid(x)


class SiLU(Module):
    """x * sigmoid(x), as torch.nn.SiLU. inplace is accepted for torch's signature (see ReLU)."""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, x):
        return F.silu(x)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


def _implicit_softmax_dim(name, ndim):
    """torch's choice for a softmax module built without dim: 0 for 0-, 1- and 3-D inputs,
    else 1, with its deprecation warning."""
    warnings.warn(f"Implicit dimension choice for {name} has been deprecated. Change the call "
                  "to include dim=X as an argument.", UserWarning, stacklevel=3)
    return 0 if ndim in (0, 1, 3) else 1


class Softmax(Module):
    """softmax along dim (torch.nn.Softmax(dim=None)); dim=None picks torch's legacy dim."""

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        dim = self.dim if self.dim is not None else _implicit_softmax_dim("softmax", x.ndim)
        return F.softmax(x, dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSoftmax(Module):
    """log_softmax along dim (torch.nn.LogSoftmax(dim=None)), as Softmax."""

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        dim = self.dim if self.dim is not None else _implicit_softmax_dim("log_softmax", x.ndim)
        return F.log_softmax(x, dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class Dropout(Module):
    """Zeroes elements with probability p while training (scaling the rest by 1 / (1 - p));
    the identity in eval mode. inplace is accepted for torch's signature (see ReLU)."""

    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = p
        self.inplace = inplace

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"
