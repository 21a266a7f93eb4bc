"""The performance ladder of ``conv2d``: the same convolution, faster one rung at a time
(Chapter 8).

Every function here computes exactly what :func:`cnnbook.functional.conv2d` and
:func:`cnnbook.functional.conv2d_backward` compute (cross-correlation, NCHW, like
PyTorch's ``F.conv2d``); only the way the work is organized changes.

NumPy rungs (always available)::

  ``conv2d_windows``        sliding windows + ``np.einsum``/``np.tensordot``
  ``conv2d_im2col_2d``      classic im2col: one (C·kH·kW, N·Ho·Wo) matrix and one GEMM
  ``conv2d_fft``            FFT convolution (Chapter 2), batched over images, channels,
                            filters

each with its ``..._backward``.

Compiled rungs (numba; ``pip install numba``): ``conv2d(..., kernel=...)`` and
``conv2d_backward(..., kernel=...)`` with::

  ``"textbook"``   the seven loops in the order the formula is written,
  ``"reordered"``  the same loops, innermost loop over contiguous output columns,
  ``"parallel"``   the reordered loops with ``prange`` over the batch
                   (``numba.set_num_threads``),
  ``"joined"``     stride 1: the reordered loops with all output rows joined into one
                   long row,
  ``"rows"``       forward only, stride 1: "joined" with a kernel row's taps summed
                   in registers (the default path's forward),

and, forward only, the safety-vs-speed variants of the reordered kernel:
``"boundscheck"``, ``"raise"`` (a check that can raise inside the innermost loop),
``"signed"`` (computed indices left signed, so numba must handle negative ones),
``"flat_signed"`` and
``"flat_unsigned"`` (flattened arrays indexed by raw offsets, like C pointers).

The book's rule, visible in every compiled function: validate once at the boundary
(shapes, dtypes, padding, output size — ``_prepare``), then run loops that check
nothing.
"""

from __future__ import annotations

import functools
import types

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ._validation import pool_args
from .fft import next_fast_len
from .functional import _check_conv_args, _conv_geometry
from .functional import _check_dout as _fn_check_dout

try:  # numba is optional at import time; only the compiled kernels need it
    import numba
except ImportError:  # pragma: no cover - exercised only where numba is absent
    numba = None

__all__ = [
    "KERNELS",
    "BACKWARD_KERNELS",
    "HAVE_NUMBA",
    "conv2d",
    "conv2d_backward",
    "conv2d_windows",
    "conv2d_windows_backward",
    "conv2d_im2col_2d",
    "conv2d_im2col_2d_backward",
    "conv2d_fft",
    "conv2d_fft_backward",
    "conv2d_flops",
]

HAVE_NUMBA = numba is not None
_NUMBA_MISSING = (
    "cnnbook.fast: the compiled (numba) kernels need numba, which is not installed. "
    "Install it with `pip install numba` (it is in requirements.txt); "
    "the NumPy rungs of this module work without it."
)


# --------------------------------------------------------------------------------------
# Validation at the boundary: everything the loops below never check again.
# --------------------------------------------------------------------------------------


def _prepare(x, w, b, stride, padding, dilation, fn="conv2d"):
    """Check the arguments of a conv2d once and return everything the loops need.

    The checks are :mod:`cnnbook.functional`'s own, so every rung rejects exactly the
    inputs the NumPy path rejects. Returns ``(xp, w, b, out_hw, stride, padding,
    dilation)`` with ``xp`` the zero-padded, C-contiguous input (N, C, H + 2pH, W +
    2pW), ``w`` C-contiguous of the same dtype, ``b`` a (F,) array (zeros when None) and
    ``out_hw = (Ho, Wo)``.
    """
    x, w, b = _check_conv_args(x, w, b, fn)
    _, stride, padding, dilation, out_hw = _conv_geometry(
        x.shape, w.shape[2:], stride, padding, dilation, fn
    )
    dtype = np.result_type(x, w)
    if dtype not in (np.float32, np.float64):
        raise TypeError(
            f"{fn}: the compiled kernels take float32 or float64,"
            f" got {x.dtype} and {w.dtype}"
        )
    x = x.astype(dtype, copy=False)
    b = (
        np.zeros(w.shape[0], dtype)
        if b is None
        else np.ascontiguousarray(b, dtype=dtype)
    )
    (ph, pw) = padding
    xp = (
        np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        if ph or pw
        else np.ascontiguousarray(x)
    )
    return (
        xp,
        np.ascontiguousarray(w, dtype=dtype),
        b,
        out_hw,
        stride,
        padding,
        dilation,
    )


def _check_dout(dout, x, w, out_hw, fn="conv2d_backward"):
    dout = _fn_check_dout(dout, (x.shape[0], w.shape[0], *out_hw), fn)
    return np.ascontiguousarray(dout, dtype=np.result_type(x, w))


def _unpad(xp, padding):
    ph, pw = padding
    return xp[:, :, ph : xp.shape[2] - ph, pw : xp.shape[3] - pw]


def conv2d_flops(x_shape, w_shape, stride=1, padding=0, dilation=1):
    """Floating-point operations of one conv2d forward: 2 per multiply-add,
    2·N·F·Ho·Wo·C·kH·kW.

    The backward pass does twice that (one product for dx, one for dw); the bias is
    ignored.
    """
    n, c = x_shape[:2]
    f, _, kh, kw = w_shape
    *_, (ho, wo) = _conv_geometry(
        x_shape, (kh, kw), stride, padding, dilation, "conv2d_flops"
    )
    return 2 * n * f * ho * wo * c * kh * kw


