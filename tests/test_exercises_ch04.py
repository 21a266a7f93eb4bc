"""Chapter 4 checkers: each typical mistake gets its hint, correct solutions pass."""

import math

import numpy as np
import pytest

from cnnbook import exercises, naive
from cnnbook.exercises import (
    check_ceil_mode_size,
    check_commutes_with_max_pool,
    check_max_pool_picks,
)
from cnnbook.exercises.ch04 import CANDIDATES, EXERCISES


def test_checkers_are_exported_and_registered():
    for exercise in EXERCISES:
        assert exercise.checker in exercises.__all__
    assert sum(e.needs_thought for e in EXERCISES) >= 2


# --- ceil_mode_size ---------------------------------------------------------------


def size(n, k, s, p, ceil_mode):
    if not ceil_mode:
        return (n + 2 * p - k) // s + 1
    out = -(-(n + 2 * p - k) // s) + 1
    return out - 1 if (out - 1) * s >= n + p else out


def size_by_starts(n, k, s, p, ceil_mode):  # alternative: walk the window starts
    count, start = 0, -p  # a window's first cell, in input coordinates
    while start + k <= n + p or (ceil_mode and start < n and start < n + p - k + s):
        count, start = count + 1, start + s
    return count


def test_ceil_mode_size_correct_solutions_pass():
    assert check_ceil_mode_size(size)
    assert check_ceil_mode_size(size_by_starts)


def test_ceil_mode_size_matches_torch():
    torch = pytest.importorskip("torch")
    for n, k, s, p in [(5, 2, 2, 0), (3, 2, 2, 1), (5, 2, 3, 1), (28, 3, 2, 1)]:
        for ceil_mode in (False, True):
            y = torch.nn.functional.max_pool2d(
                torch.zeros(1, 1, n, n), k, s, p, ceil_mode=ceil_mode
            )
            assert y.shape[-1] == size(n, k, s, p, ceil_mode)


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda n, k, s, p, c: size(n - p, k, s, p, c), "on *both* sides"),
        (lambda n, k, s, p, c: size(n, k, s, p, True), "partial window is dropped"),
        (
            lambda n, k, s, p, c: (n + 2 * p - k) // s + 1 + int(c),
            "changes nothing",
        ),
        (lambda n, k, s, p, c: size(n, k, s, p, False), "rounds (n + 2p − k)/s up"),
        (
            lambda n, k, s, p, c: (
                math.ceil((n + 2 * p - k) / s) + 1 if c else size(n, k, s, p, c)
            ),
            "PyTorch drops it",
        ),
    ],
)
def test_ceil_mode_size_mistakes_get_their_hints(wrong, hint):
    result = check_ceil_mode_size(wrong)
    assert not result
    assert hint in result.message, result.message


# --- commutes_with_max_pool -------------------------------------------------------

COMMUTE = {"relu", "leaky_relu", "sigmoid", "add_one", "double", "cube", "floor"}


def by_experiment():  # alternative: test every candidate on random windows
    x = np.random.default_rng(0).uniform(-3, 3, size=(1000, 4))
    return {
        name
        for name, g in CANDIDATES.items()
        if np.array_equal(g(x.max(axis=1)), g(x).max(axis=1))
    }


def test_commutes_correct_solutions_pass():
    assert check_commutes_with_max_pool(lambda: COMMUTE)
    assert check_commutes_with_max_pool(lambda: sorted(COMMUTE))
    assert by_experiment() == COMMUTE
    assert check_commutes_with_max_pool(by_experiment)


@pytest.mark.parametrize(
    "answer, hint",
    [
        (COMMUTE | {"negate"}, "reverses the order"),
        (COMMUTE | {"square"}, "x² is not monotone"),
        (COMMUTE | {"abs"}, "|x| is not monotone"),
        (COMMUTE - {"floor"}, "never decreases"),
        (COMMUTE - {"cube"}, "x³ is increasing"),
        (COMMUTE - {"sigmoid"}, "every non-decreasing function"),
        ({"relu"}, "x³ is increasing"),
        (COMMUTE | {"tanh"}, "unknown names"),
        ("relu", "expected a set"),
        ({1, 2}, "expected names"),
    ],
)
def test_commutes_mistakes_get_their_hints(answer, hint):
    result = check_commutes_with_max_pool(lambda: answer)
    assert not result
    assert hint in result.message, result.message


# --- max_pool_picks -------------------------------------------------------------------


def picks_loops(x, k, stride, tie="first", add=True):
    counts = np.zeros(x.shape)
    h, w = x.shape
    for i in range(0, h - k + 1, stride):
        for j in range(0, w - k + 1, stride):
            best, where = -math.inf, []
            for a in range(i, i + k):
                for b in range(j, j + k):
                    if x[a, b] > best:
                        best, where = x[a, b], [(a, b)]
                    elif x[a, b] == best:
                        where.append((a, b))
            if tie == "first":
                where = where[:1]
            elif tie == "last":
                where = where[-1:]
            for a, b in where:
                share = 1 / len(where) if tie == "split" else 1
                counts[a, b] = counts[a, b] + share if add else 1
    return counts


def picks_by_backward(x, k, stride):  # alternative: the package's backward, dout = 1
    ho, wo = (x.shape[0] - k) // stride + 1, (x.shape[1] - k) // stride + 1
    ones = np.ones((1, 1, ho, wo))
    return naive.max_pool2d_backward(ones, x[None, None], k, stride)[0, 0]


@pytest.mark.parametrize("right", [picks_loops, picks_by_backward])
def test_max_pool_picks_accepts_correct(right):
    result = check_max_pool_picks(right)
    assert result, result.message


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda x, k, s: picks_loops(x, k, s, tie="split"), "a tie is not split"),
        (lambda x, k, s: picks_loops(x, k, s, tie="all"), "one pixel only"),
        (lambda x, k, s: picks_loops(x, k, s, tie="last"), "not the last"),
        (lambda x, k, s: picks_loops(x, k, s, add=False), "gradients add up"),
        (lambda x, k, s: picks_loops(x, k, k), "window (i, j) starts at row"),
        (lambda x, k, s: np.zeros((2, 2)), "the shape of x"),
        (lambda x, k, s: np.ones(x.shape), "walk the windows"),
    ],
)
def test_max_pool_picks_mistakes_get_their_hints(wrong, hint):
    result = check_max_pool_picks(wrong)
    assert not result
    assert hint in result.message, result.message


def test_max_pool_picks_stub_and_crash():
    def stub(x, k, s):
        raise NotImplementedError

    assert "not implemented yet" in check_max_pool_picks(stub).message
    result = check_max_pool_picks(lambda x, k, s: x[99])
    assert not result and "IndexError" in result.message
