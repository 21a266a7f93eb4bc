"""Chapter 2 checkers: each typical mistake gets its hint, correct solutions pass."""

import numpy as np
import pytest

from cnnbook import exercises
from cnnbook import fft as F
from cnnbook.exercises import (
    check_binomial_response,
    check_circular_conv,
    check_ifft_via_fft,
    check_max_stable_r,
    check_padded_length,
)
from cnnbook.exercises.ch02 import (
    BINOMIAL_MISTAKES,
    CIRCULAR_MISTAKES,
    EXERCISES,
    IFFT_MISTAKES,
    PADDED_MISTAKES,
    STABILITY_MISTAKES,
)

CHECKERS = [
    check_circular_conv,
    check_padded_length,
    check_binomial_response,
    check_ifft_via_fft,
    check_max_stable_r,
]


def test_checkers_are_exported_and_registered():
    assert [e.checker for e in EXERCISES] == [c.__name__ for c in CHECKERS]
    for exercise in EXERCISES:
        assert exercise.checker in exercises.__all__
    assert [e.number for e in EXERCISES] == ["2.1", "2.2", "2.3", "2.4", "2.5"]
    assert sum(e.needs_thought for e in EXERCISES) >= 2


def hint_of(result):
    assert not result, result.message
    assert "\n  hint: " in result.message, result.message
    return result.message.split("\n  hint: ")[1]


# ----------------------------------------------------------- 2.1 circular convolution


def circular_loops(x, w):
    n = len(x)
    return np.array(
        [sum(x[(i - j) % n] * w[j] for j in range(len(w))) for i in range(n)]
    )


def circular_fft(x, w):
    return np.fft.irfft(np.fft.rfft(x) * np.fft.rfft(w, len(x)), len(x))


def circular_roll(x, w):
    return sum(w[j] * np.roll(x, j) for j in range(len(w)))


@pytest.mark.parametrize("solution", [circular_loops, circular_fft, circular_roll])
def test_circular_conv_accepts_correct(solution):
    result = check_circular_conv(solution)
    assert result and "passed all 6 checks" in result.message


PLANTED_CIRCULAR = [
    lambda x, w: np.convolve(x, w)[: len(x)],  # linear: no wrap-around
    lambda x, w: np.convolve(x, w),  # the full linear convolution
    lambda x, w: sum(w[j] * np.roll(x, -j) for j in range(len(w))),  # no flip
    lambda x, w: np.convolve(x, w, "same"),
]


@pytest.mark.parametrize("index", range(len(CIRCULAR_MISTAKES)))
def test_circular_conv_mistakes_get_their_hints(index):
    hint = CIRCULAR_MISTAKES[index][1]
    assert hint_of(check_circular_conv(PLANTED_CIRCULAR[index])) == hint


# ------------------------------------------------------------------ 2.2 padded length


def padded_bits(n, k):
    return 1 << (n + k - 2).bit_length()


def padded_loop(n, k):
    p = 1
    while p < n + k - 1:
        p *= 2
    return p


@pytest.mark.parametrize("solution", [padded_bits, padded_loop])
def test_padded_length_accepts_correct(solution):
    result = check_padded_length(solution)
    assert result and "passed all 8 checks" in result.message


PLANTED_PADDED = [
    lambda n, k: padded_loop(n - 1, k) if n > 1 else padded_loop(n, k - 1),
    lambda n, k: padded_loop(max(n, k), 1),  # only the longer input fits
    lambda n, k: 2 * padded_loop(n, k - 1) if n + k > 2 else 1,  # too long
    lambda n, k: n + k - 1,  # right length, not a power of two
    lambda n, k: float(padded_loop(n, k)),
]


@pytest.mark.parametrize("index", range(len(PADDED_MISTAKES)))
def test_padded_length_mistakes_get_their_hints(index):
    hint = PADDED_MISTAKES[index][1]
    assert hint_of(check_padded_length(PLANTED_PADDED[index])) == hint


# ---------------------------------------------------- 2.3 frequency response [1,2,1]/4


def binomial_factored(omega):
    return np.cos(np.asarray(omega) / 2) ** 2


def binomial_by_fft(omega):  # the alternative: evaluate the sum, take the magnitude
    omega = np.asarray(omega, dtype=float)
    taps = np.array([1.0, 2.0, 1.0]) / 4
    return np.abs(np.exp(-1j * np.outer(omega, np.arange(3))) @ taps)


@pytest.mark.parametrize(
    "solution", [binomial_factored, binomial_by_fft, lambda om: (1 + np.cos(om)) / 2]
)
def test_binomial_accepts_correct(solution):
    result = check_binomial_response(solution)
    assert result and "passed all 5 checks" in result.message
    # The answer is what frequency_response says, at its grid of frequencies.
    n = 16
    H = F.frequency_response(np.array([1.0, 2.0, 1.0]) / 4, n)
    omega = 2 * np.pi * np.arange(n) / n
    np.testing.assert_allclose(solution(omega), np.abs(H), atol=1e-12)


