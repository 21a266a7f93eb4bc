"""Checkers for Chapter 9, "backward gets slower every epoch", and its two mystery
runs.

Expected answers are computed here independently of ``cnnbook.diagnostics``. The
mystery models live here, out of the chapter's sight, so that the chapter (and
Exercise 9.1) can start blind: build one with :func:`mystery`, train it with
:func:`cnnbook.train.fit`, and find out with measurements what slows it down.
"""

from __future__ import annotations

import math

import numpy as np

from ..layers import ReLU
from ..models import seed_cnn
from ..optim import SGD
from ._core import Case, CheckResult, Exercise, require_function, run_cases

__all__ = [
    "mystery",
    "check_mystery",
    "check_first_subnormal_step",
    "check_stair_growth",
    "check_running_mean",
    "EXERCISES",
]

EXERCISES = [
    Exercise(
        "9.1",
        "Name the second mystery's cause",
        "medium",
        "diagnosis",
        "per-phase timing, memory and object counts, ramp vs staircase",
        "check_mystery",
        "ex09-mystery",
    ),
    Exercise(
        "9.2",
        "When does a decaying gradient turn subnormal?",
        "medium",
        "derivation",
        "floating-point formats, geometric decay, logarithms",
        "check_first_subnormal_step",
        "ex09-first-subnormal",
    ),
    Exercise(
        "9.3",
        "How much do piling hooks grow?",
        "medium",
        "prediction",
        "staircases, medians over windows, reading diagnose's growth",
        "check_stair_growth",
        "ex09-stair-growth",
    ),
    Exercise(
        "9.4",
        "A running mean in constant time",
        "easy",
        "implementation",
        "debug statistics in O(1) per step",
        "check_running_mean",
        "ex09-running-mean",
    ),
]

# --------------------------------------------------------------------------------------
# the mysteries (do not read this before you have measured)
# --------------------------------------------------------------------------------------


class _DebugReLU(ReLU):
    """A ReLU that, in the debug configuration, checks every input it has seen."""

    def __init__(self, debug: bool):
        super().__init__()
        self.debug = debug
        self.seen = []

    def forward(self, x):
        if self.debug:
            self.seen.append(x)  # never cleared
        return super().forward(x)

    def backward(self, dout):
        if self.debug and not all(np.isfinite(x).all() for x in self.seen):
            raise FloatingPointError("a ReLU input was not finite")
        return super().backward(dout)


class _DebugSGD(SGD):
    """SGD that, in the debug configuration, registers a probe check every epoch."""

    def __init__(self, model, probe, steps_per_epoch, debug, **kwargs):
        super().__init__(model.parameters(), **kwargs)
        self.model, self.probe, self.debug = model, probe, debug
        self.steps_per_epoch, self.debug_steps, self.checks = steps_per_epoch, 0, []

    def _probe_is_finite(self):
        return bool(np.isfinite(self.model.forward(self.probe)).all())

    def step(self):
        super().step()
        if not self.debug:
            return
        if self.debug_steps % self.steps_per_epoch == 0:  # "setup" at epoch start
            self.checks.append(self._probe_is_finite)
        self.debug_steps += 1
        for check in self.checks:
            if not check():
                raise FloatingPointError("the probe's logits are not finite")


def mystery(case: int, *, steps_per_epoch: int, debug: bool = True, rng=0, lr=0.05):
    """``(model, optimizer)`` of mystery run ``case`` (1: the chapter's, 2: Exercise
    9.1's): the seed CNN for 28×28 digits and SGD with momentum 0.9, in the debug
    configuration unless ``debug=False``. Train with :func:`cnnbook.train.fit`, with
    ``steps_per_epoch`` minibatches per epoch.
    """
    if case not in (1, 2):
        raise ValueError(f"there are two mysteries, 1 and 2, got {case!r}")
    model = seed_cnn(rng=np.random.default_rng(rng))
    if case == 1:
        model.layers[2] = _DebugReLU(debug)
        return model, SGD(model.parameters(), lr=lr, momentum=0.9)
    probe = np.random.default_rng(1).random((32, 1, 28, 28), dtype=np.float32)
    optimizer = _DebugSGD(model, probe, steps_per_epoch, debug, lr=lr, momentum=0.9)
    return model, optimizer


# --------------------------------------------------------------------------------------
# 9.1: name the cause of mystery 2
# --------------------------------------------------------------------------------------

