"""torch.utils's names that PyTorch programs reach for: `utils.data` (datasets, samplers,
DataLoader)."""
from . import data

__all__ = ["data"]
