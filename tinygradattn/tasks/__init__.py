"""Small built-in training tasks behind `tinygradattn train --task NAME`.

Each task module exposes a `train_<name>(..., log=print)` that returns a dict of metrics.
TASKS maps a task name to (module, function) so the CLI can import a task only when it runs.
"""

TASKS = {
    "moons": ("tinygradattn.tasks.moons", "train_moons"),
}


def get_task(name):
    """The train function of task `name` (imported on demand); KeyError if unknown."""
    import importlib

    module, func = TASKS[name]
    return getattr(importlib.import_module(module), func)
