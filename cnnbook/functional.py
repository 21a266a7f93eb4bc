"""The fast NumPy path: convolution, pooling, ReLU, linear, softmax and cross-entropy.

Every function works on NCHW arrays (``x: (N, C, H, W)``), has a backward where it has
a gradient, and computes exactly what ``torch.nn.functional`` computes under the same
name: ``conv2d`` is a *cross-correlation* (the kernel is not flipped), pooling windows
never extend past the padding, ``relu`` has gradient 0 at 0.

Conventions shared by all functions:

* ``kernel_size``, ``stride``, ``padding`` and ``dilation`` accept an int or an
  ``(h, w)`` pair.
* float32 in → float32 out, float64 in → float64 out (mixed inputs follow NumPy
  promotion). Integer, boolean or complex arrays raise ``TypeError``: convert
  explicitly, nothing is guessed.
* Bad shapes raise ``ValueError`` naming the shapes. Nothing is broadcast silently.
  The checks live in ``cnnbook._validation``, shared with ``cnnbook.naive``, so both
  paths reject exactly the same inputs.
* ``gemm`` (keyword, optional): a callable with ``numpy.matmul`` semantics used for
  every matrix product, so another matrix-multiply backend can be plugged in
  (Chapter 10); ``None`` means ``numpy.matmul``.

The convolution is the batched im2col form ``W(F, C·kH·kW) @ cols(N, C·kH·kW, Ho·Wo)``
(:func:`conv2d_im2col`): one matrix product per batch, with ``cols`` gathered from
strided views of the (padded) input. Where numba is installed, :func:`conv2d` runs
stride-1 convolutions with Chapter 8's compiled loops instead (``cnnbook.fast``,
kernel ``"rows"`` forward, ``"joined"`` backward); ``method="im2col"`` forces the NumPy
path.
"""

from __future__ import annotations

from importlib.util import find_spec

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ._validation import (
    check_axis,
    check_conv_args,
    check_dout,
    check_linear_args,
    check_ndim,
    check_pool_indices,
    check_targets,
    conv_backward_args,
    conv_geometry,
    float_array,
    images,
    nonnegative_pair,
    pair,
    pool_args,
    pool_backward_args,
    pool_geometry,
    positive_pair,
)

__all__ = [
    "pair",
    "conv_output_size",
    "same_padding",
    "im2col",
    "col2im",
    "conv2d",
    "conv_path",
    "conv2d_im2col",
    "conv2d_backward",
    "conv2d_backward_im2col",
    "max_pool2d",
    "max_pool2d_backward",
    "max_pool2d_with_indices",
    "max_pool2d_with_indices_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "relu",
    "relu_backward",
    "linear",
    "linear_backward",
    "softmax",
    "log_softmax",
    "cross_entropy",
    "softmax_cross_entropy_backward",
]

# The checks under their former private names, for modules that import them from here.
_positive_pair, _nonnegative_pair = positive_pair, nonnegative_pair
_float_array, _check_ndim, _check_dout = float_array, check_ndim, check_dout
_conv_geometry, _check_conv_args, _pool_geometry = (
    conv_geometry,
    check_conv_args,
    pool_geometry,
)
_check_linear_args, _check_targets = check_linear_args, check_targets


def _pad(x, ph, pw, value=0.0, after=(0, 0)):
    """``ph``, ``pw`` cells of ``value`` on each side, ``after`` more at the end."""
    eh, ew = after
    if not (ph or pw or eh or ew):
        return x
    widths = ((0, 0), (0, 0), (ph, ph + eh), (pw, pw + ew))
    return np.pad(x, widths, constant_values=value)


def _overhang(x_shape, k, s, p, out):
    """Cells by which ceil_mode's last pooling windows reach past the padded input."""
    return tuple(
        max(0, (o - 1) * si + ki - (n + 2 * pi))
        for n, ki, si, pi, o in zip(x_shape[2:], k, s, p, out)
    )


def _window_slices(i, j, sh, sw, Ho, Wo):
    """Slices selecting, for kernel offset (i, j), the input pixel of every output."""
    return (
        slice(None),
        slice(None),
        slice(i, i + sh * (Ho - 1) + 1, sh),
        slice(j, j + sw * (Wo - 1) + 1, sw),
    )


# ----------------------------------------------------------------------------------
# Convolution
# ----------------------------------------------------------------------------------


