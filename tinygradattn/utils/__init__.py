"""torch.utils's names that PyTorch programs reach for: `utils.data` (datasets, samplers,
DataLoader), `utils.dlpack` (from_dlpack, to_dlpack), `utils.checkpoint` (activation
checkpointing); and `utils.memory` (activation memory per module: ours, torch has none)."""
from . import checkpoint, data, dlpack, memory

__all__ = ["checkpoint", "data", "dlpack", "memory"]