# --------------------------------------------------------------------------------------
# NumPy rungs
# --------------------------------------------------------------------------------------


def _windows(xp, kernel_hw, out_hw, stride, dilation):
    """View (N, C, Ho, Wo, kH, kW) of the padded input: window [n, c, oh, ow] is what
    filter position (oh, ow) sees. No copy — only strides change."""
    (kh, kw), (ho, wo), (sh, sw), (dh, dw) = kernel_hw, out_hw, stride, dilation
    span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    v = sliding_window_view(xp, (span_h, span_w), axis=(2, 3))
    return v[:, :, : sh * (ho - 1) + 1 : sh, : sw * (wo - 1) + 1 : sw, ::dh, ::dw]


def conv2d_windows(x, w, b=None, stride=1, padding=0, dilation=1):
    """conv2d as one tensor contraction over sliding windows.

    x: (N, C, H, W), w: (F, C, kH, kW), b: (F,) or None → (N, F, Ho, Wo).
    ``out[n, f, h, w] = Σ_{c,i,j} windows[n, c, h, w, i, j] · w[f, c, i, j] + b[f]``
    """
    xp, w, b, out_hw, stride, _, dilation = _prepare(
        x, w, b, stride, padding, dilation, "conv2d_windows"
    )
    win = _windows(xp, w.shape[2:], out_hw, stride, dilation)
    out = np.einsum("nchwij,fcij->nfhw", win, w, optimize=True)
    return out + b[None, :, None, None]


def conv2d_windows_backward(dout, x, w, stride=1, padding=0, dilation=1):
    """Gradients of :func:`conv2d_windows`: ``(dx, dw, db)`` with the shapes of x, w and
    (F,).

    ``dw`` contracts the windows with ``dout``. ``dx`` is built by shift-and-add: tap
    (i, j) of the kernel sends ``Σ_f dout[n, f] · w[f, c, i, j]`` back to the input
    pixels it read.
    """
    xp, w, _, out_hw, stride, padding, dilation = _prepare(
        x, w, None, stride, padding, dilation, "conv2d_windows_backward"
    )
    dout = _check_dout(dout, x, w, out_hw, "conv2d_windows_backward")
    (sh, sw), (dh, dw_), (ho, wo) = stride, dilation, out_hw
    win = _windows(xp, w.shape[2:], out_hw, stride, dilation)
    dw = np.einsum("nfhw,nchwij->fcij", dout, win, optimize=True)
    db = dout.sum(axis=(0, 2, 3))
    dxp = np.zeros_like(xp)
    for i in range(w.shape[2]):
        for j in range(w.shape[3]):
            # (N, F, Ho, Wo) x (F, C) -> (N, Ho, Wo, C): the gradient reaching the
            # pixels tap (i, j) read
            g = np.tensordot(dout, w[:, :, i, j], axes=([1], [0]))
            dxp[
                :,
                :,
                i * dh : i * dh + sh * (ho - 1) + 1 : sh,
                j * dw_ : j * dw_ + sw * (wo - 1) + 1 : sw,
            ] += g.transpose(0, 3, 1, 2)
    return _unpad(dxp, padding), dw, db


def _cols_2d(xp, kernel_hw, out_hw, stride, dilation):
    """Classic im2col matrix (C·kH·kW, N·Ho·Wo): one column per output pixel of every
    image."""
    win = _windows(xp, kernel_hw, out_hw, stride, dilation)  # (N, C, Ho, Wo, kH, kW)
    n, c, ho, wo, kh, kw = win.shape
    return win.transpose(1, 4, 5, 0, 2, 3).reshape(
        c * kh * kw, n * ho * wo
    )  # the copy happens here


def conv2d_im2col_2d(x, w, b=None, stride=1, padding=0, dilation=1):
    """conv2d as one GEMM on the classic 2-D im2col matrix.

    ``W (F, C·kH·kW) @ cols (C·kH·kW, N·Ho·Wo)`` gives (F, N·Ho·Wo), which must then be
    transposed to (N, F, Ho, Wo) — a full extra pass over the output that the batched
    form (:func:`cnnbook.functional.conv2d`) avoids.
    """
    xp, w, b, (ho, wo), stride, _, dilation = _prepare(
        x, w, b, stride, padding, dilation, "conv2d_im2col_2d"
    )
    cols = _cols_2d(xp, w.shape[2:], (ho, wo), stride, dilation)
    out = w.reshape(w.shape[0], -1) @ cols + b[:, None]  # (F, N·Ho·Wo)
    return np.ascontiguousarray(
        out.reshape(w.shape[0], x.shape[0], ho, wo).transpose(1, 0, 2, 3)
    )


