"""The conventions table of Chapter 3, one test per row.

Each test proves one statement of the table in chapters/03_conv_layer.ipynb about what
``cnnbook.functional.conv2d`` computes compared with NumPy, SciPy and (when installed)
PyTorch.
"""

import numpy as np
import pytest
import scipy.signal
from numpy.lib.stride_tricks import sliding_window_view

from cnnbook import functional as F

RNG = np.random.default_rng(2026)
X2 = RNG.standard_normal((7, 9))  # one image
W2 = RNG.standard_normal((3, 2))  # an asymmetric kernel: flips are visible
X4 = RNG.standard_normal((2, 3, 8, 7))  # a batch, NCHW
W4 = RNG.standard_normal((5, 3, 3, 2))  # (out, in, kH, kW)


def conv_one(x, w, **kw):
    """conv2d on a single 2-D image and a single 2-D kernel."""
    return F.conv2d(x[None, None], w[None, None], **kw)[0, 0]


# Row: "convolution" in deep learning is cross-correlation (no flip).
def test_conv2d_is_cross_correlation():
    np.testing.assert_allclose(
        conv_one(X2, W2), scipy.signal.correlate2d(X2, W2, "valid")
    )
    assert not np.allclose(conv_one(X2, W2), scipy.signal.convolve2d(X2, W2, "valid"))


# Row: true convolution = cross-correlation with the kernel flipped in both axes.
def test_true_convolution_flips_the_kernel():
    np.testing.assert_allclose(
        scipy.signal.convolve2d(X2, W2, "valid"), conv_one(X2, W2[::-1, ::-1])
    )


# Row: the 1-D names of NumPy: numpy.correlate does not flip, numpy.convolve does.
def test_numpy_correlate_and_convolve():
    x, w = X2[0], W2[:, 0]
    row = F.conv2d(x[None, None, None], w[None, None, None])[0, 0, 0]
    np.testing.assert_allclose(row, np.correlate(x, w, "valid"))
    np.testing.assert_allclose(
        F.conv2d(x[None, None, None], w[None, None, None, ::-1])[0, 0, 0],
        np.convolve(x, w, "valid"),
    )


# Row: torch.nn.functional.conv2d computes the same cross-correlation (with stride,
# padding, dilation).
def test_torch_conv2d_is_the_same_function():
    torch = pytest.importorskip("torch")
    for stride, padding, dilation in [(1, 0, 1), (2, 1, 1), ((1, 2), (2, 0), (2, 1))]:
        ref = torch.nn.functional.conv2d(
            torch.from_numpy(X4),
            torch.from_numpy(W4),
            stride=stride,
            padding=padding,
            dilation=dilation,
        ).numpy()
        np.testing.assert_allclose(
            F.conv2d(X4, W4, None, stride, padding, dilation), ref, atol=1e-12
        )


# Row: NCHW (PyTorch, cnnbook) vs NHWC (TensorFlow's default): the same numbers,
# transposed;
# TensorFlow's kernels are (kH, kW, in, out).
def test_nhwc_is_a_transpose_of_nchw():
    x_nhwc = X4.transpose(0, 2, 3, 1)  # (N, H, W, C)
    w_hwio = W4.transpose(2, 3, 1, 0)  # (kH, kW, C_in, C_out)
    kh, kw = w_hwio.shape[:2]
    windows = sliding_window_view(
        x_nhwc, (kh, kw), axis=(1, 2)
    )  # (N, Ho, Wo, C, kH, kW)
    out_nhwc = np.einsum("nhwcij,ijcf->nhwf", windows, w_hwio)
    np.testing.assert_allclose(
        out_nhwc, F.conv2d(X4, W4).transpose(0, 2, 3, 1), atol=1e-12
    )


# Row: weight layout (out_channels, in_channels, kH, kW): w[f, c] is the kernel that
# output
# channel f applies to input channel c.
def test_weight_layout_out_in_kh_kw():
    w = np.zeros_like(W4)
    w[4, 1] = W4[4, 1]
    out = F.conv2d(X4, w)
    for n in range(X4.shape[0]):
        np.testing.assert_allclose(
            out[n, 4], scipy.signal.correlate2d(X4[n, 1], W4[4, 1], "valid")
        )
    assert not out[:, :4].any()


