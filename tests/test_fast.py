"""Every rung of Chapter 8's ladder computes the seven loops' numbers (cnnbook.naive).

float64: equal to the naive loops within 1e-10. float32: within 1e-5·(1 + |reference|)
of the float64 reference — each output is a sum of at most 4·3·3 = 36 products of values
of order 1, so float32 rounding (2⁻²⁴ ≈ 6e-8 per operation) stays far below that.
The compiled kernels are cached on disk by numba, so only the first run pays for
compiling them.
"""

import numpy as np
import pytest

from cnnbook import fast, naive

numba = pytest.importorskip("numba")

# (x shape, w shape, stride, padding, dilation): plain, padded, strided, and everything
# uneven
GEOMETRIES = [
    ((2, 3, 7, 6), (4, 3, 3, 3), 1, 0, 1),
    ((2, 3, 7, 6), (4, 3, 3, 3), 1, 1, 1),
    ((3, 2, 8, 9), (3, 2, 3, 2), 2, 1, 1),
    ((2, 2, 9, 8), (2, 2, 2, 3), (2, 1), (0, 2), (1, 2)),
]
IDS = ["plain", "padded", "stride2", "uneven"]
F32_TOL = dict(rtol=1e-5, atol=1e-5)


def _problem(xs, ws, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype)
    return x, w, b


@pytest.fixture(scope="module", params=range(len(GEOMETRIES)), ids=IDS)
def case(request):
    """One geometry with its float64 reference: the naive loops, forward and
    backward."""
    xs, ws, s, p, d = GEOMETRIES[request.param]
    x, w, b = _problem(xs, ws, np.float64)
    out = naive.conv2d(x, w, b, s, p, d)
    dout = np.random.default_rng(1).standard_normal(out.shape)
    grads = naive.conv2d_backward(dout, x, w, s, p, d)
    return dict(x=x, w=w, b=b, geometry=(s, p, d), out=out, dout=dout, grads=grads)


def _assert_grads(got, expected, **tol):
    assert len(got) == 3
    for name, g, e in zip(("dx", "dw", "db"), got, expected):
        assert g.shape == e.shape, name
        np.testing.assert_allclose(g, e, err_msg=name, **tol)


NUMPY_RUNGS = [
    (fast.conv2d_windows, fast.conv2d_windows_backward),
    (fast.conv2d_im2col_2d, fast.conv2d_im2col_2d_backward),
]


@pytest.mark.parametrize("forward,backward", NUMPY_RUNGS, ids=["windows", "im2col_2d"])
def test_numpy_rungs_equal_naive(case, forward, backward):
    x, w, b, geo = case["x"], case["w"], case["b"], case["geometry"]
    out = forward(x, w, b, *geo)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, case["out"], rtol=0, atol=1e-10)
    _assert_grads(backward(case["dout"], x, w, *geo), case["grads"], rtol=0, atol=1e-10)
    # float32 in, float32 out, same numbers to float32 accuracy
    x32, w32, b32 = x.astype(np.float32), w.astype(np.float32), b.astype(np.float32)
    out32 = forward(x32, w32, b32, *geo)
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, case["out"], **F32_TOL)
    grads32 = backward(case["dout"].astype(np.float32), x32, w32, *geo)
    assert all(g.dtype == np.float32 for g in grads32)
    _assert_grads(grads32, case["grads"], **F32_TOL)


def test_fft_rung_equal_naive(case):
    x, w, b, (s, p, d) = case["x"], case["w"], case["b"], case["geometry"]
    if s != 1 or d != 1:
        with pytest.raises(ValueError, match="stride 1 and dilation 1"):
            fast.conv2d_fft(x, w, b, s, p, d)
        return
    np.testing.assert_allclose(
        fast.conv2d_fft(x, w, b, s, p, d), case["out"], rtol=0, atol=1e-10
    )
    _assert_grads(
        fast.conv2d_fft_backward(case["dout"], x, w, s, p, d),
        case["grads"],
        rtol=0,
        atol=1e-10,
    )
    out32 = fast.conv2d_fft(
        x.astype(np.float32), w.astype(np.float32), b.astype(np.float32), s, p, d
    )
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, case["out"], **F32_TOL)


