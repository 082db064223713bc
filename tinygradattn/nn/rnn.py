"""nn.RNN and nn.RNNCell: Elman recurrent networks (tanh or ReLU), composed of our ops.

    h_t = act(x_t @ W_ih.T + b_ih + h_{t-1} @ W_hh.T + b_hh)        act: tanh or relu

No kernel of their own: each time step is one `linear` (the input projection) and one
`linear_residual` (the recurrent GEMM with the projection added inside it), then `tanh` or
`relu`; the outputs are joined by `stack`. Backward is autograd's, step by step through the
unrolled loop: backpropagation through time, with every h_t a node of the graph (so
`h_t.retain_grad()` or a hook shows how dLoss/dh_t shrinks with distance).

NOTE: the input is projected step by step, not in one GEMM over the whole sequence. A slice
`xw[t]` of a recorded tensor costs a full (T, B, H) gradient in backward (one op has one
output, so its gradient has the whole input's shape): T slices make backward O(T^2). Slices of
an input that takes no gradient (token one-hots, features) are not recorded and cost nothing,
and a layer above the first takes the step outputs of the layer below as they are, so
backward stays linear in T. An input that requires grad (an embedding's output) is cut in
halves, then quarters, down to single steps: log2(T) levels of full-size gradients, so
O(T log T) instead of O(T^2).

Names, shapes, initialisation and errors follow torch.nn.RNN / torch.nn.RNNCell.
"""
import math
import numbers
import warnings

from .. import creation
from ..autograd.grad_mode import is_grad_enabled
from ..tensor import cat, stack
from . import functional as F
from . import init
from .module import Module, Parameter

_NONLINEARITIES = ("tanh", "relu")


def _activation(nonlinearity):
    """The function of a nonlinearity name; ValueError (torch's message) for any other."""
    if nonlinearity == "tanh":
        return F.tanh
    if nonlinearity == "relu":
        return F.relu
    raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")


def _uniform_all(module, hidden_size):
    """Every parameter uniform in +-1/sqrt(hidden_size), as torch's RNN reset_parameters."""
    bound = 1.0 / math.sqrt(hidden_size) if hidden_size > 0 else 0.0
    for p in module.parameters():
        init.uniform_(p, -bound, bound)


def _check_sizes(input_size, hidden_size, bias):
    """torch's constructor checks of the sizes and flags shared by RNN and RNNCell."""
    if not isinstance(bias, bool):
        raise TypeError(f"bias should be of type bool, got: {type(bias).__name__}")
    for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{name} should be of type int, got: {type(value).__name__}")
        if value <= 0:
            raise ValueError(f"{name} must be greater than zero")


def _time_steps(x):
    """x (T, B, I) -> T tensors (B, I). A recorded x is halved recursively (each slice's
    backward makes a gradient of its parent's size: log2(T) levels of x's size in all, where
    T slices of x itself would make T); an unrecorded x is sliced directly, for free."""
    if not (x.requires_grad and is_grad_enabled()):
        return [x[t] for t in range(x.shape[0])]
    return _halves(x)


