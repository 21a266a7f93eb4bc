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
  ``register``  register blocking inside the same cache blocks: a micro-kernel keeps an
                ``MR × NR`` tile of ``C`` in vector registers for a whole ``kc`` loop,
                reading ``A`` and ``B`` where they are (no copies);
  ``packed``    the GotoBLAS/BLIS structure: the same micro-kernel, fed from panels of
                ``A`` and ``B`` copied ("packed") into contiguous buffers in the order
                the micro-kernel reads them;
  ``parallel``  ``packed`` with the row blocks of ``C`` shared among threads
                (``prange``), ``numba.get_num_threads()`` of them.

The register tile ``MR × NR`` comes from the host's vector ISA (:func:`register_tile`:
6 × 16 with AVX2's 16 ymm registers, 14 × 32 with AVX-512's 32 zmm registers), the
block sizes ``mc, kc, nc`` from its caches with the analytical model of BLIS
(:func:`cache_sizes`, :func:`block_sizes`). :func:`with_tile` compiles the same
kernels for another tile (the tests force every ISA's tile on any host).

The packing routines :func:`pack_a` and :func:`pack_b` are separate kernels with a
documented layout, so that other code (an implicit im2col, say) can produce the same
packed panels and reuse the micro-kernel.

The public entry is :func:`sgemm` (validation, copies of transposed inputs, the variant
choice); :func:`matmul` has ``numpy.matmul``'s semantics on top of it (batched and
broadcast operands), so it can be handed to the layers as their GEMM backend.

The machine's yardsticks live here too: :func:`peak_gflops` (measured vector-FMA
throughput), :func:`stream_bandwidth` (the roofs of a cache-aware roofline) and
:func:`vector_fma_counts` (vector FMA instructions in generated assembly).

