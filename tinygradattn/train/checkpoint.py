"""Checkpoints of a training run: one atomic file per save, the last K kept.

A checkpoint holds the model's state_dict, the optimizer's and scheduler's state, the step,
the RNG states (global generator, data sampler) and the run's config, so that a resumed run
continues exactly where the interrupted one stopped. Files are written by `tga.save`, which
writes a temporary file, fsyncs it and renames it: a crash mid-save leaves the last good
checkpoint intact; each file carries checksums, so resuming skips a damaged newest file for
the newest one that verifies, saying which and why.
"""
import os
import re

from ..serialization import CheckpointError, load, save, verify

_NAME = re.compile(r"^step_(\d{8})\.safetensors$")


def checkpoint_path(ckpt_dir, step):
    return os.path.join(ckpt_dir, f"step_{step:08d}.safetensors")


def list_checkpoints(ckpt_dir):
    """(step, path) of the complete checkpoints in ckpt_dir, oldest first."""
    if not os.path.isdir(ckpt_dir):
        return []
    found = []
    for name in os.listdir(ckpt_dir):
        m = _NAME.match(name)
        if m:
            found.append((int(m.group(1)), os.path.join(ckpt_dir, name)))
    return sorted(found)


def save_checkpoint(ckpt_dir, step, state, keep_last):
    """Write state atomically as step_<step>.safetensors; delete all but the newest keep_last.

    A checkpoint of a later step than this one is a damaged file that resume skipped (the run
    went on from an earlier one and is now rewriting those steps): it is deleted too, so
    that it never counts among the newest, nor pushes out the good ones.
    """
    os.makedirs(ckpt_dir, exist_ok=True)
    path = checkpoint_path(ckpt_dir, step)
    save(state, path)
    found = list_checkpoints(ckpt_dir)
    stale = [p for s, p in found if s > step]
    older = [p for s, p in found if s <= step]
    for old in stale + older[:-keep_last]:
        os.remove(old)
    return path


def load_latest(ckpt_dir, on_skip=None):
    """The newest checkpoint that loads and verifies; a damaged one is skipped for the one
    before, and on_skip(message) told which file and why, in one line.

    Returns (state, path) or (None, None) when the directory has none. Raises CheckpointError
    when every checkpoint there is damaged.
    """
    return _newest(ckpt_dir, load, on_skip)


def verified_latest(ckpt_dir, on_skip=None):
    """The path of the newest checkpoint that verifies (tga.serialization.verify), or None
    when there is none; a damaged one is reported by on_skip(message) and skipped."""
    try:
        _, path = _newest(ckpt_dir, verify, on_skip)
    except CheckpointError:
        return None
    return path


def fault_of(error):
    """What is wrong with a checkpoint, from load's / verify's error: a clause ("it is ...")."""
    if isinstance(error, CheckpointError):
        return f"it {error.fault}"
    return f"unreadable: {error.strerror or error}"


def skip_message(path, error):
    """One line: which checkpoint is skipped and why."""
    return f"skipped checkpoint {path}: {fault_of(error)}"


def _newest(ckpt_dir, read, on_skip):
    faults = []
    for _, path in reversed(list_checkpoints(ckpt_dir)):
        try:
            return read(path), path
        except (CheckpointError, OSError) as e:
            faults.append(f"{os.path.basename(path)}: {e}")
            if on_skip is not None:
                on_skip(skip_message(path, e))
    if faults:
        raise CheckpointError(ckpt_dir, "has no loadable checkpoint (" + "; ".join(faults) + ")")
    return None, None
