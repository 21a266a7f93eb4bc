"""Checkers for the exercises of Chapter 7 (training with momentum).

- ``check_coast_distance(fn)``: ``fn(step, momentum) -> distance``, how much further
  momentum carries a parameter once the gradient is zero.
- ``check_divergence_lr(fn)``: ``fn(curvature, momentum, nesterov=False) -> lr``, the
  learning rate above which (Nesterov) momentum diverges on ``f(p) = ½ λ p²``.
- ``check_ravine_momentum(fn)``: ``fn(curvatures, lr) -> momentum``, the momentum
  coefficient that makes the heavy ball fastest on a ravine at a given learning rate.

The expected answers come from the recurrences of the update rule (closed forms,
confirmed against step-by-step simulation in the tests), not from ``cnnbook.optim``.
"""

from __future__ import annotations

import math
import numbers
from typing import Callable

import numpy as np

from ._core import Case, CheckResult, Exercise, describe, require_function
from .ch06 import run_diagnosed

__all__ = ["check_coast_distance", "check_divergence_lr", "check_ravine_momentum"]

EXERCISES = [
    Exercise(
        "7.1",
        "How far does momentum coast?",
        "easy",
        "prediction",
        "the velocity as a geometric series, overshoot",
        "check_coast_distance",
        "ex07-coast",
    ),
    Exercise(
        "7.2",
        "Where momentum diverges",
        "medium",
        "derivation",
        "linear recurrences, roots inside the unit circle, stability limits",
        "check_divergence_lr",
        "ex07-divergence",
    ),
    Exercise(
        "7.3",
        "The right momentum for a learning rate",
        "harder",
        "tuning",
        "convergence rate of the heavy ball, critical damping",
        "check_ravine_momentum",
        "ex07-ravine-momentum",
    ),
]


# ----------------------------------------------------------------------------------
# 7.1 How far does momentum coast?
# ----------------------------------------------------------------------------------


def _coast(step, momentum):
    return step * momentum / (1 - momentum)


def check_coast_distance(fn: Callable) -> CheckResult:
    """``fn(step, momentum)``: the total further distance ``p`` moves when the last
    step was ``step`` (that is ``η·v``) and every gradient from now on is zero.
    ``step`` may be a float or an array (one entry per parameter)."""
    steps = np.array([0.5, -0.2, 0.0, 1.5])
    cases = [
        Case((0.1, 0.9), _coast(0.1, 0.9)),
        Case((2.0, 0.5), _coast(2.0, 0.5)),
        Case((0.3, 0.0), _coast(0.3, 0.0)),
        Case((steps, 0.8), _coast(steps, 0.8)),
        Case((steps.astype(np.float32), 0.95), _coast(steps, 0.95)),
    ]
    mistakes = [
        (
            lambda s, mu: s / (1 - mu),
            "s/(1 − μ) also counts the step already taken: the next step is μ·s, "
            "then μ²·s, ...",
        ),
        (
            lambda s, mu: s * mu,
            "that is only the next step: the velocity keeps decaying by μ every step, "
            "sum all of them",
        ),
        (
            lambda s, mu: s * mu / (1 - mu) ** 2,
            "the velocity you start from is already given (η·v = step); "
            "η/(1 − μ)² is the coast from the *limit* velocity of a constant gradient",
        ),
        (
            lambda s, mu: -s * mu / (1 - mu),
            "without a gradient nothing pushes back: the parameter keeps moving in "
            "the direction of its last step",
        ),
    ]
    return run_diagnosed("coast_distance", fn, cases, mistakes, rtol=1e-6, atol=1e-9)


# ----------------------------------------------------------------------------------
# 7.2 Where momentum diverges
# ----------------------------------------------------------------------------------


def _limit(curvature, momentum, nesterov=False):
    if nesterov:
        return 2 * (1 + momentum) / (curvature * (1 + 2 * momentum))
    return 2 * (1 + momentum) / curvature


def check_divergence_lr(fn: Callable) -> CheckResult:
    """``fn(curvature, momentum, nesterov=False)``: the learning rate above which SGD
    with (Nesterov) momentum, PyTorch's convention, diverges on ``f(p) = ½ λ p²``."""
    cases = [
        Case((50.0, 0.9), _limit(50.0, 0.9)),
        Case((4.0, 0.5), _limit(4.0, 0.5)),
        Case((2.0, 0.0), _limit(2.0, 0.0)),
        Case((10.0, 0.99), _limit(10.0, 0.99)),
        Case((50.0, 0.9), _limit(50.0, 0.9, True), {"nesterov": True}),
        Case((3.0, 0.6), _limit(3.0, 0.6, True), {"nesterov": True}),
        Case((1.0, 0.0), _limit(1.0, 0.0, True), {"nesterov": True}),
        Case((25.0, 0.75), _limit(25.0, 0.75), {"nesterov": False}),
    ]
    mistakes = [
        (
            lambda lam, mu, nesterov=False: 2 / lam,
            "2/λ is plain gradient descent's limit; with momentum write "
            "p_{t+1} = (1 + μ − ηλ) p_t − μ p_{t−1} and find the η at which a root of "
            "z² − (1 + μ − ηλ) z + μ = 0 leaves the unit circle (try z = −1)",
        ),
        (
            lambda lam, mu, nesterov=False: 2 / (lam * (1 - mu)),
            "η/(1 − μ) is the effective step for a *constant* gradient; divergence is "
            "an oscillation, decided by the root z = −1 of the recurrence",
        ),
        (
            lambda lam, mu, nesterov=False: 2 * (1 + mu) / lam,
            "right for the heavy ball, but Nesterov steps by η(g + μv): redo the "
            "recurrence with that step; its range is narrower",
        ),
        (
            lambda lam, mu, nesterov=False: 2 * (1 - mu) / lam,
            "momentum *widens* the stable range: at z = −1 the term μ p_{t−1} pushes "
            "back against the overshoot",
        ),
    ]
    return run_diagnosed("divergence_lr", fn, cases, mistakes, rtol=1e-6, atol=1e-12)


