"""torch's legacy tensor types: torch.FloatTensor, DoubleTensor, LongTensor, BoolTensor.

Old PyTorch code (the Annotated Transformer, many tutorials) makes tensors with them and
tests types against them, so each is both a constructor and a type, as in torch:

    torch.FloatTensor([[0, 0.2]])      data (a sequence or numpy array) -> a float32 tensor
    torch.LongTensor(2, 3)             sizes -> an uninitialized int64 tensor of that shape
    torch.FloatTensor()                an empty (0,) tensor
    torch.FloatTensor(t)               t itself (sharing storage) when t is float32, else
                                       TypeError, as torch's "expected ... (got ...)"
    isinstance(t, torch.FloatTensor)   True for a float32 tensor on the cpu (nn.Parameter too)
    t.type(torch.LongTensor)           see Tensor.type

Only the dtypes tinygradattn computes in have a type (no HalfTensor, IntTensor, ByteTensor).
These are cpu types, as torch's are; torch.cuda.FloatTensor and friends are not here.
"""
import numbers

from . import creation, dtypes
from .tensor import Tensor

__all__ = ["FloatTensor", "DoubleTensor", "LongTensor", "BoolTensor"]


class _LegacyType(type):
    """The metaclass: calling the class makes a Tensor; isinstance checks dtype and device."""

    def __instancecheck__(cls, obj):
        return isinstance(obj, Tensor) and obj.dtype is cls.dtype and obj.device.type == "cpu"

    def __call__(cls, *args, device=None):
        if device is not None and str(device) != "cpu":
            raise RuntimeError(f"legacy constructor expects device type: cpu but device type: "
                               f"{device} was passed")
        if not args:
            return creation.empty(0, dtype=cls.dtype)
        if len(args) == 1 and isinstance(args[0], Tensor):
            t = args[0]
            if t.dtype is not cls.dtype or t.device.type != "cpu":
                raise TypeError(f"{cls.__name__}: expected a cpu {cls.dtype.name} tensor "
                                f"(got {t.device.type} {t.dtype.name})")
            return t.detach()
        if all(isinstance(a, numbers.Integral) and not isinstance(a, bool) for a in args):
            return creation.empty(*args, dtype=cls.dtype)
        if len(args) == 1 and not isinstance(args[0], (numbers.Number, str)):
            return creation.tensor(args[0], dtype=cls.dtype)
        if len(args) == 1:
            raise TypeError(f"new(): data must be a sequence (got {type(args[0]).__name__})")
        raise TypeError(f"{cls.__name__}(): expected sizes (ints) or one sequence of data, got "
                        f"({', '.join(type(a).__name__ for a in args)})")

    def __repr__(cls):
        return f"<class 'torch.{cls.__name__}'>"


def _legacy(name, dtype):
    return _LegacyType(name, (), {"dtype": dtype, "__module__": __name__,
                                  "__doc__": f"torch.{name}: {dtype.name} tensors on the cpu"})


FloatTensor = _legacy("FloatTensor", dtypes.float32)
DoubleTensor = _legacy("DoubleTensor", dtypes.float64)
LongTensor = _legacy("LongTensor", dtypes.int64)
BoolTensor = _legacy("BoolTensor", dtypes.bool_)
