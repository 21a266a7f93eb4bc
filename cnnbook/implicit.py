"""Convolution through the tiny BLAS's micro-kernel without materializing im2col
(issue 18).

The forward pass is one matrix product per image, ``out[n] (F, Ho·Wo) = W (F, C·kH·kW)
@ cols[n] (C·kH·kW, Ho·Wo)`` (Chapter 3's im2col), computed with Chapter 10's packed
GEMM (:mod:`cnnbook.blas`): ``W`` is packed once into the A~ micro-panels of
:func:`cnnbook.blas.pack_a` (in depth blocks of the tiny BLAS's kc), and ``cols`` never
exists (*implicit im2col*). A B~ micro-panel of ``cols`` for NR positions of one output
row has, as its row for tap ``(c, i, j)``, NR **contiguous** floats of the zero-padded
image, ``xp[c, oh + i·d, ow0 + j·d …]``; the micro-kernel only needs rows of NR
contiguous floats, so it reads them in place (``_micro_direct``, built from the
tiny BLAS's ``zero_tile``/``fma_row``/``update_row`` intrinsics) instead of copying
them into a packed panel first. (Copying them in :func:`cnnbook.blas.pack_b`'s
layout, one block at a time, measured 3 ms of a 10 ms forward on shape B: more than
the whole gap to PyTorch.) The bias is one more column of ``W`` times a row of ones.
The result of image ``n`` is ``out[n]`` seen as an ``F × Ho·Wo`` matrix: the layout
(N, F, Ho, Wo), no transpose. The tiles of A's last, short micro-panel are computed
whole, their extra rows landing in the next image's rows (overwritten later) or in
slack rows: no edge copies.

The backward pass:

* ``dw = Σ_n dout[n] (F, Ho·Wo) @ cols[n]ᵀ (Ho·Wo, C·kH·kW)``, the positions as the
  inner dimension. In a channels-last copy of the padded image (``xt[n, h, w, c]``,
  made once), the taps ``(i, j, c)`` of one position and kernel offset are ``C``
  contiguous floats: with C a multiple of NR, the rows of ``cols[n]ᵀ``'s micro-panels
  are again read in place, ``dout[n]`` is packed by :func:`cnnbook.blas.pack_a`, and
  the kernel comes out in the tap order ``(i, j, c)``, permuted back at the end.
  Other C: ``dwᵀ = Σ_n cols[n] @ dout[n]ᵀ`` with A's MR taps broadcast in place from
  the padded image and ``dout[n]ᵀ`` packed as B~ micro-panels in
  :func:`cnnbook.blas.pack_b`'s layout (``_pack_dout``).
* ``dx`` (stride 1) is a convolution of ``dout`` with the kernel flipped in both
  spatial axes and its two channel axes swapped, with padding ``d(k - 1) - p`` (a
  "full" correlation; a wider padding crops ``dout`` instead), through the same
  forward.
* ``db = Σ dout``.

float32 only (the tiny BLAS is single precision), stride 1; any padding and dilation.
Threads: with ``numba.get_num_threads() > 1`` the images are shared among the threads
(``prange``), each with its own buffers (and its own partial ``dw``).

The kernels inline the tiny BLAS's compiled intrinsics. numba's on-disk cache keys a
kernel on its own file only and would keep stale machine code after a change to
``cnnbook/blas.py``, so these kernels are compiled once per process, never cached.
"""

from __future__ import annotations

import numpy as np

from . import blas
from ._validation import check_conv_args, conv_backward_args, conv_geometry
from .blas import (
    MR,
    NR,
    _jit,
    fma_row,
    pack_a,
    prefetch_row,
    update_row,
    zero_tile,
)

try:
    import numba
    from numba import prange
except ImportError:  # pragma: no cover - exercised only where numba is absent
    numba = None
    prange = range

__all__ = ["HAVE_NUMBA", "conv2d", "conv2d_backward"]