_CAUSES = (
    "never-cleared graph",
    "instrumentation",
    "leak",
    "allocation",
    "subnormals",
)
_PHASES = ("forward", "backward", "update")
_WRONG_CAUSE = {
    "never-cleared graph": "a graph or cache that is never cleared grows memory and "
    "live objects with every step: look at traced_mb and objects, they stay flat",
    "leak": "a leak shows in memory, and mystery 2's memory is flat; besides, a leak "
    "does not make a phase slower",
    "allocation": "a debug allocator taxes every phase that allocates, from the "
    "first step on, and does not grow in jumps: compare with the forward control",
    "subnormals": "values decaying into the subnormal range make a ramp, gradual; "
    "this phase jumps once per epoch and is flat in between (look at the per-step "
    "timeline, not per-epoch sums), and count_subnormal finds none",
}


def _normalized(text) -> str:
    return " ".join(str(text).strip().lower().replace("_", " ").split())


def check_mystery(fn) -> CheckResult:
    """``fn()`` → ``(cause, phase)`` for mystery 2: ``cause`` one of
    ``cnnbook.diagnostics.SUSPECTS``, ``phase`` the phase of ``fit`` whose time grows
    (``"forward"``, ``"backward"`` or ``"update"``). Case and spacing do not matter.
    """
    require_function("mystery", fn)
    name = getattr(fn, "__name__", "mystery")

    def fail(text):
        return CheckResult("mystery", False, f"✗ {name}: {text}")

    try:
        answer = fn()
    except NotImplementedError:
        return fail("not implemented yet — your turn!")
    except Exception as err:  # the reader's code may raise anything
        return fail(f"raised {type(err).__name__}: {err}")
    if not isinstance(answer, (tuple, list)) or len(answer) != 2:
        return fail(
            "return two strings, (cause, phase), e.g. "
            f"('leak', 'forward'); got {answer!r}"
        )
    cause, phase = (_normalized(a) for a in answer)
    if cause not in _CAUSES:
        return fail(f"{answer[0]!r} is not a suspect: name one of {', '.join(_CAUSES)}")
    if phase not in _PHASES:
        return fail(f"{answer[1]!r} is not a phase of fit: one of {_PHASES}")
    if phase != "update":
        return fail(
            f"the {phase} phase stays flat in mystery 2: compare the per-step times "
            "of all three phases (forward is the control, but the culprit need not "
            "be backward)\n  hint: which phase grows against the forward control?"
        )
    if cause != "instrumentation":
        return fail(
            f"the update phase grows, but not from {cause}\n  hint: "
            + _WRONG_CAUSE[cause]
        )
    return CheckResult(
        "mystery",
        True,
        f"✓ {name}: instrumentation in the update phase (a check added per epoch).",
    )


# --------------------------------------------------------------------------------------
# 9.2: the first subnormal step of a decaying value
# --------------------------------------------------------------------------------------


def _first_subnormal_by_simulation(start, beta, dtype) -> int:
    v, b = dtype.type(start), dtype.type(beta)
    tiny = np.finfo(dtype).smallest_normal
    step = 0
    while v >= tiny:
        v = dtype.type(v * b)
        step += 1
    return step


def _first_subnormal_cases():
    cases = []
    for start, beta, dtype, hint in [
        (1.0, 0.9, np.float32, "solve start * beta**t < smallest normal for t"),
        (
            1.0,
            0.9,
            np.float64,
            "use the smallest normal of the given dtype: float64's is 2**-1022",
        ),
        (1e-3, 0.9, np.float32, "the value starts at `start`, not at 1"),
        (
            0.5,
            0.5,
            np.float32,
            "count the first step at which the value is *below* the smallest normal"
            " (2**-126 itself is normal): t is the smallest integer with "
            "start * beta**t < 2**-126",
        ),
        (3e-2, 0.99, np.float32, ""),
        (1.0, 0.5, np.float64, ""),
        (0.25, 0.8, np.float64, ""),
    ]:
        dt = np.dtype(dtype)
        expected = _first_subnormal_by_simulation(start, beta, dt)
        cases.append(Case((start, beta, dt), expected, hint=hint))
    return cases


