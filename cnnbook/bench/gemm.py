"""Benchmark section ``gemm`` (Chapter 10): the tiny BLAS against numpy's float32 GEMM.

Every variant of :mod:`cnnbook.blas` and ``numpy.matmul`` are timed in this one run, on
square ``n × n`` float32 matrices and on the GEMM shapes the seed model's training step
really multiplies (im2col convolution and the linear layer, batch 64). numpy's BLAS is
limited to one thread (threadpoolctl) for the single-thread ratios and given two for the
comparison with ``variant="parallel"`` (``numba.set_num_threads(2)``). OPENBLAS_*
variables are never touched. Also here: :func:`peak_estimate`, the CPU's float32 peak
from its clock, SIMD width and FMA units.
"""

from __future__ import annotations

import contextlib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import blas
from . import Table, best_time

try:
    import numba
except ImportError:  # pragma: no cover
    numba = None
try:
    from threadpoolctl import threadpool_info, threadpool_limits
except ImportError:  # pragma: no cover
    threadpool_info = threadpool_limits = None

__all__ = [
    "SIZES",
    "QUICK_SIZES",
    "PARALLEL_THREADS",
    "PeakEstimate",
    "peak_estimate",
    "blas_kernel_name",
    "threads",
    "gflops",
    "sweep",
    "seed_model_shapes",
    "run",
]

SIZES = (64, 128, 256, 384, 512, 768, 1024)
QUICK_SIZES = (64, 128, 256, 512)
NAIVE_MAX = 512  # the naive loops take seconds beyond this
PARALLEL_THREADS = 2
SINGLE = ("naive", "ikj", "blocked", "packed")  # the one-thread steps


@contextlib.contextmanager
def threads(n: int):
    """Run the block with ``n`` threads for numpy's BLAS and for numba; restore them
    afterwards."""
    saved = numba.get_num_threads() if numba is not None else None
    limits = (
        threadpool_limits(n)
        if threadpool_limits is not None
        else contextlib.nullcontext()
    )
    try:
        with limits:
            if numba is not None:
                numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
            yield
    finally:
        if saved is not None:
            numba.set_num_threads(saved)


def blas_kernel_name() -> str:
    """Which BLAS numpy uses and the CPU kernel it picked (threadpoolctl), e.g.
    'openblas (Haswell)'."""
    if threadpool_info is None:
        return "unknown (threadpoolctl not installed)"
    libs = [lib for lib in threadpool_info() if lib.get("user_api") == "blas"]
    # SciPy may load a BLAS of its own; numpy's is the one in numpy's folder
    libs.sort(key=lambda lib: "numpy" not in str(lib.get("filepath", "")))
    if not libs:
        return "unknown"
    arch = libs[0].get("architecture")
    name = f"{libs[0].get('internal_api')} {libs[0].get('version', '')}".strip()
    return name + (f" ({arch} kernels)" if arch else "")