def conv2d_im2col_2d_backward(dout, x, w, stride=1, padding=0, dilation=1):
    """Gradients of :func:`conv2d_im2col_2d`: two GEMMs and a col2im (scatter-add) for
    dx."""
    xp, w, _, (ho, wo), stride, padding, dilation = _prepare(
        x, w, None, stride, padding, dilation, "conv2d_im2col_2d_backward"
    )
    dout = _check_dout(dout, x, w, (ho, wo), "conv2d_im2col_2d_backward")
    f, c, kh, kw = w.shape
    n = x.shape[0]
    cols = _cols_2d(xp, (kh, kw), (ho, wo), stride, dilation)
    d2 = dout.transpose(1, 0, 2, 3).reshape(f, n * ho * wo)  # (F, N·Ho·Wo)
    dw = (d2 @ cols.T).reshape(w.shape)
    dcols = w.reshape(f, -1).T @ d2  # (C·kH·kW, N·Ho·Wo)
    dcols = dcols.reshape(c, kh, kw, n, ho, wo)
    (sh, sw), (dh, dw_) = stride, dilation
    dxp = np.zeros_like(xp)
    for i in range(
        kh
    ):  # col2im: every tap adds its column block back where it was read
        for j in range(kw):
            dxp[
                :,
                :,
                i * dh : i * dh + sh * (ho - 1) + 1 : sh,
                j * dw_ : j * dw_ + sw * (wo - 1) + 1 : sw,
            ] += dcols[:, i, j].transpose(1, 0, 2, 3)
    return _unpad(dxp, padding), dw, dout.sum(axis=(0, 2, 3))


def _fft_setup(x, w, b, stride, padding, dilation, fn):
    xp, w, b, out_hw, stride, padding, dilation = _prepare(
        x, w, b, stride, padding, dilation, fn
    )
    if stride != (1, 1) or dilation != (1, 1):
        raise ValueError(
            f"{fn}: the FFT rung handles stride 1 and dilation 1 only,"
            f" got stride {stride} "
            f"and dilation {dilation}"
        )
    # Transform size: at least the padded input (then the circular convolution never
    # wraps around onto the outputs we keep), rounded up to a size the FFT handles
    # fast (Chapter 2).
    size = tuple(next_fast_len(n) for n in xp.shape[2:])
    return xp, w, b, out_hw, padding, size


def conv2d_fft(x, w, b=None, stride=1, padding=0, dilation=1):
    """conv2d through the convolution theorem (stride 1, dilation 1 only).

    Each image channel and each filter is transformed once (``rfft2`` at least as large
    as the padded input); the cross-correlation is ``irfft2(Σ_c X[n, c] · conj(W[f,
    c]))``, cropped to (Ho, Wo).
    """
    xp, w, b, (ho, wo), _, s = _fft_setup(
        x, w, b, stride, padding, dilation, "conv2d_fft"
    )
    X = np.fft.rfft2(xp, s=s)  # (N, C, s0, s1//2 + 1)
    Wf = np.fft.rfft2(w, s=s)  # (F, C, s0, s1//2 + 1)
    Y = np.einsum("nchw,fchw->nfhw", X, Wf.conj(), optimize=True)
    out = np.fft.irfft2(Y, s=s)[:, :, :ho, :wo] + b[None, :, None, None]
    return np.ascontiguousarray(out, dtype=xp.dtype)


def conv2d_fft_backward(dout, x, w, stride=1, padding=0, dilation=1):
    """Gradients of :func:`conv2d_fft`, also in the frequency domain.

    dx is the *full convolution* of dout with w (``D · W``), dw the correlation of the
    input with dout (``X · conj(D)``), both summed over the channel the product does not
    keep.
    """
    xp, w, _, out_hw, padding, s = _fft_setup(
        x, w, None, stride, padding, dilation, "conv2d_fft_backward"
    )
    dout = _check_dout(dout, x, w, out_hw, "conv2d_fft_backward")
    X, Wf, D = np.fft.rfft2(xp, s=s), np.fft.rfft2(w, s=s), np.fft.rfft2(dout, s=s)
    dxp = np.fft.irfft2(np.einsum("nfhw,fchw->nchw", D, Wf, optimize=True), s=s)
    dxp = dxp[:, :, : xp.shape[2], : xp.shape[3]]
    dw = np.fft.irfft2(np.einsum("nchw,nfhw->fchw", X, D.conj(), optimize=True), s=s)
    dw = dw[:, :, : w.shape[2], : w.shape[3]]
    return (
        _unpad(dxp, padding).astype(xp.dtype),
        np.ascontiguousarray(dw, dtype=xp.dtype),
        dout.sum(axis=(0, 2, 3)),
    )


# --------------------------------------------------------------------------------------
# Compiled rungs. The loops index the *padded* input, so no pixel test is needed inside
# them.
# --------------------------------------------------------------------------------------

# Indices computed from strides could be negative as far as the compiler knows, and
# numba then adds NumPy's wrap-around (``a[-1]`` is the last element) to every access:
# a test and a select that keep LLVM from vectorizing. ``_index`` makes them unsigned;
# :func:`_prepare` has already checked they are in range. (The "signed" safety variant
# compiles the very same code with int64.)
_index = np.uint64


def _forward_textbook(xp, w, b, out, sh, sw, dh, dw):
    """The seven loops as the formula reads: one output value at a time."""
    N, F, Ho, Wo = out.shape
    C, kH, kW = w.shape[1], w.shape[2], w.shape[3]
    for n in range(N):
        for f in range(F):
            for oh in range(Ho):
                for ow in range(Wo):
                    acc = b[f]
                    for c in range(C):
                        for i in range(kH):
                            for j in range(kW):
                                ih, iw = (
                                    _index(oh * sh + i * dh),
                                    _index(ow * sw + j * dw),
                                )
                                acc += w[f, c, i, j] * xp[n, c, ih, iw]
                    out[n, f, oh, ow] = acc