def check_first_subnormal_step(fn) -> CheckResult:
    """``fn(start, beta, dtype)`` → the first step ``t`` (an ``int``) at which
    ``start * beta**t``, computed by multiplying by ``beta`` once per step in
    ``dtype``, is below ``np.finfo(dtype).smallest_normal``: subnormal (or zero).
    ``dtype`` is a ``np.dtype`` (float32 or float64); ``0 < beta < 1``, ``start``
    normal and positive.
    """
    require_function("first_subnormal_step", fn)

    def as_int(start, beta, dtype):
        t = fn(start, beta, dtype)
        if isinstance(t, (float, np.floating)) and float(t).is_integer():
            return int(t)  # 829.0 is the right number, even if not an int
        return t

    as_int.__name__ = getattr(fn, "__name__", "first_subnormal_step")
    return run_cases("first_subnormal_step", as_int, _first_subnormal_cases())


def _closed_form(start, beta, dtype) -> int:
    """The derivation's answer (used by the tests): the smallest integer t with
    start * beta**t < tiny."""
    tiny = float(np.finfo(dtype).smallest_normal)
    t = math.log(tiny / start) / math.log(beta)
    return math.floor(t) + 1


# --------------------------------------------------------------------------------------
# 9.3, 9.4
# --------------------------------------------------------------------------------------
def _stair_growth(b: float, h: float, epochs: int, steps_per_epoch: int) -> float:
    """Noise-free piling hooks: epoch e (from 1) costs b + e*h per step; the growth
    rule of ``diagnose``: median of the last w steps over the first w."""
    series = [b + e * h for e in range(1, epochs + 1) for _ in range(steps_per_epoch)]
    w = max(3, len(series) // 4)
    first, last = sorted(series[:w]), sorted(series[-w:])

    def median(v):
        m = len(v) // 2
        return v[m] if len(v) % 2 else (v[m - 1] + v[m]) / 2

    return median(last) / median(first)


def check_stair_growth(fn) -> CheckResult:
    """``fn(b, h, epochs, steps_per_epoch)`` → the growth factor ``diagnose`` reports
    for piling hooks without noise, as a float.

    Epoch ``e`` (counting from 1) runs ``e`` checks of ``h`` seconds after a backward
    pass of ``b`` seconds. Growth: the median of the last ``w`` steps over the median of
    the first ``w``, ``w = max(3, n // 4)`` for ``n = epochs * steps_per_epoch``.
    """
    cases = [
        ((1.0, 0.5, 4, 24), "epoch e runs e checks: the first epoch already runs one"),
        (
            (2.0, 1.0, 12, 24),
            "the windows are a quarter of all the steps (w = n // 4), not one epoch",
        ),
        (
            (1.0, 1.0, 5, 6),
            "medians, not means: a window that straddles two epochs has the median"
            " of its majority",
        ),
        ((1.0, 0.2, 8, 10), ""),
        ((1.0, 1.0, 10, 1), "at least 3 steps per window: w = max(3, n // 4)"),
        ((0.5, 2.0, 3, 4), ""),
    ]
    return run_cases(
        "stair_growth",
        fn,
        [Case(args, _stair_growth(*args), hint=hint) for args, hint in cases],
        rtol=1e-6,
    )


def check_running_mean(fn) -> CheckResult:
    """``fn(mean, count, value)`` → ``(new_mean, new_count)``: the mean of all values so
    far.

    The point is constant work per call — no list of past values, no re-scan — so a
    per-step debug log cannot get slower every step. Numbers are Python or NumPy floats.
    """
    require_function("running_mean", fn)
    rng = np.random.default_rng(9)
    cases = []
    for values, hint in [
        (
            [4.0],
            "the first value: the mean of one number is that number"
            " (count starts at 0)",
        ),
        ([1.0, 2.0, 3.0, 10.0], "new_mean = mean + (value - mean) / new_count"),
        (list(rng.normal(5, 2, size=50)), ""),
        (
            [1e8, 1.0, -1e8, 3.0],
            "",
        ),
    ]:
        cases.append(Case((values,), (float(np.mean(values)), len(values)), hint=hint))

    def fold(values):
        mean, count = 0.0, 0
        for value in values:
            result = fn(mean, count, value)
            if not isinstance(result, tuple) or len(result) != 2:
                raise TypeError(f"must return (new_mean, new_count), got {result!r}")
            mean, count = result
        return float(mean), int(count)

    fold.__name__ = getattr(fn, "__name__", "running_mean")
    return run_cases("running_mean", fold, cases, rtol=1e-9, atol=1e-6)
