"""Chapter 3 checkers: each typical mistake gets its hint, correct solutions pass."""

import numpy as np
import pytest

from cnnbook import exercises
from cnnbook import functional as F
from cnnbook.exercises import (
    check_blocks_to_see,
    check_cols_by_hand,
    check_conv2d_fixed,
)
from cnnbook.exercises.ch03 import EXERCISES


def test_checkers_are_exported_and_registered():
    for exercise in EXERCISES:
        assert exercise.checker in exercises.__all__
    assert sum(e.needs_thought for e in EXERCISES) >= 2


# ----------------------------------------------------------------------------------
# 3.1 How deep until a unit sees the whole digit?
# ----------------------------------------------------------------------------------


def blocks(n, k, pool):
    r, j, count = 1, 1, 0
    while r < n:
        r, j = r + (k - 1) * j + (pool - 1) * j, j * pool
        count += 1
    return count


def blocks_closed_form(n, k, pool):  # alternative: the field after L blocks, summed
    count = 0
    while 1 + sum((k + pool - 2) * pool**b for b in range(count)) < n:
        count += 1
    return count


def blocks_variant(n, k, pool, start=1, jump=True, pool_after=False, no_pool=False):
    r, j, count = start, 1, 0
    while r < n:
        r += (k - 1) * j
        if pool > 1 and not no_pool:
            if pool_after:
                j *= pool
                r += (pool - 1) * j
            else:
                r += (pool - 1) * j
                j *= pool if jump else 1
        count += 1
    return count


def test_blocks_correct_solutions_pass():
    assert check_blocks_to_see(blocks)
    assert check_blocks_to_see(blocks_closed_form)


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda n, k, p: blocks_variant(n, k, p, start=0), "a pixel sees itself"),
        (lambda n, k, p: blocks(n + 1, k, p), "a pixel sees itself"),
        (lambda n, k, p: blocks(n, k + 1, p), "adds k − 1 pixels"),
        (lambda n, k, p: blocks_variant(n, k, p, pool_after=True), "*before*"),
        (lambda n, k, p: blocks_variant(n, k, p, no_pool=True), "*before*"),
        (lambda n, k, p: blocks_variant(n, k, p, jump=False), "every later layer"),
    ],
)
def test_blocks_mistakes_get_their_hints(wrong, hint):
    result = check_blocks_to_see(wrong)
    assert not result
    assert hint in result.message, result.message


def test_blocks_float_answer_is_rejected_clearly():
    result = check_blocks_to_see(lambda n, k, p: float(blocks(n, k, p)))
    assert not result and "expected the integer" in result.message


# ----------------------------------------------------------------------------------
# 3.2 im2col of a tiny input by hand
# ----------------------------------------------------------------------------------

RIGHT = [[0, 0, 0, 5], [0, 0, 4, 6], [0, 2, 0, 8], [1, 3, 7, 9]]


def test_cols_by_hand_correct_answers_pass():
    assert check_cols_by_hand(lambda: RIGHT)
    assert check_cols_by_hand(lambda: np.array(RIGHT, dtype=np.float32))
    x = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    assert check_cols_by_hand(lambda: F.im2col(x, 2, stride=2, padding=1))


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (np.array(RIGHT).T, "you have the transpose"),
        (np.array(RIGHT)[[0, 2, 1, 3]], "the taps go row by row"),
        (np.array(RIGHT)[:, [0, 2, 1, 3]], "the output positions go row by row"),
        (
            [[1, 3, 7, 9], [2, 0, 8, 0], [4, 6, 0, 0], [5, 0, 0, 0]],
            "on *each* side",
        ),
        ([[1], [2], [4], [5]], "without padding"),
        (np.zeros((4, 16)), "16 columns is stride 1"),
        (np.zeros((3, 3)), "a 4×4 matrix"),
        (np.ones((4, 4)), "pad first"),
    ],
)
def test_cols_by_hand_mistakes_get_their_hints(wrong, hint):
    result = check_cols_by_hand(lambda: wrong)
    assert not result
    assert hint in result.message, result.message


