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
    # CPU, SIMD, NumPy, BLAS (library, kernel, threads) and the OPENBLAS_* settings
    assert [ln.split(":")[0] for ln in lines[1:6]] == [
        "CPU",
        "SIMD",
        "NumPy",
        "BLAS",
        "env",
    ]
    assert lines[1:6] == expected
