"""Checkers for the exercises of Chapter 7 (training with momentum)."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from ._core import Case, CheckResult, describe, run_cases

__all__ = ["check_velocity_update", "check_ravine_lr"]


def _reference_velocity_update(p, v, g, lr, momentum):
    v_new = momentum * v + g
    return p - lr * v_new, v_new


def check_velocity_update(fn: Callable) -> CheckResult:
    """``fn(p, v, g, lr, momentum) -> (p_new, v_new)``: one momentum step, as PyTorch.

    ``v_new = momentum·v + g`` and ``p_new = p − lr·v_new``; arrays in, new arrays out.
    """
    rng = np.random.default_rng(7)
    p, v, g = (rng.standard_normal(5).round(3) for _ in range(3))
    cases = [
        Case(
            (np.array([1.0, -2.0]), np.zeros(2), np.array([0.5, 1.0]), 0.1, 0.9),
            (np.array([0.95, -2.1]), np.array([0.5, 1.0])),
            hint="the velocity starts at 0, so the first step is a plain SGD step",
        ),
        Case(
            (
                np.array([0.95, -2.1]),
                np.array([0.5, 1.0]),
                np.array([1.0, -1.0]),
                0.1,
                0.9,
            ),
            (np.array([0.805, -2.09]), np.array([1.45, -0.1])),
            hint="update the velocity first (v = momentum·v + g), "
            "then move p by lr times the NEW v",
        ),
        Case(
            (np.array([3.0]), np.array([2.0]), np.array([1.0]), 0.5, 0.0),
            (np.array([2.5]), np.array([1.0])),
            hint="momentum = 0 must give plain SGD: p − lr·g",
        ),
        Case((p, v, g, 0.05, 0.8), _reference_velocity_update(p, v, g, 0.05, 0.8)),
    ]
    result = run_cases("velocity_update", fn, cases)
    if not result:
        try:
            got = fn(np.array([1.0]), np.array([0.0]), np.array([2.0]), 0.1, 0.5)
            p_new, v_new = (np.asarray(a, dtype=float) for a in got)
        except Exception:
            return result
        if np.allclose(p_new, [0.8]) and np.allclose(v_new, [-0.2]):
            result.message += (
                "\n  note: that is the other convention (v = μ·v − lr·g, p = p + v): "
                "the same path for p, but here v is kept in gradient units, "
                "like PyTorch"
            )
    return result


# The checker's ravines: f(x) = ½ Σ λ_i x_i², minimized at 0, starting from x0.
_RAVINES = [(1.0, 25.0), (0.5, 40.0), (2.0, 10.0), (0.1, 3.0)]


def _gd_steps(
    lr: float, curvatures, tol: float = 1e-6, max_steps: int = 100_000
) -> int | None:
    """Steps of plain gradient descent until f(x) < tol·f(x0); None if it never gets
    there."""
    lam = np.asarray(curvatures, dtype=float)
    x = 1.0 / np.sqrt(lam)  # every direction starts with the same share of f
    f0 = 0.5 * float(lam @ x**2)
    for step in range(1, max_steps + 1):
        x = x - lr * lam * x
        f = 0.5 * float(lam @ x**2)
        if not math.isfinite(f) or f > 1e12 * f0:
            return None
        if f < tol * f0:
            return step
    return None


def check_ravine_lr(fn: Callable) -> CheckResult:
    """``fn(curvatures) -> lr``: a good learning rate for gradient descent on a ravine.

    The ravine is ``f(x) = ½ Σ λ_i x_i²`` with ``curvatures = (λ_min, λ_max)``; the
    learning rate must converge within 1.5× the steps the best constant one needs.
    """
    if not callable(fn):
        raise TypeError(
            f"check_ravine_lr expects your function itself, got {describe(fn)}"
        )
    name = getattr(fn, "__name__", "ravine_lr")
    for number, curv in enumerate(_RAVINES, start=1):
        lo, hi = min(curv), max(curv)
        try:
            lr = fn(curv)
        except NotImplementedError:
            return CheckResult(
                "ravine_lr", False, f"✗ {name}: not implemented yet — your turn!"
            )
        except Exception as err:  # the reader's code may raise anything
            return CheckResult(
                "ravine_lr",
                False,
                f"✗ {name} raised {type(err).__name__}: {err}\n  on {name}({curv!r})",
            )
        try:
            lr = float(lr)
        except (TypeError, ValueError):
            return CheckResult(
                "ravine_lr",
                False,
                f"✗ {name}({curv!r}) returned {describe(lr)}, expected a number",
            )
        best = _gd_steps(2.0 / (lo + hi), curv)
        budget = math.ceil(1.5 * best)
        steps = _gd_steps(lr, curv, max_steps=budget)
        if steps is None:
            diverges = not lr > 0 or lr >= 2.0 / hi
            why = (
                "the steep direction (curvature {hi:g}) overshoots more every step: "
                "gradient descent needs lr < 2/λ_max"
                if diverges
                else "it converges, but too slowly: the flat direction "
                "(curvature {lo:g}) crawls; "
                "balance the two directions' contraction factors |1 − lr·λ|"
            )
            return CheckResult(
                "ravine_lr",
                False,
                f"✗ {name} failed check {number} of {len(_RAVINES)}\n"
                f"  on {name}({curv!r}) it returned lr = {lr:.6g}: not within {budget} "
                f"steps (the best constant learning rate needs {best})\n  hint: "
                + why.format(hi=hi, lo=lo),
            )
    return CheckResult(
        "ravine_lr", True, f"✓ {name} passed all {len(_RAVINES)} checks."
    )
