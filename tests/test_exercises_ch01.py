"""Chapter 1 checkers: each typical mistake gets its hint, correct solutions pass."""

import numpy as np
import pytest

from cnnbook import exercises
from cnnbook.exercises import (
    check_correlation_matrix,
    check_five_point_derivative,
    check_moving_average,
)
from cnnbook.exercises.ch01 import (
    CORRELATION_MATRIX_MISTAKES,
    EXERCISES,
    FIVE_POINT_MISTAKES,
    MOVING_AVERAGE_MISTAKES,
)
from cnnbook.signal import box, conv1d, correlate1d


def test_checkers_are_exported_and_registered():
    for exercise in EXERCISES:
        assert exercise.checker in exercises.__all__
    assert [e.number for e in EXERCISES] == ["1.1", "1.2", "1.3"]
    assert sum(e.needs_thought for e in EXERCISES) >= 2


def hint_of(result):
    assert not result, result.message
    assert "\n  hint: " in result.message, result.message
    return result.message.split("\n  hint: ")[1]


# ----------------------------------------------------------------- 1.1 moving average


def moving_average_cumsum(x, k):
    c = np.concatenate([[0.0], np.cumsum(x, dtype=float)])
    return (c[k:] - c[:-k]) / k


def moving_average_conv(x, k):  # the alternative: a box kernel, mode 'valid'
    return conv1d(np.asarray(x, dtype=float), box(k), "valid")


@pytest.mark.parametrize("solution", [moving_average_cumsum, moving_average_conv])
def test_moving_average_accepts_correct(solution):
    result = check_moving_average(solution)
    assert result and "passed all 6 checks" in result.message


PLANTED_MOVING_AVERAGE = [
    lambda x, k: np.convolve(x, np.ones(k) / k, "same"),  # padded edges
    lambda x, k: np.convolve(x, np.ones(k) / k),  # 'full'
    lambda x, k: np.convolve(x, np.ones(k), "valid"),  # forgot to divide
    lambda x, k: np.array([x[i : i + k].mean() for i in range(len(x) - k)]),
    lambda x, k: np.array([x[i : i + k].sum() // k for i in range(len(x) - k + 1)]),
]


@pytest.mark.parametrize("index", range(len(MOVING_AVERAGE_MISTAKES)))
def test_moving_average_mistakes_get_their_hints(index):
    hint = MOVING_AVERAGE_MISTAKES[index][1]
    assert hint_of(check_moving_average(PLANTED_MOVING_AVERAGE[index])) == hint


def test_moving_average_reports_none_and_exceptions_plainly():
    assert "returned None" in check_moving_average(lambda x, k: None).message
    assert (
        "raised ZeroDivisionError" in check_moving_average(lambda x, k: 1 / 0).message
    )


# ---------------------------------------------------------- 1.2 five-point derivative


def five_point_by_solving(h):
    # The alternative: solve for the weights that differentiate 1, t, .., t^4 exactly.
    # conv1d 'same' with 5 taps: y[i] = sum_j w[j] x[i + 2 - j], offsets 2 - j.
    offsets = (2 - np.arange(5)) * h
    A = np.vander(offsets, 5, increasing=True).T  # row p: offsets**p
    rhs = np.array([0.0, 1.0, 0.0, 0.0, 0.0])  # d/dt t^p at 0
    return np.linalg.solve(A, rhs)


def test_five_point_accepts_correct():
    assert check_five_point_derivative(
        lambda h: np.array([-1.0, 8.0, 0.0, -8.0, 1.0]) / (12 * h)
    )
    assert check_five_point_derivative(five_point_by_solving)
    # And the kernel does what the exercise says: exact on a quartic.
    h = 0.1
    t = np.arange(40) * h
    f, df = 3 * t**4 - t**3 + 2 * t - 1, 12 * t**3 - 3 * t**2 + 2
    got = conv1d(f, five_point_by_solving(h), "same")
    np.testing.assert_allclose(got[2:-2], df[2:-2], rtol=1e-9, atol=1e-9)


PLANTED_FIVE_POINT = [
    lambda h: np.array([1.0, -8.0, 0.0, 8.0, -1.0]) / (12 * h),  # not flipped
    lambda h: np.array([0.0, 1.0, 0.0, -1.0, 0.0]) / (2 * h),  # central difference
    lambda h: np.array([-1.0, 8.0, 0.0, -8.0, 1.0]) / 12,  # forgot h
    lambda h: np.array([-1.0, 8.0, 0.0, -8.0, 1.0]) / (12 * h * h),  # h squared
    lambda h: np.array([1.0, 0.0, -1.0]) / (2 * h),  # three taps
]


@pytest.mark.parametrize("index", range(len(FIVE_POINT_MISTAKES)))
def test_five_point_mistakes_get_their_hints(index):
    hint = FIVE_POINT_MISTAKES[index][1]
    assert hint_of(check_five_point_derivative(PLANTED_FIVE_POINT[index])) == hint


# --------------------------------------------------------- 1.3 correlation as a matrix


def correlation_matrix_loops(w, n):
    R = np.zeros((n - len(w) + 1, n))
    for i in range(n - len(w) + 1):
        R[i, i : i + len(w)] = w
    return R


def correlation_matrix_by_columns(w, n):
    # The alternative: column j of R is R applied to the unit vector e_j.
    return np.column_stack([correlate1d(np.eye(n)[j], w, "valid") for j in range(n)])


@pytest.mark.parametrize(
    "solution", [correlation_matrix_loops, correlation_matrix_by_columns]
)
def test_correlation_matrix_accepts_correct(solution):
    result = check_correlation_matrix(solution)
    assert result and "passed all 5 checks" in result.message
    x, w = np.arange(7.0) ** 2, np.array([1.0, -2.0, 0.5])
    np.testing.assert_allclose(solution(w, 7) @ x, correlate1d(x, w, "valid"))


def full_convolution_matrix(w, n):
    M = np.zeros((n + len(w) - 1, n))
    for j in range(n):
        M[j : j + len(w), j] = w
    return M


PLANTED_CORRELATION = [
    lambda w, n: correlation_matrix_loops(np.asarray(w)[::-1], n),  # flipped
    full_convolution_matrix,
    lambda w, n: correlation_matrix_loops(w, n).T,
    lambda w, n: correlation_matrix_loops(w, n)[:-1],
]


@pytest.mark.parametrize("index", range(len(CORRELATION_MATRIX_MISTAKES)))
def test_correlation_matrix_mistakes_get_their_hints(index):
    hint = CORRELATION_MATRIX_MISTAKES[index][1]
    assert hint_of(check_correlation_matrix(PLANTED_CORRELATION[index])) == hint


def test_correlation_matrix_wrong_type_is_reported():
    result = check_correlation_matrix(lambda w, n: "R")
    assert not result and "expected an array" in result.message
