"""Checkers for the exercises of Chapter 11 (Winograd convolution).

Expected answers are computed here from first principles (output sizes, ``numpy``'s
correlation, float64 references), independently of ``cnnbook.winograd`` where it
matters: only :func:`check_winograd_points` builds its algorithm with
``winograd.winograd_matrices``, because choosing the points is the exercise.
"""

from __future__ import annotations

import math
import numbers
from typing import Callable

import numpy as np

from ._core import Case, CheckResult, Exercise, describe, require_function, run_cases

__all__ = [
    "check_winograd_tiles",
    "check_winograd_f32_by_hand",
    "check_winograd_points",
]

EXERCISES = [
    Exercise(
        "11.1",
        "How many tiles?",
        "easy",
        "prediction",
        "output sizes, tiling at stride m, ceiling division",
        "check_winograd_tiles",
        "ex11-tiles",
    ),
    Exercise(
        "11.2",
        "F(3, 2) by hand",
        "medium",
        "derivation",
        "Toom-Cook evaluation and interpolation, transposition",
        "check_winograd_f32_by_hand",
        "ex11-f32",
    ),
    Exercise(
        "11.3",
        "Choose the points",
        "harder",
        "tuning",
        "conditioning of Vandermonde matrices, float32 error",
        "check_winograd_points",
        "ex11-points",
    ),
]


def _tiles(H: int, W: int, p: int, m: int) -> tuple[int, int]:
    return math.ceil((H + 2 * p - 2) / m), math.ceil((W + 2 * p - 2) / m)


def check_winograd_tiles(fn: Callable) -> CheckResult:
    """``fn(H, W, padding, m)`` returns ``(tiles_h, tiles_w)``: the tiles of
    F(m×m, 3×3) per image of H × W pixels with zero padding ``padding`` on every side,
    stride 1."""
    cases = [
        Case(
            (28, 28, 1, 2),
            _tiles(28, 28, 1, 2),
            hint="tiles overlap: each produces m × m outputs and the next one starts m "
            "pixels further, so count outputs / m, not pixels / α (α = m + 2)",
        ),
        Case(
            (28, 28, 1, 6),
            _tiles(28, 28, 1, 6),
            hint="6 does not divide 28: the last tile is only partly used, so round up "
            "(the input is padded with zeros at the bottom and right)",
        ),
        Case(
            (9, 9, 0, 4),
            _tiles(9, 9, 0, 4),
            hint="the tiles cover the *outputs*: without padding a 3×3 window leaves "
            "Ho = H - 2 = 7 rows, not 9",
        ),
        Case(
            (6, 6, 3, 2),
            _tiles(6, 6, 3, 2),
            hint="padding p adds p pixels on *each* side: Ho = H + 2p - 2",
        ),
        Case(
            (9, 5, 0, 3),
            _tiles(9, 5, 0, 3),
            hint="rows and columns separately: (tiles along H, tiles along W)",
        ),
        Case(
            (3, 3, 0, 4),
            _tiles(3, 3, 0, 4),
            hint="a single output still needs one whole tile",
        ),
        Case((56, 56, 1, 4), _tiles(56, 56, 1, 4)),
        Case((13, 30, 2, 5), _tiles(13, 30, 2, 5)),
    ]
    return run_cases("winograd_tiles", fn, cases)


# ----------------------------------------------------------------------------------
# F(3, 2) by hand
# ----------------------------------------------------------------------------------

_F32_SHAPES = {"AT": (3, 4), "G": (4, 2), "BT": (4, 4)}


def _fail(name: str, text: str) -> CheckResult:
    return CheckResult("winograd_f32_by_hand", False, f"✗ {name}: {text}")


def _as_matrices(got):
    """The three matrices as float64 arrays, or a message saying what is wrong."""
    if not isinstance(got, (tuple, list)) or len(got) != 3:
        return (
            None,
            f"expected a tuple (AT, G, BT) of three arrays, got {describe(got)}",
        )
    arrays = []
    for label, M in zip(_F32_SHAPES, got):
        try:
            A = np.array(M, dtype=np.float64)
        except (TypeError, ValueError):
            return None, f"{label} is not an array of numbers: {describe(M)}"
        if not np.all(np.isfinite(A)):
            return None, f"{label} contains NaN or infinity: {describe(A)}"
        arrays.append(A)
    return arrays, None


