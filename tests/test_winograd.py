"""cnnbook.winograd: the transforms, the 1-D identity, conv2d and its backward.

References are independent of the module: ``numpy.correlate`` for 1-D, the im2col path
of ``cnnbook.functional`` (itself tested against the seven loops) for 2-D.

float64: within 1e-9 relative to the largest reference entry, for every m.
float32: within ``F32_BOUND[m]`` of the float64 reference, relative to its largest
entry. The bounds are about ten times the worst error measured over random shapes with
N(0, 1) data and weights and up to 5 channels (F(2,3) 3e-7, F(4,3) 3e-6, F(6,3) 5e-6,
F(8,3) 5e-4): the error grows with m because the transforms' entries grow with the
interpolation points (Chapter 11 measures it).
"""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cnnbook import functional, winograd
from cnnbook.gradcheck import assert_gradients_close

F32_BOUND = {1: 5e-6, 2: 5e-6, 3: 2e-5, 4: 5e-5, 5: 5e-5, 6: 1e-4, 7: 2e-3, 8: 5e-3}
F64_BOUND = 1e-9

# Lavin & Gray (2016), F(2,3) and F(4,3): the published matrices.
LAVIN = {
    2: (
        [[1, 1, 1, 0], [0, 1, -1, -1]],
        [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]],
        [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
    ),
    4: (
        [
            [1, 1, 1, 1, 1, 0],
            [0, 1, -1, 2, -2, 0],
            [0, 1, 1, 4, 4, 0],
            [0, 1, -1, 8, -8, 1],
        ],
        [
            [1 / 4, 0, 0],
            [-1 / 6, -1 / 6, -1 / 6],
            [-1 / 6, 1 / 6, -1 / 6],
            [1 / 24, 1 / 12, 1 / 6],
            [1 / 24, -1 / 12, 1 / 6],
            [0, 0, 1],
        ],
        [
            [4, 0, -5, 0, 1, 0],
            [0, -4, -4, 1, 1, 0],
            [0, 4, -4, -1, 1, 0],
            [0, -2, -1, 2, 1, 0],
            [0, 2, -1, -2, 1, 0],
            [0, 4, 0, -5, 0, 1],
        ],
    ),
}


def rel_err(got, ref):
    ref = np.asarray(ref, dtype=np.float64)
    return float(np.abs(np.asarray(got, np.float64) - ref).max() / np.abs(ref).max())


def winograd_1d(d, g, m, r, points=None):
    AT, G, BT = winograd.winograd_matrices(m, r, points)
    return AT @ ((G @ g) * (BT @ d))


# ----------------------------------------------------------------------------------
# The transforms
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize("m", winograd.SUPPORTED_M)
@pytest.mark.parametrize("r", [2, 3])
def test_1d_identity_for_every_supported_m(m, r):
    rng = np.random.default_rng(m * 10 + r)
    AT, G, BT = winograd.winograd_matrices(m, r)
    assert AT.shape == (m, m + r - 1)
    assert G.shape == (m + r - 1, r)
    assert BT.shape == (m + r - 1, m + r - 1)
    for _ in range(5):
        d = rng.standard_normal(m + r - 1)
        g = rng.standard_normal(r)
        y = winograd_1d(d, g, m, r)
        assert rel_err(y, np.correlate(d, g, "valid")) < F64_BOUND


@pytest.mark.parametrize("m", [2, 4, 6])
def test_1d_identity_is_exact_in_rational_arithmetic(m):
    AT, G, BT = winograd.winograd_matrices(m, 3, exact=True)
    assert all(isinstance(v, Fraction) for M in (AT, G, BT) for v in M.flat)
    rng = np.random.default_rng(m)
    d = [Fraction(int(v)) for v in rng.integers(-9, 10, m + 2)]
    g = [Fraction(int(v)) for v in rng.integers(-9, 10, 3)]
    y = AT.dot(G.dot(g) * BT.dot(d))
    assert list(y) == [sum(d[i + k] * g[k] for k in range(3)) for i in range(m)]


@pytest.mark.parametrize("m", [2, 4])
def test_same_algorithm_as_lavin_and_gray_up_to_row_scaling(m):
    AT, G, BT = winograd.winograd_matrices(m, 3)
    AT_l, G_l, BT_l = (np.array(M, dtype=np.float64) for M in LAVIN[m])
    # the published matrices satisfy the identity too
    rng = np.random.default_rng(0)
    d, g = rng.standard_normal(m + 2), rng.standard_normal(3)
    y = AT_l @ ((G_l @ g) * (BT_l @ d))
    assert rel_err(y, np.correlate(d, g, "valid")) < F64_BOUND
    # row j of G and of BT (and column j of AT) differ by a factor only
    for j in range(m + 2):
        for ours, theirs in ((G[j], G_l[j]), (BT[j], BT_l[j]), (AT[:, j], AT_l[:, j])):
            k = np.flatnonzero(theirs)[0]
            np.testing.assert_allclose(ours, ours[k] / theirs[k] * theirs, atol=1e-12)


