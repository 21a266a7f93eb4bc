"""Checkers for the exercises of Chapter 10 (a tiny BLAS)."""

from __future__ import annotations

from typing import Callable

import numpy as np

from ._core import Case, CheckResult, Exercise, require_function, run_cases

__all__ = [
    "check_choose_tile",
    "check_tile_intensity",
    "check_blis_kc",
    "check_matmul_ikj",
]

EXERCISES = [
    Exercise(
        "10.1",
        "The i-k-j loop order",
        "easy",
        "implementation",
        "loop order, strides, in-place updates",
        "check_matmul_ikj",
        "ex10-ikj",
    ),
    Exercise(
        "10.2",
        "Choose MR × NR for a register file",
        "medium",
        "tuning",
        "register tiles, FMA latency and throughput, load ports",
        "check_choose_tile",
        "ex10-choose-tile",
    ),
    Exercise(
        "10.3",
        "The arithmetic intensity of a register tile",
        "medium",
        "derivation",
        "arithmetic intensity, data reuse in registers",
        "check_tile_intensity",
        "ex10-tile-intensity",
    ),
    Exercise(
        "10.4",
        "kc for another cache and another precision",
        "harder",
        "derivation",
        "set-associative caches, BLIS analytical model",
        "check_blis_kc",
        "ex10-blis-kc",
    ),
]

ALONG_ROWS = "innermost loop over j: B and C read along their rows"

# The rules of exercise 10.2 (Chapter 10, "Step 4"): FMA latency 5 cycles, 2 FMA units.
_LATENCY, _UNITS = 5, 2


def _call(fn, *args):
    """fn(*args), or None when it raises (run_cases reports the exception itself)."""
    try:
        return fn(*args)
    except Exception:  # the reader's code may raise anything
        return None


def _best_tile(registers: int, lanes: int) -> tuple[int, int]:
    """The tile the rules of exercise 10.2 choose, by brute force."""
    best_key, best = None, None
    for v in range(1, registers):
        for mr in range(1, registers):
            if mr * v + v + 1 > registers:
                break
            acc = mr * v
            key = (
                acc >= _LATENCY * _UNITS and mr + v <= acc,
                mr * v * lanes / (mr + v * lanes),
                -v,
            )
            if best_key is None or key > best_key:
                best_key, best = key, (mr, v * lanes)
    return best


def _tile_hint(fn, registers: int, lanes: int) -> str:
    got = _call(fn, registers, lanes)
    try:
        mr, nr = (int(x) for x in got)
        if (mr, nr) != tuple(got) or mr < 1 or nr < 1:
            raise ValueError
    except (TypeError, ValueError):
        return "return two positive integers (MR, NR)"
    if nr % lanes:
        return (
            f"NR = {nr} is not a whole number of {lanes}-lane vectors: a row of the "
            "tile must fill whole vector registers"
        )
    v = nr // lanes
    if mr * v > registers:
        return (
            "the accumulators alone (MR · NR / lanes vectors) need more registers "
            "than the file has: the tile spills"
        )
    if mr * v + v + 1 > registers:
        return (
            "count every register a step needs: the MR · NR/lanes accumulators, plus "
            "NR/lanes for the row of B, plus 1 for the broadcast of A"
        )
    if mr * v < _LATENCY * _UNITS:
        return (
            f"only {mr * v} independent accumulators: with 2 FMA units of latency 5, "
            "at least 10 FMAs must be in flight, or the units wait"
        )
    if mr + v > mr * v:
        return (
            f"this tile issues {mr + v} loads (MR broadcasts + NR/lanes vectors) for "
            f"only {mr * v} FMAs per step: the load ports, not the FMA units, set "
            "the pace"
        )
    return (
        "the tile fits and keeps the units busy, but another that fits has more "
        "flops per float loaded, MR · NR / (MR + NR)"
    )