def _shape_hint(shapes) -> str:
    want = tuple(_F32_SHAPES.values())
    if shapes == ((4, 4), (4, 2), (4, 3)):
        return (
            "these are the shapes of the Toom-Cook *product* (C, V_g, V_h), which "
            "computes g·h; the correlation is its transpose: Aᵀ = V_hᵀ (3×4), G = V_g, "
            "Bᵀ = Cᵀ"
        )
    if shapes[0] == (4, 3):
        return "Aᵀ maps the 4 products to the 3 outputs: it is 3×4 (transpose V_h)"
    return (
        f"F(3, 2) has α = 3 + 2 - 1 = 4: Aᵀ is 3×4, G is 4×2, Bᵀ is 4×4, in that "
        f"order; expected shapes {want}"
    )


def check_winograd_f32_by_hand(fn: Callable) -> CheckResult:
    """``fn()`` returns ``(AT, G, BT)`` of F(3, 2): ``AT @ ((G @ g) * (BT @ d))`` must
    equal ``np.correlate(d, g, "valid")`` (3 outputs) for every ``d`` of length 4 and
    ``g`` of length 2. Any correct scaling of the rows is accepted."""
    require_function("winograd_f32_by_hand", fn)
    name = getattr(fn, "__name__", "winograd_f32_by_hand")
    try:
        got = fn()
    except NotImplementedError:
        return _fail(name, "not implemented yet — your turn!")
    except Exception as err:  # the reader's code may raise anything
        return _fail(name, f"raised {type(err).__name__}: {err}")
    arrays, problem = _as_matrices(got)
    if problem:
        return _fail(name, problem)
    shapes = tuple(A.shape for A in arrays)
    if shapes != tuple(_F32_SHAPES.values()):
        return _fail(name, f"wrong shapes {shapes}\n  hint: {_shape_hint(shapes)}")
    AT, G, BT = arrays
    rng = np.random.default_rng(32)
    tests = [(np.array([1.0, 2, 3, 4]), np.array([1.0, 0]))]
    tests += [(np.array([1.0, 2, 3, 4]), np.array([0.0, 1]))]
    tests += [(rng.standard_normal(4), rng.standard_normal(2)) for _ in range(6)]
    for number, (d, g) in enumerate(tests, start=1):
        y = AT @ ((G @ g) * (BT @ d))
        want = np.correlate(d, g, "valid")
        if np.allclose(y, want, rtol=1e-9, atol=1e-9):
            continue
        message = (
            f"✗ {name} failed check {number} of {len(tests)}\n  d = {describe(d)}, "
            f"g = {describe(g)}\n  expected {describe(want)}, got {describe(y)}"
        )
        flipped = np.correlate(d, g[::-1], "valid")
        if np.allclose(y, flipped, rtol=1e-9, atol=1e-9):
            hint = (
                "your matrices compute a convolution (the filter flipped); the layer "
                "needs y[i] = d[i]·g[0] + d[i+1]·g[1]"
            )
        elif np.allclose(AT @ ((G @ g) * (BT.T @ d)), want, rtol=1e-9, atol=1e-9):
            hint = "Bᵀ is the *transpose* of the interpolation matrix C = V_s⁻¹"
        else:
            hint = (
                "start from s = C[(V_g g) ⊙ (V_h h)] with g of degree 1 and h of "
                "degree 2 (V_g has 2 columns, V_h 3); check it against np.convolve, "
                "then transpose"
            )
        return CheckResult("winograd_f32_by_hand", False, f"{message}\n  hint: {hint}")
    return CheckResult(
        "winograd_f32_by_hand",
        True,
        f"✓ {name} passed all {len(tests)} checks: 4 multiplications instead of 6.",
    )


# ----------------------------------------------------------------------------------
# Choosing the points
# ----------------------------------------------------------------------------------

_DEFAULT = (0, 1, -1, 2, -2)
_TARGET = 0.8  # the reader's points must cut the error by 20%


def _layers():
    rng = np.random.default_rng(113)
    for C in (16, 32):
        x = rng.standard_normal((2, C, 16, 16)).astype(np.float32)
        w = (rng.standard_normal((16, C, 3, 3)) * np.sqrt(2 / (9 * C))).astype(
            np.float32
        )
        yield x, w


