"""Neural-network building blocks: Module, Parameter, layers, and nn.functional."""
from . import functional
from .module import Module, Parameter

__all__ = ["Module", "Parameter", "functional"]