def conv_output_size(
    n: int, k: int, stride: int = 1, padding: int = 0, dilation: int = 1
) -> int:
    """Output length along one axis: ``floor((n + 2p - d(k-1) - 1) / s) + 1``.

    ``n`` input length, ``k`` kernel length, ``s`` stride, ``p`` zero padding on *each*
    side, ``d`` dilation. Raises ``ValueError`` when the (dilated) kernel does not fit
    in the padded input, i.e. when the result would be < 1.
    """
    check_axis(n, k, stride, padding, dilation)
    span = dilation * (k - 1) + 1  # the cells the dilated kernel covers
    return (n + 2 * padding - span) // stride + 1


def im2col(x, kernel_size, stride=1, padding=0, dilation=1) -> np.ndarray:
    """Receptive fields as columns: ``(N, C, H, W) -> (N, C·kH·kW, Ho·Wo)``.

    Row ``c·kH·kW + i·kW + j`` holds the pixel that tap ``(c, i, j)`` multiplies, for
    every output (row-major), so ``w.reshape(F, -1) @ cols`` is the convolution.
    """
    x = images(x, "im2col")
    (kh, kw), (sh, sw), (ph, pw), (dh, dw), (Ho, Wo) = conv_geometry(
        x.shape, kernel_size, stride, padding, dilation, "im2col"
    )
    xp = np.ascontiguousarray(_pad(x, ph, pw))
    N, C = x.shape[:2]
    sN, sC, sH, sW = xp.strides
    # view[n, c, i, j, oh, ow] = xp[n, c, oh*sh + i*dh, ow*sw + j*dw]
    view = as_strided(
        xp,
        shape=(N, C, kh, kw, Ho, Wo),
        strides=(sN, sC, sH * dh, sW * dw, sH * sh, sW * sw),
        writeable=False,
    )
    return view.reshape(N, C * kh * kw, Ho * Wo)


def col2im(cols, x_shape, kernel_size, stride=1, padding=0, dilation=1) -> np.ndarray:
    """The adjoint of :func:`im2col`: add every column entry back onto its pixel.

    ``cols: (N, C·kH·kW, Ho·Wo)`` → ``(N, C, H, W)``. Pixels that belong to several
    receptive fields (overlapping windows) receive the *sum* of their entries; the
    padding is cropped away. Loops over the kH·kW kernel offsets only: for one offset
    the touched pixels are all distinct.
    """
    cols = float_array(cols, "cols", "col2im")
    if len(x_shape) != 4:
        raise ValueError(f"col2im: x_shape must be (N, C, H, W), got {tuple(x_shape)}")
    N, C, H, W = x_shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw), (Ho, Wo) = conv_geometry(
        x_shape, kernel_size, stride, padding, dilation, "col2im"
    )
    if cols.shape != (N, C * kh * kw, Ho * Wo):
        raise ValueError(
            f"col2im: cols must have shape {(N, C * kh * kw, Ho * Wo)} for x_shape "
            f"{tuple(x_shape)}, got {cols.shape}"
        )
    cols = cols.reshape(N, C, kh, kw, Ho, Wo)
    xp = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            xp[_window_slices(i * dh, j * dw, sh, sw, Ho, Wo)] += cols[:, :, i, j]
    return xp[:, :, ph : ph + H, pw : pw + W]


def conv2d_im2col(x, w, b=None, stride=1, padding=0, dilation=1) -> np.ndarray:
    """The convolution as im2col and one batched matrix product (Chapter 3)."""
    x, w, b = check_conv_args(x, w, b, "conv2d")
    N, F = len(x), len(w)
    *_, (Ho, Wo) = conv_geometry(x.shape, w.shape[2:], stride, padding, dilation)
    cols = im2col(x, w.shape[2:], stride, padding, dilation)  # (N, C·kH·kW, Ho·Wo)
    out = w.reshape(F, -1) @ cols  # (N, F, Ho·Wo): one batched matrix product
    out = out.reshape(N, F, Ho, Wo)
    if b is not None:
        out += b.reshape(1, F, 1, 1)
    return out


