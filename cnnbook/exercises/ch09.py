"""Checkers for Chapter 9, "backward gets slower every epoch".

Expected answers are computed here independently of ``cnnbook.diagnostics``.
"""

from __future__ import annotations

import numpy as np

from ._core import Case, CheckResult, require_function, run_cases

__all__ = ["check_count_subnormal", "check_running_mean"]


def _subnormal_count(x: np.ndarray) -> int:
    info = np.finfo(x.dtype)
    return int(sum(1 for v in x.ravel() if v != 0 and abs(v) < info.smallest_normal))


def check_count_subnormal(fn) -> CheckResult:
    """``fn(x)`` → how many entries of the float array ``x`` are subnormal, as an
    ``int``.

    Subnormal: nonzero, and smaller in magnitude than the smallest *normal* number of
    ``x``'s own dtype (``np.finfo(x.dtype).smallest_normal``). Zero is not subnormal.
    """
    tiny32, tiny64 = (
        np.finfo(np.float32).smallest_normal,
        np.finfo(np.float64).smallest_normal,
    )
    cases = [
        (np.array([1.0, 0.5, -2.0], np.float32), "ordinary numbers are normal"),
        (
            np.array([0.0, 0.0, 1.0], np.float64),
            "zero is not subnormal: it has its own encoding",
        ),
        (
            np.array([tiny32 / 2, -tiny32 / 8, tiny32, 0.0], np.float32),
            "use the magnitude (np.abs): negative subnormals count too;"
            " the smallest normal itself does not",
        ),
        (
            np.array([1e-39, 1e-40, 1e-300], np.float64),
            "1e-39 is subnormal in float32 but perfectly normal in float64:"
            " use x.dtype's own limit",
        ),
        (
            np.array([tiny64 / 3, 5e-324, -tiny64, 0.0]),
            "5e-324 is the smallest float64 subnormal",
        ),
        (
            (np.float32(0.9) ** np.arange(0, 900, 7, dtype=np.float32)).astype(
                np.float32
            ),
            "powers of 0.9 in float32 pass through the subnormal range"
            " before they reach zero",
        ),
    ]
    return run_cases(
        "count_subnormal",
        fn,
        [Case((x,), _subnormal_count(x), hint=hint) for x, hint in cases],
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
            "update the mean incrementally instead of keeping a large running sum",
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
