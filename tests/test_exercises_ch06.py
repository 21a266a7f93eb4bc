"""Chapter 6 checkers accept a correct answer and reject typical wrong ones."""

import numpy as np
import pytest

from cnnbook import exercises
from cnnbook.exercises import ch06


def relu_ok(dout, x):
    return dout * (x > 0)


def relu_ge(dout, x):  # gradient 1 at x == 0
    return dout * (x >= 0)


def relu_mask_only(dout, x):  # forgets the upstream gradient
    return (x > 0).astype(float)


def relu_mask_on_dout(dout, x):  # masks the wrong tensor
    return np.maximum(dout, 0)


def relu_todo(dout, x):
    raise NotImplementedError


def test_relu_checker():
    assert exercises.check_relu_backward is ch06.check_relu_backward
    assert ch06.check_relu_backward(relu_ok)
    for wrong in (relu_ge, relu_mask_only, relu_mask_on_dout):
        result = ch06.check_relu_backward(wrong)
        assert not result and "✗" in repr(result)
    assert "hint" in repr(ch06.check_relu_backward(relu_ge))
    assert "not implemented yet" in repr(ch06.check_relu_backward(relu_todo))


def linear_ok(dout, x, W):
    return dout @ W, dout.T @ x, dout.sum(axis=0)


def linear_dw_transposed(dout, x, W):
    return dout @ W, x.T @ dout, dout.sum(axis=0)


def linear_db_mean(dout, x, W):
    return dout @ W, dout.T @ x, dout.mean(axis=0)


def linear_dx_wrong(dout, x, W):
    return (
        dout @ W.T if W.shape[0] == W.shape[1] else np.zeros_like(x),
        dout.T @ x,
        dout.sum(axis=0),
    )


def linear_two_outputs(dout, x, W):
    return dout @ W, dout.T @ x


def test_linear_checker():
    assert ch06.check_linear_backward(linear_ok)
    for wrong in (
        linear_dw_transposed,
        linear_db_mean,
        linear_dx_wrong,
        linear_two_outputs,
    ):
        assert not ch06.check_linear_backward(wrong)
    assert "wrong shape" in repr(ch06.check_linear_backward(linear_dw_transposed))


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


def conv_no_flip(dout, x, w, padding=0):
    dx, dw, db = conv_fixed(dout, x, w, padding)
    k_h, k_w = w.shape[2:]
    dxp = ch06._correlate(ch06._pad(dout, k_h - 1, k_w - 1), w.transpose(1, 0, 2, 3))
    return (
        dxp[:, :, padding : dxp.shape[2] - padding, padding : dxp.shape[3] - padding],
        dw,
        db,
    )


def conv_no_crop(dout, x, w, padding=0):
    dx, dw, db = conv_fixed(dout, x, w, 0)
    k_h, k_w = w.shape[2:]
    dx = ch06._correlate(
        ch06._pad(dout, k_h - 1, k_w - 1), w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)
    )
    return dx, conv_fixed(dout, x, w, padding)[1], db


def conv_db_mean(dout, x, w, padding=0):
    dx, dw, db = conv_fixed(dout, x, w, padding)
    return dx, dw, dout.mean(axis=(0, 2, 3))


def test_conv_checker_accepts_the_fix_and_rejects_the_bug():
    assert ch06.check_conv2d_backward(conv_fixed)
    for wrong in (
        ch06.conv2d_backward_with_bug,
        conv_no_flip,
        conv_no_crop,
        conv_db_mean,
    ):
        assert not ch06.check_conv2d_backward(wrong)
    assert "item 1" in repr(
        ch06.check_conv2d_backward(ch06.conv2d_backward_with_bug)
    )  # dw


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