def _conv2d_gemm(x, w, b, stride, padding, dilation, gemm):
    """:func:`conv2d_im2col` with its matrix product computed by ``gemm``."""
    N, F = len(x), len(w)
    *_, (Ho, Wo) = conv_geometry(x.shape, w.shape[2:], stride, padding, dilation)
    cols = im2col(x, w.shape[2:], stride, padding, dilation)
    out = gemm(w.reshape(F, -1), cols).reshape(N, F, Ho, Wo)
    if b is not None:
        out += b.reshape(1, F, 1, 1)
    return out


_HAVE_NUMBA = find_spec("numba") is not None
CONV_METHODS = ("auto", "im2col", "numba", "implicit")


def _conv_path(method, gemm, x, w, b, stride, fn) -> str:
    """Which convolution runs: ``"implicit"``, ``"numba"``, ``"gemm"`` or ``"im2col"``.

    ``"auto"``, with numba installed and no ``gemm`` plugged in, takes for stride 1:
    the tiny BLAS on implicit im2col (``cnnbook.implicit``) for float32 layers whose
    channel count is a multiple of its register tile's width (16 on AVX2), where it
    measured 1.7-2x faster than the compiled loops (shape B of ``python -m
    cnnbook.bench --only goals``, one thread, the AVX2 Zen 3 machine); Chapter 8's
    compiled loops for every other layer of one float dtype, the seed model's
    one-channel layers among them, where they measured fastest (the implicit path took
    about 3x their time there); im2col + GEMM otherwise.
    """
    if method not in CONV_METHODS:
        raise ValueError(f"{fn}: method must be one of {CONV_METHODS}, got {method!r}")
    if gemm is not None:
        if method in ("numba", "implicit"):
            raise ValueError(f"{fn}: method={method!r} takes no gemm, got {gemm!r}")
        return "gemm"
    if method in ("im2col", "implicit"):
        return method
    if not _HAVE_NUMBA and method == "auto":
        return "im2col"
    one_dtype = (
        x.dtype in (np.float32, np.float64)
        and w.dtype == x.dtype
        and (b is None or b.dtype == x.dtype)
    )
    applies = pair(stride, "stride") == (1, 1) and one_dtype
    if method == "numba":
        if not applies:
            raise ValueError(
                f"{fn}: method='numba' needs stride 1 and x, w and b of one float "
                f"dtype; got stride {stride}, dtypes {x.dtype}/{w.dtype}"
            )
        return "numba"
    if not applies:
        return "im2col"
    if x.dtype == np.float32:
        from .implicit import NR  # lazy: it imports numba and the tiny BLAS

        if x.shape[1] % NR == 0:
            return "implicit"
    return "numba"


def conv_path(x, w, b=None, stride=1, *, gemm=None, method="auto") -> str:
    """The implementation :func:`conv2d` runs for these arrays: ``"implicit"``,
    ``"numba"``, ``"gemm"`` or ``"im2col"`` (``method="auto"``'s choice is explained
    in ``_conv_path``)."""
    x, w, b = check_conv_args(x, w, b, "conv_path")
    return _conv_path(method, gemm, x, w, b, stride, "conv_path")


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, *, gemm=None, method="auto"):
    """2-D convolution layer forward, as PyTorch computes it (cross-correlation).

    ``x: (N, C, H, W)``, ``w: (F, C, kH, kW)``, ``b: (F,)`` or None →
    ``(N, F, Ho, Wo)`` with ``Ho = floor((H + 2p - d(kH-1) - 1)/s) + 1`` (same for
    ``Wo``)::

        out[n, f, oh, ow] = b[f] + sum_{c,i,j} w[f, c, i, j]
                                   * xpad[n, c, oh*s + i*d, ow*s + j*d]

    ``method``: ``"im2col"`` (:func:`conv2d_im2col`), ``"numba"`` (Chapter 8's
    compiled loops, stride 1: ``cnnbook.fast``'s ``"rows"`` kernel, which measured
    fastest on the seed layers and on shape B of the benchmark, 2-4× the ``"joined"``
    rung, on the AVX2 Zen 3 machine), ``"implicit"`` (float32, stride 1: the tiny BLAS
    on implicit im2col, ``cnnbook.implicit``) or ``"auto"`` (the fastest of these
    that applies, as measured: see ``_conv_path``).
    ``gemm``: the matrix product of the im2col path (Chapter 10).
    """
    x, w, b = check_conv_args(x, w, b, "conv2d")
    path = _conv_path(method, gemm, x, w, b, stride, "conv2d")
    if path == "implicit":
        from .implicit import conv2d as implicit  # lazy, like cnnbook.fast

        return implicit(x, w, b, stride, padding, dilation)
    if path == "numba":
        from .fast import conv2d as compiled  # lazy: cnnbook.fast imports this module

        return compiled(x, w, b, stride, padding, dilation, kernel="rows")
    if path == "gemm":
        return _conv2d_gemm(x, w, b, stride, padding, dilation, gemm)
    return conv2d_im2col(x, w, b, stride, padding, dilation)


