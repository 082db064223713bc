"""Checkpoints of a training run: one atomic file per save, the last K kept.

A checkpoint holds the model's state_dict, the optimizer's and scheduler's state, the step,
the RNG states (global generator, data sampler) and the run's config, so that a resumed run
continues exactly where the interrupted one stopped. Files are written by `tga.save`, which
writes a temporary file, fsyncs it and renames it: a crash mid-save leaves the last good
checkpoint intact.
"""
import os
import re

from ..serialization import load, save

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
    """Write state atomically as step_<step>.safetensors; delete all but the newest keep_last."""
    os.makedirs(ckpt_dir, exist_ok=True)
    path = checkpoint_path(ckpt_dir, step)
    save(state, path)
    for _, old in list_checkpoints(ckpt_dir)[:-keep_last]:
        os.remove(old)
    return path


def load_latest(ckpt_dir):
    """The newest checkpoint that loads; a damaged newest one falls back to the one before.

    Returns (state, path) or (None, None) when the directory has none.
    """
    errors = []
    for step, path in reversed(list_checkpoints(ckpt_dir)):
        try:
            return load(path), path
        except (OSError, ValueError, RuntimeError) as e:
            errors.append(f"{path}: {e}")
    if errors:
        raise RuntimeError("no loadable checkpoint in " + ckpt_dir + ":\n  " + "\n  ".join(errors))
    return None, None
