"""cnnbook.fft: DFT, radix-2 FFT, FFT convolution (1-D, overlap-add, 2-D), the chooser.

References: numpy.fft, numpy.convolve, scipy.signal.convolve2d, scipy.fft.next_fast_len.
Tolerances: float64 results equal the direct sum within 1e-10 (relative to the size of
the terms, see ``_scale``); float32 within 1e-4 of that scale (float32 eps is 1.2e-7;
the FFT's error grows like eps·log2(L) times the sum of |x_i w_j|, far below 1e-4 for
these sizes).
"""

import numpy as np
import pytest
import scipy.fft
import scipy.signal
from hypothesis import given
from hypothesis import strategies as st

from cnnbook import fft as F
from cnnbook.claims import below, claim

MODES = ("full", "same", "valid")


def _scale(x, w):
    """The size of the largest output's ingredients: |x| * |w| summed (bounds |y|)."""
    return float(np.convolve(np.abs(x), np.abs(w)).max())


def _assert_conv_close(got, x, w, mode, rtol):
    expected = np.convolve(x, w, mode)
    assert got.shape == expected.shape, (got.shape, expected.shape)
    err = np.max(np.abs(got.astype(np.complex128) - expected)) if got.size else 0.0
    assert err <= rtol * _scale(x, w), (
        f"max error {err:.3g} vs scale {_scale(x, w):.3g}"
    )


# -------------------------------------------------------------------------- DFT and FFT


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 17])
def test_dft_matches_numpy(n):
    rng = np.random.default_rng(n)
    x = rng.standard_normal(n) + 1j * rng.standard_normal(n)
    np.testing.assert_allclose(F.dft(x), np.fft.fft(x), atol=1e-10)
    np.testing.assert_allclose(
        F.dft_matrix(n) @ np.eye(n), np.fft.fft(np.eye(n), axis=0), atol=1e-10
    )


def test_dft_matrix_is_unitary_up_to_n():
    D = F.dft_matrix(16)
    np.testing.assert_allclose(D.conj().T @ D, 16 * np.eye(16), atol=1e-10)


@pytest.mark.parametrize("n", [1, 2, 4, 8, 64, 1024])
def test_fft_matches_numpy_for_powers_of_two(n):
    rng = np.random.default_rng(n)
    x = rng.standard_normal(n) + 1j * rng.standard_normal(n)
    np.testing.assert_allclose(F.fft(x), np.fft.fft(x), atol=1e-9)
    np.testing.assert_allclose(F.ifft(x), np.fft.ifft(x), atol=1e-9)
    np.testing.assert_allclose(F.ifft(F.fft(x)), x, atol=1e-12)
    assert F.fft(x.real).dtype == np.complex128


@pytest.mark.parametrize("n", [3, 6, 12, 1000])
def test_fft_rejects_other_lengths_clearly(n):
    for fn in (F.fft, F.ifft):
        with pytest.raises(ValueError, match=f"power-of-two length, got {n}"):
            fn(np.ones(n))


@pytest.mark.parametrize(
    "bad, error",
    [
        (np.ones((2, 4)), ValueError),
        (np.array([]), ValueError),
        (np.array(["a", "b"]), TypeError),
    ],
)
def test_transforms_validate_input(bad, error):
    for fn in (F.fft, F.dft, F.ifft):
        with pytest.raises(error):
            fn(bad)


def test_next_fast_len_is_5_smooth_and_minimal():
    for n in range(1, 3000):
        m = F.next_fast_len(n)
        assert m == scipy.fft.next_fast_len(n, real=True)
    for bad in (0, -3):
        with pytest.raises(ValueError):
            F.next_fast_len(bad)
    with pytest.raises(TypeError):
        F.next_fast_len(2.5)


# ---------------------------------------------------------------------- 1-D convolution


