"""The autograd layer: Function and Context, the backward engine, grad mode, gradcheck."""
from .function import Context, Function
from .grad_mode import (enable_grad, inference_mode, is_grad_enabled, no_grad,
                        set_grad_enabled)
from .gradcheck import gradcheck

__all__ = ["Context", "Function", "enable_grad", "gradcheck", "inference_mode", "is_grad_enabled",
           "no_grad", "set_grad_enabled"]
