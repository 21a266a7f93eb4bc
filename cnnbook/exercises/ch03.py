"""Checkers for the exercises of Chapter 3 (the seven-loop convolution layer)."""

from __future__ import annotations

from typing import Callable

import numpy as np

from ._core import Case, CheckResult, run_cases

__all__ = ["check_conv_output_shape", "check_corr2d_single", "check_same_padding"]


def _out(n: int, k: int, s: int, p: int, d: int) -> int:
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def check_conv_output_shape(fn: Callable) -> CheckResult:
    """``fn(x_shape, w_shape, stride, padding, dilation)`` returns the output shape
    ``(N, F, Ho, Wo)`` of ``conv2d`` for ``x_shape = (N, C, H, W)``, ``w_shape = (F, C,
    kH, kW)`` and int hyper-parameters."""
    cases = [
        Case(
            ((1, 1, 5, 5), (1, 1, 3, 3), 1, 0, 1),
            (1, 1, 3, 3),
            hint=(
                "without padding a 3x3 kernel fits in 5 - 3 + 1 = 3 positions per axis"
            ),
        ),
        Case(
            ((8, 3, 28, 28), (16, 3, 3, 3), 1, 1, 1),
            (8, 16, 28, 28),
            hint=(
                "the channel axis of the output counts filters (w_shape[0]), not input "
                "channels"
            ),
        ),
        Case(
            ((2, 1, 7, 9), (4, 1, 3, 2), 2, 0, 1),
            (2, 4, 3, 4),
            hint=(
                "rows and columns have their own kernel size: kH = w_shape[2], kW = "
                "w_shape[3]"
            ),
        ),
        Case(
            ((1, 2, 8, 8), (3, 2, 3, 3), 2, 0, 1),
            (1, 3, 3, 3),
            hint=(
                "when the stride does not divide evenly the last row is dropped: round "
                "down"
            ),
        ),
        Case(
            ((1, 1, 10, 10), (1, 1, 3, 3), 1, 0, 2),
            (1, 1, 6, 6),
            hint="a dilated kernel spans d·(k-1) + 1 pixels",
        ),
        Case(
            ((3, 1, 6, 11), (2, 1, 4, 4), 3, 2, 2),
            (3, 2, _out(6, 4, 3, 2, 2), _out(11, 4, 3, 2, 2)),
            hint="padding p adds p pixels on *each* side: 2p in total",
        ),
    ]
    return run_cases("conv_output_shape", fn, cases)


def _corr2d(x: np.ndarray, w: np.ndarray, stride: int, padding: int) -> np.ndarray:
    xp = np.pad(x, padding)
    kh, kw = w.shape
    ho = (xp.shape[0] - kh) // stride + 1
    wo = (xp.shape[1] - kw) // stride + 1
    out = np.zeros((ho, wo))
    for i in range(ho):
        for j in range(wo):
            out[i, j] = np.sum(
                xp[i * stride : i * stride + kh, j * stride : j * stride + kw] * w
            )
    return out


def check_corr2d_single(fn: Callable) -> CheckResult:
    """``fn(x, w, stride=1, padding=0)``: 2-D cross-correlation of one channel, ``x: (H,
    W)``, ``w: (kH, kW)``, zero padding on every side, as ``cnnbook.functional.conv2d``
    computes it."""
    rng = np.random.default_rng(3)
    x5 = np.arange(25.0).reshape(5, 5)
    edge = np.array([[1.0, 0.0, -1.0]])
    x_rect = rng.normal(size=(6, 7)).round(2)
    w_rect = rng.normal(size=(2, 3)).round(2)
    x8 = rng.normal(size=(8, 8)).round(2)
    w3 = rng.normal(size=(3, 3)).round(2)
    cases = [
        Case(
            (x5, np.ones((2, 2))),
            _corr2d(x5, np.ones((2, 2)), 1, 0),
            hint=(
                "output (H - kH + 1, W - kW + 1); each entry sums a kH x kW window "
                "times w"
            ),
        ),
        Case(
            (x5, edge),
            _corr2d(x5, edge, 1, 0),
            hint=(
                "cross-correlation does not flip the kernel: w[0, 0] multiplies the "
                "window's top-left pixel"
            ),
        ),
        Case(
            (x_rect, w_rect),
            _corr2d(x_rect, w_rect, 1, 0),
            hint="rows and columns have different sizes here: do not mix up H and W",
        ),
        Case(
            (x8, w3),
            _corr2d(x8, w3, 2, 0),
            kwargs={"stride": 2},
            hint=(
                "stride s: output (oh, ow) starts at input (oh·s, ow·s); round the "
                "size down"
            ),
        ),
        Case(
            (x5, w3),
            _corr2d(x5, w3, 1, 1),
            kwargs={"padding": 1},
            hint="pad with zeros on all four sides first (np.pad(x, padding))",
        ),
        Case((x8, w3), _corr2d(x8, w3, 3, 2), kwargs={"stride": 3, "padding": 2}),
    ]
    return run_cases("corr2d_single", fn, cases)


def check_same_padding(fn: Callable) -> CheckResult:
    """``fn(k, dilation=1)`` returns ``(before, after)``: the zero padding that keeps
    the size of an input unchanged at stride 1, with the extra pixel *after*
    (bottom/right) when the total is odd, like PyTorch's ``padding="same"`` and
    ``scipy.signal.correlate2d(..., "same")``."""
    cases = [
        Case((3,), (1, 1), hint="a 3-tap kernel needs one pixel on each side"),
        Case((1,), (0, 0), hint="a 1x1 kernel never needs padding"),
        Case((5,), (2, 2)),
        Case(
            (2,),
            (0, 1),
            hint=(
                "the total padding is k - 1; when it is odd the extra pixel goes after"
            ),
        ),
        Case((4,), (1, 2), hint="total 3: one before, two after"),
        Case(
            (3,),
            (2, 2),
            kwargs={"dilation": 2},
            hint="a dilated kernel spans d·(k-1) + 1 pixels",
        ),
        Case((2,), (1, 2), kwargs={"dilation": 3}),
    ]
    return run_cases("same_padding", fn, cases)
