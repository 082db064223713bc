"""Whether operations record the graph: no_grad / enable_grad / inference_mode /
set_grad_enabled / is_grad_enabled."""
import functools
import threading


class _GradState(threading.local):
    """Each thread's grad mode. The class attribute is the default every thread starts with:
    reading it is a plain attribute lookup (getattr with a default on a bare threading.local
    raises and catches AttributeError inside, 10x slower, on every recorded op)."""

    enabled = True


_state = _GradState()


def is_grad_enabled():
    """True when new operations are recorded for backward (torch.is_grad_enabled)."""
    return _state.enabled


def _set_grad_enabled(mode):
    _state.enabled = bool(mode)


class _GradMode:
    """Context manager and decorator that sets grad mode and restores it on exit.

    As in torch, it decorates with or without the call: `@no_grad()` and `@no_grad`.
    """

    mode = True

    def __new__(cls, orig_func=None):
        self = super().__new__(cls)
        if orig_func is not None:                 # bare @no_grad: decorate at once
            if not callable(orig_func):
                raise TypeError(f"{cls.__name__}() takes no arguments, got "
                                f"{type(orig_func).__name__}")
            return self(orig_func)
        return self

    def __init__(self, orig_func=None):
        pass

    def __enter__(self):
        self._prev = is_grad_enabled()
        _set_grad_enabled(self.mode)
        return self

    def __exit__(self, *exc):
        _set_grad_enabled(self._prev)
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with type(self)():
                return fn(*args, **kwargs)
        return wrapper


class no_grad(_GradMode):
    """Disable graph recording inside the block (torch.no_grad)."""

    mode = False


class enable_grad(_GradMode):
    """Enable graph recording inside the block, even within no_grad (torch.enable_grad)."""

    mode = True


class inference_mode(_GradMode):
    """torch.inference_mode(mode=True): no graph recording inside the block, as no_grad (torch
    also skips version counting there; this engine has nothing more to skip).
    inference_mode(False) changes nothing."""

    def __new__(cls, mode=True):
        if callable(mode) and not isinstance(mode, bool):      # bare @inference_mode
            return super().__new__(cls, mode)
        self = super().__new__(cls)
        self._mode_arg = bool(mode)
        return self

    def __init__(self, mode=True):
        pass

    def __enter__(self):
        self._prev = is_grad_enabled()
        if getattr(self, "_mode_arg", True):
            _set_grad_enabled(False)
        return self

    def __call__(self, fn):
        mode = getattr(self, "_mode_arg", True)

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with inference_mode(mode):
                return fn(*args, **kwargs)
        return wrapper


class set_grad_enabled:
    """torch.set_grad_enabled(mode): sets grad mode at once; as a context manager (or a
    decorator) it restores the previous mode on exit."""

    def __init__(self, mode):
        if not isinstance(mode, bool):
            raise TypeError(f"set_grad_enabled(): argument 'mode' must be bool, not "
                            f"{type(mode).__name__}")
        self._prev = is_grad_enabled()
        self._mode = mode
        _set_grad_enabled(mode)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _set_grad_enabled(self._prev)
        return False

    def __call__(self, fn):
        _set_grad_enabled(self._prev)              # decorating does not change the mode

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with set_grad_enabled(self._mode):
                return fn(*args, **kwargs)
        return wrapper