def _forward_reordered(xp, w, b, out, sh, sw, dh, dw):
    """The same seven loops, reordered: one weight at a time, innermost over a row of
    outputs.

    ``prange`` is an ordinary ``range`` unless the function is compiled with
    ``parallel=True``.
    """
    N, F, Ho, Wo = out.shape
    C, kH, kW = w.shape[1], w.shape[2], w.shape[3]
    for n in numba.prange(N):
        for f in range(F):
            out[n, f] = b[f]
            for c in range(C):
                for i in range(kH):
                    for j in range(kW):
                        wv = w[f, c, i, j]
                        for oh in range(Ho):
                            ih = _index(oh * sh + i * dh)
                            # contiguous in out (and in xp when sw == 1)
                            for ow in range(Wo):
                                out[n, f, oh, ow] += (
                                    wv * xp[n, c, ih, _index(ow * sw + j * dw)]
                                )


def _forward_raise(xp, w, b, out, sh, sw, dh, dw):
    """:func:`_forward_reordered` with a safety check — and a possible ``raise`` — in
    the hot loop."""
    N, F, Ho, Wo = out.shape
    C, kH, kW = w.shape[1], w.shape[2], w.shape[3]
    Wp = _index(xp.shape[3])
    for n in range(N):
        for f in range(F):
            out[n, f] = b[f]
            for c in range(C):
                for i in range(kH):
                    for j in range(kW):
                        wv = w[f, c, i, j]
                        for oh in range(Ho):
                            ih = _index(oh * sh + i * dh)
                            for ow in range(Wo):
                                iw = _index(ow * sw + j * dw)
                                if iw >= Wp:
                                    raise IndexError(
                                        "conv2d: input column out of range"
                                    )
                                out[n, f, oh, ow] += wv * xp[n, c, ih, iw]


def _forward_flat_signed(xp, w, b, out, sh, sw, dh, dw):
    """:func:`_forward_reordered` on flattened arrays, indexed by computed signed
    (int64) offsets."""
    N, F, Ho, Wo = out.shape
    C, kH, kW = w.shape[1], w.shape[2], w.shape[3]
    Hp, Wp = xp.shape[2], xp.shape[3]
    x1, w1, o1 = xp.ravel(), w.ravel(), out.ravel()
    for n in range(N):
        for f in range(F):
            o_img = (n * F + f) * Ho * Wo
            for k in range(Ho * Wo):
                o1[o_img + k] = b[f]
            for c in range(C):
                for i in range(kH):
                    for j in range(kW):
                        wv = w1[((f * C + c) * kH + i) * kW + j]
                        for oh in range(Ho):
                            x_row = ((n * C + c) * Hp + oh * sh + i * dh) * Wp + j * dw
                            o_row = o_img + oh * Wo
                            for ow in range(Wo):
                                o1[o_row + ow] += wv * x1[x_row + ow * sw]


def _forward_flat_unsigned(xp, w, b, out, sh, sw, dh, dw):
    """:func:`_forward_flat_signed` with unsigned (uint64) offsets: no negative index to
    wrap."""
    N, F, Ho, Wo = out.shape
    C, kH, kW = w.shape[1], w.shape[2], w.shape[3]
    Hp, Wp = xp.shape[2], xp.shape[3]
    x1, w1, o1 = xp.ravel(), w.ravel(), out.ravel()
    u = np.uint64  # every operand unsigned: mixing uint64 with int64 would give float64
    for n in range(N):
        for f in range(F):
            o_img = u((n * F + f) * Ho * Wo)
            for k in range(u(Ho * Wo)):
                o1[o_img + k] = b[f]
            for c in range(C):
                for i in range(kH):
                    for j in range(kW):
                        wv = w1[u(((f * C + c) * kH + i) * kW + j)]
                        for oh in range(Ho):
                            x_row = u(
                                ((n * C + c) * Hp + oh * sh + i * dh) * Wp + j * dw
                            )
                            o_row = o_img + u(oh * Wo)
                            step = u(sw)
                            for ow in range(u(Wo)):
                                o1[o_row + ow] += wv * x1[x_row + ow * step]


def _backward_textbook(dout, xp, w, dxp, dw_parts, db_parts, sh, sw, dh, dw):
    """The seven loops of the backward pass: every output gradient visits the inputs it
    read."""
    N, F, Ho, Wo = dout.shape
    C, kH, kW = w.shape[1], w.shape[2], w.shape[3]
    for n in range(N):
        for f in range(F):
            for oh in range(Ho):
                for ow in range(Wo):
                    g = dout[n, f, oh, ow]
                    db_parts[0, f] += g
                    for c in range(C):
                        for i in range(kH):
                            for j in range(kW):
                                ih, iw = (
                                    _index(oh * sh + i * dh),
                                    _index(ow * sw + j * dw),
                                )
                                dw_parts[0, f, c, i, j] += g * xp[n, c, ih, iw]
                                dxp[n, c, ih, iw] += g * w[f, c, i, j]


