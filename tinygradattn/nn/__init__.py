"""Neural-network building blocks. For now: `nn.functional` (layers arrive with the nn issue)."""
from . import functional

__all__ = ["functional"]