# ----------------------------------------------------------------------------------
# 7.3 The right momentum for a learning rate
# ----------------------------------------------------------------------------------

# (curvatures, learning rate) of the checker's ravines; the first is the chapter's.
_RAVINES = [((1.0, 50.0), 0.02), ((0.5, 40.0), 0.01), ((2.0, 10.0), 0.05)]
_SLACK = 1.25  # accepted: at most 1.25 times the steps of the best momentum


def _rate(curvatures, lr, momentum) -> float:
    """The heavy ball's contraction per step in the long run: the largest root
    modulus of z² − (1 + μ − ηλ) z + μ over the curvatures."""
    worst = 0.0
    for lam in curvatures:
        roots = np.roots([1.0, -(1.0 + momentum - lr * lam), momentum])
        worst = max(worst, float(np.max(np.abs(roots))))
    return worst


def _steps(rate: float) -> float:
    """Steps to shrink the error by 10⁶ at a contraction ``rate`` per step."""
    return math.inf if not rate < 1 else math.log(1e-6) / math.log(rate)


def _best_momentum(curvatures, lr) -> float:
    """The fastest μ: a fine grid, and the critical damping of the flattest direction
    (both of its roots at 1 − √(ηλ_min)), which is the optimum when the steeper
    directions oscillate no slower."""
    critical = (1 - math.sqrt(lr * min(curvatures))) ** 2
    grid = [*np.linspace(0.0, 0.999, 1000).tolist(), critical]
    return min(grid, key=lambda mu: _rate(curvatures, lr, mu))


def check_ravine_momentum(fn: Callable) -> CheckResult:
    """``fn(curvatures, lr) -> momentum``: a momentum coefficient for which the heavy
    ball at learning rate ``lr`` on ``f = ½ Σ λ_i x_i²`` converges in the long run at
    most 1.25 times slower (in steps) than with the best coefficient."""
    require_function("ravine_momentum", fn)
    name = getattr(fn, "__name__", "ravine_momentum")
    for number, (curv, lr) in enumerate(_RAVINES, start=1):
        call = f"{name}({curv!r}, {lr!r})"
        try:
            mu = fn(curv, lr)
        except NotImplementedError:
            return CheckResult(
                "ravine_momentum", False, f"✗ {name}: not implemented yet — your turn!"
            )
        except Exception as err:  # the reader's code may raise anything
            return CheckResult(
                "ravine_momentum",
                False,
                f"✗ {name} raised {type(err).__name__}: {err}\n  on {call}",
            )
        if isinstance(mu, (bool, np.bool_)) or not isinstance(
            mu, (numbers.Real, np.floating, np.integer)
        ):
            if not (isinstance(mu, np.ndarray) and mu.size == 1):
                return CheckResult(
                    "ravine_momentum",
                    False,
                    f"✗ {name}: {call} returned {describe(mu)}, expected a number",
                )
        mu = float(np.asarray(mu).ravel()[0])
        best = _best_momentum(curv, lr)
        budget = _SLACK * _steps(_rate(curv, lr, best))
        if not 0 <= mu < 1:  # also catches NaN
            hint = "the momentum coefficient must lie in [0, 1): with μ ≥ 1 the "
            hint += "velocity never forgets and the iterate cannot settle"
        else:
            steps = _steps(_rate(curv, lr, mu))
            if steps <= budget:
                continue
            polyak_kappa = max(curv) / min(curv)
            polyak = (
                (math.sqrt(polyak_kappa) - 1) / (math.sqrt(polyak_kappa) + 1)
            ) ** 2
            if math.isclose(mu, polyak, rel_tol=1e-3):
                hint = (
                    "that is Polyak's μ*, optimal together with *its own* learning "
                    "rate η*; here η is given, so tune μ for it"
                )
            elif mu < best:
                hint = (
                    "too little momentum: the flat direction still crawls (its roots "
                    "are real, one close to 1); more velocity speeds it up"
                )
            else:
                hint = (
                    "too much momentum: the iterate orbits the minimum and shrinks by "
                    "only √μ per step; the best μ is the smallest one that still "
                    "speeds up the flat direction as much as possible (look at when "
                    "its two roots meet)"
                )
            how = "never" if math.isinf(steps) else f"in about {steps:.0f} steps"
            return CheckResult(
                "ravine_momentum",
                False,
                f"✗ {name} failed check {number} of {len(_RAVINES)}\n"
                f"  on {call} it returned μ = {mu:.4g}: the error shrinks by 10⁶ "
                f"{how}, the best μ needs {budget / _SLACK:.0f}\n  hint: {hint}",
            )
        return CheckResult(
            "ravine_momentum",
            False,
            f"✗ {name} failed check {number} of {len(_RAVINES)}\n"
            f"  on {call} it returned {describe(mu)}\n  hint: {hint}",
        )
    return CheckResult(
        "ravine_momentum", True, f"✓ {name} passed all {len(_RAVINES)} checks."
    )