def test_default_points_are_lavins():
    assert winograd.default_points(2, 3) == (0, 1, -1)
    assert winograd.default_points(4, 3) == (0, 1, -1, 2, -2)
    assert winograd.default_points(6, 3) == (0, 1, -1, 2, -2, Fraction(1, 2), -0.5)


def test_f23_transforms():
    AT, G, BT = winograd.winograd_matrices(2, 3, exact=True)
    assert AT.tolist() == [[1, 1, 1, 0], [0, 1, -1, 1]]
    assert G.tolist() == [[-1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]]
    assert BT.tolist() == [[-1, 0, 1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, -1, 0, 1]]


@pytest.mark.parametrize(
    "points",
    [
        [0, 1, -1, 0.5, -0.5],  # five finite points, ∞ added
        [0, 1, -1, 2, -2, np.inf],  # ∞ given explicitly
        [0, 1, -1, 2, -2, 3],  # six finite points, no ∞
        [Fraction(1, 3), 1, -1, 2, -2],
        np.array([0.0, 1.0, -1.0, 0.25, -4.0]),
    ],
)
def test_other_points_give_the_same_convolution(points):
    rng = np.random.default_rng(5)
    d, g = rng.standard_normal(6), rng.standard_normal(3)
    y = winograd_1d(d, g, 4, 3, points)
    assert rel_err(y, np.correlate(d, g, "valid")) < F64_BOUND


@pytest.mark.parametrize(
    "args, match",
    [
        ((0, 3), "m must be >= 1"),
        ((2, 0), "r must be >= 1"),
        ((2.0, 3), "m must be a positive int"),
        ((True, 3), "m must be a positive int"),
        ((2, "3"), "r must be a positive int"),
        ((2, 3, [0, 1]), "needs 3 finite points"),
        ((2, 3, [0, 1, -1, 2, 3]), "needs 3 finite points"),
        ((2, 3, [0, 1, 1]), "distinct"),
        ((2, 3, [0, 1, 1.0, 2]), "distinct"),
        ((2, 3, [0, 1, np.inf, np.inf]), "at most one point may be inf"),
        ((2, 3, [0, 1, np.nan]), "finite or"),
        ((2, 3, [0, 1, "a"]), "real number"),
        ((20, 3), "pass points explicitly"),
    ],
)
def test_bad_matrix_arguments_raise(args, match):
    with pytest.raises(ValueError, match=match):
        winograd.winograd_matrices(*args)


def test_counts_and_tiles():
    assert winograd.multiplications(2, 3) == (16, 36)
    assert winograd.multiplications(4, 3) == (36, 144)
    assert winograd.multiplications(2, 3, dims=1) == (4, 6)
    assert winograd.tiles_per_axis(28, 1, 2) == 14
    assert winograd.tiles_per_axis(28, 1, 6) == 5
    assert winograd.tiles_per_axis(5, 0, 4) == 1


# ----------------------------------------------------------------------------------
# conv2d and conv2d_backward against the im2col path
# ----------------------------------------------------------------------------------

geometry = st.tuples(
    st.integers(1, 3),  # N
    st.integers(1, 4),  # C
    st.integers(1, 4),  # F
    st.integers(1, 13),  # H
    st.integers(1, 13),  # W
    st.integers(0, 3),  # padding (h)
    st.integers(0, 3),  # padding (w)
    st.sampled_from(winograd.SUPPORTED_M),
    st.integers(0, 2**16),  # seed
).filter(lambda g: g[3] + 2 * g[5] >= 3 and g[4] + 2 * g[6] >= 3)


def _problem(g, dtype):
    N, C, F, H, W, ph, pw, m, seed = g
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W))
    w = rng.standard_normal((F, C, 3, 3))
    b = rng.standard_normal(F)
    padding = (ph, pw)
    ref = functional.conv2d(x, w, b, padding=padding, method="im2col")
    dout = rng.standard_normal(ref.shape)
    refs = functional.conv2d_backward(dout, x, w, padding=padding, method="im2col")
    cast = [a.astype(dtype) for a in (x, w, b, dout)]
    return cast, padding, m, ref, refs


@given(geometry)
def test_conv2d_float64_equals_direct(g):
    (x, w, b, _), padding, m, ref, _ = _problem(g, np.float64)
    y = winograd.conv2d(x, w, b, padding, m)
    assert y.shape == ref.shape and y.dtype == np.float64
    assert rel_err(y, ref) < F64_BOUND


@given(geometry)
def test_conv2d_float32_within_the_bound_for_m(g):
    (x, w, b, _), padding, m, ref, _ = _problem(g, np.float32)
    y = winograd.conv2d(x, w, b, padding, m)
    assert y.shape == ref.shape and y.dtype == np.float32
    assert rel_err(y, ref) < F32_BOUND[m]


@given(geometry)
def test_backward_float64_equals_direct(g):
    (x, w, _, dout), padding, m, _, refs = _problem(g, np.float64)
    grads = winograd.conv2d_backward(dout, x, w, padding, m)
    for name, got, want in zip(("dx", "dw", "db"), grads, refs):
        assert got.shape == want.shape and got.dtype == np.float64, name
        assert rel_err(got, want) < F64_BOUND, name


