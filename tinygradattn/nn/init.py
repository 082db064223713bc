"""In-place initialisers (torch.nn.init): uniform_, normal_, constant_, zeros_, ones_,
xavier_uniform_, xavier_normal_, kaiming_uniform_, kaiming_normal_, trunc_normal_-free.

They draw from the global generator (tga.manual_seed) and write into the tensor's buffer
through its public in-place methods (copy_, fill_) under no_grad, as torch.nn.init does.
"""
import math
import numbers

from ..autograd.grad_mode import no_grad
from ..creation import rand, randn
from ..tensor import Tensor


def _check_tensor(fn, tensor):
    if not isinstance(tensor, Tensor):
        raise TypeError(f"nn.init.{fn}: expected a tensor, got {type(tensor).__name__}")


def _fill(tensor, values):
    with no_grad():
        return tensor.copy_(values)


def uniform_(tensor, a=0.0, b=1.0):
    _check_tensor("uniform_", tensor)
    if not a <= b:
        raise RuntimeError(f"uniform_ expects to return a [from, to) range, but found from={a} "
                           f"> to={b}")
    u = rand(*tensor.shape, dtype=tensor.dtype, device=tensor.device)
    return _fill(tensor, u * (b - a) + a)


def normal_(tensor, mean=0.0, std=1.0):
    _check_tensor("normal_", tensor)
    if not std >= 0.0:
        raise RuntimeError(f"normal expects std >= 0.0, but found std {std}")
    z = randn(*tensor.shape, dtype=tensor.dtype, device=tensor.device)
    return _fill(tensor, z * std + mean)


def constant_(tensor, val):
    _check_tensor("constant_", tensor)
    if not isinstance(val, (numbers.Number, Tensor)):
        raise TypeError(f"nn.init.constant_: val must be a number, got {type(val).__name__}")
    with no_grad():
        return tensor.fill_(val)


def _fan(tensor, mode):
    """fan_in or fan_out of tensor, by mode (torch's _calculate_correct_fan)."""
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode} not supported, please use one of fan_in, fan_out")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def zeros_(tensor):
    return constant_(tensor, 0.0)


def ones_(tensor):
    return constant_(tensor, 1.0)


def _calculate_fan_in_and_fan_out(tensor):
    _check_tensor("xavier_* / kaiming_*", tensor)
    if tensor.ndim < 2:
        raise ValueError(f"Fan in and fan out can not be computed for tensor with fewer than 2 "
                         f"dimensions, got shape {tuple(tensor.shape)}")
    receptive = math.prod(tensor.shape[2:])
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def calculate_gain(nonlinearity, param=None):
    if nonlinearity in ("linear", "sigmoid", "conv1d", "conv2d"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        if isinstance(slope, bool) or not isinstance(slope, numbers.Real):
            raise ValueError(f"negative_slope {slope} not a valid number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def xavier_uniform_(tensor, gain=1.0):
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    if fan_in + fan_out == 0:           # no element to initialise (torch divides by zero)
        return tensor
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound)


def xavier_normal_(tensor, gain=1.0):
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    if fan_in + fan_out == 0:
        return tensor
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def kaiming_uniform_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    _check_tensor("kaiming_uniform_", tensor)
    if 0 in tuple(tensor.shape):        # torch: initialising a zero-element tensor is a no-op
        return tensor
    fan = _fan(tensor, mode)
    bound = math.sqrt(3.0) * calculate_gain(nonlinearity, a) / math.sqrt(fan)
    return uniform_(tensor, -bound, bound)


def kaiming_normal_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    _check_tensor("kaiming_normal_", tensor)
    if 0 in tuple(tensor.shape):
        return tensor
    fan = _fan(tensor, mode)
    return normal_(tensor, 0.0, calculate_gain(nonlinearity, a) / math.sqrt(fan))
