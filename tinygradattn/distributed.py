"""tga.distributed (torch.distributed), as it answers in one process without a process group.

Data-parallel training over several processes is not built yet (it is planned over MPI), so:
`is_available()` is False (torch's answer when built without distributed support) and
`is_initialized()` False; `init_process_group` raises RuntimeError saying so; the calls that
need a process group (ranks, collectives) raise torch's "not initialized" RuntimeError. A
script that only imports these names and trains in one process (nanoGPT's train.py without
torchrun) runs.
"""

_NOT_INITIALIZED = ("Default process group has not been initialized, please make sure to call "
                    "init_process_group.")


class ReduceOp:
    """The reduction names collectives take (torch.distributed.ReduceOp)."""
    SUM, PRODUCT, MIN, MAX, AVG = "sum", "product", "min", "max", "avg"


def is_available():
    """False: tinygradattn has no multi-process backend yet."""
    return False


def is_initialized():
    return False


def is_torchelastic_launched():
    return False


def init_process_group(backend=None, init_method=None, timeout=None, world_size=-1, rank=-1,
                       store=None, group_name="", pg_options=None, device_id=None):
    raise RuntimeError(
        f"init_process_group(backend={backend!r}): tinygradattn has no distributed training "
        "yet (data-parallel training over MPI is planned); run the script in one process "
        "(without torchrun / RANK in the environment)")


def destroy_process_group(group=None):
    raise ValueError(_NOT_INITIALIZED)


def _needs_group(name):
    def fn(*args, **kwargs):
        raise RuntimeError(_NOT_INITIALIZED)
    fn.__name__ = name
    fn.__doc__ = f"torch.distributed.{name}: needs a process group (RuntimeError here)."
    return fn


get_rank = _needs_group("get_rank")
get_world_size = _needs_group("get_world_size")
barrier = _needs_group("barrier")
all_reduce = _needs_group("all_reduce")
broadcast = _needs_group("broadcast")
all_gather = _needs_group("all_gather")
reduce = _needs_group("reduce")

__all__ = ["ReduceOp", "is_available", "is_initialized", "is_torchelastic_launched",
           "init_process_group", "destroy_process_group", "get_rank", "get_world_size",
           "barrier", "all_reduce", "broadcast", "all_gather", "reduce"]
