"""Checkers for the exercises of Chapter 3 (the seven-loop convolution layer).

The expected answers are computed here from the definitions (loops of their own, the
receptive-field rule), independently of ``cnnbook.functional`` and ``cnnbook.naive``.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ._core import (
    Case,
    CheckResult,
    Exercise,
    _mismatch,
    describe,
    require_function,
    run_cases,
)

__all__ = ["check_blocks_to_see", "check_cols_by_hand", "check_conv2d_fixed"]

EXERCISES = [
    Exercise(
        "3.1",
        "How deep until a unit sees the whole digit?",
        "medium",
        "derivation",
        "receptive field and jump of stacked convolutions and pools",
        "check_blocks_to_see",
        "ex03-receptive-field",
    ),
    Exercise(
        "3.2",
        "im2col of a tiny input by hand",
        "medium",
        "derivation",
        "im2col layout: kernel taps as rows, output positions as columns; padding, "
        "stride",
        "check_cols_by_hand",
        "ex03-im2col-by-hand",
    ),
    Exercise(
        "3.3",
        "Find the offset bug",
        "medium",
        "diagnosis",
        "the input index o·s + i·d − p; testing beyond stride 1",
        "check_conv2d_fixed",
        "ex03-offset-bug",
    ),
]


# ----------------------------------------------------------------------------------
# 3.1 How deep until a unit sees the whole digit?
# ----------------------------------------------------------------------------------


def _blocks_to_see(n: int, k: int, pool: int) -> int:
    r, j, blocks = 1, 1, 0
    while r < n:
        r += (k - 1) * j  # the k×k convolution, stride 1
        if pool > 1:  # the pool×pool max pool, stride pool
            r += (pool - 1) * j
            j *= pool
        blocks += 1
    return blocks


def check_blocks_to_see(fn: Callable) -> CheckResult:
    """``fn(n, k, pool)`` returns the smallest number of blocks (a k×k convolution,
    stride 1, then, if ``pool > 1``, a pool×pool max pool with stride ``pool``) after
    which one output's receptive field spans at least ``n`` input pixels per axis."""
    spec = [
        (
            (5, 3, 1),
            "a pixel sees itself (r starts at 1), and each 3×3 convolution adds k − 1 "
            "= 2; a receptive field of exactly n pixels is enough",
        ),
        ((28, 3, 1), "without pooling each k×k convolution adds k − 1 pixels"),
        (
            (7, 3, 3),
            "a p×p pool with stride p widens the field by (p − 1)·j, with j the jump "
            "*before* its own stride; only then j ← j·p",
        ),
        (
            (28, 3, 2),
            "after a pool of stride 2 neighbouring outputs are 2 input pixels apart: "
            "every later layer adds (k − 1)·j, j the product of the strides so far",
        ),
        ((28, 5, 1), "5×5 convolutions add 4 pixels each"),
        ((28, 5, 2), ""),
        ((224, 3, 2), ""),
        ((32, 3, 1), ""),
    ]
    cases = [Case(args, _blocks_to_see(*args), hint=hint) for args, hint in spec]
    return run_cases("blocks_to_see", fn, cases)


# ----------------------------------------------------------------------------------
# 3.2 im2col of a tiny input by hand
# ----------------------------------------------------------------------------------

_X = np.arange(1.0, 10.0).reshape(3, 3)  # the input of the exercise


def _cols(xp: np.ndarray, k: int, s: int, tap_order="row", position_order="row"):
    """im2col of a padded 2-D array: rows taps (i, j), columns output positions."""
    n_out_h = (xp.shape[0] - k) // s + 1
    n_out_w = (xp.shape[1] - k) // s + 1
    taps = [(i, j) for i in range(k) for j in range(k)]
    if tap_order == "column":
        taps = [(i, j) for j in range(k) for i in range(k)]
    positions = [(oh, ow) for oh in range(n_out_h) for ow in range(n_out_w)]
    if position_order == "column":
        positions = [(oh, ow) for ow in range(n_out_w) for oh in range(n_out_h)]
    return np.array(
        [[xp[oh * s + i, ow * s + j] for oh, ow in positions] for i, j in taps]
    )


