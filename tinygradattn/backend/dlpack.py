"""DLPack, the array-exchange protocol: device codes, capsules, and the CPU's import / export.

A producer's `__dlpack__()` returns a PyCapsule named "dltensor" (DLPack < 1.0) or
"dltensor_versioned" (>= 1.0) holding a pointer to a managed DLTensor:

    DLTensor { void* data; DLDevice {int32 device_type, device_id}; int32 ndim;
               DLDataType {uint8 code, bits; uint16 lanes}; int64* shape; int64* strides;
               uint64 byte_offset }
    DLManagedTensor          { DLTensor dl_tensor; void* manager_ctx; void* deleter }
    DLManagedTensorVersioned { uint32 major, minor; void* manager_ctx; void* deleter;
                               uint64 flags; DLTensor dl_tensor }

The header (device and dtype) is read here with ctypes, without consuming the capsule, so a
wrong device or dtype is refused by name before any array is made; numpy's `np.from_dlpack`
then does the import itself (zero-copy: the numpy array owns the capsule and calls the
producer's deleter when it dies). Export on the CPU is numpy's `ndarray.__dlpack__`.

Sits in backend/ (it names numpy); backend/cpu.py and backend/cuda.py call it, the Tensor
layer reaches it only through a backend, and `tga.utils.dlpack` re-exports DLDeviceType.
"""
import ctypes
import enum

import numpy as np


class DLDeviceType(enum.IntEnum):
    """DLPack's device codes (dlpack.h), as torch.utils.dlpack.DLDeviceType names them."""
    kDLCPU = 1
    kDLCUDA = 2
    kDLCUDAHost = 3
    kDLOpenCL = 4
    kDLVulkan = 7
    kDLMetal = 8
    kDLVPI = 9
    kDLROCM = 10
    kDLROCMHost = 11
    kDLExtDev = 12
    kDLCUDAManaged = 13
    kDLOneAPI = 14
    kDLWebGPU = 15
    kDLHexagon = 16
    kDLMAIA = 17


# device codes whose memory the CPU can address directly, and which of our devices takes them
_DEVICE_NAMES = {DLDeviceType.kDLCPU: "cpu", DLDeviceType.kDLCUDAHost: "cpu",
                 DLDeviceType.kDLCUDAManaged: "cpu", DLDeviceType.kDLCUDA: "cuda"}

# (type code, bits) -> dtype name; codes: 0 int, 1 uint, 2 float, 4 bfloat, 5 complex, 6 bool
_DTYPE_NAMES = {(0, 8): "int8", (0, 16): "int16", (0, 32): "int32", (0, 64): "int64",
                (1, 8): "uint8", (1, 16): "uint16", (1, 32): "uint32", (1, 64): "uint64",
                (2, 16): "float16", (2, 32): "float32", (2, 64): "float64",
                (4, 16): "bfloat16", (5, 64): "complex64", (5, 128): "complex128",
                (6, 8): "bool"}
SUPPORTED_DTYPES = ("float32", "float64", "int64", "bool")

_NAME = b"dltensor"
_NAME_VERSIONED = b"dltensor_versioned"


class _DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class _DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class _DLTensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("device", _DLDevice), ("ndim", ctypes.c_int32),
                ("dtype", _DLDataType), ("shape", ctypes.c_void_p),
                ("strides", ctypes.c_void_p), ("byte_offset", ctypes.c_uint64)]


class _DLManagedTensorVersioned(ctypes.Structure):
    _fields_ = [("major", ctypes.c_uint32), ("minor", ctypes.c_uint32),
                ("manager_ctx", ctypes.c_void_p), ("deleter", ctypes.c_void_p),
                ("flags", ctypes.c_uint64), ("dl_tensor", _DLTensor)]


# our own prototypes of the C API (setting restype on ctypes.pythonapi's shared function
# objects would change them for every other user in the process)
_capsule_is_valid = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.py_object, ctypes.c_char_p)(
    ("PyCapsule_IsValid", ctypes.pythonapi))
_capsule_pointer = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.py_object, ctypes.c_char_p)(
    ("PyCapsule_GetPointer", ctypes.pythonapi))


def is_capsule(obj):
    """True for a PyCapsule (what a legacy `to_dlpack` returns)."""
    return type(obj).__name__ == "PyCapsule"


def _header(capsule):
    """The DLTensor of an unconsumed DLPack capsule (read in place; the capsule stays whole).
    BufferError for a capsule already consumed or not a DLPack one."""
    if _capsule_is_valid(capsule, _NAME_VERSIONED):
        ptr = _capsule_pointer(capsule, _NAME_VERSIONED)
        return _DLManagedTensorVersioned.from_address(ptr).dl_tensor
    if _capsule_is_valid(capsule, _NAME):
        return _DLTensor.from_address(_capsule_pointer(capsule, _NAME))   # offset 0
    raise BufferError("from_dlpack: the capsule is not an unconsumed DLPack capsule (a DLPack "
                      "capsule can be imported only once)")


