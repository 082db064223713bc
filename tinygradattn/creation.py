"""Tensor factories: tensor, from_numpy, from_dlpack, zeros, ones, full, empty, arange, rand,
randn, randint, *_like, and the global seed. PyTorch's names, argument orders and default
dtypes.

Sits just above `tensor.py` (which never imports this module): host data is turned into
arrays by tensor.py's `_host_array` (dtype rules in host.py), arrays into Tensors here.
"""
import copy
import math
import numbers
import os

from . import dtypes, host
from .backend import all_backends, dlpack_backend, get_backend
from .backend import manual_seed as seed_backends
from .tensor import Tensor, _host_array
from .tensor_args import _check_fill_value, _check_int_arg, _check_numel, _check_tensor_arg
from .tensor_args import _size_arg


def _make(data, device, requires_grad):
    """A Tensor around data, an array of device's backend (already made there)."""
    backend = get_backend(device)
    t = Tensor._wrap(data, backend)
    if requires_grad:
        t.requires_grad_(True)
    return t


def tensor(data, dtype=None, device="cpu", requires_grad=False):
    """A new tensor holding a copy of data (torch.tensor).

    Python floats give float32, ints int64, bools bool; a numpy array keeps its dtype.

        >>> tensor([[1., 2.], [3., 4.]]).dtype
        tinygradattn.float32
    """
    return _make(get_backend(device).from_host(_host_array(data, dtype)), device, requires_grad)


def from_numpy(array):
    """A tensor sharing memory with a numpy array (torch.from_numpy)."""
    if not host.is_host_array(array):
        raise TypeError(f"from_numpy expects an np.ndarray, got {type(array).__name__}")
    dtypes.from_numpy_dtype(array.dtype)
    return _make(get_backend("cpu").from_host(array), "cpu", False)


def from_dlpack(ext_tensor, *, device=None, copy=None):
    """A tensor on ext_tensor's memory, without a copy (torch.from_dlpack).

    ext_tensor: anything with __dlpack__ (a numpy array, a torch tensor, one of ours) or a
    DLPack capsule (torch.utils.dlpack.to_dlpack's; a capsule can be imported once). Any
    strides, 0-d and size-0 tensors are taken as they are. The dtype must be one we compute
    in (float32, float64, int64, bool, as from_numpy): since memory is shared, any other is a
    TypeError naming it, never a silent converting copy. Memory on a device other than the
    cpu is a BufferError (cuda memory cannot be imported yet); an object without __dlpack__
    is a TypeError naming its type.

    The result is a leaf that does not require grad (`requires_grad_()` afterwards works as
    for any tensor). NOTE: in-place writes made by the other library are not seen by our
    version counter (torch's own caveat for from_dlpack): do not change the memory while a
    graph that saved this tensor waits for backward. One of our own tensors comes back as a
    detach()ed alias, sharing its version counter too.

    Args: device: where the result goes (a copy when it is not where the memory is; with
    copy=False that is a ValueError); copy: True for a copy, None or False for shared memory.

        >>> import numpy as np
        >>> a = np.arange(3.)
        >>> t = from_dlpack(a); t[0] = 7.
        >>> a
        array([7., 1., 2.])
    """
    if isinstance(ext_tensor, Tensor):
        if ext_tensor.requires_grad:        # what ext_tensor.__dlpack__ says, as torch does
            raise BufferError("Can't export tensors that require gradient, use "
                              "tensor.detach()")
        t = ext_tensor.detach()
    else:
        backend = dlpack_backend(ext_tensor)
        t = Tensor._wrap(backend.from_dlpack(ext_tensor), backend)
    if device is not None and get_backend(device) is not t._backend:
        if copy is False:
            raise ValueError(f"from_dlpack: cannot move the tensor from {t.device} to {device} "
                             "without copying; pass copy=None or copy=True")
        return t.to(device)
    return t.clone() if copy else t


_size = _size_arg      # f(2, 3) or f((2, 3)): ints, none negative, the byte count representable


def _random_float_dtype(dtype, name):
    """rand / randn's dtype: floating point only (RuntimeError naming it, as torch)."""
    np_dtype = _float_dtype(dtype)
    if dtypes.from_numpy_dtype(np_dtype) not in (dtypes.float32, dtypes.float64):
        raise RuntimeError(f"{name}(): expected a floating point dtype, got "
                           f"{dtypes.from_numpy_dtype(np_dtype).name}")
    return np_dtype


def _float_dtype(dtype):
    return (dtypes.as_dtype(dtype) if dtype is not None else dtypes.float32).np


def zeros(*size, dtype=None, device="cpu", requires_grad=False):
    return _make(get_backend(device).zeros(_size(size), _float_dtype(dtype)), device,
                 requires_grad)


def ones(*size, dtype=None, device="cpu", requires_grad=False):
    return full(_size(size), 1, dtype=dtype or dtypes.float32, device=device, requires_grad=requires_grad)


def empty(*size, dtype=None, device="cpu", requires_grad=False):
    return _make(get_backend(device).empty(_size(size), _float_dtype(dtype)), device,
                 requires_grad)