def conv2d_backward(
    dout,
    x,
    w,
    stride=1,
    padding=0,
    dilation=1,
    *,
    gemm=None,
    method="auto",
    need_dx=True,
):
    """Gradients of :func:`conv2d`: ``(dx, dw, db)`` for upstream gradient ``dout``.

    ``dout: (N, F, Ho, Wo)`` (the shape ``conv2d`` returned), ``x``, ``w`` as in the
    forward pass. The im2col path is :func:`conv2d_backward_im2col`; ``method`` and
    ``gemm`` as in :func:`conv2d`. ``need_dx=False`` skips the input gradient (``dx``
    is then None): the first layer of a network needs none.
    """
    x, w, _ = check_conv_args(x, w, None, "conv2d_backward")
    dout = np.asarray(dout)
    path = _conv_path(method, gemm, x, w, None, stride, "conv2d_backward")
    if path in ("numba", "implicit") and method != "implicit" and dout.dtype != x.dtype:
        path = "im2col"  # the compiled kernels do not promote
    if path == "implicit":
        from .implicit import conv2d_backward as implicit

        return implicit(dout, x, w, stride, padding, dilation, need_dx)
    if path == "numba":
        from .fast import conv2d_backward as compiled

        return compiled(
            dout, x, w, stride, padding, dilation, kernel="joined", need_dx=need_dx
        )
    if path == "gemm":
        return _conv2d_backward_gemm(
            dout, x, w, stride, padding, dilation, gemm, need_dx
        )
    return conv2d_backward_im2col(dout, x, w, stride, padding, dilation, need_dx)


def conv2d_backward_im2col(dout, x, w, stride=1, padding=0, dilation=1, need_dx=True):
    """Gradients of :func:`conv2d_im2col`: its matrix product, run backwards.

    With ``cols = im2col(x)`` and ``dout`` seen as ``d: (N, F, Ho·Wo)``:
    ``dw = sum_n d[n] @ cols[n]^T`` (a cross-correlation of the input with ``dout``),
    ``dx = col2im(W^T @ d)`` (a full convolution of ``dout`` with the kernel),
    ``db = sum dout``. ``need_dx=False`` skips ``dx`` (returns None in its place).
    """
    dout, x, w = conv_backward_args(
        dout, x, w, stride, padding, dilation, "conv2d_backward"
    )
    N, F = len(x), len(w)
    cols = im2col(x, w.shape[2:], stride, padding, dilation)  # (N, C·kH·kW, Ho·Wo)
    d = dout.reshape(N, F, -1)  # (N, F, Ho·Wo)
    # one (F, Ho·Wo) @ (Ho·Wo, C·kH·kW) product per image, summed over the batch
    dw = (d @ cols.transpose(0, 2, 1)).sum(axis=0).reshape(w.shape)
    db = dout.sum(axis=(0, 2, 3))
    dx = None
    if need_dx:
        dcols = w.reshape(F, -1).T @ d  # (N, C·kH·kW, Ho·Wo)
        dx = col2im(dcols, x.shape, w.shape[2:], stride, padding, dilation)
    return dx, dw, db


def _conv2d_backward_gemm(dout, x, w, stride, padding, dilation, gemm, need_dx):
    """:func:`conv2d_backward_im2col` with its matrix products computed by ``gemm``."""
    dout, x, w = conv_backward_args(
        dout, x, w, stride, padding, dilation, "conv2d_backward"
    )
    N, F = len(x), len(w)
    cols = im2col(x, w.shape[2:], stride, padding, dilation)
    d = dout.reshape(N, F, -1)
    dw = gemm(d, cols.transpose(0, 2, 1)).sum(axis=0).reshape(w.shape)
    db = dout.sum(axis=(0, 2, 3))
    dx = None
    if need_dx:
        dcols = gemm(w.reshape(F, -1).T, d)
        dx = col2im(dcols, x.shape, w.shape[2:], stride, padding, dilation)
    return dx, dw, db


