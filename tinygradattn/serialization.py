"""tga.save / tga.load: checkpoints as standard .safetensors files, written atomically.

Every tensor of the saved object goes into the safetensors file under a flattened name
("model.wte.weight", "optimizer.state.0.exp_avg"; a flat dict of tensors keeps its own keys,
so a state_dict file is exactly what safetensors.numpy / safetensors.torch expect). Whatever
is not a tensor (nesting, numbers, strings, configs, the optimizer's hyper-parameters) is
JSON in the file's `__metadata__` under the key "tinygradattn": one file, still standard.

    header metadata  {"format": "pt", "tinygradattn": "<JSON skeleton>"}
    skeleton         the object with each tensor replaced by {"__tensor__": name}; tuples as
                     {"__tuple__": [...]}; a dict whose keys are not all plain strings as
                     {"__dict__": [[key, value], ...]} (optimizer state is keyed by ints)

Writes are atomic: the bytes go to a temporary file in the target's directory, which is
flushed and fsync'ed, then os.replace'd over the target, then the directory is fsync'ed. A
crash or an error mid-save leaves the previous file intact (and at worst a stray
".<name>.*.tmp" beside it).
"""
import json
import os
import struct
import tempfile

from .backend import get_backend
from .tensor import Tensor

_META_KEY = "tinygradattn"
_CHUNK_BYTES = 1 << 24                   # written in pieces of 16 MiB


# ---- save ---------------------------------------------------------------------------------------
def save(obj, path):
    """Save a dict of tensors (a state_dict), or any nesting of dicts / lists / tuples holding
    tensors, numbers, strings, bools and None, to one .safetensors file, atomically.

    Args:
        obj: the object. Tensors are saved detached, as their values on the host.
        path: the file to write (str or os.PathLike); replaced only once fully written.

    Example:
        >>> import os, tempfile, tinygradattn as tga
        >>> path = os.path.join(tempfile.mkdtemp(), "ckpt.safetensors")
        >>> tga.save({"w": tga.ones(2), "step": 3}, path)
        >>> ckpt = tga.load(path)
        >>> ckpt["w"].tolist(), ckpt["step"]
        ([1.0, 1.0], 3)
    """
    path = _check_path(path)
    arrays, names = {}, {}
    skeleton = _encode(obj, "", arrays, names)
    metadata = {"format": "pt", _META_KEY: json.dumps(skeleton)}
    from safetensors.numpy import save as st_save
    _atomic_write(path, st_save(arrays, metadata=metadata))


def _encode(x, name, arrays, names):
    """The JSON skeleton of x; tensors are put in arrays under a unique flattened name."""
    if isinstance(x, Tensor):
        if id(x) not in names:                      # a tensor saved twice is stored once
            key = name or "tensor"
            n = 1
            while key in arrays:
                n += 1
                key = f"{name or 'tensor'}#{n}"
            names[id(x)] = key
            arrays[key] = x.detach().cpu().numpy()
        if x.device != "cpu":                       # where load() puts it back by default
            return {"__tensor__": names[id(x)], "device": x.device}
        return {"__tensor__": names[id(x)]}
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    prefix = name + "." if name else ""
    if isinstance(x, list):
        return [_encode(v, f"{prefix}{i}", arrays, names) for i, v in enumerate(x)]
    if isinstance(x, tuple):
        return {"__tuple__": [_encode(v, f"{prefix}{i}", arrays, names)
                              for i, v in enumerate(x)]}
    if isinstance(x, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in x):
            return {k: _encode(v, prefix + k, arrays, names) for k, v in x.items()}
        return {"__dict__": [[_encode_key(k, name), _encode(v, f"{prefix}{k}", arrays, names)]
                             for k, v in x.items()]}
    raise TypeError(f"tga.save: cannot save an object of type {type(x).__name__} at "
                    f"'{name or '<root>'}' (tensors, dicts, lists, tuples, numbers, strings, "
                    f"bools and None can be saved)")


def _encode_key(k, name):
    if k is None or isinstance(k, (bool, int, float, str)):
        return k
    if isinstance(k, tuple):
        return {"__tuple__": [_encode_key(v, name) for v in k]}
    raise TypeError(f"tga.save: cannot save a dict key of type {type(k).__name__} in "
                    f"'{name or '<root>'}'")


def _check_path(path):
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"expected a file path (str or os.PathLike), got {type(path).__name__}")
    return os.fspath(path)


def _write_chunk(f, chunk):
    f.write(chunk)


def _atomic_write(path, data):
    """Write data to path so that path always holds either its old or its new content."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                               dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            view = memoryview(data)
            for start in range(0, len(view), _CHUNK_BYTES):
                _write_chunk(f, view[start:start + _CHUNK_BYTES])
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _file_mode(path))
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(directory)


def _file_mode(path):
    """The mode the file would get from open(): the old file's, else 0o666 minus the umask."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _fsync_dir(directory):
    """Make the rename durable (POSIX); a no-op where directories cannot be opened."""
    try:
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