def full(size, fill_value, dtype=None, device="cpu", requires_grad=False):
    _check_fill_value("full", "fill_value", fill_value)
    if dtype is None:
        dtype = dtypes.scalar_dtype(fill_value)     # torch: full(s, 1) is int64, 1.0 float32
    return _make(get_backend(device).full(_size((size,)), fill_value, dtypes.as_dtype(dtype).np),
                 device, requires_grad)


def arange(start, end=None, step=1, dtype=None, device="cpu", requires_grad=False):
    if end is None:
        start, end = 0, start
    if isinstance(start, Tensor) or isinstance(end, Tensor) or isinstance(step, Tensor):
        start, end, step = (v.item() if isinstance(v, Tensor) else v for v in (start, end, step))
    _check_range(start, end, step)
    if dtype is None:
        is_int = all(isinstance(v, numbers.Integral) for v in (start, end, step))
        dtype = dtypes.int64 if is_int else dtypes.float32
    return _make(get_backend(device).arange(start, end, step, dtypes.as_dtype(dtype).np), device,
                 requires_grad)


def _check_range(start, end, step):
    """arange's bounds: real numbers (TypeError), finite, a nonzero step whose sign agrees
    with end - start, and a length that fits (RuntimeError, as torch)."""
    if not (type(start) is int and type(end) is int and type(step) is int):   # ints: fine
        for arg, v in (("start", start), ("end", end), ("step", step)):
            if not isinstance(v, numbers.Real):
                raise TypeError(f"arange(): argument '{arg}' must be Number, not "
                                f"{type(v).__name__}")
        if not all(math.isfinite(v) for v in (start, end, step)):
            raise RuntimeError(f"arange: unsupported range: {start} -> {end} (step {step}): "
                               "bounds must be finite")
    if step == 0:
        raise RuntimeError("arange: step must be nonzero")
    if (end - start) * step < 0:
        raise RuntimeError(f"arange: upper bound and lower bound inconsistent with step sign "
                           f"(start {start}, end {end}, step {step})")
    _check_numel((math.ceil((end - start) / step),))


def eye(n, m=None, *, dtype=None, device="cpu", requires_grad=False):
    """The n x m (m defaults to n) identity: ones on the main diagonal (torch.eye), float32
    unless dtype says otherwise."""
    m = n if m is None else m
    for name, v in (("n", n), ("m", m)):
        if not isinstance(v, numbers.Integral) or isinstance(v, bool):
            raise TypeError(f"eye(): argument '{name}' must be int, not {type(v).__name__}")
        if v < 0:
            raise RuntimeError(f"{name} must be greater or equal to 0, got {v}")
    rows = arange(n, device=device).reshape(n, 1)                       # (n, 1)
    cols = arange(m, device=device).reshape(1, m)                       # (1, m)
    out = (rows == cols).to(_float_dtype(dtype) if dtype is None else dtypes.as_dtype(dtype))
    return out.requires_grad_() if requires_grad else out


def rand(*size, generator=None, dtype=None, device="cpu", requires_grad=False):
    """Uniform on [0, 1), from `generator` or the global generator (seeded by manual_seed)."""
    gen = _generator_for(generator, device)
    return _make(get_backend(device).rand(_size(size), _random_float_dtype(dtype, "rand"), gen),
                 device,
                 requires_grad)


def randn(*size, generator=None, dtype=None, device="cpu", requires_grad=False):
    """Standard normal, from `generator` or the global generator (seeded by manual_seed)."""
    gen = _generator_for(generator, device)
    return _make(get_backend(device).randn(_size(size), _random_float_dtype(dtype, "randn"),
                                           gen), device,
                 requires_grad)


def randint(low, high=None, size=None, *, generator=None, dtype=None, device="cpu"):
    """int64 uniform in [low, high) (torch.randint(low=0, high, size)), from `generator` or
    the global generator."""
    if size is None and isinstance(high, (tuple, list)):     # randint(high, size)
        low, high, size = 0, low, high
    if high is None:
        low, high = 0, low
    if size is None:
        raise TypeError("randint() missing required argument 'size'")
    if high <= low:
        raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got from={low} "
                           f">= to={high}")
    gen = _generator_for(generator, device)
    out = _make(get_backend(device).randint(low, high, _size((size,)), gen), device, False)
    return out if dtype is None else out.to(dtype)


def _like(fn, x, dtype, requires_grad, *args):
    """fn(x.shape, *args) with x's dtype (unless given) and device; x must be a Tensor."""
    _check_tensor_arg(fn.__name__ + "_like", "input", x)
    dtype = x.dtype if dtype is None else dtype
    return fn(x.shape, *args, dtype=dtype, device=x.device, requires_grad=requires_grad)


def zeros_like(x, dtype=None, requires_grad=False):
    return _like(zeros, x, dtype, requires_grad)


def ones_like(x, dtype=None, requires_grad=False):
    return _like(ones, x, dtype, requires_grad)


def empty_like(x, dtype=None, requires_grad=False):
    return _like(empty, x, dtype, requires_grad)


