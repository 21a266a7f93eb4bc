"""Checkers for Chapter 4, max pooling and ReLU.

The expected answers are computed here with a few lines of NumPy of their own,
independent of ``cnnbook.functional``, so a checker cannot agree with a bug in the code
it teaches.
"""

from __future__ import annotations

import numpy as np

from ._core import Case, CheckResult, Exercise, describe, require_function, run_cases

__all__ = [
    "check_ceil_mode_size",
    "check_commutes_with_max_pool",
    "check_max_pool_picks",
]

EXERCISES = [
    Exercise(
        "4.1",
        "Shapes under ceil_mode",
        "medium",
        "prediction",
        "pooling output sizes: floor and ceiling, padding, the last-window rule",
        "check_ceil_mode_size",
        "ex04-ceil-mode",
    ),
    Exercise(
        "4.2",
        "What commutes with max pooling?",
        "easy",
        "prediction",
        "monotone functions and the maximum",
        "check_commutes_with_max_pool",
        "ex04-commutes",
    ),
    Exercise(
        "4.3",
        "Where does the gradient go?",
        "medium",
        "prediction",
        "max-pool backward: ties, overlapping windows, gradients that add up",
        "check_max_pool_picks",
        "ex04-picks",
    ),
]


def _pool_size(n: int, k: int, s: int, p: int) -> int:
    return (n + 2 * p - k) // s + 1


# ----------------------------------------------------------------------------------
# 4.1 Shapes under ceil_mode
# ----------------------------------------------------------------------------------


