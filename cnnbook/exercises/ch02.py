"""Checkers for the exercises of Chapter 2 (convolution becomes multiplication).

Expected answers are written out here or computed with ``numpy.fft`` directly,
independent of ``cnnbook.fft``, so a checker cannot agree with a bug in the code it
teaches.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ._core import Case, CheckResult, run_cases

__all__ = ["check_circular_conv", "check_padded_length", "check_ifft_via_fft"]


def _circular_reference(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    n = len(x)
    return np.fft.ifft(np.fft.fft(x) * np.fft.fft(w, n)).real


def check_circular_conv(fn: Callable) -> CheckResult:
    """``fn(x, w)``: the circular convolution of x (length N) with w (length K ≤ N).

    ``y[i] = sum_j x[(i - j) mod N] * w[j]``, length N.
    """
    x4 = np.array([1.0, 2.0, 3.0, 4.0])
    rng = np.random.default_rng(2)
    x9 = rng.normal(size=9).round(3)
    w3 = rng.normal(size=3).round(3)
    cases = [
        Case(
            (x4, np.array([1.0])), x4, hint="a kernel [1] leaves the signal unchanged"
        ),
        Case(
            (x4, np.array([0.0, 1.0])),
            np.array([4.0, 1.0, 2.0, 3.0]),
            hint="[0, 1] delays by one sample, and the last sample wraps around "
            "to the front",
        ),
        Case(
            (x4, np.array([1.0, 1.0])),
            np.array([5.0, 3.0, 5.0, 7.0]),
            hint="y[0] = x[0]·w[0] + x[-1 mod 4]·w[1] = 1 + 4: the index wraps, "
            "it is not zero",
        ),
        Case(
            (x4, np.array([1.0, 0.0, 0.0, 2.0])),
            np.array([5.0, 8.0, 11.0, 6.0]),
            hint="convolution flips the kernel: w[j] multiplies x[i - j], not x[i + j]",
        ),
        Case(
            (x9, w3),
            _circular_reference(x9, w3),
            hint="the output has the signal's length N",
        ),
    ]
    return run_cases("circular_conv", fn, cases)


def check_padded_length(fn: Callable) -> CheckResult:
    """``fn(n, k)``: the smallest power of two P for which FFT convolution is linear.

    That is, the circular convolution of length P of the zero-padded inputs equals
    their full linear convolution (length n + k - 1).
    """
    cases = [
        Case(
            (5, 4),
            8,
            hint="the full convolution has n + k - 1 = 8 samples: 8 fits exactly",
        ),
        Case(
            (5, 5),
            16,
            hint="n + k - 1 = 9 samples need P ≥ 9; P = 8 would wrap the last sample "
            "onto the first",
        ),
        Case((1, 1), 1, hint="one sample times one sample is one sample"),
        Case((100, 3), 128),
        Case((3, 100), 128, hint="the answer is symmetric in n and k"),
        Case((1000, 25), 1024, hint="n + k - 1 = 1024: already a power of two"),
        Case(
            (1000, 26), 2048, hint="n + k - 1 = 1025: one past a power of two doubles P"
        ),
    ]
    return run_cases("padded_length", fn, cases)


def check_ifft_via_fft(fn: Callable) -> CheckResult:
    """``fn(X)`` returns the inverse DFT of X (complex, power-of-two length), like
    ``numpy.fft.ifft(X)``, computed with the forward transform only."""
    rng = np.random.default_rng(3)
    cases = [
        Case(
            (np.array([4.0 + 0j, 0, 0, 0]),),
            np.array([1.0 + 0j, 1, 1, 1]),
            hint="the inverse divides by N: a spike of 4 at frequency 0 is the "
            "constant 1",
        ),
        Case(
            (np.array([0j, 4, 0, 0]),),
            np.fft.ifft(np.array([0j, 4, 0, 0])),
            hint="the inverse turns the other way round the circle: exp(+2πi jk/N); "
            "conjugate "
            "before and after the forward transform",
        ),
    ]
    for n in (1, 2, 8, 64):
        X = rng.normal(size=n) + 1j * rng.normal(size=n)
        cases.append(Case((X,), np.fft.ifft(X)))
    return run_cases("ifft_via_fft", fn, cases, rtol=1e-7, atol=1e-9)
