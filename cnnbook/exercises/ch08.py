"""Checkers for Chapter 8, performance.

The expected answers come from implementations of their own, independent of
``cnnbook.functional`` and ``cnnbook.fast``, so a checker cannot agree with a bug in the
code it teaches.
"""

from __future__ import annotations

import math
import numbers
from typing import Callable

import numpy as np

from ._core import Case, CheckResult, Exercise, describe, require_function, run_cases

__all__ = [
    "check_conv2d_shift_add",
    "check_conv_intensity",
    "check_which_loops_vectorize",
]

EXERCISES = [
    Exercise(
        "8.1",
        "One kernel tap at a time, in NumPy",
        "medium",
        "implementation",
        "loop reordering, shifted slices, einsum over channels",
        "check_conv2d_shift_add",
        "ex08-shift-add",
    ),
    Exercise(
        "8.2",
        "The arithmetic intensity of a layer",
        "medium",
        "derivation",
        "FLOP counts, compulsory memory traffic, output sizes, the roofline",
        "check_conv_intensity",
        "ex08-intensity",
    ),
    Exercise(
        "8.3",
        "Which loops vectorize?",
        "medium",
        "prediction",
        "SIMD, dependence chains, float reassociation, checks in hot loops",
        "check_which_loops_vectorize",
        "ex08-vectorize",
    ),
]


# ----------------------------------------------------------------------------------
# 8.1 One kernel tap at a time
# ----------------------------------------------------------------------------------


def _conv2d_loops(x, w, b, padding):
    """Cross-correlation, stride 1, zero padding: the definition, for tiny arrays."""
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    xp = np.zeros((n, c, h + 2 * padding, wd + 2 * padding))
    xp[:, :, padding : padding + h, padding : padding + wd] = x
    ho, wo = h + 2 * padding - kh + 1, wd + 2 * padding - kw + 1
    out = np.empty((n, f, ho, wo))
    for i in range(ho):
        for j in range(wo):
            window = xp[:, :, i : i + kh, j : j + kw]  # (N, C, kH, kW)
            out[:, :, i, j] = np.tensordot(window, w, axes=([1, 2, 3], [1, 2, 3])) + b
    return out


def check_conv2d_shift_add(fn) -> CheckResult:
    """``fn(x, w, b, padding)`` → conv2d (stride 1) computed one kernel tap at a time.

    ``x: (N, C, H, W)``, ``w: (F, C, kH, kW)``, ``b: (F,)``, ``padding`` an int → ``(N,
    F, Ho, Wo)``, the cross-correlation of PyTorch's ``F.conv2d`` (no kernel flip),
    float64.
    """
    rng = np.random.default_rng(808)
    specs = [
        (
            (1, 1, 4, 4),
            (1, 1, 3, 3),
            0,
            "tap (i, j) multiplies the input window that starts at row i, column j",
        ),
        (
            (2, 3, 5, 6),
            (4, 3, 3, 3),
            1,
            "pad the input first, then slide; and don't forget the bias",
        ),
        (
            (1, 2, 6, 5),
            (3, 2, 2, 3),
            0,
            "kH and kW differ here: Ho = H - kH + 1, Wo = W - kW + 1",
        ),
        (
            (2, 2, 4, 5),
            (2, 2, 3, 3),
            2,
            "padding p adds p rows and columns on every side",
        ),
    ]
    cases = []
    for xs, ws, p, hint in specs:
        x, w, b = (
            rng.standard_normal(xs),
            rng.standard_normal(ws),
            rng.standard_normal(ws[0]),
        )
        if not cases:  # the first case isolates the sliding; the bias comes next
            b = np.zeros(ws[0])
        cases.append(Case((x, w, b, p), _conv2d_loops(x, w, b, p), hint=hint))
    return run_cases("conv2d_shift_add", fn, cases, rtol=1e-9, atol=1e-9)


# ----------------------------------------------------------------------------------
# 8.2 The arithmetic intensity of a layer
# ----------------------------------------------------------------------------------


def _intensity(x_shape, w_shape, padding, itemsize, mistake=None):
    """The intensity, or what a typical ``mistake`` computes instead."""
    n, c, h, wd = x_shape
    f, _, kh, kw = w_shape
    pad = 0 if mistake == "padding" else padding
    ho = h + 2 * pad - kh + 1
    wo = wd + 2 * pad - (kh if mistake == "kernel" else kw) + 1
    flops = (1 if mistake == "flops" else 2) * n * f * ho * wo * c * kh * kw
    x_size = (
        n * c * (h + 2 * padding) * (wd + 2 * padding)
        if mistake == "padded x"
        else None
    )
    elements = (x_size or math.prod(x_shape)) + math.prod(w_shape)
    if mistake != "output":
        elements += n * f * ho * wo
    size = {"bytes": 1, "float32": 4}.get(mistake, itemsize)
    return flops / (size * elements)