def _backward_reordered(dout, xp, w, dxp, dw_parts, db_parts, sh, sw, dh, dw):
    """Backward with the innermost loop over a row of outputs.

    ``dw`` and ``db`` sum over the batch, so each of the T = ``len(dw_parts)`` chunks of
    images (T threads under ``parallel=True``) keeps its own partial sums; the dx of an
    image is written by exactly one chunk.
    """
    N, F, Ho, Wo = dout.shape
    C, kH, kW = w.shape[1], w.shape[2], w.shape[3]
    T = dw_parts.shape[0]
    for t in numba.prange(T):
        # One partial sum per output column: independent additions vectorize, a single
        # scalar accumulator would be one long chain (the compiler may not reorder
        # float additions).
        col_sum = np.zeros(Wo, dtype=xp.dtype)
        for n in range(t, N, T):
            for f in range(F):
                for oh in range(Ho):
                    for ow in range(Wo):
                        col_sum[ow] += dout[n, f, oh, ow]
                db_parts[t, f] += col_sum.sum()
                col_sum[:] = 0
                for c in range(C):
                    for i in range(kH):
                        for j in range(kW):
                            wv = w[f, c, i, j]
                            for oh in range(Ho):
                                ih = _index(oh * sh + i * dh)
                                for ow in range(Wo):
                                    iw = _index(ow * sw + j * dw)
                                    g = dout[n, f, oh, ow]
                                    col_sum[ow] += g * xp[n, c, ih, iw]
                                    dxp[n, c, ih, iw] += g * wv
                            dw_parts[t, f, c, i, j] += col_sum.sum()
                            col_sum[:] = 0


def _forward_joined(xp, w, b, out_wide, L, dh, dw):
    """Stride 1: the reordered loops with all output rows joined into one long row.

    Each image channel is seen as one long row of Hp·Wp pixels, each output map as
    ``out_wide`` (N, F, Ho·Wp): output (oh, ow) sits at oh·Wp + ow, and kernel tap (i,
    j) reads the input i·dh·Wp + j·dw further on. The innermost loop then runs over L =
    (Ho − 1)·Wp + Wo positions instead of Wo; the Wp − Wo positions at the end of each
    row are computed and thrown away.
    """
    N, F = out_wide.shape[0], out_wide.shape[1]
    C, kH, kW = w.shape[1], w.shape[2], w.shape[3]
    Wp = xp.shape[3]
    x_rows = xp.reshape(N, C, xp.shape[2] * Wp)
    for n in range(N):
        for f in range(F):
            out_wide[n, f] = b[f]
            for c in range(C):
                for i in range(kH):
                    for j in range(kW):
                        wv = w[f, c, i, j]
                        offset = _index(i * dh * Wp + j * dw)
                        for k in range(L):
                            out_wide[n, f, k] += wv * x_rows[n, c, offset + _index(k)]


def _backward_joined(dout_wide, xp, w, dxp, dw_parts, db_parts, L, dh, dw):
    """Backward of :func:`_forward_joined`; ``dout_wide`` holds zeros where outputs were
    thrown away.

    Its ∂L/∂w sums run over L ≈ Ho·Wp products, too long for the per-column partial
    sums of :func:`_backward_reordered`: this kernel is compiled with
    ``fastmath={"reassoc"}`` instead, which allows the compiler to reorder the additions
    of one sum (and so to vectorize it).
    """
    N, F = dout_wide.shape[0], dout_wide.shape[1]
    C, kH, kW = w.shape[1], w.shape[2], w.shape[3]
    Wp = xp.shape[3]
    x_rows = xp.reshape(N, C, xp.shape[2] * Wp)
    dx_rows = dxp.reshape(N, C, xp.shape[2] * Wp)
    zero = np.zeros(1, dtype=xp.dtype)[0]  # a zero of the arrays' own dtype
    for n in range(N):
        for f in range(F):
            for k in range(L):
                db_parts[0, f] += dout_wide[n, f, k]
            for c in range(C):
                for i in range(kH):
                    for j in range(kW):
                        wv = w[f, c, i, j]
                        offset = _index(i * dh * Wp + j * dw)
                        acc = zero
                        for k in range(L):
                            g = dout_wide[n, f, k]
                            acc += g * x_rows[n, c, offset + _index(k)]
                            dx_rows[n, c, offset + _index(k)] += g * wv
                        dw_parts[0, f, c, i, j] += acc


def _compile(fn, tag="", index=None, **options):
    """``numba.njit`` with the on-disk cache, or a stub raising a clear ImportError
    without numba.

    numba's cache keys compiled code by function and argument types but *not* by compile
    options, so each option set of the same Python function gets its own name (``tag``)
    and cache entry. ``index`` replaces the integer type the loops cast their computed
    indices to. The cache lives in ``cnnbook/__pycache__`` (or under ``NUMBA_CACHE_DIR``
    when set; numba falls back to a user cache folder when the package folder is
    read-only), so a fresh clone compiles each kernel once per dtype, then loads it in
    milliseconds.
    """
    if numba is None:

        @functools.wraps(fn)
        def missing(*args, **kwargs):
            raise ImportError(_NUMBA_MISSING)

        return missing
    if tag:
        env = fn.__globals__ if index is None else {**fn.__globals__, "_index": index}
        fn = types.FunctionType(
            fn.__code__, env, fn.__name__ + tag, fn.__defaults__, fn.__closure__
        )
        fn.__qualname__ = fn.__name__
    return numba.njit(cache=True, **options)(fn)