@pytest.mark.parametrize("mode", MODES)
def test_fft_conv1d_all_small_sizes(mode):
    """Every length pair up to 12: kernels longer than the signal and length 1 too."""
    rng = np.random.default_rng(0)
    for n in range(1, 13):
        for k in range(1, 13):
            x, w = rng.standard_normal(n), rng.standard_normal(k)
            _assert_conv_close(F.fft_conv1d(x, w, mode), x, w, mode, 1e-10)


@given(
    n=st.integers(1, 300),
    k=st.integers(1, 300),
    mode=st.sampled_from(MODES),
    seed=st.integers(0, 2**32 - 1),
)
def test_fft_conv1d_random_sizes_float64(n, k, mode, seed):
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal(n), rng.standard_normal(k)
    y = F.fft_conv1d(x, w, mode)
    assert y.dtype == np.float64
    _assert_conv_close(y, x, w, mode, 1e-10)


@given(
    n=st.integers(1, 300),
    k=st.integers(1, 300),
    mode=st.sampled_from(MODES),
    seed=st.integers(0, 2**32 - 1),
)
def test_fft_conv1d_random_sizes_float32(n, k, mode, seed):
    rng = np.random.default_rng(seed)
    x, w = (
        rng.standard_normal(n).astype(np.float32),
        rng.standard_normal(k).astype(np.float32),
    )
    y = F.fft_conv1d(x, w, mode)
    assert y.dtype == np.float32  # computed in single precision, like the inputs
    _assert_conv_close(y, x.astype(np.float64), w.astype(np.float64), mode, 1e-4)


@pytest.mark.parametrize("mode", MODES)
def test_fft_conv1d_complex_and_integer(mode):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(9) + 1j * rng.standard_normal(9)
    w = rng.standard_normal(4) - 2j * rng.standard_normal(4)
    _assert_conv_close(F.fft_conv1d(x, w, mode), x, w, mode, 1e-10)
    xi, wi = rng.integers(-50, 50, 20), rng.integers(-50, 50, 7)
    y = F.fft_conv1d(xi, wi, mode)
    assert y.dtype == np.convolve(xi, wi).dtype
    np.testing.assert_array_equal(y, np.convolve(xi, wi, mode))  # exact after rounding


def test_fft_conv1d_length_one_inputs():
    assert F.fft_conv1d([2.0], [3.0]).tolist() == [6.0]
    np.testing.assert_allclose(
        F.fft_conv1d([1.0, 2.0, 3.0], [2.0], "same"), [2.0, 4.0, 6.0]
    )
    np.testing.assert_allclose(
        F.fft_conv1d([2.0], [1.0, 2.0, 3.0], "valid"), [2.0, 4.0, 6.0]
    )


@pytest.mark.parametrize(
    "x, w, mode, error, text",
    [
        (
            np.ones((3, 3)),
            np.ones(3),
            "full",
            ValueError,
            r"x must be 1-D, got shape \(3, 3\)",
        ),
        (np.ones(3), np.ones((1, 2)), "full", ValueError, r"w must be 1-D"),
        (np.ones(0), np.ones(3), "full", ValueError, "empty"),
        (np.ones(3), np.ones(3), "circular", ValueError, "mode must be one of"),
        (np.array(["a"]), np.ones(3), "full", TypeError, "numeric"),
        (np.ones(3, dtype=bool), np.ones(3), "full", TypeError, "numeric"),
    ],
)
def test_fft_conv1d_errors(x, w, mode, error, text):
    with pytest.raises(error, match=text):
        F.fft_conv1d(x, w, mode)


# -------------------------------------------------------------------------- overlap-add


@given(
    n=st.integers(1, 200),
    k=st.integers(1, 60),
    block=st.integers(1, 250),
    mode=st.sampled_from(MODES),
    seed=st.integers(0, 2**32 - 1),
)
def test_overlap_add_equals_convolution_for_any_block(n, k, block, mode, seed):
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal(n), rng.standard_normal(k)
    _assert_conv_close(F.overlap_add(x, w, block, mode), x, w, mode, 1e-10)


