"""Chapter 6 exercises: backward passes.

- ``check_relu_backward(fn)``: ``fn(dout, x) -> dx``.
- ``check_linear_backward(fn)``: ``fn(dout, x, W) -> (dx, dW, db)`` with ``W`` of shape
  (out, in).
- ``check_conv2d_backward(fn)``: ``fn(dout, x, w, padding=0) -> (dx, dw, db)`` for a
  stride-1 convolution layer (cross-correlation, like the book's ``conv2d``). Start from
  :func:`conv2d_backward_with_bug`, which has exactly one wrong line: find it with
  ``cnnbook.gradcheck`` before you read it closely.

The expected answers are computed here with independent NumPy code, not the package.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ._core import Case, CheckResult, run_cases

__all__ = [
    "check_relu_backward",
    "check_linear_backward",
    "check_conv2d_backward",
    "conv2d_backward_with_bug",
]


# --- ReLU -----------------------------------------------------------------------------


def _relu_cases() -> list[Case]:
    rng = np.random.default_rng(60)
    cases = []
    x = np.array([-2.0, -0.5, 0.0, 0.5, 2.0])
    dout = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    cases.append(
        Case(
            (dout, x),
            dout * (x > 0),
            hint="dL/dx = dout where x > 0 and 0 elsewhere; at exactly x == 0 the book "
            "(like PyTorch) uses the subgradient 0",
        )
    )
    x = rng.standard_normal((2, 3, 4, 4))
    dout = rng.standard_normal(x.shape)
    cases.append(
        Case(
            (dout, x),
            dout * (x > 0),
            hint="mask on the forward *input* x (where was ReLU the identity?) and "
            "multiply the upstream gradient dout, which may be negative",
        )
    )
    x = rng.integers(-2, 3, size=(3, 5)).astype(
        np.float64
    )  # exact zeros again, in a 2-D batch
    dout = rng.standard_normal(x.shape)
    cases.append(
        Case(
            (dout, x), dout * (x > 0), hint="the gradient at x == 0 is 0 by convention"
        )
    )
    return cases


def check_relu_backward(fn) -> CheckResult:
    """``fn(dout, x)`` must return dL/dx for ``y = max(x, 0)``, with slope 0 at 0."""
    return run_cases("relu_backward", fn, _relu_cases())


# --- fully connected ------------------------------------------------------------------


def _linear_reference(dout, x, W):
    return dout @ W, dout.T @ x, dout.sum(axis=0)


def _linear_cases() -> list[Case]:
    rng = np.random.default_rng(61)
    cases = []
    for n, n_in, n_out, hint in [
        (4, 3, 2, "shapes: dx like x (N, in), dW like W (out, in), db like b (out,)"),
        (5, 6, 3, "dW = doutᵀ x (out×N times N×in); db sums dout over the batch"),
        (
            3,
            3,
            3,
            "with square shapes a transposed dW still has the right shape: dW[o, i] = "
            "Σₙ dout[n, o] x[n, i]",
        ),
    ]:
        x = rng.standard_normal((n, n_in))
        W = rng.standard_normal((n_out, n_in))
        dout = rng.standard_normal((n, n_out))
        cases.append(Case((dout, x, W), _linear_reference(dout, x, W), hint=hint))
    return cases


def check_linear_backward(fn) -> CheckResult:
    """``fn(dout, x, W)`` for ``y = x Wᵀ + b`` must return ``(dx, dW, db)``."""
    return run_cases("linear_backward", fn, _linear_cases())


# --- convolution ----------------------------------------------------------------------


def _correlate(a: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Valid stride-1 cross-correlation of a (N, C, H, W) with k (F, C, kH, kW).

    Returns (N, F, Ho, Wo).
    """
    windows = sliding_window_view(a, k.shape[2:], axis=(2, 3))  # (N, C, Ho, Wo, kH, kW)
    return np.einsum("nchwij,fcij->nfhw", windows, k)


def _pad(a: np.ndarray, ph: int, pw: int) -> np.ndarray:
    return np.pad(a, ((0, 0), (0, 0), (ph, ph), (pw, pw)))


def conv2d_backward_with_bug(dout, x, w, padding=0):
    """Backward of ``conv2d(x, w, b, stride=1, padding=padding)``; one line is wrong.

    dout: (N, F, Ho, Wo), x: (N, C, H, W), w: (F, C, kH, kW) → (dx, dw, db).
    """
    k_h, k_w = w.shape[2:]
    db = dout.sum(axis=(0, 2, 3))
    # dw[f, c] = Σₙ cross-correlation of the padded input x[n, c] with dout[n, f]
    xp = _pad(x, padding, padding)
    dw = _correlate(
        xp.transpose(1, 0, 2, 3), dout[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)
    )
    dw = dw.transpose(1, 0, 2, 3)
    # dx = full convolution of dout with w: pad dout with k−1 zeros, correlate with
    # the kernel rotated by 180° (input and output channels swapped), crop the padding
    w_rot = w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)
    dxp = _correlate(_pad(dout, k_h - 1, k_w - 1), w_rot)
    dx = dxp[:, :, padding : dxp.shape[2] - padding, padding : dxp.shape[3] - padding]
    return dx, dw, db


def _conv_reference(dout, x, w, padding=0):
    """The direct definition: every output position scatters into its window."""
    k_h, k_w = w.shape[2:]
    h_out, w_out = dout.shape[2:]
    xp = _pad(x, padding, padding)
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    for i in range(k_h):
        for j in range(k_w):
            patch = xp[
                :, :, i : i + h_out, j : j + w_out
            ]  # the inputs that tap (i, j) touched
            dw[:, :, i, j] = np.einsum("nfhw,nchw->fc", dout, patch)
            dxp[:, :, i : i + h_out, j : j + w_out] += np.einsum(
                "nfhw,fc->nchw", dout, w[:, :, i, j]
            )
    dx = dxp[:, :, padding : xp.shape[2] - padding, padding : xp.shape[3] - padding]
    return dx, dw, dout.sum(axis=(0, 2, 3))


def _conv_cases() -> list[Case]:
    rng = np.random.default_rng(62)
    cases = []
    for n, c, f, h, wd, kernel, padding, hint in [
        (
            2,
            2,
            3,
            5,
            6,
            (3, 3),
            0,
            "returns (dx, dw, db); dx like x, dw like w, db of shape (F,)",
        ),
        (
            1,
            3,
            2,
            4,
            4,
            (3, 3),
            1,
            "with padding, dx is the full convolution cropped by the padding",
        ),
        (
            2,
            1,
            2,
            5,
            4,
            (2, 3),
            1,
            "a non-square kernel: flip both spatial axes of w for dx, "
            "and nothing for dw (dw is a plain cross-correlation)",
        ),
    ]:
        x = rng.standard_normal((n, c, h, wd))
        w = rng.standard_normal((f, c) + kernel)
        h_out = h + 2 * padding - kernel[0] + 1
        w_out = wd + 2 * padding - kernel[1] + 1
        dout = rng.standard_normal((n, f, h_out, w_out))
        cases.append(
            Case(
                (dout, x, w),
                _conv_reference(dout, x, w, padding),
                kwargs={"padding": padding},
                hint=hint,
            )
        )
    return cases


def check_conv2d_backward(fn) -> CheckResult:
    """``fn(dout, x, w, padding=0)`` must return ``(dx, dw, db)`` of a stride-1 conv."""
    return run_cases("conv2d_backward", fn, _conv_cases())
