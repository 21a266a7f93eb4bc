"""Each Chapter 3 checker accepts a correct solution and rejects typical wrong ones."""

import numpy as np
import pytest

from cnnbook import exercises
from cnnbook import functional as F
from cnnbook.exercises import (
    check_conv_output_shape,
    check_corr2d_single,
    check_same_padding,
)


def test_checkers_are_exported():
    for name in [
        "check_conv_output_shape",
        "check_corr2d_single",
        "check_same_padding",
    ]:
        assert name in exercises.__all__


def test_not_implemented_message():
    def corr2d(x, w, stride=1, padding=0):
        raise NotImplementedError

    result = check_corr2d_single(corr2d)
    assert not result and "not implemented yet" in repr(result)


# --------------------------------------------------------------------------- output
# shape


def shape_by_formula(x_shape, w_shape, stride, padding, dilation):
    N, _, H, W = x_shape
    F_, _, kh, kw = w_shape
    return (
        N,
        F_,
        (H + 2 * padding - dilation * (kh - 1) - 1) // stride + 1,
        (W + 2 * padding - dilation * (kw - 1) - 1) // stride + 1,
    )


def shape_by_running(x_shape, w_shape, stride, padding, dilation):
    return F.conv2d(
        np.zeros(x_shape), np.zeros(w_shape), None, stride, padding, dilation
    ).shape


@pytest.mark.parametrize("solution", [shape_by_formula, shape_by_running])
def test_output_shape_accepts_correct(solution):
    assert check_conv_output_shape(solution)


def ceil_division(x_shape, w_shape, s, p, d):
    N, _, H, W = x_shape
    return (
        N,
        w_shape[0],
        -(-(H + 2 * p - d * (w_shape[2] - 1) - 1) // s) + 1,
        -(-(W + 2 * p - d * (w_shape[3] - 1) - 1) // s) + 1,
    )


@pytest.mark.parametrize(
    "wrong",
    [
        lambda x, w, s, p, d: (
            (x[0], x[1]) + shape_by_formula(x, w, s, p, d)[2:]
        ),  # C instead of F
        lambda x, w, s, p, d: shape_by_formula(
            x, w, s, p // 2 if p else 0, d
        ),  # one-sided padding
        lambda x, w, s, p, d: shape_by_formula(x, w, s, p, 1),  # ignores dilation
        ceil_division,  # rounds up
        lambda x, w, s, p, d: (
            x[0],
            w[0],
            (x[2] + 2 * p - w[2]) // s + 1,
            (x[2] + 2 * p - w[2]) // s + 1,
        ),
    ],
)
def test_output_shape_rejects_wrong(wrong):
    result = check_conv_output_shape(wrong)
    assert not result and "failed check" in repr(result)


# --------------------------------------------------------------------------- corr2d


def corr2d_loops(x, w, stride=1, padding=0):
    xp = np.pad(x, padding)
    kh, kw = w.shape
    out = np.zeros(((xp.shape[0] - kh) // stride + 1, (xp.shape[1] - kw) // stride + 1))
    for oh in range(out.shape[0]):
        for ow in range(out.shape[1]):
            for i in range(kh):
                for j in range(kw):
                    out[oh, ow] += xp[oh * stride + i, ow * stride + j] * w[i, j]
    return out


def corr2d_package(x, w, stride=1, padding=0):
    return F.conv2d(x[None, None], w[None, None], None, stride, padding)[0, 0]


@pytest.mark.parametrize("solution", [corr2d_loops, corr2d_package])
def test_corr2d_accepts_correct(solution):
    assert check_corr2d_single(solution)


@pytest.mark.parametrize(
    "wrong, complaint",
    [
        (
            lambda x, w, stride=1, padding=0: corr2d_loops(
                x, w[::-1, ::-1], stride, padding
            ),
            "wrong values",
        ),
        (
            lambda x, w, stride=1, padding=0: corr2d_loops(x, w, 1, padding)[
                ::stride, ::stride
            ][:-1],
            "wrong shape",
        ),
        (
            lambda x, w, stride=1, padding=0: corr2d_loops(x, w, stride, padding)[
                :-1, :-1
            ],
            "wrong shape",
        ),  # off by one
        (
            lambda x, w, stride=1, padding=0: corr2d_loops(
                np.pad(x, ((padding, padding), (0, 0))), w, stride, 0
            ),
            "wrong shape",
        ),
    ],
)
def test_corr2d_rejects_wrong(wrong, complaint):
    result = check_corr2d_single(wrong)
    assert not result and complaint in repr(result)


def test_corr2d_flipped_kernel_hint():
    result = check_corr2d_single(
        lambda x, w, stride=1, padding=0: corr2d_loops(
            x, w[::-1, ::-1], stride, padding
        )
    )
    assert "does not flip" in repr(result)


# --------------------------------------------------------------------------- same
# padding


def same_padding(k, dilation=1):
    total = dilation * (k - 1)
    return total // 2, total - total // 2


@pytest.mark.parametrize(
    "wrong",
    [
        lambda k, dilation=1: ((k - 1) // 2, (k - 1) // 2),  # symmetric only
        lambda k, dilation=1: (
            dilation * (k - 1) - dilation * (k - 1) // 2,
            dilation * (k - 1) // 2,
        ),  # extra before
        lambda k, dilation=1: ((k - 1) // 2, k - 1 - (k - 1) // 2),  # ignores dilation
        lambda k, dilation=1: (k // 2, k // 2),
    ],
)
def test_same_padding(wrong):
    assert check_same_padding(same_padding)
    assert not check_same_padding(wrong)


def test_same_padding_really_keeps_the_size():
    x = np.zeros((1, 1, 9, 9))
    for k in range(1, 5):
        for d in (1, 2):
            b, a = same_padding(k, d)
            xp = np.pad(x, ((0, 0), (0, 0), (b, a), (b, a)))
            assert F.conv2d(xp, np.zeros((1, 1, k, k)), dilation=d).shape == x.shape
