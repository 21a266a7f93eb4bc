"""The Chapter 4 checkers accept a correct answer and reject the usual wrong ones."""

import numpy as np
import pytest

from cnnbook.exercises import check_max_pool_single, check_pool_output_shape, check_relu

# --- pool_output_shape ----------------------------------------------------------------


def shape_right(shape, kernel_size, stride=None, padding=0):
    n, c, h, w = shape
    s = kernel_size if stride is None else stride
    return (
        n,
        c,
        (h + 2 * padding - kernel_size) // s + 1,
        (w + 2 * padding - kernel_size) // s + 1,
    )


def shape_stride_one(shape, kernel_size, stride=None, padding=0):
    n, c, h, w = shape
    s = (
        1 if stride is None else stride
    )  # forgets PyTorch's default stride = kernel size
    return (
        n,
        c,
        (h + 2 * padding - kernel_size) // s + 1,
        (w + 2 * padding - kernel_size) // s + 1,
    )


def shape_one_sided_padding(shape, kernel_size, stride=None, padding=0):
    n, c, h, w = shape
    s = kernel_size if stride is None else stride
    return (
        n,
        c,
        (h + padding - kernel_size) // s + 1,
        (w + padding - kernel_size) // s + 1,
    )


def shape_ceil(shape, kernel_size, stride=None, padding=0):
    n, c, h, w = shape
    s = kernel_size if stride is None else stride
    return (
        n,
        c,
        -(-(h + 2 * padding - kernel_size) // s) + 1,
        -(-(w + 2 * padding - kernel_size) // s) + 1,
    )


def shape_true_division(shape, kernel_size, stride=None, padding=0):
    n, c, h, w = shape
    s = kernel_size if stride is None else stride
    return (
        n,
        c,
        (h + 2 * padding - kernel_size) / s + 1,
        (w + 2 * padding - kernel_size) / s + 1,
    )


def test_pool_output_shape_accepts_correct():
    result = check_pool_output_shape(shape_right)
    assert result, result.message
    assert result.message.startswith("✓")


@pytest.mark.parametrize(
    "wrong",
    [shape_stride_one, shape_one_sided_padding, shape_ceil, shape_true_division],
)
def test_pool_output_shape_rejects(wrong):
    result = check_pool_output_shape(wrong)
    assert not result
    assert result.message.startswith("✗")


# --- max_pool_single ------------------------------------------------------------------


def pool_loops(x, k, stride):
    h, w = x.shape
    ho, wo = (h - k) // stride + 1, (w - k) // stride + 1
    out = np.full((ho, wo), -np.inf)
    for i in range(ho):
        for j in range(wo):
            for di in range(k):
                for dj in range(k):
                    out[i, j] = max(out[i, j], x[i * stride + di, j * stride + dj])
    return out


def pool_views(x, k, stride):
    h, w = x.shape
    ho, wo = (h - k) // stride + 1, (w - k) // stride + 1
    views = [
        x[
            di : di + stride * (ho - 1) + 1 : stride,
            dj : dj + stride * (wo - 1) + 1 : stride,
        ]
        for di in range(k)
        for dj in range(k)
    ]
    return np.maximum.reduce(views)


def pool_zero_start(x, k, stride):
    h, w = x.shape
    ho, wo = (h - k) // stride + 1, (w - k) // stride + 1
    out = np.zeros(
        (ho, wo)
    )  # a running maximum that starts at 0: wrong for negative windows
    for i in range(ho):
        for j in range(wo):
            for di in range(k):
                for dj in range(k):
                    out[i, j] = max(out[i, j], x[i * stride + di, j * stride + dj])
    return out


def pool_ignores_stride(x, k, stride):
    return pool_loops(x, k, k)


def pool_reshape(x, k, stride):
    h, w = x.shape  # only right when k == stride and k divides H and W
    return x.reshape(h // k, k, w // k, k).max(axis=(1, 3))


def pool_mean(x, k, stride):
    h, w = x.shape
    ho, wo = (h - k) // stride + 1, (w - k) // stride + 1
    return np.array(
        [
            [
                x[i * stride : i * stride + k, j * stride : j * stride + k].mean()
                for j in range(wo)
            ]
            for i in range(ho)
        ]
    )


@pytest.mark.parametrize("right", [pool_loops, pool_views])
def test_max_pool_single_accepts_correct(right):
    result = check_max_pool_single(right)
    assert result, result.message


@pytest.mark.parametrize(
    "wrong", [pool_zero_start, pool_ignores_stride, pool_reshape, pool_mean]
)
def test_max_pool_single_rejects(wrong):
    result = check_max_pool_single(wrong)
    assert not result
    assert result.message.startswith("✗")


def test_max_pool_single_hint_for_zero_start():
    assert "-inf" in check_max_pool_single(pool_zero_start).message


# --- relu -----------------------------------------------------------------------------


def relu_right(x):
    return np.maximum(x, 0)


def relu_where(x):
    return np.where(x > 0, x, 0).astype(x.dtype)


def relu_in_place(x):
    x[x < 0] = 0
    return x


def relu_abs(x):
    return np.abs(x)


def relu_float64(x):
    return np.maximum(x, 0).astype(np.float64)


def relu_leaky(x):
    return np.where(x > 0, x, 0.01 * x)


@pytest.mark.parametrize("right", [relu_right, relu_where])
def test_relu_accepts_correct(right):
    result = check_relu(right)
    assert result, result.message


@pytest.mark.parametrize("wrong", [relu_in_place, relu_abs, relu_float64, relu_leaky])
def test_relu_rejects(wrong):
    result = check_relu(wrong)
    assert not result
    assert result.message.startswith("✗")
