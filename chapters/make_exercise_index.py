"""Write the exercise index page, ``chapters/exercises.md``, from the exercise registry.

Run ``python chapters/make_exercise_index.py`` after adding or changing an exercise.
Each chapter's checker module (``cnnbook/exercises/chNN.py``) registers its exercises in
``EXERCISES``; the chapter titles come from the notebooks' ``#`` headings.
``tests/test_exercise_index.py`` checks that this page, the registry and every
notebook's exercise boxes agree.
"""

from __future__ import annotations

import json
from importlib import import_module
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "exercises.md"

INTRO = """\
# Exercises

Every chapter ends with its exercises. Each one names what it asks of you: a
**prediction** or a **derivation** to make before any code runs, a **diagnosis** of a
given failure, a **tuning** to measure, or an **implementation**. In a notebook, write
your answer in the cell that raises `NotImplementedError` and run the checker after it;
`import cnnbook.exercises` gives you the same checkers anywhere
(`cnnbook.exercises.check_<name>(your_function)`). A checker tries cases you do not
see, and when one fails it shows the input, what it expected, and a hint at the usual
mistake. The solutions are folded under each exercise: open them after you have tried.
"""


def chapter_notebooks() -> dict[int, Path]:
    return {int(p.name[:2]): p for p in sorted(HERE.glob("[0-9][0-9]_*.ipynb"))}


def chapter_title(notebook: Path) -> str:
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    for cell in cells:
        for line in "".join(cell["source"]).splitlines():
            if cell["cell_type"] == "markdown" and line.startswith("# "):
                return line[2:].strip()
    raise ValueError(f"{notebook.name} has no '# ' title")


def registry() -> dict[int, list]:
    """Chapter number -> its registered exercises, in order."""
    found = {}
    for number in chapter_notebooks():
        try:
            module = import_module(f"cnnbook.exercises.ch{number:02d}")
        except ModuleNotFoundError:
            continue
        found[number] = list(getattr(module, "EXERCISES", []))
    return found


def page() -> str:
    notebooks = chapter_notebooks()
    exercises = registry()
    lines = [INTRO]
    total = thought = 0
    for number, notebook in notebooks.items():
        listed = exercises.get(number, [])
        if not listed:
            continue
        lines.append(f"## {{doc}}`{chapter_title(notebook)} <{notebook.stem}>`\n")
        for ex in listed:
            total += 1
            thought += ex.needs_thought
            lines.append(
                f"- {{ref}}`{ex.number}: {ex.title} <{ex.label}>`: {ex.difficulty}, "
                f"{ex.kind}. Trains: {ex.skills}. Checker: `{ex.checker}`."
            )
        lines.append("")
    lines.insert(
        1,
        f"There are {total} exercises; {thought} of them ask for something the chapter "
        "has not printed (all but the implementations).\n",
    )
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    OUT.write_text(page(), encoding="utf-8")
    print(f"wrote {OUT}")