def _im2col_answers():
    right = _cols(np.pad(_X, 1), 2, 2)
    wrong = [
        (
            right.T,
            "rows are the kernel taps (i, j), columns the output positions (oh, ow): "
            "you have the transpose",
        ),
        (
            _cols(np.pad(_X, 1), 2, 2, tap_order="column"),
            "the taps go row by row: row i·kW + j holds tap (i, j), so tap (0, 1) is "
            "row 1 and tap (1, 0) is row 2",
        ),
        (
            _cols(np.pad(_X, 1), 2, 2, position_order="column"),
            "the output positions go row by row: column oh·Wo + ow, so (0, 1) is "
            "column 1 and (1, 0) is column 2",
        ),
        (
            _cols(np.pad(_X, ((0, 1), (0, 1))), 2, 2),
            "padding 1 adds a row and a column of zeros on *each* side, top and left "
            "too, not only bottom and right",
        ),
    ]
    return right, wrong


def _shape_hint(shape) -> str:
    if shape == (4, 1):
        return (
            "that is the matrix without padding (one window); with padding 1 the "
            "padded input is 5×5 and a 2×2 window at stride 2 fits at 2×2 positions"
        )
    if shape == (4, 16):
        return (
            "16 columns is stride 1; at stride 2 the windows start at padded rows and "
            "columns 0 and 2 only"
        )
    return (
        "cols has one row per kernel tap (2·2 = 4) and one column per output position "
        "(Ho·Wo = 2·2 = 4): a 4×4 matrix"
    )


def check_cols_by_hand(fn: Callable) -> CheckResult:
    """``fn()`` returns, written out by hand, the im2col matrix ``(C·kH·kW, Ho·Wo)`` of
    the 3×3 input ``[[1, 2, 3], [4, 5, 6], [7, 8, 9]]`` for a 2×2 kernel, stride 2 and
    zero padding 1 (one image, one channel)."""
    require_function("cols_by_hand", fn)
    name = getattr(fn, "__name__", "cols_by_hand")

    def fail(text: str) -> CheckResult:
        return CheckResult("cols_by_hand", False, f"✗ {name}: {text}")

    try:
        got = fn()
    except NotImplementedError:
        return fail("not implemented yet — your turn!")
    except Exception as err:  # the reader's code may raise anything
        return fail(f"raised {type(err).__name__}: {err}")
    try:
        cols = np.array(got, dtype=np.float64)
    except (TypeError, ValueError):
        return fail(f"expected a 4×4 array or nested list, got {describe(got)}")
    if cols.ndim == 3 and cols.shape[0] == 1:
        cols = cols[0]  # F.im2col's batch axis: accept it
    right, wrong = _im2col_answers()
    if cols.shape != right.shape:
        return fail(
            f"wrong shape {cols.shape}, expected {right.shape}\n"
            f"  hint: {_shape_hint(cols.shape)}"
        )
    if np.array_equal(cols, right):
        return CheckResult(
            "cols_by_hand",
            True,
            f"✓ {name}: right, and every pixel appears in exactly one column.",
        )
    hint = (
        "pad first (a 5×5 grid with the input in the middle), then read each 2×2 "
        "window starting at padded rows and columns 0 and 2 into one column"
    )
    for answer, text in wrong:
        if np.array_equal(cols, answer):
            hint = text
            break
    where = np.argwhere(cols != right)[0]
    return fail(
        f"entry {tuple(int(i) for i in where)} is {cols[tuple(where)]:g}, expected "
        f"{right[tuple(where)]:g}\n  hint: {hint}"
    )


# ----------------------------------------------------------------------------------
# 3.3 Find the offset bug
# ----------------------------------------------------------------------------------


