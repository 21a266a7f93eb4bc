"""Checkers for the exercises of Chapter 10 (a tiny BLAS)."""

from __future__ import annotations

import inspect
from typing import Callable

import numpy as np

from ._core import Case, CheckResult, Exercise, require_function, run_cases

__all__ = [
    "check_loop_strides",
    "check_choose_tile",
    "check_tile_intensity",
    "check_blis_kc",
]

EXERCISES = [
    Exercise(
        "10.1",
        "The strides of the six loop orders",
        "easy",
        "prediction",
        "loop order, row-major strides, cache lines, SIMD",
        "check_loop_strides",
        "ex10-loop-strides",
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

# The rules of exercise 10.2 (Chapter 10, "Step 4"): FMA latency 5 cycles, 2 FMA units.
_LATENCY, _UNITS = 5, 2


def _call(fn, *args):
    """fn(*args), or None when it raises (run_cases reports the exception itself)."""
    try:
        return fn(*args)
    except Exception:  # the reader's code may raise anything
        return None


# ----------------------------------------------------------------------------------
# 10.1 The strides of the six loop orders
# ----------------------------------------------------------------------------------

# C[i, j] += A[i, p] * B[p, j]. An order names the loops outermost first, with k for
# the loop over p, as the chapter's "i-j-k" (step 1) and "i-k-j" (step 2) do.
_OPERANDS = (("A", "ik"), ("B", "kj"), ("C", "ij"))  # each operand's (row, column)
_DIMENSION = {"i": "m", "k": "k", "j": "n"}  # the size each loop runs over


def _index(letter: str) -> str:
    return "p" if letter == "k" else letter


def _strides(
    order: str, m: int, k: int, n: int, *, inner=-1, layout="C", in_bytes=False
):
    """The element strides of (A, B, C) along loop ``order[inner]``, read off NumPy
    arrays of the problem's shapes (``inner=0``, ``layout="F"`` and ``in_bytes`` give
    the typical mistakes)."""
    size = {"i": m, "k": k, "j": n}
    loop = order[inner]
    strides = []
    for _, (row, col) in _OPERANDS:
        X = np.empty((size[row], size[col]), dtype=np.float32, order=layout)
        if loop in (row, col):
            step = X.strides[(row, col).index(loop)]
            strides.append(step if in_bytes else step // X.itemsize)
        else:
            strides.append(0)
    return tuple(strides)


_STRIDE_MISTAKES = (
    (
        dict(inner=0),
        "an order lists the loops outermost first, like the chapter's i-j-k: its "
        "*last* letter names the innermost loop",
    ),
    (
        dict(layout="F"),
        "these are column-major (Fortran order) strides; NumPy's arrays are "
        "row-major (C order): the last index is contiguous, the first one skips "
        "whole rows",
    ),
    (
        dict(in_bytes=True),
        "count elements, not bytes (a float32 is 4 bytes; strides here are in "
        "elements)",
    ),
)


def _operand_hint(name: str, indices: str, inner: str, got: int, size: dict) -> str:
    row, col = indices
    element = f"{name}[{_index(row)}, {_index(col)}]"
    if inner not in indices:
        return (
            f"{element} does not use the innermost loop's index {_index(inner)}: "
            "every iteration touches the same element, stride 0 (it stays in a "
            "register)"
        )
    if inner == col:
        return (
            f"the innermost loop moves {element} along a row (its last index), and "
            "the rows of a row-major array are contiguous: stride 1"
        )
    rows, cols = _DIMENSION[row], _DIMENSION[col]
    hint = (
        f"{name} is {rows} × {cols}, stored row after row: stepping {_index(row)} "
        f"skips a whole row of {name}, {cols} elements"
    )
    return hint + (f", not {rows}" if got == size[row] != size[col] else "")


def _strides_hint(fn, order: str, m: int, k: int, n: int) -> str:
    got = _call(fn, order, m, k, n)
    try:
        values = tuple(got)
        if len(values) != 3:
            raise ValueError
    except (TypeError, ValueError):
        return "return a tuple of three integers: the strides of A, B and C"
    if not all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values
    ):
        return "a stride counts elements: return three integers"
    expected = _strides(order, m, k, n)
    for model, hint in _STRIDE_MISTAKES:
        wrong = _strides(order, m, k, n, **model)
        if values == wrong != expected:
            return hint
    size = {"i": m, "k": k, "j": n}
    for (name, indices), g, e in zip(_OPERANDS, values, expected):
        if g != e:
            return _operand_hint(name, indices, order[-1], g, size)
    return ""


def check_loop_strides(fn: Callable) -> CheckResult:
    """``fn(order, m, k, n)`` returns ``(stride_A, stride_B, stride_C)``: how many
    elements apart the innermost loop of ``C[i, j] += A[i, p] * B[p, j]`` steps in
    each row-major operand (0 when the operand does not use the innermost index), for
    the loops nested in ``order`` ("ijk", "ikj", ..., outermost first, k naming the
    loop over p) and A: (m, k), B: (k, n), C: (m, n). The reference comes from the
    strides of NumPy arrays of those shapes."""
    require_function("loop_strides", fn)
    name = getattr(fn, "__name__", "loop_strides")
    try:
        inspect.signature(fn).bind("ijk", 3, 5, 7)
    except TypeError as err:
        return CheckResult(
            "loop_strides",
            False,
            f"✗ {name} must take four arguments (order, m, k, n): {err}",
        )
    except ValueError:  # no signature to inspect (a builtin): let run_cases call it
        pass
    orders = ("ijk", "ikj", "jik", "kij", "jki", "kji")  # the chapter's two first
    cases = [
        Case(
            (order, m, k, n),
            _strides(order, m, k, n),
            hint=_strides_hint(fn, order, m, k, n),
        )
        for m, k, n in ((3, 5, 7), (9, 6, 11))
        for order in orders
    ]
    return run_cases("loop_strides", fn, cases)


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