PLANTED_BINOMIAL = [
    lambda om: 4 * np.cos(om / 2) ** 2,
    lambda om: np.cos(om) ** 2,
    lambda om: (1 + 2 * np.cos(om)) / 4,
    lambda om: np.abs(np.cos(om / 2)),
    lambda om: (1 + 2 * np.exp(-1j * om) + np.exp(-2j * om)) / 4,  # complex H
]


@pytest.mark.parametrize("index", range(len(BINOMIAL_MISTAKES)))
def test_binomial_mistakes_get_their_hints(index):
    hint = BINOMIAL_MISTAKES[index][1]
    assert hint_of(check_binomial_response(PLANTED_BINOMIAL[index])) == hint


# ------------------------------------------------------------ 2.4 inverse via forward


def ifft_conj(X):
    return np.conj(F.fft(np.conj(X))) / len(X)


def ifft_reverse(X):
    # x[j] = (1/N) FFT(X)[-j mod N]: the forward transform read backwards
    Y = F.fft(X)
    return np.roll(Y[::-1], 1) / len(X)


@pytest.mark.parametrize("solution", [ifft_conj, ifft_reverse, F.ifft])
def test_ifft_via_fft_accepts_correct(solution):
    result = check_ifft_via_fft(solution)
    assert result and "passed all 6 checks" in result.message


PLANTED_IFFT = [
    lambda X: np.conj(F.fft(np.conj(X))),  # forgot 1/N
    lambda X: F.fft(X) / len(X),  # forgot the conjugates
    lambda X: F.fft(np.conj(X)) / len(X),  # forgot the outer conjugate
    lambda X: F.fft(X)[::-1] / len(X),  # reversed, index 0 moved too
]


@pytest.mark.parametrize("index", range(len(IFFT_MISTAKES)))
def test_ifft_mistakes_get_their_hints(index):
    hint = IFFT_MISTAKES[index][1]
    assert hint_of(check_ifft_via_fft(PLANTED_IFFT[index])) == hint


def test_ifft_wrong_shape_is_reported():
    result = check_ifft_via_fft(lambda X: F.fft(X)[: len(X) // 2])
    assert not result and "wrong shape" in result.message


# ------------------------------------------------------------ 2.5 the stability limit


def max_stable_r_grid(d2):
    omega = np.linspace(0, np.pi, 20001)
    c = (len(d2) - 1) // 2
    D = np.cos(np.outer(omega, np.arange(len(d2)) - c)) @ np.asarray(d2)
    return 2 / -D.min()


def max_stable_r_response(d2):
    # The alternative: |H| on a fine grid (for these stencils D(ω) ≤ 0, so |D| = -D).
    return 2 / np.abs(F.frequency_response(d2, 1 << 14)).max()


@pytest.mark.parametrize("solution", [max_stable_r_grid, max_stable_r_response])
def test_max_stable_r_accepts_correct(solution):
    result = check_max_stable_r(solution)
    assert result and "passed all 5 checks" in result.message


def test_max_stable_r_is_the_real_limit():
    # Just below the limit the scheme stays bounded, just above it blows up.
    d2 = np.array([1.0, 0.0, -2.0, 0.0, 1.0]) / 4 + 0.2 * np.array([0, 1, -2, 1, 0.0])
    r = max_stable_r_grid(d2)
    u0 = np.random.default_rng(0).standard_normal(256)
    for factor, bounded in [(0.99, True), (1.05, False)]:
        u = u0.copy()
        for _ in range(1500):
            u = (
                u
                + factor
                * r
                * np.fft.ifft(
                    np.fft.fft(u) * np.fft.fft(np.roll(np.pad(d2, (0, 256 - 5)), -2))
                ).real
            )
        assert (np.abs(u).max() < 10 * np.abs(u0).max()) == bounded


def max_stable_r_nonneg(d2):  # demands g ≥ 0
    return max_stable_r_grid(d2) / 2


def max_stable_r_at_pi(d2):  # only the zigzag
    signs = (-1.0) ** (np.arange(len(d2)) - (len(d2) - 1) // 2)
    return 2 / -(np.asarray(d2) @ signs)


PLANTED_STABILITY = [max_stable_r_nonneg, max_stable_r_at_pi, lambda d2: 0.5]


@pytest.mark.parametrize("index", range(len(STABILITY_MISTAKES)))
def test_max_stable_r_mistakes_get_their_hints(index):
    hint = STABILITY_MISTAKES[index][1]
    assert hint_of(check_max_stable_r(PLANTED_STABILITY[index])) == hint