HAVE_NUMBA = numba is not None
_NUMBA_MISSING = (
    "cnnbook.implicit: the implicit-im2col convolution runs the tiny BLAS, compiled "
    "with numba, which is not installed. Install it with `pip install numba`."
)

# Computed indices cast to unsigned, so numba adds no negative-index test (which would
# keep LLVM from vectorizing the copies); every index here is >= 0 by construction.
_index = np.uint64


# --------------------------------------------------------------------------------------
# Micro-panels that need no copy: NR contiguous floats of the image are a panel's row
# --------------------------------------------------------------------------------------


@_jit(cache=False)
def _micro_direct(kb, a, rows, offs, base, ones, bias, C, i0, j0, beta):
    """:func:`cnnbook.blas.micro_kernel` with row ``p`` of the B micro-panel read in
    place: the NR contiguous floats ``rows[offs[p] + base …]`` of an image (``rows``:
    the flat image as an (n, 1) array), so B is never packed. ``bias``: one more step
    with A's row ``kb`` (the bias) times a row of ``ones``."""
    for i in range(MR):
        prefetch_row(C, i0 + i, j0)
    acc = zero_tile()
    for p in range(kb):
        r = offs[p] + base
        for i in range(MR):
            fma_row(acc, i, a[p, i], rows, r)  # acc[i, :] += a[p, i] · rows[r …]
    if bias:
        for i in range(MR):
            fma_row(acc, i, a[kb, i], ones, 0)
    for i in range(MR):
        update_row(C, i0 + i, j0, np.float32(1), acc, i, beta)


@_jit(cache=False)
def _edge_direct(kb, a, rows, offs, base, ones, bias, C, i0, j0, mr, nr, beta, tile):
    """:func:`_micro_direct` for a tile only ``mr × nr`` of which is inside C: the
    whole tile goes to ``tile`` (MR × NR), its corner to C (as
    :func:`cnnbook.blas.edge_tile`)."""
    origin = np.intp(0)
    zero = np.float32(0)
    _micro_direct(kb, a, rows, offs, base, ones, bias, tile, origin, origin, zero)
    for i in range(mr):
        for j in range(nr):
            old = beta * C[i0 + i, j0 + j] if beta != 0 else np.float32(0)
            C[i0 + i, j0 + j] = tile[i, j] + old


@_jit(cache=False)
def _pad_images(x, xp, ph, pw):
    """``xp`` (flat, N·C·Hp·Wp floats and more) ← ``x`` (N, C, H, W) with ``ph``,
    ``pw`` zeros around each plane; the floats after the last plane are zeroed too."""
    N, C, H, W = x.shape
    Wp = W + 2 * pw
    k = 0
    for n in range(N):
        for c in range(C):
            for _ in range(ph * Wp):
                xp[k] = 0
                k += 1
            for h in range(H):
                row = x[n, c, h]
                for _ in range(pw):
                    xp[k] = 0
                    k += 1
                for w in range(W):
                    xp[_index(k + w)] = row[w]
                k += W
                for _ in range(pw):
                    xp[k] = 0
                    k += 1
            for _ in range(ph * Wp):
                xp[k] = 0
                k += 1
    for i in range(k, xp.shape[0]):
        xp[i] = 0


