"""Checkers for the exercises of Chapter 1 (convolution in one dimension).

Expected answers are written out here or computed with NumPy directly, independent of
``cnnbook.signal``. Every typical mistake is a small function ("mistake") next to its
hint: when the reader's answer fails a case and equals what a mistake would have
returned on it, the checker names that mistake.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ._core import (
    Case,
    CheckResult,
    Exercise,
    _mismatch,
    require_function,
    run_cases,
)

__all__ = [
    "check_moving_average",
    "check_five_point_derivative",
    "check_correlation_matrix",
]

EXERCISES = [
    Exercise(
        "1.1",
        "A moving average",
        "easy",
        "implementation",
        "complete windows, 'valid' length, running sums",
        "check_moving_average",
        "ex01-moving-average",
    ),
    Exercise(
        "1.2",
        "A derivative exact for quartics",
        "medium",
        "derivation",
        "Taylor expansion, the flip of convolution, kernel design",
        "check_five_point_derivative",
        "ex01-five-point",
    ),
    Exercise(
        "1.3",
        "Cross-correlation as a matrix",
        "medium",
        "derivation",
        "banded Toeplitz matrices, transposes, 'valid' shapes",
        "check_correlation_matrix",
        "ex01-correlation-matrix",
    ),
]

Mistake = tuple[Callable, str]  # (what the mistaken function returns, its hint)


def run_diagnosed(
    exercise: str,
    fn: Callable,
    cases: Sequence[Case],
    mistakes: Sequence[Mistake],
    **tolerances,
) -> CheckResult:
    """``run_cases``, then name the mistake when a failing answer matches one.

    The reader's function is called once per case (through a recorder); a mistake
    function is only evaluated on the case that failed.
    """
    require_function(exercise, fn)
    calls = []

    def recorder(*args, **kwargs):
        got = fn(*args, **kwargs)
        calls.append((args, kwargs, got))
        return got

    recorder.__name__ = getattr(fn, "__name__", exercise)
    result = run_cases(exercise, recorder, cases, **tolerances)
    if result or not calls or " failed check " not in result.message:
        return result
    args, kwargs, got = calls[-1]
    rtol, atol = tolerances.get("rtol", 1e-7), tolerances.get("atol", 1e-9)
    for wrong, hint in mistakes:
        try:
            with np.errstate(all="ignore"):
                would_be = wrong(*args, **kwargs)
            if _mismatch(would_be, got, rtol, atol) is None:
                message = result.message.split("\n  hint: ")[0]
                return CheckResult(exercise, False, f"{message}\n  hint: {hint}")
        except Exception:  # a mistake that does not apply to this case
            continue
    return result


# ----------------------------------------------------------------- 1.1 moving average


def _windows(x, k):
    x = np.asarray(x, dtype=float)
    return np.array([x[i : i + k].mean() for i in range(len(x) - k + 1)])


MOVING_AVERAGE_MISTAKES = [
    (
        lambda x, k: np.convolve(x, np.ones(k) / k, "same"),
        "only complete windows count (mode 'valid'): N - k + 1 averages, not N",
    ),
    (
        lambda x, k: np.convolve(x, np.ones(k) / k, "full"),
        "only complete windows count (mode 'valid'): N - k + 1 averages, not N + k - 1",
    ),
    (
        lambda x, k: _windows(x, k) * k,
        "each window's sum must be divided by k",
    ),
    (
        lambda x, k: _windows(x, k)[:-1],
        "there are N - k + 1 complete windows, not N - k (the last one ends at x[-1])",
    ),
    (
        lambda x, k: np.floor(_windows(x, k) + 1e-12),
        "integer division rounds the averages down: use true division (/)",
    ),
]


def check_moving_average(fn: Callable) -> CheckResult:
    """``fn(x, k)``: the mean of every complete window, ``mean(x[i:i+k])``.

    The result has length ``len(x) - k + 1`` (a box kernel in "valid" mode).
    """
    ramp = np.arange(6.0)
    noisy = np.random.default_rng(1).normal(size=11).round(3)
    cases = [
        Case((ramp, 3), np.array([1.0, 2.0, 3.0, 4.0])),
        Case((ramp, 1), ramp),
        Case((np.array([2.0, 4.0, 9.0]), 3), np.array([5.0])),
        Case((np.array([1, 2, 3, 4]), 2), np.array([1.5, 2.5, 3.5])),
        Case((noisy, 4), _windows(noisy, 4)),
        Case((noisy.astype(np.float32), 4), _windows(noisy, 4)),
    ]
    return run_diagnosed(
        "moving_average", fn, cases, MOVING_AVERAGE_MISTAKES, rtol=1e-6, atol=1e-6
    )


# ---------------------------------------------------------- 1.2 five-point derivative


def _five_point(h):
    return np.array([-1.0, 8.0, 0.0, -8.0, 1.0]) / (12 * h)


FIVE_POINT_MISTAKES = [
    (
        lambda h: _five_point(h)[::-1],
        "mind the flip: conv1d's w[0] multiplies x[i + 2], so the kernel is the "
        "formula's coefficients back to front (yours computes minus the derivative)",
    ),
    (
        lambda h: np.array([0.0, 1.0, 0.0, -1.0, 0.0]) / (2 * h),
        "the central difference is exact only up to degree 2: use all five taps, "
        "and make the kernel differentiate 1, t, t², t³ and t⁴ exactly",
    ),
    (
        lambda h: _five_point(1.0),
        "the samples are h apart: a derivative divides by the spacing h",
    ),
    (
        lambda h: _five_point(h) / h,
        "a first derivative divides by h once, not by h²",
    ),
    (
        lambda h: np.array([1.0, 0.0, -1.0]) / (2 * h),
        "five taps, on x[i - 2] .. x[i + 2]: three cannot be exact beyond degree 2",
    ),
]


def check_five_point_derivative(fn: Callable) -> CheckResult:
    """``fn(h)``: a 5-tap *convolution* kernel ``w`` such that
    ``conv1d(x, w, "same")[i]`` is f'(ih), exactly for every polynomial f of
    degree ≤ 4 sampled at spacing h (away from the ends)."""
    cases = [Case((h,), _five_point(h)) for h in (1.0, 0.5, 0.1, 2.0)]
    return run_diagnosed(
        "five_point_derivative", fn, cases, FIVE_POINT_MISTAKES, rtol=1e-6, atol=1e-9
    )


# --------------------------------------------------------- 1.3 correlation as a matrix


def _correlation_matrix(w, n):
    w = np.asarray(w, dtype=float)
    R = np.zeros((n - len(w) + 1, n))
    for i in range(n - len(w) + 1):
        R[i, i : i + len(w)] = w
    return R


def _convolution_matrix(w, n):  # 'full' convolution, (n + K - 1) × n
    w = np.asarray(w, dtype=float)
    M = np.zeros((n + len(w) - 1, n))
    for j in range(n):
        M[j : j + len(w), j] = w
    return M


CORRELATION_MATRIX_MISTAKES = [
    (
        lambda w, n: _correlation_matrix(np.asarray(w)[::-1], n),
        "cross-correlation does not flip: row i holds w as written, w[0] in column i",
    ),
    (
        lambda w, n: _convolution_matrix(w, n),
        "that is the 'full' convolution matrix; 'valid' correlation has one row per "
        "complete overlap, n - K + 1 rows, and no flip",
    ),
    (
        lambda w, n: _correlation_matrix(w, n).T,
        "R has one row per output and one column per input sample: (n - K + 1, n), "
        "not its transpose",
    ),
    (
        lambda w, n: _correlation_matrix(w, n)[:-1],
        "n - K + 1 complete windows, not n - K: the last one ends at x[n - 1]",
    ),
]


def check_correlation_matrix(fn: Callable) -> CheckResult:
    """``fn(w, n)``: the matrix R, shape (n - K + 1, n), with
    ``R @ x == correlate1d(x, w, "valid")`` for every x of length n ≥ K."""
    rng = np.random.default_rng(13)
    w4 = rng.normal(size=4).round(3)
    cases = [
        Case((np.array([1.0, 2.0, 3.0]), 5), _correlation_matrix([1.0, 2.0, 3.0], 5)),
        Case((np.array([1.0]), 3), np.eye(3)),
        Case((np.array([1.0, -1.0]), 4), _correlation_matrix([1.0, -1.0], 4)),
        Case((np.array([0.5, 0.25]), 2), np.array([[0.5, 0.25]])),
        Case((w4, 9), _correlation_matrix(w4, 9)),
    ]
    return run_diagnosed(
        "correlation_matrix", fn, cases, CORRELATION_MATRIX_MISTAKES, rtol=1e-9
    )