def test_fft_rung_matches_chapter_2_fft_conv2d():
    """One channel, one filter: the batched rung is Chapter 2's fft_conv2d with the
    kernel flipped."""
    fft = pytest.importorskip("cnnbook.fft")
    x, w, _ = _problem((1, 1, 9, 7), (1, 1, 3, 3), np.float64)
    expected = fft.fft_conv2d(x[0, 0], w[0, 0, ::-1, ::-1], mode="valid")
    np.testing.assert_allclose(
        fast.conv2d_fft(x, w)[0, 0], expected, rtol=0, atol=1e-12
    )


def _strided_joined(kernel, geometry):
    """True (after checking the error) when the "joined" kernels meet a stride they
    reject."""
    if kernel == "joined" and geometry[0] != 1:
        x, w = np.zeros((1, 1, 5, 5)), np.zeros((1, 1, 3, 3))
        with pytest.raises(ValueError, match="stride 1 only"):
            fast.conv2d(x, w, stride=geometry[0], kernel="joined")
        with pytest.raises(ValueError, match="stride 1 only"):
            fast.conv2d_backward(
                np.zeros((1, 1, 2, 2)), x, w, stride=2, kernel="joined"
            )
        return True
    return False


COMPILED = ["textbook", "reordered", "parallel", "joined"]


@pytest.mark.parametrize("kernel", COMPILED)
def test_compiled_kernels_equal_naive_float64(case, kernel):
    x, w, b, geo = case["x"], case["w"], case["b"], case["geometry"]
    if _strided_joined(kernel, geo):
        return
    out = fast.conv2d(x, w, b, *geo, kernel=kernel)
    assert out.dtype == np.float64 and out.shape == case["out"].shape
    np.testing.assert_allclose(out, case["out"], rtol=0, atol=1e-10)
    _assert_grads(
        fast.conv2d_backward(case["dout"], x, w, *geo, kernel=kernel),
        case["grads"],
        rtol=0,
        atol=1e-10,
    )


@pytest.mark.parametrize("kernel", COMPILED)
def test_compiled_kernels_equal_naive_float32(case, kernel):
    if _strided_joined(kernel, case["geometry"]):
        return
    x, w, b = (a.astype(np.float32) for a in (case["x"], case["w"], case["b"]))
    out = fast.conv2d(x, w, b, *case["geometry"], kernel=kernel)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, case["out"], **F32_TOL)
    grads = fast.conv2d_backward(
        case["dout"].astype(np.float32), x, w, *case["geometry"], kernel=kernel
    )
    assert all(g.dtype == np.float32 for g in grads)
    _assert_grads(grads, case["grads"], **F32_TOL)


@pytest.mark.parametrize(
    "kernel", ["boundscheck", "raise", "signed", "flat_signed", "flat_unsigned"]
)
def test_safety_variants_equal_naive(case, kernel):
    """The safety-vs-speed variants are timed in float32 only, so they are compiled for
    float32."""
    x, w, b = (a.astype(np.float32) for a in (case["x"], case["w"], case["b"]))
    np.testing.assert_allclose(
        fast.conv2d(x, w, b, *case["geometry"], kernel=kernel), case["out"], **F32_TOL
    )


def test_parallel_kernels_with_two_threads(case):
    """prange over the batch: same numbers whatever the number of threads."""
    x, w, b, geo = case["x"], case["w"], case["b"], case["geometry"]
    before = numba.get_num_threads()
    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    try:
        out = fast.conv2d(x, w, b, *geo, kernel="parallel")
        grads = fast.conv2d_backward(case["dout"], x, w, *geo, kernel="parallel")
    finally:
        numba.set_num_threads(before)
    np.testing.assert_allclose(out, case["out"], rtol=0, atol=1e-10)
    _assert_grads(grads, case["grads"], rtol=0, atol=1e-10)