def check_choose_tile(fn: Callable) -> CheckResult:
    """``fn(registers, lanes)`` returns the register tile ``(MR, NR)`` for a vector
    register file of ``registers`` registers of ``lanes`` float32 each, under the rules
    of the exercise: fits (MR·NR/lanes + NR/lanes + 1 ≤ registers), NR a multiple of
    lanes, at least 10 accumulators, no more loads than FMAs per step, and the largest
    MR·NR/(MR+NR) among those."""
    require_function("choose_tile", fn)
    cases = []
    for registers, lanes in ((16, 8), (32, 16), (32, 4), (16, 4), (24, 8), (32, 8)):
        cases.append(
            Case(
                (registers, lanes),
                _best_tile(registers, lanes),
                hint=_tile_hint(fn, registers, lanes),
            )
        )
    return run_cases("choose_tile", fn, cases)


class _TracedRow:
    def __init__(self, parent: "_Traced", i: int):
        self._parent, self._i = parent, i

    def __getitem__(self, j):
        return self._parent[self._i, j]

    def __setitem__(self, j, value):
        self._parent[self._i, j] = value

    def __len__(self):
        return self._parent.shape[1]


class _Traced:
    """A 2-D array stand-in that records which elements are read, in order (loop-order
    check)."""

    def __init__(self, data: np.ndarray, name: str, log: list):
        self.data, self.name, self._log = data, name, log
        self.shape, self.ndim, self.dtype = data.shape, data.ndim, data.dtype

    def __len__(self):
        return self.shape[0]

    def _index(self, idx):
        if (
            isinstance(idx, tuple)
            and len(idx) == 2
            and all(
                isinstance(i, (int, np.integer)) and not isinstance(i, bool)
                for i in idx
            )
        ):
            return int(idx[0]), int(idx[1])
        raise TypeError(
            f"index {self.name} one element at a time, like {self.name}[i, j] "
            "(this exercise is about the order of the three loops),"
            f" got {self.name}[{idx!r}]"
        )

    def __getitem__(self, idx):
        if isinstance(idx, (int, np.integer)) and not isinstance(idx, bool):
            return _TracedRow(self, int(idx))
        i, j = self._index(idx)
        self._log.append((self.name, i, j))
        return self.data[i, j]

    def __setitem__(self, idx, value):
        i, j = self._index(idx)
        self.data[i, j] = value


def _loop_order(log: list) -> str:
    """Describe the innermost loop from the sequence of reads of B."""
    reads = [(i, j) for name, i, j in log if name == "B"]
    along = sum(
        1 for (p1, j1), (p2, j2) in zip(reads, reads[1:]) if p2 == p1 and j2 == j1 + 1
    )
    down = sum(
        1 for (p1, j1), (p2, j2) in zip(reads, reads[1:]) if j2 == j1 and p2 == p1 + 1
    )
    if along > down:
        return ALONG_ROWS
    if down > along:
        return "innermost loop over p (k): B read down its columns"
    return "innermost loop unclear: B was read in no regular order"


def check_matmul_ikj(fn: Callable) -> CheckResult:
    """``fn(A, B, C)`` adds ``A @ B`` to ``C`` in place (C: (m, n), A: (m, k), B: (k,
    n)) with three plain loops in the order i, p (the inner dimension k), j — indexing
    one element at a time, like ``C[i, j] += A[i, p] * B[p, j]``. The checker records
    the order in which B's elements are read."""
    require_function("matmul_ikj", fn)
    rng = np.random.default_rng(10)

    def traced(A, B, C):
        log: list = []
        fn(_Traced(A, "A", log), _Traced(B, "B", log), _Traced(C, "C", log))
        return C, _loop_order(log)

    traced.__name__ = getattr(fn, "__name__", "matmul_ikj")
    cases = []
    for m, k, n in ((2, 3, 4), (3, 5, 6), (4, 2, 7), (1, 4, 5)):
        A = rng.integers(-3, 4, (m, k)).astype(np.float64)
        B = rng.integers(-3, 4, (k, n)).astype(np.float64)
        C = rng.integers(-3, 4, (m, n)).astype(np.float64)
        cases.append(
            Case(
                (A, B, C),
                (C + A @ B, ALONG_ROWS),
                hint="C += A @ B, in place: add to C's elements, keep the old values, "
                "and let the loop over j be the innermost one",
            )
        )
    return run_cases("matmul_ikj", traced, cases)


def _hinted(fn, args, expected, mistakes, default):
    """The hint of the first typical mistake whose answer ``fn`` gave, else
    ``default``."""
    got = _call(fn, *args)
    if got is None:
        return default
    for wrong, hint in mistakes:
        try:
            if np.isclose(float(got), float(wrong(*args)), rtol=1e-9, atol=0):
                return hint
        except (TypeError, ValueError):
            return "return one number"
    return default


