"""The tiny BLAS (cnnbook.blas): every variant equals numpy.matmul within float32
tolerance."""

import functools
import math
import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

pytest.importorskip("numba")

from cnnbook import blas, machine  # noqa: E402

VARIANTS = blas.VARIANTS
# Small blocks, so that small matrices already cross several block boundaries of every
# loop.
SMALL = blas.BlockSizes(mc=2 * blas.MR, kc=16, nc=2 * blas.NR)
# Blocks that are not multiples of the tile: tiles end at the block's edge inside C.
RAGGED = blas.BlockSizes(mc=blas.MR + 1, kc=7, nc=blas.NR + 3)


def reference(A, B, C=None, alpha=1.0, beta=0.0):
    out = alpha * (A.astype(np.float64) @ B.astype(np.float64))
    if C is not None and beta != 0:
        out += beta * C.astype(np.float64)
    return out


def assert_gemm_close(got, A, B, C=None, alpha=1.0, beta=0.0):
    """float32 rounding grows with the length k of each sum: tolerance ∝ k · eps ·
    |terms|."""
    k = A.shape[1]
    expected = reference(A, B, C, alpha, beta)
    scale = abs(alpha) * (np.abs(A).astype(np.float64) @ np.abs(B).astype(np.float64))
    if C is not None and beta != 0:
        scale += abs(beta) * np.abs(C)
    tol = 4 * (k + 2) * np.finfo(np.float32).eps * scale + 1e-30
    assert got.dtype == np.float32
    assert got.shape == expected.shape
    assert np.all(np.abs(got - expected) <= tol), np.max(np.abs(got - expected) - tol)