def _f43_error(points) -> float:
    from .. import functional, winograd  # lazy: the tools sit on top of the kernels

    worst = 0.0
    for x, w in _layers():
        ref = functional.conv2d(
            x.astype(np.float64), w.astype(np.float64), padding=1, method="im2col"
        )
        y = winograd.conv2d(x, w, None, 1, 4, points=points).astype(np.float64)
        # root-mean-square error: stable from layer to layer (a maximum is not)
        worst = max(worst, float(np.linalg.norm(y - ref) / np.linalg.norm(ref)))
    return worst


def _points_problem(got) -> str | None:
    """What is wrong with the returned points before any arithmetic, or None."""
    if isinstance(got, np.ndarray):
        got = got.tolist()
    if not isinstance(got, (list, tuple)):
        return f"expected a list of five numbers, got {describe(got)}"
    if not all(
        isinstance(p, (numbers.Real, np.floating, np.integer))
        and not isinstance(p, (bool, np.bool_))
        for p in got
    ):
        return f"every point must be a real number, got {describe(got)}"
    values = [float(p) for p in got]
    if any(math.isinf(v) for v in values):
        return (
            "leave ∞ out: winograd_matrices adds the point at infinity itself; give "
            "the five finite points"
        )
    if any(math.isnan(v) for v in values):
        return f"a point is NaN: {describe(got)}"
    if len(values) != 5:
        return (
            f"F(4, 3) has α = 4 + 3 - 1 = 6 points: five finite ones and ∞, so return "
            f"five numbers (got {len(values)})"
        )
    if len(set(values)) != 5:
        return (
            f"the points must be distinct, got {describe(got)}: a repeated point "
            "makes the interpolation singular"
        )
    if sorted(values) == sorted(_DEFAULT):
        return "those are the default points 0, ±1, ±2: find another set"
    return None


def check_winograd_points(fn: Callable) -> CheckResult:
    """``fn()`` returns five distinct finite points for which F(4×4, 3×3) in float32
    has at most 0.8 times the root-mean-square error of the default points 0, ±1, ±2,
    on the checker's random layers."""
    require_function("winograd_points", fn)
    name = getattr(fn, "__name__", "winograd_points")
    try:
        got = fn()
    except NotImplementedError:
        return CheckResult(
            "winograd_points", False, f"✗ {name}: not implemented yet — your turn!"
        )
    except Exception as err:  # the reader's code may raise anything
        return CheckResult(
            "winograd_points", False, f"✗ {name} raised {type(err).__name__}: {err}"
        )
    problem = _points_problem(got)
    if problem:
        return CheckResult("winograd_points", False, f"✗ {name}: {problem}")
    points = [float(p) for p in (got.tolist() if isinstance(got, np.ndarray) else got)]
    error, reference = _f43_error(points), _f43_error(list(_DEFAULT))
    if not error <= _TARGET * reference:  # also catches NaN
        spread = max(abs(p) for p in points)
        gaps = min(abs(a - b) for i, a in enumerate(points) for b in points[i + 1 :])
        if spread > 2:
            hint = (
                "large points make the powers p^k in G and Aᵀ grow (and the "
                "products in Bᵀ): keep them small, in pairs ±p"
            )
        elif gaps <= 0.25:
            hint = (
                "points close together make the denominators ∏(p_j - p_k) tiny and G's "
                "entries huge: spread them out"
            )
        elif error <= 1.25 * reference:
            hint = (
                "about as good as 0, ±1, ±2, not better: symmetric pairs are not the "
                "only choice; try mixing a point p > 1 with a reciprocal of the "
                "opposite sign"
            )
        else:
            hint = (
                "keep 0 and ±1, and use reciprocals 1/p instead of larger integers "
                "where you can: their powers shrink instead of growing"
            )
        return CheckResult(
            "winograd_points",
            False,
            f"✗ {name}: the points {describe(points)} give a float32 error of "
            f"{error:.2g}, {error / reference:.2g} times that of 0, ±1, ±2 (the target "
            f"is {_TARGET})\n"
            f"  hint: {hint}",
        )
    return CheckResult(
        "winograd_points",
        True,
        f"✓ {name}: less than {_TARGET} times the float32 error of 0, ±1, ±2.",
    )
