"""nbval's sanitizer: glued figures are not compared byte for byte.

nbval skips ``image/png``, but MyST-NB ``glue`` stores a figure's PNG a second time,
under ``application/papermill.record/image/png``, and nbval compares that. Its bytes
move with float rounding (CI's robustness pass changed five figures in chapter 7), so
``tests/nbval_sanitize.cfg`` replaces any PNG payload with a placeholder. The figure's
``text/plain`` (``<Figure size ...>``) is still compared.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MIME = "application/papermill.record/image/png"
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAAB"


def _notebook(run_png: str, stored_png: str) -> dict:
    source = (
        "from IPython.display import display\n"
        f"display({{{MIME!r}: {run_png!r}, 'text/plain': '<Figure>'}}, raw=True)"
    )
    output = {
        "output_type": "display_data",
        "metadata": {},
        "data": {MIME: stored_png, "text/plain": "<Figure>"},
    }
    cell = {
        "cell_type": "code",
        "execution_count": 1,
        "metadata": {},
        "outputs": [output],
        "source": source,
    }
    kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return {
        "cells": [cell],
        "metadata": {"kernelspec": kernelspec},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def _nbval(tmp_path: Path, *options: str) -> int:
    notebook = tmp_path / "glued.ipynb"
    notebook.write_text(json.dumps(_notebook(PNG + "AAAA\n", PNG + "BBBB\n")))
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    command += ["--nbval", "--nbval-current-env", *options, str(notebook)]
    return subprocess.run(command, cwd=tmp_path, capture_output=True).returncode


def test_glued_png_bytes_are_not_compared(tmp_path):
    cfg = str(ROOT / "tests" / "nbval_sanitize.cfg")
    assert _nbval(tmp_path, "--nbval-sanitize-with", cfg) == 0
    assert _nbval(tmp_path) == 1  # without the sanitizer the bytes differ


def _listing_nbval(tmp_path: Path, printed: str, stored: str) -> int:
    notebook = _notebook("", "")
    cell = notebook["cells"][0]
    cell["source"] = f"print({printed!r}, end='')"
    cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": stored}]
    path = tmp_path / "listing.ipynb"
    path.write_text(json.dumps(notebook))
    cfg = str(ROOT / "tests" / "nbval_sanitize.cfg")
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    command += ["--nbval", "--nbval-current-env", "--nbval-sanitize-with", cfg]
    return subprocess.run(
        command + [str(path)], cwd=tmp_path, capture_output=True
    ).returncode


def test_listing_line_numbers_move_but_the_code_is_compared(tmp_path):
    # cnnbook.show's header names the module's lines; an edit above them moves them.
    stored = "*cnnbook/functional.py, lines 551–554*\ndef relu(x):\n    return x\n"
    moved = stored.replace("551–554", "530–533")
    assert _listing_nbval(tmp_path, moved, stored) == 0
    assert _listing_nbval(tmp_path, moved.replace("return x", "return -x"), stored) == 1