@dataclass
class PeakEstimate:
    """float32 peak = clock × SIMD lanes × 2 (an FMA is two flops) × FMA units."""

    clock_ghz: float
    clock_source: str
    lanes: int
    simd: str
    fma_units: int
    assumptions: list[str] = field(default_factory=list)

    @property
    def flops_per_cycle(self) -> int:
        return self.lanes * 2 * self.fma_units

    @property
    def gflops(self) -> float:
        return self.clock_ghz * self.flops_per_cycle

    def with_clock(self, ghz: float, source: str) -> "PeakEstimate":
        return PeakEstimate(
            ghz, source, self.lanes, self.simd, self.fma_units, list(self.assumptions)
        )


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def peak_estimate(fma_units: int = 2) -> PeakEstimate:
    """float32 peak of one core from what Linux tells: the CPU flags and a clock.

    SIMD width from the flags in /proc/cpuinfo (avx512f: 16 float32 lanes, avx/avx2: 8,
    else 4). Clock: the maximum from cpufreq if the system exposes it, otherwise the
    "cpu MHz" line of /proc/cpuinfo (in a virtual machine usually the nominal clock:
    turbo may run faster). FMA units per core cannot be read from the system:
    ``fma_units`` is assumed (2 on current x86 server cores) and listed in
    ``assumptions``.
    """
    cpuinfo = _read("/proc/cpuinfo")
    flags = (
        set(re.search(r"^flags\s*:(.*)$", cpuinfo, re.M).group(1).split())
        if "flags" in cpuinfo
        else set()
    )
    if "avx512f" in flags:
        lanes, simd = 16, "AVX-512 (512-bit)"
    elif "avx" in flags:
        lanes, simd = 8, "AVX2 (256-bit)" if "avx2" in flags else "AVX (256-bit)"
    else:
        lanes, simd = 4, "SSE (128-bit)"
    assumptions = [f"{fma_units} FMA units per core (not readable from the system)"]
    if "fma" not in flags:
        assumptions.append(
            "no FMA flag: counted as if multiply and add issued together"
        )
    max_khz = _read("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").strip()
    if max_khz.isdigit():
        clock, source = int(max_khz) / 1e6, "cpufreq maximum"
    else:
        mhz = re.search(r"^cpu MHz\s*:\s*([\d.]+)", cpuinfo, re.M)
        clock, source = (
            (float(mhz.group(1)) / 1000, "/proc/cpuinfo 'cpu MHz'")
            if mhz
            else (3.0, "assumed")
        )
        assumptions.append(
            "clock from /proc/cpuinfo: nominal; turbo clocks are not visible here"
        )
    if "avx512f" in flags:
        assumptions.append(
            "full-width 512-bit FMA units"
            " (some cores split AVX-512 into two 256-bit halves)"
        )
    return PeakEstimate(round(clock, 3), source, lanes, simd, fma_units, assumptions)


def gflops(fn, m: int, n: int, k: int, *, repeat: int = 5) -> float:
    """GFLOP/s of ``fn()`` computing an (m, k) @ (k, n) product (2mnk flops), best of
    ``repeat``."""
    return blas.gemm_flops(m, n, k) / best_time(fn, repeat=repeat) / 1e9


