"""Convolution through the tiny BLAS's micro-kernel without materializing im2col
(issue 18).

The forward pass is one matrix product per image, ``out[n] (F, Ho·Wo) = W (F, C·kH·kW)
@ cols[n] (C·kH·kW, Ho·Wo)`` (Chapter 3's im2col), computed with Chapter 10's packed
GEMM (:mod:`cnnbook.blas`): ``W`` is packed once into the A~ micro-panels of
:func:`cnnbook.blas.pack_a` (in depth blocks of the tiny BLAS's kc), and ``cols`` never
exists (*implicit im2col*). A B~ micro-panel of ``cols`` for NR positions of one output
row has, as its row for tap ``(c, i, j)``, NR **contiguous** floats of the zero-padded
image, ``xp[c, oh + i·d, ow0 + j·d …]``; the micro-kernel only needs rows of NR
contiguous floats, so it reads them in place (``micro``, built from the tiny BLAS's
``zero_tile``/``fma_row``/``update_row`` intrinsics) instead of copying them into a
packed panel first. (Copying them in :func:`cnnbook.blas.pack_b`'s layout, one block
at a time, measured 3 ms of a 10 ms forward on shape B: more than the whole gap to
PyTorch.) The bias is one more column of ``W`` times a row of ones. The result of
image ``n`` is ``out[n]`` seen as an ``F × Ho·Wo`` matrix: the layout (N, F, Ho, Wo),
no transpose.

Each image is zero-padded into a buffer of its own thread just before its products
(the border is zeroed once, only the interior is copied per image, and the next
image is prefetched a share per output row): the padded copy is then read from L2
while it is hot, and no padded copy of the whole batch (2.4 MB for x on shape B, 4.7
MB for dout) goes through memory. Each micro-panel of A runs over all the B blocks of
an output row before the next, so it is reused from L1.

The backward pass:

* ``dw = Σ_n dout[n] (F, Ho·Wo) @ cols[n]ᵀ (Ho·Wo, C·kH·kW)``, the positions as the
  inner dimension. In a channels-last copy of the padded image (``xt[h, w, c]``, made
  per image, 64-byte aligned), the taps ``(i, j, c)`` of one position and kernel
  offset are ``C`` contiguous floats: with C a multiple of NR, the rows of
  ``cols[n]ᵀ``'s micro-panels are again read in place (one cache line each),
  ``dout[n]`` is packed by :func:`cnnbook.blas.pack_a`, and the kernel comes out in
  the tap order ``(i, j, c)``, permuted back at the end. Other C: ``dwᵀ = Σ_n cols[n]
  @ dout[n]ᵀ`` with A's MR taps broadcast in place from the padded image and
  ``dout[n]ᵀ`` packed as B~ micro-panels in :func:`cnnbook.blas.pack_b`'s layout
  (``pack_dout``).
* ``dx`` (stride 1) is a convolution of ``dout`` with the kernel flipped in both
  spatial axes and its two channel axes swapped, with padding ``d(k - 1) - p`` (a
  "full" correlation; a wider padding crops ``dout`` instead), through the same
  forward.
* ``db = Σ dout``, a compiled reduction (``_bias_grad``).

**The register tile.** The tiny BLAS's tile for the host (6 × 16 with AVX2) is derived
for large matrices, where a short last micro-panel of A is a rounding error. Here the
rows M of each product are few and fixed: F = 32 output channels (forward, dw) or C =
16 input channels (dx) on shape B, and 6-row micro-panels compute 36 rows for 32 (18
for 16), an ninth of the FMAs wasted. So each product picks its own MR (``_tile_rows``):
the MR, from the host's down to the smallest whose accumulators still hide the FMA
latency, that computes the fewest padded rows ``⌈M / MR⌉ · MR`` (ties: the larger MR).
With NR = 16 on AVX2 that is 4 × 16 for M = 32 or 16. Its micro-kernel alone is a
little slower than 6 × 16 (94.5 against 99.7 GFLOP/s in L1 on the Zen 3 host,
``blas.micro_kernel_sweep``; 8 accumulators are just enough for a 4-cycle FMA on two
pipes), less than the ninth it saves: shape B's forward + backward measured 13.3 ms
with 4 × 16 against 13.8 with 6 × 16 (and 13.9 with 5 × 16), side by side, one
thread. The kernels are compiled per MR (``_kernels``): on shape B the first forward
of a process takes about 4 s, the first backward 2 s (their two-thread versions
compile on their first call).

float32 only (the tiny BLAS is single precision), stride 1; any padding and dilation.
Threads: with ``numba.get_num_threads() > 1`` the images are shared among the threads
(``prange``), each with its own buffers (and its own partial ``dw``).

The kernels inline the tiny BLAS's compiled intrinsics. numba's on-disk cache keys a
kernel on its own file only and would keep stale machine code after a change to
``cnnbook/blas.py``, so these kernels are compiled once per process, never cached.
"""

