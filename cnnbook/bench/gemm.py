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
import functools
import math
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import blas
from . import Table, _calls_per_round, _seconds_per_call, best_time, best_times

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
    "headline",
    "unforced_numpy",
    "run",
]

SIZES = (64, 128, 256, 384, 512, 768, 1024)
QUICK_SIZES = (64, 128, 256, 512)
NAIVE_MAX = 512  # the naive loops take seconds beyond this
PARALLEL_THREADS = 2
SINGLE = ("naive", "ikj", "blocked", "register", "packed")  # the one-thread steps


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
    min_time: float = 0.02,
) -> dict[str, list[float]]:
    """GFLOP/s of ``numpy`` (1 thread), every variant, and ``numpy 2T``
    (``parallel_threads``) on square matrices of each size. "parallel" runs with
    ``parallel_threads`` threads, the other variants need one. Sizes above ``naive_max``
    give NaN for "naive".

    Every cell (size, contender) is timed **side by side** with all the others: each of
    ``repeat`` rounds times every cell once (calls lasting at least ``min_time``
    seconds; the one-thread cells, then the multi-thread ones) and each cell keeps its
    fastest round, so a burst of load from another process slows all the cells in some
    rounds instead of one cell in all of its rounds. The multi-thread cells get four
    times the rounds, each a quarter as long: a parallel region waits for its slowest
    thread, so on a shared machine only short runs find every core free (see
    :func:`cnnbook.blas.peak_gflops`)."""
    T = parallel_threads
    names = ["numpy", *variants, f"numpy {T}T"]
    groups: dict[int, dict] = {1: {}, T: {}}  # thread count -> {(name, n): fn}
    for n in sizes:
        A, B, C = _operands(n, n, n)
        for name in names:
            if name == "naive" and n > naive_max:
                continue
            if name.startswith("numpy"):
                fn = functools.partial(np.matmul, A, B, out=C)
            else:
                fn = functools.partial(blas.sgemm, A, B, C, variant=name)
            multi = name in ("parallel", f"numpy {T}T")
            groups[T if multi else 1][name, n] = fn
    number, best, warm = {}, {}, set()
    for t, fns in groups.items():
        with threads(t):
            for key, fn in fns.items():
                if key[0] not in warm:  # compile once, at the smallest size
                    fn()
                    warm.add(key[0])
                sample = min_time if t == 1 else min_time / 4
                number[key] = _calls_per_round(fn, sample)  # also warms caches
                best[key] = math.inf
    for r in range(4 * repeat):
        for t, fns in groups.items():
            if t == 1 and r % 4:
                continue  # the one-thread cells: one round in four
            with threads(t):
                for key, fn in fns.items():
                    best[key] = min(best[key], _seconds_per_call(fn, number[key]))
    out = {"n": list(sizes)}
    for name in names:
        out[name] = [
            blas.gemm_flops(n, n, n) / best[name, n] / 1e9
            if (name, n) in best
            else math.nan
            for n in sizes
        ]
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


def _interleaved_best(fns: dict, repeats: int) -> dict[str, float]:
    """Best time of each callable, the runs interleaved (a, b, a, b, ...) so that a
    burst of load on the shared machine hits every contender alike."""
    best = dict.fromkeys(fns, math.inf)
    for fn in fns.values():
        fn()  # compile, warm the caches
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


_OPENBLAS_FORCING = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")

_UNFORCED_NUMPY = """
import time, numpy as np
from threadpoolctl import threadpool_info, threadpool_limits
n = {n}
rng = np.random.default_rng(0)
A = rng.standard_normal((n, n), dtype=np.float32)
B = rng.standard_normal((n, n), dtype=np.float32)
C = np.empty((n, n), dtype=np.float32)
info = [i for i in threadpool_info() if i.get("user_api") == "blas"]
for threads in (1, 2):
    with threadpool_limits(threads):
        np.matmul(A, B, out=C)
        best = float("inf")
        for _ in range({repeats}):
            start = time.perf_counter()
            np.matmul(A, B, out=C)
            best = min(best, time.perf_counter() - start)
    print(threads, 2 * n**3 / best / 1e9)
print("kernel", info[0].get("architecture") if info else "unknown")
"""


def unforced_numpy(n: int = 512, repeats: int = 30) -> dict | None:
    """numpy's GFLOP/s (1 and 2 threads) and OpenBLAS kernel measured in a subprocess
    with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset, or None when neither is set here
    (then this process already runs OpenBLAS's own choice). The bench only: tests and
    CI never touch OPENBLAS_* variables."""
    if not any(os.environ.get(name) for name in _OPENBLAS_FORCING):
        return None
    env = {k: v for k, v in os.environ.items() if k not in _OPENBLAS_FORCING}
    code = _UNFORCED_NUMPY.format(n=n, repeats=repeats)
    try:
        out = subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=True,
        ).stdout.split("\n")
    except (OSError, subprocess.SubprocessError) as err:
        return {"error": str(err)}
    rates = {int(t): float(g) for t, g in (line.split() for line in out[:2])}
    return {"gflops": rates, "kernel": out[2].split(" ", 1)[1]}