def test_overlap_add_float32_and_block_errors():
    rng = np.random.default_rng(2)
    x, w = (
        rng.standard_normal(1000).astype(np.float32),
        rng.standard_normal(31).astype(np.float32),
    )
    y = F.overlap_add(x, w, 128)
    assert y.dtype == np.float32
    _assert_conv_close(y, x.astype(float), w.astype(float), "full", 1e-4)
    with pytest.raises(ValueError, match="block must be ≥ 1"):
        F.overlap_add(x, w, 0)
    with pytest.raises(TypeError, match="block must be an integer"):
        F.overlap_add(x, w, 12.0)


# ---------------------------------------------------------------------- 2-D convolution


@given(
    h=st.integers(1, 12),
    w_=st.integers(1, 12),
    kh=st.integers(1, 12),
    kw=st.integers(1, 12),
    mode=st.sampled_from(MODES),
    seed=st.integers(0, 2**32 - 1),
)
def test_fft_conv2d_matches_scipy(h, w_, kh, kw, mode, seed):
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal((h, w_)), rng.standard_normal((kh, kw))
    try:
        expected = scipy.signal.convolve2d(x, w, mode)
    except ValueError:  # 'valid' with neither input containing the other
        with pytest.raises(ValueError, match="at least as large"):
            F.fft_conv2d(x, w, mode)
        return
    got = F.fft_conv2d(x, w, mode)
    assert got.shape == expected.shape
    bound = float(scipy.signal.convolve2d(np.abs(x), np.abs(w)).max())
    assert np.max(np.abs(got - expected)) <= 1e-10 * bound


def test_fft_conv2d_float32_and_errors():
    rng = np.random.default_rng(3)
    x, w = rng.random((28, 28), dtype=np.float32), rng.random((5, 5), dtype=np.float32)
    y = F.fft_conv2d(x, w, "same")
    assert y.dtype == np.float32 and y.shape == (28, 28)
    np.testing.assert_allclose(
        y,
        scipy.signal.convolve2d(x.astype(float), w.astype(float), "same"),
        atol=1e-4 * float(w.sum()),
    )
    with pytest.raises(ValueError, match="must be 2-D"):
        F.fft_conv2d(np.ones(5), w)
    with pytest.raises(ValueError, match="mode must be one of"):
        F.fft_conv2d(x, w, "wrap")


def test_fft_conv2d_stack_of_images():
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((2, 3, 9, 7)), rng.standard_normal((4, 3))
    for mode in MODES:
        got = F.fft_conv2d(x, w, mode)
        for idx in np.ndindex(2, 3):
            np.testing.assert_allclose(
                got[idx], scipy.signal.convolve2d(x[idx], w, mode), atol=1e-10
            )
    with pytest.raises(ValueError, match="at least as large"):
        F.fft_conv2d(x, np.ones((10, 2)), "valid")


# -------------------------------------------------------------------- choosing a method


def test_choose_conv_method_answers_and_validates():
    assert F.choose_conv_method(1000, 3) == "direct"  # short kernels: direct, always
    assert (
        F.choose_conv_method(100_000, 5000) == "fft"
    )  # long kernels on long signals: FFT
    assert F.choose_conv_method(3, 1000) == F.choose_conv_method(1000, 3)  # symmetric
    with pytest.raises(ValueError):
        F.choose_conv_method(0, 3)
    with pytest.raises(TypeError):
        F.choose_conv_method(10.0, 3)