def test_bias_none_and_no_mutation():
    x, w, _ = _problem((2, 2, 5, 5), (3, 2, 3, 3), np.float64)
    x0, w0 = x.copy(), w.copy()
    np.testing.assert_allclose(
        fast.conv2d(x, w, padding=1), naive.conv2d(x, w, padding=1), rtol=0, atol=1e-10
    )
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(w, w0)


def test_non_contiguous_input():
    x, w, b = _problem((2, 3, 6, 5), (2, 3, 3, 3), np.float64)
    xt = np.asfortranarray(x)
    np.testing.assert_allclose(
        fast.conv2d(xt, w, b, padding=1),
        naive.conv2d(x, w, b, padding=1),
        rtol=0,
        atol=1e-10,
    )


def test_bad_inputs_are_rejected():
    x, w, b = _problem((2, 3, 6, 6), (4, 3, 3, 3), np.float64)
    with pytest.raises(ValueError, match="unknown forward kernel"):
        fast.conv2d(x, w, kernel="fastest")
    with pytest.raises(ValueError, match="unknown backward kernel"):
        fast.conv2d_backward(np.zeros((2, 4, 4, 4)), x, w, kernel="boundscheck")
    with pytest.raises(ValueError, match="channel"):
        fast.conv2d(x, w[:, :2])
    with pytest.raises(ValueError, match=r"\(2, 4, 4, 4\)"):
        fast.conv2d_backward(np.zeros((2, 4, 5, 5)), x, w)
    with pytest.raises(TypeError):
        fast.conv2d(x.astype(np.int64), w)
    with pytest.raises(ValueError):
        fast.conv2d_windows(x, w, stride=0)
    with pytest.raises(ValueError, match="bias"):
        fast.conv2d_im2col_2d(x, w, b[:2])


def test_clear_message_without_numba(monkeypatch):
    x, w, _ = _problem((1, 1, 4, 4), (1, 1, 3, 3), np.float64)
    monkeypatch.setattr(fast, "numba", None)
    with pytest.raises(ImportError, match="pip install numba"):
        fast.conv2d(x, w)
    # the NumPy rungs do not need it
    np.testing.assert_allclose(
        fast.conv2d_windows(x, w), naive.conv2d(x, w), rtol=0, atol=1e-12
    )


def test_conv2d_flops():
    # 2 flops per multiply-add: N·F·Ho·Wo·C·kH·kW multiply-adds
    assert (
        fast.conv2d_flops((64, 1, 28, 28), (8, 1, 3, 3), padding=1)
        == 2 * 64 * 8 * 28 * 28 * 9
    )
    assert (
        fast.conv2d_flops((1, 2, 7, 7), (3, 2, 3, 3), stride=2) == 2 * 3 * 3 * 3 * 2 * 9
    )


# ---------------------------------------------------------------- need_dx=False


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kernel", COMPILED)
def test_compiled_backward_without_dx_equals_naive(case, kernel, dtype):
    """The dw-only path (its own kernel for "joined") gives the same dw and db."""
    if _strided_joined(kernel, case["geometry"]):
        return
    x, w, dout = (a.astype(dtype) for a in (case["x"], case["w"], case["dout"]))
    dx, dw, db = fast.conv2d_backward(
        dout, x, w, *case["geometry"], kernel=kernel, need_dx=False
    )
    assert dx is None and dw.dtype == dtype and db.dtype == dtype
    # f64 to 1e-10; f32 to its rounding times the reduction length N·Ho·Wo
    n_sum = dout.shape[0] * dout.shape[2] * dout.shape[3]
    tol = 1e-10 if dtype == np.float64 else 4 * n_sum * float(np.finfo(dtype).eps)
    scale = np.abs(case["grads"][1]).max()
    np.testing.assert_allclose(dw, case["grads"][1], rtol=0, atol=tol * (1 + scale))
    np.testing.assert_allclose(db, case["grads"][2], rtol=0, atol=tol * (1 + scale))