# ---- load ---------------------------------------------------------------------------------------
def load(path, map_location=None, *, weights_only=None, mmap=None):
    """Load a file written by tga.save (or any .safetensors file: a dict of tensors).

    Args:
        path: the file.
        map_location: None (each tensor back on the device it was saved from; cpu for a
            plain safetensors file) or a device ("cpu", "cuda") for every tensor.
        weights_only, mmap: torch.load's switches, accepted for scripts that pass them: a
            file is only ever parsed (safetensors and JSON), never unpickled, and read whole.

    Returns:
        the saved object with tga tensors in place of the saved ones (fresh, writable copies;
        a tensor saved twice comes back as one tensor); for a plain safetensors file, a dict
        name -> tensor in the file's order.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not a safetensors file (its header is not one).
        RuntimeError: the file is truncated, or its tinygradattn metadata is damaged.
    """
    path = _check_path(path)
    if map_location is not None and not isinstance(map_location, str):
        raise TypeError(f"tga.load: map_location must be None or a device string such as "
                        f"'cpu' or 'cuda', got {type(map_location).__name__}")
    if map_location is not None:
        get_backend(map_location)                   # an unknown or absent device: say so now
    if not os.path.exists(path):
        raise FileNotFoundError(f"tga.load: no such file: '{path}'")
    with open(path, "rb") as f:
        data = f.read()
    header = _read_header(path, data)
    from safetensors.numpy import load as st_load
    try:
        arrays = st_load(data)
    except Exception as e:                          # noqa: BLE001 - safetensors' own error type
        raise ValueError(f"tga.load: '{path}' could not be read by safetensors' numpy API "
                         f"(a damaged file, or a dtype numpy lacks such as bfloat16): "
                         f"{e}") from None
    from .creation import tensor
    tensors = {}
    for key in header:
        if key != "__metadata__":
            tensors[key] = tensor(arrays[key])      # a copy: the bytes' views are read-only
    meta = header.get("__metadata__") or {}
    if _META_KEY not in meta:
        return {k: t.to(map_location or "cpu") for k, t in tensors.items()}
    try:
        skeleton = json.loads(meta[_META_KEY])
        return _decode(skeleton, tensors, map_location)
    except (ValueError, KeyError, TypeError) as e:
        raise RuntimeError(f"tga.load: '{path}' has damaged tinygradattn metadata: "
                           f"{type(e).__name__}: {e}") from None


def _read_header(path, data):
    """The JSON header of a safetensors file, with the size checks that name the problem."""
    size = len(data)
    if size < 8:
        raise ValueError(f"tga.load: '{path}' is not a safetensors file ({size} bytes; one "
                         f"starts with an 8-byte header length)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > 100_000_000:
        raise ValueError(f"tga.load: '{path}' is not a safetensors file (its first 8 bytes "
                         f"give a header of {n} bytes)")
    if 8 + n > size:
        raise RuntimeError(f"tga.load: '{path}' is truncated: the header needs {8 + n} bytes, "
                           f"the file has {size}")
    try:
        header = json.loads(data[8:8 + n])
        if not isinstance(header, dict):
            raise ValueError("the header is not a JSON object")
    except ValueError as e:
        raise ValueError(f"tga.load: '{path}' is not a safetensors file (bad header: "
                         f"{e})") from None
    end = max([v["data_offsets"][1] for k, v in header.items()
               if k != "__metadata__" and isinstance(v, dict) and "data_offsets" in v],
              default=0)
    if 8 + n + end > size:
        raise RuntimeError(f"tga.load: '{path}' is truncated: its tensors need "
                           f"{8 + n + end} bytes, the file has {size}")
    return header


def _decode(x, tensors, device):
    """The object of skeleton x; tensors moved to device (None: where each was saved from;
    a tensor saved twice stays one tensor)."""
    if isinstance(x, list):
        return [_decode(v, tensors, device) for v in x]
    if isinstance(x, dict):
        if "__tensor__" in x:
            key = x["__tensor__"]
            target = device or x.get("device", "cpu")
            if tensors[key].device != target.split(":")[0]:
                tensors[key] = tensors[key].to(target)
            return tensors[key]
        if "__tuple__" in x:
            return tuple(_decode(v, tensors, device) for v in x["__tuple__"])
        if "__dict__" in x:
            return {_decode_key(k): _decode(v, tensors, device) for k, v in x["__dict__"]}
        return {k: _decode(v, tensors, device) for k, v in x.items()}
    return x


def _decode_key(k):
    if isinstance(k, dict) and "__tuple__" in k:
        return tuple(_decode_key(v) for v in k["__tuple__"])
    return k
