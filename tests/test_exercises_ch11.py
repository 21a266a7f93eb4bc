"""Chapter 11 checkers: each typical mistake gets its hint, correct solutions pass."""

import math
from fractions import Fraction

import numpy as np
import pytest

from cnnbook import winograd
from cnnbook.exercises import (
    check_winograd_f32_by_hand,
    check_winograd_points,
    check_winograd_tiles,
)

# ----------------------------------------------------------------------------------
# 11.1 How many tiles?
# ----------------------------------------------------------------------------------


def tiles(H, W, padding, m):
    Ho, Wo = H + 2 * padding - 2, W + 2 * padding - 2
    return -(-Ho // m), -(-Wo // m)


def tiles_with_math_ceil(H, W, padding, m):  # alternative correct solution
    return tuple(math.ceil((n + 2 * padding - 2) / m) for n in (H, W))


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (
            lambda H, W, p, m: (-(-(H + 2 * p - 2) // (m + 2)),) * 2,
            "not pixels / α",
        ),
        (lambda H, W, p, m: ((H + 2 * p - 2) // m, (W + 2 * p - 2) // m), "round up"),
        (lambda H, W, p, m: (-(-H // m), -(-W // m)), "cover the *outputs*"),
        (lambda H, W, p, m: (-(-(H + p - 2) // m), -(-(W + p - 2) // m)), "*each*"),
        (lambda H, W, p, m: tiles(W, H, p, m), "rows and columns separately"),
    ],
)
def test_tiles_mistakes_get_their_hints(wrong, hint):
    result = check_winograd_tiles(wrong)
    assert not result
    assert hint in result.message


def test_tiles_single_tile_hint():
    def zero_when_small(H, W, p, m):
        th, tw = tiles(H, W, p, m)
        return (0, 0) if H + 2 * p - 2 < m else (th, tw)

    result = check_winograd_tiles(zero_when_small)
    assert not result and "one whole tile" in result.message


def test_tiles_correct_solutions_pass():
    assert check_winograd_tiles(tiles)
    assert check_winograd_tiles(tiles_with_math_ceil)


def test_tiles_float_answer_is_rejected_clearly():
    result = check_winograd_tiles(lambda H, W, p, m: (14.0, 14.0))
    assert not result and "expected the integer" in result.message


# ----------------------------------------------------------------------------------
# 11.2 F(3, 2) by hand
# ----------------------------------------------------------------------------------


def vandermonde(points, k):
    return np.array(
        [[0] * (k - 1) + [1] if p is None else [p**i for i in range(k)] for p in points]
    )


def toom_cook():
    pts = [0, 1, -1, None]
    return vandermonde(pts, 2), vandermonde(pts, 3), np.linalg.inv(vandermonde(pts, 4))


def f32_matrices():
    V_g, V_h, C = toom_cook()
    return V_h.T, V_g, C.T


def f32_fractions_in_bt():  # alternative: no rescaling, exact Fractions, lists
    AT, G, BT = winograd.winograd_matrices(3, 2, exact=True)
    scale = [Fraction(2), Fraction(-1), Fraction(1, 3), Fraction(1)]
    return (
        AT.tolist(),
        [[v * s for v in row] for row, s in zip(G.tolist(), scale)],
        [[v / s for v in row] for row, s in zip(BT.tolist(), scale)],
    )


def test_f32_correct_solutions_pass():
    assert check_winograd_f32_by_hand(f32_matrices)
    assert check_winograd_f32_by_hand(f32_fractions_in_bt)
    assert check_winograd_f32_by_hand(
        lambda: tuple(M.astype(np.float32) for M in f32_matrices())
    )


def _product():
    V_g, V_h, C = toom_cook()
    return C, V_g, V_h


def _untransposed_bt():
    V_g, V_h, C = toom_cook()
    return V_h.T, V_g, C


def _flipped():
    AT, G, BT = f32_matrices()
    return AT, G[:, ::-1], BT


def _at_not_transposed():
    V_g, V_h, C = toom_cook()
    return V_h, V_g, C.T


def _wrong_values():
    AT, G, BT = f32_matrices()
    return AT, 2 * G, BT


def _nan():
    AT, G, BT = f32_matrices()
    return AT, G * np.nan, BT


def _raises():
    raise ZeroDivisionError("division by zero")


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (_product, "Toom-Cook *product*"),
        (_untransposed_bt, "*transpose* of the interpolation matrix"),
        (_flipped, "compute a convolution"),
        (_at_not_transposed, "Aᵀ maps the 4 products"),
        (lambda: tuple(np.zeros(s) for s in ((2, 3), (3, 3), (3, 3))), "α = 3 + 2 - 1"),
        (_wrong_values, "start from s = C"),
        (_nan, "NaN"),
        (lambda: (1, 2), "tuple (AT, G, BT)"),
        (lambda: ("a", np.zeros((4, 2)), np.zeros((4, 4))), "not an array of numbers"),
        (_raises, "raised ZeroDivisionError"),
    ],
)
def test_f32_mistakes_get_their_hints(wrong, hint):
    result = check_winograd_f32_by_hand(wrong)
    assert not result
    assert hint in result.message


# ----------------------------------------------------------------------------------
# 11.3 Choose the points
# ----------------------------------------------------------------------------------


def test_points_correct_solutions_pass():
    assert check_winograd_points(lambda: [0, 1, -1, 0.5, -2])
    assert check_winograd_points(lambda: np.array([0.0, 1.0, -1.0, 2.0, -0.5]))
    assert check_winograd_points(lambda: (Fraction(-1, 2), 2, 0, 1, -1))


@pytest.mark.parametrize(
    "points, hint",
    [
        ([0, 1, -1, 2, 3], "large points"),
        ([0, 1, 2, 3, 4], "large points"),
        ([0, 0.1, -0.1, 0.2, -0.2], "close together"),
        ([0, 1, -1, 0.25, -0.25], "close together"),
        ([0, 1, -1, 0.5, -0.5], "about as good"),
        ([0, 1, -1, 2, -2], "default points"),
        ([-2, 2, 1, -1, 0], "default points"),
        ([0, 1, 1, 2, 3], "distinct"),
        ([0, 1, -1, 2], "five numbers"),
        ([0, 1, -1, 2, -2, 3], "five numbers"),
        ([0, 1, -1, 2, np.inf], "leave ∞ out"),
        ([0, 1, -1, 2, np.nan], "NaN"),
        ([0, 1, -1, 2, "x"], "real number"),
        (0.5, "a list of five numbers"),
    ],
)
def test_points_mistakes_get_their_hints(points, hint):
    result = check_winograd_points(lambda: points)
    assert not result
    assert hint in result.message


def test_points_checker_survives_a_raising_function():
    def broken():
        raise RuntimeError("oops")

    result = check_winograd_points(broken)
    assert not result and "raised RuntimeError: oops" in result.message