def device_name(device_type, device_id=0):
    """Our device for a DLPack device ('cpu' or 'cuda'); BufferError naming any other."""
    name = _DEVICE_NAMES.get(int(device_type))
    if name is None:
        try:
            label = DLDeviceType(int(device_type)).name
        except ValueError:
            label = "unknown"
        raise BufferError(f"from_dlpack: DLPack device type {int(device_type)} ({label}, index "
                          f"{device_id}) is not supported: tinygradattn has cpu and cuda tensors")
    return name


def source_device(obj):
    """(device_type, device_id) of an object with __dlpack__ / __dlpack_device__, or of a
    capsule; TypeError naming the type of anything else."""
    if is_capsule(obj):
        header = _header(obj)
        return header.device.device_type, header.device.device_id
    if not hasattr(obj, "__dlpack__"):
        raise TypeError(f"from_dlpack: expected an object with __dlpack__ (a numpy array, a "
                        f"torch tensor, ...) or a DLPack capsule, got {type(obj).__name__}")
    if not hasattr(obj, "__dlpack_device__"):
        return DLDeviceType.kDLCPU, 0        # a producer without it: its capsule will say
    device_type, device_id = obj.__dlpack_device__()
    return int(device_type), int(device_id)


def take_capsule(obj):
    """A capsule from obj: itself, or obj.__dlpack__() asking for DLPack 1.0 first (a producer
    that does not know max_version is asked again plainly, as torch and numpy do)."""
    if is_capsule(obj):
        return obj
    try:
        return obj.__dlpack__(max_version=(1, 0))
    except TypeError:
        return obj.__dlpack__()


def check_dtype(capsule):
    """The dtype name of capsule's tensor; TypeError naming it unless we support it."""
    dtype = _header(capsule).dtype
    name = _DTYPE_NAMES.get((dtype.code, dtype.bits), f"code {dtype.code} of {dtype.bits} bits")
    if dtype.lanes != 1:
        name = f"{name} x{dtype.lanes} lanes"
    if name not in SUPPORTED_DTYPES:
        raise TypeError(f"from_dlpack: unsupported dtype {name}: tinygradattn supports "
                        f"{', '.join(SUPPORTED_DTYPES)}; convert it before the exchange (memory "
                        "is shared, so it is not converted silently)")
    return name


class _Holder:
    """Hands an already taken capsule to np.from_dlpack, which asks for it by __dlpack__."""

    def __init__(self, capsule):
        self.capsule = capsule

    def __dlpack__(self, **kwargs):
        return self.capsule

    def __dlpack_device__(self):
        return DLDeviceType.kDLCPU, 0


class _Writable:
    """A read-only array's memory offered as writable through __array_interface__ (numpy's
    asarray of it is a view whose base keeps the array, and so the capsule, alive)."""

    def __init__(self, array):
        self.array = array
        interface = dict(array.__array_interface__)
        interface["data"] = (interface["data"][0], False)        # (pointer, read-only flag)
        self.__array_interface__ = interface


def cpu_from_dlpack(obj):
    """A numpy array on obj's memory (no copy): obj has __dlpack__ on a CPU-addressable
    device, or is a capsule. TypeError for a dtype we lack, BufferError for another device.

    Writable unless the producer flags it read-only. NOTE: a pre-1.0 capsule ("dltensor",
    what torch.utils.dlpack.to_dlpack gives) cannot carry that flag; numpy then makes its
    array read-only to be safe, but torch treats such memory as writable, and so do we."""
    capsule = take_capsule(obj)
    header = _header(capsule)
    if device_name(header.device.device_type, header.device.device_id) != "cpu":
        raise BufferError("from_dlpack: the capsule's memory is on device type "
                          f"{header.device.device_type}, not the CPU")
    check_dtype(capsule)
    is_legacy = bool(_capsule_is_valid(capsule, _NAME))
    array = np.from_dlpack(_Holder(capsule))
    if is_legacy and not array.flags.writeable:
        array = np.asarray(_Writable(array))
    return array


def cpu_to_dlpack(x, stream=None, max_version=None, dl_device=None, copy=None):
    """A DLPack capsule of x (a numpy array, or a numpy scalar, exported as a fresh 0-d copy)
    sharing its memory; a versioned capsule when max_version >= (1, 0), as numpy decides.

    BufferError for a stream other than None / -1 (the CPU has no streams), and for negative
    strides (a flipped view) unless copy=True: consumers such as torch cannot take them."""
    if stream is not None and stream != -1:
        raise BufferError(f"__dlpack__: stream must be None on the cpu, got {stream!r}")
    x = np.asarray(x)
    if copy is not True and any(s < 0 for s in x.strides):
        raise BufferError(f"__dlpack__: the tensor has negative strides {x.strides} (bytes), "
                          "which DLPack consumers such as torch cannot take: export "
                          "t.contiguous(), or pass copy=True")
    return x.__dlpack__(stream=None, max_version=max_version, dl_device=dl_device, copy=copy)
