"""cnnbook.functional (fast path) against cnnbook.naive (the loops), the formulas and
error cases."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cnnbook import functional as F
from cnnbook import naive as N

TOL = dict(rtol=1e-10, atol=1e-10)


# ---------------------------------------------------------------- strategies


@st.composite
def conv_problem(draw):
    """Small random conv problems with every hyper-parameter drawn, always geometrically
    valid."""
    n, c, f = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    # The smallest input that the dilated kernel fits in once padded, plus a few pixels.
    h = draw(
        st.integers(max(1, dh * (kh - 1) + 1 - 2 * ph), dh * (kh - 1) + 1 - 2 * ph + 5)
    )
    w = draw(
        st.integers(max(1, dw * (kw - 1) + 1 - 2 * pw), dw * (kw - 1) + 1 - 2 * pw + 5)
    )
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    return dict(
        x=rng.standard_normal((n, c, h, w)),
        w=rng.standard_normal((f, c, kh, kw)),
        b=rng.standard_normal(f),
        stride=(sh, sw),
        padding=(ph, pw),
        dilation=(dh, dw),
        rng=rng,
    )


@st.composite
def pool_problem(draw):
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    h = draw(st.integers(max(1, kh - 2 * ph), kh + 5))
    w = draw(st.integers(max(1, kw - 2 * pw), kw + 5))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    # Rounded values make ties common, so the tie-breaking rule is exercised too.
    x = np.round(rng.standard_normal((n, c, h, w)) * draw(st.sampled_from([1.0, 1e3])))
    return dict(
        x=x.astype(np.float64),
        kernel_size=(kh, kw),
        stride=stride,
        padding=(ph, pw),
        rng=rng,
    )


# ---------------------------------------------------------------- output size


def test_conv_output_size_examples():
    assert F.conv_output_size(28, 3, 1, 1) == 28  # "same" for an odd kernel
    assert F.conv_output_size(28, 2, 2) == 14  # 2x2 pooling
    assert F.conv_output_size(7, 3, 2) == 3  # stride divides (7-3) evenly
    assert F.conv_output_size(8, 3, 2) == 3  # it does not: the last row is dropped
    assert F.conv_output_size(7, 3, 1, 0, 2) == 3  # dilated kernel spans 5
    with pytest.raises(ValueError, match="kernel larger"):
        F.conv_output_size(4, 3, 1, 0, 2)


@given(conv_problem())
def test_output_shape_matches_formula(p):
    x, w = p["x"], p["w"]
    out = F.conv2d(x, w, p["b"], p["stride"], p["padding"], p["dilation"])
    expect = tuple(
        math.floor(
            (
                x.shape[2 + a]
                + 2 * p["padding"][a]
                - p["dilation"][a] * (w.shape[2 + a] - 1)
                - 1
            )
            / p["stride"][a]
        )
        + 1
        for a in (0, 1)
    )
    assert out.shape == (x.shape[0], w.shape[0]) + expect
    assert expect == tuple(
        F.conv_output_size(
            x.shape[2 + a],
            w.shape[2 + a],
            p["stride"][a],
            p["padding"][a],
            p["dilation"][a],
        )
        for a in (0, 1)
    )


# ---------------------------------------------------------------- conv: fast == loops


@given(conv_problem())
def test_conv2d_forward_matches_loops(p):
    args = (p["stride"], p["padding"], p["dilation"])
    np.testing.assert_allclose(
        F.conv2d(p["x"], p["w"], p["b"], *args),
        N.conv2d(p["x"], p["w"], p["b"], *args),
        **TOL,
    )
    np.testing.assert_allclose(
        F.conv2d(p["x"], p["w"], None, *args),
        N.conv2d(p["x"], p["w"], None, *args),
        **TOL,
    )


@given(conv_problem())
def test_conv2d_backward_matches_loops(p):
    args = (p["stride"], p["padding"], p["dilation"])
    out = F.conv2d(p["x"], p["w"], p["b"], *args)
    dout = p["rng"].standard_normal(out.shape)
    for fast, slow in zip(
        F.conv2d_backward(dout, p["x"], p["w"], *args),
        N.conv2d_backward(dout, p["x"], p["w"], *args),
    ):
        assert fast.shape == slow.shape
        np.testing.assert_allclose(fast, slow, **TOL)


@given(conv_problem())
def test_col2im_is_adjoint_of_im2col(p):
    # <im2col(x), c> == <x, col2im(c)> for all x, c: the defining property of the
    # adjoint.
    x = p["x"]
    k = p["w"].shape[2:]
    args = (k, p["stride"], p["padding"], p["dilation"])
    cols = F.im2col(x, *args)
    c = p["rng"].standard_normal(cols.shape)
    np.testing.assert_allclose(
        np.vdot(cols, c), np.vdot(x, F.col2im(c, x.shape, *args)), rtol=1e-10
    )


def test_im2col_layout():
    x = np.arange(2 * 2 * 3 * 3, dtype=np.float64).reshape(2, 2, 3, 3)
    cols = F.im2col(x, 2)
    assert cols.shape == (2, 2 * 2 * 2, 4)
    # row c*kH*kW + i*kW + j, column oh*Wo + ow holds x[n, c, oh + i, ow + j]
    assert cols[1, 1 * 4 + 1 * 2 + 0, 1 * 2 + 1] == x[1, 1, 2, 1]
    np.testing.assert_array_equal(cols[0, 0], [0, 1, 3, 4])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_preserved(dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 6, 6)).astype(dtype)
    w = rng.standard_normal((4, 3, 3, 3)).astype(dtype)
    b = np.zeros(4, dtype)
    out = F.conv2d(x, w, b, padding=1)
    assert out.dtype == dtype
    assert all(g.dtype == dtype for g in F.conv2d_backward(out, x, w, padding=1))
    assert F.max_pool2d(x, 2).dtype == dtype
    assert F.max_pool2d_backward(F.max_pool2d(x, 2), x, 2).dtype == dtype
    assert F.avg_pool2d(x, 2).dtype == dtype
    assert F.relu(x).dtype == dtype and F.relu_backward(x, x).dtype == dtype
    xf = x.reshape(2, -1)
    W = rng.standard_normal((5, xf.shape[1])).astype(dtype)
    assert F.linear(xf, W).dtype == dtype
    assert all(
        g.dtype == dtype for g in F.linear_backward(np.ones((2, 5), dtype), xf, W)
    )
    z = rng.standard_normal((3, 10)).astype(dtype)
    assert F.softmax(z).dtype == dtype and F.log_softmax(z).dtype == dtype
    assert F.softmax_cross_entropy_backward(z, np.array([0, 1, 2])).dtype == dtype
    # the loops agree with the fast path in float32 too, up to float32 rounding
    np.testing.assert_allclose(N.conv2d(x, w, b, padding=1), out, rtol=1e-4, atol=1e-4)


def test_gemm_hook_is_used():
    calls = []

    def gemm(a, b):
        calls.append((a.shape, b.shape))
        return np.matmul(a, b)

    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((2, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3))
    out = F.conv2d(x, w, gemm=gemm)
    np.testing.assert_allclose(out, F.conv2d(x, w), **TOL)
    F.conv2d_backward(out, x, w, gemm=gemm)
    F.linear_backward(
        np.ones((2, 3)), x.reshape(2, -1)[:, :4], w.reshape(3, -1)[:, :4], gemm=gemm
    )
    assert len(calls) == 1 + 2 + 2


# ---------------------------------------------------------------- pooling


@given(pool_problem())
def test_max_pool_matches_loops(p):
    args = (p["kernel_size"], p["stride"], p["padding"])
    out = F.max_pool2d(p["x"], *args)
    np.testing.assert_array_equal(out, N.max_pool2d(p["x"], *args))
    dout = p["rng"].standard_normal(out.shape)
    np.testing.assert_allclose(
        F.max_pool2d_backward(dout, p["x"], *args),
        N.max_pool2d_backward(dout, p["x"], *args),
        **TOL,
    )


@given(pool_problem())
def test_avg_pool_matches_loops(p):
    args = (p["kernel_size"], p["stride"], p["padding"])
    out = F.avg_pool2d(p["x"], *args)
    np.testing.assert_allclose(out, N.avg_pool2d(p["x"], *args), **TOL)
    dout = p["rng"].standard_normal(out.shape)
    np.testing.assert_allclose(
        F.avg_pool2d_backward(dout, p["x"], *args),
        N.avg_pool2d_backward(dout, p["x"], *args),
        **TOL,
    )


def test_max_pool_ties_go_to_first_max_and_overlaps_accumulate():
    x = np.ones((1, 1, 2, 2))
    dx = F.max_pool2d_backward(np.array([[[[5.0]]]]), x, 2)
    np.testing.assert_array_equal(
        dx[0, 0], [[5, 0], [0, 0]]
    )  # first in row-major order
    # 3 windows of width 2, stride 1, over [0, 9, 0, 0]: the 9 wins two windows
    x = np.array([[[[0.0, 9.0, 0.0, 1.0]]]])
    dx = F.max_pool2d_backward(np.array([[[[1.0, 2.0, 4.0]]]]), x, (1, 2), 1)
    np.testing.assert_array_equal(dx[0, 0, 0], [0, 3, 0, 4])


def test_max_pool_padding_never_wins():
    x = np.full((1, 1, 2, 2), -np.inf)
    dout = np.ones((1, 1, 3, 3))
    dx = F.max_pool2d_backward(dout, x, 2, 1, 1)
    assert dx.sum() == 9  # every window routed its gradient to a real pixel
    np.testing.assert_array_equal(dx, N.max_pool2d_backward(dout, x, 2, 1, 1))


# ---------------------------------------------------------------- relu, linear


def test_relu_and_its_gradient_at_zero():
    x = np.array([[-1.0, 0.0, 2.0]])
    np.testing.assert_array_equal(F.relu(x), [[0, 0, 2]])
    np.testing.assert_array_equal(F.relu_backward(np.ones_like(x), x), [[0, 0, 1]])
    np.testing.assert_array_equal(N.relu(x), F.relu(x))
    np.testing.assert_array_equal(N.relu_backward(np.ones_like(x), x), [[0, 0, 1]])


@given(st.integers(1, 4), st.integers(1, 5), st.integers(1, 4), st.integers(0, 2**16))
def test_linear_matches_loops(n, k, o, seed):
    rng = np.random.default_rng(seed)
    x, W, b = (
        rng.standard_normal((n, k)),
        rng.standard_normal((o, k)),
        rng.standard_normal(o),
    )
    np.testing.assert_allclose(F.linear(x, W, b), N.linear(x, W, b), **TOL)
    np.testing.assert_allclose(F.linear(x, W, b), x @ W.T + b, **TOL)
    dout = rng.standard_normal((n, o))
    for fast, slow in zip(F.linear_backward(dout, x, W), N.linear_backward(dout, x, W)):
        np.testing.assert_allclose(fast, slow, **TOL)


# ---------------------------------------------------------------- softmax,
# cross-entropy


@given(
    st.integers(1, 5),
    st.integers(1, 6),
    st.sampled_from([1.0, 30.0, 1e4]),
    st.integers(0, 2**16),
)
def test_softmax_rows_sum_to_one_and_match_loops(n, k, scale, seed):
    z = np.random.default_rng(seed).standard_normal((n, k)) * scale
    p = F.softmax(z)
    assert np.all(np.isfinite(p))
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(p, N.softmax(z), **TOL)
    np.testing.assert_allclose(F.log_softmax(z), N.log_softmax(z), **TOL)
    np.testing.assert_allclose(F.softmax(z.T, axis=0), p.T, **TOL)


@pytest.mark.parametrize("scale", [1.0, 1e4])
def test_softmax_float32_agrees_with_float64(scale):
    z = np.random.default_rng(3).standard_normal((6, 10)) * scale
    z[0, :2] = [scale, -scale]
    p32 = F.softmax(z.astype(np.float32))
    assert p32.dtype == np.float32 and np.all(np.isfinite(p32))
    np.testing.assert_allclose(p32, F.softmax(z), atol=1e-6)
    np.testing.assert_allclose(p32.sum(axis=1), 1.0, atol=1e-6)
    logp32 = F.log_softmax(z.astype(np.float32))
    assert np.all(np.isfinite(logp32))
    np.testing.assert_allclose(logp32, F.log_softmax(z), rtol=1e-5, atol=1e-3)


def test_softmax_of_extreme_logits():
    z = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]])
    np.testing.assert_allclose(F.softmax(z), [[1, 0, 0], [1 / 3, 1 / 3, 1 / 3]])
    np.testing.assert_allclose(F.log_softmax(z)[0], [0, -2e4, -1e4])
    assert math.isfinite(F.cross_entropy(z, np.array([1, 0])))


def test_cross_entropy_values_and_gradient():
    z = np.random.default_rng(4).standard_normal((5, 4))
    t = np.array([0, 3, 1, 1, 2])
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    expected = -np.mean(np.log(p[np.arange(5), t]))
    assert F.cross_entropy(z, t) == pytest.approx(expected, rel=1e-12)
    assert N.cross_entropy(z, t) == pytest.approx(expected, rel=1e-12)
    assert F.cross_entropy(np.zeros((3, 10)), np.array([1, 2, 3])) == pytest.approx(
        math.log(10)
    )
    y = np.eye(4)[t]
    np.testing.assert_allclose(
        F.softmax_cross_entropy_backward(z, t), (p - y) / 5, **TOL
    )
    np.testing.assert_allclose(
        N.softmax_cross_entropy_backward(z, t), (p - y) / 5, **TOL
    )
    # central differences on the loss itself
    eps, g = 1e-6, np.zeros_like(z)
    for idx in np.ndindex(z.shape):
        zp, zm = z.copy(), z.copy()
        zp[idx] += eps
        zm[idx] -= eps
        g[idx] = (F.cross_entropy(zp, t) - F.cross_entropy(zm, t)) / (2 * eps)
    np.testing.assert_allclose(F.softmax_cross_entropy_backward(z, t), g, atol=1e-8)


# ---------------------------------------------------------------- errors

X = np.zeros((2, 3, 5, 5))
Wt = np.zeros((4, 3, 3, 3))


@pytest.mark.parametrize("module", [F, N], ids=["functional", "naive"])
@pytest.mark.parametrize(
    "call, error, match",
    [
        (
            lambda m: m.conv2d(X, np.zeros((4, 2, 3, 3))),
            ValueError,
            r"channel mismatch.*\(2, 3, 5, 5\)",
        ),
        (
            lambda m: m.conv2d(X, np.zeros((4, 3, 7, 3))),
            ValueError,
            "kernel larger than the padded input",
        ),
        (
            lambda m: m.conv2d(X, Wt, dilation=3),
            ValueError,
            "kernel larger than the padded input",
        ),
        (lambda m: m.conv2d(X, Wt, stride=0), ValueError, "stride must be positive"),
        (
            lambda m: m.conv2d(X, Wt, stride=(1, -1)),
            ValueError,
            "stride must be positive",
        ),
        (
            lambda m: m.conv2d(X, Wt, dilation=0),
            ValueError,
            "dilation must be positive",
        ),
        (
            lambda m: m.conv2d(X, Wt, padding=-1),
            ValueError,
            "padding must be non-negative",
        ),
        (lambda m: m.conv2d(X, Wt, stride=(1, 2, 3)), ValueError, "pair"),
        (lambda m: m.conv2d(X, Wt, stride=1.5), TypeError, "stride must be an int"),
        (lambda m: m.conv2d(X[0], Wt), ValueError, r"\(N, C, H, W\).*\(3, 5, 5\)"),
        (lambda m: m.conv2d(X, Wt[0]), ValueError, r"\(F, C, kH, kW\)"),
        (
            lambda m: m.conv2d(X, Wt, np.zeros(3)),
            ValueError,
            r"bias must have shape \(4,\)",
        ),
        (lambda m: m.conv2d(X, Wt, np.zeros((4, 1))), ValueError, "bias"),
        (lambda m: m.conv2d(X.astype(int), Wt), TypeError, "float"),
        (lambda m: m.conv2d(X, Wt.astype(np.int32)), TypeError, "float"),
        (
            lambda m: m.conv2d_backward(np.zeros((2, 4, 3, 4)), X, Wt),
            ValueError,
            r"dout.*\(2, 4, 3, 3\)",
        ),
        (lambda m: m.max_pool2d(X, 2, padding=2), ValueError, "at most half"),
        (lambda m: m.max_pool2d(X, 3, padding=2), ValueError, "at most half"),
        (lambda m: m.max_pool2d(X, 6), ValueError, "larger than the padded input"),
        (lambda m: m.max_pool2d(X, 2, stride=0), ValueError, "stride must be positive"),
        (lambda m: m.max_pool2d(X.astype(np.int64), 2), TypeError, "float"),
        (lambda m: m.max_pool2d(X[0], 2), ValueError, r"\(N, C, H, W\)"),
        (
            lambda m: m.max_pool2d_backward(np.zeros((2, 3, 3, 3)), X, 2),
            ValueError,
            r"dout.*\(2, 3, 2, 2\)",
        ),
        (lambda m: m.avg_pool2d(X, 4, padding=3), ValueError, "at most half"),
        (
            lambda m: m.avg_pool2d_backward(np.zeros((1, 3, 2, 2)), X, 2),
            ValueError,
            "dout",
        ),
        (lambda m: m.relu(np.arange(3)), TypeError, "float"),
        (
            lambda m: m.relu_backward(np.zeros(3), np.zeros(4)),
            ValueError,
            r"dout.*\(4,\)",
        ),
        (
            lambda m: m.linear(np.zeros((2, 5)), np.zeros((3, 4))),
            ValueError,
            r"\(2, 5\).*\(3, 4\)",
        ),
        (
            lambda m: m.linear(np.zeros(5), np.zeros((3, 5))),
            ValueError,
            r"\(N, in_features\)",
        ),
        (
            lambda m: m.linear(np.zeros((2, 5)), np.zeros((3, 5)), np.zeros(5)),
            ValueError,
            "bias",
        ),
        (
            lambda m: m.linear_backward(
                np.zeros((2, 4)), np.zeros((2, 5)), np.zeros((3, 5))
            ),
            ValueError,
            "dout",
        ),
        (lambda m: m.softmax(np.arange(3)), TypeError, "float"),
        (
            lambda m: m.cross_entropy(np.zeros((2, 3)), np.array([0.0, 1.0])),
            TypeError,
            "integer",
        ),
        (
            lambda m: m.cross_entropy(np.zeros((2, 3)), np.array([0, 3])),
            ValueError,
            r"\[0, 3\)",
        ),
        (
            lambda m: m.cross_entropy(np.zeros((2, 3)), np.array([0, 1, 2])),
            ValueError,
            r"shape \(2,\)",
        ),
    ],
)
def test_errors(module, call, error, match):
    with pytest.raises(error, match=match):
        call(module)


def test_pair():
    assert F.pair(3, "k") == (3, 3)
    assert F.pair((2, 5), "k") == (2, 5)
    assert F.pair(np.int64(2), "k") == (2, 2)
    with pytest.raises(TypeError):
        F.pair(True, "k")
    with pytest.raises(ValueError):
        F.pair((1, 2, 3), "k")


def test_im2col_col2im_errors():
    with pytest.raises(ValueError, match="cols must have shape"):
        F.col2im(np.zeros((2, 27, 8)), X.shape, 3)
    with pytest.raises(TypeError):
        F.im2col(X.astype(int), 3)


# ---------------------------------------------------------------- conv2d methods
# (im2col / numba)


@given(conv_problem(), st.sampled_from(["im2col", "auto"]))
def test_conv_every_method_matches_loops(p, method):
    """Both paths of functional.conv2d equal the seven loops, whichever one "auto"
    picks."""
    args = (p["stride"], p["padding"], p["dilation"])
    out = F.conv2d(p["x"], p["w"], p["b"], *args, method=method)
    np.testing.assert_allclose(out, N.conv2d(p["x"], p["w"], p["b"], *args), **TOL)
    dout = p["rng"].standard_normal(out.shape)
    for fast, slow in zip(
        F.conv2d_backward(dout, p["x"], p["w"], *args, method=method),
        N.conv2d_backward(dout, p["x"], p["w"], *args),
    ):
        np.testing.assert_allclose(fast, slow, **TOL)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv_auto_uses_compiled_kernel_where_it_applies(dtype, monkeypatch):
    pytest.importorskip("numba")
    from cnnbook import fast

    calls = []
    original = fast.conv2d
    monkeypatch.setattr(
        fast, "conv2d", lambda *a, **k: calls.append(k) or original(*a, **k)
    )
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 1, 6, 6)).astype(dtype)
    w = rng.standard_normal((3, 1, 3, 3)).astype(dtype)
    out = F.conv2d(x, w, padding=1)
    assert calls == [{"kernel": "rows"}] and out.dtype == dtype
    np.testing.assert_allclose(
        out,
        F.conv2d(x, w, padding=1, method="im2col"),
        rtol=1e-5 if dtype == np.float32 else 1e-12,
        atol=1e-5,
    )
    F.conv2d(x, w, stride=2)  # stride 2: im2col
    F.conv2d(x, w, padding=1, gemm=np.matmul)  # a plugged-in GEMM: im2col
    other = np.float64 if dtype == np.float32 else np.float32
    F.conv2d(x, w.astype(other), padding=1)  # mixed dtypes: im2col (promotes)
    assert len(calls) == 1


def test_conv_auto_takes_the_implicit_gemm_for_many_channels(monkeypatch):
    """float32, stride 1, channels a multiple of the tile width: the tiny BLAS on
    implicit im2col, forward and backward; the same layer in float64, or with one
    channel fewer, runs the compiled loops."""
    pytest.importorskip("numba")
    from cnnbook import fast, implicit

    calls = []
    for module, name in [(implicit, "conv2d"), (implicit, "conv2d_backward")]:
        original = getattr(module, name)
        monkeypatch.setattr(
            module,
            name,
            lambda *a, _o=original, _n=name, **k: calls.append(_n) or _o(*a, **k),
        )
    monkeypatch.setattr(fast, "conv2d", lambda *a, **k: calls.append("fast"))
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, implicit.NR, 7, 7)).astype(np.float32)
    w = rng.standard_normal((5, implicit.NR, 3, 3)).astype(np.float32)
    out = F.conv2d(x, w, padding=1)
    dx, dw, db = F.conv2d_backward(np.ones_like(out), x, w, padding=1)
    assert calls == ["conv2d", "conv2d_backward"]
    ref = F.conv2d(x, w, padding=1, method="im2col")
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)
    F.conv2d(x.astype(np.float64), w.astype(np.float64), padding=1)
    F.conv2d(x[:, 1:], w[:, 1:], padding=1)
    assert calls == ["conv2d", "conv2d_backward", "fast", "fast"]


def test_conv_path_names_what_conv2d_runs():
    """conv_path reports auto's choice: the tiny BLAS for float32 many-channel
    layers, the compiled loops for one channel or float64, im2col for stride 2 or
    mixed dtypes, the plugged-in gemm when there is one."""
    pytest.importorskip("numba")
    from cnnbook.implicit import NR

    x = np.zeros((1, NR, 6, 6), np.float32)
    w = np.zeros((2, NR, 3, 3), np.float32)
    assert F.conv_path(x, w) == "implicit"
    assert F.conv_path(x[:, :1], w[:, :1]) == "numba"
    assert F.conv_path(x.astype(np.float64), w.astype(np.float64)) == "numba"
    assert F.conv_path(x, w, stride=2) == "im2col"
    assert F.conv_path(x, w.astype(np.float64)) == "im2col"
    assert F.conv_path(x, w, gemm=np.matmul) == "gemm"
    assert F.conv_path(x, w, method="numba") == "numba"
    with pytest.raises(ValueError, match="conv_path: method must be one of"):
        F.conv_path(x, w, method="fastest")
    with pytest.raises(ValueError, match="channels"):
        F.conv_path(x, w[:, :3])


def test_conv_method_errors():
    x, w = np.zeros((1, 1, 4, 4)), np.zeros((1, 1, 3, 3))
    with pytest.raises(ValueError, match="method must be one of"):
        F.conv2d(x, w, method="fastest")
    with pytest.raises(ValueError, match="method must be one of"):
        F.conv2d_backward(np.zeros((1, 1, 2, 2)), x, w, method="loops")
    if F._HAVE_NUMBA:
        with pytest.raises(ValueError, match="needs stride 1"):
            F.conv2d(x, w, stride=2, method="numba")


# ---------------------------------------------------------------- the im2col core


@given(conv_problem())
def test_conv2d_im2col_is_the_im2col_path_of_conv2d(p):
    """The hook-free core Chapter 3 shows is exactly what conv2d runs for im2col."""
    args = (p["stride"], p["padding"], p["dilation"])
    core = F.conv2d_im2col(p["x"], p["w"], p["b"], *args)
    np.testing.assert_array_equal(
        core, F.conv2d(p["x"], p["w"], p["b"], *args, method="im2col")
    )
    np.testing.assert_array_equal(
        core, F.conv2d(p["x"], p["w"], p["b"], *args, gemm=np.matmul)
    )
    np.testing.assert_allclose(core, N.conv2d(p["x"], p["w"], p["b"], *args), **TOL)


@given(conv_problem())
def test_conv2d_backward_im2col_is_the_im2col_path_of_conv2d_backward(p):
    """The hook-free backward Chapter 6 shows is exactly what conv2d_backward runs for
    im2col (with or without a gemm hook), and equals the loops."""
    args = (p["stride"], p["padding"], p["dilation"])
    out = F.conv2d_im2col(p["x"], p["w"], None, *args)
    dout = p["rng"].standard_normal(out.shape)
    core = F.conv2d_backward_im2col(dout, p["x"], p["w"], *args)
    for other in (
        F.conv2d_backward(dout, p["x"], p["w"], *args, method="im2col"),
        F.conv2d_backward(dout, p["x"], p["w"], *args, gemm=np.matmul),
    ):
        for a, b in zip(core, other):
            np.testing.assert_array_equal(a, b)
    for a, b in zip(core, N.conv2d_backward(dout, p["x"], p["w"], *args)):
        np.testing.assert_allclose(a, b, **TOL)


@given(conv_problem(), st.sampled_from(["auto", "im2col", "gemm"]))
def test_need_dx_false_skips_only_dx(p, method):
    args = (p["stride"], p["padding"], p["dilation"])
    out = F.conv2d_im2col(p["x"], p["w"], None, *args)
    dout = p["rng"].standard_normal(out.shape)
    kw = dict(gemm=np.matmul) if method == "gemm" else dict(method=method)
    dx, dw, db = F.conv2d_backward(dout, p["x"], p["w"], *args, **kw)
    none, dw2, db2 = F.conv2d_backward(dout, p["x"], p["w"], *args, need_dx=False, **kw)
    assert none is None
    np.testing.assert_allclose(dw2, dw, **TOL)  # the compiled dw-only kernel
    np.testing.assert_allclose(db2, db, **TOL)  # may sum in another order
    none, dw3, _ = F.conv2d_backward_im2col(dout, p["x"], p["w"], *args, need_dx=False)
    assert none is None
    np.testing.assert_allclose(dw3, dw, **TOL)


def test_conv2d_backward_im2col_rejects_what_conv2d_backward_rejects():
    x, w = np.zeros((1, 2, 4, 4)), np.zeros((3, 2, 3, 3))
    dout = np.zeros((1, 3, 2, 2))
    for call, error, match in [
        (lambda f: f(dout, x, np.zeros((3, 1, 3, 3))), ValueError, "channel mismatch"),
        (lambda f: f(dout, x, w, padding=0, dilation=3), ValueError, "kernel larger"),
        (lambda f: f(dout, x.astype(int), w), TypeError, "float"),
        (lambda f: f(np.zeros((1, 3, 3, 3)), x, w), ValueError, "dout must have"),
        (lambda f: f(dout.astype(int), x, w), TypeError, "dout must be a float"),
    ]:
        for f in (F.conv2d_backward, F.conv2d_backward_im2col):
            with pytest.raises(error, match=match):
                call(f)


def test_conv2d_im2col_rejects_what_conv2d_rejects():
    x, w = np.zeros((1, 2, 4, 4)), np.zeros((3, 2, 3, 3))
    for call, error, match in [
        (lambda f: f(x, np.zeros((3, 1, 3, 3))), ValueError, "channel mismatch"),
        (lambda f: f(x, w, padding=0, dilation=3), ValueError, "kernel larger"),
        (lambda f: f(x.astype(int), w), TypeError, "float"),
        (lambda f: f(x, w, np.zeros(2)), ValueError, "bias"),
    ]:
        for f in (F.conv2d, F.conv2d_im2col):
            with pytest.raises(error, match=match):
                call(f)


def test_gemm_is_used_for_the_im2col_product():
    calls = []

    def gemm(a, b):
        calls.append((a.shape, b.shape))
        return np.matmul(a, b)

    x, w = np.ones((2, 1, 5, 5)), np.ones((4, 1, 3, 3))
    out = F.conv2d(x, w, gemm=gemm)
    assert calls == [((4, 9), (2, 9, 9))]
    np.testing.assert_array_equal(out, np.full((2, 4, 3, 3), 9.0))


# ---------------------------------------------------------------- same_padding


# Fixed reference values (what PyTorch's padding="same" pads; checked against PyTorch in
# tests/test_torch_reference.py): ((top, bottom), (left, right)).
@pytest.mark.parametrize(
    "kernel_size, dilation, expected",
    [
        (1, 1, ((0, 0), (0, 0))),
        (3, 1, ((1, 1), (1, 1))),
        (4, 1, ((1, 2), (1, 2))),
        (4, 2, ((3, 3), (3, 3))),  # d(k-1) = 6 is even: symmetric, though k is even
        (3, 2, ((2, 2), (2, 2))),
        (2, 3, ((1, 2), (1, 2))),
        ((3, 2), (1, 3), ((1, 1), (1, 2))),
        ([5, 4], 1, ((2, 2), (1, 2))),
    ],
)
def test_same_padding_reference_values(kernel_size, dilation, expected):
    assert F.same_padding(kernel_size, dilation) == expected


@given(
    k=st.tuples(st.integers(1, 6), st.integers(1, 6)),
    d=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    seed=st.integers(0, 2**16),
)
def test_same_padding_keeps_the_size(k, d, seed):
    (top, bottom), (left, right) = F.same_padding(k, d)
    for before, after, kk, dd in ((top, bottom, k[0], d[0]), (left, right, k[1], d[1])):
        assert before + after == dd * (kk - 1)
        assert after - before == (dd * (kk - 1)) % 2  # symmetric iff d(k-1) is even
    rng = np.random.default_rng(seed)
    h, w = d[0] * (k[0] - 1) + 2, d[1] * (k[1] - 1) + 3
    x = rng.standard_normal((1, 2, h, w))
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    out = F.conv2d(xp, rng.standard_normal((3, 2, *k)), dilation=d, method="im2col")
    assert out.shape == (1, 3, h, w)


@pytest.mark.parametrize(
    "kernel_size, dilation, error",
    [
        (0, 1, ValueError),
        ((3, -1), 1, ValueError),
        (2.0, 1, TypeError),
        ((3, 3, 3), 1, ValueError),
        ("3", 1, TypeError),
        (3, 0, ValueError),
        (3, (1, 0), ValueError),
        (3, True, TypeError),
        (3, 1.5, TypeError),
    ],
)
def test_same_padding_rejects_what_conv2d_rejects(kernel_size, dilation, error):
    from cnnbook.layers import Conv2d

    with pytest.raises(error) as ours:
        F.same_padding(kernel_size, dilation)
    # The same error and message as the convolution gives for the same argument.
    with pytest.raises(error) as theirs:
        if type(dilation) is int and dilation == 1:
            Conv2d(1, 1, kernel_size)
        else:
            F.conv2d(np.zeros((1, 1, 9, 9)), np.zeros((1, 1, 3, 3)), dilation=dilation)
    assert str(ours.value) == str(theirs.value)


# ---------------------------------------------------------------- ceil_mode


# (n, k, s, p) -> (floor output, ceil output), as PyTorch's max_pool2d computes them.
# (3, 2, 2, 1) and (4, 4, 3, 2): rounding up would add a window that starts in the right
# padding; PyTorch (and cnnbook) drop it.
CEIL_REFERENCE = [
    ((5, 2, 2, 0), (2, 3)),
    ((3, 2, 2, 1), (2, 2)),
    ((6, 3, 2, 1), (3, 4)),
    ((7, 3, 3, 1), (3, 3)),
    ((8, 3, 2, 0), (3, 4)),
    ((4, 4, 3, 2), (2, 2)),
    ((9, 2, 4, 1), (3, 3)),
]


@pytest.mark.parametrize("nksp, expected", CEIL_REFERENCE)
def test_ceil_mode_reference_sizes(nksp, expected):
    n, k, s, p = nksp
    x = np.zeros((1, 1, n, n + 1))
    for mode, size in zip((False, True), expected):
        out = F.max_pool2d(x, k, s, p, ceil_mode=mode)
        assert out.shape[2] == size
        assert N.max_pool2d(x, k, s, p, ceil_mode=mode).shape == out.shape


def test_ceil_mode_reference_values():
    x = np.arange(25.0).reshape(1, 1, 5, 5)
    out = F.max_pool2d(x, 2, ceil_mode=True)
    np.testing.assert_array_equal(out[0, 0], [[6, 8, 9], [16, 18, 19], [21, 23, 24]])
    dout = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    expected = np.zeros((5, 5))  # what torch.autograd gives for the same dout
    expected[1, 1], expected[1, 3], expected[1, 4] = 1, 2, 3
    expected[3, 1], expected[3, 3], expected[3, 4] = 4, 5, 6
    expected[4, 1], expected[4, 3], expected[4, 4] = 7, 8, 9
    for backward in (F.max_pool2d_backward, N.max_pool2d_backward):
        dx = backward(dout, x, 2, ceil_mode=True)
        np.testing.assert_array_equal(dx[0, 0], expected)


@st.composite
def ceil_pool_problem(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    h = draw(st.integers(max(1, kh - 2 * ph), kh + 6))
    w = draw(st.integers(max(1, kw - 2 * pw), kw + 6))
    seed = draw(st.integers(0, 2**16))
    x = np.random.default_rng(seed).standard_normal((2, 2, h, w))
    return x, (kh, kw), (sh, sw), (ph, pw)


@given(ceil_pool_problem())
def test_ceil_mode_fast_equals_loops_and_the_rule(problem):
    x, k, s, p = problem
    out = F.max_pool2d(x, k, s, p, ceil_mode=True)
    np.testing.assert_array_equal(out, N.max_pool2d(x, k, s, p, ceil_mode=True))
    floor = F.max_pool2d(x, k, s, p)
    for axis in (0, 1):
        n, size = x.shape[2 + axis], out.shape[2 + axis]
        # one more output than the floor at most, and only when the floor drops cells
        assert size - floor.shape[2 + axis] in (0, 1)
        assert (size - 1) * s[axis] < n + p[axis]  # the last window starts in time
    # independently: the windows o with o·s < n + 2p - k + s (the ceiling) whose start
    # o·s - p lies inside the input or its left padding (o·s < n + p)
    for axis in (0, 1):
        n, kk, ss, pp = x.shape[2 + axis], k[axis], s[axis], p[axis]
        starts = [
            o for o in range(n + 2 * pp) if o * ss < min(n + 2 * pp - kk + ss, n + pp)
        ]
        assert out.shape[2 + axis] == len(starts)
    # the floor windows are the first windows of the ceil output
    np.testing.assert_array_equal(out[:, :, : floor.shape[2], : floor.shape[3]], floor)
    dout = np.random.default_rng(1).standard_normal(out.shape)
    dx = F.max_pool2d_backward(dout, x, k, s, p, ceil_mode=True)
    np.testing.assert_allclose(
        dx, N.max_pool2d_backward(dout, x, k, s, p, ceil_mode=True), **TOL
    )
    # every window routes its whole gradient to one real pixel
    np.testing.assert_allclose(dx.sum(), dout.sum(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("mode", [1, 0, "yes", None, 1.0])
def test_ceil_mode_must_be_a_bool(mode):
    x = np.zeros((1, 1, 4, 4))
    for fn in (F.max_pool2d, N.max_pool2d):
        with pytest.raises(TypeError, match="ceil_mode must be a bool"):
            fn(x, 2, ceil_mode=mode)
    with pytest.raises(TypeError, match="ceil_mode must be a bool"):
        F.max_pool2d_backward(np.zeros((1, 1, 2, 2)), x, 2, ceil_mode=mode)


def test_ceil_mode_keeps_the_padding_rule():
    with pytest.raises(ValueError, match="at most half the kernel"):
        F.max_pool2d(np.zeros((1, 1, 5, 5)), 2, padding=2, ceil_mode=True)


def test_naive_conv2d_uses_conv_output_size():
    import inspect

    assert "conv_output_size(" in inspect.getsource(N.conv2d)


# ---------------------------------------------------------------- max pooling that
# records its argmax (issue 18)


@st.composite
def indexed_pool_problem(draw):
    """Pooling problems of every kind, with ties common (rounded values) and the 2×2
    windows of the compiled fast kernel frequent."""
    two = draw(st.booleans())
    kh, kw = (2, 2) if two else (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    ph, pw = (
        (0, 0)
        if two
        else (draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2)))
    )
    ceil_mode = draw(st.booleans())
    h = draw(st.integers(max(1, kh - 2 * ph), kh + 6))
    w = draw(st.integers(max(1, kw - 2 * pw), kw + 6))
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    scale = draw(st.sampled_from([1.0, 2.0, 1e3]))
    x = np.round(rng.standard_normal((2, 2, h, w)) * scale).astype(dtype)
    if draw(st.booleans()):  # infinities must be routed like any other maximum
        x.flat[rng.integers(x.size, size=3)] = [-np.inf, np.inf, -np.inf]
    return x, (kh, kw), stride, (ph, pw), ceil_mode, rng


def _pool_tolerance(x, k, stride):
    """f64 to 1e-10; f32 to its rounding times the number of windows sharing a pixel."""
    s = k if stride is None else stride
    overlaps = -(-k[0] // s[0]) * -(-k[1] // s[1])
    if x.dtype == np.float64:
        return dict(rtol=1e-10, atol=1e-10)
    eps = float(np.finfo(np.float32).eps)
    return dict(rtol=4 * eps * overlaps, atol=4 * eps * overlaps)


@given(indexed_pool_problem(), st.sampled_from(["numpy", "numba", "auto"]))
def test_max_pool2d_with_indices_equals_the_loops(problem, method):
    x, k, s, p, ceil_mode, rng = problem
    out, indices = F.max_pool2d_with_indices(x, k, s, p, ceil_mode, method=method)
    assert out.dtype == x.dtype and indices.dtype == np.int64
    np.testing.assert_array_equal(out, N.max_pool2d(x, k, s, p, ceil_mode))
    np.testing.assert_array_equal(out, F.max_pool2d(x, k, s, p, ceil_mode))
    # the index points at the maximum itself
    planes = x.reshape(*x.shape[:2], -1)
    np.testing.assert_array_equal(
        np.take_along_axis(planes, indices.reshape(*x.shape[:2], -1), 2),
        out.reshape(*x.shape[:2], -1),
    )
    dout = rng.standard_normal(out.shape).astype(x.dtype)
    dx = F.max_pool2d_with_indices_backward(dout, x, indices, method=method)
    assert dx.dtype == x.dtype and dx.shape == x.shape
    want = N.max_pool2d_backward(dout, x, k, s, p, ceil_mode)
    np.testing.assert_allclose(dx, want, **_pool_tolerance(x, k, s))
    np.testing.assert_allclose(
        dx,
        F.max_pool2d_backward(dout, x, k, s, p, ceil_mode),
        **_pool_tolerance(x, k, s),
    )


@given(indexed_pool_problem())
def test_compiled_and_numpy_pooling_record_the_same_indices(problem):
    x, k, s, p, ceil_mode, _ = problem
    x = x.copy()
    x.flat[::7] = np.nan  # NaN is the maximum, the window's last NaN (PyTorch)
    a = F.max_pool2d_with_indices(x, k, s, p, ceil_mode, method="numba")
    b = F.max_pool2d_with_indices(x, k, s, p, ceil_mode, method="numpy")
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_max_pool2d_with_indices_ties_go_to_the_first_maximum():
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 2:, 2:] = [[5, 5], [5, 5]]
    for method in ("numpy", "numba"):
        out, idx = F.max_pool2d_with_indices(x, 2, method=method)
        np.testing.assert_array_equal(idx[0, 0], [[0, 2], [8, 10]])
        out, idx = F.max_pool2d_with_indices(x, 3, 1, 1, method=method)
        assert idx[0, 0, 3, 3] == 10  # the first 5 of the last window
        dx = F.max_pool2d_with_indices_backward(np.ones_like(out), x, idx)
        assert dx[0, 0, 2, 2] == 9 and dx.sum() == out.size  # nine windows chose it


def test_max_pool2d_with_indices_errors():
    x = np.zeros((1, 2, 4, 4))
    out, idx = F.max_pool2d_with_indices(x, 2)
    bwd = F.max_pool2d_with_indices_backward
    for call, error, match in [
        (lambda: F.max_pool2d_with_indices(x, 2, method="loops"), ValueError, "method"),
        (lambda: F.max_pool2d_with_indices(x.astype(int), 2), TypeError, "float"),
        (lambda: F.max_pool2d_with_indices(x, 2, padding=2), ValueError, "half"),
        (lambda: F.max_pool2d_with_indices(x[0], 2), ValueError, r"\(N, C, H, W\)"),
        (lambda: bwd(out, x, idx.astype(float)), TypeError, "integer"),
        (lambda: bwd(out, x, idx[:, :1]), ValueError, "do not belong"),
        (lambda: bwd(out, x, idx + 16), ValueError, r"\[0, 16\)"),
        (lambda: bwd(out, x, idx - 1), ValueError, r"\[0, 16\)"),
        (lambda: bwd(out[..., :1], x, idx), ValueError, "dout must have"),
        (lambda: bwd(out.astype(int), x, idx), TypeError, "dout must be a float"),
        (lambda: bwd(out, x, idx, method="fast"), ValueError, "method"),
    ]:
        with pytest.raises(error, match=match):
            call()
