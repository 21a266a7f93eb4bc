"""Properties of pooling, ReLU, softmax and the fully connected layer (Chapters 4 and
5).

Hypothesis draws small shapes, kernels, strides and paddings; every property is one the
chapters state and rely on (pooling and ReLU commute, softmax ignores a constant per
row, ...).
"""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cnnbook import functional as F
from cnnbook import naive


@st.composite
def pool_setups(draw, max_padding=True):
    """(x, kernel_size, stride, padding) with a valid, small pooling problem, float64
    NCHW."""
    k = draw(st.integers(1, 3))
    s = draw(st.integers(1, 3))
    p = draw(st.integers(0, k // 2)) if max_padding else 0
    h = draw(st.integers(max(1, k - 2 * p), 7))
    w = draw(st.integers(max(1, k - 2 * p), 7))
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2**32 - 1))
    x = np.random.default_rng(seed).standard_normal((n, c, h, w))
    if draw(st.booleans()):
        x = np.round(x)  # many ties and exact zeros
    return x, k, s, p


def _windows(x, k, s, p):
    """The pooling windows as an array (N, C, Ho, Wo, k, k), padded with -inf (a test
    reference)."""
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=-np.inf)
    win = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(2, 3))
    return win[:, :, ::s, ::s]


# --- max pooling ----------------------------------------------------------------------


@given(pool_setups())
def test_max_pool_matches_window_reference(setup):
    x, k, s, p = setup
    expected = _windows(x, k, s, p).max(axis=(4, 5))
    got = F.max_pool2d(x, k, stride=s, padding=p)
    assert got.shape == expected.shape
    assert got.shape[2:] == (
        F.conv_output_size(x.shape[2], k, s, p),
        F.conv_output_size(x.shape[3], k, s, p),
    )
    np.testing.assert_array_equal(got, expected)


@given(pool_setups())
def test_max_pool_naive_equals_fast(setup):
    x, k, s, p = setup
    np.testing.assert_allclose(
        naive.max_pool2d(x, k, stride=s, padding=p),
        F.max_pool2d(x, k, stride=s, padding=p),
        rtol=0,
        atol=1e-10,
    )


@given(pool_setups())
def test_max_pool_and_relu_commute(setup):
    # Both are monotone and max pooling only selects values, so the two orders agree
    # exactly.
    x, k, s, p = setup
    pooled_then_relu = F.relu(F.max_pool2d(x, k, stride=s, padding=p))
    relu_then_pooled = F.max_pool2d(F.relu(x), k, stride=s, padding=p)
    np.testing.assert_array_equal(pooled_then_relu, relu_then_pooled)


@given(pool_setups(), st.floats(0.1, 10.0), st.floats(-5.0, 5.0))
def test_max_pool_commutes_with_increasing_affine_maps(setup, a, b):
    x, k, s, p = setup
    np.testing.assert_allclose(
        F.max_pool2d(a * x + b, k, stride=s, padding=p),
        a * F.max_pool2d(x, k, stride=s, padding=p) + b,
        rtol=1e-12,
        atol=1e-12,
    )


@given(pool_setups())
def test_max_pool_outputs_are_input_values_and_finite(setup):
    # Padding is at most half the window, so every window holds a real value: never
    # -inf.
    x, k, s, p = setup
    out = F.max_pool2d(x, k, stride=s, padding=p)
    assert np.isfinite(out).all()
    assert np.isin(out, x).all()


@given(pool_setups(max_padding=False))
def test_max_pool_at_least_avg_pool(setup):
    x, k, s, _ = setup
    assert (F.max_pool2d(x, k, stride=s) >= F.avg_pool2d(x, k, stride=s) - 1e-12).all()


@given(pool_setups(max_padding=False))
def test_avg_pool_matches_window_mean_and_naive(setup):
    x, k, s, _ = setup
    expected = _windows(x, k, s, 0).mean(axis=(4, 5))
    np.testing.assert_allclose(
        F.avg_pool2d(x, k, stride=s), expected, rtol=1e-12, atol=1e-12
    )
    np.testing.assert_allclose(
        naive.avg_pool2d(x, k, stride=s), expected, rtol=1e-12, atol=1e-12
    )


@given(pool_setups(max_padding=False))
def test_default_stride_is_kernel_size(setup):
    x, k, _, _ = setup
    np.testing.assert_array_equal(F.max_pool2d(x, k), F.max_pool2d(x, k, stride=k))