def _halves(seq):                                                 # seq: (n, B, I), n >= 1
    n = seq.shape[0]
    if n == 1:
        return [seq[0]]
    return _halves(seq[:n // 2]) + _halves(seq[n // 2:])


def _step(x_t, h, w_ih, w_hh, b_ih, b_hh, act):
    """One Elman step: act(x_t @ w_ih.T + b_ih + h @ w_hh.T + b_hh).

    x_t (B, I), h (B, H) -> (B, H). The projection of x_t is added inside the recurrent GEMM.
    """
    x_proj = F.linear(x_t, w_ih, b_ih)                                       # (B, H)
    return act(F.linear_residual(h, w_hh, b_hh, x_proj))                     # (B, H)


class RNN(Module):
    """Multi-layer Elman RNN with tanh or ReLU (torch.nn.RNN).

    Args: input_size I, hidden_size H, num_layers=1, nonlinearity='tanh', bias=True,
    batch_first=False, dropout=0.0 (on the outputs of each layer but the last, in training),
    bidirectional=False.

    forward(input, hx=None) -> (output, h_n). input (T, B, I), or (B, T, I) with batch_first,
    or unbatched (T, I); hx (num_layers * D, B, H) or (num_layers * D, H) unbatched, zeros when
    None (D = 2 if bidirectional else 1). output (T, B, D * H) (batch_first: (B, T, D * H)), the
    last layer's h_t of each step, both directions side by side; h_n (num_layers * D, B, H), the
    last hidden state of each layer and direction (the reverse one's is at t = 0).

    Parameters weight_ih_l{k}{_reverse} (H, I or D * H), weight_hh_l{k} (H, H), bias_ih_l{k},
    bias_hh_l{k} (H,), all uniform in +-1/sqrt(H) as in torch.

        >>> import tinygradattn as tga
        >>> rnn = tga.nn.RNN(10, 20, 2)
        >>> output, h_n = rnn(tga.randn(5, 3, 10), tga.randn(2, 3, 20))
        >>> tuple(output.shape), tuple(h_n.shape)
        ((5, 3, 20), (2, 3, 20))
    """

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, device="cpu",
                 dtype=None):
        super().__init__()
        self._check_args(input_size, hidden_size, num_layers, nonlinearity, bias, batch_first,
                         dropout)
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.nonlinearity, self.bias, self.batch_first = nonlinearity, bias, batch_first
        self.dropout, self.bidirectional = float(dropout), bidirectional
        n_dirs = 2 if bidirectional else 1
        self._all_weights = []                      # per layer and direction: its param names
        for layer in range(num_layers):
            layer_in = input_size if layer == 0 else hidden_size * n_dirs
            for direction in range(n_dirs):
                self._all_weights.append(self._make_layer(layer, direction, layer_in, device,
                                                          dtype))
        self.reset_parameters()

    @staticmethod
    def _check_args(input_size, hidden_size, num_layers, nonlinearity, bias, batch_first,
                    dropout):
        _activation(nonlinearity)
        if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real) \
                or not 0 <= dropout <= 1:
            raise ValueError("dropout should be a number in range [0, 1] representing the "
                             "probability of an element being zeroed")
        if dropout > 0 and num_layers == 1:
            warnings.warn("dropout option adds dropout after all but last recurrent layer, so "
                          "non-zero dropout expects num_layers greater than 1, but got "
                          f"dropout={dropout} and num_layers={num_layers}", stacklevel=3)
        if not isinstance(batch_first, bool):
            raise TypeError(f"batch_first should be of type bool, got: "
                            f"{type(batch_first).__name__}")
        _check_sizes(input_size, hidden_size, bias)
        if num_layers <= 0:
            raise ValueError("num_layers must be greater than zero")

    def _make_layer(self, layer, direction, layer_in, device, dtype):
        """Register one layer-direction's parameters under torch's names; returns the names."""
        H, suffix = self.hidden_size, "_reverse" if direction == 1 else ""
        shapes = [("weight_ih", (H, layer_in)), ("weight_hh", (H, H))]
        if self.bias:
            shapes += [("bias_ih", (H,)), ("bias_hh", (H,))]
        names = []
        for stem, shape in shapes:
            name = f"{stem}_l{layer}{suffix}"
            setattr(self, name, Parameter(creation.empty(*shape, device=device, dtype=dtype)))
            names.append(name)
        return names

    def reset_parameters(self):
        _uniform_all(self, self.hidden_size)

    def flatten_parameters(self):
        """A no-op, as torch's is off cuDNN: the weights are already where forward reads them."""

    @property
    def all_weights(self):
        """The parameters per layer and direction: [[w_ih, w_hh, b_ih, b_hh], ...]."""
        return [[getattr(self, name) for name in names] for names in self._all_weights]

    # ---- forward -------------------------------------------------------------------------
    def forward(self, input, hx=None):
        x, hx, is_batched = self._prepare(input, hx)             # (T, B, I), (L * D, B, H)
        steps = _time_steps(x)                                   # T x (B, I)
        act = _activation(self.nonlinearity)
        n_dirs = 2 if self.bidirectional else 1
        last = []                                                # L * D x (B, H)
        for layer in range(self.num_layers):
            if layer > 0 and self.training and self.dropout > 0:
                steps = [F.dropout(s, self.dropout) for s in steps]
            per_dir = []
            for direction in range(n_dirs):
                k = layer * n_dirs + direction
                outs = self._run_direction(steps, hx[k], self.all_weights[k], act,
                                           reverse=direction == 1)
                per_dir.append(outs)
                last.append(outs[0] if direction == 1 else outs[-1])
            steps = per_dir[0] if n_dirs == 1 else [cat(pair, -1) for pair in zip(*per_dir)]
        output = stack(steps, 0)                                 # (T, B, D * H)
        h_n = stack(last, 0)                                     # (L * D, B, H)
        if not is_batched:
            return output.squeeze(1), h_n.squeeze(1)            # (T, D * H), (L * D, H)
        if self.batch_first:
            output = output.transpose(0, 1)                     # (B, T, D * H)
        return output, h_n

    def _run_direction(self, steps, h, weights, act, reverse):
        """The recurrence over steps (T x (B, I)) from h (B, H); returns T x (B, H) in time
        order (for reverse, the loop runs from the last step to the first)."""
        w_ih, w_hh = weights[0], weights[1]
        b_ih, b_hh = (weights[2], weights[3]) if self.bias else (None, None)
        order = range(len(steps) - 1, -1, -1) if reverse else range(len(steps))
        outs = [None] * len(steps)
        for t in order:
            h = _step(steps[t], h, w_ih, w_hh, b_ih, b_hh, act)                # (B, H)
            outs[t] = h
        return outs

    def _prepare(self, input, hx):
        """Checks as torch's, then the input time-major (T, B, I) and hx (L * D, B, H)."""
        F._check_tensor("RNN", "input", input)
        if hx is not None:
            F._check_tensor("RNN", "hx", hx)
        if input.ndim not in (2, 3):
            raise ValueError(f"RNN: Expected input to be 2D or 3D, got {input.ndim}D tensor "
                             f"instead")
        is_batched = input.ndim == 3
        if is_batched:
            if hx is not None and hx.ndim != 3:
                raise RuntimeError(f"For batched 3-D input, hx should also be 3-D but got "
                                   f"{hx.ndim}-D tensor")
            x = input.transpose(0, 1) if self.batch_first else input          # (T, B, I)
        else:
            if hx is not None and hx.ndim != 2:
                raise RuntimeError(f"For unbatched 2-D input, hx should also be 2-D but got "
                                   f"{hx.ndim}-D tensor")
            x = input.unsqueeze(1)                                             # (T, 1, I)
            hx = None if hx is None else hx.unsqueeze(1)                       # (L * D, 1, H)
        weight = self.weight_ih_l0
        if x.dtype != weight.dtype:
            raise ValueError(f"RNN input dtype ({x.dtype}) does not match weight dtype "
                             f"({weight.dtype}). Convert input: input.to({weight.dtype}), or "
                             f"convert model: model.to({x.dtype})")
        if x.shape[-1] != self.input_size:
            raise RuntimeError(f"input.size(-1) must be equal to input_size. Expected "
                               f"{self.input_size}, got {x.shape[-1]}")
        if x.shape[0] == 0:         # (torch's message; _halves would recurse for ever)
            raise RuntimeError("Expected sequence length to be larger than 0 in RNN")
        expected = (self.num_layers * (2 if self.bidirectional else 1), x.shape[1],
                    self.hidden_size)
        if hx is None:
            return x, creation.zeros(*expected, dtype=x.dtype, device=x.device), is_batched
        if tuple(hx.shape) != expected:
            raise RuntimeError(f"Expected hidden size {expected}, got {list(hx.shape)}")
        return x, hx, is_batched

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:          # NOTE: torch's RNN repr leaves the nonlinearity out
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        return s


