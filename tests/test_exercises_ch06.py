"""Chapter 6 checkers: each typical mistake gets its hint, correct solutions pass."""

import numpy as np
import pytest

from cnnbook import exercises
from cnnbook.exercises import ch06
from cnnbook.exercises.ch06 import (
    check_avg_pool_backward,
    check_conv2d_backward,
    check_smoothed_ce_backward,
)


def test_checkers_are_exported():
    for name in ch06.__all__:
        if name.startswith("check_"):
            assert getattr(exercises, name) is getattr(ch06, name)


def test_registry_headers():
    assert [ex.header for ex in ch06.EXERCISES] == [
        "6.1: The gradient of label smoothing — medium; derivation",
        "6.2: Average pooling backward — medium; derivation",
        "6.3: Find the planted bug — medium; diagnosis",
    ]
    assert sum(ex.needs_thought for ex in ch06.EXERCISES) == 3


def stub(*args, **kwargs):
    raise NotImplementedError


@pytest.mark.parametrize(
    "checker",
    [check_smoothed_ce_backward, check_avg_pool_backward, check_conv2d_backward],
)
def test_stub_is_not_implemented_yet(checker):
    result = checker(stub)
    assert not result and "not implemented yet" in result.message


@pytest.mark.parametrize(
    "checker",
    [check_smoothed_ce_backward, check_avg_pool_backward, check_conv2d_backward],
)
def test_checkers_survive_bad_answers(checker):
    def raises(*args, **kwargs):
        raise ZeroDivisionError("oops")

    result = checker(raises)
    assert not result and "raised ZeroDivisionError: oops" in result.message
    assert not checker(lambda *a, **k: None)
    assert not checker(lambda *a, **k: "text")
    assert not checker(lambda *a, **k: np.full((2, 2), np.nan))
    with pytest.raises(TypeError, match="expects your function itself"):
        checker(3)


# ----------------------------------------------------------------------------------
# 6.1 The gradient of label smoothing
# ----------------------------------------------------------------------------------


def smoothed(logits, targets, alpha):
    N, K = logits.shape
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    q = np.full((N, K), alpha / K)
    q[np.arange(N), targets] += 1 - alpha
    return (p - q) / N


def smoothed_in_dtype(logits, targets, alpha):  # alternative: log-sum-exp, one-hot eye
    N, K = logits.shape
    log_p = logits - logits.max(1, keepdims=True)
    log_p = log_p - np.log(np.exp(log_p).sum(1, keepdims=True))
    q = (1 - alpha) * np.eye(K, dtype=logits.dtype)[targets] + alpha / K
    return ((np.exp(log_p) - q) / N).astype(logits.dtype)


def test_smoothing_correct_solutions_pass():
    assert check_smoothed_ce_backward(smoothed)
    assert check_smoothed_ce_backward(smoothed_in_dtype)


def test_smoothing_answer_matches_central_differences():
    rng = np.random.default_rng(0)
    z, t, alpha = rng.standard_normal((3, 5)), np.array([0, 4, 2]), 0.2

    def loss(z):
        q = np.full(z.shape, alpha / z.shape[1])
        q[np.arange(3), t] += 1 - alpha
        log_p = z - np.log(np.exp(z).sum(1, keepdims=True))
        return -(q * log_p).sum() / len(z)

    eps, numeric = 1e-6, np.zeros_like(z)
    for i in np.ndindex(z.shape):
        e = np.zeros_like(z)
        e[i] = eps
        numeric[i] = (loss(z + e) - loss(z - e)) / (2 * eps)
    np.testing.assert_allclose(smoothed(z, t, alpha), numeric, atol=1e-9)


def _no_max(z, t, alpha):
    N, K = z.shape
    with np.errstate(all="ignore"):
        p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    q = np.full((N, K), alpha / K)
    q[np.arange(N), t] += 1 - alpha
    return (p - q) / N


def _others_only(z, t, alpha):
    N, K = z.shape
    q = np.full((N, K), alpha / (K - 1))
    q[np.arange(N), t] = 1 - alpha
    return (smoothed(z, t, 0.0) + np.eye(K)[t] / N) - q / N


