"""Each Chapter 2 checker accepts correct solutions and rejects typical wrong ones."""

import numpy as np
import pytest

from cnnbook import exercises
from cnnbook import fft as F
from cnnbook.exercises import (
    check_circular_conv,
    check_ifft_via_fft,
    check_padded_length,
)


def test_checkers_are_exported():
    for name in ["check_circular_conv", "check_padded_length", "check_ifft_via_fft"]:
        assert name in exercises.__all__


# ----------------------------------------------------------------- circular convolution


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
    assert result and "passed all 5 checks" in repr(result)


@pytest.mark.parametrize(
    "wrong, complaint",
    [
        (
            lambda x, w: np.convolve(x, w)[: len(x)],
            "wrong values",
        ),  # linear: no wrap-around
        (lambda x, w: np.convolve(x, w), "wrong shape"),  # the full linear convolution
        (
            lambda x, w: sum(w[j] * np.roll(x, -j) for j in range(len(w))),
            "wrong values",
        ),  # no flip
        (lambda x, w: np.convolve(x, w, "same"), "wrong values"),
    ],
)
def test_circular_conv_rejects_wrong(wrong, complaint):
    result = check_circular_conv(wrong)
    assert not result and complaint in repr(result)


# ------------------------------------------------------------------------ padded length


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
    assert result and "passed all 7 checks" in repr(result)


@pytest.mark.parametrize(
    "wrong, complaint",
    [
        (
            lambda n, k: 1 << (max(n, k) - 1).bit_length(),
            "expected the integer",
        ),  # wraps around
        (
            lambda n, k: 1 << (n + k - 1).bit_length(),
            "expected the integer",
        ),  # off by one: too long
        (
            lambda n, k: n + k - 1,
            "expected the integer",
        ),  # right length, not a power of two
        (lambda n, k: float(padded_loop(n, k)), "expected the integer"),
    ],
)
def test_padded_length_rejects_wrong(wrong, complaint):
    result = check_padded_length(wrong)
    assert not result and complaint in repr(result)


# ------------------------------------------------------------------ inverse via forward


def ifft_conj(X):
    return np.conj(F.fft(np.conj(X))) / len(X)


def ifft_reverse(X):
    # x[j] = (1/N) FFT(X)[-j mod N]: the forward transform read backwards
    Y = F.fft(X)
    return np.roll(Y[::-1], 1) / len(X)


@pytest.mark.parametrize("solution", [ifft_conj, ifft_reverse, F.ifft])
def test_ifft_via_fft_accepts_correct(solution):
    result = check_ifft_via_fft(solution)
    assert result and "passed all 6 checks" in repr(result)


@pytest.mark.parametrize(
    "wrong, complaint",
    [
        (lambda X: np.conj(F.fft(np.conj(X))), "wrong values"),  # forgot 1/N
        (lambda X: F.fft(X) / len(X), "wrong values"),  # forgot the conjugates
        (
            lambda X: F.fft(np.conj(X)) / len(X),
            "wrong values",
        ),  # forgot the outer conjugate
        (lambda X: F.fft(X)[: len(X) // 2], "wrong shape"),
    ],
)
def test_ifft_via_fft_rejects_wrong(wrong, complaint):
    result = check_ifft_via_fft(wrong)
    assert not result and complaint in repr(result)


def test_not_implemented_message():
    def circular_conv(x, w):
        raise NotImplementedError

    result = check_circular_conv(circular_conv)
    assert not result and "not implemented yet" in repr(result)