def _torch_mm(A, B, C):
    """A callable computing A @ B into C with torch.mm on one thread, or None without
    PyTorch."""
    try:
        import torch
    except ImportError:
        return None
    a, b, c = (torch.from_numpy(x) for x in (A, B, C))
    return lambda: torch.mm(a, b, out=c)


@contextlib.contextmanager
def _torch_threads(n: int):
    try:
        import torch
    except ImportError:
        yield
        return
    saved = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def headline(n: int = 512, repeats: int = 30) -> Table:
    """The goal of issue 17 at n = 512: the tiny BLAS against numpy's SGEMM on one and
    two threads (and torch.mm on one), interleaved best-of-``repeats`` timings."""
    A, B, C = _operands(n, n, n)
    flops = blas.gemm_flops(n, n, n) / 1e9
    table = Table(
        f"SGEMM n = {n}: the tiny BLAS against the yardsticks",
        ["threads", "contender", "GFLOP/s", "tiny / contender"],
    )
    with threads(1), _torch_threads(1):
        fns = {
            "numpy": lambda: np.matmul(A, B, out=C),
            "tiny": lambda: blas.sgemm(A, B, C, variant="packed"),
        }
        torch_mm = _torch_mm(A, B, np.empty_like(C))
        if torch_mm is not None:
            fns["torch.mm"] = torch_mm
        one = _interleaved_best(fns, repeats)
    table.add(1, "tiny BLAS (packed)", flops / one["tiny"], 1.0)
    table.add(
        1,
        f"numpy ({blas_kernel_name()})",
        flops / one["numpy"],
        one["numpy"] / one["tiny"],
    )
    if "torch.mm" in one:
        table.add(1, "torch.mm", flops / one["torch.mm"], one["torch.mm"] / one["tiny"])
    T = PARALLEL_THREADS
    with threads(T):
        two = _interleaved_best(
            {
                "numpy": lambda: np.matmul(A, B, out=C),
                "tiny": lambda: blas.sgemm(A, B, C, variant="parallel"),
            },
            repeats,
        )
    table.add(T, "tiny BLAS (parallel)", flops / two["tiny"], 1.0)
    table.add(T, "numpy", flops / two["numpy"], two["numpy"] / two["tiny"])
    unforced = unforced_numpy(n, repeats)
    forced = {k: os.environ[k] for k in _OPENBLAS_FORCING if os.environ.get(k)}
    if unforced is None:
        table.notes.append(
            "OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset: numpy runs OpenBLAS's own"
            " kernel choice for this CPU"
        )
    elif "error" in unforced:
        table.notes.append(f"numpy without {forced}: failed ({unforced['error']})")
    else:
        for t, rate in unforced["gflops"].items():
            tiny = one["tiny"] if t == 1 else two["tiny"]
            table.add(
                t,
                f"numpy, {'/'.join(forced)} unset ({unforced['kernel']})",
                rate,
                flops / tiny / rate,
            )
        table.notes.append(f"this process runs numpy with {forced} (forced)")
    peak = blas.peak_gflops(1)
    tile, b = blas.TILE, blas.block_sizes("packed")
    table.notes.append(
        f"{blas._machine.vector_isa()[0]}: register tile {tile.mr}×{tile.nr}"
        f" ({tile.accumulators} accumulators of {tile.lanes} lanes), blocks"
        f" mc={b.mc} kc={b.kc} nc={b.nc} (BLIS model; balanced to the shape)"
    )
    table.notes.append(
        f"measured peak (peak_gflops, 1 thread) {peak:.0f} GFLOP/s: tiny BLAS at"
        f" {flops / one['tiny'] / peak:.0%} of it, numpy at"
        f" {flops / one['numpy'] / peak:.0%}"
    )
    return table


def run(quick: bool = False) -> list[Table]:
    if numba is None:
        table = Table("Tiny BLAS (SGEMM)", ["note"])
        table.add("skipped: numba is not installed")
        return [table]
    sizes = QUICK_SIZES if quick else SIZES
    repeat = 3 if quick else 5
    T = PARALLEL_THREADS
    top = headline(512, 10 if quick else 30)
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
    square.notes.append(
        f"best of {repeat} interleaved rounds per cell (every cell timed each round)"
    )

    shapes = Table(
        "Seed model's GEMMs (batch 64), GFLOP/s",
        ["product", "m", "k", "n", "numpy 1T", "packed", "packed/numpy"],
    )
    for name, m, k, n in seed_model_shapes():
        A, B, C = _operands(m, k, n)
        with threads(1):
            seconds = best_times(
                {
                    "numpy": lambda: np.matmul(A, B, out=C),
                    "packed": lambda: blas.sgemm(A, B, C, variant="packed"),
                },
                rounds=repeat,
            )
        g_np, g_tb = (blas.gemm_flops(m, n, k) / seconds[v] / 1e9 for v in seconds)
        shapes.add(name, m, k, n, g_np, g_tb, g_tb / g_np)
    shapes.notes.append(
        f"the micro-kernel computes {blas.MR}×{blas.NR} tiles:"
        " a side of 8, 9 or 10 is padded, "
        "so skinny products waste most of each tile"
    )
    return [top, square, shapes]
