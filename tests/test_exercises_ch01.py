"""Each Chapter 1 checker accepts a correct solution and rejects typical wrong ones."""

import numpy as np
import pytest

from cnnbook import exercises
from cnnbook.exercises import (
    check_derivative_kernel,
    check_moving_average,
    check_valid_length,
)
from cnnbook.signal import box, conv1d, output_length


def test_checkers_are_exported():
    for name in [
        "check_moving_average",
        "check_valid_length",
        "check_derivative_kernel",
    ]:
        assert name in exercises.__all__


# ----------------------------------------------------------------------- moving average


def moving_average_cumsum(x, k):
    c = np.concatenate([[0.0], np.cumsum(x, dtype=float)])
    return (c[k:] - c[:-k]) / k


def moving_average_conv(x, k):
    return conv1d(x, box(k), "valid")


@pytest.mark.parametrize("solution", [moving_average_cumsum, moving_average_conv])
def test_moving_average_accepts_correct(solution):
    result = check_moving_average(solution)
    assert result and "passed all 5 checks" in repr(result)


@pytest.mark.parametrize(
    "wrong, complaint",
    [
        (
            lambda x, k: np.convolve(x, np.ones(k) / k, "same"),
            "wrong shape",
        ),  # padded edges
        (
            lambda x, k: np.convolve(x, np.ones(k), "valid"),
            "wrong values",
        ),  # forgot to divide
        (
            lambda x, k: np.array([x[i : i + k].mean() for i in range(len(x) - k)]),
            "wrong shape",
        ),  # off by one
        (
            lambda x, k: np.array(
                [x[i : i + k].sum() // k for i in range(len(x) - k + 1)]
            ),
            "wrong values",
        ),
        (lambda x, k: None, "returned None"),
    ],
)
def test_moving_average_rejects_wrong(wrong, complaint):
    result = check_moving_average(wrong)
    assert not result
    assert complaint in repr(result)
    assert "on <lambda>(" in repr(result)  # says which input failed


def test_not_implemented_message():
    def moving_average(x, k):
        raise NotImplementedError

    result = check_moving_average(moving_average)
    assert not result and "not implemented yet" in repr(result)


# ------------------------------------------------------------------------- valid length


def test_valid_length_accepts_correct():
    assert check_valid_length(lambda n, k: abs(n - k) + 1)
    assert check_valid_length(lambda n, k: output_length(n, k, "valid"))
    assert check_valid_length(
        lambda n, k: len(np.convolve(np.ones(n), np.ones(k), "valid"))
    )


@pytest.mark.parametrize(
    "wrong, complaint",
    [
        (lambda n, k: n - k, "expected the integer 8, got 7"),
        (lambda n, k: n + k - 1, "expected the integer 8, got 12"),
        (lambda n, k: n - k + 1, "got -6"),  # forgets that a longer kernel swaps roles
        (
            lambda n, k: float(abs(n - k) + 1),
            "expected the integer 8",
        ),  # a float is not a length
    ],
)
def test_valid_length_rejects_wrong(wrong, complaint):
    result = check_valid_length(wrong)
    assert not result
    assert complaint in repr(result)


def test_valid_length_hint_mentions_commutativity():
    assert "commutative" in repr(check_valid_length(lambda n, k: n - k + 1))


# -------------------------------------------------------------------- derivative kernel


def test_derivative_kernel_accepts_correct():
    assert check_derivative_kernel(lambda h: np.array([1.0, 0.0, -1.0]) / (2 * h))
    # The kernel really does what the exercise says.
    x = np.sin(0.1 * np.arange(50))
    w = np.array([1.0, 0.0, -1.0]) / (2 * 0.1)
    np.testing.assert_allclose(conv1d(x, w, "same")[1:-1], (x[2:] - x[:-2]) / 0.2)


@pytest.mark.parametrize(
    "wrong, complaint",
    [
        (
            lambda h: np.array([-1.0, 0.0, 1.0]) / (2 * h),
            "cross-correlation kernel",
        ),  # not flipped
        (
            lambda h: np.array([1.0, 0.0, -1.0]) / 2,
            "check 2 of 3",
        ),  # forgot the spacing h
        (lambda h: np.array([1.0, 0.0, -1.0]) / h, "wrong values"),  # forgot the 2
        (
            lambda h: np.array([1.0, -1.0]) / h,
            "wrong shape",
        ),  # forward difference, 2 taps
    ],
)
def test_derivative_kernel_rejects_wrong(wrong, complaint):
    result = check_derivative_kernel(wrong)
    assert not result
    assert complaint in repr(result)
