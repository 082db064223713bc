"""tga.nn.parallel (torch.nn.parallel): the wrappers' names, for one process.

- `DistributedDataParallel` needs a process group, which tga.distributed cannot start yet:
  making one raises torch's "not initialized" RuntimeError (as torch does without
  init_process_group). Scripts that import it and wrap only when launched distributed run.
- `DataParallel(module)` over no GPU list is the module itself, run as is (torch's behaviour
  without GPUs); `.module` is the wrapped module.
"""
from .. import distributed
from .module import Module


class DistributedDataParallel(Module):
    def __init__(self, module, device_ids=None, output_device=None, dim=0, broadcast_buffers=True,
                 process_group=None, bucket_cap_mb=None, find_unused_parameters=False,
                 **kwargs):
        super().__init__()
        if process_group is None and not distributed.is_initialized():
            raise RuntimeError(distributed._NOT_INITIALIZED)


class DataParallel(Module):
    """Runs `module` on the inputs as given: one process, one device."""

    def __init__(self, module, device_ids=None, output_device=None, dim=0):
        super().__init__()
        if device_ids:
            raise NotImplementedError(f"DataParallel(device_ids={device_ids}): tinygradattn "
                                      "runs on one device; use the module itself")
        self.module = module

    def forward(self, *inputs, **kwargs):
        return self.module(*inputs, **kwargs)


__all__ = ["DistributedDataParallel", "DataParallel"]