# forward kernels: name -> compiled function(xp, w, b, out, sh, sw, dh, dw)
KERNELS = {
    "textbook": _compile(_forward_textbook),
    "reordered": _compile(_forward_reordered),
    "parallel": _compile(_forward_reordered, "_parallel", parallel=True),
    "joined": _compile(_forward_joined),  # stride 1 only
    # safety vs speed: variants of "reordered", one change each
    "boundscheck": _compile(_forward_reordered, "_boundscheck", boundscheck=True),
    "raise": _compile(_forward_raise),
    "signed": _compile(_forward_reordered, "_signed", index=np.int64),
    "flat_signed": _compile(_forward_flat_signed),
    "flat_unsigned": _compile(_forward_flat_unsigned),
}
# backward kernels: name -> compiled function(dout, xp, w, dxp, dw_parts, db_parts, sh,
# sw, dh, dw)
BACKWARD_KERNELS = {
    "textbook": _compile(_backward_textbook),
    "reordered": _compile(_backward_reordered),
    "parallel": _compile(_backward_reordered, "_parallel", parallel=True),
    "joined": _compile(_backward_joined, fastmath={"reassoc"}),  # stride 1 only
}


def _kernel(table, kernel, what):
    if kernel not in table:
        raise ValueError(
            f"unknown {what} kernel {kernel!r}; choose one of {sorted(table)}"
        )
    if numba is None:
        raise ImportError(_NUMBA_MISSING)
    return table[kernel]


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, *, kernel="reordered"):
    """conv2d with compiled loops (numba). Same contract as
    :func:`cnnbook.functional.conv2d`.

    x: (N, C, H, W), w: (F, C, kH, kW), b: (F,) or None → (N, F, Ho, Wo), dtype of x.
    ``kernel`` is one of ``KERNELS``; ``"parallel"`` uses
    ``numba.get_num_threads()`` threads, ``"joined"`` needs stride 1.
    """
    fn = _kernel(KERNELS, kernel, "forward")
    xp, w, b, (ho, wo), (sh, sw), _, (dh, dw) = _prepare(
        x, w, b, stride, padding, dilation, "fast.conv2d"
    )
    n, f = x.shape[0], w.shape[0]
    if kernel in ("joined", "rows"):
        _require_stride_one(kernel, (sh, sw))
        wp = xp.shape[3]
        out_wide = np.empty((n, f, ho * wp), dtype=xp.dtype)
        fn(xp, w, b, out_wide, (ho - 1) * wp + wo, dh, dw)
        return np.ascontiguousarray(out_wide.reshape(n, f, ho, wp)[:, :, :, :wo])
    out = np.empty((n, f, ho, wo), dtype=xp.dtype)
    fn(xp, w, b, out, sh, sw, dh, dw)
    return out


def _require_stride_one(kernel, stride):
    if stride != (1, 1):
        raise ValueError(
            f"the {kernel!r} kernel handles stride 1 only, got stride {stride}"
        )


def conv2d_backward(
    dout,
    x,
    w,
    stride=1,
    padding=0,
    dilation=1,
    *,
    kernel="reordered",
    need_dx=True,
):
    """Gradients of :func:`conv2d` with compiled loops: ``(dx, dw, db)`` shaped like x,
    w, (F,).

    ``kernel`` is ``"textbook"``, ``"reordered"``, ``"parallel"`` or ``"joined"``
    (stride 1). ``need_dx=False`` returns None for ``dx``.
    """
    fn = _kernel(BACKWARD_KERNELS, kernel, "backward")
    xp, w, _, out_hw, (sh, sw), padding, (dh, dw) = _prepare(
        x, w, None, stride, padding, dilation, "fast.conv2d_backward"
    )
    dout = _check_dout(dout, x, w, out_hw, "fast.conv2d_backward")
    chunks = min(numba.get_num_threads(), x.shape[0]) if kernel == "parallel" else 1
    dxp = np.zeros_like(xp) if need_dx or kernel != "joined" else None
    dw_parts = np.zeros((chunks, *w.shape), dtype=xp.dtype)
    db_parts = np.zeros((chunks, w.shape[0]), dtype=xp.dtype)
    if kernel == "joined":
        _require_stride_one(kernel, (sh, sw))
        (ho, wo), wp = out_hw, xp.shape[3]
        dout_wide = np.empty((*dout.shape[:3], wp), dtype=xp.dtype)
        dout_wide[..., :wo] = dout
        dout_wide[..., wo:] = 0  # the thrown-away positions get zero gradient
        dout_wide = dout_wide.reshape(*dout.shape[:2], ho * wp)
        if need_dx:
            fn(dout_wide, xp, w, dxp, dw_parts, db_parts, (ho - 1) * wp + wo, dh, dw)
        else:  # the first layer of a network needs no dx: dw and db only
            dw_only = _dw_kernel(w.shape[3])
            dw_only(dout_wide, xp, w, dw_parts, db_parts, (ho - 1) * wp + wo, dh, dw)
    else:
        fn(dout, xp, w, dxp, dw_parts, db_parts, sh, sw, dh, dw)
    return (
        np.ascontiguousarray(_unpad(dxp, padding)) if need_dx else None,
        dw_parts.sum(axis=0),
        db_parts.sum(axis=0),
    )


# --------------------------------------------------------------------------------------
# Max pooling that remembers its argmax (issue 18), and the input-gradient-free conv
# backward. Appended here, after the ladder, so the listings above keep their lines.
# --------------------------------------------------------------------------------------


