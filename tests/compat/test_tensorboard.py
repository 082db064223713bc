"""torch.utils.tensorboard.SummaryWriter (scalars): the event file it writes is a valid TFRecord
stream of tensorboard Events, read back here by an independent decoder (and by tensorboard's
own reader when that package is installed)."""
import os
import struct

import pytest

import tinygradattn as tga
from tinygradattn.utils import tensorboard as tb
from tinygradattn.utils.tensorboard import SummaryWriter


def _crc32c_bitwise(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def _masked(crc):
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def _records(path):
    """The payloads of a TFRecord file, checking both CRCs of every record."""
    data = open(path, "rb").read()
    out, i = [], 0
    while i < len(data):
        header = data[i:i + 8]
        (n,) = struct.unpack("<Q", header)
        (crc_len,) = struct.unpack("<I", data[i + 8:i + 12])
        assert crc_len == _masked(_crc32c_bitwise(header))
        payload = data[i + 12:i + 12 + n]
        (crc_data,) = struct.unpack("<I", data[i + 12 + n:i + 16 + n])
        assert crc_data == _masked(_crc32c_bitwise(payload))
        out.append(payload)
        i += 16 + n
    return out


def _fields(buf):
    """Decode one protobuf message into [(field, wire, value)]."""
    out, i = [], 0

    def varint():
        nonlocal i
        shift = value = 0
        while True:
            b = buf[i]
            i += 1
            value |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return value
    while i < len(buf):
        key = varint()
        field, wire = key >> 3, key & 7
        if wire == 0:
            out.append((field, wire, varint()))
        elif wire == 1:
            out.append((field, wire, struct.unpack("<d", buf[i:i + 8])[0]))
            i += 8
        elif wire == 5:
            out.append((field, wire, struct.unpack("<f", buf[i:i + 4])[0]))
            i += 4
        else:
            n = varint()
            out.append((field, wire, buf[i:i + n]))
            i += n
    return out


def _scalars(path):
    """[(step, tag, value)] of the scalar events of a file; checks the file_version record."""
    records = _records(path)
    first = dict((f, v) for f, _, v in _fields(records[0]))
    assert first[3] == b"brain.Event:2" and isinstance(first[1], float)
    out = []
    for r in records[1:]:
        ev = {f: v for f, _, v in _fields(r)}
        (value,) = [v for f, _, v in _fields(ev[5]) if f == 1]
        val = {f: v for f, _, v in _fields(value)}
        out.append((ev.get(2), val[1].decode(), val[2]))
    return out


def test_crc32c_known_value():
    assert tb.crc32c(b"123456789") == 0xE3069283
    assert tb.crc32c(b"") == 0
    data = bytes(range(256)) * 3
    assert tb.crc32c(data) == _crc32c_bitwise(data)


def test_scalars_round_trip(tmp_path):
    with SummaryWriter(log_dir=str(tmp_path), filename_suffix=".x") as w:
        assert w.get_logdir() == str(tmp_path)
        w.add_scalar("Loss/train", 1.5, 0)
        w.add_scalar("Loss/train", tga.tensor(0.25), 7)           # a 0-d tensor
        w.add_scalar("lr", 3, 2 ** 40)                              # an int, a large step
        w.add_scalar("neg", -2.0, -1)                               # a negative int64 step
        w.flush()
    (name,) = os.listdir(tmp_path)
    assert name.startswith("events.out.tfevents.") and name.endswith(".x")
    got = _scalars(tmp_path / name)
    assert got == [(0, "Loss/train", 1.5), (7, "Loss/train", 0.25), (2 ** 40, "lr", 3.0),
                   ((1 << 64) - 1, "neg", -2.0)]                  # int64 -1 as its varint


def test_add_scalars_and_default_logdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    w = SummaryWriter(comment="_run")
    assert w.get_logdir().startswith("runs" + os.sep) and w.get_logdir().endswith("_run")
    w.add_scalars("loss", {"a": 1.0, "b": 2.0}, 3)
    w.close()
    for tag, value in (("a", 1.0), ("b", 2.0)):
        folder = os.path.join(w.get_logdir(), f"loss_{tag}")
        (name,) = os.listdir(folder)
        assert _scalars(os.path.join(folder, name)) == [(3, "loss", value)]


def test_unsupported_forms_say_so(tmp_path):
    w = SummaryWriter(str(tmp_path))
    with pytest.raises(NotImplementedError, match="new_style"):
        w.add_scalar("x", 1.0, 0, new_style=True)
    assert not hasattr(w, "add_image")
    w.close()


def test_read_by_tensorboard(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    with SummaryWriter(str(tmp_path)) as w:
        for step in range(3):
            w.add_scalar("loss", 1.0 / (step + 1), step)
    acc = EventAccumulator(str(tmp_path))
    acc.Reload()
    assert [(e.step, round(e.value, 6)) for e in acc.Scalars("loss")] == \
        [(0, 1.0), (1, 0.5), (2, round(1 / 3, 6))]
