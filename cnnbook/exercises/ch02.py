"""Checkers for the exercises of Chapter 2 (convolution becomes multiplication).

Expected answers are written out here or computed with ``numpy.fft`` directly,
independent of ``cnnbook.fft``, so a checker cannot agree with a bug in the code it
teaches. Each typical mistake is a function next to its hint (see
``ch01.run_diagnosed``).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ._core import Case, CheckResult, Exercise
from .ch01 import run_diagnosed

__all__ = [
    "check_circular_conv",
    "check_padded_length",
    "check_binomial_response",
    "check_ifft_via_fft",
    "check_max_stable_r",
]

EXERCISES = [
    Exercise(
        "2.1",
        "Circular convolution by hand",
        "easy",
        "implementation",
        "indices modulo N, the flip, wrap-around",
        "check_circular_conv",
        "ex02-circular-conv",
    ),
    Exercise(
        "2.2",
        "Pick the padded length",
        "easy",
        "prediction",
        "linear from circular convolution, zero padding, powers of two",
        "check_padded_length",
        "ex02-padded-length",
    ),
    Exercise(
        "2.3",
        "The frequency response of [1, 2, 1]/4",
        "medium",
        "prediction",
        "frequency response by hand, Euler's formula, factoring kernels",
        "check_binomial_response",
        "ex02-binomial",
    ),
    Exercise(
        "2.4",
        "The inverse from the forward transform",
        "medium",
        "derivation",
        "conjugation, the inverse DFT, reuse of a transform",
        "check_ifft_via_fft",
        "ex02-ifft-via-fft",
    ),
    Exercise(
        "2.5",
        "The stability limit of any stencil",
        "harder",
        "derivation",
        "von Neumann analysis, frequency response, the fastest-growing mode",
        "check_max_stable_r",
        "ex02-stability",
    ),
]


# ---------------------------------------------------------- 2.1 circular convolution


def _circular_reference(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    n = len(x)
    return np.fft.ifft(np.fft.fft(x) * np.fft.fft(w, n)).real


CIRCULAR_MISTAKES = [
    (
        lambda x, w: np.convolve(x, w)[: len(x)],
        "the index wraps around: x[-1] is x[N - 1], not zero, so the tail of the "
        "linear result lands on the first outputs",
    ),
    (
        lambda x, w: np.convolve(x, w),
        "the output has the signal's length N: circular convolution folds the K - 1 "
        "extra samples of the linear result back onto its start",
    ),
    (
        lambda x, w: sum(w[j] * np.roll(x, -j) for j in range(len(w))),
        "convolution flips the kernel: w[j] multiplies x[(i - j) mod N], not x[i + j]",
    ),
    (
        lambda x, w: np.convolve(x, w, "same"),
        "mode 'same' crops the linear result; circular convolution wraps its ends "
        "around instead",
    ),
]


def check_circular_conv(fn: Callable) -> CheckResult:
    """``fn(x, w)``: the circular convolution of x (length N) with w (length K ≤ N).

    ``y[i] = sum_j x[(i - j) mod N] * w[j]``, length N.
    """
    x4 = np.array([1.0, 2.0, 3.0, 4.0])
    rng = np.random.default_rng(2)
    x9 = rng.normal(size=9).round(3)
    w3 = rng.normal(size=3).round(3)
    cases = [
        Case((x4, np.array([1.0])), x4),
        Case((x9, w3), _circular_reference(x9, w3)),
        Case((x4, np.array([0.0, 1.0])), np.array([4.0, 1.0, 2.0, 3.0])),
        Case((x4, np.array([1.0, 1.0])), np.array([5.0, 3.0, 5.0, 7.0])),
        Case((x4, np.array([1.0, 0.0, 0.0, 2.0])), np.array([5.0, 8.0, 11.0, 6.0])),
        Case((x9.astype(np.float32), w3), _circular_reference(x9, w3)),
    ]
    return run_diagnosed(
        "circular_conv", fn, cases, CIRCULAR_MISTAKES, rtol=1e-6, atol=1e-6
    )


# -------------------------------------------------------------- 2.2 padded length


def _padded(n, k):
    return 1 << (n + k - 2).bit_length()  # the smallest power of two ≥ n + k - 1


PADDED_MISTAKES = [
    (
        lambda n, k: 1 << (n + k - 3).bit_length(),
        "one sample short: with P = n + k - 2 the last sample of the full result "
        "wraps onto the first; P ≥ n + k - 1",
    ),
    (
        lambda n, k: 1 << (max(n, k) - 1).bit_length(),
        "the full convolution has n + k - 1 samples and all of them must fit in one "
        "period, or its tail wraps onto its start",
    ),
    (
        lambda n, k: 1 << (n + k - 1).bit_length(),
        "off by one: when n + k - 1 is already a power of two, P = n + k - 1 fits",
    ),
    (
        lambda n, k: n + k - 1,
        "n + k - 1 is the shortest length that works; the radix-2 FFT needs it "
        "rounded up to a power of two",
    ),
    (
        lambda n, k: float(_padded(n, k)),
        "return an int: a length is an integer, not a float",
    ),
]


def check_padded_length(fn: Callable) -> CheckResult:
    """``fn(n, k)``: the smallest power of two P for which FFT convolution is linear.

    That is, the circular convolution of length P of the zero-padded inputs equals
    their full linear convolution (length n + k - 1).
    """
    pairs = [(5, 4), (60, 10), (5, 5), (1, 1), (100, 3), (3, 100), (1000, 25)]
    pairs += [(1000, 26)]
    cases = [Case(pair, _padded(*pair)) for pair in pairs]
    return run_diagnosed("padded_length", fn, cases, PADDED_MISTAKES)


# -------------------------------------------------- 2.3 frequency response of [1,2,1]/4

BINOMIAL_MISTAKES = [
    (
        lambda om: 4 * np.cos(om / 2) ** 2,
        "the taps sum to 1, so H(0) = 1: divide by 4",
    ),
    (
        lambda om: np.cos(om) ** 2,
        "half the angle: the zigzag (ω = π) must vanish, since 1 - 2 + 1 = 0",
    ),
    (
        lambda om: (1 + 2 * np.cos(om)) / 4,
        "the two outer taps give e^{iω} + e^{-iω} = 2 cos ω, not cos ω",
    ),
    (
        lambda om: np.cos(om / 2),
        "[1, 2, 1]/4 is [1, 1]/2 convolved with itself, and each factor has magnitude "
        "|cos(ω/2)|: the product squares it",
    ),
    (
        lambda om: np.exp(-1j * om) * np.cos(om / 2) ** 2,
        "return the magnitude |H(ω)|, a real number (the factor e^{-iω} is the delay "
        "of the centre tap)",
    ),
]


def check_binomial_response(fn: Callable) -> CheckResult:
    """``fn(omega)``: the gain ``abs(H(ω))`` of the kernel [1, 2, 1]/4, elementwise
    for an array of angular frequencies ω (radians per sample)."""
    cases = [
        Case((np.array([0.0]),), np.array([1.0])),
        Case((np.array([np.pi]),), np.array([0.0])),
        Case((np.linspace(0, np.pi, 7),), np.cos(np.linspace(0, np.pi, 7) / 2) ** 2),
        Case(
            (np.linspace(-np.pi, 2 * np.pi, 10),),
            np.cos(np.linspace(-np.pi, 2 * np.pi, 10) / 2) ** 2,
        ),
        Case(
            (np.linspace(0, 3, 5, dtype=np.float32),),
            np.cos(np.linspace(0, 3, 5) / 2) ** 2,
        ),
    ]
    return run_diagnosed(
        "binomial_response", fn, cases, BINOMIAL_MISTAKES, rtol=1e-6, atol=1e-7
    )


# ------------------------------------------------------ 2.4 inverse from the forward


IFFT_MISTAKES = [
    (
        lambda X: np.conj(np.fft.fft(np.conj(X))),
        "the inverse divides by N",
    ),
    (
        lambda X: np.fft.fft(X) / len(X),
        "the inverse turns the other way round the circle, exp(+2πi jk/N): conjugate "
        "before and after the forward transform",
    ),
    (
        lambda X: np.fft.fft(np.conj(X)) / len(X),
        "conjugate the result too: conj(Σ conj(X[k]) e^{-2πi jk/N}) = "
        "Σ X[k] e^{+2πi jk/N}",
    ),
    (
        lambda X: np.fft.fft(X)[::-1] / len(X),
        "reading the forward transform backwards works, but index 0 stays in place: "
        "x[j] = FFT(X)[(-j) mod N] / N",
    ),
]


def check_ifft_via_fft(fn: Callable) -> CheckResult:
    """``fn(X)`` returns the inverse DFT of X (complex, power-of-two length), like
    ``numpy.fft.ifft(X)``, computed with the forward transform only."""
    rng = np.random.default_rng(3)
    cases = [
        Case((np.array([4.0 + 0j, 0, 0, 0]),), np.array([1.0 + 0j, 1, 1, 1])),
        Case((np.array([0, 4j, 0, 0]),), np.fft.ifft(np.array([0, 4j, 0, 0]))),
    ]
    for n in (1, 2, 8, 64):
        X = rng.normal(size=n) + 1j * rng.normal(size=n)
        cases.append(Case((X,), np.fft.ifft(X)))
    return run_diagnosed("ifft_via_fft", fn, cases, IFFT_MISTAKES, rtol=1e-7, atol=1e-9)


# ----------------------------------------------------------- 2.5 the stability limit


def _symbol(d2, omega):
    """D(ω) = Σ_j d2[j] cos(ω (j - c)), real for a symmetric kernel centred on c."""
    d2 = np.asarray(d2, dtype=float)
    c = (len(d2) - 1) / 2
    return np.cos(np.outer(omega, np.arange(len(d2)) - c)) @ d2


def _r_at_pi(d2):
    return 2 / -_symbol(d2, [np.pi])[0]


STENCILS = [
    np.array([1.0, -2.0, 1.0]),
    np.array([-1.0, 16.0, -30.0, 16.0, -1.0]) / 12,  # fourth order
    0.2 * np.array([0.0, 1.0, -2.0, 1.0, 0.0]) + np.array([1.0, 0, -2, 0, 1]) / 4,
    np.array([1.0, 0.0, -2.0, 0.0, 1.0]) / 4,  # [1, -2, 1] at twice the spacing
    4 * np.array([1.0, -2.0, 1.0]),  # spacing 1/2
]
LIMITS = [0.5, 0.375, 2 / 1.44, 2.0, 0.125]  # 2 / max over ω of -D(ω), exact

STABILITY_MISTAKES = [
    (
        lambda d2: _r_at_pi(d2) / 2,
        "stable means |g(ω)| ≤ 1, and g may be negative (the zigzag then flips sign "
        "every step without growing) as long as g ≥ -1: r·max(-D) ≤ 2",
    ),
    (
        _r_at_pi,
        "the fastest-growing mode need not be the zigzag ω = π: for this stencil "
        "-D(ω) peaks inside (0, π); check every frequency",
    ),
    (
        lambda d2: 0.5,
        "the limit depends on the stencil: compute its D(ω) = Σ_j d2[j] cos(ω(j - c)), "
        "c the centre tap, and g(ω) = 1 + r·D(ω)",
    ),
]


def check_max_stable_r(fn: Callable) -> CheckResult:
    """``fn(d2)``: the largest r for which ``u ← u + r·(d2 * u)`` is stable, for a
    symmetric second-difference stencil d2 (odd length, taps summing to 0)."""
    cases = [Case((d2.copy(),), float(r)) for d2, r in zip(STENCILS, LIMITS)]
    return run_diagnosed(
        "max_stable_r", fn, cases, STABILITY_MISTAKES, rtol=1e-4, atol=1e-9
    )
