"""Checkers for Chapter 5, softmax and the fully connected layer.

The expected answers are computed here in float64 with NumPy alone (a softmax of their
own, the variance argument of the initialization section), independent of
``cnnbook.functional``.
"""

from __future__ import annotations

import math

import numpy as np

from ._core import Case, CheckResult, Exercise, describe, require_function, run_cases

__all__ = ["check_softmax_limits", "check_temperature_for", "check_leaky_he_std"]

EXERCISES = [
    Exercise(
        "5.1",
        "Softmax at the extremes of temperature",
        "easy",
        "prediction",
        "softmax(z / T) as T → 0 and T → ∞, ties",
        "check_softmax_limits",
        "ex05-limits",
    ),
    Exercise(
        "5.2",
        "The temperature for a given confidence",
        "medium",
        "tuning",
        "monotonicity of the largest probability in T, bisection, stable softmax",
        "check_temperature_for",
        "ex05-temperature",
    ),
    Exercise(
        "5.3",
        "He initialization for a leaky ReLU",
        "medium",
        "derivation",
        "variance through a linear layer and a leaky ReLU",
        "check_leaky_he_std",
        "ex05-leaky-he",
    ),
]


def _softmax(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# ----------------------------------------------------------------------------------
# 5.1 Softmax at the extremes of temperature
# ----------------------------------------------------------------------------------


def _limits(z: np.ndarray):
    z = np.asarray(z, dtype=np.float64)
    top = z == z.max(axis=-1, keepdims=True)
    cold = top / top.sum(axis=-1, keepdims=True)
    hot = np.full(z.shape, 1.0 / z.shape[-1])
    return cold, hot


def check_softmax_limits(fn) -> CheckResult:
    """``fn(z)`` → ``(cold, hot)``: the limits of ``softmax(z / T)`` row by row for
    ``z: (N, K)`` as ``T → 0+`` and as ``T → ∞``, two arrays of ``z``'s shape."""
    rng = np.random.default_rng(51)
    spec = [
        (
            np.array([[1.0, 2.0, 3.0]]),
            "as T → 0 the differences z_k/T − z_max/T go to −∞ for every class but "
            "the largest; as T → ∞ every z_k/T goes to 0",
        ),
        (
            np.array([[1.0, 3.0, 3.0]]),
            "a tie for the largest logit: as T → 0 the tied classes keep equal "
            "probabilities, so they share the mass (1/2 each here)",
        ),
        (
            rng.standard_normal((4, 5)),
            "every row is its own distribution: take each row's own maximum",
        ),
        (
            np.array([[-5.0, -5.0, -7.0, -5.0], [2.0, 2.0, 2.0, 2.0]]),
            "ties again, with negative logits: three classes share the top; and a row "
            "of equal logits stays uniform at every T",
        ),
        (rng.standard_normal((3, 10)).astype(np.float32), ""),
    ]
    cases = [Case((z,), _limits(z), hint=hint) for z, hint in spec]
    return run_cases("softmax_limits", fn, cases, rtol=1e-6, atol=1e-7)


# ----------------------------------------------------------------------------------
# 5.2 The temperature for a given confidence
# ----------------------------------------------------------------------------------

_TEMPERATURE_CASES = [
    (np.array([2.0, 1.0, 0.5, 0.0, -1.0]), 0.5),
    (np.array([2.0, 1.0, 0.5, 0.0, -1.0]), 0.9),
    (np.array([3.0, 0.0, 0.0]), 0.4),
    (np.array([1000.0, 999.0, 0.0]), 0.6),
    (np.array([0.1, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]), 0.99),
    (np.array([-3.0, 4.0, 1.0, 2.5]), 0.3),
    (np.array([5000.0, 0.0, 0.0]), 0.4),  # T ≈ 1.7e4: outside a fixed [1e-3, 1e3]
]


def _p_max(z: np.ndarray, T: float) -> float:
    return float(_softmax(z / T).max())


def check_temperature_for(fn) -> CheckResult:
    """``fn(z, p_max)`` → a temperature ``T > 0`` with ``softmax(z / T).max()`` equal to
    ``p_max`` within 1e-6, for 1-D logits ``z`` with a unique largest entry and
    ``1/K < p_max < 1``."""
    require_function("temperature_for", fn)
    name = getattr(fn, "__name__", "temperature_for")

    def fail(text: str) -> CheckResult:
        return CheckResult("temperature_for", False, f"✗ {name}{text}")

    for number, (z, p) in enumerate(_TEMPERATURE_CASES, start=1):
        call = f"{name}({describe(z)}, {p})"
        try:
            T = fn(z.copy(), p)
        except NotImplementedError:
            return fail(": not implemented yet — your turn!")
        except Exception as err:  # the reader's code may raise anything
            return fail(f" raised {type(err).__name__}: {err}\n  on {call}")
        where = f" failed check {number} of {len(_TEMPERATURE_CASES)}\n  on {call}\n  "
        try:
            T = float(T)
        except (TypeError, ValueError):
            return fail(f"{where}expected a number, got {describe(T)}")
        if not math.isfinite(T) or T <= 0:
            return fail(
                f"{where}got T = {describe(T)}\n  hint: a temperature is a positive, "
                "finite number (dividing by T ≤ 0 reverses or breaks the softmax)"
            )
        got = _p_max(z, T)
        if abs(got - p) <= 1e-6:
            continue
        if abs(_p_max(z, 1.0 / T) - p) <= 1e-6:
            hint = (
                "you returned 1/T: the logits are *divided* by the temperature, "
                "softmax(z / T)"
            )
        elif min(abs(math.log(T / edge)) for edge in (1e-3, 1e3)) < 1e-3:
            hint = (
                "T sits at the edge of a fixed bracket [1e-3, 1e3]: scale it with the "
                "logits' gap (T grows with max − second largest), or keep doubling hi "
                "until softmax(z / hi).max() < p_max"
            )
        elif abs(got - p) <= 1e-2:
            hint = (
                "close, but not within 1e-6: keep bisecting (each step halves the "
                "bracket; 60 steps on log T are plenty)"
            )
        else:
            hint = (
                "the largest probability falls steadily from 1 (T → 0) to 1/K (T → ∞): "
                "bracket T (scale it with the logits' gap) and bisect on log T"
            )
        return fail(
            f"{where}softmax(z / T).max() = {got:.6g} for T = {T:.6g}, "
            f"expected {p}\n  hint: {hint}"
        )
    return CheckResult(
        "temperature_for",
        True,
        f"✓ {name} passed all {len(_TEMPERATURE_CASES)} checks.",
    )


# ----------------------------------------------------------------------------------
# 5.3 He initialization for a leaky ReLU
# ----------------------------------------------------------------------------------


def _leaky_std(fan_in: int, slope: float) -> float:
    return math.sqrt(2.0 / ((1.0 + slope**2) * fan_in))


def check_leaky_he_std(fn) -> CheckResult:
    """``fn(fan_in, slope)`` → the standard deviation of zero-mean weights that keeps
    the mean square of the activations constant through a linear layer followed by the
    leaky ReLU ``max(z, slope·z)``, ``0 <= slope <= 1``."""
    spec = [
        (
            (72, 0.0),
            "slope 0 is the plain ReLU: He's σ² = 2/fan_in, and the answer is σ, the "
            "square root",
        ),
        (
            (256, 1.0),
            "slope 1 is the identity, no ReLU at all: LeCun's σ² = 1/fan_in",
        ),
        (
            (100, 0.5),
            "a negative input z comes out as a·z, so its square is scaled by a², not "
            "a: E[x²] = (1 + a²)/2 · Var(y)",
        ),
        ((1568, 0.2), ""),
        ((9, 0.01), ""),
        ((4608, 0.3), ""),
    ]
    cases = [Case(args, _leaky_std(*args), hint=hint) for args, hint in spec]
    return run_cases("leaky_he_std", fn, cases, rtol=1e-9, atol=0)