def _max_pool_forward(x, out, indices, kh, kw, sh, sw, ph, pw):
    """Each window's maximum and where it is: ``indices`` holds ``row·W + col`` in the
    (n, c) plane, like PyTorch's ``return_indices=True``.

    Only the window's real pixels are visited (the padding and ``ceil_mode``'s overhang
    are clipped away). PyTorch's rule: a value replaces the running maximum if it is
    larger (strict, so the first maximum in row-major window order wins a tie) or NaN.
    """
    N, C, H, W = x.shape
    Ho, Wo = out.shape[2], out.shape[3]
    for n in range(N):
        for c in range(C):
            for oh in range(Ho):
                r0 = oh * sh - ph
                r_lo, r_hi = max(r0, 0), min(r0 + kh, H)
                for ow in range(Wo):
                    s0 = ow * sw - pw
                    s_lo, s_hi = max(s0, 0), min(s0 + kw, W)
                    best = x[n, c, _index(r_lo), _index(s_lo)]
                    where = r_lo * W + s_lo
                    for r in range(r_lo, r_hi):
                        for s in range(s_lo, s_hi):
                            v = x[n, c, _index(r), _index(s)]
                            take = v > best or v != v
                            best = v if take else best
                            where = r * W + s if take else where
                    out[n, c, oh, ow] = best
                    indices[n, c, oh, ow] = where


def _max_pool_forward_2x2(x, out, indices, sh, sw):
    """:func:`_max_pool_forward` for 2×2 windows that lie inside the input.

    The four comparisons written out (no loops of length 2, no clipping, no NaN test:
    each of those measured several times slower); ties to the first, as above. Returns
    the sum of all window values: when it is not finite, a window may hold a NaN
    (or the sum overflowed), and the caller runs the general kernel instead.
    """
    N, C, H, W = x.shape
    Ho, Wo = out.shape[2], out.shape[3]
    one = _index(1)
    total = np.zeros(1, dtype=x.dtype)[0]
    for n in range(N):
        for c in range(C):
            for oh in range(Ho):
                r = _index(oh * sh)
                for ow in range(Wo):
                    s = _index(ow * sw)
                    q = (oh * sh) * W + ow * sw  # the window's top-left pixel
                    best, where = x[n, c, r, s], q
                    v = x[n, c, r, s + one]
                    if v > best:
                        best, where = v, q + 1
                    v = x[n, c, r + one, s]
                    if v > best:
                        best, where = v, q + W
                    v = x[n, c, r + one, s + one]
                    if v > best:
                        best, where = v, q + W + 1
                    out[n, c, oh, ow] = best
                    indices[n, c, oh, ow] = where
                    total += (x[n, c, r, s] + x[n, c, r, s + one]) + (
                        x[n, c, r + one, s] + v
                    )
    return total


def _max_pool_backward(dout, indices, dx_planes):
    """Route every window's gradient to its recorded maximum; overlaps add up.

    ``dx_planes``: (N, C, H·W) zeros; ``indices`` as :func:`_max_pool_forward` wrote.
    """
    N, C, Ho, Wo = dout.shape
    for n in range(N):
        for c in range(C):
            for oh in range(Ho):
                for ow in range(Wo):
                    dx_planes[n, c, indices[n, c, oh, ow]] += dout[n, c, oh, ow]


def _backward_joined_dw(dout_wide, xp, w, dw_parts, db_parts, L, dh, dw):
    """:func:`_backward_joined` without the input gradient: ∂L/∂w and ∂L/∂b only."""
    N, F = dout_wide.shape[0], dout_wide.shape[1]
    C, kH, kW = w.shape[1], w.shape[2], w.shape[3]
    Wp = xp.shape[3]
    x_rows = xp.reshape(N, C, xp.shape[2] * Wp)
    zero = np.zeros(1, dtype=xp.dtype)[0]
    for n in range(N):
        for f in range(F):
            for k in range(L):
                db_parts[0, f] += dout_wide[n, f, k]
            for c in range(C):
                for i in range(kH):
                    for j in range(kW):
                        offset = _index(i * dh * Wp + j * dw)
                        acc = zero
                        for k in range(L):
                            acc += dout_wide[n, f, k] * x_rows[n, c, offset + _index(k)]
                        dw_parts[0, f, c, i, j] += acc


_POOL_FORWARD = _compile(_max_pool_forward)
_POOL_FORWARD_2X2 = _compile(_max_pool_forward_2x2)
_POOL_BACKWARD = _compile(_max_pool_backward)
_JOINED_DW = _compile(_backward_joined_dw, fastmath={"reassoc"})


def max_pool2d_with_indices(x, kernel_size, stride=None, padding=0, ceil_mode=False):
    """Compiled max pooling: ``(out, indices)``, both ``(N, C, Ho, Wo)``.

    ``indices[n, c, oh, ow] = row·W + col`` of the window's maximum in plane (n, c)
    (int64, PyTorch's ``return_indices`` convention). Same arguments and errors as
    :func:`cnnbook.functional.max_pool2d`.
    """
    x, (kh, kw), (sh, sw), (ph, pw), (ho, wo) = pool_args(
        x, kernel_size, stride, padding, "max_pool2d", ceil_mode
    )
    general = _kernel({"pool": _POOL_FORWARD}, "pool", "max-pool")
    x = np.ascontiguousarray(x)
    out = np.empty((*x.shape[:2], ho, wo), dtype=x.dtype)
    indices = np.empty(out.shape, dtype=np.int64)
    inside = (ph, pw) == (0, 0) and (ho - 1) * sh + 2 <= x.shape[2]
    inside = inside and (wo - 1) * sw + 2 <= x.shape[3]
    # A finite sum of the windows proves that they hold no NaN (an inf or an
    # overflow merely takes the general kernel).
    if (
        (kh, kw) == (2, 2)
        and inside
        and np.isfinite(_POOL_FORWARD_2X2(x, out, indices, sh, sw))
    ):
        return out, indices
    general(x, out, indices, kh, kw, sh, sw, ph, pw)
    return out, indices