def _operands(m: int, k: int, n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((m, k), dtype=np.float32)
    B = rng.standard_normal((k, n), dtype=np.float32)
    return A, B, np.empty((m, n), dtype=np.float32)


def sweep(
    sizes=SIZES,
    variants=blas.VARIANTS,
    *,
    repeat: int = 5,
    naive_max: int = NAIVE_MAX,
    parallel_threads: int = PARALLEL_THREADS,
) -> dict[str, list[float]]:
    """GFLOP/s of ``numpy`` (1 thread), every variant, and ``numpy 2T``
    (``parallel_threads``) on square matrices of each size. "parallel" runs with
    ``parallel_threads`` threads, the other variants need one. Sizes above ``naive_max``
    give NaN for "naive"."""
    out = {
        "n": list(sizes),
        "numpy": [],
        **{v: [] for v in variants},
        f"numpy {parallel_threads}T": [],
    }
    for n in sizes:
        A, B, C = _operands(n, n, n)
        with threads(1):
            out["numpy"].append(
                gflops(lambda: np.matmul(A, B, out=C), n, n, n, repeat=repeat)
            )
            for v in variants:
                if v == "parallel":
                    continue
                if v == "naive" and n > naive_max:
                    out[v].append(math.nan)
                    continue
                out[v].append(
                    gflops(
                        lambda: blas.sgemm(A, B, C, variant=v), n, n, n, repeat=repeat
                    )
                )
        with threads(parallel_threads):
            out[f"numpy {parallel_threads}T"].append(
                gflops(lambda: np.matmul(A, B, out=C), n, n, n, repeat=repeat)
            )
            if "parallel" in variants:
                out["parallel"].append(
                    gflops(
                        lambda: blas.sgemm(A, B, C, variant="parallel"),
                        n,
                        n,
                        n,
                        repeat=repeat,
                    )
                )
    return out


def seed_model_shapes(batch: int = 64) -> list[tuple[str, int, int, int]]:
    """(name, m, k, n) of the 2-D GEMMs in one training step of ``models.seed_cnn()``
    (defaults:
    1×28×28 input, 8 filters 3×3 with padding 1, 2×2 pooling, 10 classes) with the
    batched im2col convolution of :mod:`cnnbook.functional` (as
    :func:`cnnbook.blas.matmul` folds them)."""
    F, CKK, L = 8, 1 * 3 * 3, 28 * 28
    features, classes = F * 14 * 14, 10
    NL = batch * L
    return [
        ("conv forward   W @ cols", F, CKK, NL),
        ("conv dW        dout @ cols^T", F, NL, CKK),
        ("conv dcols     W^T @ dout", CKK, F, NL),
        ("linear forward x @ W^T", batch, features, classes),
        ("linear dx      dout @ W", batch, classes, features),
        ("linear dW      dout^T @ x", classes, batch, features),
    ]


def run(quick: bool = False) -> list[Table]:
    if numba is None:
        table = Table("Tiny BLAS (SGEMM)", ["note"])
        table.add("skipped: numba is not installed")
        return [table]
    sizes = QUICK_SIZES if quick else SIZES
    repeat = 3 if quick else 5
    T = PARALLEL_THREADS
    res = sweep(sizes, repeat=repeat, naive_max=256 if quick else NAIVE_MAX)
    square = Table(
        f"SGEMM n×n float32, GFLOP/s (numpy: {blas_kernel_name()})",
        [
            "n",
            "numpy 1T",
            *SINGLE,
            "packed/numpy",
            f"numpy {T}T",
            f"parallel {T}T",
            f"parallel/numpy {T}T",
        ],
    )
    for i, n in enumerate(res["n"]):
        row = [res[v][i] for v in ("numpy", *SINGLE)]
        square.add(
            n,
            *["—" if math.isnan(g) else g for g in row],
            res["packed"][i] / res["numpy"][i],
            res[f"numpy {T}T"][i],
            res["parallel"][i],
            res["parallel"][i] / res[f"numpy {T}T"][i],
        )
    if 512 in res["n"]:
        i = res["n"].index(512)
        square.notes.append(
            "n = 512: packed / numpy 1 thread = "
            f"{res['packed'][i] / res['numpy'][i]:.2f} "
            f"(goal ≥ 0.60); parallel {T}T / numpy 1 thread = "
            f"{res['parallel'][i] / res['numpy'][i]:.2f}, / numpy {T}T = "
            f"{res['parallel'][i] / res[f'numpy {T}T'][i]:.2f}"
        )
    peak = peak_estimate()
    square.notes.append(
        f"float32 peak estimate {peak.gflops:.0f} GFLOP/s per core"
        f" at {peak.clock_ghz} GHz "
        f"({peak.clock_source}), {peak.simd}, {peak.fma_units} FMA units assumed"
    )

    shapes = Table(
        "Seed model's GEMMs (batch 64), GFLOP/s",
        ["product", "m", "k", "n", "numpy 1T", "packed", "packed/numpy"],
    )
    for name, m, k, n in seed_model_shapes():
        A, B, C = _operands(m, k, n)
        with threads(1):
            g_np = gflops(lambda: np.matmul(A, B, out=C), m, n, k, repeat=repeat)
            g_tb = gflops(
                lambda: blas.sgemm(A, B, C, variant="packed"), m, n, k, repeat=repeat
            )
        shapes.add(name, m, k, n, g_np, g_tb, g_tb / g_np)
    shapes.notes.append(
        f"the micro-kernel computes {blas.MR}×{blas.NR} tiles:"
        " a side of 8, 9 or 10 is padded, "
        "so skinny products waste most of each tile"
    )
    return [square, shapes]
