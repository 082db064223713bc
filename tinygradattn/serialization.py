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
".<name>.*.tmp" beside it, removed by the next save of that target: a save in progress holds
an flock on its temporary file, so only an abandoned one is taken).

Every tensor's bytes and the metadata carry a crc32 (metadata key "tinygradattn_crc32"),
checked by load; safetensors_io.py reads and checks the bytes.
"""
import json
import os
import re
import secrets
import stat
import warnings

from . import safetensors_io as st_io
from .backend import get_backend
from .safetensors_io import CheckpointError
from .tensor import Tensor

try:
    import fcntl                         # POSIX: a temporary file in use is locked
except ImportError:                      # Windows: an open file cannot be removed anyway
    fcntl = None

__all__ = ["save", "load", "verify", "CheckpointError"]

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
    metadata[st_io.CHECKSUM_KEY] = st_io.checksum_record(arrays, metadata)
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
    directory, base = os.path.split(os.path.abspath(path))
    _remove_stale_temps(directory, base)
    fd, tmp = _create_temp(directory, base)
    try:
        with os.fdopen(fd, "wb") as f:
            view = memoryview(data)
            for start in range(0, len(view), _CHUNK_BYTES):
                _write_chunk(f, view[start:start + _CHUNK_BYTES])
            f.flush()
            os.fsync(f.fileno())
            _keep_mode(path, tmp)
            if fcntl is not None:        # replaced while still locked: no cleaner can take it
                os.replace(tmp, path)
        if fcntl is None:                # Windows renames no open file
            os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(directory)


def _temp_pattern(base):
    """The names of this target's temporary files: ".<base>.<random>.tmp" (mkstemp's random
    part in older versions, hex digits now)."""
    return re.compile(r"\." + re.escape(base) + r"\.[A-Za-z0-9_]+\.tmp\Z")


def _create_temp(directory, base):
    """(fd, path) of a new temporary file beside the target, locked while it is written.

    Created with mode 0o666, which the kernel narrows by the umask (and any default ACL)
    exactly as for open(path, "wb"): the new file's mode is learnt without calling os.umask,
    which would change the mode for every thread of the process for a moment."""
    while True:
        tmp = os.path.join(directory, f".{base}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                         0o666)
        except FileExistsError:
            continue
        if fcntl is None:
            return fd, tmp
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:                  # a file system without locks: unlocked, still works
            return fd, tmp
        if os.fstat(fd).st_nlink > 0:    # not removed by a cleaner between open and lock
            return fd, tmp
        os.close(fd)


def _remove_stale_temps(directory, base):
    """Remove the temporary files a killed save of this target left behind. A save still in
    progress (in any process) holds a lock on its file, so only abandoned ones go."""
    pattern = _temp_pattern(base)
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        if pattern.match(name):
            _remove_if_abandoned(os.path.join(directory, name))


def _remove_if_abandoned(tmp):
    try:
        fd = os.open(tmp, os.O_RDONLY)
    except OSError:
        return
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)    # OSError: a live save holds it
        os.unlink(tmp)
    except OSError:
        pass
    finally:
        os.close(fd)


def _keep_mode(path, tmp):
    """A replaced file keeps its mode; a new one keeps the temporary file's (open()'s)."""
    try:
        mode = os.stat(path).st_mode & 0o7777
    except OSError:
        return
    os.chmod(tmp, mode)


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

    The header is read and checked first (types, offsets against the file's size, sizes
    against shapes), then each tensor's bytes, verified against the checksum tga.save stores
    (files without one, older saves or other writers', load unchecked). float16 and bfloat16
    tensors load converted to float32, with a UserWarning naming them; narrow integers load
    as int64.

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
        FileNotFoundError: no such file (IsADirectoryError: a directory).
        CheckpointError: every damaged or unsupported file: not a safetensors file (or not a
            regular file), truncated, a malformed header, a checksum that does not match,
            damaged tinygradattn metadata, a dtype such as complex64. A subclass of both
            ValueError and RuntimeError; its message names the file and the fault, its
            `path` and `fault` attributes hold them.
    """
    path = _check_path(path)
    if map_location is not None and not isinstance(map_location, str):
        raise TypeError(f"tga.load: map_location must be None or a device string such as "
                        f"'cpu' or 'cuda', got {type(map_location).__name__}")
    if map_location is not None:
        get_backend(map_location)                   # an unknown or absent device: say so now
    header, arrays = _read_file(path, keep=True)
    _warn_converted(path, header)
    from .creation import from_numpy
    tensors = {name: from_numpy(a) for name, a in arrays.items()}   # fresh arrays: no copy
    if _META_KEY not in header.metadata:
        return {k: t.to(map_location or "cpu") for k, t in tensors.items()}

    def lookup(key, saved_device):
        target = map_location or saved_device or "cpu"
        if not isinstance(target, str):
            raise TypeError(f"device {target!r} is not a string")
        if tensors[key].device != target.split(":")[0]:
            tensors[key] = tensors[key].to(target)
        return tensors[key]
    return _decode_skeleton(path, header.metadata[_META_KEY], lookup)


