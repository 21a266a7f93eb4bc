"""nbval's sanitizer (``tests/nbval_sanitize.cfg``): what it blanks, what it compares.

* Glued figures are not compared byte for byte. nbval skips ``image/png``, but MyST-NB
  ``glue`` stores a figure's PNG a second time, under
  ``application/papermill.record/image/png``, and nbval compares that. Its bytes move
  with float rounding (CI's robustness pass changed five figures in chapter 7), so the
  sanitizer replaces any PNG payload with a placeholder. The figure's ``text/plain``
  (``<Figure size ...>``) is still compared.
* ``cnnbook.show``'s header names the module's lines; an edit above them moves them, so
  the line numbers are blanked, while the listing itself is still compared.

One small notebook holds one cell per case, and nbval runs it twice, with and without
the sanitizer (one kernel each): nbval checks every cell on its own (one test item per
cell, ``listing.ipynb::Cell N``), so each cell's outcome is read from pytest's JUnit
report. Without the sanitizer every case fails: the cells' outputs really differ, and
the sanitizer is what makes the first two pass.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MIME = "application/papermill.record/image/png"
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAAB"
LISTING = "*cnnbook/functional.py, lines 551–554*\ndef relu(x):\n    return x\n"
MOVED = LISTING.replace("551–554", "530–533")


def _cell(source: str, output: dict) -> dict:
    return {
        "cell_type": "code",
        "execution_count": 1,
        "metadata": {},
        "outputs": [output],
        "source": source,
    }


def _glued(run_png: str, stored_png: str) -> dict:
    """A cell that displays a glued PNG, stored with other bytes than it prints."""
    source = (
        "from IPython.display import display\n"
        f"display({{{MIME!r}: {run_png!r}, 'text/plain': '<Figure>'}}, raw=True)"
    )
    output = {
        "output_type": "display_data",
        "metadata": {},
        "data": {MIME: stored_png, "text/plain": "<Figure>"},
    }
    return _cell(source, output)


def _listing(printed: str, stored: str) -> dict:
    """A cell that prints ``printed`` where the notebook stores ``stored``."""
    output = {"output_type": "stream", "name": "stdout", "text": stored}
    return _cell(f"print({printed!r}, end='')", output)


CASES = {
    "glued PNG, other bytes": _glued(PNG + "AAAA\n", PNG + "BBBB\n"),
    "listing, lines moved": _listing(MOVED, LISTING),
    "listing, lines moved and code changed": _listing(
        MOVED.replace("return x", "return -x"), LISTING
    ),
}


def _outcomes(tmp: Path, *options: str) -> dict[str, str]:
    """Run nbval over the notebook of CASES; each case's outcome, by case name."""
    kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook = {
        "cells": list(CASES.values()),
        "metadata": {"kernelspec": kernelspec},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path = tmp / "listing.ipynb"
    path.write_text(json.dumps(notebook))
    report = tmp / "report.xml"
    # Isolated from the repository: its own empty ini file (a path argument such as the
    # sanitizer's would otherwise make pytest find pyproject.toml, and with it addopts'
    # `-n 2`), and nbval as the only plugin (hypothesis, xdist, ... only cost time).
    ini = tmp / "pytest.ini"
    ini.write_text("[pytest]\n")
    command = [sys.executable, "-m", "pytest", "-q", "-c", str(ini), f"--rootdir={tmp}"]
    command += ["-p", "no:cacheprovider", "-p", "nbval.plugin"]
    command += ["--nbval", "--nbval-current-env", f"--junitxml={report}", *options]
    command.append(str(path))
    env = dict(os.environ, PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
    run = subprocess.run(command, cwd=tmp, env=env, capture_output=True, text=True)
    assert report.is_file(), (
        f"nbval did not run:\n{run.stdout[-3000:]}{run.stderr[-3000:]}"
    )
    outcomes = {}
    for case in ET.parse(report).iter("testcase"):
        failed = any(child.tag in ("failure", "error") for child in case)
        outcomes[case.get("name")] = "failed" if failed else "passed"
    return {name: outcomes.get(f"Cell {i}") for i, name in enumerate(CASES)}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[str, dict[str, str]]:
    cfg = str(ROOT / "tests" / "nbval_sanitize.cfg")
    return {
        "sanitized": _outcomes(
            tmp_path_factory.mktemp("sanitized"), "--nbval-sanitize-with", cfg
        ),
        "raw": _outcomes(tmp_path_factory.mktemp("raw")),
    }


def test_without_the_sanitizer_every_case_fails(outcomes):
    assert outcomes["raw"] == dict.fromkeys(CASES, "failed")


def test_glued_png_bytes_are_not_compared(outcomes):
    assert outcomes["sanitized"]["glued PNG, other bytes"] == "passed"


def test_listing_line_numbers_move_but_the_code_is_compared(outcomes):
    assert outcomes["sanitized"]["listing, lines moved"] == "passed"
    assert outcomes["sanitized"]["listing, lines moved and code changed"] == "failed"
