"""Checkers for the exercises of Chapter 1 (convolution in one dimension)."""

from __future__ import annotations

from typing import Callable

import numpy as np

from ._core import Case, CheckResult, run_cases

__all__ = [
    "check_moving_average",
    "check_valid_length",
    "check_derivative_kernel",
]


def check_moving_average(fn: Callable) -> CheckResult:
    """``fn(x, k)``: the mean of every complete window, ``mean(x[i:i+k])``.

    The result has length ``len(x) - k + 1`` (a box kernel in "valid" mode).
    """
    ramp = np.arange(6.0)
    noisy = np.random.default_rng(1).normal(size=11).round(3)
    means = np.array([noisy[i : i + 4].mean() for i in range(len(noisy) - 3)])
    cases = [
        Case(
            (ramp, 3),
            np.array([1.0, 2.0, 3.0, 4.0]),
            hint="only complete windows count: "
            "6 samples and windows of 3 give 4 averages",
        ),
        Case((ramp, 1), ramp, hint="a window of one sample is the signal"),
        Case(
            (np.array([2.0, 4.0, 9.0]), 3),
            np.array([5.0]),
            hint="a window as long as the signal gives a single average",
        ),
        Case((noisy, 4), means, hint="each output divides a sum of k samples by k"),
        Case(
            (np.array([1, 2, 3, 4]), 2),
            np.array([1.5, 2.5, 3.5]),
            hint="integer input still has fractional averages",
        ),
    ]
    return run_cases("moving_average", fn, cases)


def check_valid_length(fn: Callable) -> CheckResult:
    """``fn(n, k)``: the length of ``conv1d(x, w, "valid")``, len(x) = n,
    len(w) = k, as an int."""
    cases = [
        Case((10, 3), 8, hint="count the positions where all k taps lie on the signal"),
        Case((7, 1), 7, hint="a kernel of length 1 fits at every sample"),
        Case(
            (5, 5), 1, hint="equal lengths overlap completely in exactly one position"
        ),
        Case(
            (3, 10),
            8,
            hint="kernel longer than the signal: convolution is "
            "commutative, so the roles swap (that is what "
            "numpy.convolve and conv1d do)",
        ),
        Case((1, 1), 1),
        Case((100, 31), 70),
    ]
    return run_cases("valid_length", fn, cases)


def check_derivative_kernel(fn: Callable) -> CheckResult:
    """``fn(h)``: a 3-tap *convolution* kernel ``w`` such that
    ``conv1d(x, w, "same")[i] == (x[i+1] - x[i-1]) / (2 h)``."""
    cases = [
        Case(
            (h,),
            np.array([1.0, 0.0, -1.0]) / (2 * h),
            hint="convolution flips the kernel: "
            "w[0] multiplies x[i+1] and w[2] multiplies x[i-1]",
        )
        for h in (1.0, 0.5, 0.1)
    ]
    result = run_cases("derivative_kernel", fn, cases)
    if not result:
        # The classic mistake deserves its own sentence: right numbers, wrong
        # order.
        try:
            got = np.asarray(fn(1.0), dtype=float)
        except Exception:
            return result
        if got.shape == (3,) and np.allclose(got, [-0.5, 0.0, 0.5]):
            result.message += (
                "\n  note: [-1, 0, 1]/(2h) is the cross-correlation kernel; "
                "conv1d flips it, so your kernel computes minus the derivative"
            )
    return result
