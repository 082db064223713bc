"""`tinygradattn run SCRIPT [ARGS...]`: an unmodified PyTorch script, run on tinygradattn.

The script runs as `python SCRIPT ARGS...` would run it (as __main__, its folder first on
sys.path, sys.argv = [SCRIPT, *ARGS], in the current directory), with the import hook of
hook.py installed, so `torch` and every `torch.*` module it imports is tinygradattn's.

When it fails on something tinygradattn lacks, the report is one line naming it in torch's
terms and where the script asked for it:

    tinygradattn run: model.py:360: torch.topk is not in tinygradattn (yet)

Other errors print the usual traceback, without the frames of this runner. Set
TGA_RUN_TRACEBACK=1 to get the full traceback in every case.
"""
import os
import re
import runpy
import sys
import traceback

from . import hook

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_SKIP_FILES = (os.path.abspath(__file__), os.path.abspath(runpy.__file__))
_FROM_IMPORT = re.compile(r"cannot import name '([^']+)' from '([\w.]+)'")


def _runner_frame(filename):
    """This module's and runpy's frames (runpy may be frozen: '<frozen runpy>')."""
    return os.path.abspath(filename) in _SKIP_FILES or filename == "<frozen runpy>"


def _ours(filename):
    return os.path.abspath(filename).startswith(_PACKAGE_DIR + os.sep)


def _script_frame(tb):
    """The innermost frame outside tinygradattn and this runner: where the script asked."""
    found = None
    for frame, lineno in traceback.walk_tb(tb):
        name = frame.f_code.co_filename
        if not _ours(name) and not _runner_frame(name) and not name.startswith("<frozen"):
            found = (name, lineno)
    return found


def _public_module(module, name):
    """The shortest package path that exports `name` as the same object: the class
    tinygradattn.nn.module.Module is torch.nn.Module."""
    obj = getattr(sys.modules.get(module), name, None)
    while "." in module:
        parent = module.rsplit(".", 1)[0]
        if getattr(sys.modules.get(parent), name, None) is not obj:
            break
        module = parent
    return module


def _class_path(tp):
    """'torch.nn.Module' for a tinygradattn class (by the class that defines it), else None."""
    for cls in tp.__mro__:
        module = getattr(cls, "__module__", "") or ""
        if module == hook.PACKAGE or module.startswith(hook.PACKAGE + "."):
            return f"{hook.torch_name(_public_module(module, cls.__name__))}.{cls.__name__}"
    return None


def missing_name(exc):
    """The torch name behind an exception, when it says tinygradattn lacks one; else None."""
    if isinstance(exc, ModuleNotFoundError) and exc.name and \
            (exc.name == hook.TORCH or exc.name.startswith(hook.TORCH + ".")):
        return exc.name
    if isinstance(exc, ImportError):
        m = _FROM_IMPORT.search(str(exc))
        if m and (m.group(2) == hook.PACKAGE or m.group(2).startswith(hook.PACKAGE + ".")):
            return f"{hook.torch_name(m.group(2))}.{m.group(1)}"
        return None
    if isinstance(exc, AttributeError) and getattr(exc, "name", None):
        obj = getattr(exc, "obj", None)
        if type(obj).__name__ == "module":
            owner = hook.torch_name(getattr(obj, "__name__", ""))
            return f"{owner}.{exc.name}" if owner.startswith(hook.TORCH) else None
        owner = _class_path(obj if isinstance(obj, type) else type(obj))
        if owner is not None and not hasattr(obj, exc.name):
            return f"{owner}.{exc.name}"
    return None


def _where(tb):
    frame = _script_frame(tb)
    if frame is None:
        return ""
    name, lineno = frame
    return f"{os.path.relpath(name)}:{lineno}: "


def _report(exc, full_traceback):
    """Print exc the way `run` reports it; returns the exit code."""
    name = missing_name(exc)
    if full_traceback:
        traceback.print_exception(exc)
    elif name is not None:
        print(f"tinygradattn run: {_where(exc.__traceback__)}{name} is not in tinygradattn "
              f"(yet)", file=sys.stderr)
    elif isinstance(exc, NotImplementedError):
        print(f"tinygradattn run: {_where(exc.__traceback__)}not supported by tinygradattn: "
              f"{exc}", file=sys.stderr)
    else:                    # the script's own error, or ours: the usual traceback, minus ours
        tb = exc.__traceback__
        while tb is not None and _runner_frame(tb.tb_frame.f_code.co_filename):
            tb = tb.tb_next
        traceback.print_exception(type(exc), exc, tb)
    return 1


def run(script, args=()):
    """Run `script` with `torch` resolved to tinygradattn; returns the exit code."""
    if not os.path.isfile(script):
        raise FileNotFoundError(f"no such script: {script}")
    argv, path = sys.argv, list(sys.path)
    sys.argv = [script, *args]
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    try:
        with hook.torch_as_tinygradattn():
            runpy.run_path(script, run_name="__main__")
        return 0
    except SystemExit as e:
        code = e.code
        if code is None or isinstance(code, int):
            return code or 0
        print(code, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        raise
    except BaseException as e:            # noqa: B036  (reported, not swallowed: exit code 1)
        return _report(e, os.environ.get("TGA_RUN_TRACEBACK") == "1")
    finally:
        sys.argv, sys.path[:] = argv, path
