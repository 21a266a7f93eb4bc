"""Checkers for Chapter 8, performance.

The expected answers come from a direct loop implementation of its own, independent of
``cnnbook.functional`` and ``cnnbook.fast``, so a checker cannot agree with a bug in the
code it teaches.
"""

from __future__ import annotations

import numpy as np

from ._core import Case, CheckResult, run_cases

__all__ = ["check_conv2d_shift_add"]


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
        if not cases:
            b = np.zeros(
                ws[0]
            )  # the first case isolates the sliding; the bias comes next
        cases.append(Case((x, w, b, p), _conv2d_loops(x, w, b, p), hint=hint))
    return run_cases("conv2d_shift_add", fn, cases, rtol=1e-9, atol=1e-9)