def rand(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


SHAPES = [
    (1, 1, 1),
    (1, 7, 1),
    (5, 1, 3),
    (1, 1, 9),  # 1-sized
    (16, 16, 16),
    (64, 64, 64),  # square
    (7, 13, 5),
    (13, 50, 130),
    (130, 17, 3),
    (3, 40, 200),  # rectangular, not multiples of blocks
    (blas.MR + 1, 33, blas.NR + 1),
    (2 * blas.MR, 16, 2 * blas.NR),  # just over / exactly one block
]


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("m,k,n", SHAPES)
def test_matches_numpy(variant, m, k, n):
    rng = np.random.default_rng(m * 10_000 + k * 100 + n)
    A, B = rand(rng, m, k), rand(rng, k, n)
    got = blas.sgemm(A, B, variant=variant)
    assert_gemm_close(got, A, B)
    if variant in ("blocked", "register", "packed", "parallel"):
        assert_gemm_close(blas.sgemm(A, B, variant=variant, blocks=SMALL), A, B)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize(
    "alpha,beta",
    [(1.0, 0.0), (2.5, 0.0), (1.0, 1.0), (-0.5, 3.0), (0.0, 2.0), (0.75, -1.0)],
)
@pytest.mark.parametrize("blocks", [SMALL, RAGGED], ids=["small", "ragged"])
def test_alpha_beta(variant, alpha, beta, blocks):
    rng = np.random.default_rng(1)
    A, B, C = rand(rng, 23, 41), rand(rng, 41, 70), rand(rng, 23, 70)
    original = C.copy()
    out = blas.sgemm(A, B, C, alpha=alpha, beta=beta, variant=variant, blocks=blocks)
    assert out is C  # updated in place
    assert_gemm_close(C, A, B, original, alpha, beta)


@pytest.mark.parametrize("variant", VARIANTS)
def test_beta_zero_ignores_old_contents(variant):
    rng = np.random.default_rng(2)
    A, B = rand(rng, 9, 8), rand(rng, 8, 7)
    C = np.full((9, 7), np.nan, dtype=np.float32)
    blas.sgemm(A, B, C, beta=0.0, variant=variant)
    assert_gemm_close(C, A, B)


@pytest.mark.parametrize("variant", VARIANTS)
def test_k_zero_and_empty(variant):
    A, B = np.zeros((4, 0), np.float32), np.zeros((0, 3), np.float32)
    C = np.ones((4, 3), np.float32)
    blas.sgemm(A, B, C, beta=2.0, variant=variant)
    np.testing.assert_array_equal(C, 2.0)
    assert blas.sgemm(
        np.zeros((0, 5), np.float32), np.zeros((5, 3), np.float32), variant=variant
    ).shape == (0, 3)


@pytest.mark.parametrize("variant", ["naive", "register", "packed", "parallel"])
def test_transposed_and_strided_inputs_are_copied(variant):
    rng = np.random.default_rng(3)
    A = rand(rng, 31, 19).T  # (19, 31), Fortran order: a transposed view
    B = rand(rng, 62, 90)[::2, ::3]  # (31, 30), strided in both axes
    assert not A.flags.c_contiguous and not B.flags.c_contiguous
    assert_gemm_close(blas.sgemm(A, B, variant=variant), A, B)
    # a non-contiguous C is updated in place, and the elements between its columns are
    # untouched
    Cbig = rand(rng, 19, 60)
    before = Cbig.copy()
    C = Cbig[:, ::2]
    blas.sgemm(A, B, C, alpha=0.5, beta=1.0, variant=variant)
    assert_gemm_close(Cbig[:, ::2], A, B, before[:, ::2], 0.5, 1.0)
    np.testing.assert_array_equal(Cbig[:, 1::2], before[:, 1::2])


def test_validation_messages():
    A = np.ones((3, 4), np.float32)
    B = np.ones((4, 5), np.float32)
    with pytest.raises(TypeError, match="float64"):
        blas.sgemm(A.astype(np.float64), B)
    with pytest.raises(TypeError, match="int64"):
        blas.sgemm(A, B.astype(np.int64))
    with pytest.raises(TypeError, match="numpy array"):
        blas.sgemm(A.tolist(), B)
    with pytest.raises(ValueError, match=r"2-D.*\(4,\)"):
        blas.sgemm(A, B[:, 0])
    with pytest.raises(
        ValueError, match=r"inner dimensions differ: A is \(3, 4\), B is \(5, 4\)"
    ):
        blas.sgemm(A, B.T)
    with pytest.raises(ValueError, match=r"C has shape \(5, 3\), expected \(3, 5\)"):
        blas.sgemm(A, B, np.zeros((5, 3), np.float32))
    with pytest.raises(ValueError, match="beta"):
        blas.sgemm(A, B, beta=1.0)
    with pytest.raises(ValueError, match="unknown variant 'fast'"):
        blas.sgemm(A, B, variant="fast")
    with pytest.raises(TypeError, match="alpha"):
        blas.sgemm(A, B, alpha="2")
    with pytest.raises(ValueError, match="finite"):
        blas.sgemm(A, B, alpha=np.inf)
    with pytest.raises(ValueError, match="shares memory"):
        S = np.ones((4, 4), np.float32)
        blas.sgemm(S, S, S)
    readonly = np.zeros((3, 5), np.float32)
    readonly.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        blas.sgemm(A, B, readonly)


@given(
    m=st.integers(1, 20),
    k=st.integers(1, 40),
    n=st.integers(1, 80),
    variant=st.sampled_from(VARIANTS),
    alpha=st.floats(-2, 2),
    beta=st.sampled_from([0.0, 1.0, -0.5]),
    seed=st.integers(0, 2**16),
    blocks=st.builds(
        blas.BlockSizes,
        mc=st.integers(1, 3 * blas.MR),
        kc=st.integers(1, 24),
        nc=st.integers(1, 3 * blas.NR),
    ),
)
def test_property_matches_numpy(m, k, n, variant, alpha, beta, seed, blocks):
    """Any shape, any block sizes: blocks that are not multiples of the register tile
    end inside a tile, which must then be an edge tile of the block, not of C."""
    rng = np.random.default_rng(seed)
    A, B, C = rand(rng, m, k), rand(rng, k, n), rand(rng, m, n)
    original = C.copy()
    blas.sgemm(A, B, C, alpha=alpha, beta=beta, variant=variant, blocks=blocks)
    assert_gemm_close(C, A, B, original, alpha, beta)


@pytest.mark.parametrize(
    "a_shape,b_shape",
    [
        ((5, 7), (7, 3)),
        ((4, 5, 7), (7, 3)),
        ((5, 7), (4, 7, 3)),
        ((4, 5, 7), (4, 7, 3)),
        ((1, 5, 7), (4, 7, 3)),
        ((2, 1, 5, 7), (3, 7, 2)),
        ((7,), (7, 3)),
        ((5, 7), (7,)),
        ((7,), (7,)),
    ],
)
def test_matmul_semantics(a_shape, b_shape):
    rng = np.random.default_rng(4)
    a, b = rand(rng, *a_shape), rand(rng, *b_shape)
    expected = np.matmul(a.astype(np.float64), b.astype(np.float64))
    for mm in (blas.matmul, functools.partial(blas.matmul, variant="parallel")):
        got = mm(a, b)
        assert got.shape == expected.shape and got.dtype == np.float32
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_matmul_errors():
    a = np.ones((2, 3), np.float32)
    with pytest.raises(TypeError, match="single precision"):
        blas.matmul(a.astype(np.float64), a.T)
    with pytest.raises(ValueError, match="inner dimensions"):
        blas.matmul(a, a)
    with pytest.raises(ValueError, match="broadcast"):
        blas.matmul(np.ones((2, 2, 3), np.float32), np.ones((3, 3, 2), np.float32))


def _write_cache(root, name, **files):
    index = root / name
    index.mkdir()
    for key, value in files.items():
        (index / key).write_text(str(value) + "\n")


def test_cache_and_block_sizes(tmp_path):
    _write_cache(
        tmp_path,
        "index0",
        level=1,
        type="Data",
        size="32K",
        coherency_line_size=64,
        ways_of_associativity=8,
    )
    _write_cache(tmp_path, "index1", level=1, type="Instruction", size="32K")
    _write_cache(
        tmp_path,
        "index2",
        level=2,
        type="Unified",
        size="1024K",
        ways_of_associativity=8,
    )
    caches = blas.cache_sizes(tmp_path)
    assert (caches.l1d, caches.l2, caches.line, caches.source) == (
        32768,
        1 << 20,
        64,
        "sysfs",
    )
    assert (caches.l1_ways, caches.l2_ways) == (8, 8)
    assert caches.l3_ways == blas._FALLBACK_CACHES.l3_ways  # no L3 given
    assert blas.cache_sizes(tmp_path / "missing").source == "fallback"
    for variant in ("blocked", "register", "packed", "parallel"):
        b = blas.block_sizes(variant, caches)
        assert min(b.mc, b.kc, b.nc) > 0
    packed = blas.block_sizes("packed", caches)
    assert packed.mc % blas.MR == 0 and packed.nc % blas.NR == 0
    with pytest.raises(ValueError, match="naive"):
        blas.block_sizes("naive")
    assert blas.balanced_mc(512, 126, 2) % blas.MR == 0
    assert (-(-512 // blas.balanced_mc(512, 126, 2))) % 2 == 0
    assert blas.gemm_flops(2, 3, 4) == 48


def test_block_sizes_follow_the_blis_model():
    # Haswell/Zen-like caches: 32 KiB 8-way L1 (4 KiB per way), 512 KiB 8-way L2,
    # 32 MiB 16-way L3, 64-byte lines; the AVX2 tile 6 x 16.
    caches = blas.CacheSizes(
        l1d=32 << 10, l2=512 << 10, l3=32 << 20, line=64, source="test"
    )
    tile = blas.register_tile(16, 8)
    b = blas.block_sizes("packed", caches, tile)
    # 7 ways of 4 KiB for the two micro-panels: 5 for B's (kc * 16 * 4 <= 20480) and
    # 2 for A's (kc * 6 * 4 <= 8192): kc = 320; the closed form, floor(7 / (1 + 16/6))
    # = 1 way for A's, would give 4096 / (4 * 6) = 170
    assert b.kc == min(5 * 4096 // 64, 2 * 4096 // 24) == 320
    # L2: the B micro-panel (320 * 16 * 4 bytes) takes 1 of 8 ways, one way streams:
    # 6 ways of 64 KiB for the mc x kc block of A
    assert b.mc == 6 * 65536 // (4 * 320) // 6 * 6
    assert b.mc * b.kc * 4 <= caches.l2 and b.nc == blas.NC_MAX
    # AVX-512's 14 x 32 tile with a 48 KiB 12-way L1: 7 ways for B's micro-panel
    # (kc * 32 * 4 <= 28672) and 4 for A's (kc * 14 * 4 <= 16384)
    wide = blas.CacheSizes(
        l1d=48 << 10, l2=1 << 20, l3=32 << 20, line=64, source="test", l1_ways=12
    )
    b512 = blas.block_sizes("packed", wide, blas.register_tile(32, 16))
    assert b512.kc == min(7 * 4096 // 128, 4 * 4096 // 56) // 8 * 8 == 224
    assert b512.mc % 14 == 0 and b512.nc % 32 == 0


def test_balanced_block():
    assert blas.balanced_block(512, 168) == 171  # 3 blocks, not 3 and a sliver
    assert blas.balanced_block(100, 168) == 100  # one block: the whole dimension
    assert blas.balanced_block(512, 582, 6) == 516  # a multiple of MR
    for size in range(1, 600, 7):
        for block in (8, 64, 168):
            b = blas.balanced_block(size, block)
            assert b <= max(size, 1.25 * block + 1)
            assert -(-size // b) <= -(-size // block)


def test_import_without_numba_gives_clear_error():
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['numba'] = None\n"
        "import numpy as np\n"
        "from cnnbook import blas\n"
        "assert not blas.HAVE_NUMBA\n"
        "try:\n"
        "    blas.sgemm(np.ones((2, 2), np.float32), np.ones((2, 2), np.float32))\n"
        "except ImportError as err:\n"
        "    print(err)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "needs numba" in out.stdout or "numba, which is not installed" in out.stdout


def test_layers_with_tiny_blas_backend_match_numpy():
    from cnnbook import functional as F
    from cnnbook import layers, models

    rng = np.random.default_rng(5)
    x = rng.random((4, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, 4)
    grads = {}
    for name, gemm in (("numpy", None), ("tiny", blas.matmul)):
        model = models.seed_cnn(rng=0, gemm=gemm)
        loss = layers.SoftmaxCrossEntropy()
        logits = model.forward(x)
        loss.forward(logits, y)
        model.backward(loss.backward())
        grads[name] = {
            "logits": logits,
            **{k: g.copy() for k, _, g in model.named_parameters()},
        }
    for key, want in grads["numpy"].items():
        np.testing.assert_allclose(
            grads["tiny"][key],
            want,
            rtol=1e-4,
            atol=1e-5 * np.abs(want).max(),
            err_msg=key,
        )
    # the functional level, with the same upstream gradient: conv2d_backward and
    # linear_backward
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    xc = rng.standard_normal((2, 2, 7, 6)).astype(np.float32)
    dout = rng.standard_normal((2, 3, 4, 3)).astype(np.float32)
    for a, b in zip(
        F.conv2d_backward(dout, xc, w, stride=2, padding=1),
        F.conv2d_backward(dout, xc, w, stride=2, padding=1, gemm=blas.matmul),
    ):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)
    W = rng.standard_normal((5, 8)).astype(np.float32)
    xl = rng.standard_normal((3, 8)).astype(np.float32)
    dl = rng.standard_normal((3, 5)).astype(np.float32)
    np.testing.assert_allclose(
        F.linear(xl, W, gemm=blas.matmul), F.linear(xl, W), rtol=1e-5, atol=1e-5
    )
    for a, b in zip(
        F.linear_backward(dl, xl, W), F.linear_backward(dl, xl, W, gemm=blas.matmul)
    ):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------------------
# The machine's yardsticks (issue 17): no timing is asserted, only sanity and errors
# --------------------------------------------------------------------------------------

FAST = {"seconds": 0.002, "repeats": 1}


@pytest.mark.parametrize("threads", [1, os.cpu_count() or 1])
def test_peak_gflops_is_positive_and_finite(threads):
    peak = blas.peak_gflops(threads, **FAST)
    assert isinstance(peak, float) and math.isfinite(peak) and peak > 0


@pytest.mark.parametrize(
    "fn", [blas.peak_gflops, functools.partial(blas.stream_bandwidth, 64 * 1024)]
)
def test_yardsticks_reject_bad_threads(fn):
    for bad in (0, -1, (os.cpu_count() or 1) + 1):
        with pytest.raises(ValueError, match="threads"):
            fn(threads=bad, **FAST)
    for bad in (1.0, "2", True, None):
        with pytest.raises(TypeError, match="threads"):
            fn(threads=bad, **FAST)


def test_peak_gflops_rejects_unsupported_dtypes():
    for bad in (np.float64, np.int32, np.complex64, "float16"):
        with pytest.raises(TypeError, match="float32"):
            blas.peak_gflops(dtype=bad, **FAST)
    with pytest.raises(TypeError, match="dtype"):
        blas.peak_gflops(dtype="no such type", **FAST)


def test_peak_kernel_is_packed_fmas_in_registers():
    _, bits, registers = machine.vector_isa()
    counts = blas.vector_fma_counts(blas.peak_kernel_asm())
    assert counts["scalar"] == 0, counts
    widest = {512: "zmm", 256: "ymm", 128: "xmm"}.get(bits)
    if widest is None or not machine.cpu_flags() & {"fma", "avx512f"}:
        pytest.skip(f"no x86 FMA vectors on this host ({bits}-bit)")
    # LLVM may prefer 256-bit vectors on some AVX-512 CPUs (Skylake-X): the kernel must
    # still be all packed FMAs, one per independent accumulator, in whichever width.
    packed = counts["zmm"] + counts["ymm"] if bits >= 256 else counts["xmm"]
    assert packed >= blas.peak_accumulators(registers), counts


def test_vector_fma_counts():
    asm = (
        "\tvfmadd231ps\t%zmm1, %zmm2, %zmm3\n"
        "\tvfmadd213ps\t%ymm1, %ymm11, %ymm14\n"
        "\tvfmadd231ps\t(%rax), %ymm1, %ymm2\n"
        "\tvfmadd213ss\t%xmm1, %xmm0, %xmm2\n"
        "\tvfmadd231pd\t%xmm1, %xmm0, %xmm2\n"
        "\tvmulps\t%ymm1, %ymm2, %ymm3\n"
    )
    assert blas.vector_fma_counts(asm) == {"zmm": 1, "ymm": 2, "xmm": 1, "scalar": 1}


@pytest.mark.parametrize("nbytes", [16 * 1024, 256 * 1024, 4 * 1024 * 1024])
def test_stream_bandwidth_is_positive_and_finite(nbytes):
    for threads in sorted({1, os.cpu_count() or 1}):
        gbs = blas.stream_bandwidth(nbytes, threads, **FAST)
        assert isinstance(gbs, float) and math.isfinite(gbs) and gbs > 0


def test_stream_bandwidth_rejects_bad_sizes():
    for bad in (0, -4096, 16, 1 << 60):
        with pytest.raises(ValueError, match="nbytes"):
            blas.stream_bandwidth(bad, **FAST)
    for bad in (4096.0, "4096", True, None):
        with pytest.raises(TypeError, match="nbytes"):
            blas.stream_bandwidth(bad, **FAST)


def test_register_tile_avx2_and_avx512():
    avx2 = blas.register_tile(16, 8)  # 16 ymm registers of 8 floats
    assert (avx2.mr, avx2.nr) == (6, 16)  # BLIS's Haswell/Zen sgemm tile
    assert (avx2.accumulators, avx2.registers) == (12, 15)
    avx512 = blas.register_tile(32, 16)  # 32 zmm registers of 16 floats
    assert avx512.registers <= 32 and avx512.nr % 16 == 0
    assert avx512.accumulators >= blas.FMA_LATENCY * blas.FMA_UNITS
    assert avx512.mr * avx512.nr > avx2.mr * avx2.nr
    assert (avx512.mr, avx512.nr) == (14, 32)
    # the host's tile, from cnnbook.machine
    _, bits, registers = machine.vector_isa()
    assert blas.register_tile() == blas.register_tile(registers, bits // 32)


@pytest.mark.parametrize("lanes", [1, 2, 4, 8, 16])
def test_register_tile_fits_the_register_file(lanes):
    for registers in range(3, 65):
        tile = blas.register_tile(registers, lanes)
        assert tile.mr >= 1 and tile.nr >= lanes and tile.nr % lanes == 0
        assert tile.lanes == lanes
        # accumulators + one row of B + one broadcast of A fit in the register file
        assert tile.mr * tile.nr // lanes + tile.nr // lanes + 1 <= registers
        if registers >= 2 * blas.FMA_LATENCY * blas.FMA_UNITS:
            # enough registers: the tile hides the FMA latency, and its loads (MR
            # broadcasts + NR/lanes vectors) do not outnumber its FMAs
            assert tile.accumulators >= blas.FMA_LATENCY * blas.FMA_UNITS
            assert tile.mr + tile.vectors <= tile.accumulators


def test_register_tile_rejects_bad_arguments():
    with pytest.raises(ValueError, match="3 at least"):
        blas.register_tile(2, 8)
    for bad in (0, -16):
        with pytest.raises(ValueError, match="vector_registers"):
            blas.register_tile(bad, 8)
        with pytest.raises(ValueError, match="vector_lanes"):
            blas.register_tile(16, bad)
    with pytest.raises(TypeError, match="vector_lanes"):
        blas.register_tile(16, 8.0)
    with pytest.raises(TypeError, match="latency"):
        blas.register_tile(16, 8, latency="4")


# --------------------------------------------------------------------------------------
# Every ISA's register tile, forced on this host (with_tile / sgemm(tile=...))
# --------------------------------------------------------------------------------------

FORCED_TILES = {
    "avx2": blas.register_tile(16, 8),  # 6 x 16
    "avx512": blas.register_tile(32, 16),  # 14 x 32: 16-lane vectors, split on AVX2
    "neon": blas.register_tile(32, 4),  # 9 x 12: 128-bit vectors, three a row
    "odd": blas.RegisterTile(mr=5, nr=8, lanes=8),  # an odd MR, one vector a row
}
# (SSE's 6 x 8 tile of 4 lanes is derived in test_register_tile_fits_the_register_file
# but not compiled here: 4-lane vectors are neon's, two vectors a row AVX2's, and each
# forced tile costs seconds of compilation.)
TILE_SHAPES = [(1, 1, 1), (7, 13, 5), (31, 40, 70), (64, 64, 64), (45, 17, 97)]
# Every forced tile through both single-thread tiled variants; the parallel variant
# runs the same micro-kernel, edge tiles and packing over row blocks shared out by
# prange, so one forced tile (odd MR, other NR than the host's) shows that its loops
# follow the tile: each compilation of gemm_parallel costs seconds.
TILE_CASES = [(name, v) for name in FORCED_TILES for v in ("register", "packed")]
TILE_CASES.append(("odd", "parallel"))


@pytest.mark.parametrize("name,variant", TILE_CASES)
def test_every_tile_matches_numpy(name, variant):
    tile = FORCED_TILES[name]
    rng = np.random.default_rng(len(name))
    for m, k, n in TILE_SHAPES + [(tile.mr + 1, 19, tile.nr + 1)]:
        A, B, C = rand(rng, m, k), rand(rng, k, n), rand(rng, m, n)
        assert_gemm_close(blas.sgemm(A, B, variant=variant, tile=tile), A, B)
        blocks = blas.BlockSizes(mc=2 * tile.mr, kc=16, nc=2 * tile.nr)
        original = C.copy()
        blas.sgemm(
            A, B, C, alpha=-0.5, beta=2.0, variant=variant, blocks=blocks, tile=tile
        )
        assert_gemm_close(C, A, B, original, -0.5, 2.0)
        C[...] = np.nan  # beta = 0 ignores C, even NaN
        blas.sgemm(A, B, C, alpha=1.5, variant=variant, blocks=blocks, tile=tile)
        assert_gemm_close(C, A, B, None, 1.5)


def test_with_tile():
    host = blas.with_tile(blas.TILE)
    assert host.micro_kernel is blas.micro_kernel and host.tile == blas.TILE
    forced = blas.with_tile(FORCED_TILES["avx512"])
    assert forced.tile.mr == 14 and forced.micro_kernel is not blas.micro_kernel
    assert blas.with_tile(FORCED_TILES["avx512"]) is forced  # compiled once
    with pytest.raises(TypeError, match="RegisterTile"):
        blas.with_tile((6, 16))
    with pytest.raises(ValueError, match="multiple"):
        blas.with_tile(blas.RegisterTile(mr=6, nr=12, lanes=8))
    with pytest.raises(ValueError, match="positive"):
        blas.with_tile(blas.RegisterTile(mr=0, nr=16, lanes=8))
    with pytest.raises(TypeError, match="BlockSizes"):
        blas.sgemm(
            np.ones((2, 2), np.float32), np.ones((2, 2), np.float32), blocks=(1,)
        )


def test_packing_layout():
    """pack_a / pack_b write the documented layout (what an implicit im2col must
    produce to reuse the micro-kernel)."""
    rng = np.random.default_rng(9)
    MR, NR = blas.MR, blas.NR
    A, B = rand(rng, 2 * MR + 1, 10), rand(rng, 10, 2 * NR + 3)
    Ap = np.full((3, 7, MR), np.nan, np.float32)
    blas.pack_a(A, 0, 2, A.shape[0], 7, Ap)
    for s in range(3):
        for p in range(7):
            for i in range(MR):
                r = s * MR + i
                assert Ap[s, p, i] == (A[r, 2 + p] if r < A.shape[0] else 0)
    Bp = np.full((3, 7, NR), np.nan, np.float32)
    blas.pack_b(B, 3, 0, 7, B.shape[1], Bp)
    for t in range(3):
        for j in range(NR):
            c = t * NR + j
            want = B[3:10, c] if c < B.shape[1] else 0
            np.testing.assert_array_equal(Bp[t, :, j], want)


def pack_a_reference(A, ic, pc, mb, kb, Ap, mr):
    """What pack_a must leave in ``Ap`` (a copy): ``Ap[s, p, i] = A[ic + s·mr + i, pc +
    p]``, zeros for rows past mb, everything else untouched."""
    out = Ap.copy()
    for s in range(-(-mb // mr)):
        rows = np.zeros((mr, kb), np.float32)
        live = min(mr, mb - s * mr)
        rows[:live] = A[ic + s * mr : ic + s * mr + live, pc : pc + kb]
        out[s, :kb] = rows.T
    return out


# (ic, pc, mb, kb): whole panels, odd sizes and offsets, fewer than LANES steps, one
# short panel only, a single element
PACK_A_CASES = [(0, 0, 48, 64), (3, 5, 37, 29), (1, 2, 18, 8), (0, 0, 5, 3)]
PACK_A_CASES += [(7, 1, 60, 70), (2, 3, 24, 17), (0, 0, 1, 1), (11, 0, 13, 40)]


PACK_A_TILES = {"host": blas.TILE, **FORCED_TILES}
PACK_A_TILES["mr4"] = blas.RegisterTile(mr=4, nr=16, lanes=8)  # one of implicit's


@pytest.mark.parametrize("name", PACK_A_TILES)
def test_pack_a_matches_reference(name):
    """pack_a, for every tile: the documented layout for odd sizes and offsets,
    zero-filled rows past mb, nothing written outside the first ⌈mb / MR⌉ panels and
    kb steps (implicit.py packs into slices of a deeper buffer)."""
    tiled = blas.with_tile(PACK_A_TILES[name])
    mr = tiled.tile.mr
    rng = np.random.default_rng(17)
    A = rand(rng, 75, 111)
    for ic, pc, mb, kb in PACK_A_CASES:
        Ap = np.full((-(-mb // mr) + 1, kb + 3, mr), np.nan, np.float32)
        want = pack_a_reference(A, ic, pc, mb, kb, Ap, mr)
        tiled.pack_a(A, ic, pc, mb, kb, Ap)
        np.testing.assert_array_equal(Ap, want, err_msg=f"{ic, pc, mb, kb}")
    # Ap a slice of a 4-D buffer, as implicit.py packs depth block q into Ap[q]
    deep = np.full((3, -(-40 // mr), 33, mr), np.nan, np.float32)
    want = deep.copy()
    for q in range(3):
        want[q] = pack_a_reference(A, 2, 32 * q, 40, 32, deep[q], mr)
        tiled.pack_a(A, 2, 32 * q, 40, 32, deep[q])
    np.testing.assert_array_equal(deep, want)


def test_pack_a_strided_operands():
    """pack_a reads A and writes Ap through their strides: column-major and strided
    views of A (no contiguous rows to load vectors from) and a strided Ap give the same
    panels as a contiguous copy."""
    rng = np.random.default_rng(18)
    MR = blas.MR
    A = rand(rng, 64, 90)
    for view in (np.asfortranarray(A), rand(rng, 64, 180)[:, ::2]):
        view[...] = A
        for ic, pc, mb, kb in PACK_A_CASES[:4]:
            Ap = np.full((-(-mb // MR), kb, MR), np.nan, np.float32)
            want = pack_a_reference(A, ic, pc, mb, kb, Ap, MR)
            blas.pack_a(view, ic, pc, mb, kb, Ap)
            np.testing.assert_array_equal(Ap, want)
    wide = np.full((2, 16, 2 * MR), np.nan, np.float32)
    Ap = wide[:, :, ::2]  # steps MR floats apart, but not consecutive elements
    want = pack_a_reference(A, 0, 0, 2 * MR, 16, Ap, MR)
    blas.pack_a(A, 0, 0, 2 * MR, 16, Ap)
    np.testing.assert_array_equal(Ap, want)


@pytest.mark.parametrize("name", ["host", "odd"])
def test_pack_b_matches_reference(name):
    """pack_b: the documented layout for depths that are not multiples of its groups
    of 8 rows, odd offsets, a narrow last panel (zeros), nothing written outside the
    first ⌈nb / NR⌉ panels and kb steps, and one panel at a time (gemm_parallel)."""
    tiled = blas.with_tile(blas.TILE if name == "host" else FORCED_TILES[name])
    nr = tiled.tile.nr
    rng = np.random.default_rng(19)
    B = rand(rng, 70, 5 * nr + 7)
    for pc, jc, kb, nb in [
        (0, 0, 70, B.shape[1]),
        (3, 5, 29, 3 * nr + 2),
        (1, 2, 8, nr),
    ]:
        Bp = np.full((-(-nb // nr) + 1, kb + 3, nr), np.nan, np.float32)
        want = Bp.copy()
        for t in range(-(-nb // nr)):
            cols = np.zeros((kb, nr), np.float32)
            width = min(nr, nb - t * nr)
            cols[:, :width] = B[pc : pc + kb, jc + t * nr : jc + t * nr + width]
            want[t, :kb] = cols
        tiled.pack_b(B, pc, jc, kb, nb, Bp)
        np.testing.assert_array_equal(Bp, want, err_msg=f"{pc, jc, kb, nb}")
        one = np.full_like(Bp, np.nan)
        for t in range(-(-nb // nr)):  # as gemm_parallel packs: a panel per thread
            width = min(nr, nb - t * nr)
            tiled.pack_b(B, pc, jc + t * nr, kb, width, one[t : t + 1])
        np.testing.assert_array_equal(one, want)


def test_micro_kernel_is_vector_fmas():
    """The host's micro-kernel: at least MR · NR / LANES packed FMAs per step p (the
    loop may be unrolled), none of them scalar in the kc loop."""
    counts = blas.vector_fma_counts(blas.micro_kernel_asm())
    _, bits, _ = machine.vector_isa()
    if not machine.cpu_flags() & {"fma", "avx512f"}:
        pytest.skip("no x86 FMA on this host")
    packed = counts["zmm"] + counts["ymm"] + counts["xmm"]
    assert packed >= blas.MR * blas.NR // blas.LANES, counts
    # a forced wider tile still compiles to packed FMAs (split into host vectors)
    wide = blas.vector_fma_counts(blas.micro_kernel_asm(FORCED_TILES["avx512"]))
    assert wide["zmm"] + wide["ymm"] >= 14 * 32 // 16, wide


def test_fma_loop_of_the_micro_kernel():
    """fma_loop finds the kc loop: whole steps of MR · NR / LANES packed FMAs and no
    store to memory (the tile stays in registers)."""
    if not machine.cpu_flags() & {"fma", "avx512f"}:
        pytest.skip("no x86 FMA on this host")
    loop = blas.fma_loop(blas.micro_kernel_asm())
    counts = blas.vector_fma_counts("\n".join(loop))
    packed = counts["zmm"] + counts["ymm"] + counts["xmm"]
    assert packed > 0 and packed % blas.TILE.accumulators == 0, counts
    assert not [op for op in loop if op.startswith("vmov") and op.endswith(")")]
    assert loop[-1].split()[0].startswith("j")  # ends with the jump back
    asm = "f:\n.LBB0_1:\n\tvfmadd231ps %ymm1, %ymm2, %ymm3 # c\n\tjne .LBB0_1\n\tret\n"
    assert blas.fma_loop(asm) == ["vfmadd231ps %ymm1, %ymm2, %ymm3", "jne .LBB0_1"]
    assert blas.fma_loop("\tvfmadd231ss %xmm1, %xmm2, %xmm3\n") == []
