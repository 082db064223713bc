"""The safetensors file format at the byte level: header checks, tensor bytes, checksums.

    file    = u64 n (little-endian) | n bytes of JSON header | data
    header  = {"__metadata__": {str: str}, NAME: {"dtype": "F32", "shape": [2, 3],
               "data_offsets": [begin, end]}, ...}     # offsets relative to the data's start;
              the tensors tile the data exactly (no gap, no overlap, nothing after), as
              safetensors itself requires

Sits at the bottom with host.py (it names numpy): serialization.py hands it an open file and
gets validated entries and numpy arrays back. The header is read and checked in full (types,
bounds against the file's size, sizes against shapes) before one tensor byte is read, so a
damaged or hostile file costs at most its header. Every fault raises CheckpointError.

Checksums: tga.save stores {NAME: crc32 of its bytes, "__metadata__": crc32 of the other
metadata} as JSON under the metadata key CHECKSUM_KEY; files without it (older saves, other
writers) load unchecked.
"""
import json
import math
import struct
import sys
import zlib
from typing import NamedTuple

import numpy as np

MAX_HEADER_BYTES = 100_000_000           # safetensors' own limit
CHECKSUM_KEY = "tinygradattn_crc32"
_MAX_NDIM = 64                           # numpy's

# safetensors dtype -> (numpy dtype of the bytes, numpy dtype of the loaded array)
_DTYPES = {
    "F64": ("<f8", np.float64), "F32": ("<f4", np.float32), "I64": ("<i8", np.int64),
    "BOOL": ("|u1", np.bool_),
    # narrow integers are widened to int64, as tga.tensor does with such numpy arrays
    "I32": ("<i4", np.int64), "I16": ("<i2", np.int64), "I8": ("|i1", np.int64),
    "U8": ("|u1", np.int64), "U16": ("<u2", np.int64), "U32": ("<u4", np.int64),
    # no half types here: converted to float32 (the loader warns)
    "F16": ("<f2", np.float32), "BF16": ("<u2", np.float32),
}
CONVERTED = ("F16", "BF16")
_REFUSED = {"U64": "uint64 (values may not fit int64)", "C64": "complex64",
            "F8_E4M3": "float8", "F8_E5M2": "float8", "F8_E8M0": "float8", "F4": "float4",
            "F6_E2M3": "float6", "F6_E3M2": "float6"}


class CheckpointError(ValueError, RuntimeError):
    """A damaged or unsupported checkpoint file. `path` is the file, `fault` what is wrong
    with it (a clause: "is truncated: ...", "is damaged: ..."). A ValueError and a
    RuntimeError both, so that `except` clauses written for either still catch it."""

    def __init__(self, path, fault):
        self.path, self.fault = path, fault
        super().__init__(f"tga.load: '{path}' {fault}")

    def __reduce__(self):
        return (type(self), (self.path, self.fault))


class Entry(NamedTuple):
    """One tensor of the header; begin / end are offsets into the data."""
    name: str
    dtype: str
    shape: tuple
    begin: int
    end: int


class Header(NamedTuple):
    entries: list           # [Entry] in the header's order
    metadata: dict          # str -> str
    data_start: int         # 8 + n
    size: int               # the file's size


# ---- header ---------------------------------------------------------------------------------
def read_header(f, path, size):
    """The validated header of the open file f (positioned at 0) of `size` bytes."""
    if size < 8:
        raise CheckpointError(path, f"is not a safetensors file ({size} bytes; one starts with "
                                    f"an 8-byte header length)")
    (n,) = struct.unpack("<Q", f.read(8))
    if n > MAX_HEADER_BYTES:
        raise CheckpointError(path, f"is not a safetensors file (its first 8 bytes give a "
                                    f"header of {n} bytes)")
    if 8 + n > size:
        raise CheckpointError(path, f"is truncated: the header needs {8 + n} bytes, the file "
                                    f"has {size}")
    header = _parse_json(path, f.read(n))
    metadata = _check_metadata(path, header.pop("__metadata__", None))
    entries = [_check_entry(path, name, info) for name, info in header.items()]
    _check_layout(path, entries, 8 + n, size)
    return Header(entries, metadata, 8 + n, size)


def _parse_json(path, raw):
    def no_duplicates(pairs):
        keys = [k for k, _ in pairs]
        if len(set(keys)) != len(keys):
            raise ValueError(f"a key appears twice among {_short(keys)}")
        return dict(pairs)
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=no_duplicates)
        if not isinstance(header, dict):
            raise ValueError("the header is not a JSON object")
    except (ValueError, RecursionError) as e:
        raise CheckpointError(path, f"is not a safetensors file (bad header: "
                                    f"{_short(str(e))})") from None
    return header


