"""The introduction's network: shapes and parameter counts come from cnnbook.models.

The page (chapters/00_introduction.md) and its figure (chapters/00_network.svg, drawn by
chapters/draw_network.py) state every layer's output shape for one 28x28 digit and its
parameter count, for the seed model and Chapter 7's variant. These tests compute them
from the models and check that the table, the prose and the figure say the same.
"""

import re
import sys
from pathlib import Path

import numpy as np
import pytest

from cnnbook.models import seed_cnn

CHAPTERS = Path(__file__).resolve().parent.parent / "chapters"
TEXT = (CHAPTERS / "00_introduction.md").read_text(encoding="utf-8")
SVG = (CHAPTERS / "00_network.svg").read_text(encoding="utf-8")
VARIANTS = {"seed": {}, "ch7": dict(filters=16, kernel_size=5, padding=2)}


def layers_of(variant):
    """``[(name, output shape, parameter count)]`` for one digit, input first."""
    model = seed_cnn(rng=0, **VARIANTS[variant])
    x = np.zeros((1, 1, 28, 28), dtype=np.float32)
    rows = [("input", x.shape[1:], 0)]
    for layer in model:
        x = layer.forward(x)
        count = sum(int(p.size) for p in layer.params.values())
        rows.append((type(layer).__name__, x.shape[1:], count))
    return rows


def shape_text(shape, sep=" × "):
    return sep.join(f"{n:,}" if len(shape) == 1 else str(n) for n in shape)


def table_rows():
    rows = []
    for line in TEXT.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == 5 and not set(cells[0]) <= set("-"):
            rows.append(cells)
    assert rows[0][0] == "Layer", "the network table's header"
    return rows[1:]


def test_table_matches_the_models():
    rows = table_rows()
    seed, ch7 = layers_of("seed"), layers_of("ch7")
    assert len(rows) == len(seed) + 1  # the layers and a total
    for cells, (name, shape, count), (name7, shape7, count7) in zip(rows, seed, ch7):
        assert name == name7
        assert cells[0].lower().startswith(name.lower()), (cells[0], name)
        assert cells[1] == shape_text(shape)
        assert cells[2] == f"{count:,}"
        assert cells[3] == shape_text(shape7)
        assert cells[4] == f"{count7:,}"
    totals = rows[-1]
    assert totals[2] == f"**{sum(c for *_, c in seed):,}**"
    assert totals[4] == f"**{sum(c for *_, c in ch7):,}**"


def test_model_param_counts_are_the_formula_in_the_text():
    for variant, (filters, k), flat in (("seed", (8, 3), 1568), ("ch7", (16, 5), 3136)):
        _, conv, _, _, _, fc = layers_of(variant)
        assert conv[2] == filters * (k * k + 1)
        assert fc[2] == 10 * (flat + 1)
        assert f"{filters} × ({k} · {k} + 1) = {conv[2]:,}" in TEXT
        assert f"10 × ({flat:,} + 1) = {fc[2]:,}" in TEXT
    assert "8 × 14 × 14 = 1,568" in TEXT


def test_figure_and_its_alt_text_carry_the_same_numbers():
    alt = re.search(r":alt: (.*)", TEXT).group(1)
    for variant in VARIANTS:
        rows = layers_of(variant)
        total = sum(c for *_, c in rows)
        assert f"{total:,} parameters" in SVG
        assert f"{total:,}" in alt
        for _, shape, count in rows:
            assert shape_text(shape, "×").replace(",", "") in SVG
            assert shape_text(shape, "×").replace(",", "") in alt
            if count:
                assert f"{count:,} params" in SVG
                assert f"{count:,}" in alt


def test_the_figure_is_what_the_script_draws(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    sys.path.insert(0, str(CHAPTERS))
    try:
        import draw_network
    finally:
        sys.path.remove(str(CHAPTERS))
    monkeypatch.setattr(draw_network, "OUT", tmp_path / "network.svg")
    draw_network.draw()
    drawn = re.findall(r">([^<>]+)</text>", (tmp_path / "network.svg").read_text())
    assert drawn == re.findall(r">([^<>]+)</text>", SVG)  # same labels and numbers