_INTENSITY_HINTS = {
    "flops": "a multiply-add is two FLOPs",
    "output": "the output is written to memory: count its bytes as well as those of x "
    "and w",
    "bytes": "bytes, not numbers: multiply every array's size by the itemsize",
    "float32": "bytes, not numbers: multiply by the itemsize you are given (8 for "
    "float64, 2 for float16)",
    "padding": "padding p on every side: Ho = H + 2p - kH + 1",
    "padded x": "the padded copy is an intermediate of some methods, not compulsory "
    "traffic: count x itself",
    "kernel": "kH and kW differ here: Ho = H + 2p - kH + 1, Wo = W + 2p - kW + 1",
}
_INTENSITY_CASES = [
    ((1, 1, 3, 3), (1, 1, 3, 3), 0, 4),
    ((2, 1, 6, 6), (3, 1, 3, 3), 0, 4),
    ((1, 2, 5, 5), (2, 2, 3, 3), 0, 8),
    ((2, 3, 6, 5), (4, 3, 3, 3), 1, 4),
    ((1, 1, 7, 6), (2, 1, 2, 3), 0, 4),
    ((2, 2, 5, 7), (3, 2, 3, 2), 2, 8),
    ((64, 1, 28, 28), (8, 1, 3, 3), 1, 4),
    ((32, 16, 32, 32), (32, 16, 3, 3), 1, 4),
    ((4, 64, 14, 14), (128, 64, 3, 3), 1, 2),
]


def _check_intensity_function(fn: Callable) -> CheckResult:
    """The first part of 8.2: ``fn(x_shape, w_shape, padding, itemsize)``."""
    cases = []
    for xs, ws, p, size in _INTENSITY_CASES:
        case = Case((xs, ws, p, size), _intensity(xs, ws, p, size))
        try:
            got = float(fn(xs, ws, p, size))
        except Exception:  # run_cases below reports it on this case
            got = None
        if got is not None and not math.isclose(got, case.expected, rel_tol=1e-6):
            # name the mistake whose number the reader's function returned
            case.hint = next(
                (
                    hint
                    for mistake, hint in _INTENSITY_HINTS.items()
                    if math.isclose(
                        got, _intensity(xs, ws, p, size, mistake), rel_tol=1e-6
                    )
                ),
                "FLOPs = 2 · (outputs N·F·Ho·Wo) · (multiply-adds per output C·kH·kW); "
                "bytes = itemsize · (x.size + w.size + out.size)",
            )
        cases.append(case)
        if case.hint:
            break
    return run_cases("conv_intensity", fn, cases, rtol=1e-6, atol=0)


# The predictions of 8.2, for problems A and B of the chapter.
_A = ((64, 1, 28, 28), (8, 1, 3, 3), 1)
_B = ((32, 16, 32, 32), (32, 16, 3, 3), 1)
_I_A = _intensity(*_A, 4)  # 3.9994 FLOP per byte
_I_B = _intensity(*_B, 4)  # 47.9 FLOP per byte
# Hidden machines (peak GFLOP/s, main-memory GB/s): ridge points 5, 2, 20 and 3.2, none
# close enough to A's 4.0 that a reader who rounds the intensity could be judged wrong.
_MACHINES = [(100.0, 20.0), (200.0, 100.0), (1000.0, 50.0), (80.0, 25.0)]
_KEYS = ("A memory-bound", "A best GFLOP/s", "B float16 / float32")


def _predictions(peak, bandwidth, mistake=None):
    """The right predictions for one machine, or what a typical ``mistake`` gives."""
    i_a = _I_B if mistake == "B for A" else _I_A
    bound = i_a > peak / bandwidth if mistake == "inverted" else i_a < peak / bandwidth
    best = min(peak, i_a * bandwidth)
    if mistake == "peak":
        best = peak
    elif mistake == "memory roof":
        best = i_a * bandwidth
    elif mistake == "ridge":
        best = peak / bandwidth
    factor = {"half": 0.5, "same": 1.0}.get(mistake, 2.0)
    return {_KEYS[0]: bound, _KEYS[1]: best, _KEYS[2]: factor}