def test_max_pool_kernel_one_is_identity():
    x = np.random.default_rng(0).standard_normal((2, 3, 5, 4))
    np.testing.assert_array_equal(F.max_pool2d(x, 1), x)


def test_max_pool_is_invariant_to_shifts_inside_a_window():
    # A single bright pixel moved within its 2x2 window gives the same pooled map.
    maps = []
    for di in range(2):
        for dj in range(2):
            x = np.zeros((1, 1, 6, 6))
            x[0, 0, 2 + di, 2 + dj] = 1.0
            maps.append(F.max_pool2d(x, 2))
    for m in maps[1:]:
        np.testing.assert_array_equal(m, maps[0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pooling_keeps_dtype(dtype):
    x = np.random.default_rng(1).standard_normal((1, 2, 6, 6)).astype(dtype)
    assert F.max_pool2d(x, 2).dtype == dtype
    assert F.avg_pool2d(x, 2).dtype == dtype
    assert F.relu(x).dtype == dtype


def test_pooling_rejects_bad_input():
    x = np.zeros((1, 1, 4, 4))
    with pytest.raises(TypeError):
        F.max_pool2d(np.zeros((1, 1, 4, 4), dtype=np.int64), 2)
    with pytest.raises(ValueError):
        F.max_pool2d(np.zeros((4, 4)), 2)  # not NCHW
    with pytest.raises(ValueError):
        F.max_pool2d(x, 3, padding=2)  # more padding than half the window
    with pytest.raises(ValueError):
        F.max_pool2d(x, 2, stride=0)
    with pytest.raises(ValueError):
        F.max_pool2d(x, 5)  # window larger than the input


# --- ReLU -----------------------------------------------------------------------------


@given(st.integers(0, 2**32 - 1))
def test_relu_properties(seed):
    x = np.random.default_rng(seed).standard_normal((2, 3, 4))
    r = F.relu(x)
    np.testing.assert_array_equal(r, np.maximum(x, 0))
    np.testing.assert_array_equal(naive.relu(x), r)
    np.testing.assert_array_equal(F.relu(r), r)  # idempotent
    np.testing.assert_allclose(r - F.relu(-x), x)  # x = relu(x) - relu(-x)
    assert not np.shares_memory(r, x)


# --- softmax, log-softmax, cross-entropy ----------------------------------------------


@st.composite
def logits(draw, scale=None):
    n, k = draw(st.integers(1, 4)), draw(st.integers(2, 6))
    scale = draw(st.sampled_from([1.0, 30.0, 1e3, 1e4])) if scale is None else scale
    seed = draw(st.integers(0, 2**32 - 1))
    return np.random.default_rng(seed).standard_normal((n, k)) * scale


def _log_softmax64(z):
    z = np.asarray(z, dtype=np.float64)
    return z - np.logaddexp.reduce(z, axis=-1, keepdims=True)


@given(logits(), st.sampled_from([np.float32, np.float64]))
def test_softmax_is_a_finite_distribution(z, dtype):
    z = z.astype(dtype)
    p = F.softmax(z)
    assert p.dtype == dtype
    assert np.isfinite(p).all()
    assert (p >= 0).all() and (p <= 1).all()
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, rtol=0, atol=tol)
    np.testing.assert_allclose(p, np.exp(_log_softmax64(z)), rtol=tol, atol=tol)


@given(logits(), st.integers(0, 2**32 - 1))
def test_softmax_invariant_to_a_constant_per_row(z, seed):
    c = np.random.default_rng(seed).uniform(-1e3, 1e3, size=(z.shape[0], 1))
    np.testing.assert_allclose(F.softmax(z + c), F.softmax(z), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(
        F.log_softmax(z + c), F.log_softmax(z), rtol=1e-9, atol=1e-6
    )


@given(logits())
def test_softmax_naive_equals_fast(z):
    np.testing.assert_allclose(naive.softmax(z), F.softmax(z), rtol=0, atol=1e-10)


@given(logits(), st.sampled_from([np.float32, np.float64]))
def test_log_softmax_is_log_of_softmax_where_finite(z, dtype):
    z = z.astype(dtype)
    logp = F.log_softmax(z)
    assert logp.dtype == dtype
    assert np.isfinite(logp).all()  # even where softmax itself rounds to 0
    assert (logp <= 0).all()
    p = F.softmax(z)
    ok = p > np.finfo(dtype).tiny
    tol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(logp[ok], np.log(p[ok]), rtol=tol, atol=tol)
    # Logits of size |z| carry a rounding error of about eps·|z| already.
    atol = 8 * np.finfo(dtype).eps * max(1.0, float(np.abs(z).max()))
    np.testing.assert_allclose(logp, _log_softmax64(z), rtol=tol, atol=atol)


@given(logits(), st.sampled_from([np.float32, np.float64]), st.integers(0, 2**32 - 1))
def test_cross_entropy_is_mean_negative_log_likelihood(z, dtype, seed):
    z = z.astype(dtype)
    t = np.random.default_rng(seed).integers(0, z.shape[1], size=z.shape[0])
    loss = F.cross_entropy(z, t)
    expected = -_log_softmax64(z)[np.arange(len(t)), t].mean()
    assert math.isfinite(float(loss)) and float(loss) >= 0
    np.testing.assert_allclose(
        float(loss), expected, rtol=1e-5 if dtype == np.float32 else 1e-10, atol=1e-6
    )


@pytest.mark.parametrize("k", [2, 10, 100])
def test_cross_entropy_of_equal_logits_is_log_k(k):
    z = np.zeros((5, k))
    assert float(F.cross_entropy(z, np.arange(5) % k)) == pytest.approx(
        math.log(k), rel=1e-12
    )


def test_softmax_extreme_logits_exact():
    z = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]])
    for dtype in (np.float32, np.float64):
        p = F.softmax(z.astype(dtype))
        np.testing.assert_allclose(p, [[1, 0, 0], [1 / 3, 1 / 3, 1 / 3]], rtol=1e-6)
        logp = F.log_softmax(z.astype(dtype))
        np.testing.assert_allclose(
            logp, [[0, -2e4, -1e4], [-math.log(3)] * 3], rtol=1e-6, atol=1e-5
        )