from __future__ import annotations

import functools
import types as _pytypes

import numpy as np

from . import blas
from ._validation import check_conv_args, check_dout, conv_geometry
from .blas import LANES, NR, _jit

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

# The fewest accumulators (MR · NR / LANES) that hide the FMA latency: a 4-cycle FMA
# on 2 pipes (Zen 3) needs 8 chains in flight. Fewer rows than that, and the
# micro-kernel waits on its own results.
_MIN_ACCUMULATORS = 8

_LINE = 16  # floats per cache line (64 bytes)


@functools.lru_cache(maxsize=None)
def _tile_rows(m: int) -> int:
    """MR for a product with ``m`` rows (see the module's docstring): the fewest
    padded rows ``⌈m / MR⌉ · MR`` over ``MR`` from the host's ``blas.MR`` down to
    ``_MIN_ACCUMULATORS / (NR / LANES)``, ties to the larger MR."""
    low = max(1, -(-_MIN_ACCUMULATORS // (NR // LANES)))
    candidates = range(blas.MR, min(low, blas.MR) - 1, -1)
    return min(candidates, key=lambda mr: -(-m // mr) * mr)


@functools.lru_cache(maxsize=None)
def _kernels(MR: int) -> _pytypes.SimpleNamespace:  # noqa: N803 (the tile's MR)
    """implicit's kernels compiled for the register tile ``MR × NR`` (one compilation
    per MR and process; numba freezes MR, NR and the intrinsics into the code)."""
    tile = blas.RegisterTile(MR, NR, LANES)
    zero_tile, fma_row, update_row, prefetch_row = blas._tile_intrinsics(MR, NR, LANES)[
        :4
    ]
    pack_a = blas.with_tile(tile).pack_a

    # --------------------------------------------------------------------------------
    # Micro-panels that need no copy: NR contiguous floats of an image, a panel's row
    # --------------------------------------------------------------------------------

    @_jit(cache=False, inline="always")
    def micro(kb, Ap, q, s, rows, offs, pc, base, ones, bias, C, i0, j0, beta):
        """:func:`cnnbook.blas.micro_kernel` for A's micro-panel ``Ap[q, s]`` with
        row ``p`` of the B micro-panel read in place: the NR contiguous floats
        ``rows[offs[pc + p] + base …]`` of an image (``rows``: the flat image as an (n,
        1) array), so B is never packed. ``bias``: one more step with A's row ``kb``
        (the bias) times a row of ``ones``.

        Inlined into its callers (numba's ``inline="always"``: LLVM chose to call it,
        and a call passing a dozen arrays by value took a hundred instructions per
        tile), and given indices instead of views of ``Ap`` and ``offs`` (a view costs
        a reference count, two atomic operations, per call)."""
        for i in range(MR):
            prefetch_row(C, i0 + i, j0)
        acc = zero_tile()
        for p in range(kb):
            r = offs[pc + p] + base
            for i in range(MR):
                fma_row(acc, i, Ap[q, s, p, i], rows, r)  # acc[i] += a · rows[r …]
        if bias:
            for i in range(MR):
                fma_row(acc, i, Ap[q, s, kb, i], ones, 0)
        for i in range(MR):
            update_row(C, i0 + i, j0, np.float32(1), acc, i, beta)

    @_jit(cache=False)
    def edge(kb, Ap, q, s, rows, offs, pc, base, ones, bias, C, i0, j0, mr, nr, beta,
             tile):  # fmt: skip
        """``micro`` for a tile only ``mr × nr`` of which is inside C: the whole tile
        goes to ``tile`` (MR × NR), its corner to C (as
        :func:`cnnbook.blas.edge_tile`)."""
        zero, origin = np.float32(0), np.intp(0)
        micro(
            kb, Ap, q, s, rows, offs, pc, base, ones, bias, tile, origin, origin, zero
        )
        for i in range(mr):
            for j in range(nr):
                old = beta * C[i0 + i, j0 + j] if beta != 0 else np.float32(0)
                C[i0 + i, j0 + j] = tile[i, j] + old

    # --------------------------------------------------------------------------------
    # The forward pass (and dx)
    # --------------------------------------------------------------------------------

    @_jit(cache=False)
    def forward(x, Ap, kc, ones, bias, out, offs, ph, pw, first, last):
        """Images ``first … last − 1`` of the forward pass: ``out[n][:, oh·Wo + ow0 …]
        = A @ cols`` for NR positions ``ow0 …`` of output row ``oh`` at a time, whose
        rows are the NR floats at ``xp[offs[r] + oh·Wp + ow0 …]`` of the padded image
        (``offs[r]``: tap r's offset; a panel narrower than NR reads, and drops, a few
        floats past its row). ``Ap[q]``: the packed depth block q of A (``kc`` taps;
        :func:`cnnbook.blas.pack_a`)."""
        _, Cin, H, W = x.shape
        F, Ho, Wo = out.shape[1], out.shape[2], out.shape[3]
        Hp, Wp = H + 2 * ph, W + 2 * pw
        L, K, blocks, panels = Ho * Wo, offs.shape[0], Ap.shape[0], Ap.shape[1]
        xp = np.zeros((Cin * Hp * Wp + NR, 1), dtype=np.float32)  # border: zeros
        flat = xp.reshape(xp.shape[0])
        tile = np.empty((MR, NR), dtype=np.float32)
        zero, one = np.float32(0), np.float32(1)
        image = Cin * H * W
        pixels = x.reshape(x.shape[0] * image, 1)
        ahead = -(-image // (Ho * _LINE)) * _LINE  # floats to prefetch per output row
        for n in range(first, last):
            for c in range(Cin):  # the image into the interior of the padded one
                for h in range(H):
                    row = x[n, c, h]
                    start = (c * Hp + h + ph) * Wp + pw
                    for w in range(W):
                        flat[_index(start + w)] = row[w]
            C = out[n].reshape(F, L)
            for oh in range(Ho):
                if n + 1 < last:  # the next image, a share per row: in cache by then
                    for z in range(oh * ahead, min((oh + 1) * ahead, image), _LINE):
                        prefetch_row(pixels, (n + 1) * image + z, 0)
                for q in range(blocks):  # depth blocks: B's rows stay in L1
                    pc = q * kc
                    kb = min(kc, K - pc)
                    beta = zero if q == 0 else one
                    last_q = bias and q == blocks - 1
                    for s in range(panels):  # micro-panels of A
                        i0 = s * MR
                        mr = min(MR, F - i0)
                        for ow0 in range(0, Wo, NR):  # A's micro-panel stays in L1
                            nr = min(NR, Wo - ow0)
                            base = oh * Wp + ow0
                            j0 = oh * Wo + ow0
                            if mr == MR and nr == NR:
                                micro(
                                    kb, Ap, q, s, xp, offs, pc, base, ones, last_q, C,
                                    i0, j0, beta,
                                )  # fmt: skip
                            else:
                                edge(
                                    kb, Ap, q, s, xp, offs, pc, base, ones, last_q, C,
                                    i0, j0, mr, nr, beta, tile,
                                )  # fmt: skip

    @_jit(parallel=True, cache=False)
    def forward_threads(x, Ap, kc, ones, bias, out, offs, ph, pw, chunks):
        """``forward`` with the images shared out in ``chunks`` (prange)."""
        N = x.shape[0]
        for t in prange(chunks):
            forward(
                x, Ap, kc, ones, bias, out, offs, ph, pw,
                t * N // chunks, (t + 1) * N // chunks,
            )  # fmt: skip

    # --------------------------------------------------------------------------------
    # ∂L/∂w, C a multiple of NR: B's rows are NR channels of one pixel, channels last
    # --------------------------------------------------------------------------------

    @_jit(cache=False)
    def dw_channels_last(x, dout, dwt, pos_off, tap_base, kc, ph, pw, xt, first, last):
        """Images ``first … last − 1``: ``dwt += dout[n] @ cols[n]ᵀ`` (``dwt``: F ×
        taps in the order (i, j, c), F rounded up to whole micro-panels of A) with the
        B micro-panels of ``cols[n]ᵀ`` read in place from ``xt``, the padded image
        channels last (flat, as an (n, 1) array, zeros in its border): row p (position
        ``pc + p``) of tap panel t is ``xt[pos_off[pc + p] + tap_base[t] …]``, NR
        channels of one kernel offset; A is ``dout[n]``, packed by
        :func:`cnnbook.blas.pack_a`."""
        _, Cin, H, W = x.shape
        F, L = dout.shape[1], dout.shape[2]
        Wp = W + 2 * pw
        panels = dwt.shape[0] // MR
        Ap = np.empty((1, panels, min(kc, L), MR), dtype=np.float32)
        ones = np.ones((1, NR), dtype=np.float32)
        one = np.float32(1)
        flat = xt.reshape(xt.shape[0])
        for n in range(first, last):
            for h in range(H):  # the image into the interior, channels last
                for c in range(Cin):  # rows read in order (3x faster than pixels)
                    row = x[n, c, h]
                    start = _index(((h + ph) * Wp + pw) * Cin + c)
                    for w in range(W):
                        flat[start + _index(w * Cin)] = row[w]
            for pc in range(0, L, kc):
                kb = min(kc, L - pc)
                pack_a(dout[n], 0, pc, F, kb, Ap[0])
                for t in range(tap_base.shape[0]):
                    for s in range(panels):
                        micro(
                            kb, Ap, 0, s, xt, pos_off, pc, tap_base[t], ones, False,
                            dwt, s * MR, t * NR, one,
                        )  # fmt: skip

    @_jit(parallel=True, cache=False)
    def dw_channels_last_threads(x, dout, parts, pos_off, tap_base, kc, ph, pw, xts):
        """``dw_channels_last`` with the images shared out, one partial ``dw`` and
        one channels-last buffer per chunk."""
        N, chunks = dout.shape[0], parts.shape[0]
        for t in prange(chunks):
            dw_channels_last(
                x, dout, parts[t], pos_off, tap_base, kc, ph, pw, xts[t],
                t * N // chunks, (t + 1) * N // chunks,
            )  # fmt: skip

    # --------------------------------------------------------------------------------
    # ∂L/∂w, other C: the positions as the inner dimension, A read in place
    # --------------------------------------------------------------------------------

    @_jit(cache=False)
    def micro_cols(kb, rows, pos_off, pc, taps, i0, Bp, t, depth, C, ci, cj, beta):
        """The micro-kernel of ``∂L/∂wᵀ = cols @ doutᵀ`` (tile ``(ci, cj)`` of C) with A
        read in place: step p (position ``pc + p``) broadcasts the MR taps
        ``rows[pos_off[pc + p] + taps[i0 + i]]`` of the padded image (``rows``: flat)
        against row ``t·depth + p`` of ``Bp``: micro-panel t of ``doutᵀ``, packed
        (``pack_dout``) in ``depth`` rows."""
        for i in range(MR):
            prefetch_row(C, ci + i, cj)
        acc = zero_tile()
        for p in range(kb):
            q = pos_off[_index(pc + p)]
            for i in range(MR):
                fma_row(acc, i, rows[_index(q + taps[i0 + i])], Bp, t * depth + p)
        for i in range(MR):
            update_row(C, ci + i, cj, np.float32(1), acc, i, beta)

    @_jit(cache=False)
    def pack_dout(d, pc, kb, Bp):
        """``Bp[t, p, j] = d[t·NR + j, pc + p]``: the B~ micro-panels of ``doutᵀ``
        (the layout of :func:`cnnbook.blas.pack_b`) from ``d = dout[n]`` (F, Ho·Wo);
        zeros past the last filter."""
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
    def dw_images(x, pos_off, taps, dout, dwt, kc, ph, pw, first, last):
        """Images ``first … last − 1``: ``dwt += cols[n] @ dout[n]ᵀ`` (``dwt``: taps ×
        F; ``taps``: the tap offsets in the padded image, padded to a multiple of MR).
        Blocks of ``kc`` positions: ``dout[n]ᵀ`` packed (``pack_dout``), then every MR
        × NR tile of ``dwt`` updated from it."""
        _, Cin, H, W = x.shape
        F, L = dout.shape[1], dout.shape[2]
        Hp, Wp = H + 2 * ph, W + 2 * pw
        K = dwt.shape[0]
        xp = np.zeros(Cin * Hp * Wp + NR, dtype=np.float32)  # border: zeros
        tiles, depth = (F + NR - 1) // NR, min(kc, L)
        Bp = np.empty((tiles, depth, NR), dtype=np.float32)
        rows_b = Bp.reshape(tiles * depth, NR)  # the micro-panels one after another
        tile = np.empty((MR, NR), dtype=np.float32)
        one, zero, origin = np.float32(1), np.float32(0), np.intp(0)
        for n in range(first, last):
            for c in range(Cin):
                for h in range(H):
                    row = x[n, c, h]
                    start = (c * Hp + h + ph) * Wp + pw
                    for w in range(W):
                        xp[_index(start + w)] = row[w]
            for pc in range(0, L, kc):
                kb = min(kc, L - pc)
                pack_dout(dout[n], pc, kb, Bp)
                for t in range(tiles):
                    j0 = t * NR
                    nr = min(NR, F - j0)
                    for s in range((K + MR - 1) // MR):
                        i0 = s * MR
                        mr = min(MR, K - i0)
                        if mr == MR and nr == NR:
                            micro_cols(
                                kb, xp, pos_off, pc, taps, i0, rows_b, t, depth, dwt,
                                i0, j0, one,
                            )  # fmt: skip
                        else:  # an edge tile: whole into ``tile``, its corner into dwt
                            micro_cols(
                                kb, xp, pos_off, pc, taps, i0, rows_b, t, depth, tile,
                                origin, origin, zero,
                            )  # fmt: skip
                            for i in range(mr):
                                for j in range(nr):
                                    dwt[i0 + i, j0 + j] += tile[i, j]

    @_jit(parallel=True, cache=False)
    def dw_images_threads(x, pos_off, taps, dout, parts, kc, ph, pw):
        """``dw_images`` with the images shared out, one partial ``dw`` per chunk."""
        N, chunks = dout.shape[0], parts.shape[0]
        for t in prange(chunks):
            dw_images(
                x, pos_off, taps, dout, parts[t], kc, ph, pw,
                t * N // chunks, (t + 1) * N // chunks,
            )  # fmt: skip

    return _pytypes.SimpleNamespace(
        tile=tile,
        micro=micro,
        pack_a=pack_a,
        forward=forward,
        forward_threads=forward_threads,
        dw_channels_last=dw_channels_last,
        dw_channels_last_threads=dw_channels_last_threads,
        dw_images=dw_images,
        dw_images_threads=dw_images_threads,
    )


# --------------------------------------------------------------------------------------
# The public functions: validation once, then kernels that check nothing
# --------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _depth_block(k: int, mr: int) -> int:
    """The tiny BLAS's depth block kc (:func:`cnnbook.blas.block_sizes`) for the tile
    ``mr × NR``, balanced to a reduction of length ``k``
    (:func:`cnnbook.blas.balanced_block`)."""
    tile = blas.RegisterTile(mr, NR, LANES)
    return int(blas.balanced_block(k, blas._default_blocks("packed", tile).kc))


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


# The index arrays of a geometry, computed once per process (building them with
# meshgrid took 0.1 ms a call, 2% of shape B's forward); read-only, as they are shared.


def _frozen(a) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=np.int64)
    a.setflags(write=False)
    return a


@functools.lru_cache(maxsize=64)
def _tap_offsets(C, Hp, Wp, kh, kw, dilation, mr=1):
    """The offset of each tap ``(c, i, j)`` from a position's pixel in the padded
    image (C planes of Hp × Wp), repeated at the end to a multiple of ``mr``."""
    dh, dw = dilation
    c, i, j = np.meshgrid(np.arange(C), np.arange(kh), np.arange(kw), indexing="ij")
    offs = (c * Hp * Wp + i * dh * Wp + j * dw).ravel()
    return _frozen(np.concatenate([offs, np.repeat(offs[:1], -len(offs) % mr)]))


@functools.lru_cache(maxsize=64)
def _position_offsets(Ho, Wo, Wp, channels):
    """``(oh·Wp + ow)·channels``: where output position ``(oh, ow)``'s pixel is in a
    padded image of rows ``Wp`` pixels long (``channels`` floats per pixel)."""
    oh, ow = np.meshgrid(np.arange(Ho), np.arange(Wo), indexing="ij")
    return _frozen(((oh * Wp + ow) * channels).ravel())


@functools.lru_cache(maxsize=64)
def _tap_bases(C, Wp, kh, kw, dilation):
    """In the channels-last padded image: the offset of the NR channels ``c0 …`` of
    kernel offset ``(i, j)`` from a position's pixel, for each (i, j, c0)."""
    dh, dw = dilation
    i, j = np.meshgrid(np.arange(kh), np.arange(kw), indexing="ij")
    base = ((i * dh * Wp + j * dw) * C).ravel()
    return _frozen((base[:, None] + np.arange(0, C, NR)).ravel())


def _aligned_zeros(shape, align: int = 64) -> np.ndarray:
    """float32 zeros whose first element sits on an ``align``-byte boundary."""
    size = int(np.prod(shape))
    raw = np.zeros(size + align // 4, dtype=np.float32)
    skip = (-raw.ctypes.data % align) // 4
    return raw[skip : skip + size].reshape(shape)


def _forward(x, w, b, padding, dilation, out_hw):
    """The implicit GEMM of checked float32 arrays (stride 1): (N, F, Ho, Wo)."""
    if numba is None:
        raise ImportError(_NUMBA_MISSING)
    N, C, H, W = x.shape
    F, _, kh, kw = w.shape
    (ph, pw), (Ho, Wo) = padding, out_hw
    offs = _tap_offsets(C, H + 2 * ph, W + 2 * pw, kh, kw, dilation)
    MR = _tile_rows(F)
    k = _kernels(MR)
    A = w.reshape(F, -1)
    if b is not None:  # the bias: one more column of W, times a row of ones
        A = np.concatenate([A, b.reshape(F, 1)], axis=1)
    A = np.ascontiguousarray(A, dtype=np.float32)
    K = offs.shape[0]  # the taps; A has one more column with a bias
    kc = _depth_block(K, MR)
    Ap = np.zeros((-(-K // kc), -(-F // MR), kc + 1, MR), dtype=np.float32)
    for q in range(Ap.shape[0]):  # W packed once, in depth blocks of kc taps
        pc = q * kc
        kb = min(kc, K - pc) + (b is not None and pc + kc >= K)  # and the bias
        k.pack_a(A, 0, pc, F, kb, Ap[q])
    ones = np.ones((1, NR), dtype=np.float32)
    out = np.empty((N, F, Ho, Wo), dtype=np.float32)
    args = (np.ascontiguousarray(x), Ap, kc, ones, b is not None, out, offs, ph, pw)
    chunks = _chunks(N)
    if chunks > 1:
        k.forward_threads(*args, chunks)
    else:
        k.forward(*args, 0, N)
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


def _weight_grad(d, x, w_shape, padding, dilation, out_hw):
    """``dw`` (F, C, kH, kW) from ``d = dout`` as (N, F, Ho·Wo) and the input x."""
    N, C, H, W = x.shape
    F, _, kh, kw = w_shape
    (ph, pw), (Ho, Wo) = padding, out_hw
    Hp, Wp = H + 2 * ph, W + 2 * pw
    chunks = _chunks(N)
    x = np.ascontiguousarray(x)
    if C % NR == 0:  # dw (F × taps (i, j, c)): NR channels of a pixel, a panel row
        MR = _tile_rows(F)
        k = _kernels(MR)
        kc = _depth_block(Ho * Wo, MR)
        tap_base = _tap_bases(C, Wp, kh, kw, dilation)
        pos_off = _position_offsets(Ho, Wo, Wp, C)
        whole = -(-F // MR) * MR  # rows past F: zeros times x, dropped at the end
        parts = np.zeros((chunks, whole, kh * kw * C), dtype=np.float32)
        xts = _aligned_zeros((chunks, Hp * Wp * C + NR, 1))  # border: zeros
        args = (x, d, parts, pos_off, tap_base, kc, ph, pw)
        if chunks > 1:
            k.dw_channels_last_threads(*args, xts)
        else:
            k.dw_channels_last(*args[:2], parts[0], *args[3:], xts[0], 0, len(x))
        dwt = (parts[0] if chunks == 1 else parts.sum(axis=0))[:F]
        return np.ascontiguousarray(dwt.reshape(F, kh, kw, C).transpose(0, 3, 1, 2))
    # dwᵀ (taps (c, i, j) × F) = Σ_n cols[n] @ dout[n]ᵀ, cols[n] in place
    K = C * kh * kw
    MR = _tile_rows(K)
    k = _kernels(MR)
    kc = _depth_block(Ho * Wo, MR)
    pos_off = _position_offsets(Ho, Wo, Wp, 1)
    taps = _tap_offsets(C, Hp, Wp, kh, kw, dilation, MR)  # whole panels
    parts = np.zeros((chunks, K, F), dtype=np.float32)
    if chunks > 1:
        k.dw_images_threads(x, pos_off, taps, d, parts, kc, ph, pw)
    else:
        k.dw_images(x, pos_off, taps, d, parts[0], kc, ph, pw, 0, N)
    dwt = parts[0] if chunks == 1 else parts.sum(axis=0)
    return np.ascontiguousarray(dwt.T).reshape(w_shape)


@_jit(cache=False, fastmath=True)
def _bias_grad(d):
    """``db[f] = Σ_n Σ_p d[n, f, p]``: each row summed in float32 in vector lanes (the
    one kernel here compiled with reassociation allowed, so that LLVM vectorizes the
    sum), the rows' sums added in float64. Not NumPy's ``d.sum(axis=(0, 2))`` (5x
    slower) nor a BLAS matrix-vector product: after one, OpenBLAS's threads keep
    spinning and, with two threads, took the cores from the kernels that follow (the
    two-thread backward of shape B lost 3 ms)."""
    N, F, L = d.shape
    total = np.zeros(F, dtype=np.float64)
    for n in range(N):
        for f in range(F):
            row = d[n, f]
            acc = np.float32(0)
            for p in range(L):
                acc += row[p]
            total[f] += acc
    return total.astype(np.float32)


def conv2d_backward(dout, x, w, stride=1, padding=0, dilation=1, need_dx=True):
    """Gradients of :func:`conv2d`: ``(dx, dw, db)`` shaped like x, w and (F,).

    ``dw`` is the GEMM ``Σ_n dout[n] @ cols[n]ᵀ`` with ``cols[n]ᵀ`` read in place
    from a channels-last copy of the padded input (see the module's docstring);
    ``dx`` is the "full" correlation of ``dout`` with the flipped, channel-swapped
    kernel, through the implicit forward (``need_dx=False``: None); ``db`` the sum of
    ``dout`` over images and positions. float32, stride 1, as :func:`conv2d`.
    """
    fn = "implicit.conv2d_backward"
    x, w, _ = check_conv_args(x, w, None, fn)  # conv_backward_args, geometry kept
    _, stride, padding, dilation, out_hw = conv_geometry(
        x.shape, w.shape[2:], stride, padding, dilation, fn
    )
    dout = check_dout(dout, (len(x), len(w), *out_hw), fn)
    _float32(fn, dout=dout, x=x, w=w)
    _stride_one(stride, fn)
    if numba is None:
        raise ImportError(_NUMBA_MISSING)
    N, C, H, W = x.shape
    F, _, kh, kw = w.shape
    (ph, pw), (dh, dw_), (Ho, Wo) = padding, dilation, out_hw
    dout = np.ascontiguousarray(dout)
    d = dout.reshape(N, F, Ho * Wo)
    grad_w = _weight_grad(d, x, w.shape, padding, dilation, out_hw)
    db = _bias_grad(d)
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
