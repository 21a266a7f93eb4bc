"""cnnbook.functional against PyTorch, when PyTorch is installed (it is optional:
skipped otherwise).

Forward results must equal ``torch.nn.functional`` and gradients must equal
``torch.autograd``, in float64, including stride, padding and dilation.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cnnbook import functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional

TOL = dict(rtol=1e-10, atol=1e-10)


def leaf(a):
    return torch.tensor(a, dtype=torch.float64, requires_grad=True)


@st.composite
def conv_case(draw):
    n, c, f = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 4))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    p = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    d = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    h = draw(st.integers(max(1, d[0] * (kh - 1) + 1 - 2 * p[0]), 12))
    w = draw(st.integers(max(1, d[1] * (kw - 1) + 1 - 2 * p[1]), 12))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    return (
        rng.standard_normal((n, c, h, w)),
        rng.standard_normal((f, c, kh, kw)),
        rng.standard_normal(f),
        s,
        p,
        d,
        rng,
    )


@given(conv_case())
def test_conv2d_forward_and_gradients_equal_torch(case):
    x, w, b, s, p, d, rng = case
    xt, wt, bt = leaf(x), leaf(w), leaf(b)
    out_t = TF.conv2d(xt, wt, bt, stride=s, padding=p, dilation=d)
    out = F.conv2d(x, w, b, s, p, d)
    np.testing.assert_allclose(out, out_t.detach().numpy(), **TOL)
    dout = rng.standard_normal(out.shape)
    out_t.backward(torch.from_numpy(dout))
    dx, dw, db = F.conv2d_backward(dout, x, w, s, p, d)
    np.testing.assert_allclose(dx, xt.grad.numpy(), **TOL)
    np.testing.assert_allclose(dw, wt.grad.numpy(), **TOL)
    np.testing.assert_allclose(db, bt.grad.numpy(), **TOL)


@st.composite
def pool_case(draw):
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    s = draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    p = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2)))
    h = draw(st.integers(max(1, k[0] - 2 * p[0]), 10))
    w = draw(st.integers(max(1, k[1] - 2 * p[1]), 10))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    x = np.round(
        rng.standard_normal((2, 2, h, w)) * 2
    )  # many ties: tests the tie rule too
    return x, k, s, p, rng


@given(pool_case())
def test_max_pool2d_equals_torch(case):
    x, k, s, p, rng = case
    xt = leaf(x)
    out_t = TF.max_pool2d(xt, k, s, p)
    out = F.max_pool2d(x, k, s, p)
    np.testing.assert_array_equal(out, out_t.detach().numpy())
    dout = rng.standard_normal(out.shape)
    out_t.backward(torch.from_numpy(dout))
    np.testing.assert_allclose(
        F.max_pool2d_backward(dout, x, k, s, p), xt.grad.numpy(), **TOL
    )


@given(pool_case())
def test_avg_pool2d_equals_torch(case):
    x, k, s, p, rng = case
    xt = leaf(x)
    out_t = TF.avg_pool2d(xt, k, s, p)
    out = F.avg_pool2d(x, k, s, p)
    np.testing.assert_allclose(out, out_t.detach().numpy(), **TOL)
    dout = rng.standard_normal(out.shape)
    out_t.backward(torch.from_numpy(dout))
    np.testing.assert_allclose(
        F.avg_pool2d_backward(dout, x, k, s, p), xt.grad.numpy(), **TOL
    )


def test_relu_equals_torch_including_zero():
    x = np.array([[-2.0, -0.0, 0.0, 1e-300, 3.0]])
    xt = leaf(x)
    out_t = torch.relu(xt)
    np.testing.assert_array_equal(F.relu(x), out_t.detach().numpy())
    dout = np.arange(1.0, 6.0).reshape(1, 5)
    out_t.backward(torch.from_numpy(dout))
    np.testing.assert_array_equal(F.relu_backward(dout, x), xt.grad.numpy())


def test_linear_equals_torch():
    rng = np.random.default_rng(0)
    x, W, b = (
        rng.standard_normal((4, 7)),
        rng.standard_normal((3, 7)),
        rng.standard_normal(3),
    )
    xt, Wt, bt = leaf(x), leaf(W), leaf(b)
    out_t = TF.linear(xt, Wt, bt)
    np.testing.assert_allclose(F.linear(x, W, b), out_t.detach().numpy(), **TOL)
    dout = rng.standard_normal((4, 3))
    out_t.backward(torch.from_numpy(dout))
    for ours, theirs in zip(F.linear_backward(dout, x, W), (xt.grad, Wt.grad, bt.grad)):
        np.testing.assert_allclose(ours, theirs.numpy(), **TOL)


@pytest.mark.parametrize("scale", [1.0, 50.0, 1e4])
def test_softmax_log_softmax_cross_entropy_equal_torch(scale):
    rng = np.random.default_rng(1)
    z = rng.standard_normal((6, 10)) * scale
    t = rng.integers(0, 10, size=6)
    zt = leaf(z)
    np.testing.assert_allclose(
        F.softmax(z), TF.softmax(zt, dim=-1).detach().numpy(), **TOL
    )
    np.testing.assert_allclose(
        F.softmax(z, axis=0), TF.softmax(zt, dim=0).detach().numpy(), **TOL
    )
    np.testing.assert_allclose(
        F.log_softmax(z),
        TF.log_softmax(zt, dim=-1).detach().numpy(),
        rtol=1e-10,
        atol=1e-8,
    )
    loss_t = TF.cross_entropy(zt, torch.from_numpy(t))
    assert F.cross_entropy(z, t) == pytest.approx(loss_t.item(), rel=1e-10, abs=1e-8)
    loss_t.backward()
    np.testing.assert_allclose(
        F.softmax_cross_entropy_backward(z, t), zt.grad.numpy(), **TOL
    )


def test_float32_conv_close_to_torch():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 10, 10)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    out = F.conv2d(x, w, None, 2, 1, 1)
    assert out.dtype == np.float32
    ref = TF.conv2d(
        torch.from_numpy(x), torch.from_numpy(w), stride=2, padding=1
    ).numpy()
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


@given(pool_case())
def test_max_pool2d_ceil_mode_equals_torch(case):
    x, k, s, p, rng = case
    xt = leaf(x)
    out_t = TF.max_pool2d(xt, k, s, p, ceil_mode=True)
    out = F.max_pool2d(x, k, s, p, ceil_mode=True)
    assert out.shape == tuple(out_t.shape)
    np.testing.assert_array_equal(out, out_t.detach().numpy())
    dout = rng.standard_normal(out.shape)
    out_t.backward(torch.from_numpy(dout))
    np.testing.assert_allclose(
        F.max_pool2d_backward(dout, x, k, s, p, ceil_mode=True),
        xt.grad.numpy(),
        **TOL,
    )


@pytest.mark.parametrize("n, k, s, p", [(3, 2, 2, 1), (4, 4, 3, 2), (5, 2, 2, 0)])
def test_ceil_mode_drops_a_window_starting_in_the_right_padding_like_torch(n, k, s, p):
    x = np.zeros((1, 1, n, n))
    ref = TF.max_pool2d(torch.from_numpy(x), k, s, p, ceil_mode=True)
    assert F.max_pool2d(x, k, s, p, ceil_mode=True).shape == tuple(ref.shape)


@given(
    k=st.tuples(st.integers(1, 6), st.integers(1, 6)),
    d=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    seed=st.integers(0, 2**16),
)
def test_same_padding_is_torch_padding_same(k, d, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1, 2, d[0] * (k[0] - 1) + 3, d[1] * (k[1] - 1) + 2))
    w = rng.standard_normal((2, 2, *k))
    import warnings

    with warnings.catch_warnings():  # even kernels: "requires a zero-padded copy"
        warnings.simplefilter("ignore")
        ref = TF.conv2d(
            torch.from_numpy(x), torch.from_numpy(w), padding="same", dilation=d
        ).numpy()
    (top, bottom), (left, right) = F.same_padding(k, d)
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    np.testing.assert_allclose(F.conv2d(xp, w, dilation=d), ref, **TOL)
    # and the padding PyTorch's Conv2d module stores for padding="same"
    m = torch.nn.Conv2d(2, 2, k, padding="same", dilation=d)
    left_t, right_t, top_t, bottom_t = m._reversed_padding_repeated_twice
    assert ((top_t, bottom_t), (left_t, right_t)) == ((top, bottom), (left, right))


@given(pool_case(), st.booleans(), st.booleans(), st.sampled_from(["numpy", "numba"]))
def test_max_pool2d_with_indices_equals_torch_return_indices(case, ceil, nan, method):
    x, k, s, p, rng = case
    if nan:  # PyTorch takes a NaN as the maximum, the window's last one
        x = x.copy()
        x.flat[rng.integers(x.size, size=4)] = np.nan
    out_t, idx_t = TF.max_pool2d(
        torch.from_numpy(x), k, s, p, ceil_mode=ceil, return_indices=True
    )
    out, idx = F.max_pool2d_with_indices(x, k, s, p, ceil, method=method)
    np.testing.assert_array_equal(out, out_t.numpy())
    np.testing.assert_array_equal(idx, idx_t.numpy())
    xt = leaf(x)
    out_t = TF.max_pool2d(xt, k, s, p, ceil_mode=ceil)
    dout = rng.standard_normal(out.shape)
    out_t.backward(torch.from_numpy(dout))
    np.testing.assert_allclose(
        F.max_pool2d_with_indices_backward(dout, x, idx, method=method),
        xt.grad.numpy(),
        **TOL,
    )
