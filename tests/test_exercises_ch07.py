"""Chapter 7 checkers: each typical mistake gets its hint, correct solutions pass."""

import math

import numpy as np
import pytest

from cnnbook import exercises
from cnnbook.exercises import ch07
from cnnbook.exercises.ch07 import (
    check_coast_distance,
    check_divergence_lr,
    check_ravine_momentum,
)
from cnnbook.optim import SGD


def test_checkers_are_exported():
    for name in ch07.__all__:
        assert getattr(exercises, name) is getattr(ch07, name)


def test_registry_headers():
    assert [ex.header for ex in ch07.EXERCISES] == [
        "7.1: How far does momentum coast? — easy; prediction",
        "7.2: Where momentum diverges — medium; derivation",
        "7.3: The right momentum for a learning rate — harder; tuning",
    ]
    assert sum(ex.needs_thought for ex in ch07.EXERCISES) == 3


def stub(*args, **kwargs):
    raise NotImplementedError


@pytest.mark.parametrize(
    "checker", [check_coast_distance, check_divergence_lr, check_ravine_momentum]
)
def test_stub_and_bad_answers(checker):
    assert "not implemented yet" in checker(stub).message

    def raises(*args, **kwargs):
        raise ZeroDivisionError("oops")

    assert "raised ZeroDivisionError: oops" in checker(raises).message
    assert not checker(lambda *a, **k: None)
    assert not checker(lambda *a, **k: "fast")
    assert not checker(lambda *a, **k: math.nan)
    with pytest.raises(TypeError, match="expects your function itself"):
        checker(3)


# ----------------------------------------------------------------------------------
# 7.1 How far does momentum coast?
# ----------------------------------------------------------------------------------


def coast(step, momentum):
    return step * momentum / (1 - momentum)


def coast_by_simulation(step, momentum):  # alternative: run SGD with zero gradient
    p, g = np.zeros(np.shape(step)), np.zeros(np.shape(step))
    opt = SGD([(p, g)], lr=1.0, momentum=momentum)
    opt.velocity[0][...] = step  # lr = 1: the velocity is the last step
    for _ in range(2000):
        opt.step()
    return -p if np.ndim(step) else float(-p)


def test_coast_correct_solutions_pass():
    assert check_coast_distance(coast)
    assert check_coast_distance(coast_by_simulation)


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda s, mu: s / (1 - mu), "also counts the step already taken"),
        (lambda s, mu: s * mu, "only the next step"),
        (lambda s, mu: s * mu / (1 - mu) ** 2, "from the *limit* velocity"),
        (lambda s, mu: -s * mu / (1 - mu), "nothing pushes back"),
    ],
)
def test_coast_mistakes_get_their_hints(wrong, hint):
    result = check_coast_distance(wrong)
    assert not result
    assert hint in result.message


# ----------------------------------------------------------------------------------
# 7.2 Where momentum diverges
# ----------------------------------------------------------------------------------


def divergence_lr(curvature, momentum, nesterov=False):
    if nesterov:
        return 2 * (1 + momentum) / (curvature * (1 + 2 * momentum))
    return 2 * (1 + momentum) / curvature


def divergence_lr_by_roots(curvature, momentum, nesterov=False):
    """Alternative: bisect on the spectral radius of the update's 2×2 matrix."""

    def radius(lr):
        a = lr * curvature
        if nesterov:  # p' = (1+μ)(1−a) p − μ(1−a) p_prev
            M = [[(1 + momentum) * (1 - a), -momentum * (1 - a)], [1, 0]]
        else:
            M = [[1 + momentum - a, -momentum], [1, 0]]
        return max(abs(np.linalg.eigvals(np.array(M))))

    lo, hi = 1e-9, 10.0 / curvature
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if radius(mid) < 1 else (lo, mid)
    return lo


def test_divergence_correct_solutions_pass():
    assert check_divergence_lr(divergence_lr)
    assert check_divergence_lr(divergence_lr_by_roots)


@pytest.mark.parametrize("nesterov", [False, True])
def test_divergence_limit_is_where_sgd_diverges(nesterov):
    for lam, mu in [(50.0, 0.9), (3.0, 0.5)]:
        limit = divergence_lr(lam, mu, nesterov)
        for factor, diverges in [(0.99, False), (1.01, True)]:
            p, g = np.array([1.0]), np.zeros(1)
            opt = SGD([(p, g)], lr=factor * limit, momentum=mu, nesterov=nesterov)
            with np.errstate(all="ignore"):
                for _ in range(3000):
                    g[:] = lam * p
                    opt.step()
            assert (not abs(p[0]) <= 1) == diverges  # NaN counts as diverged


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda lam, mu, nesterov=False: 2 / lam, "plain gradient descent's limit"),
        (lambda lam, mu, nesterov=False: 2 / (lam * (1 - mu)), "*constant* gradient"),
        (lambda lam, mu, nesterov=False: 2 * (1 + mu) / lam, "redo the recurrence"),
        (lambda lam, mu, nesterov=False: 2 * (1 - mu) / lam, "*widens*"),
    ],
)
def test_divergence_mistakes_get_their_hints(wrong, hint):
    result = check_divergence_lr(wrong)
    assert not result
    assert hint in result.message


# ----------------------------------------------------------------------------------
# 7.3 The right momentum for a learning rate
# ----------------------------------------------------------------------------------


def ravine_momentum(curvatures, lr):
    return (1 - math.sqrt(lr * min(curvatures))) ** 2


def ravine_momentum_by_search(curvatures, lr):
    """Alternative: try momenta, keep the one whose iterate is smallest after 300
    steps from a start with every direction equally far off."""
    lam = np.asarray(curvatures, dtype=float)

    def size_after(mu, steps=300):
        x = prev = 1 / np.sqrt(lam)
        for _ in range(steps):
            x, prev = x - lr * lam * x + mu * (x - prev), x
        return np.abs(x).max()

    return min(np.linspace(0, 0.99, 100), key=size_after)


def test_ravine_momentum_correct_solutions_pass():
    assert check_ravine_momentum(ravine_momentum)
    assert check_ravine_momentum(ravine_momentum_by_search)
    assert check_ravine_momentum(lambda c, lr: np.float32(ravine_momentum(c, lr)))


def polyak(curvatures, lr):
    k = max(curvatures) / min(curvatures)
    return ((math.sqrt(k) - 1) / (math.sqrt(k) + 1)) ** 2


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda c, lr: 0.9, "too much momentum"),
        (lambda c, lr: 0.99, "too much momentum"),
        (lambda c, lr: 0.0, "too little momentum"),
        (lambda c, lr: 0.5, "too little momentum"),
        (polyak, "Polyak's μ*"),
        (lambda c, lr: 1.0, "must lie in [0, 1)"),
        (lambda c, lr: -0.5, "must lie in [0, 1)"),
        (lambda c, lr: math.nan, "must lie in [0, 1)"),
    ],
)
def test_ravine_momentum_mistakes_get_their_hints(wrong, hint):
    result = check_ravine_momentum(wrong)
    assert not result
    assert hint in result.message


def test_the_best_momentum_beats_the_chapter_default():
    curv, lr = (1.0, 50.0), 0.02
    best = ch07._best_momentum(curv, lr)
    assert math.isclose(best, ravine_momentum(curv, lr), rel_tol=1e-3)
    assert ch07._steps(ch07._rate(curv, lr, best)) < 0.5 * ch07._steps(
        ch07._rate(curv, lr, 0.9)
    )
