"""docs/how_it_works.md cannot drift from the code: its snippets run, its links resolve, and the
code names it cites are defined where it says.

- Every ```python block runs, in order, in one namespace (a block uses earlier blocks' names).
  A failure names the block's first line, its line in the guide and the error. A ```text
  block right after a python block is what that block prints, exactly.
- Every relative link (text or image) points to an existing file; an #anchor is ignored.
- A link whose text is a code name, [`Name`](../path/file.py) or [`mod.Name`](...), cites a
  definition: the file must define the last dotted part (`class Name`, `def Name`,
  `cdef ... Name(`, `Name =` at the start of a line; in a C header a function definition
  `... Name(` or `... MACRO(Name)(`, or `#define Name`). A link whose text is the file's own
  path or name ([`ops/attention.py`](../tinygradattn/ops/attention.py)) only has to exist.

The checkers take the guide's text, so the tests below also prove they fail on a broken copy.
"""
import contextlib
import io
import re
import traceback
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "how_it_works.md"

_BLOCK = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)
_OUTPUT = re.compile(r"\s*```text[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)
_LINK = re.compile(r"!?\[((?:[^\[\]]|\[[^\]]*\])*)\]\(([^)\s]+)\)")
_NAME = re.compile(r"^`([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)`$")


def python_blocks(text):
    """[(line of the block's first code line, code, printed)] for each ```python block of
    text; printed: the ```text block right after it (only blank lines between), or None."""
    blocks = []
    for m in _BLOCK.finditer(text):
        out = _OUTPUT.match(text, m.end())
        blocks.append((text.count("\n", 0, m.start(1)) + 1, m.group(1),
                       out.group(1) if out else None))
    return blocks


def _squeeze(line):
    """A code line for a message: runs of blanks (the aligned comments') made one space."""
    return " ".join(line.split())


def run_blocks(text, path):
    """Run the blocks in order in one namespace; a failure message for the first that raises
    or prints other than its ```text block shows, or None. The code is compiled with the
    guide's line numbers, so tracebacks point there."""
    namespace = {"__name__": "how_it_works"}
    for i, (line, code, printed) in enumerate(python_blocks(text), 1):
        first = next((_squeeze(s) for s in code.splitlines() if s.strip()), "")
        name = f"{path.name}: python block {i} (line {line}: `{first}`)"
        stdout = io.StringIO()
        try:
            with contextlib.redirect_stdout(stdout):
                exec(compile("\n" * (line - 1) + code, str(path), "exec"), namespace)
        except Exception as exc:                           # noqa: BLE001 (reported, not hidden)
            where = traceback.extract_tb(exc.__traceback__)
            in_guide = [f for f in where if f.filename == str(path)]
            at = ""
            if in_guide:                                   # the guide's line that raised
                bad = _squeeze(text.splitlines()[in_guide[-1].lineno - 1])
                at = f", line {in_guide[-1].lineno} `{bad}`"
            return f"{name} failed{at}: {type(exc).__name__}: {exc}"
        if printed is not None and stdout.getvalue() != printed:
            return (f"{name} printed\n{stdout.getvalue()}where the guide shows\n{printed}")
    return None


def links(text):
    """[(link text, target)] of every relative link: no URL scheme, not a bare #anchor."""
    return [(label, target) for label, target in _LINK.findall(text)
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target) and not target.startswith("#")]


def broken_links(text, base):
    """Relative link targets that name no existing file or folder."""
    return [target for _, target in links(text)
            if not (base / target.split("#")[0]).exists()]


def _defines(source, name, suffix):
    n = re.escape(name)
    if suffix in (".h", ".c"):
        patterns = [rf"^\s*#\s*define\s+{n}\b",
                    rf"^[A-Za-z_][\w \t*]*?(?:\w+\(\s*)?\b{n}\b\s*\)?\s*\([^;]*$"]
    else:                                                  # .py, .pyx, .pxd
        patterns = [rf"^\s*(?:async\s+)?(?:class|def)\s+{n}\b",
                    rf"^\s*c(?:p)?def\b[^\n=]*?\b{n}\s*\(",
                    rf"^\s*{n}\s*(?::[^=\n]*)?=(?!=)"]
    return any(re.search(p, source, re.M) for p in patterns)


def cited_names(text):
    """[(name, target)] for each link whose text is a code name and whose target a code file
    (not the file's own name: [`attention.py`](.../attention.py) cites no definition)."""
    cited = []
    for label, target in links(text):
        m = _NAME.match(label.strip())
        path = target.split("#")[0]
        if m and not path.endswith(m.group(1)) and Path(path).suffix in (
                ".py", ".pyx", ".pxd", ".h", ".c"):
            cited.append((m.group(1), path))
    return cited


