"""A tiny BLAS: single-precision GEMM ``C = αAB + βC`` in numba, climbed one step at a
time (Chapter 10).

All matrices are float32 and row-major (C order): ``A: (m, k)``, ``B: (k, n)``, ``C: (m,
n)``. The steps, each a compiled kernel ``gemm_<name>(A, B, C, alpha, beta[, mc, kc,
nc])`` that updates ``C`` in place and checks nothing (validation happens once, in
:func:`sgemm`):

  ``naive``     the definition: ``C[i, j] = Σ_p A[i, p] B[p, j]``, loops i-j-k
                (the innermost loop walks down a column of ``B``: one cache line per
                element);
  ``ikj``       the same loops in the order i-k-j: the innermost loop runs along rows of
                ``B`` and ``C`` (contiguous, so the compiler vectorizes it with SIMD
                instructions);
  ``blocked``   i-k-j inside cache blocks: a ``kc × nc`` block of ``B`` stays in L2
                while every row of ``A`` uses it, and a row piece of ``C`` stays in L1;
  ``packed``    the GotoBLAS/BLIS structure: panels of ``A`` and ``B`` copied ("packed")
                into contiguous buffers in the order the micro-kernel reads them, and a
                micro-kernel that keeps an ``MR × NR`` tile of ``C`` in registers for
                the whole ``kc`` loop;
  ``parallel``  ``packed`` with the row blocks of ``C`` shared among threads
                (``prange``),
                ``numba.get_num_threads()`` of them.

The public entry is :func:`sgemm` (validation, copies of transposed inputs, the variant
choice);
:func:`matmul` has ``numpy.matmul``'s semantics on top of it (batched and broadcast
operands), so it can be handed to the layers as their GEMM backend. Block sizes come
from this CPU's cache sizes (:func:`cache_sizes`, :func:`block_sizes`).

Compiler flags: every kernel allows only floating-point *contraction* (a multiply and an
add fused into one FMA instruction); no reassociation, so each sum is added in the loop
order written. numba is optional at import time: without it every kernel raises an
ImportError that says so.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

try:  # numba is optional at import time; only running a kernel needs it
    import llvmlite.ir as llvm_ir
    import numba
    from numba import prange
    from numba.core import cgutils, types
    from numba.extending import intrinsic
except ImportError:  # pragma: no cover - exercised only where numba is absent
    numba = None
    prange = range

__all__ = [
    "HAVE_NUMBA",
    "MR",
    "NR",
    "VARIANTS",
    "KERNELS",
    "CacheSizes",
    "BlockSizes",
    "cache_sizes",
    "block_sizes",
    "balanced_mc",
    "sgemm",
    "matmul",
    "gemm_flops",
    "gemm_naive",
    "gemm_ikj",
    "gemm_blocked",
    "gemm_packed",
    "gemm_parallel",
    "pack_a",
    "pack_b",
    "micro_kernel",
    "scale",
]

HAVE_NUMBA = numba is not None
_NUMBA_MISSING = (
    "cnnbook.blas: the tiny BLAS is compiled with numba, which is not installed. "
    "Install it with `pip install numba` (it is in requirements.txt)."
)

# The register tile of the micro-kernel: MR rows × NR columns of C held in registers.
# Sized for AVX-512, whose cores have 32 vector registers of 16 floats: a 6 × 64 tile
# takes 24 of them (6 rows × 4 vectors), 4 more hold the current row of the B
# micro-panel and 1 the broadcast element of A. On AVX2 (16 registers of 8 floats) the
# same tile needs 48 registers for its accumulators alone and spills to memory; the
# classic AVX2 choice is 6 × 16. Compile-time constants, so the compiler can unroll
# the tile loops completely.
MR = 6
NR = 64

VARIANTS = ("naive", "ikj", "blocked", "packed", "parallel")


def _jit(fn=None, **options):
    """``numba.njit(cache=True, fastmath={"contract"})``, or a stub raising ImportError
    without numba."""
    if fn is None:
        return functools.partial(_jit, **options)
    if numba is None:

        @functools.wraps(fn)
        def missing(*args, **kwargs):
            raise ImportError(_NUMBA_MISSING)

        missing.py_func = fn
        return missing
    return numba.njit(cache=True, fastmath={"contract"}, **options)(fn)


# --------------------------------------------------------------------------------------
# Cache sizes and block sizes
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CacheSizes:
    """Per-core data cache sizes in bytes, and where they were read from."""

    l1d: int
    l2: int
    l3: int
    line: int
    source: str  # "sysfs" or "fallback"


# Typical of x86 server cores of the last decade; used only when the system does not
# say.
_FALLBACK_CACHES = CacheSizes(
    l1d=32 * 1024, l2=512 * 1024, l3=8 * 1024 * 1024, line=64, source="fallback"
)


def _parse_size(text: str) -> int:
    """'48K' → 49152; '1024K', '32M', '512' (bytes) as Linux's sysfs writes them."""
    text = text.strip().upper()
    scale = {"K": 1024, "M": 1024**2, "G": 1024**3}.get(text[-1:], 1)
    return int(text[:-1] if scale > 1 else text) * scale


