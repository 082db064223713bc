"""torch.utils's names that PyTorch programs reach for: `utils.data` (datasets, samplers,
DataLoader), `utils.dlpack` (from_dlpack, to_dlpack)."""
from . import data, dlpack

__all__ = ["data", "dlpack"]
