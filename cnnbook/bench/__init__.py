"""Benchmarks: ``python -m cnnbook.bench [--quick] [--only SECTION ...]``.

Speed claims in the book are *ratios measured side by side in one run*, never absolute
times asserted in a test. Each section is a module of this package with a
``run(quick: bool) -> list[Table]`` function; ``SECTIONS`` lists them in the order they
print. A section whose optional dependency is missing says so and is skipped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

__all__ = ["SECTIONS", "Table", "best_time", "best_times"]

# Chapter order. A section module that does not exist yet is skipped silently.
SECTIONS = ["conv1d", "conv2d", "gemm", "training", "goals"]


def best_time(
    fn: Callable[[], object],
    *,
    repeat: int = 5,
    number: int | None = None,
    min_time: float = 0.02,
) -> float:
    """Seconds per call of ``fn``: the minimum over ``repeat`` rounds.

    The minimum, not the mean: on a noisy machine every disturbance makes a run slower,
    never faster, so the fastest round is the best estimate of the code's own cost.
    ``number`` calls per round are chosen (when not given) so that one round lasts at
    least ``min_time`` seconds.
    """
    # Warm up: first-call costs (allocation, JIT compilation, caches) are not the
    # steady state.
    fn()
    if number is None:
        number = _calls_per_round(fn, min_time)
    return min(_seconds_per_call(fn, number) for _ in range(repeat))


def best_times(
    fns: dict[str, Callable[[], object]], *, rounds: int = 7, min_time: float = 0.02
) -> dict[str, float]:
    """Seconds per call of each function in ``fns``, timed **side by side**.

    Each round times every function once and each keeps its fastest round.
    Interleaving spreads every function's samples over the whole measurement, so a
    burst of load from another process slows all of them in some rounds instead of one
    of them in all its rounds: a comparison between them stays fair on a busy machine.
    """
    for fn in fns.values():
        fn()  # warm-up, as in best_time
    number = {name: _calls_per_round(fn, min_time) for name, fn in fns.items()}
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(rounds):
        for name, fn in fns.items():
            best[name] = min(best[name], _seconds_per_call(fn, number[name]))
    return best


def _calls_per_round(fn: Callable[[], object], min_time: float) -> int:
    """How many calls of ``fn`` last at least ``min_time`` seconds (doubling)."""
    return _calibrate(fn, min_time)[0]


def _calibrate(fn: Callable[[], object], min_time: float) -> tuple[int, float]:
    """Calls per round (doubling until a round lasts ``min_time``) and the seconds per
    call of that last round, which a caller may count as its first round."""
    number = 1
    while True:
        seconds = _seconds_per_call(fn, number)
        if seconds * number >= min_time or number >= 1 << 20:
            return number, seconds
        number *= 2


def _seconds_per_call(fn: Callable[[], object], number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - start) / number


@dataclass
class Table:
    """A titled table of rows, printed with aligned columns."""

    title: str
    columns: list[str]
    rows: list[list] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *row) -> None:
        if len(row) != len(self.columns):
            raise ValueError(
                f"row has {len(row)} cells, "
                f"table {self.title!r} has {len(self.columns)} columns"
            )
        self.rows.append(list(row))

    def format(self) -> str:
        def cell(v):
            if isinstance(v, float):
                return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"
            return str(v)

        text = [[cell(v) for v in row] for row in self.rows]
        widths = [
            max(len(c), *(len(r[i]) for r in text)) for i, c in enumerate(self.columns)
        ]
        line = "  ".join(c.ljust(w) for c, w in zip(self.columns, widths))
        out = [self.title, "=" * len(self.title), line, "-" * len(line)]
        out += [
            "  ".join(
                v.rjust(w) if i else v.ljust(w)
                for i, (v, w) in enumerate(zip(r, widths))
            )
            for r in text
        ]
        out += [f"  {note}" for note in self.notes]
        return "\n".join(out)

    def __str__(self) -> str:
        return self.format()