# ---------------------------------------------------------------- max pooling kernels


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "shape, args",
    [
        ((3, 4, 8, 10), (2,)),  # the 2×2 fast kernel
        ((2, 3, 9, 7), (2,)),  # 2×2, odd sizes: the last row/column is dropped
        ((2, 3, 9, 7), (2, 2, 0, True)),  # ceil_mode overhang: the general kernel
        ((2, 2, 7, 7), (3, 2, 1)),
        ((1, 2, 6, 5), ((2, 3), (1, 2), (1, 1))),
    ],
)
def test_max_pool_kernels_equal_naive(shape, args, dtype):
    from cnnbook import functional as F

    rng = np.random.default_rng(3)
    x = np.round(rng.standard_normal(shape) * 2).astype(dtype)  # ties
    out, idx = fast.max_pool2d_with_indices(x, *args)
    np.testing.assert_array_equal(out, naive.max_pool2d(x, *args))
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx = fast.max_pool2d_backward_indices(dout, idx, x.shape, dtype)
    np.testing.assert_allclose(
        dx, naive.max_pool2d_backward(dout, x, *args), rtol=1e-6, atol=1e-6
    )
    assert dx.dtype == dtype
    np.testing.assert_array_equal(
        idx, F.max_pool2d_with_indices(x, *args, method="numpy")[1]
    )


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_rows_forward_kernel_equals_naive(case, dtype):
    """The default path's forward ("rows": a kernel row's taps unrolled)."""
    if _strided_joined("joined", case["geometry"]):
        with pytest.raises(ValueError, match="stride 1 only"):
            fast.conv2d(case["x"], case["w"], stride=2, kernel="rows")
        return
    x, w, b = (a.astype(dtype) for a in (case["x"], case["w"], case["b"]))
    out = fast.conv2d(x, w, b, *case["geometry"], kernel="rows")
    assert out.dtype == dtype and out.shape == case["out"].shape
    tol = dict(rtol=0, atol=1e-10) if dtype == np.float64 else F32_TOL
    np.testing.assert_allclose(out, case["out"], **tol)
    np.testing.assert_allclose(
        fast.conv2d(x, w, None, *case["geometry"], kernel="rows"),
        case["out"] - case["b"][None, :, None, None],
        **tol,
    )


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kw", [1, 2, 3, 4, 5, 6, 7])
def test_rows_kernels_for_every_kernel_width(kw, dtype):
    """ "rows" forward and the dw-only backward are compiled per kernel width (dw-only:
    up to 5, the joined kernel beyond): each width equals the loops."""
    rng = np.random.default_rng(kw)
    x = rng.standard_normal((2, 2, 7, 9 + 2 * kw)).astype(dtype)
    w = rng.standard_normal((3, 2, 2, kw)).astype(dtype)
    b = rng.standard_normal(3).astype(dtype)
    geo = (1, (1, kw // 2), (1, 2))  # stride, padding, dilation
    tol = dict(rtol=0, atol=1e-10) if dtype == np.float64 else F32_TOL
    ref = naive.conv2d(x.astype(np.float64), w.astype(np.float64), b, *geo)
    np.testing.assert_allclose(fast.conv2d(x, w, b, *geo, kernel="rows"), ref, **tol)
    dout = rng.standard_normal(ref.shape)
    _, dw_ref, db_ref = naive.conv2d_backward(
        dout, x.astype(np.float64), w.astype(np.float64), *geo
    )
    dx, dw, db = fast.conv2d_backward(
        dout.astype(dtype), x, w, *geo, kernel="joined", need_dx=False
    )
    assert dx is None and dw.dtype == dtype
    np.testing.assert_allclose(dw, dw_ref, **tol)
    np.testing.assert_allclose(db, db_ref, **tol)