Compiler flags: every kernel allows only floating-point *contraction* (a multiply and an
add fused into one FMA instruction); no reassociation, so each sum is added in the loop
order written. numba is optional at import time: without it every kernel raises an
ImportError that says so.
"""

from __future__ import annotations

import functools
import math
import os
import threading
import time
import types as _pytypes
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnbook import machine as _machine

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
    "FMA_LATENCY",
    "FMA_UNITS",
    "RegisterTile",
    "register_tile",
    "TILE",
    "MR",
    "NR",
    "LANES",
    "VARIANTS",
    "KERNELS",
    "CacheSizes",
    "BlockSizes",
    "cache_sizes",
    "block_sizes",
    "balanced_block",
    "balanced_mc",
    "sgemm",
    "matmul",
    "gemm_flops",
    "gemm_naive",
    "gemm_ikj",
    "gemm_blocked",
    "gemm_register",
    "gemm_packed",
    "gemm_parallel",
    "pack_a",
    "pack_b",
    "micro_kernel",
    "edge_tile",
    "macro_kernel",
    "zero_tile",
    "fma_row",
    "update_row",
    "prefetch_row",
    "copy_row",
    "transpose_block",
    "with_tile",
    "micro_kernel_asm",
    "micro_kernel_gflops",
    "micro_kernel_sweep",
    "scale",
    "vector_fma_counts",
    "fma_loop",
    "peak_kernel_asm",
    "peak_accumulators",
    "peak_gflops",
    "stream_bandwidth",
]

HAVE_NUMBA = numba is not None
_NUMBA_MISSING = (
    "cnnbook.blas: the tiny BLAS is compiled with numba, which is not installed. "
    "Install it with `pip install numba` (it is in requirements.txt)."
)

# --------------------------------------------------------------------------------------
# The register tile, from the register file
# --------------------------------------------------------------------------------------

# An FMA's result can feed the next FMA only after FMA_LATENCY cycles, and a core
# starts FMA_UNITS of them per cycle: 5 × 2 on Haswell/Broadwell, 4 × 2 on Skylake(-X),
# Zen 3, Zen 4 and Zen 5. To keep every unit busy, at least latency × units
# independent vector FMAs must be in flight (Low et al., 2016). The conservative
# values below (Haswell's latency) cover all of these cores.
FMA_LATENCY = 5
FMA_UNITS = 2


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


# The host's tile. Module constants, so numba compiles them into the kernels and the
# compiler knows the trip counts of the tile loops (numba's on-disk cache is keyed on
# the CPU model and features, from which this tile is derived: a cached kernel never
# meets another tile). ``with_tile`` compiles the kernels for any other tile.
TILE = register_tile()
MR = TILE.mr  # rows of the register tile of C
NR = TILE.nr  # columns of the register tile of C, a multiple of LANES
LANES = TILE.lanes  # float32 numbers per vector register

VARIANTS = ("naive", "ikj", "blocked", "register", "packed", "parallel")


def _jit(fn=None, **options):
    """``numba.njit(cache=True, fastmath={"contract"})`` (``options`` may override
    either), or a stub raising ImportError without numba."""
    if fn is None:
        return functools.partial(_jit, **options)
    if numba is None:

        @functools.wraps(fn)
        def missing(*args, **kwargs):
            raise ImportError(_NUMBA_MISSING)

        missing.py_func = fn
        return missing
    return numba.njit(**{"cache": True, "fastmath": {"contract"}, **options})(fn)


# --------------------------------------------------------------------------------------
# Cache sizes and block sizes
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CacheSizes:
    """Per-core data cache sizes in bytes, their associativity (ways), and where they
    were read from."""

    l1d: int
    l2: int
    l3: int
    line: int
    source: str  # "sysfs" or "fallback"
    l1_ways: int = 8
    l2_ways: int = 8
    l3_ways: int = 16


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
    """This CPU's L1 data, L2 and L3 cache sizes and ways, read from Linux's sysfs.

    Each ``index*/`` directory under ``root`` describes one cache (``level``, ``type``,
    ``size``, ``ways_of_associativity``, ``coherency_line_size``). Anything missing or
    unreadable falls back to ``_FALLBACK_CACHES`` (32 KiB L1d, 512 KiB L2, 8 MiB L3,
    64-byte lines, 8/8/16 ways), and ``source`` says so.
    """
    found, ways = {}, {}
    line = None
    try:
        for index in sorted(Path(root).glob("index*")):
            level = int((index / "level").read_text())
            kind = (index / "type").read_text().strip()
            if kind == "Instruction":
                continue
            found[level] = _parse_size((index / "size").read_text())
            ways_file = index / "ways_of_associativity"
            if ways_file.exists():
                ways[level] = int(ways_file.read_text())
            line_file = index / "coherency_line_size"
            if line is None and line_file.exists():
                line = int(line_file.read_text())
    except (OSError, ValueError):
        found = {}
    if not {1, 2}.issubset(found):
        return _FALLBACK_CACHES
    fb = _FALLBACK_CACHES
    return CacheSizes(
        l1d=found[1],
        l2=found[2],
        l3=found.get(3, fb.l3),
        line=line or 64,
        source="sysfs",
        l1_ways=ways.get(1) or fb.l1_ways,
        l2_ways=ways.get(2) or fb.l2_ways,
        l3_ways=ways.get(3) or fb.l3_ways,
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


# nc is also bounded by the TLB: a packed kc × nc panel of B of at most 4096 columns
# spans kc · 4096 · 4 bytes (4 MiB at kc = 256), 1024 pages of 4 KiB, within the
# second-level TLB of current x86 cores (1536-3072 entries).
NC_MAX = 4096


def block_sizes(
    variant: str = "packed",
    caches: CacheSizes | None = None,
    tile: RegisterTile | None = None,
) -> BlockSizes:
    """Block sizes for ``variant`` from the caches: BLIS's analytical model (Low et al.,
    2016) for "register", "packed" and "parallel"; a simpler rule for "blocked".

    A cache of ``W`` ways and ``S`` sets of ``L``-byte lines holds ``S·L`` bytes per
    way; a block gets whole ways, and one way is left for the lines of C (and of the
    other operand) that stream through. With float32 (4 bytes) and the tile MR × NR:

    * **kc (L1).** The micro-kernel reuses a ``kc × NR`` micro-panel of B for every
      ``MR × kc`` micro-panel of A, so B's stays in L1 while A's stream through. The
      two get whole ways, ``C_B`` and ``C_A`` with ``C_A + C_B ≤ W₁ − 1``, and kc is
      the longest for which both fit: the largest over ``C_B`` of ``min(C_B · S₁ · L /
      (4 · NR), (W₁ − 1 − C_B) · S₁ · L / (4 · MR))``. (Low et al.'s closed form
      ``C_A = ⌊(W₁ − 1) / (1 + NR/MR)⌋``, ``kc = C_A · S₁ · L / (4 · MR)`` is the case
      where A's micro-panel fills its ways exactly; when ``NR/MR`` is not a whole
      number it leaves ways empty: 1 + 3 of 7 for the AVX2 tile 6 × 16, kc = 170,
      where 2 + 5 allow kc = 320.)
    * **mc (L2).** The packed ``mc × kc`` block of A is reused for every micro-panel of
      B: it gets the L2 ways that the B micro-panel and one streaming way leave,
      ``C_Ac = W₂ − 1 − ⌈4 · kc · NR / (S₂ · L)⌉``: ``mc = C_Ac · S₂ · L / (4 · kc)``,
      a multiple of MR.
    * **nc (L3).** The packed ``kc × nc`` panel of B likewise gets
      ``W₃ − 1 − ⌈4 · mc · kc / (S₃ · L)⌉`` ways of L3, a multiple of NR, and at most
      ``NC_MAX`` columns (the TLB).

    ``blocked`` (no packing, no register tile): a row piece of C, ``nc`` floats, stays
    in L1 (an eighth of it) while ``kc`` rows of B stream past; the ``kc × nc`` block of
    B stays in half of L2; ``mc`` rows of A.
    """
    caches = caches or cache_sizes()
    tile = tile or TILE
    if variant in ("register", "packed", "parallel"):
        mr, nr, line = tile.mr, tile.nr, caches.line
        way1 = caches.l1d // caches.l1_ways  # bytes per way: sets × line
        way2 = caches.l2 // caches.l2_ways
        way3 = caches.l3 // caches.l3_ways
        kc = max(  # C_B ways for B's micro-panel, the others but one for A's
            min(
                ways_b * way1 // (4 * nr),
                (caches.l1_ways - 1 - ways_b) * way1 // (4 * mr),
            )
            for ways_b in range(1, max(2, caches.l1_ways - 1))
        )
        kc = _round_down(kc, 8, 8)
        ways_ac = max(1, caches.l2_ways - 1 - _ceil_div(4 * kc * nr, way2))
        mc = _round_down(ways_ac * way2 // (4 * kc), mr, mr)
        ways_bc = max(1, caches.l3_ways - 1 - _ceil_div(4 * mc * kc, way3))
        nc = _round_down(min(ways_bc * way3 // (4 * kc), NC_MAX), nr, nr)
        del line
        return BlockSizes(mc, kc, nc)
    if variant == "blocked":
        nc = _round_down(caches.l1d // (8 * 4), 16, 16)
        kc = _round_down(caches.l2 // (2 * nc * 4), 16, 16)
        return BlockSizes(64, kc, nc)
    raise ValueError(
        "block sizes exist for 'blocked', 'register', 'packed' and 'parallel', "
        f"not {variant!r}"
    )


def balanced_block(size: int, block: int, multiple: int = 1) -> int:
    """A block length for cutting ``size`` into nearly equal pieces, each at most a
    quarter longer than ``block`` and a multiple of ``multiple``: k = 512 with kc = 168
    gives 3 blocks of 171, not 3 of 168 and a sliver of 8 (a short block spends as
    much on loading and storing C as a long one)."""
    pieces = max(1, _ceil_div(4 * size, 5 * block))  # ⌈size / (1.25 block)⌉
    return max(multiple, _ceil_div(_ceil_div(size, pieces), multiple) * multiple)


@functools.lru_cache(maxsize=None)
def _default_blocks(variant: str, tile: RegisterTile) -> BlockSizes:
    return block_sizes(variant, tile=tile)  # read the caches once per process


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
# Step 4: register blocking. An MR × NR tile of C in vector registers
# --------------------------------------------------------------------------------------


def _tile_intrinsics(mr: int, nr: int, lanes: int):
    """``(zero_tile, fma_row, update_row, prefetch_row, copy_row, transpose_block)``
    for an ``mr × nr`` float32 tile in vectors of ``lanes``: the operations of the
    micro-kernel (and of packing) that numba cannot spell.

    numba has no vector type, and LLVM, left to itself, unrolls a 16-long tile loop
    completely before its loop vectorizer sees it (numba leaves the SLP vectorizer
    off): the micro-kernel would compile to scalar FMAs. These intrinsics write the
    vector instructions explicitly, in LLVM IR.
    """
    if numba is None:  # pragma: no cover

        def missing(*args):
            raise ImportError(_NUMBA_MISSING)

        return (missing,) * 6
    if nr % lanes:
        raise ValueError(f"the tile width {nr} is not a multiple of {lanes} lanes")
    f32 = llvm_ir.FloatType()
    vector = llvm_ir.VectorType(f32, lanes)
    i32, i64 = llvm_ir.IntType(32), llvm_ir.IntType(64)

    def _splat(builder, x):
        one = builder.insert_element(
            llvm_ir.Constant(vector, llvm_ir.Undefined), x, llvm_ir.Constant(i32, 0)
        )
        return builder.shuffle_vector(
            one,
            llvm_ir.Constant(vector, llvm_ir.Undefined),
            llvm_ir.Constant(llvm_ir.VectorType(i32, lanes), [0] * lanes),
        )

    def _fma(builder):
        return cgutils.get_or_insert_function(
            builder.module,
            llvm_ir.FunctionType(vector, [vector] * 3),
            f"llvm.fma.v{lanes}f32",
        )

    @intrinsic
    def zero_tile(typingctx):
        """A pointer to MR·NR float32 zeros on the *stack* of the calling function.

        numba allocates every array on the heap, through its runtime; the optimizer
        cannot prove that such memory is private, so it keeps a heap tile in memory and
        reloads it on every iteration. A stack slot that never escapes is split into
        registers (LLVM's SROA/mem2reg).
        """

        def codegen(context, builder, signature, args):
            array = llvm_ir.ArrayType(f32, mr * nr)
            tile = cgutils.alloca_once(builder, array)
            builder.store(llvm_ir.Constant(array, None), tile)  # zeros
            return builder.bitcast(tile, f32.as_pointer())

        return types.CPointer(types.float32)(), codegen

    @intrinsic
    def fma_row(typingctx, acc, i, a, b, p):
        """``acc[i, :] += a · b[p, :]``: NR / LANES vector FMAs, for a tile ``acc`` from
        ``zero_tile``, a float32 ``a`` and a float32 matrix ``b`` whose rows are
        contiguous (a packed micro-panel, or a slice of a row-major B)."""
        if not (
            isinstance(b, types.Array) and b.ndim == 2 and b.dtype == types.float32
        ):
            return None
        signature = types.void(acc, i, a, b, p)

        def codegen(context, builder, signature, args):
            acc, i, a, b, p = args
            i = context.cast(builder, i, signature.args[1], types.intp)
            p = context.cast(builder, p, signature.args[4], types.intp)
            a = context.cast(builder, a, signature.args[2], types.float32)
            matrix = context.make_array(signature.args[3])(context, builder, b)
            zero = llvm_ir.Constant(i64, 0)
            row = cgutils.get_item_pointer(
                context, builder, signature.args[3], matrix, [p, zero]
            )
            splat = _splat(builder, a)  # a in every lane: the broadcast
            fma = _fma(builder)
            base = builder.gep(acc, [builder.mul(i, llvm_ir.Constant(i64, nr))])
            for v in range(nr // lanes):
                offset = [llvm_ir.Constant(i64, v * lanes)]
                b_vec = builder.bitcast(builder.gep(row, offset), vector.as_pointer())
                c_vec = builder.bitcast(builder.gep(base, offset), vector.as_pointer())
                total = builder.call(
                    fma,
                    [splat, builder.load(b_vec, align=4), builder.load(c_vec, align=4)],
                )
                builder.store(total, c_vec, align=4)
            return context.get_dummy_value()

        return signature, codegen

    @intrinsic
    def update_row(typingctx, C, r, c, alpha, acc, i, beta):
        """``C[r, c:c+NR] = alpha · acc[i, :] + beta · C[r, c:c+NR]`` (``beta = 0``:
        C's old values ignored, even NaN): the write-back of one row of a whole tile in
        NR / LANES vector operations (C's rows contiguous)."""
        if not (
            isinstance(C, types.Array) and C.ndim == 2 and C.dtype == types.float32
        ):
            return None
        signature = types.void(C, r, c, alpha, acc, i, beta)

        def codegen(context, builder, signature, args):
            C, r, c, alpha, acc, i, beta = args
            ty = signature.args
            r, c, i = (
                context.cast(builder, x, t, types.intp)
                for x, t in ((r, ty[1]), (c, ty[2]), (i, ty[5]))
            )
            alpha = context.cast(builder, alpha, ty[3], types.float32)
            beta = context.cast(builder, beta, ty[6], types.float32)
            overwrite = builder.fcmp_ordered("==", beta, llvm_ir.Constant(f32, 0))
            matrix = context.make_array(ty[0])(context, builder, C)
            row = cgutils.get_item_pointer(context, builder, ty[0], matrix, [r, c])
            alphas, betas = _splat(builder, alpha), _splat(builder, beta)
            base = builder.gep(acc, [builder.mul(i, llvm_ir.Constant(i64, nr))])
            for v in range(nr // lanes):
                offset = [llvm_ir.Constant(i64, v * lanes)]
                c_vec = builder.bitcast(builder.gep(row, offset), vector.as_pointer())
                t_vec = builder.bitcast(builder.gep(base, offset), vector.as_pointer())
                scaled = builder.fmul(alphas, builder.load(t_vec, align=4))
                old = builder.load(c_vec, align=4)
                total = builder.call(_fma(builder), [betas, old, scaled])
                builder.store(builder.select(overwrite, scaled, total), c_vec, align=4)
            return context.get_dummy_value()

        return signature, codegen

    @intrinsic
    def prefetch_row(typingctx, C, r, c):
        """Ask the cache for the lines holding ``C[r, c:c+NR]``, to write them soon
        (LLVM's ``llvm.prefetch``): the tile's rows of C arrive while the FMAs run,
        instead of stalling the write-back (BLIS's micro-kernels do the same). One
        prefetch every 16 floats (a 64-byte line) and one for the row's last float:
        NumPy aligns C to 16 bytes only, so a row of the tile usually straddles one
        line more than it fills (fetching the second line of AVX2's 16-float rows made
        n = 1024, where C is in L3, 6-11% faster on the Zen 3 host)."""
        if not (isinstance(C, types.Array) and C.ndim == 2):
            return None
        signature = types.void(C, r, c)

        def codegen(context, builder, signature, args):
            C, r, c = args
            r = context.cast(builder, r, signature.args[1], types.intp)
            c = context.cast(builder, c, signature.args[2], types.intp)
            matrix = context.make_array(signature.args[0])(context, builder, C)
            ptr = cgutils.get_item_pointer(
                context, builder, signature.args[0], matrix, [r, c]
            )
            i8p = llvm_ir.IntType(8).as_pointer()
            prefetch = cgutils.get_or_insert_function(
                builder.module,
                llvm_ir.FunctionType(llvm_ir.VoidType(), [i8p, i32, i32, i32]),
                "llvm.prefetch.p0",
            )
            flags = [llvm_ir.Constant(i32, v) for v in (1, 3, 1)]  # write, keep, data
            # C[r, c], C[r, c+16], ... and C[r, c+NR-1]: every line of an unaligned row
            for offset in (*range(0, nr, 16), nr - 1):
                at = builder.gep(ptr, [llvm_ir.Constant(i64, offset)])
                builder.call(prefetch, [builder.bitcast(at, i8p), *flags])
            return context.get_dummy_value()

        return signature, codegen

    def _float32_matrices(*arrays) -> bool:
        return all(
            isinstance(x, types.Array) and x.ndim == 2 and x.dtype == types.float32
            for x in arrays
        )

    def _panel_and_source(context, builder, signature, args):
        """For the copies ``panel[p, ...] ← M[r + i, c ...]``: the pointer to
        ``panel[p, 0]``, and a function of ``i`` giving the pointer to
        ``M[r + i, c]``."""
        panel, p, M, r, c = args
        ty = signature.args
        p, r, c = (
            context.cast(builder, x, t, types.intp)
            for x, t in ((p, ty[1]), (r, ty[3]), (c, ty[4]))
        )
        out = context.make_array(ty[0])(context, builder, panel)
        src = context.make_array(ty[2])(context, builder, M)
        zero = llvm_ir.Constant(i64, 0)
        to = cgutils.get_item_pointer(context, builder, ty[0], out, [p, zero])

        def source_row(i):
            row = builder.add(r, llvm_ir.Constant(i64, i))
            return cgutils.get_item_pointer(context, builder, ty[2], src, [row, c])

        return to, source_row

    @intrinsic
    def copy_row(typingctx, panel, p, M, r, c):
        """``panel[p, :] = M[r, c:c+NR]`` in NR / LANES vector loads and stores, for
        float32 matrices with contiguous rows: the copy of one step p when packing
        (a plain loop of NR floats would compile to NR scalar moves, as the
        micro-kernel's loops do)."""
        if not _float32_matrices(panel, M):
            return None
        signature = types.void(panel, p, M, r, c)

        def codegen(context, builder, signature, args):
            to, source_row = _panel_and_source(context, builder, signature, args)
            row = source_row(0)
            for v in range(nr // lanes):
                offset = [llvm_ir.Constant(i64, v * lanes)]
                x = builder.bitcast(builder.gep(row, offset), vector.as_pointer())
                y = builder.bitcast(builder.gep(to, offset), vector.as_pointer())
                builder.store(builder.load(x, align=4), y, align=4)
            return context.get_dummy_value()

        return signature, codegen

    def _shuffle(builder, x, y, mask):
        mask = llvm_ir.Constant(llvm_ir.VectorType(i32, len(mask)), list(mask))
        return builder.shuffle_vector(x, y, mask)

    def _transposed(builder, rows):
        """The ``mr × 8`` block in ``rows`` (mr vectors of 8 floats, mr even) as the mr
        vectors of its columns one after another (column 0's mr floats, column 1's,
        ...), in 3·mr two-operand shuffles, one instruction each with AVX: each half
        (128 bits, 4 columns) is transposed on its own, by pairs of rows."""
        lo, hi = (0, 8, 1, 9, 4, 12, 5, 13), (2, 10, 3, 11, 6, 14, 7, 15)
        # pair q (rows 2q, 2q+1) in 2-float units (a_j, b_j): columns 0, 1 | 4, 5 in
        # unpcklps, columns 2, 3 | 6, 7 in unpckhps
        pairs = [
            (_shuffle(builder, x, y, lo), _shuffle(builder, x, y, hi))
            for x, y in zip(rows[0::2], rows[1::2])
        ]
        half = len(pairs)  # units per column
        units = [  # (vector, offset in its half) of each unit, in output order
            (pairs[q][j // 2], 2 * (j % 2)) for j in range(4) for q in range(half)
        ]
        chunks = []  # 4 floats of the output per half: two units each
        for (x, i), (y, k) in zip(units[0::2], units[1::2]):
            mask = (i, i + 1, 8 + k, 9 + k, 4 + i, 5 + i, 12 + k, 13 + k)
            chunks.append(_shuffle(builder, x, y, mask))
        first, second = (0, 1, 2, 3, 8, 9, 10, 11), (4, 5, 6, 7, 12, 13, 14, 15)
        pairs = list(zip(chunks[0::2], chunks[1::2]))
        return [_shuffle(builder, x, y, first) for x, y in pairs] + [
            _shuffle(builder, x, y, second) for x, y in pairs
        ]

    @intrinsic
    def transpose_block(typingctx, panel, p, M, r, c):
        """``panel[p:p+LANES, :] = M[r:r+MR, c:c+LANES]ᵀ``: MR vector loads (one per
        row of M), the transpose in registers, MR vector stores, for float32 matrices
        with contiguous rows, ``panel``'s rows also consecutive (MR floats apart, as in
        a packed micro-panel of A). The plain loop, MR · LANES scalar loads and stores,
        was the cost of packing A. Shuffles for an even MR and 8 lanes (AVX2's 6 × 16
        tile); other tiles store the elements one by one."""
        if not _float32_matrices(panel, M):
            return None
        signature = types.void(panel, p, M, r, c)

        def codegen(context, builder, signature, args):
            to, source_row = _panel_and_source(context, builder, signature, args)
            rows = [
                builder.load(
                    builder.bitcast(source_row(i), vector.as_pointer()), align=4
                )
                for i in range(mr)
            ]
            if mr % 2 == 0 and lanes == 8:
                for v, x in enumerate(_transposed(builder, rows)):
                    at = builder.gep(to, [llvm_ir.Constant(i64, v * lanes)])
                    builder.store(x, builder.bitcast(at, vector.as_pointer()), align=4)
            else:
                for j in range(lanes):
                    for i in range(mr):
                        x = builder.extract_element(rows[i], llvm_ir.Constant(i32, j))
                        at = builder.gep(to, [llvm_ir.Constant(i64, j * mr + i)])
                        builder.store(x, at, align=4)
            return context.get_dummy_value()

        return signature, codegen

    return zero_tile, fma_row, update_row, prefetch_row, copy_row, transpose_block


_INTRINSICS = (
    "zero_tile",
    "fma_row",
    "update_row",
    "prefetch_row",
    "copy_row",
    "transpose_block",
)
(zero_tile, fma_row, update_row, prefetch_row, copy_row, transpose_block) = (
    _tile_intrinsics(MR, NR, LANES)
)


@_jit
def micro_kernel(kb, a, b, C, i0, j0, alpha, beta):
    """The MR × NR tile of C at (i0, j0) ← alpha · Σ_p a[p, :]ᵀ b[p, :] + beta · C, for
    a: (kb, MR) and b: (kb, NR) with contiguous rows (packed micro-panels, or views of
    A and B), and C with contiguous rows. ``beta = 0`` ignores C's old values.

    The tile ``acc`` lives in registers for all ``kb`` steps; each step is one outer
    product: MR broadcasts of A times NR/LANES vector loads of B, MR · NR/LANES vector
    FMA instructions.
    """
    for i in range(MR):
        prefetch_row(C, i0 + i, j0)  # C's tile arrives during the FMAs
    acc = zero_tile()  # MR × NR float32 zeros, kept in registers
    for p in range(kb):
        for i in range(MR):
            fma_row(acc, i, a[p, i], b, p)  # acc[i, :] += a[p, i] · b[p, :]
    for i in range(MR):
        update_row(C, i0 + i, j0, alpha, acc, i, beta)  # C[i0+i, j0:j0+NR] ← ...


@_jit
def edge_tile(kb, a, b, C, i0, j0, mr, nr, alpha, beta, scratch):
    """An edge tile, only ``mr × nr`` of it inside C: the micro-kernel computes the
    whole tile into ``scratch`` (MR × NR), and the corner that exists is added to C."""
    origin = np.intp(0)  # typed like i0 and j0: one compiled micro-kernel, not two
    micro_kernel(kb, a, b, scratch, origin, origin, alpha, np.float32(0))
    for i in range(mr):
        for j in range(nr):
            old = beta * C[i0 + i, j0 + j] if beta != 0 else np.float32(0)
            C[i0 + i, j0 + j] = scratch[i, j] + old


@_jit
def edge_update(A, B, C, alpha, rows, cols, pc, kb):
    """C[rows, cols] += alpha · A[rows, pc:pc+kb] B[pc:pc+kb, cols], loops i-k-j: the
    strips of C narrower than a tile, for the variant that does not pack."""
    for i in range(rows[0], rows[1]):
        for p in range(pc, pc + kb):
            a = alpha * A[i, p]
            for j in range(cols[0], cols[1]):
                C[i, j] += a * B[p, j]


@_jit
def gemm_register(A, B, C, alpha, beta, mc, kc, nc):
    """Step 4, register blocking in the cache blocks of step 3, without copies: the
    micro-kernel reads ``A[i0:i0+MR, p]`` (MR rows, k floats apart) and ``B[p,
    j0:j0+NR]`` (one row piece per step p, n floats apart) where they are. The strips
    of C narrower than a tile go through ``edge_update``."""
    m, k = A.shape
    n = B.shape[1]
    scale(C, beta)
    one = np.float32(1)
    for jc in range(0, n, nc):
        nb = min(nc, n - jc)
        n_full = jc + nb // NR * NR
        for pc in range(0, k, kc):
            kb = min(kc, k - pc)
            for ic in range(0, m, mc):
                mb = min(mc, m - ic)
                m_full = ic + mb // MR * MR
                for j0 in range(jc, n_full, NR):
                    b = B[pc : pc + kb, j0 : j0 + NR]
                    for i0 in range(ic, m_full, MR):
                        a = A[i0 : i0 + MR, pc : pc + kb].T
                        micro_kernel(kb, a, b, C, i0, j0, alpha, one)
                edge_update(A, B, C, alpha, (ic, m_full), (n_full, jc + nb), pc, kb)
                edge_update(A, B, C, alpha, (m_full, ic + mb), (jc, jc + nb), pc, kb)


# --------------------------------------------------------------------------------------
# Step 5: packing (GotoBLAS / BLIS)
# --------------------------------------------------------------------------------------


@_jit
def pack_a(A, ic, pc, mb, kb, Ap):
    """Copy the block ``A[ic:ic+mb, pc:pc+kb]`` into micro-panels ``Ap[s, p, i] = A[ic +
    s·MR + i, pc + p]`` of MR rows: the micro-kernel then reads MR consecutive floats
    per step p. ``Ap``: at least (⌈mb / MR⌉, kb, MR), float32; short panels are
    zero-padded. Any code that writes this layout can feed :func:`micro_kernel`.

    A transpose: whole panels go LANES steps at a time through ``transpose_block``
    (MR vector loads of A, shuffles, MR vector stores: 2-2.4 times as fast as element
    by element on the Zen 3 host); the steps left over and the short panel, element
    by element.
    """
    whole = kb // LANES * LANES  # the steps p that transpose_block copies
    if A.strides[1] != 4 or Ap.strides[1] != 4 * MR or Ap.strides[2] != 4:
        whole = 0  # rows not contiguous: transpose_block cannot read or write them
    for s in range((mb + MR - 1) // MR):
        r, rows = ic + s * MR, min(MR, mb - s * MR)
        panel = Ap[s]  # (kb, MR)
        start = whole if rows == MR else 0
        for p in range(0, start, LANES):  # panel[p:p+LANES] = A[r:r+MR, ...]ᵀ
            transpose_block(panel, p, A, r, pc + p)
        block = A[r : r + rows, pc : pc + kb]
        for p in range(start, kb):  # the rest; zeros below the matrix
            for i in range(MR):
                panel[p, i] = block[i, p] if i < rows else 0


@_jit
def pack_b(B, pc, jc, kb, nb, Bp):
    """Copy the panel ``B[pc:pc+kb, jc:jc+nb]`` into micro-panels ``Bp[t, p, j] = B[pc +
    p, jc + t·NR + j]`` of NR columns, each one contiguous (kb × NR floats). ``Bp``: at
    least (⌈nb / NR⌉, kb, NR), float32; narrow panels are zero-padded.

    Eight rows of B at a time, across all the micro-panels: the kb rows of one
    micro-panel are n floats apart, a page apart once n ≥ 1024, while eight rows stay
    in the TLB across the whole width."""
    whole = nb // NR  # micro-panels NR wide: NR / LANES vector loads and stores a row
    for p0 in range(0, kb, 8):  # eight rows of B, across the whole micro-panels
        for t in range(whole):
            panel = Bp[t]  # (kb, NR)
            for p in range(p0, min(p0 + 8, kb)):
                copy_row(panel, p, B, pc + p, jc + t * NR)  # panel[p, :] = B[pc + p, …]
    for t in range(whole, (nb + NR - 1) // NR):  # the narrow one: zeros right of B
        j0, width = jc + t * NR, nb - t * NR
        panel = Bp[t]
        for p in range(kb):
            for j in range(NR):
                panel[p, j] = B[pc + p, j0 + j] if j < width else 0


@_jit
def macro_kernel(kb, Ap, Bp, C, ic, jc, mb, nb, alpha, beta, scratch):
    """Loops 2 and 1 around the micro-kernel: the ``mb × nb`` block of C at (ic, jc) ←
    alpha · (packed block of A) (packed panel of B) + beta · C, one MR × NR tile at a
    time, from ``Ap`` (⌈mb / MR⌉ micro-panels of :func:`pack_a`) and ``Bp`` (⌈nb / NR⌉
    of :func:`pack_b`), both of depth ``kb``. The tiles that stick out of the block go
    through :func:`edge_tile` (``scratch``: an MR × NR buffer)."""
    for t in range((nb + NR - 1) // NR):  # loop 2 (jr): micro-panels of B
        for s in range((mb + MR - 1) // MR):  # loop 1 (ir): micro-panels of A
            i0, j0 = ic + s * MR, jc + t * NR
            mr, nr = min(MR, ic + mb - i0), min(NR, jc + nb - j0)
            if mr == MR and nr == NR:
                micro_kernel(kb, Ap[s], Bp[t], C, i0, j0, alpha, beta)
            else:
                edge_tile(kb, Ap[s], Bp[t], C, i0, j0, mr, nr, alpha, beta, scratch)


@_jit
def gemm_packed(A, B, C, alpha, beta, mc, kc, nc):
    """Step 5, the five loops around the micro-kernel (GotoBLAS/BLIS):

    jc over column panels of B (nc wide, in L3) → pc over depth (kc, pack B) → ic over
    row blocks of A (mc tall, pack A, in L2) → :func:`macro_kernel`: jr over
    micro-panels of B (NR wide, in L1) → ir over micro-panels of A (MR tall) →
    micro-kernel.
    """
    m, k = A.shape
    n = B.shape[1]
    Ap = np.empty(((min(mc, m) + MR - 1) // MR, min(kc, k), MR), dtype=np.float32)
    Bp = np.empty(((min(nc, n) + NR - 1) // NR, min(kc, k), NR), dtype=np.float32)
    scratch = np.empty((MR, NR), dtype=np.float32)
    for jc in range(0, n, nc):
        nb = min(nc, n - jc)
        for pc in range(0, k, kc):
            kb = min(kc, k - pc)
            beta_pc = beta if pc == 0 else np.float32(1)  # then accumulate
            pack_b(B, pc, jc, kb, nb, Bp)
            for ic in range(0, m, mc):
                mb = min(mc, m - ic)
                pack_a(A, ic, pc, mb, kb, Ap)
                macro_kernel(kb, Ap, Bp, C, ic, jc, mb, nb, alpha, beta_pc, scratch)


# --------------------------------------------------------------------------------------
# Step 6: threads
# --------------------------------------------------------------------------------------


@_jit(parallel=True)
def gemm_parallel(A, B, C, alpha, beta, mc, kc, nc):
    """Step 6, ``gemm_packed`` with threads: B's panel is packed by all threads
    together, then the row blocks of C are shared out (``prange``), each thread packing
    its own block of A into its own buffer. Different row blocks write different rows of
    C, so no two threads write the same element. (:func:`sgemm` picks ``mc`` so that the
    number of row blocks is a multiple of the thread count: :func:`balanced_mc`.)"""
    m, k = A.shape
    n = B.shape[1]
    blocks = (m + mc - 1) // mc
    Bp = np.empty(((min(nc, n) + NR - 1) // NR, min(kc, k), NR), dtype=np.float32)
    for jc in range(0, n, nc):
        nb = min(nc, n - jc)
        for pc in range(0, k, kc):
            kb = min(kc, k - pc)
            beta_pc = beta if pc == 0 else np.float32(1)  # then accumulate
            for t in prange((nb + NR - 1) // NR):
                pack_b(B, pc, jc + t * NR, kb, min(NR, nb - t * NR), Bp[t : t + 1])
            for blk in prange(blocks):
                ic = blk * mc
                mb = min(mc, m - ic)
                Ap = np.empty(((mb + MR - 1) // MR, kb, MR), dtype=np.float32)
                scratch = np.empty((MR, NR), dtype=np.float32)  # this thread's
                pack_a(A, ic, pc, mb, kb, Ap)
                macro_kernel(kb, Ap, Bp, C, ic, jc, mb, nb, alpha, beta_pc, scratch)


def balanced_mc(m: int, mc: int, threads: int, mr: int = MR) -> int:
    """Rows per block, a multiple of ``mr`` and at most about ``mc``, such that the
    ``m`` rows split into a number of blocks that is a multiple of ``threads`` (so no
    thread idles at the end)."""
    blocks = _ceil_div(_ceil_div(m, mc), threads) * threads
    rows = _ceil_div(m, blocks)  # rows per block, then rounded up to a multiple of MR
    return max(mr, _ceil_div(rows, mr) * mr)


def _ceil_div(a: int, b: int) -> int:
    """⌈a / b⌉ for positive integers."""
    return -(-a // b)


# The kernels that depend on the tile, in the order they call each other.
_TILED = (
    "micro_kernel",
    "edge_tile",
    "gemm_register",
    "pack_a",
    "pack_b",
    "macro_kernel",
    "gemm_packed",
    "gemm_parallel",
)


@functools.lru_cache(maxsize=None)
def with_tile(tile: RegisterTile) -> _pytypes.SimpleNamespace:
    """The tile-dependent kernels (``micro_kernel``, ``gemm_register``, ``pack_a``,
    ``pack_b``, ``macro_kernel``, ``gemm_packed``, ``gemm_parallel``) compiled for
    ``tile`` instead of the host's ``TILE``, as attributes of a namespace (plus
    ``tile``).

    The same source, with MR, NR and LANES bound to the tile's values: numba compiles
    module constants into the code, so another tile needs another compilation (not
    cached on disk). On a host narrower than the tile's vectors, LLVM splits each
    vector instruction into several: the AVX-512 tile's code path runs, correctly and
    slowly, on an AVX2 host.
    """
    if not isinstance(tile, RegisterTile):
        raise TypeError(f"with_tile: expected a RegisterTile, got {tile!r}")
    for name in ("mr", "nr", "lanes"):
        value = getattr(tile, name)
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"with_tile: {name} must be a positive integer: {tile}")
    if tile.nr % tile.lanes:
        raise ValueError(
            f"with_tile: NR = {tile.nr} is not a multiple of the {tile.lanes} lanes"
        )
    if tile == TILE:
        return _pytypes.SimpleNamespace(
            tile=TILE, **{name: globals()[name] for name in _TILED}
        )
    return _compile_tiled(tile)


@functools.lru_cache(maxsize=None)
def _compile_tiled(tile: RegisterTile) -> _pytypes.SimpleNamespace:
    """Fresh (uncached) compilations of the tile-dependent kernels for ``tile``."""
    if numba is None:
        raise ImportError(_NUMBA_MISSING)
    namespace = dict(globals())
    namespace.update(MR=int(tile.mr), NR=int(tile.nr), LANES=int(tile.lanes))
    intrinsics = _tile_intrinsics(int(tile.mr), int(tile.nr), int(tile.lanes))
    namespace.update(zip(_INTRINSICS, intrinsics))
    for name in _TILED:
        source = globals()[name].py_func
        copy = _pytypes.FunctionType(
            source.__code__, namespace, name, source.__defaults__, source.__closure__
        )
        copy.__doc__ = source.__doc__
        namespace[name] = numba.njit(
            fastmath={"contract"}, parallel=name == "gemm_parallel"
        )(copy)
    return _pytypes.SimpleNamespace(
        tile=tile, **{name: namespace[name] for name in _TILED}
    )


def micro_kernel_asm(tile: RegisterTile | None = None) -> str:
    """The x86 (or other host) assembly of the micro-kernel for ``tile`` (default: the
    host's), for the argument types ``gemm_packed`` calls it with: compiled afresh,
    since numba does not show the assembly of kernels loaded from its disk cache. Count
    its vector FMAs with :func:`vector_fma_counts` (``MR · NR / LANES`` per step p,
    unrolled or not)."""
    tiled = _compile_tiled(with_tile(tile or TILE).tile)
    t = tiled.tile
    a = np.ones((8, t.mr), dtype=np.float32)  # packed micro-panels, as gemm_packed's
    b = np.ones((8, t.nr), dtype=np.float32)
    C = np.zeros((t.mr, t.nr), np.float32)
    i0 = j0 = np.intp(0)
    tiled.micro_kernel(np.intp(8), a, b, C, i0, j0, np.float32(1), np.float32(0))
    return "\n".join(tiled.micro_kernel.inspect_asm().values())


@functools.lru_cache(maxsize=None)
def _micro_driver(kernel):
    """A compiled loop calling ``kernel`` (a micro-kernel) ``calls`` times."""

    def drive(calls, kb, a, b, C, alpha, beta):
        for _ in range(calls):
            kernel(kb, a, b, C, 0, 0, alpha, beta)

    return numba.njit(fastmath={"contract"})(drive)


def micro_kernel_sweep(
    tiles, kb: int = 256, *, calls: int = 200, rounds: int = 20
) -> dict[RegisterTile, float]:
    """GFLOP/s of the micro-kernel alone for each tile in ``tiles``, timed **side by
    side**: ``calls`` calls in a compiled loop on one pair of packed micro-panels of
    depth ``kb`` that stay in L1, each tile timed once per round, ``rounds`` rounds,
    each tile keeping its fastest. Interleaving spreads every tile's runs over the
    whole sweep, so a burst of load from another process slows all the tiles in some
    rounds instead of one tile in all of its runs. The register file decides the
    rates: a tile whose accumulators do not fit spills, one with fewer than latency ×
    units accumulators leaves the FMA units idle."""
    if numba is None:
        raise ImportError(_NUMBA_MISSING)
    runs = {}
    for tile in tiles:
        t = with_tile(tile).tile
        drive = _micro_driver(with_tile(tile).micro_kernel)
        a = np.full((kb, t.mr), 1e-3, dtype=np.float32)
        b = np.full((kb, t.nr), 1e-3, dtype=np.float32)
        C = np.zeros((t.mr, t.nr), dtype=np.float32)
        one = np.float32(1)
        drive(1, kb, a, b, C, one, one)  # compile
        runs[t] = functools.partial(drive, calls, kb, a, b, C, one, one)
    best = dict.fromkeys(runs, math.inf)
    for _ in range(rounds):
        for t, run in runs.items():
            best[t] = min(best[t], _best_time(run, 1))
    return {t: gemm_flops(t.mr, t.nr, kb) * calls / best[t] / 1e9 for t in runs}


def micro_kernel_gflops(
    tile: RegisterTile | None = None, kb: int = 256, *, calls: int = 200, repeats=20
) -> float:
    """GFLOP/s of the micro-kernel alone for ``tile`` (default: the host's): best of
    ``repeats`` runs of ``calls`` calls (see :func:`micro_kernel_sweep`, which times
    several tiles side by side)."""
    t = with_tile(tile or TILE).tile
    return micro_kernel_sweep([t], kb, calls=calls, rounds=repeats)[t]


KERNELS = {
    "naive": gemm_naive,
    "ikj": gemm_ikj,
    "blocked": gemm_blocked,
    "register": gemm_register,
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
    """The checks of :func:`sgemm`, done once at the boundary: ``(A, B, C, α, β)``,
    with A and B in row-major order (transposed or strided inputs copied: an O(mk + kn)
    copy next to O(mnk) work) and C allocated when it is None."""
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
    return np.ascontiguousarray(A), np.ascontiguousarray(B), C, alpha, beta


def _kernel_for(variant: str, tile: RegisterTile | None):
    """The compiled kernel of ``variant`` (the tiled ones compiled for ``tile``,
    default the host's, by :func:`with_tile`) and the tile it uses."""
    tiled = with_tile(tile or TILE)
    if variant in ("register", "packed", "parallel"):
        return getattr(tiled, f"gemm_{variant}"), tiled.tile
    return KERNELS[variant], tiled.tile


def sgemm(
    A,
    B,
    C=None,
    alpha=1.0,
    beta=0.0,
    variant: str = "packed",
    *,
    blocks: BlockSizes | None = None,
    tile: RegisterTile | None = None,
):
    """``C ← αAB + βC`` in single precision with the tiny BLAS; returns C.

    A: (m, k), B: (k, n), C: (m, n), all float32 (no silent casting; transposed or
    strided A and B are copied to row-major order). ``C=None`` allocates the result
    (then ``beta`` must be 0); a given C is updated in place, and ``beta = 0`` ignores
    its old contents. ``variant``: one of ``VARIANTS``. ``blocks``: the cache block
    sizes, used as given (default: :func:`block_sizes`, balanced to the shape).
    ``tile``: another register tile (default: the host's ``TILE``, see
    :func:`with_tile`).
    """
    # checked once, here; transposed or strided A and B are copied to row-major order
    A, B, C, alpha, beta = _sgemm_operands(A, B, C, alpha, beta, variant)
    kernel, tile = _kernel_for(variant, tile)
    out = C if C.flags.c_contiguous else np.ascontiguousarray(C)
    m, k = A.shape
    n = B.shape[1]
    if m == 0 or n == 0:
        return C
    if alpha == 0 or k == 0:  # BLAS: A and B are not read at all
        scale(out, beta)
    elif variant in ("naive", "ikj"):
        kernel(A, B, out, alpha, beta)
    else:  # cache blocks from the caches, balanced to the shape
        kernel(A, B, out, alpha, beta, *_blocks_for(variant, m, n, k, blocks, tile))
    if out is not C:
        C[...] = out  # C was not contiguous: the result computed in a copy
    return C


def _blocks_for(variant, m, n, k, blocks, tile):
    """``(mc, kc, nc)`` for one call: ``blocks`` as given, or the defaults balanced to
    the shape; for "parallel", ``mc`` also balanced over the threads."""
    if blocks is not None:
        if not isinstance(blocks, BlockSizes):
            raise TypeError(f"sgemm: blocks must be a BlockSizes, got {blocks!r}")
        if min(blocks.mc, blocks.kc, blocks.nc) < 1:
            raise ValueError(f"sgemm: block sizes must be positive, got {blocks}")
        mc, kc, nc = blocks.mc, blocks.kc, blocks.nc
    else:
        b = _default_blocks(variant, tile)
        step = (1, 1) if variant == "blocked" else (tile.mr, tile.nr)
        kc = balanced_block(k, b.kc)
        mc = balanced_block(m, b.mc, step[0])
        nc = balanced_block(n, b.nc, step[1])
    if variant == "parallel":
        mc = balanced_mc(m, mc, numba.get_num_threads(), tile.mr)
    return int(mc), int(kc), int(nc)


def _matmul_operands(a, b):
    """The checks of :func:`matmul` (float32 NumPy arrays of at least one dimension,
    inner dimensions that agree), with 1-D operands promoted as ``numpy.matmul`` does:
    ``(a, b, squeeze)``, where ``squeeze`` lists the axes to drop from the result."""
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
    squeeze = []
    if b.ndim == 1:  # a column, removed afterwards
        b, squeeze = b[:, None], [-1]
    if a.ndim == 1:  # a row, removed afterwards
        a, squeeze = a[None, :], [-2, *squeeze]
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(
            f"matmul: inner dimensions differ: a is {a.shape}, b is {b.shape}"
        )
    return a, b, tuple(squeeze)


def _stacked(gemm, a, b):
    """One ``gemm`` per matrix of the broadcast batch axes of ``a`` and ``b``."""
    try:
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ValueError(
            f"matmul: batch axes do not broadcast: a is {a.shape}, b is {b.shape}"
        ) from None
    a = np.broadcast_to(a, batch + a.shape[-2:])
    b = np.broadcast_to(b, batch + b.shape[-2:])
    out = np.empty(batch + (a.shape[-2], b.shape[-1]), dtype=np.float32)
    for index in np.ndindex(*batch):
        gemm(a[index], b[index], out[index])
    return out


def matmul(a, b, variant: str = "packed"):
    """``numpy.matmul(a, b)`` for float32 arrays (1-D operands, broadcast batch axes),
    every 2-D product done by :func:`sgemm`: the GEMM backend of
    :mod:`cnnbook.functional` and the layers (``gemm=cnnbook.blas.matmul``).
    """
    a, b, squeeze = _matmul_operands(a, b)
    gemm = functools.partial(sgemm, variant=variant)
    (m, k), n = a.shape[-2:], b.shape[-1]
    if b.ndim == 2:  # a matrix, or a stack of them, times one matrix: all rows at once
        out = gemm(a.reshape(-1, k), b).reshape(*a.shape[:-2], m, n)
    elif a.ndim == 2:  # one matrix times a stack: the stack side by side, (k, batch·n)
        wide = np.moveaxis(b, -2, 0).reshape(k, -1)
        out = gemm(a, wide).reshape(m, *b.shape[:-2], n)
        out = np.ascontiguousarray(np.moveaxis(out, 0, -2))
    else:
        out = _stacked(gemm, a, b)
    return out.squeeze(squeeze) if squeeze else out


# --------------------------------------------------------------------------------------
# The machine's yardsticks: measured FMA peak, streaming bandwidth, FMA counts
# --------------------------------------------------------------------------------------


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
    ``(tiles, chains · lanes)``: every vector of the buffer loaded once per pass and
    accumulated (an FMA with 1) into one of ``chains`` independent vector accumulators,
    kept in registers with the micro-kernel's intrinsics, so the loop is bound by
    loads, not by the latency of the adds. (Plain loops over a stack tile were
    measured to keep the tile in memory here: a load and a store per vector, half the
    L1 read bandwidth.)"""
    if numba is None:
        raise ImportError(_NUMBA_MISSING)
    tile_zero, tile_fma, *_ = _tile_intrinsics(chains, lanes, lanes)

    def read_sum(x, passes):
        rows = x.reshape(x.shape[0] * chains, lanes)  # one vector per row
        acc = tile_zero()
        one = np.float32(1)
        for _ in range(passes):
            for t in range(x.shape[0]):
                for i in range(chains):
                    tile_fma(acc, i, one, rows, t * chains + i)  # acc[i] += row
        tile = numba.carray(acc, (chains * lanes,))
        total = np.float32(0)
        for j in range(chains * lanes):
            total += tile[j]
        return total

    return numba.njit(nogil=True, fastmath={"contract"})(read_sum)


def _aligned_ones(shape, align: int = 64) -> np.ndarray:
    """float32 ones whose first element sits on an ``align``-byte boundary. NumPy
    aligns small arrays to 16 bytes only; a 32-byte vector load that straddles two
    cache lines costs two, which halved the measured L1 bandwidth in some runs."""
    count = int(np.prod(shape))
    raw = np.empty(count + align // 4, dtype=np.float32)
    start = (-raw.ctypes.data % align) // 4
    out = raw[start : start + count].reshape(shape)
    out[...] = 1
    return out


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
    parts = _aligned_ones((threads, tiles, width))  # pages touched
    single = _stream_kernels(chains, lanes)
    single(parts[0], 1)  # compile and warm the caches
    passes = _calibrate(lambda count: single(parts[0], count), 1, seconds)
    rate = _per_thread_rate(lambda i, n: single(parts[i], n), threads, passes, repeats)
    return rate * parts[0].nbytes / 1e9  # passes/s × bytes per pass


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


def fma_loop(asm: str) -> list[str]:
    """The instructions of the loop in ``asm`` (x86 assembly, numba's ``inspect_asm()``)
    that holds the most packed FMAs, from its label to the jump back to it, without
    labels, directives and comments: for :func:`micro_kernel_asm`, the kc loop (which
    LLVM unrolls, so it holds several steps p). Empty when no loop has a packed FMA."""
    lines = [line.split("#", 1)[0].strip() for line in asm.splitlines()]
    labels, best, most = {}, [], 0
    for index, line in enumerate(lines):
        if line.endswith(":"):
            labels[line[:-1]] = index
            continue
        parts = line.split()
        if len(parts) == 2 and parts[0].startswith("j") and parts[1] in labels:
            body = [
                op
                for op in lines[labels[parts[1]] + 1 : index + 1]
                if op and not op.endswith(":") and not op.startswith(".")
            ]
            counts = vector_fma_counts("\n".join(body))
            fmas = counts["zmm"] + counts["ymm"] + counts["xmm"]
            if fmas > most:
                best, most = body, fmas
    return best


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
