"""Whether operations record the graph: no_grad / enable_grad / is_grad_enabled."""
import functools
import threading

_state = threading.local()


def is_grad_enabled():
    """True when new operations are recorded for backward (torch.is_grad_enabled)."""
    return getattr(_state, "enabled", True)


def _set_grad_enabled(mode):
    _state.enabled = bool(mode)


class _GradMode:
    """Context manager and decorator that sets grad mode and restores it on exit."""

    mode = True

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