def cache_sizes(
    root: str | os.PathLike = "/sys/devices/system/cpu/cpu0/cache",
) -> CacheSizes:
    """This CPU's L1 data, L2 and L3 cache sizes, read from Linux's sysfs.

    Each ``index*/`` directory under ``root`` describes one cache (``level``, ``type``,
    ``size``, ``coherency_line_size``). Anything missing or unreadable falls back to
    ``_FALLBACK_CACHES`` (32 KiB L1d, 512 KiB L2, 8 MiB L3, 64-byte lines), and
    ``source`` says so.
    """
    found = {}
    line = None
    try:
        for index in sorted(Path(root).glob("index*")):
            level = int((index / "level").read_text())
            kind = (index / "type").read_text().strip()
            if kind == "Instruction":
                continue
            found[level] = _parse_size((index / "size").read_text())
            line_file = index / "coherency_line_size"
            if line is None and line_file.exists():
                line = int(line_file.read_text())
    except (OSError, ValueError):
        found = {}
    if not {1, 2}.issubset(found):
        return _FALLBACK_CACHES
    return CacheSizes(
        l1d=found[1],
        l2=found[2],
        l3=found.get(3, _FALLBACK_CACHES.l3),
        line=line or 64,
        source="sysfs",
    )


@dataclass(frozen=True)
class BlockSizes:
    """Cache block sizes: ``mc`` rows of A, ``kc`` of the inner dimension, ``nc``
    columns of B."""

    mc: int
    kc: int
    nc: int