_PREDICTION_HINTS = {
    "inverted": "left of the ridge point (I < peak / bandwidth) the memory roof "
    "I × bandwidth lies below the peak: that side is memory-bound",
    "B for A": "problem A is x (64, 1, 28, 28), w (8, 1, 3, 3), padding 1, float32: "
    "conv_intensity((64, 1, 28, 28), (8, 1, 3, 3), 1, 4), about 4 FLOP per byte",
    "peak": "the memory roof caps every method that streams from main memory: at most "
    "I × bandwidth, and the compulsory traffic gives the largest I",
    "memory roof": "no method runs faster than the peak either: min(peak, I × "
    "bandwidth)",
    "ridge": "the ridge point peak / bandwidth is an intensity (FLOP per byte), not a "
    "rate: the bound is min(peak, I × bandwidth)",
    "half": "float16 halves the bytes for the same FLOPs: FLOPs per byte go up",
    "same": "the intensity counts bytes, and a float16 number has 2 of them, not 4",
}


def _judge(key, got, want):
    """None when ``got`` is right for ``key``, else what is wrong with it."""
    if key == _KEYS[0]:
        if not isinstance(got, (bool, np.bool_)):
            return f"{key!r} is True or False, got {describe(got)}"
        return None if bool(got) == want else f"{key!r}: expected {want}, got {got}"
    if isinstance(got, (bool, np.bool_)) or not isinstance(
        got, (numbers.Real, np.floating, np.integer)
    ):
        return f"{key!r} is a number, got {describe(got)}"
    # 1% tolerance: a reader who rounds A's intensity to 4.0 is right
    if not math.isclose(float(got), want, rel_tol=1e-2):
        return f"{key!r}: expected {describe(float(want))}, got {describe(got)}"
    return None


def _prediction_hint(got, peak, bandwidth, key):
    """The hint of the mistake that explains the reader's answer: first one that gives
    all three of its values, else one that gives the wrong one."""
    mistakes = {m: _predictions(peak, bandwidth, m) for m in _PREDICTION_HINTS}
    right = _predictions(peak, bandwidth)
    for whole in (True, False):
        for mistake, made in mistakes.items():
            keys = _KEYS if whole else (key,)
            if _judge(key, made[key], right[key]) is not None and all(
                _judge(k, got[k], made[k]) is None for k in keys
            ):
                return _PREDICTION_HINTS[mistake]
    return (
        "draw the two roofs: min(peak, I × bandwidth), with I the compulsory "
        "intensity of problem A"
    )


def _check_predictions(fn: Callable) -> CheckResult:
    """The second part of 8.2: ``fn(peak, bandwidth)`` returns the three predictions."""
    require_function("roofline_predictions", fn)
    name = getattr(fn, "__name__", "roofline_predictions")
    for peak, bandwidth in _MACHINES:
        call = f"{name}(peak={peak:g}, bandwidth={bandwidth:g})"
        try:
            got = fn(peak, bandwidth)
        except NotImplementedError:
            return CheckResult(
                "conv_intensity", False, f"✗ {name}: not implemented yet — your turn!"
            )
        except Exception as err:  # the reader's code may raise anything
            return CheckResult(
                "conv_intensity",
                False,
                f"✗ {name} raised {type(err).__name__}: {err}\n  on {call}",
            )
        if not hasattr(got, "keys") or not set(_KEYS) <= set(got.keys()):
            return CheckResult(
                "conv_intensity",
                False,
                f"✗ {call} returned {describe(got)}\n  expected a dict with the keys "
                + ", ".join(repr(k) for k in _KEYS),
            )
        want = _predictions(peak, bandwidth)
        for key in _KEYS:
            problem = _judge(key, got[key], want[key])
            if problem is None:
                continue
            hint = _prediction_hint(got, peak, bandwidth, key)
            return CheckResult(
                "conv_intensity",
                False,
                f"✗ {name} failed on {call}\n  {problem}\n  hint: {hint}",
            )
    return CheckResult(
        "conv_intensity",
        True,
        f"✓ {name}: all {len(_MACHINES)} machines predicted right.",
    )


