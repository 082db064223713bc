"""Anomaly mode (torch.autograd.detect_anomaly / set_detect_anomaly): stop at the first op that
makes a NaN or an infinity, naming the op and the user's line that created it.

While on, an observer (autograd/instruments.py) sees every op:
- forward: it keeps the user's stack (the frames outside tinygradattn/) on the op's Context,
  and checks the output: a NaN or an infinity is an error when no argument held one of its
  kind (one the op made: log(-1), log(0), exp(1000), softmax of a row all -inf; not one it
  passed on, as a -inf mask through masked_fill). NOTE: torch checks no forward output.
- backward: every gradient the op returns is checked for NaN and infinity (torch checks NaN
  only), and the error names the forward line kept above, as torch prints the forward
  traceback. An error raised inside a backward (an in-place write into a saved tensor) is
  preceded by a warning naming that line, as torch's "Error detected in ...".
With check_nan=False only the stacks are kept (torch's meaning). Off, nothing is checked or
kept. The checks read every output back from the device: slow, as torch's anomaly mode is.
"""
import math
import warnings

from . import instruments

_observer = None             # the attached _AnomalyObserver, or None when the mode is off


def is_anomaly_enabled():
    """True while anomaly mode is on (torch.is_anomaly_enabled)."""
    return _observer is not None


def is_anomaly_check_nan_enabled():
    """True while anomaly mode is on and checks values (torch.is_anomaly_check_nan_enabled)."""
    return _observer is not None and _observer.check_nan


def _set_mode(mode, check_nan):
    """Turn the mode on or off; returns the previous (mode, check_nan)."""
    global _observer
    previous = (_observer is not None, _observer.check_nan if _observer else True)
    if _observer is not None:
        instruments.detach(_observer)
        _observer = None
    if mode:
        _observer = _AnomalyObserver(check_nan)
        instruments.attach(_observer)
    return previous


class detect_anomaly:
    """Context manager (and decorator) turning anomaly mode on (torch.autograd.detect_anomaly).

    Inside it, the first op whose forward or backward makes NaN or inf raises RuntimeError
    naming the op and the user's line that created it. NOTE: torch checks backward only;
    we check forward outputs too (see this module's docstring for the rule on infinities).

    Example:
        >>> import tinygradattn as tga
        >>> x = tga.tensor([-1.0, 2.0], requires_grad=True)
        >>> with tga.autograd.detect_anomaly():
        ...     y = x.log()                        # doctest: +ELLIPSIS
        Traceback (most recent call last):
        RuntimeError: Function 'Log' returned nan values in its output...
    """

    def __init__(self, check_nan=True):
        self.check_nan = check_nan

    def __enter__(self):
        self.previous = _set_mode(True, self.check_nan)
        return self

    def __exit__(self, *exc):
        _set_mode(*self.previous)
        return False

    def __call__(self, func):
        import functools

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with detect_anomaly(self.check_nan):
                return func(*args, **kwargs)
        return wrapper


class set_detect_anomaly:
    """Turn anomaly mode on or off (torch.autograd.set_detect_anomaly): at once when called,
    and as a context manager, back to the previous mode on exit."""

    def __init__(self, mode, check_nan=True):
        if not isinstance(mode, bool):
            raise TypeError(f"set_detect_anomaly(): mode must be a bool, got "
                            f"{type(mode).__name__}")
        self.previous = _set_mode(mode, check_nan)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _set_mode(*self.previous)
        return False


class _AnomalyObserver:
    """The observer: keeps stacks in forward, checks values in forward and backward."""

    def __init__(self, check_nan):
        self.check_nan = check_nan

    def __call__(self, event):
        if event.phase == "forward":
            stack = instruments.user_stack()
            if event.ctx.is_recording:
                event.ctx.anomaly_stack = stack     # released with the saved arrays
            if self.check_nan:
                _check_forward(event, stack)
        elif self.check_nan:
            _check_backward(event)

    def backward_failed(self, ctx, error):
        """An error inside a backward: warn with the forward line that made the op, as torch
        does ("Error detected in ..."), before the error goes on."""
        warnings.warn(f"Error detected in {ctx.fn.__name__}Backward"
                      f"{_created_at(getattr(ctx, 'anomaly_stack', None))}", stacklevel=2)


def _count_nonfinite(backend, x):
    """(number of NaN, number of +-inf) in array x; (0, 0) for a non-float array."""
    if getattr(x, "dtype", None) is None or x.dtype.kind != "f" or x.size == 0:
        return 0, 0
    n_nan = int(backend.to_host(backend.sum(backend.ne(x, x), None, False)))
    n_inf = int(backend.to_host(backend.sum(backend.eq(backend.abs(x), float("inf")),
                                            None, False)))
    return n_nan, n_inf


def _carried_in(backend, args):
    """(any argument holds NaN, any holds an infinity): arrays and Python floats."""
    has_nan = has_inf = False
    for a in args:
        if isinstance(a, float):
            has_nan, has_inf = has_nan or a != a, has_inf or a in (math.inf, -math.inf)
        else:
            n_nan, n_inf = _count_nonfinite(backend, a)
            has_nan, has_inf = has_nan or n_nan > 0, has_inf or n_inf > 0
    return has_nan, has_inf


def _check_forward(event, stack):
    """RuntimeError when the output holds a NaN or an infinity that no argument carried in."""
    out = event.outputs[0]
    n_nan, n_inf = _count_nonfinite(event.ctx.backend, out)
    if not (n_nan or n_inf):
        return
    had_nan, had_inf = _carried_in(event.ctx.backend, event.inputs)
    if n_nan and not had_nan:
        what = "nan"
    elif n_inf and not had_inf:
        what = "inf"
    else:
        return
    raise RuntimeError(
        f"Function '{event.name}' returned {what} values in its output (shape "
        f"{tuple(out.shape)}){_created_at(stack)}")


def _check_backward(event):
    for i, grad in enumerate(event.outputs):
        if grad is None:
            continue
        n_nan, n_inf = _count_nonfinite(event.ctx.backend, grad)
        if n_nan or n_inf:
            what = "nan" if n_nan else "inf"
            stack = getattr(event.ctx, "anomaly_stack", None)
            raise RuntimeError(
                f"Function '{event.name}' returned {what} values in its {_ordinal(i)} output "
                f"(the gradient of input {i}, shape {tuple(grad.shape)}); the op "
                f"{event.fn.__name__}{_created_at(stack)}")


def _created_at(stack):
    """', created at FILE:LINE: SOURCE' and the user's traceback; a hint when none was kept."""
    if not stack:
        return (". No forward traceback: enable anomaly detection during the forward pass "
                "to see the line that created this op.")
    import linecache
    filename, lineno, _ = stack[-1]
    source = linecache.getline(filename, lineno).strip()
    return (f", created at {filename}:{lineno}: {source}\n"
            f"Traceback of the forward call that created it (most recent call last):\n"
            f"{instruments.format_stack(stack)}")


def _ordinal(i):
    return f"{i}{'th' if 10 <= i % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(i % 10, 'th')}"