def same_padding(kernel_size, dilation=1) -> tuple[tuple[int, int], tuple[int, int]]:
    """The zeros ``((top, bottom), (left, right))`` of PyTorch's ``padding="same"``.

    At stride 1 the output loses ``d(k-1)`` positions along an axis (the dilated kernel
    spans ``d(k-1) + 1`` cells), so "same" pads ``d(k-1)`` zeros in total: half before,
    and when ``d(k-1)`` is odd the extra zero after (bottom, right). Symmetric exactly
    when ``d(k-1)`` is even, e.g. ``k = 4, d = 2``. Apply it with ``np.pad``.
    """
    (kh, kw), (dh, dw) = (
        positive_pair(kernel_size, "kernel_size"),
        positive_pair(dilation, "dilation"),
    )
    total_h, total_w = dh * (kh - 1), dw * (kw - 1)
    return (total_h // 2, total_h - total_h // 2), (
        total_w // 2,
        total_w - total_w // 2,
    )


# ----------------------------------------------------------------------------------
# Pooling
# ----------------------------------------------------------------------------------


def max_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False) -> np.ndarray:
    """Max pooling ``(N, C, H, W) -> (N, C, Ho, Wo)``, like PyTorch's ``max_pool2d``.

    The elementwise maximum of the kH·kW strided views; padding is −inf (at most half
    the kernel), and ``ceil_mode``'s last windows may hang past the input.
    """
    x, (kh, kw), (sh, sw), (ph, pw), (Ho, Wo) = pool_args(
        x, kernel_size, stride, padding, "max_pool2d", ceil_mode
    )
    after = _overhang(x.shape, (kh, kw), (sh, sw), (ph, pw), (Ho, Wo))
    xp = _pad(x, ph, pw, -np.inf, after)
    out = xp[_window_slices(0, 0, sh, sw, Ho, Wo)].copy()
    for i in range(kh):
        for j in range(kw):
            if i or j:
                np.maximum(out, xp[_window_slices(i, j, sh, sw, Ho, Wo)], out=out)
    return out


def max_pool2d_backward(
    dout, x, kernel_size, stride=None, padding=0, ceil_mode=False
) -> np.ndarray:
    """Gradient of :func:`max_pool2d` with respect to ``x``.

    Each window sends its upstream gradient to the position of its maximum. Ties go to
    the *first* maximum in row-major window order (PyTorch's rule); a pixel that is the
    maximum of several overlapping windows receives the sum of their gradients. Padding
    never receives gradient.
    """
    dout, x, (kh, kw), (sh, sw), (ph, pw), (Ho, Wo) = pool_backward_args(
        dout, x, kernel_size, stride, padding, "max_pool2d_backward", ceil_mode
    )
    N, C, H, W = x.shape
    out = max_pool2d(x, (kh, kw), (sh, sw), (ph, pw), ceil_mode)
    after = _overhang(x.shape, (kh, kw), (sh, sw), (ph, pw), (Ho, Wo))
    xp = _pad(x, ph, pw, -np.inf, after)
    real = None
    if xp.shape != x.shape:  # which padded positions are real (−inf must not win a tie)
        real = _pad(np.ones((1, 1, H, W), dtype=bool), ph, pw, False, after)
    dxp = np.zeros(xp.shape, dtype=np.result_type(x, dout))
    taken = np.zeros(out.shape, dtype=bool)  # window already routed its gradient
    for i in range(kh):  # row-major over the window: first max wins
        for j in range(kw):
            s = _window_slices(i, j, sh, sw, Ho, Wo)
            hit = (xp[s] == out) & ~taken
            if real is not None:
                hit &= real[s]
            dxp[s] += np.where(hit, dout, 0)
            taken |= hit
    return dxp[:, :, ph : ph + H, pw : pw + W]


POOL_METHODS = ("auto", "numpy", "numba")


def _pool_compiled(method, x, fn) -> bool:
    """Whether max pooling runs the compiled kernels of ``cnnbook.fast``.

    ``"auto"``: where numba is installed and ``x`` is float32 or float64.
    """
    if method not in POOL_METHODS:
        raise ValueError(f"{fn}: method must be one of {POOL_METHODS}, got {method!r}")
    if method == "numpy":
        return False
    compilable = np.asarray(x).dtype in (np.float32, np.float64)
    if method == "numba" and not compilable:
        raise TypeError(f"{fn}: method='numba' needs float32 or float64 input")
    return method == "numba" or (_HAVE_NUMBA and compilable)