def _conv(x, w, s, p, d, variant="right"):
    """Seven loops; ``variant`` plants one of the typical offset mistakes."""
    N, C, H, W = x.shape
    F, _, kH, kW = w.shape
    Ho = (H + 2 * p - d * (kH - 1) - 1) // s + 1
    Wo = (W + 2 * p - d * (kW - 1) - 1) // s + 1
    out = np.zeros((N, F, Ho, Wo))
    for oh in range(Ho):
        for ow in range(Wo):
            for i in range(kH):
                for j in range(kW):
                    if variant == "planted":  # the exercise's bug
                        r, q = (oh + i * d) * s - p, (ow + j * d) * s - p
                    elif variant == "no_dilation":
                        r, q = oh * s + i - p, ow * s + j - p
                    elif variant == "plus_padding":
                        r, q = oh * s + i * d + p, ow * s + j * d + p
                    else:
                        r, q = oh * s + i * d - p, ow * s + j * d - p
                    if variant == "wraps":
                        inside = r < H and q < W  # negative indices wrap around
                    else:
                        inside = 0 <= r < H and 0 <= q < W
                    if inside:
                        out[:, :, oh, ow] += x[:, :, r, q] @ w[:, :, i, j].T
    return out


_CONV_HINTS = {
    "planted": "still the planted bug: the stride moves where a window *starts* "
    "(oh·s); the taps inside it are d apart, not d·s: row = oh·s + i·d − p",
    "no_dilation": "the taps of a dilated kernel are d pixels apart: row = oh·s + i·d "
    "− p",
    "plus_padding": "padding moves the window up and to the left of the image: "
    "subtract p (row = oh·s + i·d − p)",
    "wraps": "negative indices wrap around in NumPy (x[-1] is the last row, not "
    "padding): skip rows and columns < 0 as well as those ≥ H, W",
}


def check_conv2d_fixed(fn: Callable) -> CheckResult:
    """``fn(x, w, stride=1, padding=0, dilation=1)`` is the seven-loop convolution
    (no bias) with the offset bug fixed: equal to ``cnnbook.functional.conv2d`` for
    ``x: (N, C, H, W)``, ``w: (F, C, kH, kW)`` and int stride, padding, dilation."""
    require_function("conv2d_fixed", fn)
    name = getattr(fn, "__name__", "conv2d_fixed")
    rng = np.random.default_rng(33)
    spec = [  # x shape, w shape, stride, padding, dilation
        ((1, 1, 5, 5), (1, 1, 3, 3), 1, 0, 1),
        ((1, 1, 7, 7), (1, 1, 3, 3), 2, 0, 1),
        ((2, 2, 5, 6), (2, 2, 3, 3), 1, 1, 1),
        ((1, 1, 7, 7), (1, 1, 3, 3), 1, 0, 2),
        ((1, 2, 8, 7), (2, 2, 3, 2), 2, 1, 2),
        ((2, 1, 8, 8), (1, 1, 3, 3), 3, 2, 1),
    ]
    for number, (xs, ws, s, p, d) in enumerate(spec, start=1):
        x = rng.integers(-4, 5, size=xs).astype(np.float64)
        w = rng.integers(-3, 4, size=ws).astype(np.float64)
        kwargs = {"stride": s, "padding": p, "dilation": d}
        call = f"{name}(x of shape {xs}, w of shape {ws}, stride={s}, padding={p}, "
        call += f"dilation={d})"
        try:
            got = fn(x.copy(), w.copy(), **kwargs)
        except NotImplementedError:
            return CheckResult(
                "conv2d_fixed", False, f"✗ {name}: not implemented yet — your turn!"
            )
        except Exception as err:  # the reader's code may raise anything
            return CheckResult(
                "conv2d_fixed",
                False,
                f"✗ {name} raised {type(err).__name__}: {err}\n  on {call}",
            )
        want = _conv(x, w, s, p, d)
        problem = _mismatch(want, got, 1e-6, 1e-9)
        if problem is None:
            continue
        hint = (
            "compare with cnnbook.functional.conv2d on this case, output by output: "
            "the input row of output oh and tap i is oh·s + i·d − p"
        )
        for variant, text in _CONV_HINTS.items():
            if _mismatch(_conv(x, w, s, p, d, variant), got, 1e-6, 1e-9) is None:
                hint = text
                break
        return CheckResult(
            "conv2d_fixed",
            False,
            f"✗ {name} failed check {number} of {len(spec)}\n  on {call}\n  {problem}"
            f"\n  hint: {hint}",
        )
    return CheckResult("conv2d_fixed", True, f"✓ {name} passed all {len(spec)} checks.")
