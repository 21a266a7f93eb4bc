"""Checkers for the exercises of Chapter 6 (backpropagation).

- ``check_smoothed_ce_backward(fn)``: ``fn(logits, targets, alpha) -> dlogits``, the
  gradient of the mean cross-entropy against label-smoothed targets.
- ``check_avg_pool_backward(fn)``: ``fn(dout, x_shape, k, stride) -> dx`` for average
  pooling with ``k × k`` windows, no padding.
- ``check_conv2d_backward(fn)``: ``fn(dout, x, w, padding=0) -> (dx, dw, db)`` for a
  stride-1 convolution layer (cross-correlation, like the book's ``conv2d``). Start from
  :func:`conv2d_backward_with_bug`, which has exactly one wrong line: find it with
  ``cnnbook.gradcheck`` before you read it closely.

The expected answers are computed here with independent NumPy code, not the package.
Every hint belongs to a typical mistake: when the reader's answer equals what that
mistake gives, the checker names it (:func:`run_diagnosed`).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ._core import (
    Case,
    CheckResult,
    Exercise,
    _call_text,
    _mismatch,
    require_function,
)

__all__ = [
    "check_smoothed_ce_backward",
    "check_avg_pool_backward",
    "check_conv2d_backward",
    "conv2d_backward_with_bug",
]

EXERCISES = [
    Exercise(
        "6.1",
        "The gradient of label smoothing",
        "medium",
        "derivation",
        "softmax and cross-entropy by the chain rule, central differences",
        "check_smoothed_ce_backward",
        "ex06-smoothing",
    ),
    Exercise(
        "6.2",
        "Average pooling backward",
        "medium",
        "derivation",
        "gradients of shared windows, overlaps that add up, uncovered pixels",
        "check_avg_pool_backward",
        "ex06-avg-pool",
    ),
    Exercise(
        "6.3",
        "Find the planted bug",
        "medium",
        "diagnosis",
        "gradient checking, the flips of the convolution backward",
        "check_conv2d_backward",
        "ex06-conv-bug",
    ),
]


def run_diagnosed(
    exercise: str,
    fn: Callable,
    cases: Sequence[Case],
    mistakes: Sequence[tuple[Callable, str]],
    *,
    rtol: float = 1e-7,
    atol: float = 1e-9,
) -> CheckResult:
    """Like ``run_cases``, but a wrong answer is compared with typical mistakes.

    ``mistakes``: ``(wrong_fn, hint)`` pairs; ``wrong_fn`` takes the case's arguments
    and returns what that mistake gives. The first one whose result equals the reader's
    answer supplies the hint; otherwise the case's own hint (if any) is shown.
    """
    require_function(exercise, fn)
    name = getattr(fn, "__name__", exercise)
    for number, case in enumerate(cases, start=1):
        # copies: a function that modifies its input cannot spoil later cases
        args = tuple(a.copy() if isinstance(a, np.ndarray) else a for a in case.args)
        try:
            got = fn(*args, **case.kwargs)
        except NotImplementedError:
            return CheckResult(
                exercise, False, f"✗ {name}: not implemented yet — your turn!"
            )
        except Exception as err:  # the reader's code may raise anything
            message = (
                f"✗ {name} raised {type(err).__name__}: {err}\n"
                f"  on {_call_text(name, case)}"
            )
            return CheckResult(exercise, False, message)
        problem = _mismatch(case.expected, got, rtol, atol)
        if not problem:
            continue
        hint = case.hint
        for wrong, mistake_hint in mistakes:
            try:
                with np.errstate(all="ignore"):
                    typical = wrong(*case.args, **case.kwargs)
                if _mismatch(typical, got, rtol, atol) is None:
                    hint = mistake_hint
                    break
            except Exception:  # a mistake that cannot even run on this case
                continue
        message = (
            f"✗ {name} failed check {number} of {len(cases)}\n"
            f"  on {_call_text(name, case)}\n  {problem}"
        )
        if hint:
            message += f"\n  hint: {hint}"
        return CheckResult(exercise, False, message)
    return CheckResult(exercise, True, f"✓ {name} passed all {len(cases)} checks.")


# ----------------------------------------------------------------------------------
# 6.1 The gradient of label smoothing
# ----------------------------------------------------------------------------------


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _onehot(targets, K):
    return np.eye(K)[np.asarray(targets)]


def _smoothed(logits, targets, alpha):
    N, K = logits.shape
    q = (1 - alpha) * _onehot(targets, K) + alpha / K
    return (_softmax(np.asarray(logits, dtype=np.float64)) - q) / N


def _smoothing_cases() -> list[Case]:
    rng = np.random.default_rng(60)
    z1 = np.array([[2.0, 1.0, -1.0], [0.5, 0.5, 3.0]])
    z2 = rng.standard_normal((5, 10))
    z3 = rng.standard_normal((3, 4)) * 400  # large logits: exp overflows
    z4 = rng.standard_normal((4, 6)).astype(np.float32)
    t2 = rng.integers(0, 10, 5)
    return [
        Case((z1, np.array([0, 2]), 0.2), _smoothed(z1, [0, 2], 0.2)),
        Case((z2, t2, 0.1), _smoothed(z2, t2, 0.1)),
        Case((z2, np.arange(5), 0.0), _smoothed(z2, np.arange(5), 0.0)),
        Case((z3, np.array([1, 0, 3]), 0.1), _smoothed(z3, [1, 0, 3], 0.1)),
        Case((z4, np.array([5, 0, 1, 1]), 0.3), _smoothed(z4, [5, 0, 1, 1], 0.3)),
    ]


def _smoothing_mistakes():
    def unsmoothed(z, t, alpha):
        return _smoothed(z, t, 0.0)

    def others_only(z, t, alpha):  # α/(K−1) on the wrong classes, 1 − α on the target
        N, K = z.shape
        Y = _onehot(t, K)
        q = (1 - alpha) * Y + alpha / (K - 1) * (1 - Y)
        return (_softmax(z) - q) / N

    def target_keeps_1_minus_alpha(z, t, alpha):  # rows of q do not sum to 1
        N, K = z.shape
        Y = _onehot(t, K)
        q = (1 - alpha) * Y + alpha / K * (1 - Y)
        return (_softmax(z) - q) / N

    def no_mean(z, t, alpha):
        return _smoothed(z, t, alpha) * len(z)

    def uphill(z, t, alpha):
        return -_smoothed(z, t, alpha)

    def no_max_subtracted(z, t, alpha):
        N, K = z.shape
        e = np.exp(np.asarray(z, dtype=np.float64))
        q = (1 - alpha) * _onehot(t, K) + alpha / K
        return (e / e.sum(axis=1, keepdims=True) - q) / N

    return [
        (
            unsmoothed,
            "that is the gradient for hard targets: label smoothing moves α of the "
            "probability mass off the target and spreads it evenly over all K classes",
        ),
        (
            others_only,
            "the smoothed target is q = (1 − α)·onehot + α/K: every class, the target "
            "included, gets α/K",
        ),
        (
            target_keeps_1_minus_alpha,
            "the target class gets 1 − α + α/K: q is a distribution, its rows sum to "
            "1 (that is what makes Σ_k q_k p_j collapse to p_j)",
        ),
        (
            no_mean,
            "the loss is the *mean* over the batch: divide by N",
        ),
        (
            uphill,
            "the sign: dL/dz = predicted − wanted, so that a step against it raises "
            "the wanted probabilities",
        ),
        (
            no_max_subtracted,
            "large logits overflow exp: subtract each row's maximum first (it cancels "
            "in the ratio)",
        ),
    ]


def check_smoothed_ce_backward(fn: Callable) -> CheckResult:
    """``fn(logits, targets, alpha)``: dL/dlogits for
    ``L = −(1/N) Σ_n Σ_k q_nk log softmax(logits)_nk``, ``q = (1 − α)·onehot + α/K``.
    float32 logits may give a float32 answer."""
    return run_diagnosed(
        "smoothed_ce_backward",
        fn,
        _smoothing_cases(),
        _smoothing_mistakes(),
        rtol=1e-5,
        atol=1e-7,
    )


# ----------------------------------------------------------------------------------
# 6.2 Average pooling backward
# ----------------------------------------------------------------------------------


def _avg_pool_reference(dout, x_shape, k, stride):
    dx = np.zeros(x_shape)
    Ho, Wo = dout.shape[2:]
    for oh in range(Ho):
        for ow in range(Wo):
            rows = slice(oh * stride, oh * stride + k)
            cols = slice(ow * stride, ow * stride + k)
            dx[:, :, rows, cols] += dout[:, :, oh : oh + 1, ow : ow + 1] / (k * k)
    return dx


def _pool_out(n, k, s):
    return (n - k) // s + 1


def _avg_pool_cases() -> list[Case]:
    rng = np.random.default_rng(61)
    cases = []
    for x_shape, k, s in [
        ((1, 1, 4, 4), 2, 2),
        ((2, 3, 5, 5), 3, 1),
        ((1, 2, 5, 6), 2, 2),
        ((2, 1, 7, 7), 3, 2),
    ]:
        N, C, H, W = x_shape
        dout = rng.standard_normal((N, C, _pool_out(H, k, s), _pool_out(W, k, s)))
        cases.append(
            Case((dout, x_shape, k, s), _avg_pool_reference(dout, x_shape, k, s))
        )
    dout = rng.standard_normal((2, 2, 2, 2)).astype(np.float32)
    cases.append(
        Case((dout, (2, 2, 6, 6), 3, 3), _avg_pool_reference(dout, (2, 2, 6, 6), 3, 3))
    )
    return cases


def _avg_pool_mistakes():
    def no_division(dout, x_shape, k, stride):
        return _avg_pool_reference(dout, x_shape, k, stride) * k * k

    def divided_by_side(dout, x_shape, k, stride):
        return _avg_pool_reference(dout, x_shape, k, stride) * k

    def overwrites(dout, x_shape, k, stride):
        dx = np.zeros(x_shape)
        for oh in range(dout.shape[2]):
            for ow in range(dout.shape[3]):
                rows = slice(oh * stride, oh * stride + k)
                cols = slice(ow * stride, ow * stride + k)
                dx[:, :, rows, cols] = dout[:, :, oh : oh + 1, ow : ow + 1] / (k * k)
        return dx

    def first_pixel_only(dout, x_shape, k, stride):
        dx = np.zeros(x_shape)
        Ho, Wo = dout.shape[2:]
        for oh in range(Ho):
            for ow in range(Wo):
                dx[:, :, oh * stride, ow * stride] += dout[:, :, oh, ow]
        return dx

    def repeated(dout, x_shape, k, stride):
        return np.repeat(np.repeat(dout, k, axis=2), k, axis=3) / (k * k)

    return [
        (
            no_division,
            "the window's output is the *mean* of its k·k pixels: each pixel gets "
            "dout / (k·k)",
        ),
        (divided_by_side, "divide by the window's area k·k, not by its side k"),
        (
            overwrites,
            "where windows overlap (stride < k), a pixel receives the *sum* of the "
            "shares of every window it belongs to: add, do not assign",
        ),
        (
            first_pixel_only,
            "average pooling has no argmax: every pixel of the window contributed, "
            "so all k·k of them get an equal share",
        ),
        (
            repeated,
            "np.repeat spreads each dout over a k×k block, which is right only when "
            "stride = k and the windows tile x exactly; dx has the shape of x, "
            "overlapping shares add, and pixels no window covers get 0",
        ),
    ]


def check_avg_pool_backward(fn: Callable) -> CheckResult:
    """``fn(dout, x_shape, k, stride)``: dL/dx of average pooling with ``k × k``
    windows at ``stride``, no padding, for ``x`` of shape ``x_shape``."""
    return run_diagnosed(
        "avg_pool_backward",
        fn,
        _avg_pool_cases(),
        _avg_pool_mistakes(),
        rtol=1e-5,
        atol=1e-7,
    )


# ----------------------------------------------------------------------------------
# 6.3 Find the planted bug
# ----------------------------------------------------------------------------------


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
    dxp = np.zeros(xp.shape)
    dw = np.zeros(w.shape)
    for i in range(k_h):
        for j in range(k_w):
            patch = xp[:, :, i : i + h_out, j : j + w_out]  # what tap (i, j) touched
            dw[:, :, i, j] = np.einsum("nfhw,nchw->fc", dout, patch)
            dxp[:, :, i : i + h_out, j : j + w_out] += np.einsum(
                "nfhw,fc->nchw", dout, w[:, :, i, j]
            )
    dx = dxp[:, :, padding : xp.shape[2] - padding, padding : xp.shape[3] - padding]
    return dx, dw, dout.sum(axis=(0, 2, 3))


def _conv_cases() -> list[Case]:
    rng = np.random.default_rng(62)
    cases = []
    for n, c, f, h, wd, kernel, padding, dtype in [
        (2, 2, 2, 5, 5, (3, 3), 1, np.float64),  # C == F: a missing swap shows
        (2, 2, 3, 5, 6, (3, 3), 0, np.float64),
        (1, 3, 2, 4, 4, (3, 3), 2, np.float64),
        (2, 1, 2, 5, 4, (2, 3), 1, np.float64),  # non-square kernel
        (2, 2, 3, 6, 6, (3, 3), 1, np.float32),
    ]:
        x = rng.standard_normal((n, c, h, wd)).astype(dtype)
        w = rng.standard_normal((f, c) + kernel).astype(dtype)
        h_out = h + 2 * padding - kernel[0] + 1
        w_out = wd + 2 * padding - kernel[1] + 1
        dout = rng.standard_normal((n, f, h_out, w_out)).astype(dtype)
        cases.append(
            Case(
                (dout, x, w),
                _conv_reference(dout, x, w, padding),
                kwargs={"padding": padding},
            )
        )
    return cases


def _conv_mistakes():
    def dx_part(dout, w, padding, rotate=True, swap=True, crop=True):
        k_h, k_w = w.shape[2:]
        k = w[:, :, ::-1, ::-1] if rotate else w
        k = k.transpose(1, 0, 2, 3) if swap else k
        dxp = _correlate(_pad(dout, k_h - 1, k_w - 1), k)
        if not crop or padding == 0:
            return dxp
        return dxp[:, :, padding:-padding, padding:-padding]

    def ref(dout, x, w, padding):
        return _conv_reference(dout, x, w, padding)

    def no_rotation(dout, x, w, padding=0):
        _, dw, db = ref(dout, x, w, padding)
        return dx_part(dout, w, padding, rotate=False), dw, db

    def no_swap(dout, x, w, padding=0):
        _, dw, db = ref(dout, x, w, padding)
        return dx_part(dout, w, padding, swap=False), dw, db

    def no_crop(dout, x, w, padding=0):
        _, dw, db = ref(dout, x, w, padding)
        return dx_part(dout, w, padding, crop=False), dw, db

    def unpadded_dw(dout, x, w, padding=0):
        dx, _, db = ref(dout, x, w, padding)
        dw = _correlate(x.transpose(1, 0, 2, 3), dout.transpose(1, 0, 2, 3))
        return dx, dw.transpose(1, 0, 2, 3), db

    def db_mean(dout, x, w, padding=0):
        dx, dw, _ = ref(dout, x, w, padding)
        return dx, dw, dout.mean(axis=(0, 2, 3))

    return [
        (
            conv2d_backward_with_bug,
            "that is the given code: gradcheck says which gradient is wrong, and the "
            "bug is in the line that computes it",
        ),
        (
            no_rotation,
            "dx is a *full convolution*: correlate the zero-padded dout with the "
            "kernel rotated by 180°",
        ),
        (
            no_swap,
            "dx[n, c] sums over the *output* channels f: swap the kernel's channel "
            "axes, w.transpose(1, 0, 2, 3)",
        ),
        (
            no_crop,
            "the forward pass saw the padded input: crop `padding` rows and columns "
            "from each border of the gradient (dx has the shape of x)",
        ),
        (
            unpadded_dw,
            "dw correlates the *padded* input with dout: the taps at the border read "
            "the padding zeros",
        ),
        (db_mean, "db sums dout over the batch and every position: no mean"),
    ]


def check_conv2d_backward(fn: Callable) -> CheckResult:
    """``fn(dout, x, w, padding=0)`` must return ``(dx, dw, db)`` of a stride-1 conv."""
    return run_diagnosed(
        "conv2d_backward",
        fn,
        _conv_cases(),
        _conv_mistakes(),
        rtol=1e-5,
        atol=1e-5,
    )
