"""The Chapter 5 checkers accept a correct answer and reject the usual wrong ones."""

import numpy as np
import pytest

from cnnbook.exercises import check_cross_entropy, check_linear_size, check_softmax

# --- softmax --------------------------------------------------------------------------


def softmax_right(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def softmax_naive(z):
    e = np.exp(z)  # overflows for large logits
    return e / e.sum(axis=-1, keepdims=True)


def softmax_global_max(z):
    e = np.exp(
        z - z.max()
    )  # one maximum for the whole batch: some rows underflow to 0/0
    return e / e.sum(axis=-1, keepdims=True)


def softmax_no_keepdims(z):
    e = np.exp(
        z - z.max(axis=-1)
    )  # broadcasts along the wrong axis (silently, for square z)
    return e / e.sum(axis=-1, keepdims=True)


def softmax_wrong_axis(z):
    e = np.exp(z - z.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


@pytest.mark.parametrize("right", [softmax_right])
def test_softmax_accepts_correct(right):
    result = check_softmax(right)
    assert result, result.message


@pytest.mark.parametrize(
    "wrong",
    [softmax_naive, softmax_global_max, softmax_no_keepdims, softmax_wrong_axis],
)
def test_softmax_rejects(wrong):
    with np.errstate(all="ignore"):
        result = check_softmax(wrong)
    assert not result
    assert result.message.startswith("✗")


# --- cross_entropy --------------------------------------------------------------------


def ce_right(logits, targets):
    m = logits.max(axis=-1, keepdims=True)
    logp = logits - m - np.log(np.exp(logits - m).sum(axis=-1, keepdims=True))
    return float(-logp[np.arange(len(targets)), targets].mean())


def ce_logaddexp(logits, targets):
    logp = logits - np.logaddexp.reduce(logits, axis=-1, keepdims=True)
    return float(-np.take_along_axis(logp, targets[:, None], axis=1).mean())


def ce_log_of_softmax(logits, targets):
    p = softmax_right(logits)  # stable softmax, but log(0) = -inf for huge logit gaps
    return float(-np.log(p[np.arange(len(targets)), targets]).mean())


def ce_sum(logits, targets):
    return ce_right(logits, targets) * len(targets)


def ce_wrong_index(logits, targets):
    m = logits.max(axis=-1, keepdims=True)
    logp = logits - m - np.log(np.exp(logits - m).sum(axis=-1, keepdims=True))
    return float(-logp[:, targets].mean())  # a (N, N) block, not one entry per row


def ce_forgets_logsumexp(logits, targets):
    m = logits.max(axis=-1, keepdims=True)
    return float(-(logits - m)[np.arange(len(targets)), targets].mean())


@pytest.mark.parametrize("right", [ce_right, ce_logaddexp])
def test_cross_entropy_accepts_correct(right):
    result = check_cross_entropy(right)
    assert result, result.message


@pytest.mark.parametrize(
    "wrong", [ce_log_of_softmax, ce_sum, ce_wrong_index, ce_forgets_logsumexp]
)
def test_cross_entropy_rejects(wrong):
    with np.errstate(all="ignore"):
        result = check_cross_entropy(wrong)
    assert not result
    assert result.message.startswith("✗")


# --- linear_size ----------------------------------------------------------------------


def size_right(feature_shape, out_features, bias=True):
    c, h, w = feature_shape
    n_in = c * h * w
    return n_in, out_features * n_in + (out_features if bias else 0)


def size_forgets_bias(feature_shape, out_features, bias=True):
    c, h, w = feature_shape
    return c * h * w, out_features * c * h * w


def size_forgets_channels(feature_shape, out_features, bias=True):
    c, h, w = feature_shape
    n_in = h * w
    return n_in, out_features * n_in + (out_features if bias else 0)


def size_bias_per_input(feature_shape, out_features, bias=True):
    c, h, w = feature_shape
    n_in = c * h * w
    return n_in, out_features * n_in + (n_in if bias else 0)


def size_float(feature_shape, out_features, bias=True):
    n_in, n = size_right(feature_shape, out_features, bias)
    return float(n_in), float(n)


def test_linear_size_accepts_correct():
    result = check_linear_size(size_right)
    assert result, result.message


@pytest.mark.parametrize(
    "wrong", [size_forgets_bias, size_forgets_channels, size_bias_per_input, size_float]
)
def test_linear_size_rejects(wrong):
    result = check_linear_size(wrong)
    assert not result
    assert result.message.startswith("✗")
