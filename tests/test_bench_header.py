"""``python -m cnnbook.bench`` starts with the machine its numbers hold for."""

from __future__ import annotations

import cnnbook.bench.__main__ as bench_main
from cnnbook.machine import facts


def test_bench_prints_the_machine_facts_first(monkeypatch, capsys):
    monkeypatch.setattr(bench_main, "SECTIONS", [])  # the header only, no timing
    assert bench_main.main([]) == 0
    lines = capsys.readouterr().out.splitlines()
    expected = str(facts()).splitlines()
    assert lines[0] == "cnnbook benchmark, measured on this machine:"
    # CPU, SIMD, NumPy, BLAS (a line per loaded library: numpy's, scipy's, ...) and the
    # OPENBLAS_* settings, exactly as cnnbook.machine.facts() prints them
    header = lines[1 : 1 + len(expected)]
    assert header == expected
    labels = [ln.split(":")[0] for ln in header if not ln.startswith(" ")]
    assert labels == ["CPU", "SIMD", "NumPy", "BLAS", "env"]
