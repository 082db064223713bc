"""tga.compile (torch.compile): returns the model or function unchanged.

tinygradattn has no graph compiler: its speed comes from its fused kernels, which run
without compiling. `torch.compile(model)` in a script therefore gives back `model` itself
(so `model is torch.compile(model)`), and used as a decorator, with or without arguments, it
leaves the function as it is. Arguments are accepted and ignored, except that a `backend` or
`mode` that is not a string or callable raises TypeError as torch would.
"""


def compile(model=None, *, fullgraph=False, dynamic=None, backend="inductor", mode=None,
            options=None, disable=False):
    if not (isinstance(backend, str) or callable(backend)):
        raise TypeError(f"compile(): backend must be a string or a callable, got "
                        f"{type(backend).__name__}")
    if mode is not None and not isinstance(mode, str):
        raise TypeError(f"compile(): mode must be a string or None, got {type(mode).__name__}")
    if model is None:                        # @torch.compile(mode=...) decorating a function
        return lambda fn: fn
    if not callable(model):
        raise RuntimeError(f"compile(): expected a callable (an nn.Module or a function), got "
                           f"{type(model).__name__}")
    return model