def max_pool2d_backward_indices(dout, indices, x_shape, dtype):
    """Compiled routing of ``dout`` to the recorded maxima: dx of shape ``x_shape``.

    The arguments were checked by
    :func:`cnnbook.functional.max_pool2d_with_indices_backward`.
    """
    fn = _kernel({"pool": _POOL_BACKWARD}, "pool", "max-pool")
    N, C, H, W = x_shape
    dx = np.zeros((N, C, H * W), dtype=dtype)
    fn(
        np.ascontiguousarray(dout, dtype=dtype),
        np.ascontiguousarray(indices),
        dx,
    )
    return dx.reshape(x_shape)


_KW = 3  # the kernel width _forward_rows is compiled for: replaced per width


def _forward_rows(xp, w, b, out_wide, L, dh, dw):
    """:func:`_forward_joined` with the taps of one kernel row summed in registers.

    For each kernel row ``i`` one pass over the joined output row adds all ``kW`` taps
    (``_KW``, a compile-time constant, so the tap loop unrolls and the loop over ``k``
    vectorizes): a load and a store of the output per kernel *row*, not per tap.
    """
    N, F = out_wide.shape[0], out_wide.shape[1]
    C, kH = w.shape[1], w.shape[2]
    Wp = xp.shape[3]
    x_rows = xp.reshape(N, C, xp.shape[2] * Wp)
    for n in range(N):
        for f in range(F):
            o = out_wide[n, f]
            o[:] = b[f]
            for c in range(C):
                xr = x_rows[n, c]
                for i in range(kH):
                    base = i * dh * Wp
                    wr = w[f, c, i]
                    for k in range(L):
                        acc = o[k]
                        for j in range(_KW):
                            acc += wr[j] * xr[_index(base + j * dw + k)]
                        o[k] = acc


_ROWS = {}  # kernel width -> _forward_rows compiled with _KW = that width


def _forward_rows_any(xp, w, b, out_wide, L, dh, dw):
    """Run :func:`_forward_rows` compiled for ``w``'s kernel width (once per width)."""
    kw = w.shape[3]
    if kw not in _ROWS:
        if numba is None:
            raise ImportError(_NUMBA_MISSING)
        fn = types.FunctionType(
            _forward_rows.__code__,
            {**_forward_rows.__globals__, "_KW": kw},
            f"_forward_rows_kw{kw}",
        )
        fn.__qualname__ = fn.__name__
        _ROWS[kw] = numba.njit(cache=True)(fn)
    _ROWS[kw](xp, w, b, out_wide, L, dh, dw)


KERNELS["rows"] = _forward_rows_any  # stride 1 only, like "joined"


def _backward_rows_dw(dout_wide, xp, w, dw_parts, db_parts, L, dh, dw):
    """:func:`_backward_joined_dw` with a kernel row's taps summed in one pass.

    One pass over the joined rows per kernel row ``i`` keeps ``kW`` sums (``_KW`` <= 5,
    a compile-time constant: the unused sums are compiled away), so each ``dout``
    value is loaded once for all the row's taps instead of once per tap.
    """
    N, F = dout_wide.shape[0], dout_wide.shape[1]
    C, kH = w.shape[1], w.shape[2]
    Wp = xp.shape[3]
    x_rows = xp.reshape(N, C, xp.shape[2] * Wp)
    zero = np.zeros(1, dtype=xp.dtype)[0]
    for n in range(N):
        for f in range(F):
            g_row = dout_wide[n, f]
            for k in range(L):
                db_parts[0, f] += g_row[k]
            for c in range(C):
                xr = x_rows[n, c]
                for i in range(kH):
                    b0 = i * dh * Wp
                    a0 = a1 = a2 = a3 = a4 = zero
                    for k in range(L):
                        g = g_row[k]
                        a0 += g * xr[_index(b0 + k)]
                        if _KW > 1:
                            a1 += g * xr[_index(b0 + dw + k)]
                        if _KW > 2:
                            a2 += g * xr[_index(b0 + 2 * dw + k)]
                        if _KW > 3:
                            a3 += g * xr[_index(b0 + 3 * dw + k)]
                        if _KW > 4:
                            a4 += g * xr[_index(b0 + 4 * dw + k)]
                    part = dw_parts[0, f, c, i]
                    part[0] += a0
                    if _KW > 1:
                        part[1] += a1
                    if _KW > 2:
                        part[2] += a2
                    if _KW > 3:
                        part[3] += a3
                    if _KW > 4:
                        part[4] += a4


_ROWS_DW = {}  # kernel width (<= 5) -> _backward_rows_dw compiled for it


def _dw_kernel(kw):
    """The dw/db-only kernel for kernel width ``kw``: "rows" up to 5, else joined."""
    if kw > 5:
        return _JOINED_DW
    if kw not in _ROWS_DW:
        fn = types.FunctionType(
            _backward_rows_dw.__code__,
            {**_backward_rows_dw.__globals__, "_KW": kw},
            f"_backward_rows_dw_kw{kw}",
        )
        fn.__qualname__ = fn.__name__
        _ROWS_DW[kw] = numba.njit(cache=True, fastmath={"reassoc"})(fn)
    return _ROWS_DW[kw]
