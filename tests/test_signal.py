"""cnnbook.signal: 1-D convolution and correlation vs NumPy and SciPy, and errors."""

import importlib.util
import itertools

import numpy as np
import pytest
import scipy.signal
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from cnnbook import signal as sig
from cnnbook.signal import conv1d, correlate1d, output_length

MODES = ["full", "same", "valid"]
EXACT_METHODS = ["loops", "direct"]
HAVE_FFT = importlib.util.find_spec("cnnbook.fft") is not None
ALL_METHODS = EXACT_METHODS + (["fft", "auto"] if HAVE_FFT else [])

# Every (n, k) with 1 <= n, k <= 6 (length 1, equal lengths, kernel longer than the
# signal, odd and even "same" centring), plus a few longer pairs.
LENGTHS = list(itertools.product(range(1, 7), repeat=2)) + [
    (1, 17),
    (17, 1),
    (23, 8),
    (8, 23),
    (40, 11),
]


def _pair(n, k, seed, kind="float"):
    rng = np.random.default_rng(seed)
    if kind == "int":
        return rng.integers(-9, 10, n), rng.integers(-9, 10, k)
    x, w = rng.normal(size=n), rng.normal(size=k)
    if kind == "complex":
        x, w = x + 1j * rng.normal(size=n), w - 1j * rng.normal(size=k)
    return x, w


def _close(got, expected, method):
    # FFT round-off scales with the size of the terms, not of each output.
    atol = 1e-9 * (1 + np.abs(expected).max()) if method in ("fft", "auto") else 1e-12
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=atol)


# --------------------------------------------------------------------------- references