def check_conv_intensity(
    fn: Callable, predictions: Callable | None = None
) -> CheckResult:
    """Exercise 8.2, both parts.

    ``fn(x_shape, w_shape, padding, itemsize)`` → the forward pass's arithmetic
    intensity in FLOP per byte: ``2·N·F·Ho·Wo·C·kH·kW`` FLOPs over the bytes of reading
    x and w once and writing the output once (stride 1, zero padding ``padding`` on
    every side, ``itemsize`` bytes per number).

    ``predictions(peak, bandwidth)`` → a dict for a core of ``peak`` GFLOP/s fed from
    main memory at ``bandwidth`` GB/s: ``"A memory-bound"`` (would a method moving only
    problem A's compulsory float32 traffic be memory-bound), ``"A best GFLOP/s"`` (the
    highest forward rate any method can reach on A) and ``"B float16 / float32"`` (the
    factor float16 applies to problem B's compulsory intensity). Checked on machines
    the reader does not see.
    """
    require_function("conv_intensity", fn)
    first = _check_intensity_function(fn)
    if not first:
        return first
    if predictions is None:
        return CheckResult(
            "conv_intensity",
            False,
            f"{first.message}\n✗ the predictions are missing: call "
            "check_conv_intensity(conv_intensity, roofline_predictions)",
        )
    second = _check_predictions(predictions)
    if not second:
        return second
    return CheckResult(
        "conv_intensity",
        True,
        f"{first.message}\n{second.message}",
    )


# ----------------------------------------------------------------------------------
# 8.3 Which loops vectorize?
# ----------------------------------------------------------------------------------

LOOPS = {
    1: "y[i] += s * x[i]",
    2: "y[i] += s * x[i], compiled with boundscheck=True",
    3: "t += x[i] * y[i]  (a dot product into one scalar t)",
    4: 'the same dot product, compiled with fastmath={"reassoc"}',
    5: "if x[i] > limit: raise ValueError(...); then y[i] += s * x[i]",
    6: "y[i] = y[i - 1] + s * x[i]  (a running sum, i from 1)",
}
VECTORIZED = frozenset({1, 2, 4})
_WHY = {
    1: "loop 1 is the ideal case: independent iterations, contiguous loads and "
    "stores; LLVM turns it into packed multiplies and adds",
    2: "loop 2: the index i comes from range(n) and moves by 1, so LLVM can test the "
    "whole range once, before the loop, and run the unchecked vector loop when it "
    "passes (in the convolution kernel it could not prove as much, and the checks "
    "stayed inside the loop)",
    3: "loop 3: every addition needs the previous value of t, one chain, and float "
    "addition is not associative, so LLVM may not split the sum into partial sums "
    "without permission",
    4: "loop 4: reassoc is exactly the permission to split the chain into partial "
    "sums, one per vector lane",
    5: "loop 5: a vector loop would have to stop exactly at the element that raises, "
    "with everything before it written and nothing after: the raise keeps it scalar",
    6: "loop 6: each y[i] needs y[i - 1] just computed, a true dependence that no "
    "permission removes",
}


def _as_loop_set(got):
    """The reader's answer as a set of loop numbers, or a message saying what is
    wrong."""
    if isinstance(got, (str, bytes)) or not hasattr(got, "__iter__"):
        return None, (
            f"expected a set of loop numbers such as {{1, 3}}, got {describe(got)}"
        )
    items = list(got)
    if not all(
        isinstance(v, (numbers.Integral, np.integer)) and not isinstance(v, bool)
        for v in items
    ):
        return None, f"the loops are numbered 1 to 6: got {describe(items)}"
    loops = {int(v) for v in items}
    if not loops <= set(LOOPS):
        return None, f"the loops are numbered 1 to 6: got {sorted(loops)}"
    return loops, None


def check_which_loops_vectorize(fn: Callable) -> CheckResult:
    """``fn()`` returns the set of the six loops of the exercise (numbers 1 to 6) that
    numba compiles to packed vector instructions (float32, x86-64 with AVX2 or
    AVX-512)."""
    require_function("which_loops_vectorize", fn)
    name = getattr(fn, "__name__", "which_loops_vectorize")
    try:
        got = fn()
    except NotImplementedError:
        return CheckResult(
            "which_loops_vectorize",
            False,
            f"✗ {name}: not implemented yet — your turn!",
        )
    except Exception as err:  # the reader's code may raise anything
        return CheckResult(
            "which_loops_vectorize",
            False,
            f"✗ {name} raised {type(err).__name__}: {err}",
        )
    loops, problem = _as_loop_set(got)
    if problem:
        return CheckResult("which_loops_vectorize", False, f"✗ {name}: {problem}")
    wrong = sorted(loops ^ VECTORIZED)
    if wrong:
        hints = "\n".join(f"  hint: {_WHY[k]}" for k in wrong)
        return CheckResult(
            "which_loops_vectorize",
            False,
            f"✗ {name}: {len(wrong)} of the 6 loops misjudged (you said "
            f"{sorted(loops)})\n{hints}",
        )
    return CheckResult(
        "which_loops_vectorize",
        True,
        f"✓ {name}: all 6 loops judged right: {sorted(VECTORIZED)} vectorize.",
    )