def test_cols_by_hand_survives_junk():
    assert "expected a 4×4 array" in check_cols_by_hand(lambda: "cols").message
    result = check_cols_by_hand(lambda: 1 / 0)
    assert not result and "ZeroDivisionError" in result.message


# ----------------------------------------------------------------------------------
# 3.3 Find the offset bug
# ----------------------------------------------------------------------------------


def loops(x, w, stride=1, padding=0, dilation=1, mistake=None):
    s, p, d = stride, padding, dilation
    N, C, H, W = x.shape
    F_, _, kH, kW = w.shape
    Ho = (H + 2 * p - d * (kH - 1) - 1) // s + 1
    Wo = (W + 2 * p - d * (kW - 1) - 1) // s + 1
    out = np.zeros((N, F_, Ho, Wo))
    for n in range(N):
        for f in range(F_):
            for oh in range(Ho):
                for ow in range(Wo):
                    for c in range(C):
                        for i in range(kH):
                            for j in range(kW):
                                r, q = oh * s + i * d - p, ow * s + j * d - p
                                if mistake == "planted":
                                    r, q = (oh + i * d) * s - p, (ow + j * d) * s - p
                                elif mistake == "no_dilation":
                                    r, q = oh * s + i - p, ow * s + j - p
                                elif mistake == "plus_padding":
                                    r, q = r + 2 * p, q + 2 * p
                                inside = 0 <= r < H and 0 <= q < W
                                if mistake == "wraps":
                                    inside = r < H and q < W
                                if inside:
                                    out[n, f, oh, ow] += x[n, c, r, q] * w[f, c, i, j]
    return out


def padded_windows(x, w, stride=1, padding=0, dilation=1):  # alternative solution
    s, d = stride, dilation
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    kH, kW = w.shape[2:]
    Ho = (xp.shape[2] - d * (kH - 1) - 1) // s + 1
    Wo = (xp.shape[3] - d * (kW - 1) - 1) // s + 1
    out = 0
    for i in range(kH):
        for j in range(kW):
            patch = xp[:, :, i * d :: s, j * d :: s][:, :, :Ho, :Wo]
            out = out + np.einsum("nchw,fc->nfhw", patch, w[:, :, i, j])
    return out


def test_conv2d_fixed_correct_solutions_pass():
    assert check_conv2d_fixed(loops)
    assert check_conv2d_fixed(padded_windows)
    assert check_conv2d_fixed(
        lambda x, w, stride=1, padding=0, dilation=1: F.conv2d(
            x.astype(np.float32), w.astype(np.float32), None, stride, padding, dilation
        )
    )


@pytest.mark.parametrize(
    "mistake, hint",
    [
        ("planted", "still the planted bug"),
        ("no_dilation", "d pixels apart"),
        ("plus_padding", "subtract p"),
        ("wraps", "wrap around"),
    ],
)
def test_conv2d_fixed_mistakes_get_their_hints(mistake, hint):
    def wrong(x, w, stride=1, padding=0, dilation=1):
        return loops(x, w, stride, padding, dilation, mistake=mistake)

    result = check_conv2d_fixed(wrong)
    assert not result
    assert hint in result.message, result.message


def test_conv2d_fixed_other_mistakes_get_the_general_hint():
    def flipped(x, w, stride=1, padding=0, dilation=1):
        return loops(x, w[:, :, ::-1, ::-1], stride, padding, dilation)

    result = check_conv2d_fixed(flipped)
    assert not result and "output by output" in result.message


def test_conv2d_fixed_survives_junk():
    result = check_conv2d_fixed(lambda x, w, **kw: x[10])
    assert not result and "IndexError" in result.message
    result = check_conv2d_fixed(lambda x, w, **kw: np.zeros(3))
    assert not result and "wrong shape" in result.message