def _target_keeps(z, t, alpha):
    N, K = z.shape
    q = np.full((N, K), alpha / K)
    q[np.arange(N), t] = 1 - alpha
    return (smoothed(z, t, 0.0) + np.eye(K)[t] / N) - q / N


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda z, t, a: smoothed(z, t, 0.0), "gradient for hard targets"),
        (_others_only, "the target included, gets α/K"),
        (_target_keeps, "its rows sum to 1"),
        (lambda z, t, a: smoothed(z, t, a) * len(z), "divide by N"),
        (lambda z, t, a: -smoothed(z, t, a), "predicted − wanted"),
        (_no_max, "subtract each row's maximum"),
    ],
)
def test_smoothing_mistakes_get_their_hints(wrong, hint):
    result = check_smoothed_ce_backward(wrong)
    assert not result
    assert hint in result.message


# ----------------------------------------------------------------------------------
# 6.2 Average pooling backward
# ----------------------------------------------------------------------------------


def avg_pool_backward(dout, x_shape, k, stride):
    dx = np.zeros(x_shape, dtype=dout.dtype)
    Ho, Wo = dout.shape[2:]
    for i in range(k):  # loop over the window offsets, like col2im
        for j in range(k):
            dx[:, :, i : i + stride * Ho : stride, j : j + stride * Wo : stride] += (
                dout / (k * k)
            )
    return dx


def avg_pool_backward_loops(dout, x_shape, k, stride):  # alternative: pure Python
    N, C, H, W = x_shape
    dx = [[[[0.0] * W for _ in range(H)] for _ in range(C)] for _ in range(N)]
    for n in range(N):
        for c in range(C):
            for oh in range(dout.shape[2]):
                for ow in range(dout.shape[3]):
                    for i in range(k):
                        for j in range(k):
                            r, s = oh * stride + i, ow * stride + j
                            dx[n][c][r][s] += float(dout[n, c, oh, ow]) / (k * k)
    return np.array(dx)


def test_avg_pool_correct_solutions_pass():
    assert check_avg_pool_backward(avg_pool_backward)
    assert check_avg_pool_backward(avg_pool_backward_loops)


def test_avg_pool_reference_matches_the_package():
    F = pytest.importorskip("cnnbook.functional")
    rng = np.random.default_rng(3)
    for shape, k, s in [
        ((2, 3, 7, 7), 3, 2),
        ((1, 2, 5, 6), 2, 2),
        ((1, 1, 6, 6), 3, 1),
    ]:
        x = rng.standard_normal(shape)
        dout = rng.standard_normal(F.avg_pool2d(x, k, s).shape)
        np.testing.assert_allclose(
            ch06._avg_pool_reference(dout, shape, k, s),
            F.avg_pool2d_backward(dout, x, k, s),
            atol=1e-12,
        )


def _overwrites(dout, x_shape, k, stride):
    dx = np.zeros(x_shape)
    for oh in range(dout.shape[2]):
        for ow in range(dout.shape[3]):
            r, s = oh * stride, ow * stride
            dx[:, :, r : r + k, s : s + k] = dout[:, :, oh, ow, None, None] / k**2
    return dx


def _first_pixel(dout, x_shape, k, stride):
    dx = np.zeros(x_shape)
    Ho, Wo = dout.shape[2:]
    dx[:, :, : stride * Ho : stride, : stride * Wo : stride] += dout
    return dx


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda d, s, k, st: avg_pool_backward(d, s, k, st) * k * k, "dout / (k·k)"),
        (lambda d, s, k, st: avg_pool_backward(d, s, k, st) * k, "not by its side"),
        (_overwrites, "add, do not assign"),
        (_first_pixel, "no argmax"),
        (lambda d, s, k, st: d.repeat(k, 2).repeat(k, 3) / k**2, "np.repeat"),
    ],
)
def test_avg_pool_mistakes_get_their_hints(wrong, hint):
    result = check_avg_pool_backward(wrong)
    assert not result
    assert hint in result.message