# --- fully connected layer ------------------------------------------------------------


@given(
    st.integers(1, 4),
    st.integers(1, 6),
    st.integers(1, 5),
    st.integers(0, 2**32 - 1),
    st.booleans(),
)
def test_linear_is_x_times_w_transposed_plus_b(n, fan_in, fan_out, seed, with_bias):
    rng = np.random.default_rng(seed)
    x, W = rng.standard_normal((n, fan_in)), rng.standard_normal((fan_out, fan_in))
    b = rng.standard_normal(fan_out) if with_bias else None
    expected = x @ W.T + (b if with_bias else 0.0)
    got = F.linear(x, W, b)
    assert got.shape == (n, fan_out)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(naive.linear(x, W, b), got, rtol=0, atol=1e-10)


def test_linear_rejects_mismatched_shapes():
    with pytest.raises(ValueError):
        F.linear(np.zeros((2, 3)), np.zeros((4, 5)))  # in_features 3 vs 5
    with pytest.raises(ValueError):
        F.linear(
            np.zeros((2, 3)), np.zeros((4, 3)), np.zeros(3)
        )  # bias must have out_features


# --- PyTorch as a reference, when it is installed -------------------------------------


@given(pool_setups())
def test_pooling_matches_torch(setup):
    torch = pytest.importorskip("torch")
    x, k, s, p = setup
    xt = torch.from_numpy(x)
    np.testing.assert_allclose(
        F.max_pool2d(x, k, stride=s, padding=p),
        torch.nn.functional.max_pool2d(xt, k, stride=s, padding=p).numpy(),
        rtol=0,
        atol=0,
    )
    np.testing.assert_allclose(
        F.avg_pool2d(x, k, stride=s, padding=p),
        torch.nn.functional.avg_pool2d(xt, k, stride=s, padding=p).numpy(),
        rtol=1e-12,
        atol=1e-12,
    )


@given(logits())
def test_softmax_matches_torch(z):
    torch = pytest.importorskip("torch")
    zt = torch.from_numpy(z)
    np.testing.assert_allclose(
        F.softmax(z), torch.softmax(zt, dim=-1).numpy(), rtol=1e-10, atol=1e-12
    )
    np.testing.assert_allclose(
        F.log_softmax(z), torch.log_softmax(zt, dim=-1).numpy(), rtol=1e-10, atol=1e-9
    )