def max_pool2d_with_indices(
    x, kernel_size, stride=None, padding=0, ceil_mode=False, *, method="auto"
):
    """:func:`max_pool2d` and where each maximum is: ``(out, indices)``.

    ``indices[n, c, oh, ow] = row·W + col`` of the window's maximum in the plane
    ``x[n, c]`` (int64, PyTorch's ``return_indices=True``): the first maximum in
    row-major window order, as :func:`max_pool2d_backward` routes; a NaN is taken as
    the maximum (the window's last NaN), as in PyTorch. The backward then only
    routes: :func:`max_pool2d_with_indices_backward`. ``method``: ``"numba"``
    (compiled, ``cnnbook.fast``), ``"numpy"``, or ``"auto"`` (compiled where numba
    is installed).
    """
    if _pool_compiled(method, x, "max_pool2d"):
        from .fast import max_pool2d_with_indices as compiled

        return compiled(x, kernel_size, stride, padding, ceil_mode)
    x, (kh, kw), (sh, sw), (ph, pw), (Ho, Wo) = pool_args(
        x, kernel_size, stride, padding, "max_pool2d", ceil_mode
    )
    N, C, H, W = x.shape
    after = _overhang(x.shape, (kh, kw), (sh, sw), (ph, pw), (Ho, Wo))
    xp = _pad(x, ph, pw, -np.inf, after)
    out = max_pool2d(x, (kh, kw), (sh, sw), (ph, pw), ceil_mode)
    indices = np.zeros(out.shape, dtype=np.int64)
    top, left = np.arange(Ho)[:, None] * sh - ph, np.arange(Wo) * sw - pw
    taps = [(i, j) for i in range(kh) for j in range(kw)]
    for i, j in reversed(taps):  # backwards: the first maximum is written last
        r, s = top + i, left + j  # the input pixel of every output, (Ho, Wo)
        real = (0 <= r) & (r < H) & (0 <= s) & (s < W)
        hit = real & (xp[_window_slices(i, j, sh, sw, Ho, Wo)] == out)
        indices = np.where(hit, r * W + s, indices)
    if np.isnan(out).any():  # PyTorch takes a window's last NaN
        for i, j in taps:
            r, s = top + i, left + j
            real = (0 <= r) & (r < H) & (0 <= s) & (s < W)
            hit = real & np.isnan(xp[_window_slices(i, j, sh, sw, Ho, Wo)])
            indices = np.where(hit, r * W + s, indices)
    return out, indices


def max_pool2d_with_indices_backward(dout, x, indices, *, method="auto") -> np.ndarray:
    """Gradient of max pooling from the forward's ``indices``: route, recompute nothing.

    ``dx[n, c].flat[indices[n, c, oh, ow]] += dout[n, c, oh, ow]``; overlapping windows
    that chose the same pixel add up. Equals :func:`max_pool2d_backward`.
    """
    dout, x, indices = check_pool_indices(
        dout, x, indices, "max_pool2d_with_indices_backward"
    )
    dtype = np.result_type(x, dout)
    if _pool_compiled(method, np.empty(0, dtype), "max_pool2d_with_indices_backward"):
        from .fast import max_pool2d_backward_indices as compiled

        return compiled(dout, indices, x.shape, dtype)
    N, C, H, W = x.shape
    dx = np.zeros((N * C, H * W), dtype=dtype)
    planes = np.arange(N * C)[:, None]
    np.add.at(dx, (planes, indices.reshape(N * C, -1)), dout.reshape(N * C, -1))
    return dx.reshape(x.shape)


def avg_pool2d(x, kernel_size, stride=None, padding=0) -> np.ndarray:
    """Average pooling ``(N, C, H, W) -> (N, C, Ho, Wo)``, like PyTorch's avg_pool2d.

    Zero padding is *included* in the average (PyTorch's default
    ``count_include_pad=True``): every window is divided by ``kH·kW``.
    """
    x, (kh, kw), (sh, sw), (ph, pw), (Ho, Wo) = pool_args(
        x, kernel_size, stride, padding, "avg_pool2d"
    )
    xp = _pad(x, ph, pw)
    out = xp[_window_slices(0, 0, sh, sw, Ho, Wo)].copy()
    for i in range(kh):
        for j in range(kw):
            if i or j:
                out += xp[_window_slices(i, j, sh, sw, Ho, Wo)]
    out /= kh * kw
    return out