@_jit(cache=False)
def _forward_direct(
    xp, offs, Ap, ones, bias, flat, N, F, Ho, Wo, Wp, image, first, last
):
    """Images ``first … last − 1`` of the forward pass with unpacked B micro-panels:
    ``out[n][:, oh·Wo + ow0 …] = A @ cols`` for NR positions ``ow0 …`` of output row
    ``oh`` at a time, whose rows are the NR floats at ``xp[n·image + offs[r] + oh·Wp +
    ow0 …]`` of the padded image (``offs[r]``: tap r's offset; a panel narrower than
    NR reads, and drops, a few floats past its row). ``Ap[q]``: the packed depth
    block q of A (kc taps; :func:`cnnbook.blas.pack_a`)."""
    L = Ho * Wo
    K = offs.shape[0]
    kc = Ap.shape[2]
    tile = np.empty((MR, NR), dtype=np.float32)
    zero, one = np.float32(0), np.float32(1)
    whole = Ap.shape[1] * MR  # F rounded up to whole micro-panels of A
    for n in range(first, last):
        # The tiles of A's last, short micro-panel are computed whole: their rows
        # past F land in the next image's first rows, which that image overwrites
        # later (beta = 0), or in the slack rows after the last image. Not so for
        # the last image of a chunk, whose next image another thread computes.
        rows_n = whole if n + 1 < last or last == N else F
        C = flat[n * F * L : n * F * L + rows_n * L].reshape(rows_n, L)
        for oh in range(Ho):
            for ow0 in range(0, Wo, NR):
                nr = min(NR, Wo - ow0)
                base = n * image + oh * Wp + ow0
                j0 = oh * Wo + ow0
                for q in range(Ap.shape[0]):  # depth blocks: B's rows stay in L1
                    pc = q * kc
                    kb = min(kc, K - pc)
                    rows = offs[pc : pc + kb]
                    beta = zero if q == 0 else one
                    last_q = bias and q == Ap.shape[0] - 1
                    for s in range(Ap.shape[1]):  # micro-panels of A
                        i0 = s * MR
                        mr = min(MR, rows_n - i0)
                        a = Ap[q, s]
                        if mr == MR and nr == NR:
                            _micro_direct(
                                kb, a, xp, rows, base, ones, last_q, C, i0, j0, beta
                            )
                        else:
                            _edge_direct(
                                kb, a, xp, rows, base, ones, last_q, C, i0, j0, mr,
                                nr, beta, tile,
                            )  # fmt: skip


@_jit(parallel=True, cache=False)
def _forward_direct_threads(
    xp, offs, Ap, ones, bias, flat, N, F, Ho, Wo, Wp, image, chunks
):
    """:func:`_forward_direct` with the images shared out in ``chunks`` (prange)."""
    for t in prange(chunks):
        _forward_direct(
            xp, offs, Ap, ones, bias, flat, N, F, Ho, Wo, Wp, image,
            t * N // chunks, (t + 1) * N // chunks,
        )  # fmt: skip


# --------------------------------------------------------------------------------------
# ∂L/∂w: the positions as the inner dimension, A read in place from the image
# --------------------------------------------------------------------------------------


@_jit(cache=False)
def _micro_cols(kb, rows, pos_off, pc, taps, base, b, C, i0, j0, beta):
    """The micro-kernel of ``∂L/∂wᵀ = cols @ doutᵀ`` with A read in place: step p
    (position ``pc + p``) broadcasts the MR taps ``rows[base + pos_off[pc + p] +
    taps[i]]`` of the padded image (``rows``: flat) against row p of ``b``, a packed
    micro-panel of ``doutᵀ`` (:func:`_pack_dout`)."""
    for i in range(MR):
        prefetch_row(C, i0 + i, j0)
    acc = zero_tile()
    for p in range(kb):
        q = base + pos_off[_index(pc + p)]
        for i in range(MR):
            fma_row(acc, i, rows[_index(q + taps[i])], b, p)
    for i in range(MR):
        update_row(C, i0 + i, j0, np.float32(1), acc, i, beta)


@_jit(cache=False)
def _pack_dout(d, pc, kb, Bp):
    """``Bp[t, p, j] = d[t·NR + j, pc + p]``: the B~ micro-panels of ``doutᵀ`` (the
    layout of :func:`cnnbook.blas.pack_b`) from ``d = dout[n]`` (F, Ho·Wo); zeros
    past the last filter."""
    F = d.shape[0]
    for t in range(Bp.shape[0]):
        panel = Bp[t]
        for j in range(NR):
            f = t * NR + j
            if f < F:
                row = d[f]
                for p in range(kb):
                    panel[p, j] = row[pc + p]
            else:
                for p in range(kb):
                    panel[p, j] = 0