def full_like(x, fill_value, dtype=None, requires_grad=False):
    return _like(full, x, dtype, requires_grad, fill_value)


def rand_like(x, dtype=None, requires_grad=False):
    return _like(rand, x, dtype, requires_grad)


def randn_like(x, dtype=None, requires_grad=False):
    return _like(randn, x, dtype, requires_grad)


# ---- generators and permutations (torch.Generator, torch.randperm) ---------------------------
_DEFAULT_SEED = 67280421310721      # torch's initial seed for a new Generator


class Generator:
    """An independent random number generator for one device (torch.Generator): pass it as
    `generator=` to rand, randn, randint, randperm and Tensor.multinomial to draw from it
    instead of the global generator that tga.manual_seed seeds.

    NOTE: get_state() returns the device generator's state as a JSON-able dict (numpy's
    PCG64 state on the CPU, the Philox seed and offset on cuda), not torch's uint8 tensor;
    set_state takes what get_state returned. The streams differ from torch's: the same seed
    gives the same draws here, not torch's draws.

        >>> import tinygradattn as tga
        >>> g = tga.Generator().manual_seed(0)
        >>> a = tga.rand(3, generator=g)
        >>> bool((a == tga.rand(3, generator=tga.Generator().manual_seed(0))).all())
        True
    """

    def __init__(self, device="cpu"):
        self.device = str(device).split(":")[0]
        self._impl = get_backend(self.device).new_generator(_DEFAULT_SEED)
        self._initial_seed = _DEFAULT_SEED

    def manual_seed(self, seed):
        """Seed this generator; returns it (torch.Generator.manual_seed)."""
        if type(seed) is bool or not isinstance(seed, numbers.Integral):
            raise TypeError(f"manual_seed expected an int seed, got {type(seed).__name__}")
        seed = _seed_in_range(int(seed))
        self._impl.manual_seed(seed)
        self._initial_seed = seed
        return self

    def seed(self):
        """Seed from the OS's entropy and return the seed (torch.Generator.seed)."""
        seed = int.from_bytes(os.urandom(8), "little") & ((1 << 63) - 1)
        self.manual_seed(seed)
        return seed

    def initial_seed(self):
        """The seed this generator was last seeded with (torch.Generator.initial_seed)."""
        return self._initial_seed

    def get_state(self):
        """A JSON-able copy of the state (see the class's NOTE)."""
        return copy.deepcopy(self._impl.get_state())

    def set_state(self, new_state):
        """Restore a state get_state returned; returns this generator."""
        self._impl.set_state(copy.deepcopy(new_state))
        return self

    def _for(self, device):
        """The backend generator, checked to belong to device."""
        device = str(device).split(":")[0]
        if device != self.device:
            raise RuntimeError(f"Expected a '{device}' device type for generator but found "
                               f"'{self.device}'")
        return self._impl

    def __repr__(self):
        return f"<tinygradattn.Generator device={self.device!r}>"


def _generator_for(generator, device):
    """None (the global generator) or generator's backend generator for device."""
    if generator is None:
        return None
    if not isinstance(generator, Generator):
        raise TypeError(f"generator must be a tinygradattn.Generator, got "
                        f"{type(generator).__name__}")
    return generator._for(device)


def randperm(n, *, generator=None, dtype=None, device="cpu", requires_grad=False):
    """A random permutation of 0 .. n-1 (torch.randperm), int64 unless dtype says otherwise.

    The order of n uniform float64 keys (drawn from `generator` or the global generator),
    by the backend's stable sort: on cuda every step runs on the device.

        >>> import tinygradattn as tga
        >>> sorted(tga.randperm(5).tolist())
        [0, 1, 2, 3, 4]
    """
    (n,) = _size((_check_int_arg("randperm", "n", n),))
    backend = get_backend(device)
    keys = backend.rand((n,), "float64", _generator_for(generator, device))     # (n,)
    _, order = backend.sort(backend.reshape(keys, (1, n)), False)                # (1, n)
    out = _make(backend.reshape(order, (n,)), device, False)
    if dtype is not None:
        out = out.to(dtype)
    return out.requires_grad_() if requires_grad else out


def _seed_in_range(seed):
    """A seed in [-2**63, 2**64) as the unsigned 64-bit one torch uses (negative seeds wrap);
    ValueError outside, as torch's "Overflow when unpacking long"."""
    if not -(1 << 63) <= seed < (1 << 64):
        raise ValueError(f"Overflow when unpacking long: seed {seed} is outside "
                         f"[-2**63, 2**64)")
    return seed % (1 << 64)


def manual_seed(seed):
    """Seed the global generator of every device (torch.manual_seed: int(seed), so a float
    is truncated and a non-number string raises ValueError; negative seeds wrap)."""
    get_backend("cpu")
    seed_backends(_seed_in_range(int(seed)))


def get_rng_state():
    """The global generators' states, JSON-able, per device (for exact resume)."""
    get_backend("cpu")
    return {backend.name: backend.get_rng_state() for backend in all_backends()}


def set_rng_state(state):
    """Restore what get_rng_state returned."""
    for name, s in state.items():
        get_backend(name).set_rng_state(s)
