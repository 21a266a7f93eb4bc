"""Chapter 5 checkers: each typical mistake gets its hint, correct solutions pass."""

import math

import numpy as np
import pytest

from cnnbook import exercises
from cnnbook import functional as F
from cnnbook.exercises import (
    check_leaky_he_std,
    check_softmax_limits,
    check_temperature_for,
)
from cnnbook.exercises.ch05 import EXERCISES


def test_checkers_are_exported_and_registered():
    for exercise in EXERCISES:
        assert exercise.checker in exercises.__all__
    assert sum(e.needs_thought for e in EXERCISES) >= 2


# --- 5.1 softmax_limits ------------------------------------------------------------


def limits(z):
    top = z == z.max(axis=-1, keepdims=True)
    return top / top.sum(axis=-1, keepdims=True), np.full(z.shape, 1 / z.shape[-1])


def limits_numerically(z):  # alternative: evaluate softmax at extreme temperatures
    z = z.astype(np.float64)
    cold = F.softmax((z - z.max(axis=-1, keepdims=True)) / 1e-12)
    return cold, F.softmax(z / 1e12)


def test_limits_correct_solutions_pass():
    assert check_softmax_limits(limits)
    assert check_softmax_limits(limits_numerically)


def one_hot_first(z):
    cold = np.zeros(z.shape)
    cold[np.arange(len(z)), z.argmax(axis=-1)] = 1.0
    return cold, limits(z)[1]


def global_max(z):
    top = z == z.max()
    return top / np.maximum(top.sum(axis=-1, keepdims=True), 1), limits(z)[1]


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda z: (limits(z)[0], np.zeros(z.shape)), "every z_k/T goes to 0"),
        (lambda z: (limits(z)[0], F.softmax(z)), "every z_k/T goes to 0"),
        (lambda z: limits(z)[::-1], "every z_k/T goes to 0"),
        (one_hot_first, "share the mass"),
        (global_max, "each row's own maximum"),
    ],
)
def test_limits_mistakes_get_their_hints(wrong, hint):
    result = check_softmax_limits(wrong)
    assert not result
    assert hint in result.message, result.message


def test_limits_survives_junk():
    assert "expected a tuple of 2" in check_softmax_limits(lambda z: z).message
    result = check_softmax_limits(lambda z: (z[:, :1], z))
    assert not result and "wrong shape" in result.message


# --- 5.2 temperature_for -------------------------------------------------------------


def p_max(z, T):
    return F.softmax(np.asarray(z, dtype=np.float64) / T).max()


def bisect(z, p, steps=80, bracket=None):
    if bracket is None:  # scale with the logits' gap, widen until it holds p
        gap = float(np.ptp(z))
        lo, hi = gap / 2, gap * 2
        while p_max(z, hi) > p:
            hi *= 2
        while p_max(z, lo) < p:
            lo /= 2
        bracket = (lo, hi)
    lo, hi = math.log(bracket[0]), math.log(bracket[1])  # p_max falls as log T grows
    for _ in range(steps):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if p_max(z, math.exp(mid)) > p else (lo, mid)
    return math.exp((lo + hi) / 2)


def brent(z, p):  # alternative: scipy's root finder on log T, around the logits' gap
    scipy_optimize = pytest.importorskip("scipy.optimize")
    u0 = math.log(float(np.ptp(z)))
    return math.exp(
        scipy_optimize.brentq(
            lambda u: p_max(z, math.exp(u)) - p, u0 - 12, u0 + 12, xtol=1e-14
        )
    )


def test_temperature_correct_solutions_pass():
    assert check_temperature_for(bisect)
    assert check_temperature_for(brent)


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda z, p: 1 / bisect(z, p), "you returned 1/T"),
        (lambda z, p: -bisect(z, p), "positive, finite"),
        (lambda z, p: 0.0, "positive, finite"),
        (lambda z, p: bisect(z, p, steps=8), "keep bisecting"),
        (
            lambda z, p: bisect(z, p, bracket=(1e-3, 1e3)),
            "scale it with the logits' gap",
        ),
        (lambda z, p: 1.0, "falls steadily"),
        (lambda z, p: "hot", "expected a number"),
    ],
)
def test_temperature_mistakes_get_their_hints(wrong, hint):
    result = check_temperature_for(wrong)
    assert not result
    assert hint in result.message, result.message


def test_temperature_reports_exceptions():
    result = check_temperature_for(lambda z, p: z[99])
    assert not result and "IndexError" in result.message


# --- 5.3 leaky_he_std ----------------------------------------------------------------


def leaky_std(fan_in, slope):
    return math.sqrt(2 / ((1 + slope**2) * fan_in))


def leaky_std_by_gain(fan_in, slope):  # alternative: the gain's mean over z > 0, z < 0
    mean_square_gain = (1**2 + slope**2) / 2
    return (mean_square_gain * fan_in) ** -0.5


def test_leaky_correct_solutions_pass():
    assert check_leaky_he_std(leaky_std)
    assert check_leaky_he_std(leaky_std_by_gain)


def test_leaky_std_keeps_the_signal_through_a_deep_stack():
    rng = np.random.default_rng(0)
    a, slope = rng.standard_normal((256, 256)), 0.3
    start = np.sqrt(np.mean(a**2))
    for _ in range(30):
        z = a @ (rng.standard_normal((256, 256)) * leaky_std(256, slope))
        a = np.where(z > 0, z, slope * z)
    assert 0.5 < np.sqrt(np.mean(a**2)) / start < 2


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda n, a: leaky_std(n, a) ** 2, "the square root"),
        (lambda n, a: math.sqrt(1 / ((1 + a**2) * n)), "He's σ² = 2/fan_in"),
        (lambda n, a: math.sqrt(2 / n), "LeCun's σ² = 1/fan_in"),
        (lambda n, a: math.sqrt(2 / ((1 + a) * n)), "scaled by a², not a"),
    ],
)
def test_leaky_mistakes_get_their_hints(wrong, hint):
    result = check_leaky_he_std(wrong)
    assert not result
    assert hint in result.message, result.message