def _check_metadata(path, metadata):
    if metadata is None:
        return {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise CheckpointError(path, f"is damaged: __metadata__ must map strings to strings, "
                                    f"got {_short(metadata)}")
    return metadata


def _check_entry(path, name, info):
    """Entry of one header item: types, dtype support, and size == numel * itemsize."""
    def bad(what):
        return CheckpointError(path, f"is damaged: {_tensor(name)}: {what}")
    if not isinstance(info, dict):
        raise bad(f"expected an object with dtype, shape and data_offsets, got {_short(info)}")
    dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    if not isinstance(dtype, str):
        raise bad(f"dtype must be a string, got {_short(dtype)}")
    if dtype not in _DTYPES:
        kind = _REFUSED.get(dtype)
        fault = (f"is unsupported: {_tensor(name)} has dtype {dtype} ({kind}); tinygradattn "
                 f"loads float64/32/16, bfloat16, integer and bool tensors" if kind else
                 f"is damaged: {_tensor(name)}: unknown dtype {_short(dtype)}")
        raise CheckpointError(path, fault)
    if not _is_int_list(shape) or len(shape) > _MAX_NDIM or any(d < 0 for d in shape):
        raise bad(f"shape must be a list of at most {_MAX_NDIM} integers >= 0, "
                  f"got {_short(shape)}")
    if not _is_int_list(offsets) or len(offsets) != 2 or not 0 <= offsets[0] <= offsets[1]:
        raise bad(f"data_offsets must be a list of two integers 0 <= begin <= end, "
                  f"got {_short(offsets)}")
    raw, out = _DTYPES[dtype]
    if math.prod(d for d in shape if d) * np.dtype(out).itemsize > sys.maxsize:
        raise bad(f"shape {_short(shape)} is too large")
    nbytes = math.prod(shape) * np.dtype(raw).itemsize
    if nbytes != offsets[1] - offsets[0]:
        raise bad(f"shape {_short(shape)} of {dtype} needs {nbytes} bytes, data_offsets "
                  f"{_short(offsets)} hold {offsets[1] - offsets[0]}")
    return Entry(name, dtype, tuple(shape), offsets[0], offsets[1])


def _is_int_list(x):
    return isinstance(x, list) and all(isinstance(v, int) and not isinstance(v, bool)
                                       for v in x)


def _check_layout(path, entries, data_start, size):
    """The tensors tile [0, size - data_start) exactly."""
    end = max((e.end for e in entries), default=0)
    if data_start + end > size:
        raise CheckpointError(path, f"is truncated: its tensors need {data_start + end} bytes, "
                                    f"the file has {size}")
    expected = 0
    for e in sorted(entries, key=lambda e: (e.begin, e.end)):
        if e.begin != expected:
            raise CheckpointError(path, f"is damaged: {_tensor(e.name)} starts at data offset "
                                        f"{e.begin}, expected {expected} (tensors overlap or "
                                        f"leave a gap)")
        expected = e.end
    if data_start + expected != size:
        raise CheckpointError(path, f"is damaged: {size - data_start - expected} bytes follow "
                                    f"its last tensor")


def _tensor(name):
    return f"tensor {_short(repr(name))}"


def _short(x, limit=80):
    text = x if isinstance(x, str) else repr(x)
    text = " ".join(text.split())                     # one line, whatever the file holds
    return text if len(text) <= limit else text[:limit - 3] + "..."


# ---- checksums ------------------------------------------------------------------------------
def checksum_record(arrays, metadata):
    """The JSON stored under CHECKSUM_KEY: crc32 of each array's little-endian C-order bytes
    (what safetensors writes) and of the metadata (CHECKSUM_KEY excluded)."""
    record = {name: zlib.crc32(_file_bytes(a)) for name, a in arrays.items()}
    record["__metadata__"] = _metadata_crc(metadata)
    return json.dumps(record)


def _file_bytes(a):
    return np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<")).reshape(-1).view(np.uint8)


def _metadata_crc(metadata):
    items = sorted((k, v) for k, v in metadata.items() if k != CHECKSUM_KEY)
    return zlib.crc32(json.dumps(items).encode("utf-8"))


def read_checksums(path, header):
    """{name: crc32} for the tensors of a file that carries checksums (its metadata's checked
    here), None for one that does not."""
    text = header.metadata.get(CHECKSUM_KEY)
    if text is None:
        return None
    try:
        record = json.loads(text)
        names = [e.name for e in header.entries] + ["__metadata__"]
        crcs = {name: record[name] for name in names}
        if not all(isinstance(c, int) and 0 <= c < 2 ** 32 for c in crcs.values()):
            raise ValueError("a checksum is not a 32-bit integer")
    except (ValueError, KeyError, TypeError, RecursionError) as e:
        raise CheckpointError(path, f"is damaged: its checksum record is unreadable "
                                    f"({type(e).__name__}: {_short(str(e))})") from None
    if _metadata_crc(header.metadata) != crcs["__metadata__"]:
        raise CheckpointError(path, "is damaged: its metadata does not match its checksum")
    return crcs


# ---- tensor bytes ---------------------------------------------------------------------------
def read_array(f, path, header, entry, checksums=None):
    """A fresh, writable numpy array of entry's bytes (checksum verified when given), in the
    dtype tinygradattn computes with (narrow ints -> int64, half types -> float32)."""
    buf = np.empty(entry.end - entry.begin, np.uint8)
    f.seek(header.data_start + entry.begin)
    if f.readinto(memoryview(buf)) != buf.size:
        raise CheckpointError(path, f"is truncated: {_tensor(entry.name)} was cut short "
                                    f"while reading")
    if checksums is not None and zlib.crc32(buf) != checksums[entry.name]:
        raise CheckpointError(path, f"is damaged: the bytes of {_tensor(entry.name)} do not "
                                    f"match their checksum")
    return _convert(path, entry, buf)


def _convert(path, entry, buf):
    raw, out = _DTYPES[entry.dtype]
    if entry.dtype == "BOOL":
        if buf.size and buf.max() > 1:
            raise CheckpointError(path, f"is damaged: bool {_tensor(entry.name)} holds bytes "
                                        f"other than 0 and 1")
        return buf.view(np.bool_).reshape(entry.shape)
    if entry.dtype == "BF16":                         # bfloat16 = the top half of a float32
        wide = buf.view(raw).astype("<u4") << 16
        return wide.view("<f4").astype(np.float32, copy=False).reshape(entry.shape)
    return buf.view(raw).astype(out, copy=False).reshape(entry.shape)
