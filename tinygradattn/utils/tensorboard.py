"""torch.utils.tensorboard's SummaryWriter for scalars, with no TensorBoard install needed.

PyTorch's writer needs the `tensorboard` package; this one writes the same event files by
itself: TFRecord framing (length, masked CRC-32C of the length, payload, masked CRC-32C of the
payload) around `Event` protocol buffers encoded by hand. TensorBoard (and tbparse, and
TensorFlow's summary_iterator) read them as they read PyTorch's:

    events.out.tfevents.<10-digit time>.<host>.<pid>.<n><filename_suffix>
      Event{wall_time, file_version: "brain.Event:2"}           the first record
      Event{wall_time, step, summary{value{tag, simple_value}}} one per add_scalar

What it writes: scalars (add_scalar with new_style=False, PyTorch's default; add_scalars). The
other add_* methods (images, histograms, graphs...) are absent: `tinygradattn run` names the
one a script asks for.
"""
import os
import socket
import struct
import time
from datetime import datetime

__all__ = ["SummaryWriter"]

# ---- CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as TFRecord frames use ---------
_CRC_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC_TABLE.append(_c)


def crc32c(data):
    """CRC-32C of bytes (crc32c(b'123456789') == 0xE3069283)."""
    crc = 0xFFFFFFFF
    for b in data:
        crc = _CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _masked_crc(data):
    crc = crc32c(data)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def tfrecord(payload):
    """One TFRecord: u64 length, u32 masked crc of the length, payload, u32 masked crc of it."""
    length = struct.pack("<Q", len(payload))
    return (length + struct.pack("<I", _masked_crc(length)) + payload
            + struct.pack("<I", _masked_crc(payload)))


# ---- the few protocol-buffer fields an Event with a scalar needs ----------------------------
def _varint(n):
    n &= (1 << 64) - 1                       # int64 fields: negatives as 10-byte two's complement
    out = bytearray()
    while True:
        low = n & 0x7F
        n >>= 7
        if n:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _key(field, wire):
    return _varint(field << 3 | wire)


def _bytes_field(field, data):
    return _key(field, 2) + _varint(len(data)) + data


def event(wall_time, step=None, file_version=None, summary=None):
    """An encoded tensorboard Event: wall_time=1 (double), step=2 (int64),
    file_version=3 (string), summary=5 (Summary)."""
    out = _key(1, 1) + struct.pack("<d", wall_time)
    if step is not None:
        out += _key(2, 0) + _varint(int(step))
    if file_version is not None:
        out += _bytes_field(3, file_version.encode())
    if summary is not None:
        out += _bytes_field(5, summary)
    return out


def scalar_summary(tag, value):
    """An encoded Summary with one Value{tag=1 (string), simple_value=2 (float)}."""
    value = _bytes_field(1, tag.encode()) + _key(2, 5) + struct.pack("<f", value)
    return _bytes_field(1, value)


_FILE_COUNTER = [0]


def _scalar(value):
    """A Python float from a number, a one-element tensor or numpy scalar."""
    if hasattr(value, "item"):
        value = value.item()
    return float(value)


class SummaryWriter:
    """torch.utils.tensorboard.SummaryWriter(log_dir=None, comment='', purge_step=None,
    max_queue=10, flush_secs=120, filename_suffix=''): an event file in log_dir (default
    runs/<Mon><DD>_<HH-MM-SS>_<host><comment>, as PyTorch names it), written as events come
    and flushed by flush(), close() and every flush_secs seconds."""

    def __init__(self, log_dir=None, comment="", purge_step=None, max_queue=10,
                 flush_secs=120, filename_suffix=""):
        if not log_dir:
            stamp = datetime.now().strftime("%b%d_%H-%M-%S")
            log_dir = os.path.join("runs", f"{stamp}_{socket.gethostname()}{comment}")
        self.log_dir = str(log_dir)
        self.purge_step = purge_step
        self.max_queue = max_queue
        self.flush_secs = flush_secs
        self.filename_suffix = filename_suffix
        self._children = {}                   # add_scalars: one writer per sub-tag folder
        self._file = None
        self._open()

    def _open(self):
        os.makedirs(self.log_dir, exist_ok=True)
        _FILE_COUNTER[0] += 1
        name = "events.out.tfevents.%010d.%s.%s.%s%s" % (
            time.time(), socket.gethostname(), os.getpid(), _FILE_COUNTER[0],
            self.filename_suffix)
        self.file_name = os.path.join(self.log_dir, name)
        self._file = open(self.file_name, "wb")
        self._last_flush = time.time()
        self._write(event(time.time(), file_version="brain.Event:2"))
        self._file.flush()

    def _write(self, payload):
        if self._file is None:                 # written after close(): PyTorch reopens
            self._open()
        self._file.write(tfrecord(payload))
        if time.time() - self._last_flush >= self.flush_secs:
            self.flush()

    def get_logdir(self):
        """The folder the event files are written to."""
        return self.log_dir

    def add_scalar(self, tag, scalar_value, global_step=None, walltime=None, new_style=False,
                   double_precision=False):
        """One scalar for tag at global_step (a float, a one-element tensor or a numpy scalar)."""
        if new_style:
            raise NotImplementedError("SummaryWriter.add_scalar(new_style=True) is not in "
                                      "tinygradattn (yet): use the default new_style=False")
        wall = time.time() if walltime is None else float(walltime)
        self._write(event(wall, step=global_step,
                          summary=scalar_summary(tag, _scalar(scalar_value))))

    def add_scalars(self, main_tag, tag_scalar_dict, global_step=None, walltime=None):
        """Several scalars in one chart: each under log_dir/<main_tag>_<tag>, tag main_tag,
        as PyTorch writes them."""
        wall = time.time() if walltime is None else float(walltime)
        for tag, value in tag_scalar_dict.items():
            folder = os.path.join(self.log_dir, f"{main_tag.replace('/', '_')}_{tag}")
            child = self._children.get(folder)
            if child is None:
                child = self._children[folder] = SummaryWriter(
                    folder, flush_secs=self.flush_secs, filename_suffix=self.filename_suffix)
            child.add_scalar(main_tag, value, global_step, wall)

    def flush(self):
        """Write what is buffered to disk."""
        if self._file is not None:
            self._file.flush()
            self._last_flush = time.time()
        for child in self._children.values():
            child.flush()

    def close(self):
        """Flush and close the event file (a later add_* opens a new one)."""
        if self._file is not None:
            self._file.close()
            self._file = None
        for child in self._children.values():
            child.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