class RNNCell(Module):
    """One Elman step: h' = act(input @ weight_ih.T + bias_ih + hx @ weight_hh.T + bias_hh)
    (torch.nn.RNNCell).

    Args: input_size I, hidden_size H, bias=True, nonlinearity='tanh'.
    forward(input (B, I) or (I,), hx (B, H) or (H,), zeros when None) -> h' (B, H) or (H,).

        >>> import tinygradattn as tga
        >>> cell = tga.nn.RNNCell(10, 20)
        >>> tuple(cell(tga.randn(3, 10)).shape)
        (3, 20)
    """

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", device="cpu",
                 dtype=None):
        super().__init__()
        _check_sizes(input_size, hidden_size, bias)
        _activation(nonlinearity)
        self.input_size, self.hidden_size = input_size, hidden_size
        self.bias, self.nonlinearity = bias, nonlinearity
        H = hidden_size
        self.weight_ih = Parameter(creation.empty(H, input_size, device=device, dtype=dtype))
        self.weight_hh = Parameter(creation.empty(H, H, device=device, dtype=dtype))
        if bias:
            self.bias_ih = Parameter(creation.empty(H, device=device, dtype=dtype))
            self.bias_hh = Parameter(creation.empty(H, device=device, dtype=dtype))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self):
        _uniform_all(self, self.hidden_size)

    def forward(self, input, hx=None):
        F._check_tensor("RNNCell", "input", input)
        if hx is not None:
            F._check_tensor("RNNCell", "hx", hx)
        if input.ndim not in (1, 2):
            raise ValueError(f"RNNCell: Expected input to be 1D or 2D, got {input.ndim}D instead")
        if hx is not None and hx.ndim not in (1, 2):
            raise ValueError(f"RNNCell: Expected hidden to be 1D or 2D, got {hx.ndim}D instead")
        is_batched = input.ndim == 2
        x = input if is_batched else input.unsqueeze(0)                        # (B, I)
        if hx is None:
            hx = creation.zeros(x.shape[0], self.hidden_size, dtype=x.dtype, device=x.device)
        elif not is_batched:
            hx = hx.unsqueeze(0)                                               # (1, H)
        self._check_forward(x, hx)
        h = _step(x, hx, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh,
                  _activation(self.nonlinearity))                              # (B, H)
        return h if is_batched else h.squeeze(0)

    def _check_forward(self, x, hx):
        """torch's messages for an input or hidden state of the wrong size."""
        if x.shape[1] != self.input_size:
            raise RuntimeError(f"input has inconsistent input_size: got {x.shape[1]} expected "
                               f"{self.input_size}")
        if x.shape[0] != hx.shape[0]:
            raise RuntimeError(f"Input batch size {x.shape[0]} doesn't match hidden0 batch "
                               f"size {hx.shape[0]}")
        if hx.ndim != 2 or hx.shape[1] != self.hidden_size:
            got = hx.shape[1] if hx.ndim > 1 else hx.shape[0]
            raise RuntimeError(f"hidden0 has inconsistent hidden_size: got {got}, expected "
                               f"{self.hidden_size}")

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.nonlinearity != "tanh":
            s += f", nonlinearity={self.nonlinearity}"
        return s
