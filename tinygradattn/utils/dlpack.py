"""torch.utils.dlpack's names: from_dlpack, to_dlpack (the legacy capsule), DLDeviceType.

The protocol itself is Tensor.__dlpack__ / __dlpack_device__ and tga.from_dlpack; this module
is where PyTorch programs that say `torch.utils.dlpack.to_dlpack(t)` find it.
"""
from ..backend.dlpack import DLDeviceType
from ..creation import from_dlpack
from ..tensor import Tensor

__all__ = ["DLDeviceType", "from_dlpack", "to_dlpack"]


def to_dlpack(tensor):
    """A DLPack capsule ("dltensor", DLPack 0.8) sharing tensor's memory
    (torch.utils.dlpack.to_dlpack). Import it once, with from_dlpack of any library. As
    torch's, it exports a tensor that requires grad too (the capsule carries data, not the
    graph; only the protocol's Tensor.__dlpack__ refuses one); its other errors are
    Tensor.__dlpack__'s.

        >>> import tinygradattn as tga
        >>> t = tga.arange(3)
        >>> from_dlpack(to_dlpack(t)).tolist()
        [0, 1, 2]
    """
    if not isinstance(tensor, Tensor):
        raise TypeError(f"to_dlpack: expected a Tensor, got {type(tensor).__name__}")
    return tensor.detach().__dlpack__()