# ----------------------------------------------------------------------------------
# 6.3 Find the planted bug
# ----------------------------------------------------------------------------------


def conv_fixed(dout, x, w, padding=0):
    """The intended fix: dw is a plain cross-correlation (no flip)."""
    k_h, k_w = w.shape[2:]
    xp = ch06._pad(x, padding, padding)
    dw = ch06._correlate(
        xp.transpose(1, 0, 2, 3), dout.transpose(1, 0, 2, 3)
    ).transpose(1, 0, 2, 3)
    w_rot = w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)
    dxp = ch06._correlate(ch06._pad(dout, k_h - 1, k_w - 1), w_rot)
    dx = dxp[:, :, padding : dxp.shape[2] - padding, padding : dxp.shape[3] - padding]
    return dx, dw, dout.sum(axis=(0, 2, 3))


def conv_by_package(dout, x, w, padding=0):  # alternative: the book's own functions
    F = pytest.importorskip("cnnbook.functional")
    return F.conv2d_backward(dout, x, w, padding=padding, method="im2col")


def test_conv_correct_solutions_pass():
    assert check_conv2d_backward(conv_fixed)
    assert check_conv2d_backward(conv_by_package)


def _variant(rotate=True, swap=True, crop=True):
    def wrong(dout, x, w, padding=0):
        _, dw, db = conv_fixed(dout, x, w, padding)
        k_h, k_w = w.shape[2:]
        k = w[:, :, ::-1, ::-1] if rotate else w
        k = k.transpose(1, 0, 2, 3) if swap else k
        dxp = ch06._correlate(ch06._pad(dout, k_h - 1, k_w - 1), k)
        if crop and padding:
            dxp = dxp[:, :, padding:-padding, padding:-padding]
        return dxp, dw, db

    return wrong


def _unpadded_dw(dout, x, w, padding=0):
    dx, _, db = conv_fixed(dout, x, w, padding)
    dw = ch06._correlate(x.transpose(1, 0, 2, 3), dout.transpose(1, 0, 2, 3))
    return dx, dw.transpose(1, 0, 2, 3), db


def _db_mean(dout, x, w, padding=0):
    dx, dw, _ = conv_fixed(dout, x, w, padding)
    return dx, dw, dout.mean(axis=(0, 2, 3))


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (ch06.conv2d_backward_with_bug, "that is the given code"),
        (_variant(rotate=False), "rotated by 180°"),
        (_variant(swap=False), "swap the kernel's channel axes"),
        (_variant(crop=False), "crop `padding` rows"),
        (_unpadded_dw, "*padded* input"),
        (_db_mean, "no mean"),
    ],
)
def test_conv_mistakes_get_their_hints(wrong, hint):
    result = check_conv2d_backward(wrong)
    assert not result
    assert hint in result.message


@pytest.mark.parametrize("padding", [0, 1, 2])
def test_conv_reference_matches_the_package(padding):
    F = pytest.importorskip("cnnbook.functional")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 6, 5))
    w = rng.standard_normal((4, 3, 3, 2))
    dout = rng.standard_normal(F.conv2d(x, w, padding=padding).shape)
    for mine, package in zip(
        ch06._conv_reference(dout, x, w, padding),
        F.conv2d_backward(dout, x, w, padding=padding),
    ):
        np.testing.assert_allclose(mine, package, rtol=1e-10, atol=1e-12)


def test_buggy_conv_is_wrong_only_in_dw():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 2, 5, 5))
    w = rng.standard_normal((3, 2, 3, 3))
    dout = rng.standard_normal((2, 3, 5, 5))
    good = ch06._conv_reference(dout, x, w, 1)
    bad = ch06.conv2d_backward_with_bug(dout, x, w, padding=1)
    np.testing.assert_allclose(bad[0], good[0], atol=1e-12)
    np.testing.assert_allclose(bad[2], good[2], atol=1e-12)
    assert not np.allclose(bad[1], good[1])