@given(geometry)
def test_backward_float32_within_the_bound_for_m(g):
    (x, w, _, dout), padding, m, _, refs = _problem(g, np.float32)
    grads = winograd.conv2d_backward(dout, x, w, padding, m)
    for name, got, want in zip(("dx", "dw", "db"), grads, refs):
        assert got.shape == want.shape and got.dtype == np.float32, name
        assert rel_err(got, want) < F32_BOUND[m], name


def test_other_points_and_tiny_blas_gemm():
    blas = pytest.importorskip("cnnbook.blas")
    pytest.importorskip("numba")
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 5, 10, 9)).astype(np.float32)
    w = rng.standard_normal((3, 5, 3, 3)).astype(np.float32)
    ref = functional.conv2d(x.astype(np.float64), w.astype(np.float64), padding=1)
    y = winograd.conv2d(x, w, None, 1, 4, points=[0, 1, -1, 0.5, -0.5])
    assert rel_err(y, ref) < F32_BOUND[4]
    y = winograd.conv2d(x, w, None, 1, 4, gemm=blas.matmul)
    assert rel_err(y, ref) < F32_BOUND[4]
    dout = rng.standard_normal(ref.shape).astype(np.float32)
    want = functional.conv2d_backward(
        dout.astype(np.float64), x.astype(np.float64), w.astype(np.float64), padding=1
    )
    got = winograd.conv2d_backward(dout, x, w, 1, 4, gemm=blas.matmul)
    for a, e in zip(got, want):
        assert rel_err(a, e) < F32_BOUND[4]


class WinogradConv:
    """winograd.conv2d as a layer, for cnnbook.gradcheck."""

    def __init__(self, C, F, padding, m, seed=0):
        rng = np.random.default_rng(seed)
        self.params = {
            "weight": rng.standard_normal((F, C, 3, 3)),
            "bias": rng.standard_normal(F),
        }
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.padding, self.m = padding, m

    def forward(self, x):
        self.x = x
        p = self.params
        return winograd.conv2d(x, p["weight"], p["bias"], self.padding, self.m)

    def backward(self, dout):
        dx, dw, db = winograd.conv2d_backward(
            dout, self.x, self.params["weight"], self.padding, self.m
        )
        self.grads["weight"][...] = dw
        self.grads["bias"][...] = db
        return dx


@pytest.mark.parametrize(
    "m, padding, shape",
    [(2, 1, (2, 3, 7, 6)), (4, 0, (1, 2, 9, 11)), (6, (2, 1), (2, 2, 5, 8))],
)
def test_gradcheck(m, padding, shape):
    x = np.random.default_rng(1).standard_normal(shape)
    assert_gradients_close(WinogradConv(shape[1], 3, padding, m), x, tol=1e-7)


# ----------------------------------------------------------------------------------
# Bad input
# ----------------------------------------------------------------------------------

X = np.zeros((1, 2, 6, 6), np.float32)
W3 = np.zeros((4, 2, 3, 3), np.float32)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(w=np.zeros((4, 2, 5, 5), np.float32)), ValueError, "kernel_size"),
        (dict(w=np.zeros((4, 2, 3, 1), np.float32)), ValueError, "kernel_size"),
        (dict(stride=2), ValueError, "stride"),
        (dict(stride=(1, 2)), ValueError, "stride"),
        (dict(dilation=2), ValueError, "dilation"),
        (dict(m=0), ValueError, "m must be one of"),
        (dict(m=9), ValueError, "m must be one of"),
        (dict(m=2.0), ValueError, "m must be one of"),
        (dict(padding=-1), ValueError, "padding"),
        (dict(x=np.zeros((1, 3, 6, 6), np.float32)), ValueError, "channel"),
        (dict(x=np.zeros((2, 6, 6), np.float32)), ValueError, "N, C, H, W"),
        (dict(x=np.zeros((1, 2, 1, 6), np.float32)), ValueError, "kernel larger"),
        (dict(x=np.zeros((1, 2, 6, 6), int)), TypeError, "float"),
        (dict(b=np.zeros(3, np.float32)), ValueError, "bias"),
        (dict(points=[0, 1, 1]), ValueError, "distinct"),
    ],
)
def test_bad_input_raises(kwargs, error, match):
    args = dict(x=X, w=W3, b=None, padding=0, m=2) | kwargs
    x, w, b = args.pop("x"), args.pop("w"), args.pop("b")
    with pytest.raises(error, match=match):
        winograd.conv2d(x, w, b, **args)
    if b is None:
        dout = np.zeros((1, 4, 4, 4), np.float32)
        with pytest.raises(error, match=match):
            winograd.conv2d_backward(dout, x, w, **args)


def test_backward_rejects_a_dout_of_the_wrong_shape():
    with pytest.raises(ValueError, match="dout must have the output's shape"):
        winograd.conv2d_backward(np.zeros((1, 4, 6, 6), np.float32), X, W3)