@pytest.mark.parametrize("method", ALL_METHODS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", ["float", "complex"])
def test_conv1d_equals_numpy_convolve(method, mode, kind):
    for seed, (n, k) in enumerate(LENGTHS):
        x, w = _pair(n, k, seed, kind)
        got = conv1d(x, w, mode, method=method)
        expected = np.convolve(x, w, mode)
        assert got.shape == expected.shape, (n, k, mode)
        _close(got, expected, method)


@pytest.mark.parametrize("method", ALL_METHODS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", ["float", "complex"])
def test_correlate1d_equals_numpy_correlate(method, mode, kind):
    for seed, (n, k) in enumerate(LENGTHS):
        x, w = _pair(n, k, seed, kind)
        got = correlate1d(x, w, mode, method=method)
        expected = np.correlate(x, w, mode)
        assert got.shape == expected.shape, (n, k, mode)
        _close(got, expected, method)


@pytest.mark.parametrize("method", EXACT_METHODS + (["auto"] if HAVE_FFT else []))
@pytest.mark.parametrize("mode", MODES)
def test_integers_are_exact(method, mode):
    for seed, (n, k) in enumerate(LENGTHS):
        x, w = _pair(n, k, seed, "int")
        for ours, ref in [(conv1d, np.convolve), (correlate1d, np.correlate)]:
            got, expected = ours(x, w, mode, method=method), ref(x, w, mode)
            assert got.dtype == expected.dtype
            np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("method", EXACT_METHODS)
@pytest.mark.parametrize("mode", MODES)
def test_matches_scipy_where_semantics_agree(method, mode):
    # scipy's "same" keeps the length of the first input, NumPy's the longer one: they
    # agree when the signal is at least as long as the kernel.
    for seed, (n, k) in enumerate(LENGTHS):
        if mode == "same" and n < k:
            continue
        x, w = _pair(n, k, seed)
        _close(
            conv1d(x, w, mode, method),
            scipy.signal.convolve(x, w, mode, method="direct"),
            method,
        )
        _close(
            correlate1d(x, w, mode, method),
            scipy.signal.correlate(x, w, mode, method="direct"),
            method,
        )


def test_float32_stays_float32_and_mixed_dtypes_promote():
    x = np.arange(5, dtype=np.float32)
    w = np.ones(3, dtype=np.float32)
    assert conv1d(x, w).dtype == np.float32
    assert conv1d(x, w.astype(np.float64)).dtype == np.float64
    assert conv1d(x.astype(int), w).dtype == np.float64
    assert conv1d([True, False, True], [1, 1]).tolist() == [1, 1, 1, 1]


def test_lists_accepted_and_inputs_not_modified():
    x, w = np.array([1.0, 2.0, 3.0]), np.array([0.0, 1.0, 0.5])
    x0, w0 = x.copy(), w.copy()
    for method in ALL_METHODS:
        conv1d(x, w, method=method)
        correlate1d(x, w, method=method)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(w, w0)
    assert conv1d([1, 2, 3], [1, 1]).tolist() == [1, 3, 5, 3]


def test_auto_uses_direct_for_integers_and_agrees_for_floats():
    pytest.importorskip("cnnbook.fft")
    x, w = _pair(300, 150, 0)
    _close(conv1d(x, w, method="auto"), np.convolve(x, w), "auto")
    xi, wi = _pair(300, 150, 1, "int")
    np.testing.assert_array_equal(conv1d(xi, wi, method="auto"), np.convolve(xi, wi))


# ----------------------------------------------------------------------- output lengths


def test_output_length_over_a_grid():
    for n, k in itertools.product(range(1, 13), repeat=2):
        for mode in MODES:
            assert output_length(n, k, mode) == len(
                np.convolve(np.ones(n), np.ones(k), mode)
            )
    assert output_length(10, 3, "full") == 12
    assert output_length(10, 3, "same") == 10
    assert output_length(10, 3, "valid") == 8
    assert output_length(3, 10, "valid") == 8


# --------------------------------------------------------------------------- properties

small = st.integers(min_value=1, max_value=12)
values = st.floats(min_value=-10, max_value=10, allow_nan=False, allow_infinity=False)


def arrays(length=small):
    return length.flatmap(lambda n: hnp.arrays(np.float64, n, elements=values))


def int_arrays():
    return small.flatmap(
        lambda n: hnp.arrays(np.int64, n, elements=st.integers(-50, 50))
    )


@given(x=arrays(), w=arrays(), mode=st.sampled_from(MODES))
def test_loops_equal_direct(x, w, mode):
    np.testing.assert_allclose(
        conv1d(x, w, mode, "loops"), conv1d(x, w, mode, "direct"), atol=1e-9
    )
    np.testing.assert_allclose(
        correlate1d(x, w, mode, "loops"), correlate1d(x, w, mode, "direct"), atol=1e-9
    )


@given(x=int_arrays(), w=int_arrays())
def test_commutative_exactly_on_integers(x, w):
    np.testing.assert_array_equal(conv1d(x, w), conv1d(w, x))


@given(x=int_arrays(), w1=int_arrays(), w2=int_arrays())
def test_associative_exactly_on_integers(x, w1, w2):
    np.testing.assert_array_equal(conv1d(conv1d(x, w1), w2), conv1d(x, conv1d(w1, w2)))


@given(data=st.data(), w=arrays(), a=values, b=values)
def test_linear(data, w, a, b):
    n = data.draw(small)
    x1 = data.draw(hnp.arrays(np.float64, n, elements=values))
    x2 = data.draw(hnp.arrays(np.float64, n, elements=values))
    np.testing.assert_allclose(
        conv1d(a * x1 + b * x2, w), a * conv1d(x1, w) + b * conv1d(x2, w), atol=1e-8
    )


@given(x=arrays(), w=arrays(), s=st.integers(min_value=0, max_value=5))
def test_shift_equivariant(x, w, s):
    # Delaying the input by s samples delays the full output by s samples.
    shifted = np.concatenate([np.zeros(s), x])
    np.testing.assert_allclose(conv1d(shifted, w)[s:], conv1d(x, w), atol=1e-12)
    np.testing.assert_array_equal(conv1d(shifted, w)[:s], np.zeros(s))


@given(x=arrays(), k=small)
def test_identity_kernel(x, k):
    if k <= len(x):  # "same" keeps len(x) only when the kernel is not longer
        np.testing.assert_array_equal(conv1d(x, sig.identity(k), "same"), x)
    np.testing.assert_array_equal(conv1d(x, sig.identity(1)), x)


@given(x=arrays(), w=arrays())
def test_sum_of_full_output_is_product_of_sums(x, w):
    np.testing.assert_allclose(
        conv1d(x, w).sum(), x.sum() * w.sum(), rtol=1e-9, atol=1e-8
    )


@given(x=arrays(), w=arrays(), mode=st.sampled_from(MODES))
def test_correlation_is_convolution_with_flipped_kernel_when_signal_is_longer(
    x, w, mode
):
    if len(x) >= len(w):
        np.testing.assert_allclose(
            correlate1d(x, w, mode), conv1d(x, w[::-1], mode), atol=1e-12
        )
    assert len(correlate1d(x, w, mode)) == output_length(len(x), len(w), mode)


# --------------------------------------------------------------------------- kernels


def test_box_and_gaussian():
    np.testing.assert_allclose(sig.box(4), [0.25] * 4)
    for sigma in [0.5, 1.0, 2.5, 6.0]:
        g = sig.gaussian(sigma)
        assert len(g) % 2 == 1 and g.argmax() == len(g) // 2
        np.testing.assert_allclose(g, g[::-1])
        assert g.sum() == pytest.approx(1.0)
    t = np.arange(-24, 25)
    assert (sig.gaussian(6.0) * t**2).sum() == pytest.approx(
        36.0, rel=1e-3
    )  # variance sigma**2
    assert len(sig.gaussian(1.0, radius=2)) == 5


def test_derivative_kernels_on_polynomials():
    t = np.arange(20.0)
    np.testing.assert_allclose(conv1d(3 * t + 1, sig.derivative(), "valid"), 3.0)
    np.testing.assert_allclose(conv1d(2 * t**2, sig.second_derivative(), "valid"), 4.0)
    np.testing.assert_allclose(correlate1d(3 * t, sig.derivative()[::-1], "valid"), 3.0)


def test_sharpen_keeps_constants_and_amplifies_detail():
    k = sig.sharpen(sigma=1.0, amount=1.5)
    assert k.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(conv1d(np.full(30, 2.0), k, "valid"), 2.0)
    spike = np.zeros(31)
    spike[15] = 1.0
    assert conv1d(spike, k, "same")[15] > 1.0


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("fn", [conv1d, correlate1d])
def test_errors_name_the_problem(fn):
    name = fn.__name__
    with pytest.raises(
        ValueError, match=r"x must be 1-D, got an array of shape \(2, 3\)"
    ):
        fn(np.ones((2, 3)), [1.0])
    with pytest.raises(ValueError, match=r"w must be 1-D, got an array of shape \(\)"):
        fn([1.0, 2.0], 3.0)
    with pytest.raises(ValueError, match=f"{name}: x is empty"):
        fn([], [1.0])
    with pytest.raises(ValueError, match="w is empty"):
        fn([1.0], np.array([]))
    with pytest.raises(
        ValueError, match="unknown mode 'circular'.*'full', 'same', 'valid'"
    ):
        fn([1.0], [1.0], "circular")
    with pytest.raises(ValueError, match="unknown method 'numba'"):
        fn([1.0], [1.0], method="numba")
    with pytest.raises(TypeError, match="x must hold numbers.*<U1"):
        fn(["a", "b"], [1.0])
    with pytest.raises(TypeError, match="w must hold numbers.*object"):
        fn([1.0], np.array([1, None], dtype=object))


def test_helper_errors():
    with pytest.raises(ValueError, match="k must be at least 1, got 0"):
        output_length(5, 0, "full")
    with pytest.raises(TypeError, match="n must be an integer"):
        output_length(2.5, 3, "full")
    with pytest.raises(ValueError, match="unknown mode 'Same'"):
        output_length(5, 3, "Same")
    with pytest.raises(ValueError, match="k must be at least 1"):
        sig.box(0)
    with pytest.raises(ValueError, match="sigma must be a positive number"):
        sig.gaussian(-1.0)
    with pytest.raises(ValueError, match="radius must be a non-negative integer"):
        sig.gaussian(1.0, radius=1.5)


def test_chapter_1_prints_a_sampling_effect_not_rounding():
    """Chapter 1 prints max|gaussian(3) * gaussian(4) - gaussian(5)| as ``5.1e-06``.

    That is the printing rule's "exact fact" case: the gap comes from sampling and
    truncating the Gaussians, about 1e10 times float64's rounding error, and its two
    printed digits would survive a relative change of 1e-9 either way, far more than any
    SIMD path or libm can cause.
    """
    twice = conv1d(sig.gaussian(3.0), sig.gaussian(4.0))
    once = sig.gaussian(5.0, radius=(len(twice) - 1) // 2)
    gap = float(np.abs(twice - once).max())
    assert {f"{gap * (1 + e):.1e}" for e in (-1e-9, 0.0, 1e-9)} == {"5.1e-06"}
