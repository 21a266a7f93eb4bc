"""The exercises: each notebook's boxes, the registry and the index page agree.

Every chapter's exercises are registered in ``cnnbook/exercises/chNN.py`` as
``EXERCISES``; ``chapters/make_exercise_index.py`` writes ``chapters/exercises.md`` from
them. These tests read the notebooks themselves: the headers and labels of their
``exercise-start`` boxes, in order, the stub the reader edits (it raises
``NotImplementedError``, so its checker reports "not implemented yet"), and the folded
solution after it.
"""

import importlib.util
import json
import re
from pathlib import Path

import pytest

import cnnbook.exercises as exercises
from cnnbook.exercises._core import Exercise

CHAPTERS = Path(__file__).resolve().parent.parent / "chapters"
spec = importlib.util.spec_from_file_location(
    "make_exercise_index", CHAPTERS / "make_exercise_index.py"
)
make_index = importlib.util.module_from_spec(spec)
spec.loader.exec_module(make_index)

NOTEBOOKS = make_index.chapter_notebooks()
REGISTRY = make_index.registry()
START = re.compile(r"```\{exercise-start\} (.+)\n:label: (\S+)\n:nonumber:\n")


def boxes(notebook: Path):
    """``[(header, label, stub source, solution cell)]`` in notebook order."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    found = []
    for i, cell in enumerate(cells):
        text = "".join(cell["source"])
        if cell["cell_type"] != "markdown" or "{exercise-start}" not in text:
            continue
        match = START.search(text)
        assert match, f"{notebook.name}: exercise box not in the standard form:\n{text}"
        code = [c for c in cells[i + 1 :] if c["cell_type"] == "code"]
        stub, solution = code[0], code[1]
        found.append((match[1], match[2], "".join(stub["source"]), solution))
    return found


@pytest.mark.parametrize("number", sorted(NOTEBOOKS), ids=lambda n: f"chapter{n:02d}")
def test_notebook_boxes_match_the_registry(number):
    notebook = NOTEBOOKS[number]
    found = boxes(notebook)
    registered = REGISTRY.get(number, [])
    assert [(h, lab) for h, lab, _, _ in found] == [
        (ex.header, ex.label) for ex in registered
    ], f"{notebook.name}'s exercise boxes and cnnbook.exercises.ch{number:02d}"
    for position, ex in enumerate(registered, start=1):
        assert ex.number == f"{number}.{position}", ex
        assert ex.label.startswith(f"ex{number:02d}-"), ex
        assert hasattr(exercises, ex.checker), f"no checker {ex.checker}"


@pytest.mark.parametrize("number", sorted(NOTEBOOKS), ids=lambda n: f"chapter{n:02d}")
def test_stub_raises_and_solution_is_folded_and_checked(number):
    for header, _, stub, solution in boxes(NOTEBOOKS[number]):
        checker = next(ex.checker for ex in REGISTRY[number] if ex.header == header)
        assert "raise NotImplementedError" in stub, header
        assert checker in stub, f"{header}: the stub cell runs {checker}"
        assert solution["metadata"].get("jupyter", {}).get("source_hidden"), header
        assert checker in "".join(solution["source"]), header
        printed = "".join(
            "".join(o.get("text", ""))
            + "".join(o.get("data", {}).get("text/plain", ""))
            for o in solution.get("outputs", [])
        )
        assert "✓" in printed, f"{header}: the stored solution passes its checker"


def test_the_index_page_is_up_to_date():
    assert (CHAPTERS / "exercises.md").read_text(encoding="utf-8") == make_index.page()


def test_a_misregistered_exercise_is_refused():
    with pytest.raises(ValueError, match="difficulty"):
        Exercise("1.1", "t", "hard", "prediction", "s", "check_x", "ex01-x")
    with pytest.raises(ValueError, match="kind"):
        Exercise("1.1", "t", "easy", "retype", "s", "check_x", "ex01-x")


@pytest.mark.parametrize("number", sorted(NOTEBOOKS), ids=lambda n: f"chapter{n:02d}")
def test_three_exercises_per_chapter_two_that_need_thought(number):
    listed = REGISTRY.get(number, [])
    assert len(listed) >= 3, f"chapter {number} has {len(listed)} exercises"
    thought = [ex.number for ex in listed if ex.needs_thought]
    assert len(thought) >= 2, f"chapter {number}: only {thought} need thought"
