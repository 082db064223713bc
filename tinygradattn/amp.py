"""tga.amp (torch.amp): autocast and GradScaler, as far as a float32 engine can honour them.

tinygradattn computes in float32 and float64 only, so mixed precision has nothing to do:
- `autocast(device_type, dtype=torch.float32)` and `autocast(..., enabled=False)` are exact
  no-ops (torch itself disables CPU autocast to float32); any other dtype (float16,
  bfloat16, or none given, whose default is one of them) raises NotImplementedError;
- `GradScaler(enabled=False)` passes everything through (scale is 1, step is
  optimizer.step()), exactly as torch's disabled scaler; `GradScaler(enabled=True)` for the
  cuda device where no GPU is there warns and disables itself, as torch does; anywhere else
  it raises NotImplementedError (a loss scale exists for float16 gradients, which we lack).

    scaler = tga.amp.GradScaler(enabled=False)
    scaler.scale(loss).backward(); scaler.step(optimizer); scaler.update()
"""
import functools
import warnings

from . import cuda as _cuda
from . import dtypes


def _dtype_name(dtype):
    return getattr(dtype, "name", str(dtype))


class autocast:
    """torch.autocast(device_type, dtype=None, enabled=True, cache_enabled=None): a context
    manager and decorator. A no-op when disabled or for float32; NotImplementedError for
    float16 / bfloat16 (the default dtype: bfloat16 on cpu, float16 on cuda)."""

    def __init__(self, device_type, dtype=None, enabled=True, cache_enabled=None):
        if not isinstance(device_type, str):
            raise ValueError(f"Expected `device_type` of type `str`, got: `{type(device_type)}`")
        if device_type not in ("cpu", "cuda"):
            raise RuntimeError(f"User specified an unsupported autocast device_type "
                               f"'{device_type}'")
        if dtype is None:
            dtype = dtypes.bfloat16 if device_type == "cpu" else dtypes.float16
        self.device_type, self.fast_dtype, self.enabled = device_type, dtype, bool(enabled)
        if self.enabled and dtype != dtypes.float32:
            raise NotImplementedError(
                f"autocast to {_dtype_name(dtype)} on {device_type}: tinygradattn has no "
                f"{_dtype_name(dtype)} kernels. Run in float32 (autocast(..., "
                "dtype=torch.float32) or enabled=False; nanoGPT: --dtype=float32)")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self:
                return fn(*args, **kwargs)
        return wrapper


class GradScaler:
    """torch.amp.GradScaler(device='cuda', init_scale=2.**16, growth_factor=2.0,
    backoff_factor=0.5, growth_interval=2000, enabled=True); only the disabled scaler
    exists (see the module's docstring)."""

    def __init__(self, device="cuda", init_scale=2.0 ** 16, growth_factor=2.0,
                 backoff_factor=0.5, growth_interval=2000, enabled=True):
        self._device = str(device)
        if enabled and self._device.split(":")[0] == "cuda" and not _cuda.is_available():
            warnings.warn("torch.cuda.amp.GradScaler is enabled, but CUDA is not available. "
                          "Disabling.", UserWarning, stacklevel=2)
            enabled = False
        if enabled:
            raise NotImplementedError(
                "GradScaler(enabled=True): loss scaling exists for float16 gradients, and "
                "tinygradattn computes in float32; pass enabled=False (nanoGPT: "
                "--dtype=float32)")
        self._enabled = False

    def is_enabled(self):
        return self._enabled

    def scale(self, outputs):
        """The outputs unchanged (a disabled scaler's scale is 1)."""
        return outputs

    def unscale_(self, optimizer):
        """Nothing to unscale."""

    def step(self, optimizer, *args, **kwargs):
        return optimizer.step(*args, **kwargs)

    def update(self, new_scale=None):
        """Nothing to update."""

    def get_scale(self):
        return 1.0

    def state_dict(self):
        return {}

    def load_state_dict(self, state_dict):
        if state_dict:
            raise RuntimeError("tga.amp.GradScaler: cannot load the state of an enabled "
                               "scaler (tinygradattn has no loss scaling)")


def is_autocast_available(device_type):
    return device_type in ("cpu", "cuda")


__all__ = ["autocast", "GradScaler", "is_autocast_available"]