def verify(path):
    """Check a file as tga.load does (header, every checksum, the tinygradattn metadata)
    without building its tensors; None when it would load. Raises what load raises."""
    path = _check_path(path)
    header, _ = _read_file(path, keep=False)
    names = {e.name for e in header.entries}

    def lookup(key, saved_device):
        if key not in names:
            raise KeyError(key)
    if _META_KEY in header.metadata:
        _decode_skeleton(path, header.metadata[_META_KEY], lookup)


def _read_file(path, keep):
    """(header, {name: numpy array}) of path; arrays dropped after their check unless keep."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"tga.load: no such file: '{path}'") from None
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(f"tga.load: '{path}' is a directory, not a checkpoint file")
    if not stat.S_ISREG(mode):                      # /dev/zero, a pipe: never read blindly
        raise CheckpointError(path, "is not a regular file (a device, a pipe or a socket)")
    arrays = {}
    with open(path, "rb") as f:
        header = st_io.read_header(f, path, os.fstat(f.fileno()).st_size)
        checksums = st_io.read_checksums(path, header)
        for entry in header.entries:
            array = st_io.read_array(f, path, header, entry, checksums)
            if keep:
                arrays[entry.name] = array
    return header, arrays


def _warn_converted(path, header):
    halves = [e.name for e in header.entries if e.dtype in st_io.CONVERTED]
    if halves:
        shown = ", ".join(halves[:5]) + (f" and {len(halves) - 5} more" if len(halves) > 5 else "")
        warnings.warn(f"tga.load: '{path}': {len(halves)} float16/bfloat16 tensor(s) converted "
                      f"to float32 (tinygradattn has no half-precision tensors): {shown}",
                      UserWarning, stacklevel=3)


def _decode_skeleton(path, text, lookup):
    try:
        return _decode(json.loads(text), lookup)
    except (ValueError, KeyError, TypeError, RecursionError) as e:
        raise CheckpointError(path, f"has damaged tinygradattn metadata: "
                                    f"{type(e).__name__}: {' '.join(str(e).split())[:200]}"
                              ) from None


def _decode(x, lookup):
    """The object of skeleton x; lookup(name, saved_device) gives each tensor. A malformed
    skeleton raises ValueError / KeyError / TypeError."""
    if isinstance(x, list):
        return [_decode(v, lookup) for v in x]
    if not isinstance(x, dict):
        return x
    if "__tensor__" in x:
        return lookup(x["__tensor__"], x.get("device"))
    if "__tuple__" in x:
        return tuple(_decode(v, lookup) for v in _as_list(x["__tuple__"], "__tuple__"))
    if "__dict__" in x:
        return {_decode_key(k): _decode(v, lookup) for k, v in _as_list(x["__dict__"], "__dict__")}
    return {k: _decode(v, lookup) for k, v in x.items()}


def _as_list(x, what):
    if not isinstance(x, list):
        raise TypeError(f"{what} must hold a list, got {type(x).__name__}")
    return x


def _decode_key(k):
    if isinstance(k, dict) and "__tuple__" in k:
        return tuple(_decode_key(v) for v in _as_list(k["__tuple__"], "__tuple__"))
    if isinstance(k, (dict, list)):
        raise TypeError(f"a dict key cannot be a {type(k).__name__}")
    return k