def check_tile_intensity(fn: Callable) -> CheckResult:
    """``fn(mr, nr)`` returns the arithmetic intensity, in flops per *byte* loaded, of
    one step p of an ``mr × nr`` micro-kernel in float32: it loads mr floats of A and
    nr floats of B (4 bytes each) and does mr·nr multiply-adds (2 flops each); the C
    tile stays in registers."""
    mistakes = [
        (
            lambda mr, nr: mr * nr / (mr + nr) / 4,
            "a multiply-add is 2 flops (an FMA counts as two)",
        ),
        (
            lambda mr, nr: 2 * mr * nr / (mr + nr),
            "that is flops per float; a float32 is 4 bytes",
        ),
        (
            lambda mr, nr: 2 * mr * nr / (4 * (mr * nr + mr + nr)),
            "the C tile stays in registers for all kc steps: a step loads only A and B",
        ),
        (
            lambda mr, nr: 2 * mr * nr / (4 * mr * nr),
            "a step loads mr + nr floats (a column of the A micro-panel and a row of "
            "the B micro-panel), not mr · nr",
        ),
    ]
    default = "2·mr·nr flops for (mr + nr) · 4 bytes loaded"
    cases = [
        Case(args, 2 * args[0] * args[1] / (4 * (args[0] + args[1])))
        for args in ((1, 1), (4, 4), (6, 16), (14, 32), (1, 16), (3, 8))
    ]
    for case in cases:
        case.hint = _hinted(fn, case.args, case.expected, mistakes, default)
    return run_cases("tile_intensity", fn, cases, rtol=1e-6)


def _kc(l1_bytes, ways, mr, nr, element_bytes):
    way = l1_bytes // ways
    ways_a = (ways - 1) * mr // (mr + nr)  # ⌊(W − 1) / (1 + nr/mr)⌋
    return ways_a * way // (mr * element_bytes)


def check_blis_kc(fn: Callable) -> CheckResult:
    """``fn(l1_bytes, ways, mr, nr, element_bytes)`` returns kc of the BLIS analytical
    model: the A micro-panel (mr × kc) gets ``⌊(ways − 1) / (1 + nr/mr)⌋`` whole ways
    of the L1 (l1_bytes / ways bytes each), kc the largest that fills them, for
    elements of ``element_bytes`` bytes."""
    mistakes = [
        (
            lambda c, w, mr, nr, e: (w * mr // (mr + nr)) * (c // w) // (mr * e),
            "keep one way free for the lines of C and other data: ways − 1",
        ),
        (
            lambda c, w, mr, nr, e: ((w - 1) * nr // (mr + nr)) * (c // w) // (mr * e),
            "A's micro-panel (mr rows) is the small one: it gets the fraction "
            "1 / (1 + nr/mr) of the ways, B's the rest",
        ),
        (
            lambda c, w, mr, nr, e: int((w - 1) * mr / (mr + nr) * (c // w) / (mr * e)),
            "a cache hands out whole ways: round the ways of A down first",
        ),
        (
            lambda c, w, mr, nr, e: _kc(c, w, mr, nr, 4),
            "the element size matters: a float64 is 8 bytes",
        ),
        (
            lambda c, w, mr, nr, e: _kc(c, w, mr, nr, e) * e,
            "kc counts elements, not bytes: divide by the element size",
        ),
    ]
    default = "kc = ⌊(W − 1)·mr / (mr + nr)⌋ · (L1 / W) / (mr · element bytes)"
    cases = [
        Case(args, _kc(*args))
        for args in (
            (32768, 8, 6, 16, 4),  # AVX2 sgemm
            (32768, 8, 6, 8, 8),  # Haswell dgemm: BLIS uses kc = 256
            (49152, 12, 14, 32, 4),  # AVX-512 core with a 48 KiB L1
            (65536, 4, 8, 12, 8),
            (32768, 8, 4, 4, 8),
        )
    ]
    for case in cases:
        case.hint = _hinted(fn, case.args, case.expected, mistakes, default)
    return run_cases("blis_kc", fn, cases)
