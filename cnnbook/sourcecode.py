"""Show the package's own source in a notebook, so the book keeps no copy that drifts.

``show(cnnbook.signal.conv1d)`` displays the function's source as a highlighted code
block, with the file and line numbers it came from. In JupyterLab and on the built
site it renders as Markdown (a fenced ``python`` block, highlighted by the front end);
the plain-text form is the source itself, so nbval notices when the package changes and
the notebook was not re-run.

``show(f, docstrings=False)`` leaves the docstrings out (the text around a listing
says what they say), ``excerpt(f, "for n in range(N)")`` shows a function from one
line on, and ``diff(f, g)`` shows only the lines in which ``g`` differs from ``f``.
"""

from __future__ import annotations

import ast
import difflib
import inspect
import re
import textwrap
from pathlib import Path

__all__ = ["show", "excerpt", "diff", "Source", "Diff"]

_PACKAGE_ROOT = Path(__file__).resolve().parent.parent


class Source:
    """Source text of a Python object, displayable in Jupyter."""

    language = "python"  # the fenced block's lexer

    def __init__(self, code: str, origin: str):
        self.code = code
        self.origin = origin

    def _repr_markdown_(self) -> str:
        # The fence must be longer than any backtick run inside the code.
        longest = max((len(run) for run in re.findall(r"`+", self.code)), default=0)
        fence = "`" * max(3, longest + 1)
        header = "  \n".join(f"*{origin}*" for origin in self._origins())
        return f"{header}\n\n{fence}{self.language}\n{self.code}\n{fence}\n"

    def __repr__(self) -> str:
        header = "\n".join(f"# {origin}" for origin in self._origins())
        return f"{header}\n{self.code}"

    def _origins(self) -> list[str]:
        # one line per origin when together they do not fit the 88-column text column
        if len(self.origin) + 2 <= 88:
            return [self.origin]
        return self.origin.split("; ")


class Diff(Source):
    """A unified diff of two functions' source, displayed as a ``diff`` block."""

    language = "diff"


def _lines(obj, docstrings: bool = True) -> tuple[str, list[tuple[int, str]]]:
    # (file name, [(line number in the file, text)]) of obj's source
    obj = inspect.unwrap(obj)  # show a cached/decorated function's own code
    try:
        lines, start = inspect.getsourcelines(obj)
        path = Path(inspect.getsourcefile(obj)).resolve()
    except (TypeError, OSError) as err:
        raise TypeError(f"cannot show the source of {obj!r}: {err}") from None
    try:
        name = path.relative_to(_PACKAGE_ROOT).as_posix()
    except ValueError:
        name = path.name
    # a module's source starts at line 0 for inspect, at line 1 in its file
    numbered = list(enumerate((line.rstrip("\n") for line in lines), max(start, 1)))
    while numbered and not numbered[-1][1].strip():
        numbered.pop()  # trailing blank lines (a module's end)
    if not docstrings:
        dropped = _docstring_lines(obj, numbered[0][0], numbered[-1][0])
        numbered = [(n, text) for n, text in numbered if n not in dropped]
    return name, numbered


def _docstring_lines(obj, first: int, last: int) -> set[int]:
    # numbers of the lines between first and last (inclusive) that hold nothing but
    # the docstring of a module, class or function
    file_lines = inspect.findsource(obj)[0]
    tree = ast.parse("".join(file_lines))
    kinds = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    dropped = set()
    for node in ast.walk(tree):
        if not isinstance(node, kinds) or not node.body:
            continue
        doc = node.body[0]
        if not (
            isinstance(doc, ast.Expr)
            and isinstance(doc.value, ast.Constant)
            and isinstance(doc.value.value, str)
            and first <= doc.lineno
            and doc.end_lineno <= last
        ):
            continue
        # only when the docstring has its lines to itself (not `def f(): "doc"`)
        before = file_lines[doc.lineno - 1].encode()[: doc.col_offset]
        after = file_lines[doc.end_lineno - 1].encode()[doc.end_col_offset :]
        if before.strip() or after.strip():
            continue
        dropped.update(range(doc.lineno, doc.end_lineno + 1))
    return dropped


def _span(name: str, numbered: list[tuple[int, str]]) -> str:
    return f"{name}, lines {numbered[0][0]}–{numbered[-1][0]}"


def show(*objects, docstrings: bool = True) -> Source:
    """Return the source of one or more functions, classes or modules for display.

    Several objects are shown one after the other, in the order given. With
    ``docstrings=False`` the docstrings are left out; the header still names the
    first and last line shown.
    """
    if not objects:
        raise TypeError("show() needs at least one function, class or module")
    parts, origins = [], []
    for obj in objects:
        name, numbered = _lines(obj, docstrings)
        parts.append("\n".join(text for _, text in numbered))
        origins.append(_span(name, numbered))
    return Source("\n\n\n".join(parts), "; ".join(origins))


def excerpt(obj, first: str) -> Source:
    """Return ``obj``'s source from the line that starts with ``first`` to its end.

    The excerpt is dedented; docstrings are left out. The header names the file, the
    lines and ``obj``. ``ValueError`` when no line starts with ``first``.
    """
    if not isinstance(first, str) or not first.strip():
        raise TypeError(f"excerpt: first must be the start of a line, got {first!r}")
    name, numbered = _lines(obj, docstrings=False)
    title = getattr(obj, "__name__", repr(obj))
    starts = (
        k for k, (_, text) in enumerate(numbered) if text.lstrip().startswith(first)
    )
    k = next(starts, None)
    if k is None:
        raise ValueError(f"excerpt: no line of {title} ({name}) starts with {first!r}")
    code = textwrap.dedent("\n".join(text for _, text in numbered[k:]))
    return Source(code, f"{_span(name, numbered[k:])} ({title})")


def diff(old, new) -> Diff:
    """Return the lines in which ``new``'s source differs from ``old``'s, as a diff.

    Docstrings are left out; one line of context around each change. Each hunk is
    headed by the line number in ``new``'s file where it starts. ``ValueError`` when
    the two sources are the same.
    """
    (_, a), (name, b) = _lines(old, docstrings=False), _lines(new, docstrings=False)
    lines = difflib.unified_diff(
        [text for _, text in a], [text for _, text in b], n=1, lineterm=""
    )
    body = []
    for line in list(lines)[2:]:  # without the ---/+++ lines
        hunk = re.match(r"@@ -\d+(?:,\d+)? \+(\d+)", line)
        # a hunk with no lines of new (+k,0) starts after its line k
        body.append(f"@@ line {b[max(int(hunk[1]), 1) - 1][0]} @@" if hunk else line)
    old_name = getattr(old, "__name__", repr(old))
    new_name = getattr(new, "__name__", repr(new))
    if not body:
        raise ValueError(f"diff: {new_name} and {old_name} have the same source")
    return Diff("\n".join(body), f"{name}: {new_name}, changes to {old_name}")
