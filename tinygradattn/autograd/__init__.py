"""The autograd layer: Function and Context, the backward engine, grad mode, gradcheck, and the
instruments that watch ops run (backward trace, anomaly mode; the profiler is tga.profiler)."""
from .anomaly_mode import (detect_anomaly, is_anomaly_check_nan_enabled, is_anomaly_enabled,
                           set_detect_anomaly)
from .backward_trace import trace
from .function import Context, Function
from .grad_mode import (enable_grad, inference_mode, is_grad_enabled, no_grad,
                        set_grad_enabled)
from .gradcheck import gradcheck

__all__ = ["Context", "Function", "detect_anomaly", "enable_grad", "gradcheck",
           "inference_mode", "is_anomaly_check_nan_enabled", "is_anomaly_enabled",
           "is_grad_enabled", "no_grad", "set_detect_anomaly", "set_grad_enabled", "trace"]