def undefined_names(text, base):
    """'Name (target)' for each cited name that its target file does not define."""
    missing = []
    for name, target in cited_names(text):
        file = base / target
        if not file.is_file() or not _defines(file.read_text(encoding="utf-8"),
                                              name.split(".")[-1], file.suffix):
            missing.append(f"{name} ({target})")
    return missing


# ---- the guide ------------------------------------------------------------------------------
def _guide():
    return GUIDE.read_text(encoding="utf-8")


def test_guide_snippets_run():
    blocks = python_blocks(_guide())
    assert len(blocks) >= 10, f"expected the guide's snippets, found {len(blocks)} blocks"
    failure = run_blocks(_guide(), GUIDE)
    assert failure is None, failure


def test_guide_links_point_to_files():
    assert len(links(_guide())) >= 30
    broken = broken_links(_guide(), GUIDE.parent)
    assert not broken, f"{GUIDE.name}: links to missing files: {broken}"


def test_guide_cites_names_its_files_define():
    assert len(cited_names(_guide())) >= 25
    missing = undefined_names(_guide(), GUIDE.parent)
    assert not missing, f"{GUIDE.name}: names not defined in the linked file: {missing}"


@pytest.mark.parametrize("page, line", [
    ("README.md", "docs/how_it_works.md"), ("docs/ARCHITECTURE.md", "how_it_works.md")])
def test_guide_is_linked(page, line):
    text = (ROOT / page).read_text(encoding="utf-8")
    assert any(target == line for _, target in links(text)), f"{page} does not link {line}"


# ---- the checkers fail on a broken guide ----------------------------------------------------
SMALL = """\
Intro, a link to [`Softmax`](../tinygradattn/ops/fused.py).

```python
a = 1
```

```python
b = a + 1
assert b == 2
```
"""


def test_checkers_pass_on_a_good_copy():
    assert run_blocks(SMALL, GUIDE) is None
    assert broken_links(SMALL, GUIDE.parent) == []
    assert undefined_names(SMALL, GUIDE.parent) == []


def test_a_broken_snippet_is_named():
    broken = SMALL.replace("assert b == 2", "assert b == 3, 'b is wrong'")
    message = run_blocks(broken, GUIDE)
    assert message == (f"{GUIDE.name}: python block 2 (line 8: `b = a + 1`) failed, line 9 "
                       "`assert b == 3, 'b is wrong'`: AssertionError: b is wrong")


def test_a_renamed_name_is_named():
    renamed = _guide().replace("[`QKVAttention`]", "[`QKVAttentionOp`]", 1)
    assert undefined_names(renamed, GUIDE.parent) == [
        "QKVAttentionOp (../tinygradattn/ops/attention.py)"]
    source = (ROOT / "tinygradattn/ops/attention.py").read_text(encoding="utf-8")
    gone = source.replace("class QKVAttention(", "class PackedAttention(")
    assert not _defines(gone, "QKVAttention", ".py")      # renaming the class breaks the cite


def test_a_missing_file_is_named():
    moved = SMALL.replace("ops/fused.py", "ops/fusion.py")
    assert broken_links(moved, GUIDE.parent) == ["../tinygradattn/ops/fusion.py"]
    assert undefined_names(moved, GUIDE.parent) == ["Softmax (../tinygradattn/ops/fusion.py)"]


@pytest.mark.parametrize("source, name, suffix", [
    ("class Softmax(Function):\n", "Softmax", ".py"),
    ("    def apply(cls, *args):\n", "apply", ".py"),
    ("softmax_fwd = staticmethod(K.softmax_fwd)\n", "softmax_fwd", ".py"),
    ("cdef void _softmax_bwd_rows(floating *dx,\n", "_softmax_bwd_rows", ".pyx"),
    ("def sdpa_fwd(out, lse, q, k, v, mask, bint is_causal, double scale):\n", "sdpa_fwd",
     ".pyx"),
    ("TGA_ATTN_TARGET static void TGA_ATTN_FN(tga_attn_fwd)(const tga_attn_args *A,\n",
     "tga_attn_fwd", ".h"),
    ("#define TGA_ATTN_BQ 64\n", "TGA_ATTN_BQ", ".h"),
])
def test_definitions_are_recognised(source, name, suffix):
    assert _defines(source, name, suffix)


@pytest.mark.parametrize("source, name, suffix", [
    ("    return Softmax.apply(x)\n", "Softmax", ".py"),                 # a use, not a definition
    ("if softmax_fwd == other:\n", "softmax_fwd", ".py"),
    ("        TGA_ATTN_FN(tga_attn_fwd)(A, bh, q0, scratch);\n", "tga_attn_fwd", ".h"),
])
def test_uses_are_not_definitions(source, name, suffix):
    assert not _defines(source, name, suffix)
