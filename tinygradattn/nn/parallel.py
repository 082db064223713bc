"""tga.nn.parallel (torch.nn.parallel): DistributedDataParallel over MPI, and DataParallel.

- `DistributedDataParallel(module)`: data-parallel training over the ranks of
  tga.distributed (init() first, under mpiexec). See its docstring.
- `DataParallel(module)` over no GPU list is the module itself, run as is (torch's behaviour
  without GPUs); `.module` is the wrapped module.
"""
import contextlib

from .. import distributed
from ..autograd import engine
from ..autograd.grad_mode import is_grad_enabled
from ..distributed import reducer as _reducer
from .module import Module


class DistributedDataParallel(Module):
    """Data parallelism over MPI ranks (torch.nn.parallel.DistributedDataParallel).

    At construction, rank 0's parameters and buffers are broadcast to every rank. Each forward
    (with grad enabled, outside no_sync) arms the next backward: the gradients of the
    parameters that require grad are averaged over ranks with Allreduce(SUM) / world_size,
    over flat buckets of up to bucket_cap_mb (default 25, torch's; the first bucket 1 MiB).
    A bucket starts (nonblocking) as soon as backward has finished all its gradients, while
    the rest of backward still runs; all are waited for at the end of backward (a callback
    the engine runs when the pass ends), so after loss.backward() every rank holds the same
    averaged .grad, ready for optimizer.step().

    Args:
        module: the model; its parameters must be the same shapes on every rank.
        device_ids, output_device, dim: accepted for torch's signature, ignored (the module
            stays on its device; cuda gradients are reduced host-staged).
        broadcast_buffers: also broadcast rank 0's buffers at every forward (torch's default).
        bucket_cap_mb: the size of a bucket, in MiB.
        find_unused_parameters, gradient_as_bucket_view, static_graph: accepted, ignored: a
            parameter without a gradient adds zeros to its bucket, and keeps grad None where
            it got none on any rank.
        overlap_backward: (ours, default True) False waits for backward to end before any
            Allreduce starts: the baseline that measures what overlap gains.
    `module` is the wrapped model; state_dict() keys start with "module." as in torch.
    """

    def __init__(self, module, device_ids=None, output_device=None, dim=0, broadcast_buffers=True,
                 process_group=None, bucket_cap_mb=None, find_unused_parameters=False,
                 check_reduction=False, gradient_as_bucket_view=False, static_graph=False,
                 overlap_backward=True, **kwargs):
        super().__init__()
        if process_group is None and not distributed.is_initialized():
            raise RuntimeError(distributed._NOT_INITIALIZED)
        cap_mb = 25 if bucket_cap_mb is None else bucket_cap_mb
        if not cap_mb > 0:
            raise ValueError(f"bucket_cap_mb must be > 0, got {bucket_cap_mb!r}")
        self.module = module
        self.broadcast_buffers = broadcast_buffers
        self.require_backward_grad_sync = True
        comm = distributed._comm()
        params = [p for p in module.parameters() if p.requires_grad]
        _reducer.broadcast_coalesced(comm, list(module.parameters()) + self._buffers_list(), 0)
        self._reducer = _reducer.Reducer(comm, params, int(cap_mb * (1 << 20)),
                                         overlap=overlap_backward)
        mark = self._reducer.mark_ready
        self._hook_handles = [
            p.register_post_accumulate_grad_hook(lambda p: mark(p, engine.queue_callback))
            for p in params]

    def _buffers_list(self):
        return [b for b in self.module.buffers() if b is not None]

    def forward(self, *inputs, **kwargs):
        if self.broadcast_buffers:
            buffers = self._buffers_list()
            if buffers:
                _reducer.broadcast_coalesced(distributed._comm(), buffers, 0)
        if is_grad_enabled() and self.require_backward_grad_sync:
            self._reducer.arm()
        return self.module(*inputs, **kwargs)

    @contextlib.contextmanager
    def no_sync(self):
        """Backward passes of forwards run inside keep their gradients local (they add up in
        .grad); the first synced backward after it averages the sums (torch's no_sync)."""
        previous = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = previous


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
