"""Show the package's own source in a notebook, so the book keeps no copy that drifts.

``show(cnnbook.signal.conv1d)`` displays the function's source as a highlighted code
block, with the file and line numbers it came from. In JupyterLab and on the built
site it renders as Markdown (a fenced ``python`` block, highlighted by the front end);
the plain-text form is the source itself, so nbval notices when the package changes and
the notebook was not re-run.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

__all__ = ["show", "Source"]

_PACKAGE_ROOT = Path(__file__).resolve().parent.parent


class Source:
    """Source text of a Python object, displayable in Jupyter."""

    def __init__(self, code: str, origin: str):
        self.code = code
        self.origin = origin

    def _repr_markdown_(self) -> str:
        # The fence must be longer than any backtick run inside the code.
        longest = max((len(run) for run in re.findall(r"`+", self.code)), default=0)
        fence = "`" * max(3, longest + 1)
        header = "  \n".join(f"*{origin}*" for origin in self._origins())
        return f"{header}\n\n{fence}python\n{self.code}\n{fence}\n"

    def __repr__(self) -> str:
        header = "\n".join(f"# {origin}" for origin in self._origins())
        return f"{header}\n{self.code}"

    def _origins(self) -> list[str]:
        # one line per origin when together they do not fit the 88-column text column
        if len(self.origin) + 2 <= 88:
            return [self.origin]
        return self.origin.split("; ")


def show(*objects) -> Source:
    """Return the source of one or more functions, classes or modules for display.

    Several objects are shown one after the other, in the order given.
    """
    if not objects:
        raise TypeError("show() needs at least one function, class or module")
    parts, origins = [], []
    for obj in objects:
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
        end = start + len(lines) - 1
        parts.append("".join(lines).rstrip("\n"))
        origins.append(f"{name}, lines {max(start, 1)}–{end}")
    return Source("\n\n\n".join(parts), "; ".join(origins))
