"""Chapter 4 checkers: each typical mistake gets its hint, correct solutions pass."""

import math

import numpy as np
import pytest

from cnnbook import exercises
from cnnbook.exercises import (
    check_ceil_mode_size,
    check_commutes_with_max_pool,
    check_max_pool_single,
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


# --- max_pool_single ------------------------------------------------------------------


def pool_loops(x, k, stride):
    h, w = x.shape
    ho, wo = (h - k) // stride + 1, (w - k) // stride + 1
    out = np.full((ho, wo), -np.inf)
    for i in range(ho):
        for j in range(wo):
            for di in range(k):
                for dj in range(k):
                    out[i, j] = max(out[i, j], x[i * stride + di, j * stride + dj])
    return out


def pool_views(x, k, stride):
    h, w = x.shape
    ho, wo = (h - k) // stride + 1, (w - k) // stride + 1
    views = [
        x[
            di : di + stride * (ho - 1) + 1 : stride,
            dj : dj + stride * (wo - 1) + 1 : stride,
        ]
        for di in range(k)
        for dj in range(k)
    ]
    return np.maximum.reduce(views)


def pool_zero_start(x, k, stride):
    h, w = x.shape
    ho, wo = (h - k) // stride + 1, (w - k) // stride + 1
    out = np.zeros(
        (ho, wo)
    )  # a running maximum that starts at 0: wrong for negative windows
    for i in range(ho):
        for j in range(wo):
            for di in range(k):
                for dj in range(k):
                    out[i, j] = max(out[i, j], x[i * stride + di, j * stride + dj])
    return out


def pool_ignores_stride(x, k, stride):
    return pool_loops(x, k, k)


def pool_reshape(x, k, stride):
    h, w = x.shape  # only right when k == stride and k divides H and W
    return x.reshape(h // k, k, w // k, k).max(axis=(1, 3))


def pool_mean(x, k, stride):
    h, w = x.shape
    ho, wo = (h - k) // stride + 1, (w - k) // stride + 1
    return np.array(
        [
            [
                x[i * stride : i * stride + k, j * stride : j * stride + k].mean()
                for j in range(wo)
            ]
            for i in range(ho)
        ]
    )


@pytest.mark.parametrize("right", [pool_loops, pool_views])
def test_max_pool_single_accepts_correct(right):
    result = check_max_pool_single(right)
    assert result, result.message


@pytest.mark.parametrize(
    "wrong", [pool_zero_start, pool_ignores_stride, pool_reshape, pool_mean]
)
def test_max_pool_single_rejects(wrong):
    result = check_max_pool_single(wrong)
    assert not result
    assert result.message.startswith("✗")


def test_max_pool_single_hint_for_zero_start():
    assert "-inf" in check_max_pool_single(pool_zero_start).message


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (pool_zero_start, "start at -inf"),
        (pool_ignores_stride, "overlapping windows"),
    ],
)
def test_max_pool_single_hints(wrong, hint):
    result = check_max_pool_single(wrong)
    assert hint in result.message, result.message
