"""The machinery behind every ``check_<name>`` function.

A checker runs the reader's function on cases whose answers are known and returns a
:class:`CheckResult`: truthy when every case passed, and displayed as a short report
that says which input failed, what was expected and what came back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

__all__ = [
    "Case",
    "CheckResult",
    "Exercise",
    "KINDS",
    "run_cases",
    "describe",
    "require_function",
]

# What an exercise asks the reader to do. Every kind but "implementation" asks for
# something the chapter has not printed (issue 19: at least two such per chapter).
KINDS = ("prediction", "derivation", "diagnosis", "tuning", "implementation")
DIFFICULTIES = ("easy", "medium", "harder")


@dataclass(frozen=True)
class Exercise:
    """One exercise as the exercise index lists it; its chapter module registers it.

    ``number`` is "chapter.position" ("3.2"), ``label`` the notebook's
    ``exercise-start`` label, ``checker`` the ``check_*`` function that grades it.
    The notebook's exercise header reads ``{number}: {title} — {difficulty}; {kind}``.
    """

    number: str
    title: str
    difficulty: str
    kind: str
    skills: str
    checker: str
    label: str

    def __post_init__(self):
        if self.difficulty not in DIFFICULTIES:
            raise ValueError(f"difficulty must be one of {DIFFICULTIES}: {self}")
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}: {self}")

    @property
    def header(self) -> str:
        return f"{self.number}: {self.title} — {self.difficulty}; {self.kind}"

    @property
    def needs_thought(self) -> bool:
        return self.kind != "implementation"


@dataclass
class Case:
    """One input for the reader's function and the answer it should give."""

    args: tuple
    expected: Any
    kwargs: dict = field(default_factory=dict)
    hint: str = ""  # shown when this case fails: the usual reason it does


@dataclass
class CheckResult:
    exercise: str
    passed: bool
    message: str

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        return self.message


def describe(value: Any, limit: int = 12) -> str:
    """A short, deterministic description of an argument or a result."""
    if isinstance(value, np.ndarray):
        if value.size <= limit:
            body = np.array2string(
                value, precision=4, separator=", ", suppress_small=True
            )
            return f"{body} (shape {value.shape}, {value.dtype})"
        return f"array of shape {value.shape}, {value.dtype}"
    if isinstance(value, (list, tuple)) and len(value) > limit:
        return f"{type(value).__name__} of length {len(value)}"
    if isinstance(value, (float, np.floating)):
        text = f"{float(value):.6g}"
        # Keep floats recognisable as floats: 8.0 must not read like the integer 8.
        return text if any(c in text for c in ".eninf") else text + ".0"
    return repr(value)


def _call_text(name: str, case: Case) -> str:
    parts = [describe(a) for a in case.args]
    parts += [f"{k}={describe(v)}" for k, v in case.kwargs.items()]
    return f"{name}({', '.join(parts)})"


def _mismatch(expected: Any, got: Any, rtol: float, atol: float) -> str | None:
    """None when ``got`` matches ``expected``, otherwise what is wrong with it."""
    if got is None and expected is not None:
        return "it returned None (is a `return` missing?)"
    if isinstance(expected, tuple):
        if not isinstance(got, (tuple, list)) or len(got) != len(expected):
            return f"expected a tuple of {len(expected)} values, got {describe(got)}"
        for i, (e, g) in enumerate(zip(expected, got)):
            problem = _mismatch(e, g, rtol, atol)
            if problem:
                return f"item {i}: {problem}"
        return None
    if isinstance(expected, np.ndarray) or isinstance(got, np.ndarray):
        expected_arr = np.asarray(expected)
        try:
            got_arr = np.asarray(got)
            if got_arr.dtype.kind not in "biufc":
                raise TypeError
        except (TypeError, ValueError):
            return f"expected an array, got {describe(got)}"
        if got_arr.shape != expected_arr.shape:
            return f"wrong shape: expected {expected_arr.shape}, got {got_arr.shape}"
        if not np.allclose(got_arr, expected_arr, rtol=rtol, atol=atol, equal_nan=True):
            difference = np.abs(got_arr.astype(complex) - expected_arr.astype(complex))
            where = np.unravel_index(
                np.argmax(np.nan_to_num(difference, nan=np.inf)), got_arr.shape
            )
            return (
                f"wrong values: expected {describe(expected_arr)}, "
                f"got {describe(got_arr)}"
                f" (largest difference at index {tuple(int(i) for i in where)})"
            )
        return None
    if isinstance(expected, float):
        try:
            ok = np.isclose(float(got), expected, rtol=rtol, atol=atol)
        except (TypeError, ValueError):
            return f"expected a number, got {describe(got)}"
        return None if ok else f"expected {describe(expected)}, got {describe(got)}"
    if isinstance(expected, (int, np.integer)) and not isinstance(expected, bool):
        if (
            isinstance(got, (int, np.integer))
            and not isinstance(got, bool)
            and got == expected
        ):
            return None
        return f"expected the integer {expected!r}, got {describe(got)}"
    return (
        None
        if got == expected
        else f"expected {describe(expected)}, got {describe(got)}"
    )


def require_function(exercise: str, fn) -> None:
    """A clear error when the reader passes something other than a function.

    ``run_cases`` calls it; checkers that wrap the reader's function before handing it
    on call it first themselves, so the reader sees this message and not a wrapper's.
    """
    if not callable(fn):
        raise TypeError(
            f"check_{exercise} expects your function itself, got {describe(fn)}"
        )


def run_cases(
    exercise: str,
    fn: Callable,
    cases: Sequence[Case],
    *,
    rtol: float = 1e-7,
    atol: float = 1e-9,
) -> CheckResult:
    """Call ``fn`` on every case; stop at the first failure and explain it."""
    require_function(exercise, fn)
    name = getattr(fn, "__name__", exercise)
    for number, case in enumerate(cases, start=1):
        # Hand the reader copies: a function that modifies its input cannot spoil the
        # cases after it.
        args = tuple(a.copy() if isinstance(a, np.ndarray) else a for a in case.args)
        try:
            got = fn(*args, **case.kwargs)
        except NotImplementedError:
            return CheckResult(
                exercise, False, f"✗ {name}: not implemented yet — your turn!"
            )
        except (
            Exception
        ) as err:  # the reader's code may raise anything; report it plainly
            message = (
                f"✗ {name} raised {type(err).__name__}: {err}\n"
                f"  on {_call_text(name, case)}"
            )
            return CheckResult(exercise, False, message)
        problem = _mismatch(case.expected, got, rtol, atol)
        if problem:
            message = (
                f"✗ {name} failed check {number} of {len(cases)}\n"
                f"  on {_call_text(name, case)}\n  {problem}"
            )
            if case.hint:
                message += f"\n  hint: {case.hint}"
            return CheckResult(exercise, False, message)
    return CheckResult(exercise, True, f"✓ {name} passed all {len(cases)} checks.")