def _ceil_size(n: int, k: int, s: int, p: int, ceil_mode: bool) -> int:
    if not ceil_mode:
        return (n + 2 * p - k) // s + 1
    out = -(-(n + 2 * p - k) // s) + 1
    if (out - 1) * s >= n + p:  # the last window would start in the right padding
        out -= 1
    return out


def check_ceil_mode_size(fn) -> CheckResult:
    """``fn(n, kernel_size, stride, padding, ceil_mode)`` → the output length of max
    pooling along one axis of length ``n``, as PyTorch computes it (ints, bool)."""
    spec = [
        ((7, 3, 2, 1, False), "padding adds p cells on *both* sides: n + 2p − k"),
        ((5, 2, 2, 0, False), "without ceil_mode the last, partial window is dropped"),
        (
            (6, 2, 2, 0, True),
            "when the stride divides n + 2p − k evenly there is no partial window: "
            "ceil_mode changes nothing",
        ),
        (
            (5, 2, 2, 0, True),
            "ceil_mode=True rounds (n + 2p − k)/s up: the partial window is kept",
        ),
        (
            (3, 2, 2, 1, True),
            "the last window would start in the right padding, (o − 1)·s ≥ n + p: "
            "PyTorch drops it",
        ),
        (
            (5, 2, 3, 1, True),
            "a window must start inside the input or its left padding",
        ),
        ((112, 3, 2, 0, True), ""),
        ((28, 3, 2, 1, True), ""),
        ((13, 4, 3, 2, False), ""),
        ((10, 3, 3, 0, True), ""),
    ]
    cases = [Case(args, _ceil_size(*args), hint=hint) for args, hint in spec]
    return run_cases("ceil_mode_size", fn, cases)


# ----------------------------------------------------------------------------------
# 4.2 What commutes with max pooling?
# ----------------------------------------------------------------------------------

CANDIDATES = {
    "relu": lambda x: np.maximum(x, 0.0),
    "leaky_relu": lambda x: np.where(x > 0, x, 0.1 * x),
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "add_one": lambda x: x + 1.0,
    "double": lambda x: 2.0 * x,
    "negate": lambda x: -x,
    "square": lambda x: x**2,
    "cube": lambda x: x**3,
    "abs": np.abs,
    "floor": np.floor,
}
_COMMUTE = {"relu", "leaky_relu", "sigmoid", "add_one", "double", "cube", "floor"}
_WRONG_IN = {
    "negate": "−x reverses the order: max(−x) = −min(x), not −max(x)",
    "square": "x² is not monotone: for the window [−3, 1], max then square gives 1, "
    "square then max gives 9",
    "abs": "|x| is not monotone: for the window [−3, 1], max then |·| gives 1, |·| "
    "then max gives 3",
}
_MISSED = {
    "floor": "floor is flat between integers but never decreases, and that is enough: "
    "max ⌊x⌋ = ⌊max x⌋",
    "cube": "unlike x², x³ is increasing on the whole line, negative numbers included",
}
_GENERAL = (
    "every non-decreasing function g commutes with the maximum (g(max x) = max g(x)); "
    "every other one fails on some window"
)


def check_commutes_with_max_pool(fn) -> CheckResult:
    """``fn()`` returns the names, among ``CANDIDATES``, of the elementwise functions g
    with ``g(max_pool(x)) == max_pool(g(x))`` for every input x (a set, list or
    tuple of strings)."""
    require_function("commutes_with_max_pool", fn)
    name = getattr(fn, "__name__", "commutes_with_max_pool")

    def fail(text: str) -> CheckResult:
        return CheckResult("commutes_with_max_pool", False, f"✗ {name}: {text}")

    try:
        got = fn()
    except NotImplementedError:
        return fail("not implemented yet — your turn!")
    except Exception as err:  # the reader's code may raise anything
        return fail(f"raised {type(err).__name__}: {err}")
    if isinstance(got, str) or not isinstance(got, (set, frozenset, list, tuple)):
        return fail(f"expected a set of names, got {describe(got)}")
    if not all(isinstance(g, str) for g in got):
        return fail(f"expected names (strings) from CANDIDATES, got {describe(got)}")
    unknown = sorted(set(got) - set(CANDIDATES))
    if unknown:
        return fail(f"unknown names {unknown}; choose among {sorted(CANDIDATES)}")
    chosen = set(got)
    wrong_in = sorted(chosen - _COMMUTE)
    if wrong_in:
        hint = _WRONG_IN.get(wrong_in[0], _GENERAL)
        return fail(
            f"{wrong_in[0]!r} does not commute with max pooling\n  hint: {hint}"
        )
    missed = sorted(_COMMUTE - chosen)
    if missed:
        hint = _MISSED.get(missed[0], _GENERAL)
        for candidate in missed:  # a specific hint first, if there is one
            if candidate in _MISSED:
                hint = _MISSED[candidate]
                break
        return fail(
            f"{len(missed)} of the functions that commute are missing\n  hint: {hint}"
        )
    return CheckResult(
        "commutes_with_max_pool",
        True,
        f"✓ {name}: exactly the {len(_COMMUTE)} non-decreasing functions.",
    )


# ----------------------------------------------------------------------------------
# 4.3 Where does the gradient go?
# ----------------------------------------------------------------------------------


def _window_starts(x: np.ndarray, k: int, s: int):
    h, w = x.shape
    for i in range(_pool_size(h, k, s, 0)):
        for j in range(_pool_size(w, k, s, 0)):
            yield i * s, j * s


def _picks(x: np.ndarray, k: int, s: int, rule: str = "first") -> np.ndarray:
    """How many windows send their gradient to each pixel, under a tie ``rule``:
    ``first`` (the right one: strict > in row-major order), ``last``, ``split``
    (1/m to each of m tied maxima), ``all`` (1 to each), or ``once`` (first, but a
    pixel counted at most once)."""
    counts = np.zeros(x.shape)
    for r0, c0 in _window_starts(x, k, s):
        window = x[r0 : r0 + k, c0 : c0 + k]
        tied = np.argwhere(window == window.max())  # row-major order
        if rule in ("first", "once"):
            chosen, weight = tied[:1], 1.0
        elif rule == "last":
            chosen, weight = tied[-1:], 1.0
        else:
            chosen, weight = tied, (1.0 / len(tied) if rule == "split" else 1.0)
        for a, b in chosen:
            counts[r0 + a, c0 + b] += weight
    return np.minimum(counts, 1.0) if rule == "once" else counts


_PICKS_HINTS = {
    "split": "a tie is not split: max pooling's backward sends a window's whole "
    "gradient to one pixel, the first maximum in row-major order (strict > while "
    "scanning), as PyTorch and cnnbook do",
    "all": "a window sends its gradient to one pixel only, even when several tie for "
    "its maximum: the first one in row-major order",
    "last": "ties go to the *first* maximum in row-major order (strict >), not the "
    "last (>=)",
    "once": "overlapping windows can pick the same pixel, and its gradients add up: "
    "count every window that picks it, not just whether one does",
    "stride": "window (i, j) starts at row i*stride, column j*stride: with stride "
    "smaller than k the windows overlap",
}


def _diagnose_picks(fn, x: np.ndarray, k: int, s: int) -> str:
    try:
        got = np.asarray(fn(x.copy(), k, s), dtype=float)
    except Exception:  # run_cases reports it properly
        return ""
    if got.shape != x.shape:
        return "the answer has one count per *input* pixel: the shape of x"
    variants = {
        rule: _picks(x, k, s, rule) for rule in ("split", "all", "last", "once")
    }
    variants["stride"] = _picks(x, k, k)
    for rule, wrong in variants.items():
        if np.array_equal(got, wrong) and not np.array_equal(wrong, _picks(x, k, s)):
            return _PICKS_HINTS[rule]
    return (
        "walk the windows; in each, find the pixel its maximum comes from (the first "
        "in row-major order when several tie) and add 1 to that pixel's count"
    )


def check_max_pool_picks(fn) -> CheckResult:
    """``fn(x, k, stride)`` → for one 2-D map ``x: (H, W)`` and k×k max pooling without
    padding, how many windows send their gradient to each pixel (the counts max-pool
    backward adds up for an all-ones ``dout``): an array of the shape of ``x``."""
    require_function("max_pool_picks", fn)
    rng = np.random.default_rng(43)
    specs = [
        (np.array([[1, 3, 3, 1], [2, 3, 0, 1], [4, 4, 2, 2], [0, 1, 2, 2]]), 2, 1),
        (rng.integers(0, 3, (5, 6)), 2, 1),
        (np.ones((4, 4)), 3, 1),  # one big tie
        (rng.integers(0, 4, (6, 7)), 3, 2),
        (rng.integers(-3, 0, (5, 5)), 2, 1),  # negative values
        (rng.integers(0, 3, (7, 6)), 3, 1),
        (rng.integers(0, 2, (6, 6)), 2, 2),
    ]
    cases = []
    for x, k, s in specs:
        x = x.astype(np.float64)
        cases.append(
            Case((x, k, s), _picks(x, k, s), hint=_diagnose_picks(fn, x, k, s))
        )
    return run_cases("max_pool_picks", fn, cases, rtol=0, atol=1e-9)