def test_cost_model_is_monotone_in_kernel_length():
    """Once FFT wins for a signal length, it wins for all longer kernels (K ≤ N)."""
    for n in (64, 1024, 16384):
        picks = [F.choose_conv_method(n, k) for k in range(1, n + 1, max(1, n // 256))]
        first = picks.index("fft") if "fft" in picks else len(picks)
        assert all(p == "fft" for p in picks[first:]), n


def test_fit_cost_model_recovers_known_coefficients():
    n = np.repeat([64, 256, 1024, 4096, 16384], 6)
    k = np.tile([2, 8, 32, 64, 128, 512], 5)
    true = {"direct": (3e-6, 1e-6, 2e-10), "fft": (2e-5, 1e-9)}
    fitted = F.fit_cost_model(
        n, k, F.conv_cost(n, k, "direct", true), F.conv_cost(n, k, "fft", true)
    )
    for m in true:
        np.testing.assert_allclose(fitted[m], true[m], rtol=0.05)
    with pytest.raises(ValueError):
        F.fit_cost_model(n, k, np.ones(3), np.ones(3))


# ----------------------------------------------------------------------- through conv1d


@given(
    n=st.integers(1, 400),
    k=st.integers(1, 400),
    mode=st.sampled_from(MODES),
    seed=st.integers(0, 2**32 - 1),
)
def test_conv1d_auto_equals_both_methods(n, k, mode, seed):
    signal = pytest.importorskip("cnnbook.signal")
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal(n), rng.standard_normal(k)
    direct = signal.conv1d(x, w, mode, method="direct")
    fft = signal.conv1d(x, w, mode, method="fft")
    auto = signal.conv1d(x, w, mode, method="auto")
    assert auto.shape == direct.shape == fft.shape
    bound = 1e-10 * _scale(x, w)
    assert np.max(np.abs(fft - direct)) <= bound
    assert np.max(np.abs(auto - direct)) <= bound


def test_conv1d_auto_uses_both_methods_on_large_inputs():
    signal = pytest.importorskip("cnnbook.signal")
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal(20000), rng.standard_normal(2000)
    assert F.choose_conv_method(len(x), len(w)) == "fft"
    _assert_conv_close(signal.conv1d(x, w, "same", method="auto"), x, w, "same", 1e-10)


# ------------------------------------------------ Chapter 2's printed claims (issue 12)
# The chapter prints rounding-level results as claims (cnnbook.claims): each claim must
# hold on every machine, and a claim that breaks must fail the cell.


def _forty_dice():
    die = np.full(6, 1 / 6)
    p_direct, p_fft, counts = np.ones(1), np.ones(1), np.ones(1, dtype=object)
    signal = pytest.importorskip("cnnbook.signal")
    for _ in range(40):
        p_direct = signal.conv1d(p_direct, die, method="direct")
        p_fft = F.fft_conv1d(p_fft, die)
        counts = np.convolve(counts, np.ones(6, dtype=object))
    exact = np.array([c / 6**40 for c in counts], dtype=float)
    return p_direct, p_fft, exact


def test_forty_dice_claims_hold_and_a_broken_claim_fails(capsys):
    p_direct, p_fft, exact = _forty_dice()
    assert below("direct", (np.abs(p_direct - exact) / exact).max(), 1e-12)
    assert claim("FFT wrong by > 100%", (np.abs(p_fft - exact) / exact).max() > 1)
    assert below("FFT vs peak", np.abs(p_fft - exact).max() / exact.max(), 1e-14)
    # The FFT's tails are not accurate entry by entry: claiming so must fail.
    with pytest.raises(AssertionError, match="FFT tails"):
        below("FFT tails", (np.abs(p_fft - exact) / exact).max(), 1e-12)
    assert "FFT tails" not in capsys.readouterr().out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_precision_claim_errors_within_ten_eps(dtype):
    signal = pytest.importorskip("cnnbook.signal")
    rng = np.random.default_rng(7)
    for n in (256, 4096, 65536):
        x = rng.standard_normal(n).astype(dtype)
        w = rng.standard_normal(256).astype(dtype)
        exact = np.convolve(x.astype(np.longdouble), w.astype(np.longdouble))
        for method in ("direct", "fft"):
            y = signal.conv1d(x, w, method=method)
            rel = float(np.linalg.norm(y - exact) / np.linalg.norm(exact))
            assert rel < 10 * np.finfo(dtype).eps, (n, method, rel)


def test_a_tolerance_claim_breaks_when_the_error_is_real():
    # fft_conv1d of a signal with the wrong (wrapped) padding is not linear convolution:
    # the chapter's "< 1e-12" claim would fail, not print digits.
    rng = np.random.default_rng(8)
    x, w = rng.standard_normal(50), rng.standard_normal(9)
    circular = np.fft.irfft(np.fft.rfft(x) * np.fft.rfft(w, 50), 50)
    wrong = np.abs(circular - np.convolve(x, w)[:50]).max()
    with pytest.raises(AssertionError):
        below("|FFT result - linear|", wrong, 1e-12)
    assert below(
        "|FFT result - linear|",
        np.abs(F.fft_conv1d(x, w) - np.convolve(x, w)).max(),
        1e-12,
    )


# ------------------------------------------------------------------- frequency response


def _response_reference(kernel, n):
    """H[m] = sum_j kernel[j] exp(-2πi jm/n), written out with NumPy."""
    j = np.arange(len(kernel))
    m = np.arange(n)
    return np.exp(-2j * np.pi * np.outer(m, j) / n) @ np.asarray(kernel, complex)


@pytest.mark.parametrize("k", [1, 2, 3, 5, 8])
@pytest.mark.parametrize("extra", [0, 1, 2, 7, 64])
def test_frequency_response_matches_reference(k, extra):
    rng = np.random.default_rng(10 * k + extra)
    kernel = rng.standard_normal(k)
    n = k + extra  # odd and even n, n == k included
    H = F.frequency_response(kernel, n)
    assert H.shape == (n,) and H.dtype == np.complex128
    np.testing.assert_allclose(H, _response_reference(kernel, n), atol=1e-12)
    assert np.isclose(H[0], kernel.sum())  # index 0 is the zero frequency


def test_frequency_response_is_the_eigenvalue_of_circular_convolution():
    # Circularly convolving exp(iωj), ω = 2πm/n, with the kernel multiplies it by H[m].
    kernel, n = np.array([0.25, 0.5, 0.25, -0.1]), 12
    H = F.frequency_response(kernel, n)
    j = np.arange(n)
    for m in range(n):
        v = np.exp(2j * np.pi * m * j / n)
        out = sum(kernel[t] * np.roll(v, t) for t in range(len(kernel)))
        np.testing.assert_allclose(out, H[m] * v, atol=1e-12)


def test_frequency_response_accepts_lists_ints_float32_and_complex():
    np.testing.assert_allclose(F.frequency_response([1, 2, 1], 4), [4, -2j, 0, 2j])
    np.testing.assert_allclose(
        F.frequency_response(np.array([1, 1], np.float32), 2), [2, 0], atol=1e-7
    )
    np.testing.assert_allclose(F.frequency_response([1j], 3), [1j, 1j, 1j])


@pytest.mark.parametrize(
    "kernel, n, error, text",
    [
        ([1.0, 2.0, 3.0], 2, ValueError, "shorter than the kernel"),
        (np.ones((2, 2)), 4, ValueError, "must be 1-D"),
        (np.float64(1.0), 4, ValueError, "must be 1-D"),
        ([1.0, np.nan], 4, ValueError, "must be finite"),
        ([1.0, -np.inf, np.inf], 8, ValueError, "must be finite"),
        ([], 3, ValueError, "must not be empty"),
        ([1.0, 2.0], 0, ValueError, "≥ 1"),
        ([1.0, 2.0], 4.0, TypeError, "integer"),
        (["a", "b"], 4, TypeError, "numeric"),
    ],
)
def test_frequency_response_rejects_bad_input(kernel, n, error, text):
    with pytest.raises(error, match=text):
        F.frequency_response(kernel, n)