@_jit(cache=False)
def _dw_images(xp, pos_off, taps, dout, dwt, kc, image, first, last):
    """Images ``first … last − 1``: ``dwt += cols[n] @ dout[n]ᵀ`` (``dwt``: taps × F;
    ``taps``: the tap offsets, padded to a multiple of MR; ``xp``: the flat padded
    images, ``image`` floats apart). Blocks of ``kc`` positions: ``dout[n]ᵀ`` packed
    (:func:`_pack_dout`), then every MR × NR tile of ``dwt`` updated from it."""
    F, L = dout.shape[1], dout.shape[2]
    K = dwt.shape[0]
    Bp = np.empty(((F + NR - 1) // NR, min(kc, L), NR), dtype=np.float32)
    tile = np.empty((MR, NR), dtype=np.float32)
    one, zero, origin = np.float32(1), np.float32(0), np.intp(0)
    for n in range(first, last):
        base = n * image
        for pc in range(0, L, kc):
            kb = min(kc, L - pc)
            _pack_dout(dout[n], pc, kb, Bp)
            for t in range(Bp.shape[0]):
                j0 = t * NR
                nr = min(NR, F - j0)
                b = Bp[t]
                for s in range((K + MR - 1) // MR):
                    i0 = s * MR
                    mr = min(MR, K - i0)
                    ts = taps[i0 : i0 + MR]
                    if mr == MR and nr == NR:
                        _micro_cols(kb, xp, pos_off, pc, ts, base, b, dwt, i0, j0, one)
                    else:  # an edge tile: whole into ``tile``, its corner into dwt
                        _micro_cols(
                            kb, xp, pos_off, pc, ts, base, b, tile, origin, origin,
                            zero,
                        )  # fmt: skip
                        for i in range(mr):
                            for j in range(nr):
                                dwt[i0 + i, j0 + j] += tile[i, j]


@_jit(parallel=True, cache=False)
def _dw_threads(xp, pos_off, taps, dout, dwt_parts, kc, image):
    """:func:`_dw_images` with the images shared out, one partial ``dw`` per chunk."""
    N, chunks = dout.shape[0], dwt_parts.shape[0]
    for t in prange(chunks):
        _dw_images(
            xp, pos_off, taps, dout, dwt_parts[t], kc, image,
            t * N // chunks, (t + 1) * N // chunks,
        )  # fmt: skip


@_jit(cache=False)
def _channels_last(x, xt, ph, pw):
    """``xt[n, h + ph, w + pw, c] = x[n, c, h, w]``, zeros around (the padding)."""
    N, C, H, W = x.shape
    Hp, Wp = xt.shape[1], xt.shape[2]
    row = Wp * C  # floats per padded row of xt
    for n in range(N):
        planes = x[n].reshape(C, H * W)
        t = xt[n].reshape(Hp * row)
        for k in range(ph * row):  # the padding rows, top and bottom
            t[k] = 0
        for k in range((ph + H) * row, Hp * row):
            t[k] = 0
        for h in range(H):
            start = (h + ph) * row
            for k in range(pw * C):  # the padding columns, left and right
                t[start + k] = 0
                t[start + (pw + W) * C + k] = 0
            for w in range(W):
                pixel = _index(start + (pw + w) * C)
                source = _index(h * W + w)
                for c in range(C):
                    t[pixel + _index(c)] = planes[c, source]


@_jit(cache=False)
def _dw_channels_last(xt, pos_off, tap_base, dout, dwt, kc, image, first, last):
    """Images ``first … last − 1``: ``dwt += dout[n] @ cols[n]ᵀ`` (``dwt``: F × taps
    in the order (i, j, c)) with the B micro-panels of ``cols[n]ᵀ`` read in place
    from the channels-last padded images ``xt`` (flat, as an (n, 1) array): row p
    (position ``pc + p``) of tap panel t is ``xt[n·image + pos_off[pc + p] +
    tap_base[t] …]``, NR channels of one kernel offset (C a multiple of NR); A is
    ``dout[n]``, packed by :func:`cnnbook.blas.pack_a`."""
    F, L = dout.shape[1], dout.shape[2]
    panels = (F + MR - 1) // MR
    rows = dwt.shape[0]  # F, or F rounded up to whole micro-panels of A
    Ap = np.empty((panels, min(kc, L), MR), dtype=np.float32)
    tile = np.empty((MR, NR), dtype=np.float32)
    ones = np.ones((1, NR), dtype=np.float32)
    one = np.float32(1)
    for n in range(first, last):
        A = dout[n]
        for pc in range(0, L, kc):
            kb = min(kc, L - pc)
            pack_a(A, 0, pc, F, kb, Ap)
            offs = pos_off[pc : pc + kb]
            for t in range(tap_base.shape[0]):
                base = n * image + tap_base[t]
                j0 = t * NR
                for s in range(panels):
                    i0 = s * MR
                    mr = min(MR, rows - i0)
                    if mr == MR:
                        _micro_direct(
                            kb, Ap[s], xt, offs, base, ones, False, dwt, i0, j0, one
                        )
                    else:
                        _edge_direct(
                            kb, Ap[s], xt, offs, base, ones, False, dwt, i0, j0, mr,
                            NR, one, tile,
                        )  # fmt: skip


@_jit(parallel=True, cache=False)
def _dw_channels_last_threads(xt, pos_off, tap_base, dout, dwt_parts, kc, image):
    """:func:`_dw_channels_last` with the images shared out, one partial ``dw`` per
    chunk."""
    N, chunks = dout.shape[0], dwt_parts.shape[0]
    for t in prange(chunks):
        _dw_channels_last(
            xt, pos_off, tap_base, dout, dwt_parts[t], kc, image,
            t * N // chunks, (t + 1) * N // chunks,
        )  # fmt: skip


# --------------------------------------------------------------------------------------
# The public functions: validation once, then kernels that check nothing
# --------------------------------------------------------------------------------------


def _depth_block(k: int) -> int:
    """The tiny BLAS's depth block kc (:func:`cnnbook.blas.block_sizes`), balanced to a
    reduction of length ``k`` (:func:`cnnbook.blas.balanced_block`)."""
    return int(blas.balanced_block(k, blas._default_blocks("packed", blas.TILE).kc))


def _float32(fn, **arrays):
    for name, a in arrays.items():
        if a is not None and a.dtype != np.float32:
            raise TypeError(
                f"{fn}: the implicit-im2col path runs the single-precision tiny BLAS: "
                f"{name} has dtype {a.dtype}, expected float32 (convert with "
                f"{name}.astype(np.float32), or use method='numba' or 'im2col')"
            )


def _stride_one(stride, fn):
    if stride != (1, 1):
        raise ValueError(
            f"{fn}: the implicit-im2col path handles stride 1 only, got stride "
            f"{stride} (use method='im2col' for other strides)"
        )


def _chunks(n_images: int) -> int:
    return max(1, min(numba.get_num_threads(), n_images)) if numba else 1


def _padded(x, w_shape, padding, dilation):
    """``(xp, image, offs, Wp)``: the zero-padded images flat (``image`` floats
    apart, NR floats of slack at the end), the offset of each tap ``(c, i, j)`` from
    a position's pixel, and the padded width."""
    N, C, H, W = x.shape
    _, _, kh, kw = w_shape
    (ph, pw), (dh, dw) = padding, dilation
    Hp, Wp = H + 2 * ph, W + 2 * pw
    image = C * Hp * Wp
    xp = np.empty(N * image + NR, dtype=np.float32)
    _pad_images(np.ascontiguousarray(x), xp, ph, pw)
    c, i, j = np.meshgrid(np.arange(C), np.arange(kh), np.arange(kw), indexing="ij")
    offs = (c * Hp * Wp + i * dh * Wp + j * dw).ravel().astype(np.int64)
    return xp, image, offs, Wp


def _forward(x, w, b, padding, dilation, out_hw):
    """The implicit GEMM of checked float32 arrays (stride 1): (N, F, Ho, Wo)."""
    if numba is None:
        raise ImportError(_NUMBA_MISSING)
    N, F, (Ho, Wo) = len(x), len(w), out_hw
    xp, image, offs, Wp = _padded(x, w.shape, padding, dilation)
    A = w.reshape(F, -1)
    if b is not None:  # the bias: one more column of W, times a row of ones
        A = np.concatenate([A, b.reshape(F, 1)], axis=1)
    A = np.ascontiguousarray(A, dtype=np.float32)
    K = offs.shape[0]  # the taps; A has one more column with a bias
    kc = _depth_block(K)
    Ap = np.zeros((-(-K // kc), -(-F // MR), kc + 1, MR), dtype=np.float32)
    for q in range(Ap.shape[0]):  # W packed once, in depth blocks of kc taps
        pc = q * kc
        kb = min(kc, K - pc) + (b is not None and pc + kc >= K)  # and the bias
        pack_a(A, 0, pc, F, kb, Ap[q])
    ones = np.ones((1, NR), dtype=np.float32)
    L = Ho * Wo
    slack = (-F % MR) * L  # rows for the last image's whole tiles
    flat = np.empty(N * F * L + slack, dtype=np.float32)
    out = flat[: N * F * L].reshape(N, F, Ho, Wo)
    args = (xp.reshape(-1, 1), offs, Ap, ones, b is not None, flat, N, F, Ho, Wo, Wp)
    chunks = _chunks(N)
    if chunks > 1:
        _forward_direct_threads(*args, image, chunks)
    else:
        _forward_direct(*args, image, 0, N)
    return out


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1) -> np.ndarray:
    """conv2d (cross-correlation, NCHW, like :func:`cnnbook.functional.conv2d`) as an
    implicit-im2col GEMM on the tiny BLAS.

    ``x: (N, C, H, W)``, ``w: (F, C, kH, kW)``, ``b: (F,)`` or None, all float32 →
    ``(N, F, Ho, Wo)`` float32. Stride 1 only (ValueError otherwise); any padding and
    dilation. Other dtypes raise TypeError (the tiny BLAS is single precision).
    """
    x, w, b = check_conv_args(x, w, b, "implicit.conv2d")
    _float32("implicit.conv2d", x=x, w=w, b=b)
    _, stride, padding, dilation, out_hw = conv_geometry(
        x.shape, w.shape[2:], stride, padding, dilation, "implicit.conv2d"
    )
    _stride_one(stride, "implicit.conv2d")
    return _forward(x, w, b, padding, dilation, out_hw)


def conv2d_backward(dout, x, w, stride=1, padding=0, dilation=1, need_dx=True):
    """Gradients of :func:`conv2d`: ``(dx, dw, db)`` shaped like x, w and (F,).

    ``dw`` is the GEMM ``Σ_n dout[n] @ cols[n]ᵀ`` with ``cols[n]ᵀ`` read in place
    from a channels-last copy of the padded input (see the module's docstring);
    ``dx`` is the "full" correlation of ``dout`` with the flipped, channel-swapped
    kernel, through the implicit forward (``need_dx=False``: None); ``db`` the sum of
    ``dout`` over images and positions. float32, stride 1, as :func:`conv2d`.
    """
    fn = "implicit.conv2d_backward"
    dout, x, w = conv_backward_args(dout, x, w, stride, padding, dilation, fn)
    _float32(fn, dout=dout, x=x, w=w)
    _, stride, padding, dilation, out_hw = conv_geometry(
        x.shape, w.shape[2:], stride, padding, dilation, fn
    )
    _stride_one(stride, fn)
    if numba is None:
        raise ImportError(_NUMBA_MISSING)
    N, C, H, W = x.shape
    F, _, kh, kw = w.shape
    (ph, pw), (dh, dw_), (Ho, Wo) = padding, dilation, out_hw
    dout = np.ascontiguousarray(dout)
    kc = _depth_block(Ho * Wo)
    chunks = _chunks(N)
    d = dout.reshape(N, F, Ho * Wo)
    oh, ow = np.meshgrid(np.arange(Ho), np.arange(Wo), indexing="ij")
    if C % NR == 0:  # dw (F × taps (i, j, c)): NR channels of a pixel, a panel row
        Hp, Wp = H + 2 * ph, W + 2 * pw
        xt = np.empty((N, Hp, Wp, C), dtype=np.float32)
        _channels_last(np.ascontiguousarray(x), xt, ph, pw)
        i, j = np.meshgrid(np.arange(kh), np.arange(kw), indexing="ij")
        tap_base = ((i * dh * Wp + j * dw_) * C).ravel()
        tap_base = (tap_base[:, None] + np.arange(0, C, NR)).ravel().astype(np.int64)
        pos_off = ((oh * Wp + ow) * C).ravel().astype(np.int64)
        whole = -(-F // MR) * MR  # rows past F: zeros times x, dropped at the end
        parts = np.zeros((chunks, whole, kh * kw * C), dtype=np.float32)
        args = (xt.reshape(-1, 1), pos_off, tap_base, d, parts, kc, Hp * Wp * C)
        if chunks > 1:
            _dw_channels_last_threads(*args)
        else:
            _dw_channels_last(*args[:4], parts[0], *args[5:], 0, N)
        dwt = (parts[0] if chunks == 1 else parts.sum(axis=0))[:F]
        grad_w = np.ascontiguousarray(dwt.reshape(F, kh, kw, C).transpose(0, 3, 1, 2))
    else:  # dwᵀ (taps (c, i, j) × F) = Σ_n cols[n] @ dout[n]ᵀ, cols[n] in place
        xp, image, offs, Wp = _padded(x, w.shape, padding, dilation)
        pos_off = (oh * Wp + ow).ravel().astype(np.int64)
        K = offs.shape[0]
        taps = np.concatenate([offs, np.repeat(offs[:1], -K % MR)])  # whole panels
        parts = np.zeros((chunks, K, F), dtype=np.float32)
        if chunks > 1:
            _dw_threads(xp, pos_off, taps, d, parts, kc, image)
        else:
            _dw_images(xp, pos_off, taps, d, parts[0], kc, image, 0, N)
        dwt = parts[0] if chunks == 1 else parts.sum(axis=0)
        grad_w = np.ascontiguousarray(dwt.T).reshape(w.shape)
    # a matrix-vector product sums each (n, f) row: 5x faster than sum(axis=(0, 2, 3))
    db = (d.reshape(N * F, -1) @ np.ones(Ho * Wo, np.float32)).reshape(N, F).sum(0)
    dx = None
    if need_dx:  # the full correlation: flipped kernel, channels swapped
        w_flip = np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
        full = (dh * (kh - 1) - ph, dw_ * (kw - 1) - pw)
        if min(full) < 0:  # padding wider than the kernel: crop dout instead
            ch, cw = max(0, -full[0]), max(0, -full[1])
            dout = np.ascontiguousarray(dout[:, :, ch : Ho - ch, cw : Wo - cw])
            full = (max(0, full[0]), max(0, full[1]))
        dx = _forward(dout, w_flip, None, full, dilation, (H, W))
    return dx, grad_w, db