def avg_pool2d_backward(dout, x, kernel_size, stride=None, padding=0) -> np.ndarray:
    """Gradient of :func:`avg_pool2d`: each window spreads ``dout / (kH·kW)``."""
    dout, x, (kh, kw), (sh, sw), (ph, pw), (Ho, Wo) = pool_backward_args(
        dout, x, kernel_size, stride, padding, "avg_pool2d_backward"
    )
    N, C, H, W = x.shape
    share = dout / (kh * kw)
    dxp = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=np.result_type(x, dout))
    for i in range(kh):
        for j in range(kw):
            dxp[_window_slices(i, j, sh, sw, Ho, Wo)] += share
    return dxp[:, :, ph : ph + H, pw : pw + W]


# ----------------------------------------------------------------------------------
# ReLU and the fully connected layer
# ----------------------------------------------------------------------------------


def relu(x) -> np.ndarray:
    """``max(x, 0)`` elementwise, any shape."""
    x = float_array(x, "x", "relu")
    return np.maximum(x, x.dtype.type(0))


def relu_backward(dout, x) -> np.ndarray:
    """Gradient of :func:`relu`: ``dout`` where ``x > 0``, else 0 (also *at* 0).

    A product with the mask, ``dout · [x > 0]``: no branch per element (``np.where``
    measured 10× slower on the random signs of a layer's input).
    """
    x = float_array(x, "x", "relu_backward")
    dout = check_dout(dout, x.shape, "relu_backward")
    return dout * (x > 0)


def linear(x, W, b=None, *, gemm=None) -> np.ndarray:
    """The fully connected layer ``x @ W.T + b``: x (N, in), W (out, in), b (out,)."""
    x, W, b = check_linear_args(x, W, b, "linear")
    mm = np.matmul if gemm is None else gemm
    out = mm(x, W.T)
    return out if b is None else out + b


def linear_backward(dout, x, W, *, gemm=None):
    """Gradients of :func:`linear`: ``dx = dout @ W``, ``dW = dout.T @ x``,
    ``db = dout.sum(0)``."""
    x, W, _ = check_linear_args(x, W, None, "linear_backward")
    mm = np.matmul if gemm is None else gemm
    dout = check_dout(dout, (x.shape[0], W.shape[0]), "linear_backward")
    return mm(dout, W), mm(dout.T, x), dout.sum(axis=0)


# ----------------------------------------------------------------------------------
# Softmax and cross-entropy
# ----------------------------------------------------------------------------------


def softmax(z, axis: int = -1) -> np.ndarray:
    """``exp(z) / sum(exp(z))`` along ``axis``, computed after subtracting the maximum.

    The shift changes nothing mathematically but keeps ``exp`` from overflowing: the
    largest exponent is ``exp(0) = 1``, so the result is finite for any finite logits
    (e.g. ±1e4 in float32).
    """
    z = float_array(z, "z", "softmax")
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(z, axis: int = -1) -> np.ndarray:
    """``log(softmax(z))``, stably: ``z - m - log(sum(exp(z - m)))``, ``m = max(z)``."""
    z = float_array(z, "z", "log_softmax")
    shifted = z - z.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def cross_entropy(logits, targets) -> float:
    """Mean cross-entropy ``-(1/N) sum_n log softmax(logits[n])[targets[n]]``, a float.

    ``logits: (N, K)`` raw scores (no softmax applied), ``targets: (N,)`` integer
    classes in [0, K).
    """
    logits, targets = check_targets(logits, targets, "cross_entropy")
    logp = log_softmax(logits, axis=1)
    return float(-logp[np.arange(logits.shape[0]), targets].mean())


def softmax_cross_entropy_backward(logits, targets) -> np.ndarray:
    """Gradient of :func:`cross_entropy` with respect to the logits.

    ``(softmax(logits) - y) / N``, ``y`` the one-hot targets; same shape and dtype as
    ``logits``.
    """
    logits, targets = check_targets(logits, targets, "softmax_cross_entropy_backward")
    N = logits.shape[0]
    grad = softmax(logits, axis=1)
    grad[np.arange(N), targets] -= 1
    grad /= N
    return grad