def test_weight_layout_matches_torch_conv2d_module():
    torch = pytest.importorskip("torch")
    layer = torch.nn.Conv2d(in_channels=3, out_channels=5, kernel_size=(3, 2))
    assert tuple(layer.weight.shape) == W4.shape


# Row: "same" padding, odd kernel: p = d(k - 1)/2 on each side keeps H and W at stride
# 1.
@pytest.mark.parametrize("k, d", [(1, 1), (3, 1), (5, 1), (7, 1), (3, 2), (5, 3)])
def test_same_padding_odd_kernel_is_symmetric(k, d):
    w = np.ones((1, 3, k, k))
    assert (
        F.conv2d(X4, w, padding=d * (k - 1) // 2, dilation=d).shape[2:] == X4.shape[2:]
    )


# Row: "same" padding, even kernel: the total d(k-1) is odd, the extra zero goes after
# (bottom/right), as in PyTorch's padding="same" and
# scipy.signal.correlate2d(mode="same").
@pytest.mark.parametrize("k", [2, 4])
def test_same_padding_even_kernel_extra_after(k):
    w = RNG.standard_normal((k, k))
    total = k - 1
    before, after = total // 2, total - total // 2
    ours = conv_one(np.pad(X2, ((before, after), (before, after))), w)
    assert ours.shape == X2.shape
    np.testing.assert_allclose(ours, scipy.signal.correlate2d(X2, w, "same"))
    # symmetric integer padding cannot keep the size
    assert conv_one(X2, w, padding=total // 2).shape != X2.shape


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
def test_same_padding_even_kernel_matches_torch():
    torch = pytest.importorskip("torch")
    w = RNG.standard_normal((4, 4))
    ref = torch.nn.functional.conv2d(
        torch.from_numpy(X2)[None, None],
        torch.from_numpy(w)[None, None],
        padding="same",
    ).numpy()[0, 0]
    np.testing.assert_allclose(
        conv_one(np.pad(X2, ((1, 2), (1, 2))), w), ref, atol=1e-12
    )


# Row: a stride that does not divide evenly drops the last rows/columns: they never
# reach the output.
def test_stride_drops_the_last_rows():
    x = RNG.standard_normal((1, 1, 8, 8))
    w = RNG.standard_normal((1, 1, 3, 3))
    out = F.conv2d(x, w, stride=2)
    assert out.shape == (1, 1, 3, 3)  # floor((8 - 3) / 2) + 1 = 3
    changed = x.copy()
    changed[..., 7, :] = 1e6  # the last row ...
    changed[..., :, 7] = -1e6  # ... and the last column
    np.testing.assert_array_equal(F.conv2d(changed, w, stride=2), out)


# Row: "same" padding: symmetric exactly when the total d(k-1) is even, whatever the
# parity of k: k = 4, d = 2 pads 3 on each side; k = 4, d = 1 and k = 2, d = 3 cannot.
@pytest.mark.parametrize(
    "k, d, symmetric", [(4, 2, True), (2, 2, True), (4, 1, False), (2, 3, False)]
)
def test_same_padding_symmetric_iff_dilated_span_even(k, d, symmetric):
    (top, bottom), (left, right) = F.same_padding(k, d)
    assert (top == bottom and left == right) == symmetric
    assert top + bottom == d * (k - 1)
    w = RNG.standard_normal((1, 3, k, k))
    if symmetric:  # an even kernel keeps the size with plain symmetric padding
        assert F.conv2d(X4, w, padding=top, dilation=d).shape[2:] == X4.shape[2:]
    padded = np.pad(X4, ((0, 0), (0, 0), (top, bottom), (left, right)))
    assert F.conv2d(padded, w, dilation=d).shape[2:] == X4.shape[2:]


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
def test_same_padding_even_kernel_dilation_2_matches_torch():
    torch = pytest.importorskip("torch")
    w = RNG.standard_normal((1, 3, 4, 4))
    ref = torch.nn.functional.conv2d(
        torch.from_numpy(X4), torch.from_numpy(w), padding="same", dilation=2
    ).numpy()
    np.testing.assert_allclose(F.conv2d(X4, w, padding=3, dilation=2), ref, atol=1e-12)