def _round_down(value: int, multiple: int, minimum: int) -> int:
    return max(minimum, value // multiple * multiple)


def block_sizes(
    variant: str = "packed", caches: CacheSizes | None = None
) -> BlockSizes:
    """Block sizes for ``variant`` ("blocked" or "packed"/"parallel") from the cache
    sizes.

    ``packed`` (float32, 4 bytes): the micro-kernel streams a ``kc × NR`` micro-panel of
    B and an ``MR × kc`` micro-panel of A; a long ``kc`` spreads the cost of loading and
    storing the C tile over more FMAs. The B micro-panel is reused by every micro-panel
    of A in the block, so it takes 1/8 of L2: ``kc = L2 / (8 · NR · 4)``. The ``mc ×
    kc`` block of A is reused for every micro-panel of B, so it stays in L2 next to it:
    a quarter of L2, ``mc = L2 / (4 · kc · 4)``. The ``kc × nc`` panel of B lives in L3:
    a quarter of it, ``nc = L3 / (4 · kc · 4)``. (The textbook rule, B micro-panel in
    half of L1, gives kc = 96 with a 48 KiB L1; Chapter 10 measures why a longer kc wins
    on a core whose L2 is fast.)

    ``blocked`` (no packing): a row piece of C, ``nc`` floats, stays in L1 (an eighth of
    it) while ``kc`` rows of B stream past; the ``kc × nc`` block of B stays in half of
    L2; ``mc`` rows of A.
    """
    caches = caches or cache_sizes()
    if variant in ("packed", "parallel"):
        kc = _round_down(caches.l2 // (8 * NR * 4), 16, 32)
        mc = _round_down(caches.l2 // (4 * kc * 4), MR, MR)
        nc = _round_down(min(caches.l3 // (4 * kc * 4), 4096), NR, NR)
        return BlockSizes(mc, kc, nc)
    if variant == "blocked":
        nc = _round_down(caches.l1d // (8 * 4), 16, 16)
        kc = _round_down(caches.l2 // (2 * nc * 4), 16, 16)
        return BlockSizes(64, kc, nc)
    raise ValueError(
        f"block sizes exist for 'blocked', 'packed' and 'parallel', not {variant!r}"
    )


@functools.lru_cache(maxsize=None)
def _default_blocks(variant: str) -> BlockSizes:
    return block_sizes(variant)  # read the caches once per process, not once per call


def gemm_flops(m: int, n: int, k: int) -> int:
    """Floating-point operations of ``C = AB`` with A (m, k), B (k, n): one multiply and
    one add per term, ``2mnk`` (the convention behind every GFLOP/s figure)."""
    return 2 * m * n * k


# --------------------------------------------------------------------------------------
# Steps 1-3: loops over the original arrays
# --------------------------------------------------------------------------------------


@_jit
def scale(C, beta):
    """C ← βC, with β = 0 meaning "overwrite" (BLAS: C's old contents, even NaN, are
    ignored)."""
    m, n = C.shape
    if beta == 1:
        return
    for i in range(m):
        for j in range(n):
            C[i, j] = beta * C[i, j] if beta != 0 else 0


@_jit
def gemm_naive(A, B, C, alpha, beta):
    """Step 1, the definition, loops i-j-k: a dot product of row i of A and column j of
    B."""
    m, k = A.shape
    n = B.shape[1]
    scale(C, beta)
    for i in range(m):
        for j in range(n):
            s = np.float32(0)
            for p in range(k):
                s += A[i, p] * B[p, j]  # B[p, j], B[p+1, j], ...: n floats apart
            C[i, j] += alpha * s


@_jit
def gemm_ikj(A, B, C, alpha, beta):
    """Step 2, loops i-k-j: row i of C += A[i, p] × row p of B, contiguous in the inner
    loop."""
    m, k = A.shape
    n = B.shape[1]
    scale(C, beta)
    for i in range(m):
        c = C[i]
        for p in range(k):
            a = alpha * A[i, p]
            b = B[p]
            for j in range(n):  # unit stride in b and c: SIMD
                c[j] += a * b[j]


@_jit
def gemm_blocked(A, B, C, alpha, beta, mc, kc, nc):
    """Step 3, i-k-j inside cache blocks: column blocks of ``nc``, depth blocks of
    ``kc``, row blocks of ``mc``. The ``kc × nc`` block of B is reused by all ``mc``
    rows of a row block while it sits in L2, and each ``nc``-long piece of a C row stays
    in L1 for ``kc`` updates."""
    m, k = A.shape
    n = B.shape[1]
    scale(C, beta)
    for jc in range(0, n, nc):
        nb = min(nc, n - jc)
        for pc in range(0, k, kc):
            kb = min(kc, k - pc)
            for ic in range(0, m, mc):
                for i in range(ic, min(ic + mc, m)):
                    c = C[i, jc : jc + nb]
                    for p in range(pc, pc + kb):
                        a = alpha * A[i, p]
                        b = B[p, jc : jc + nb]
                        for j in range(nb):
                            c[j] += a * b[j]


# --------------------------------------------------------------------------------------
# Step 4: packing and a register-blocked micro-kernel (GotoBLAS / BLIS)
# --------------------------------------------------------------------------------------

if numba is not None:

    @intrinsic
    def _register_tile(typingctx):
        """A pointer to MR·NR float32 on the *stack* of the calling function.

        numba allocates every array on the heap, through its runtime; the optimizer
        cannot prove that such memory is private, so it keeps a heap tile in memory and
        reloads it on every iteration. A stack slot that never escapes can be split into
        registers (LLVM's SROA/mem2reg).
        """

        def codegen(context, builder, signature, args):
            f32 = context.get_value_type(types.float32)
            tile = cgutils.alloca_once(builder, llvm_ir.ArrayType(f32, MR * NR))
            return builder.bitcast(tile, f32.as_pointer())

        return types.CPointer(types.float32)(), codegen
else:  # pragma: no cover

    def _register_tile():
        raise ImportError(_NUMBA_MISSING)


@_jit
def pack_a(A, ic, pc, mb, kb, Ap):
    """Copy the block ``A[ic:ic+mb, pc:pc+kb]`` into micro-panels ``Ap[s, p, i]`` of MR
    rows: the micro-kernel then reads MR consecutive floats per step p. Short panels are
    zero-padded."""
    for s in range((mb + MR - 1) // MR):
        for p in range(kb):
            for i in range(MR):
                r = s * MR + i
                Ap[s, p, i] = A[ic + r, pc + p] if r < mb else 0


@_jit
def pack_b(B, pc, jc, kb, nb, Bp):
    """Copy the panel ``B[pc:pc+kb, jc:jc+nb]`` into micro-panels ``Bp[t, p, j]`` of NR
    columns, each one contiguous (kb × NR floats). Narrow panels are zero-padded."""
    for t in range((nb + NR - 1) // NR):
        for p in range(kb):
            for j in range(NR):
                c = t * NR + j
                Bp[t, p, j] = B[pc + p, jc + c] if c < nb else 0


@_jit
def micro_kernel(kb, a, b, C, i0, j0, mr, nr, alpha):
    """The MR × NR tile of C at (i0, j0) += alpha · a^T b, for micro-panels a: (kb, MR),
    b: (kb, NR).

    The tile ``acc`` lives in registers for all ``kb`` steps; each step is one outer
    product: MR broadcasts of A times NR/L vector loads of B, MR · NR/L FMA instructions
    (L floats per vector register: 16 with AVX-512, 8 with AVX2). Only the ``mr × nr``
    corner that exists in C is written back (edge tiles are zero-padded in a and b).
    """
    acc = numba.carray(_register_tile(), (MR, NR))
    for i in range(MR):
        for j in range(NR):
            acc[i, j] = 0
    for p in range(kb):
        for i in range(MR):
            ai = a[p, i]
            for j in range(NR):
                acc[i, j] += ai * b[p, j]
    for i in range(mr):
        for j in range(nr):
            C[i0 + i, j0 + j] += alpha * acc[i, j]


@_jit
def gemm_packed(A, B, C, alpha, beta, mc, kc, nc):
    """Step 4, the five loops around the micro-kernel (GotoBLAS/BLIS):

    jc over column panels of B (nc wide, in L3) → pc over depth (kc, pack B) → ic over
    row blocks of A (mc tall, pack A, in L2) → jr over micro-panels of B (NR wide) → ir
    over micro-panels of A (MR tall) → micro-kernel.
    """
    m, k = A.shape
    n = B.shape[1]
    scale(C, beta)
    Ap = np.empty(((min(mc, m) + MR - 1) // MR, min(kc, k), MR), dtype=np.float32)
    Bp = np.empty(((min(nc, n) + NR - 1) // NR, min(kc, k), NR), dtype=np.float32)
    for jc in range(0, n, nc):
        nb = min(nc, n - jc)
        for pc in range(0, k, kc):
            kb = min(kc, k - pc)
            pack_b(B, pc, jc, kb, nb, Bp)
            for ic in range(0, m, mc):
                mb = min(mc, m - ic)
                pack_a(A, ic, pc, mb, kb, Ap)
                for t in range((nb + NR - 1) // NR):
                    for s in range((mb + MR - 1) // MR):
                        micro_kernel(
                            kb,
                            Ap[s],
                            Bp[t],
                            C,
                            ic + s * MR,
                            jc + t * NR,
                            min(MR, mb - s * MR),
                            min(NR, nb - t * NR),
                            alpha,
                        )


# --------------------------------------------------------------------------------------
# Step 5: threads
# --------------------------------------------------------------------------------------


@_jit(parallel=True)
def gemm_parallel(A, B, C, alpha, beta, mc, kc, nc):
    """Step 5, ``gemm_packed`` with threads: B's panel is packed by all threads
    together, then the row blocks of C are shared out (``prange``), each thread packing
    its own block of A into its own buffer. Different row blocks write different rows of
    C, so no two threads write the same element. (:func:`sgemm` picks ``mc`` so that the
    number of row blocks is a multiple of the thread count: :func:`balanced_mc`.)"""
    m, k = A.shape
    n = B.shape[1]
    scale(C, beta)
    blocks = (m + mc - 1) // mc
    Bp = np.empty(((min(nc, n) + NR - 1) // NR, min(kc, k), NR), dtype=np.float32)
    for jc in range(0, n, nc):
        nb = min(nc, n - jc)
        for pc in range(0, k, kc):
            kb = min(kc, k - pc)
            for t in prange((nb + NR - 1) // NR):
                pack_b(B, pc, jc + t * NR, kb, min(NR, nb - t * NR), Bp[t : t + 1])
            for blk in prange(blocks):
                ic = blk * mc
                mb = min(mc, m - ic)
                Ap = np.empty(((mb + MR - 1) // MR, kb, MR), dtype=np.float32)
                pack_a(A, ic, pc, mb, kb, Ap)
                for t in range((nb + NR - 1) // NR):
                    for s in range((mb + MR - 1) // MR):
                        micro_kernel(
                            kb,
                            Ap[s],
                            Bp[t],
                            C,
                            ic + s * MR,
                            jc + t * NR,
                            min(MR, mb - s * MR),
                            min(NR, nb - t * NR),
                            alpha,
                        )


def balanced_mc(m: int, mc: int, threads: int) -> int:
    """Rows per block, a multiple of MR and at most about ``mc``, such that the ``m``
    rows split into a number of blocks that is a multiple of ``threads`` (so no thread
    idles at the end)."""
    blocks = _ceil_div(_ceil_div(m, mc), threads) * threads
    rows = _ceil_div(m, blocks)  # rows per block, then rounded up to a multiple of MR
    return max(MR, _ceil_div(rows, MR) * MR)


def _ceil_div(a: int, b: int) -> int:
    """⌈a / b⌉ for positive integers."""
    return -(-a // b)


KERNELS = {
    "naive": gemm_naive,
    "ikj": gemm_ikj,
    "blocked": gemm_blocked,
    "packed": gemm_packed,
    "parallel": gemm_parallel,
}


# --------------------------------------------------------------------------------------
# The public entry: validation once, then a kernel that checks nothing
# --------------------------------------------------------------------------------------


def _as_operand(x, name: str) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        raise TypeError(f"sgemm: {name} must be a numpy array, got {type(x).__name__}")
    if x.dtype != np.float32:
        raise TypeError(
            f"sgemm is single precision: {name} has dtype {x.dtype}, expected float32 "
            f"(convert with {name}.astype(np.float32))"
        )
    if x.ndim != 2:
        raise ValueError(f"sgemm: {name} must be a 2-D matrix, got shape {x.shape}")
    return x


def _as_scalar(value, name: str) -> np.float32:
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (int, float, np.integer, np.floating)
    ):
        raise TypeError(f"sgemm: {name} must be a real number, got {value!r}")
    if not math.isfinite(float(value)):
        raise ValueError(f"sgemm: {name} must be finite, got {value!r}")
    return np.float32(value)


def _sgemm_operands(A, B, C, alpha, beta, variant):
    """The checks of :func:`sgemm`, done once at the boundary: ``(A, B, C, α, β)``."""
    if variant not in KERNELS:
        raise ValueError(
            f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}"
        )
    A = _as_operand(A, "A")
    B = _as_operand(B, "B")
    if A.shape[1] != B.shape[0]:
        raise ValueError(
            f"sgemm: inner dimensions differ: A is {A.shape}, B is {B.shape}"
        )
    m, n = A.shape[0], B.shape[1]
    alpha = _as_scalar(alpha, "alpha")
    beta = _as_scalar(beta, "beta")
    if C is None:
        if beta != 0:
            raise ValueError(
                f"sgemm: beta = {beta} needs an input C to scale; pass C or beta=0"
            )
        C = np.empty((m, n), dtype=np.float32)
    else:
        C = _as_operand(C, "C")
        if C.shape != (m, n):
            raise ValueError(
                f"sgemm: C has shape {C.shape}, expected {(m, n)}"
                f" for A {A.shape} @ B {B.shape}"
            )
        if not C.flags.writeable:
            raise ValueError("sgemm: C is read-only; it is updated in place")
        if np.may_share_memory(C, A) or np.may_share_memory(C, B):
            raise ValueError(
                "sgemm: C shares memory with A or B; pass a separate output array"
            )
    if numba is None:
        raise ImportError(_NUMBA_MISSING)

    return A, B, C, alpha, beta


def sgemm(
    A,
    B,
    C=None,
    alpha=1.0,
    beta=0.0,
    variant: str = "packed",
    *,
    blocks: BlockSizes | None = None,
):
    """``C ← αAB + βC`` in single precision with the tiny BLAS; returns C.

    A: (m, k), B: (k, n), C: (m, n), all float32 (other dtypes → TypeError, no silent
    casting). ``C=None`` allocates a new result (then ``beta`` must be 0). A given C is
    updated in place; ``beta = 0`` ignores its old contents. ``variant`` is one of
    ``VARIANTS``; ``blocks`` overrides the cache block sizes of "blocked", "packed"
    and "parallel" (default :func:`block_sizes`).

    Transposed or otherwise non-contiguous A and B are *handled by copying* them into
    row-major order first (an O(mk + kn) copy next to O(mnk) work). A non-contiguous C
    is computed in a contiguous copy and written back. C must not share memory with A or
    B (ValueError).
    """
    A, B, C, alpha, beta = _sgemm_operands(A, B, C, alpha, beta, variant)
    m, k = A.shape
    n = B.shape[1]
    A = np.ascontiguousarray(A)
    B = np.ascontiguousarray(B)
    out = C if C.flags.c_contiguous else np.ascontiguousarray(C)
    if m and n:
        if alpha == 0 or k == 0:  # BLAS: A and B are not read at all
            scale(out, beta)
        elif variant in ("naive", "ikj"):
            KERNELS[variant](A, B, out, alpha, beta)
        else:
            b = blocks or _default_blocks(variant)
            if min(b.mc, b.kc, b.nc) < 1:
                raise ValueError(f"sgemm: block sizes must be positive, got {b}")
            mc = (
                balanced_mc(m, b.mc, numba.get_num_threads())
                if variant == "parallel"
                else b.mc
            )
            KERNELS[variant](A, B, out, alpha, beta, int(mc), int(b.kc), int(b.nc))
    if out is not C:
        C[...] = out
    return C


def _check_matmul_operands(a, b):
    """The checks of :func:`matmul`: float32 NumPy arrays of at least one dimension."""
    for name, x in (("a", a), ("b", b)):
        if not isinstance(x, np.ndarray):
            raise TypeError(
                f"matmul: {name} must be a numpy array, got {type(x).__name__}"
            )
        if x.dtype != np.float32:
            raise TypeError(
                f"the tiny BLAS is single precision: {name} has dtype {x.dtype},"
                " expected float32"
            )
        if x.ndim == 0:
            raise ValueError(
                f"matmul: {name} is a scalar; matmul needs at least 1-D operands"
            )


def matmul(a, b, variant: str = "packed"):
    """``numpy.matmul(a, b)`` for float32 arrays, every 2-D product done by
    :func:`sgemm`.

    Same semantics as ``a @ b``: 1-D operands are promoted to a row (a) or a column (b)
    and the added axis is removed afterwards; leading (batch) axes broadcast. A 2-D
    operand against a stack is folded into one large GEMM rather than one small GEMM per
    matrix. Intended as the GEMM backend of :mod:`cnnbook.functional` and the layers
    (``gemm=cnnbook.blas.matmul``, or ``functools.partial(cnnbook.blas.matmul,
    variant="parallel")``).
    """
    _check_matmul_operands(a, b)
    squeeze_a, squeeze_b = a.ndim == 1, b.ndim == 1
    if squeeze_a:
        a = a[None, :]
    if squeeze_b:
        b = b[:, None]
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(
            f"matmul: inner dimensions differ: a is {a.shape}, b is {b.shape}"
        )
    m, k = a.shape[-2:]
    n = b.shape[-1]
    if a.ndim == 2 and b.ndim == 2:
        out = sgemm(a, b, variant=variant)
    elif b.ndim == 2:  # a stack of matrices times one matrix: all rows at once
        out = sgemm(a.reshape(-1, k), b, variant=variant).reshape(*a.shape[:-2], m, n)
    elif a.ndim == 2:  # one matrix times a stack: the stack side by side, (k, batch·n)
        batch = b.shape[:-2]
        wide = np.ascontiguousarray(np.moveaxis(b, -2, 0)).reshape(k, -1)
        out = sgemm(a, wide, variant=variant).reshape(m, *batch, n)
        out = np.ascontiguousarray(np.moveaxis(out, 0, -2))
    else:
        try:
            batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        except ValueError:
            raise ValueError(
                f"matmul: batch axes do not broadcast: a is {a.shape}, b is {b.shape}"
            ) from None
        a = np.broadcast_to(a, batch + (m, k))
        b = np.broadcast_to(b, batch + (k, n))
        out = np.empty(batch + (m, n), dtype=np.float32)
        for index in np.ndindex(*batch):
            sgemm(a[index], b[index], out[index], variant=variant)
    if squeeze_a:
        out = out[..., 0, :]
    if squeeze_b:
        out = out[..., 0]
    return out


# --------------------------------------------------------------------------------------
# The machine's yardsticks: measured FMA peak, streaming bandwidth, the register tile
# (issue 17). Appended here so that the listings of the functions above keep their
# line numbers.
# --------------------------------------------------------------------------------------

import threading  # noqa: E402
import time  # noqa: E402

from cnnbook import machine as _machine  # noqa: E402

# An FMA's result can feed the next FMA only after FMA_LATENCY cycles, and a core
# starts FMA_UNITS of them per cycle: 5 × 2 on Haswell/Broadwell, 4 × 2 on Skylake(-X),
# Zen 3, Zen 4 and Zen 5. To keep every unit busy, at least latency × units
# independent vector FMAs must be in flight (Low et al., 2016). The conservative
# values below (Haswell's latency) cover all of these cores.
FMA_LATENCY = 5
FMA_UNITS = 2

# float32 only: for float64 on AVX2 the 48-element accumulator loop is short enough for
# LLVM to unroll it fully *before* the loop vectorizer runs, and numba leaves the SLP
# vectorizer off, so it would compile to scalar FMAs (a false peak).
_PEAK_DTYPES = (np.dtype(np.float32),)


def _check_threads(threads, who: str) -> int:
    """``threads`` as an int in 1 … os.cpu_count(): TypeError or ValueError
    otherwise."""
    if isinstance(threads, (bool, np.bool_)) or not isinstance(
        threads, (int, np.integer)
    ):
        raise TypeError(f"{who}: threads must be an integer, got {threads!r}")
    cpus = os.cpu_count() or 1
    if not 1 <= threads <= cpus:
        raise ValueError(
            f"{who}: threads must be between 1 and the {cpus} CPUs, got {threads}"
        )
    return int(threads)


def _check_dtype(dtype, who: str) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{who}: dtype must be a NumPy dtype, got {dtype!r}") from None
    if dt not in _PEAK_DTYPES:
        raise TypeError(f"{who}: only float32 is supported, got dtype {dt}")
    return dt


def peak_accumulators(vector_registers: int | None = None) -> int:
    """Independent vector accumulators of the peak benchmark: twice latency × units
    (so it is throughput-bound with margin) where the register file allows, leaving 4
    registers for the two operands and spare: 12 on AVX2 (16 ymm), 20 on AVX-512."""
    if vector_registers is None:
        vector_registers = _machine.vector_isa()[2]
    return max(1, min(vector_registers - 4, 2 * FMA_LATENCY * FMA_UNITS))


def _stack_buffer(nbtype, size: int):
    """An intrinsic returning a pointer to ``size`` elements of ``nbtype`` on the
    caller's stack (see ``_register_tile``: LLVM can promote them to registers)."""

    @intrinsic
    def stack_buffer(typingctx):
        def codegen(context, builder, signature, args):
            ty = context.get_value_type(nbtype)
            buf = cgutils.alloca_once(builder, llvm_ir.ArrayType(ty, size))
            return builder.bitcast(buf, ty.as_pointer())

        return types.CPointer(nbtype)(), codegen

    return stack_buffer


@functools.lru_cache(maxsize=None)
def _fma_kernels(dtype: np.dtype, chains: int, lanes: int):
    """Compiled ``fma_chains`` (nogil) for ``chains`` vector accumulators of
    ``lanes`` elements each.

    ``fma_chains(iterations, x, y)`` runs ``acc ← acc·x + y`` on every accumulator
    ``iterations`` times: ``chains`` independent dependency chains of vector FMAs,
    kept in registers (a stack tile, fully unrolled), and returns their sum so nothing
    is optimised away. With ``0 < x < 1`` the values stay finite and normal.
    """
    if numba is None:
        raise ImportError(_NUMBA_MISSING)
    nbtype = numba.from_dtype(dtype)
    tile = _stack_buffer(nbtype, chains * lanes)
    zero = dtype.type(0)

    width = chains * lanes

    def fma_chains(iterations, x, y):
        # one flat loop over all accumulators: LLVM's loop vectorizer turns it into
        # ``chains`` packed FMAs (numba leaves the SLP vectorizer off by default)
        acc = numba.carray(tile(), (width,))
        for j in range(width):
            acc[j] = y
        for _ in range(iterations):
            for j in range(width):
                acc[j] = acc[j] * x + y
        total = zero
        for j in range(width):
            total += acc[j]
        return total

    return numba.njit(nogil=True, fastmath={"contract"})(fma_chains)


def _best_time(run, repeats: int) -> float:
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def _calibrate(run, count: int, seconds: float) -> int:
    """A repeat count for which ``run(count)`` lasts about ``seconds``: grown by 4 until
    a run lasts a quarter of that (best of 3, so one preempted run does not stop it),
    then scaled."""
    while True:
        elapsed = _best_time(lambda: run(count), 3)
        if elapsed >= seconds / 4 or count >= 1 << 40:
            break
        count *= 4
    return max(1, int(count * seconds / max(elapsed, 1e-9)))


def _per_thread_rate(run, threads: int, count: int, repeats: int) -> float:
    """Σ over ``threads`` threads of ``count`` / (best time of ``run(i, count)``).

    Each thread times its own runs of a nogil kernel, all threads starting each run
    together at a barrier. Timing the whole parallel region instead (numba ``prange``)
    measured 10-70 GF/s for two threads on the loaded 2-core test host: a sleeping
    OpenMP worker can take a scheduler tick (about 4 ms) to wake, longer than the
    short runs that dodge the other processes (see :func:`peak_gflops`)."""
    if threads == 1:
        return count / _best_time(lambda: run(0, count), repeats)
    barrier = threading.Barrier(threads)
    best = [math.inf] * threads

    def worker(i):
        for _ in range(repeats):
            barrier.wait()
            start = time.perf_counter()
            run(i, count)
            best[i] = min(best[i], time.perf_counter() - start)

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return sum(count / b for b in best)


def peak_gflops(
    threads: int = 1, dtype=np.float32, *, seconds: float = 0.002, repeats: int = 100
) -> float:
    """The measured floating-point peak of this host in GFLOP/s: vector FMA throughput.

    ``peak_accumulators()`` independent chains of vector FMAs (twice FMA_LATENCY ×
    FMA_UNITS, so the loop is bound by the FMA units' throughput, not by the latency of
    one chain) run in registers, each FMA instruction counting 2 flops per lane
    (``lanes = vector bits / element bits``: 8 float32 with AVX2, 16 with AVX-512).
    ``threads > 1`` runs that many independent blocks at once, one per thread (the
    nogil kernel in Python threads, each timing its own runs: ``_per_thread_rate``).
    The best of ``repeats`` runs of about ``seconds`` each is returned: many short runs,
    because on a shared machine a long run is always interrupted, while some short run
    finds every core free (on the 2-core test host, 2 threads: 68 GF/s with 5 runs of
    50 ms, 201 GF/s with 100 runs of 2 ms; one thread: about 100 both ways).

    This is the roof of a roofline and the yardstick of "% of peak", measured rather
    than inferred from a nominal clock (turbo and the vector clock offset vary).
    """
    threads = _check_threads(threads, "peak_gflops")
    dt = _check_dtype(dtype, "peak_gflops")
    _, bits, registers = _machine.vector_isa()
    lanes = max(1, bits // (8 * dt.itemsize))
    chains = peak_accumulators(registers)
    single = _fma_kernels(dt, chains, lanes)
    x, y = dt.type(0.999), dt.type(1e-3)
    single(1, x, y)  # compile
    iterations = _calibrate(lambda count: single(count, x, y), 1 << 14, seconds)
    rate = _per_thread_rate(lambda i, n: single(n, x, y), threads, iterations, repeats)
    return rate * 2 * chains * lanes / 1e9  # iterations/s × flops per iteration


@functools.lru_cache(maxsize=None)
def _stream_kernels(chains: int, lanes: int):
    """Compiled ``read_sum`` (nogil) over float32 buffers of shape
    ``(tiles, chains · lanes)``: a sum into a
    ``chains × lanes`` stack tile (independent vector adds, each loading one vector),
    so the loop is bound by loads, not by the latency of the adds."""
    if numba is None:
        raise ImportError(_NUMBA_MISSING)
    width = chains * lanes
    tile = _stack_buffer(types.float32, width)

    def read_sum(x, passes):
        # x: (tiles, width); indices straight from range() are known non-negative, so
        # no wraparound code blocks vectorization (``x[i + j]`` would not vectorize)
        acc = numba.carray(tile(), (width,))
        for j in range(width):
            acc[j] = 0
        for _ in range(passes):
            for t in range(x.shape[0]):
                for j in range(width):
                    acc[j] += x[t, j]
        total = np.float32(0)
        for j in range(width):
            total += acc[j]
        return total

    return numba.njit(nogil=True, fastmath={"contract"})(read_sum)


def stream_bandwidth(
    nbytes: int, threads: int = 1, *, seconds: float = 0.002, repeats: int = 100
) -> float:
    """Read bandwidth in GB/s (10⁹ bytes per second) of a streaming sum over a float32
    buffer of about ``nbytes`` bytes (rounded down to whole tiles), swept repeatedly.

    The roofs of a cache-aware roofline: a buffer that fits in L1 (say half of it)
    measures the L1 roof, one that fits in L2 the L2 roof, and one several times the
    size of L3 the memory roof (:func:`cache_sizes` gives the sizes). ``threads > 1``
    splits the buffer into that many parts, one per thread (``_per_thread_rate``);
    each part then lives in its own core's caches. Best of ``repeats`` runs of about
    ``seconds`` (see :func:`peak_gflops`); a buffer larger than one run's worth is
    swept once per run.
    """
    threads = _check_threads(threads, "stream_bandwidth")
    if isinstance(nbytes, (bool, np.bool_)) or not isinstance(
        nbytes, (int, np.integer)
    ):
        raise TypeError(f"stream_bandwidth: nbytes must be an integer, got {nbytes!r}")
    _, bits, registers = _machine.vector_isa()
    lanes = max(1, bits // 32)
    chains = peak_accumulators(registers)
    width = chains * lanes  # floats per tile
    smallest = threads * width * 4
    try:
        largest = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not Linux
        largest = 1 << 32
    if not smallest <= nbytes <= largest:
        raise ValueError(
            f"stream_bandwidth: nbytes must be between {smallest} (one {width}-float "
            f"tile per thread) and {largest} (a quarter of memory), got {nbytes}"
        )
    tiles = int(nbytes) // (4 * width) // threads
    parts = np.ones((threads, tiles, width), dtype=np.float32)  # pages touched
    single = _stream_kernels(chains, lanes)
    single(parts[0], 1)  # compile and warm the caches
    passes = _calibrate(lambda count: single(parts[0], count), 1, seconds)
    rate = _per_thread_rate(lambda i, n: single(parts[i], n), threads, passes, repeats)
    return rate * parts[0].nbytes / 1e9  # passes/s × bytes per pass


@dataclass(frozen=True)
class RegisterTile:
    """An ``mr × nr`` register tile of C for vectors of ``lanes`` elements."""

    mr: int
    nr: int
    lanes: int

    @property
    def vectors(self) -> int:
        """How many vector registers one row of the tile spans (nr / lanes)."""
        return self.nr // self.lanes

    @property
    def accumulators(self) -> int:
        return self.mr * self.vectors

    @property
    def registers(self) -> int:
        """Accumulators + one row of B (nr / lanes vectors) + one broadcast of A."""
        return self.accumulators + self.vectors + 1


def register_tile(
    vector_registers: int | None = None,
    vector_lanes: int | None = None,
    *,
    latency: int = FMA_LATENCY,
    units: int = FMA_UNITS,
) -> RegisterTile:
    """The micro-kernel's register tile MR × NR, derived from the register file.

    One step p of the micro-kernel is an outer product: it loads a row of the B
    micro-panel (``v = NR / L`` vectors of L lanes), broadcasts MR elements of A one at
    a time, and issues ``MR·v`` vector FMAs into the accumulators. So

    * registers: ``MR·v`` accumulators + ``v`` B vectors + 1 broadcast ≤ R;
    * latency: each accumulator is one dependency chain, and latency × units chains
      must be in flight to keep the FMA units busy: ``MR·v ≥ latency · units``;
    * load ports: ``MR + v`` loads per step should not exceed the ``MR·v`` FMAs (cores
      from Haswell to Zen 3 issue at least as many loads as FMAs per cycle);
    * among the tiles left, the largest ``MR·NR / (MR + NR)``: flops per element loaded
      from the packed panels, the micro-kernel's arithmetic intensity.

    For each ``v``, MR is the largest that fits, ``⌊(R − v − 1) / v⌋``. With AVX2 (R =
    16 ymm, L = 8 floats): v = 1 gives 14 × 8 but needs 15 loads for 14 FMAs; v = 2
    gives **6 × 16** (12 accumulators + 2 + 1 = 15 registers, 8 loads for 12 FMAs,
    intensity 4.4); v = 3 gives 4 × 24 (intensity 3.4). With AVX-512 (R = 32 zmm, L =
    16): 14 × 32 (28 + 2 + 1 = 31 registers, intensity 9.7), ahead of 9 × 48 and 6 × 64.
    BLIS uses 6 × 16 for sgemm on Haswell and Zen, and a larger tile on Skylake-X (32 ×
    12, its column-major twin of 12 × 32, keeping registers free for addresses).

    When no tile meets the latency or load rule (tiny register files), the best of
    those that fit is returned; ``R < 3`` has none (ValueError). Defaults: the host's
    ISA (:func:`cnnbook.machine.vector_isa`), float32 lanes.
    """
    if vector_registers is None or vector_lanes is None:
        _, bits, registers = _machine.vector_isa()
        vector_registers = registers if vector_registers is None else vector_registers
        vector_lanes = bits // 32 if vector_lanes is None else vector_lanes
    for name, value in (
        ("vector_registers", vector_registers),
        ("vector_lanes", vector_lanes),
        ("latency", latency),
        ("units", units),
    ):
        if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, (int, np.integer)
        ):
            raise TypeError(f"register_tile: {name} must be an integer, got {value!r}")
        if value < 1:
            raise ValueError(f"register_tile: {name} must be positive, got {value}")
    R, L = int(vector_registers), int(vector_lanes)
    if R < 3:
        raise ValueError(
            f"register_tile: {R} vector registers cannot hold an accumulator, a B "
            "vector and a broadcast of A (3 at least)"
        )
    best_key, best = None, None
    for v in range(1, R - 1):
        mr = (R - v - 1) // v
        if mr < 1:
            break
        acc = mr * v
        key = (
            acc >= latency * units,
            mr + v <= acc,
            mr * v * L / (mr + v * L),
            -v,
        )
        if best_key is None or key > best_key:
            best_key, best = key, RegisterTile(mr, v * L, L)
    return best


def vector_fma_counts(asm: str) -> dict[str, int]:
    """FMA instructions in x86 assembly (numba's ``inspect_asm()``), by operand width:
    ``zmm`` (512-bit packed), ``ymm`` (256-bit packed), ``xmm`` (128-bit packed) and
    ``scalar`` (``vfmadd…ss/sd``: one lane, not vectorized)."""
    counts = {"zmm": 0, "ymm": 0, "xmm": 0, "scalar": 0}
    for line in asm.splitlines():
        parts = line.split(None, 1)
        if not parts or not parts[0].startswith(("vfmadd", "vfmsub", "vfnmadd")):
            continue
        if parts[0].endswith(("ss", "sd")):
            counts["scalar"] += 1
        else:
            for width in ("zmm", "ymm", "xmm"):
                if width in line:
                    counts[width] += 1
                    break
    return counts


def peak_kernel_asm(dtype=np.float32) -> str:
    """The assembly of :func:`peak_gflops`' single-thread kernel for this host, compiled
    on first use (``vector_fma_counts`` of it should show ``peak_accumulators()``
    packed FMAs of the host's widest vectors and no scalar ones)."""
    dt = _check_dtype(dtype, "peak_kernel_asm")
    _, bits, registers = _machine.vector_isa()
    lanes = max(1, bits // (8 * dt.itemsize))
    single = _fma_kernels(dt, peak_accumulators(registers), lanes)
    single(1, dt.type(0.999), dt.type(1e-3))  # compile
    return "\n".join(single.inspect_asm().values())


__all__ += [
    "vector_fma_counts",
    "peak_kernel_asm",
    "FMA_LATENCY",
    "FMA_UNITS",
    "RegisterTile",
    "peak_accumulators",
    "peak_gflops",
    "stream_bandwidth",
    "register_tile",
]
