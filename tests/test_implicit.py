"""The implicit-im2col convolution (cnnbook.implicit) computes the seven loops' numbers.

The path is float32 only (the tiny BLAS is single precision), so it is compared with
``cnnbook.naive`` run in float64 on the same float32 inputs, to a tolerance scaled by
the length R of each reduction (C·kH·kW for the output, F·kH·kW for dx, N·Ho·Wo for
dw): float32 rounding adds at most about R·2⁻²⁴ relative error to a sum of R products.
Shapes are drawn by hypothesis, including ones that are no multiple of the register
tile (MR × NR), images smaller than the kernel plus padding, and blocks deeper than
the cache blocks.
"""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from cnnbook import blas, functional, implicit, naive

numba = pytest.importorskip("numba")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One numba thread (the serial kernels) unless a test asks for two."""
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    yield
    numba.set_num_threads(before)


def _tol(reduction: int) -> dict:
    return dict(rtol=2e-7 * reduction + 1e-6, atol=2e-7 * reduction + 1e-6)


def _problem(xs, ws, padding, dilation=1, bias=True, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(xs).astype(np.float32)
    w = rng.standard_normal(ws).astype(np.float32)
    b = rng.standard_normal(ws[0]).astype(np.float32) if bias else None
    (ph, pw), (dh, dw) = functional.pair(padding), functional.pair(dilation)
    ho = xs[2] + 2 * ph - dh * (ws[2] - 1)
    wo = xs[3] + 2 * pw - dw * (ws[3] - 1)
    dout = rng.standard_normal((xs[0], ws[0], ho, wo)).astype(np.float32)
    return x, w, b, dout


def _check(x, w, b, dout, padding, dilation, reference, need_dx=True):
    """implicit's forward and backward against ``reference`` (naive or the NumPy
    path) in float64."""
    f64 = [None if a is None else a.astype(np.float64) for a in (x, w, b, dout)]
    N, C, _, _ = x.shape
    F, _, kh, kw = w.shape
    out = implicit.conv2d(x, w, b, 1, padding, dilation)
    assert out.dtype == np.float32 and out.shape == dout.shape
    ref = reference.conv2d(*f64[:3], 1, padding, dilation)
    np.testing.assert_allclose(out, ref, **_tol(C * kh * kw + 1))
    dx, dw, db = implicit.conv2d_backward(
        dout, x, w, 1, padding, dilation, need_dx=need_dx
    )
    rdx, rdw, rdb = reference.conv2d_backward(
        f64[3], f64[0], f64[1], 1, padding, dilation
    )
    assert dw.dtype == db.dtype == np.float32
    assert dw.shape == w.shape and db.shape == (F,)
    positions = N * dout.shape[2] * dout.shape[3]
    np.testing.assert_allclose(dw, rdw, **_tol(positions))
    np.testing.assert_allclose(db, rdb, **_tol(positions))
    if need_dx:
        assert dx.dtype == np.float32 and dx.shape == x.shape
        np.testing.assert_allclose(dx, rdx, **_tol(F * kh * kw))
    else:
        assert dx is None


@st.composite
def geometries(draw):
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    dh, dw = draw(st.sampled_from([(1, 1), (1, 1), (2, 1), (1, 2)]))
    H, W = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    assume(dh * (kh - 1) < H + 2 * ph and dw * (kw - 1) < W + 2 * pw)
    N, C = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    F = draw(st.integers(1, 2 * blas.MR + 1))  # across register-tile rows
    bias, need_dx = draw(st.booleans()), draw(st.booleans())
    return (N, C, H, W), (F, C, kh, kw), (ph, pw), (dh, dw), bias, need_dx


@given(geometries(), st.integers(0, 2**16))
def test_equals_naive_loops(geometry, seed):
    xs, ws, padding, dilation, bias, need_dx = geometry
    x, w, b, dout = _problem(xs, ws, padding, dilation, bias, seed)
    _check(x, w, b, dout, padding, dilation, naive, need_dx)


@pytest.mark.parametrize(
    "xs, ws, padding",
    [
        ((2, 20, 17, 18), (7, 20, 3, 3), 1),  # C·kH·kW = 180 and Ho·Wo = 306 > kc
        ((3, 4, 30, 37), (13, 4, 2, 3), (0, 2)),  # Ho·Wo > the forward's nc
        ((1, 1, 2, 2), (2, 1, 3, 3), 2),  # padding wider than the kernel: dx crops
        ((3, 32, 9, 11), (7, 32, 3, 3), 1),  # two depth blocks; dw channels-last
    ],
)
def test_blocks_larger_than_the_cache_blocks(xs, ws, padding):
    x, w, b, dout = _problem(xs, ws, padding)
    _check(x, w, b, dout, padding, 1, functional)


# Every register tile the module may pick (``_tile_rows``), forced, on shapes where M
# (F for the forward and dw, C for dx) is no multiple of MR, widths no multiple of NR,
# dilation, a padding wider than the kernel, and depths over two of the forward's kc
# blocks (C·kH·kW, then F·kH·kW for dx, above 1.25 kc).
TILE_ROWS = sorted({4, 5, blas.MR})


@pytest.mark.parametrize("mr", TILE_ROWS)
@pytest.mark.parametrize(
    "xs, ws, padding, dilation",
    [
        ((2, 16, 5, 19), (7, 16, 3, 3), 1, 1),  # dw channels-last, F = 7, Wo = 19
        ((2, 3, 6, 9), (5, 3, 2, 3), (3, 1), (2, 1)),  # dilation; dx crops dout
        ((2, 48, 5, 6), (6, 48, 3, 3), 1, 1),  # forward: K = 432 in two depth blocks
        ((2, 5, 6, 6), (48, 5, 3, 3), (1, 2), 1),  # dx: K = 432 in two depth blocks
    ],
)
def test_every_tile(monkeypatch, mr, xs, ws, padding, dilation):
    monkeypatch.setattr(implicit, "_tile_rows", lambda m: mr)
    x, w, b, dout = _problem(xs, ws, padding, dilation)
    _check(x, w, b, dout, padding, dilation, functional)


def test_tile_rows_pad_no_more_than_the_host_tile():
    for m in range(1, 100):
        mr = implicit._tile_rows(m)
        assert 1 <= mr <= blas.MR
        assert -(-m // mr) * mr <= -(-m // blas.MR) * blas.MR
    assert implicit._tile_rows(blas.MR * 7) == blas.MR  # whole panels: the host's


@pytest.mark.parametrize("channels", [3, 16])
def test_two_threads_give_the_same_numbers(channels):
    x, w, b, dout = _problem((5, channels, 11, 10), (8, channels, 3, 3), 1)
    one = (
        implicit.conv2d(x, w, b, padding=1),
        implicit.conv2d_backward(dout, x, w, padding=1),
    )
    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    try:
        two = (
            implicit.conv2d(x, w, b, padding=1),
            implicit.conv2d_backward(dout, x, w, padding=1),
        )
    finally:
        numba.set_num_threads(1)
    np.testing.assert_array_equal(one[0], two[0])  # images are independent
    for a, c in zip(one[1], two[1]):
        np.testing.assert_allclose(a, c, **_tol(5 * 11 * 10))


def test_equals_pytorch():
    torch = pytest.importorskip("torch")
    x, w, b, dout = _problem((4, 16, 12, 13), (32, 16, 3, 3), 1, seed=3)
    xt, wt, bt = (torch.from_numpy(a).requires_grad_() for a in (x, w, b))
    out_t = torch.nn.functional.conv2d(xt, wt, bt, padding=1)
    grads_t = torch.autograd.grad(out_t, (xt, wt, bt), torch.from_numpy(dout))
    np.testing.assert_allclose(
        implicit.conv2d(x, w, b, padding=1), out_t.detach().numpy(), **_tol(145)
    )
    for ours, theirs, r in zip(
        implicit.conv2d_backward(dout, x, w, padding=1), grads_t, (288, 624, 624)
    ):
        np.testing.assert_allclose(ours, theirs.numpy(), **_tol(r))


def test_functional_dispatch_and_no_mutation():
    x, w, b, dout = _problem((2, 3, 7, 6), (4, 3, 3, 3), 1)
    x_f = np.asfortranarray(x)  # not C-contiguous: copied, not misread
    saved = [a.copy() for a in (x, w, b, dout)]
    out = functional.conv2d(x_f, w, b, padding=1, method="implicit")
    np.testing.assert_allclose(out, implicit.conv2d(x, w, b, padding=1), rtol=0)
    dx, dw, db = functional.conv2d_backward(
        dout, x_f, w, padding=1, method="implicit", need_dx=False
    )
    assert dx is None
    np.testing.assert_allclose(dw, implicit.conv2d_backward(dout, x, w, padding=1)[1])
    for a, s in zip((x, w, b, dout), saved):
        np.testing.assert_array_equal(a, s)
    assert "implicit" in functional.CONV_METHODS
    with pytest.raises(ValueError, match="gemm"):
        functional.conv2d(x, w, b, method="implicit", gemm=np.matmul)


def test_bad_inputs_get_clear_errors():
    x, w, b, dout = _problem((2, 3, 7, 6), (4, 3, 3, 3), 1)
    with pytest.raises(TypeError, match="float64"):
        implicit.conv2d(x.astype(np.float64), w, b)
    with pytest.raises(TypeError, match="float64"):
        implicit.conv2d_backward(dout.astype(np.float64), x, w, padding=1)
    with pytest.raises(TypeError, match="b has dtype float64"):
        implicit.conv2d(x, w, b.astype(np.float64))
    with pytest.raises(TypeError):
        implicit.conv2d(x.astype(np.int32), w)
    with pytest.raises(ValueError, match="stride"):
        implicit.conv2d(x, w, b, stride=2)
    with pytest.raises(ValueError, match="stride"):
        implicit.conv2d_backward(dout[:, :, ::2, ::2], x, w, stride=2, padding=1)
    with pytest.raises(ValueError, match="channel"):
        implicit.conv2d(x, w[:, :2], b)
    with pytest.raises(ValueError, match="kernel larger"):
        implicit.conv2d(x[:, :, :2], w, b)
    with pytest.raises(ValueError, match="dout"):
        implicit.conv2d_backward(dout[:, :, 1:], x, w, padding=1)
    with pytest.raises(ValueError, match="padding"):
        implicit.conv2d(x, w, b, padding=-1)
