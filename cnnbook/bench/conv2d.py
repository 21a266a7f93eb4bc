"""Benchmark section ``conv2d`` (Chapter 8): every rung of the ladder, forward and
backward.

Two float32 problems, both 3×3 filters with padding 1:
  A  the seed model's convolution: x (64, 1, 28, 28), w (8, 1, 3, 3)
  B  a deeper layer:               x (32, 16, 32, 32), w (32, 16, 3, 3)

Every rung runs with one thread (BLAS limited through threadpoolctl,
``numba.set_num_threads(1)``, ``torch.set_num_threads(1)``) except the ``prange`` rung
and its PyTorch partner, which get two. The rungs being compared are timed side by
side, in interleaved rounds (:func:`time_rungs`), and each keeps its fastest round;
ratios and GFLOP/s are computed from times measured in this one run, next to numpy's
float32 GEMM rate.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .. import fast, functional, implicit, naive, winograd
from . import Table, _calibrate, _seconds_per_call, best_time, best_times

try:
    import numba
except ImportError:  # pragma: no cover
    numba = None
try:
    import torch
    import torch.nn.functional as torch_F
except ImportError:  # pragma: no cover
    torch = None
try:
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover
    threadpool_limits = None

__all__ = [
    "SHAPES",
    "Rung",
    "rungs",
    "problem",
    "threads",
    "time_rung",
    "time_rungs",
    "measure",
    "gemm_gflops",
    "safety",
    "kernel_asm",
    "ladder_tables",
    "safety_table",
    "run",
]

# name -> (x shape, w shape, padding)
SHAPES = {
    "A": ((64, 1, 28, 28), (8, 1, 3, 3), 1),
    "B": ((32, 16, 32, 32), (32, 16, 3, 3), 1),
}
PARALLEL_THREADS = 2


@dataclass
class Rung:
    """One way to compute conv2d: ``forward(x, w, b, padding)``, ``backward(dout, x, w,
    padding)``."""

    name: str
    forward: Callable
    backward: Callable
    threads: int = 1
    extrapolated: bool = (
        False  # timed on a slice of the problem, scaled by the multiply-adds
    )
    numpy: bool = False  # counts as a "NumPy path" for the ratio column
    torch: bool = False


def _numba_rung(name, kernel, threads=1):
    return Rung(
        name,
        lambda x, w, b, p: fast.conv2d(x, w, b, padding=p, kernel=kernel),
        lambda g, x, w, p: fast.conv2d_backward(g, x, w, padding=p, kernel=kernel),
        threads,
    )


def _torch_rung(threads):
    def forward(x, w, b, p):
        with torch.no_grad():
            return torch_F.conv2d(
                torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), padding=p
            )

    # the forward graph, built once per problem and kept (its tensors share x's memory)
    _cache = {}

    def backward(dout, x, w, p):
        # autograd's backward of one conv2d, without its forward
        key = (id(dout), id(x), id(w), p)
        if key not in _cache:
            _cache.clear()
            xt = torch.from_numpy(x).requires_grad_()
            wt = torch.from_numpy(w).requires_grad_()
            bt = torch.zeros(w.shape[0], dtype=wt.dtype, requires_grad=True)
            _cache[key] = (
                torch_F.conv2d(xt, wt, bt, padding=p),
                (xt, wt, bt),
                torch.from_numpy(dout),
            )
        out, inputs, grad = _cache[key]
        return torch.autograd.grad(out, inputs, grad, retain_graph=True)

    return Rung(
        f"PyTorch F.conv2d ({threads} thread{'s' if threads > 1 else ''})",
        forward,
        backward,
        threads,
        torch=True,
    )


def rungs() -> list[Rung]:
    """The ladder, slowest first; numba and PyTorch rungs only when they are
    installed."""
    ladder = [
        Rung(
            "Python seven loops",
            lambda x, w, b, p: naive.conv2d(x, w, b, padding=p),
            lambda g, x, w, p: naive.conv2d_backward(g, x, w, padding=p),
            extrapolated=True,
        ),
        Rung(
            "NumPy windows + einsum",
            lambda x, w, b, p: fast.conv2d_windows(x, w, b, padding=p),
            lambda g, x, w, p: fast.conv2d_windows_backward(g, x, w, padding=p),
            numpy=True,
        ),
        Rung(
            "im2col, one 2-D GEMM",
            lambda x, w, b, p: fast.conv2d_im2col_2d(x, w, b, padding=p),
            lambda g, x, w, p: fast.conv2d_im2col_2d_backward(g, x, w, padding=p),
            numpy=True,
        ),
        Rung(
            "batched im2col (functional)",
            lambda x, w, b, p: functional.conv2d(x, w, b, padding=p, method="im2col"),
            lambda g, x, w, p: functional.conv2d_backward(
                g, x, w, padding=p, method="im2col"
            ),
            numpy=True,
        ),
        Rung(
            "FFT (rfft2, batched)",
            lambda x, w, b, p: fast.conv2d_fft(x, w, b, padding=p),
            lambda g, x, w, p: fast.conv2d_fft_backward(g, x, w, padding=p),
            numpy=True,
        ),
        Rung(  # Chapter 11: α² = 36 GEMMs over the channels, 4× fewer multiplications
            "Winograd F(4×4, 3×3)",
            lambda x, w, b, p: winograd.conv2d(x, w, b, p, 4),
            lambda g, x, w, p: winograd.conv2d_backward(g, x, w, p, 4),
            numpy=True,
        ),
    ]
    if numba is not None:
        ladder += [
            _numba_rung("numba textbook order", "textbook"),
            _numba_rung("numba reordered", "reordered"),
            _numba_rung(
                f"numba prange ({PARALLEL_THREADS} threads)",
                "parallel",
                PARALLEL_THREADS,
            ),
            _numba_rung("numba joined rows", "joined"),
            Rung(  # issue 18: Chapter 10's packed GEMM, B~ packed from the image
                "implicit im2col, tiny BLAS",
                lambda x, w, b, p: implicit.conv2d(x, w, b, padding=p),
                lambda g, x, w, p: implicit.conv2d_backward(g, x, w, padding=p),
            ),
        ]
    if torch is not None:
        ladder += [_torch_rung(1), _torch_rung(PARALLEL_THREADS)]
    return ladder


def problem(shape: str = "A", dtype=np.float32, seed: int = 0) -> dict:
    """Random x, w, b and an upstream gradient dout for one of :data:`SHAPES`."""
    xs, ws, padding = SHAPES[shape]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(xs).astype(dtype)
    w = (rng.standard_normal(ws) / np.sqrt(np.prod(ws[1:]))).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype)
    dout = rng.standard_normal(
        (xs[0], ws[0], xs[2] + 2 * padding - ws[2] + 1, xs[3] + 2 * padding - ws[3] + 1)
    ).astype(dtype)
    return dict(
        shape=shape,
        x=x,
        w=w,
        b=b,
        dout=dout,
        padding=padding,
        flops=fast.conv2d_flops(xs, ws, padding=padding),
    )


@contextlib.contextmanager
def threads(n: int):
    """Run the block with ``n`` threads for BLAS, numba and PyTorch; restore them
    afterwards."""
    saved_numba = numba.get_num_threads() if numba is not None else None
    saved_torch = torch.get_num_threads() if torch is not None else None
    limits = (
        threadpool_limits(n)
        if threadpool_limits is not None
        else contextlib.nullcontext()
    )
    try:
        with limits:
            if numba is not None:
                numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
            if torch is not None:
                torch.set_num_threads(n)
            yield
    finally:
        if saved_numba is not None:
            numba.set_num_threads(saved_numba)
        if saved_torch is not None:
            torch.set_num_threads(saved_torch)


def time_rung(
    rung: Rung, prob: dict, *, repeat: int = 5, backward: bool = True
) -> dict:
    """Forward and backward seconds of one rung on one problem (fastest of ``repeat``
    rounds): :func:`time_rungs` with a ladder of one."""
    return time_rungs([rung], prob, rounds=repeat, backward=backward)[0]


# (rung name, problem shape, dtype) pairs that have run once in this process: their
# first-call costs (numba compilation, caches) are paid
_warm: set = set()


def time_rungs(
    ladder: list[Rung],
    prob: dict,
    *,
    rounds: int = 5,
    backward: bool = True,
    min_time: float = 0.02,
) -> list[dict]:
    """Forward and backward seconds of every rung of ``ladder`` on one problem, timed
    **side by side**: each of ``rounds`` rounds times every rung once (forward, then
    backward, each with the rung's own thread count) and each keeps its fastest round.

    A round of one function lasts at least ``min_time`` (calls per round by doubling;
    the doubling's last step is the first round). A rung's first call on a problem is
    a warm-up, not timed. An ``extrapolated`` rung (the Python loops) runs on one image
    and one filter only; its time is scaled by the ratio of multiply-adds, and
    ``ns_per_madd`` says what one multiply-add cost.
    """
    x, w, b, dout, p = prob["x"], prob["w"], prob["b"], prob["dout"], prob["padding"]
    jobs = []  # (rung, scale, {direction: fn})
    for rung in ladder:
        xs, ws, bs, ds, scale = x, w, b, dout, 1.0
        if rung.extrapolated:
            xs, ws, bs, ds = x[:1], w[:1], b[:1], dout[:1, :1]
            scale = prob["flops"] / fast.conv2d_flops(xs.shape, ws.shape, padding=p)
        fns = {"forward": lambda r=rung, a=(xs, ws, bs, p): r.forward(*a)}
        if backward:
            fns["backward"] = lambda r=rung, a=(ds, xs, ws, p): r.backward(*a)
        jobs.append((rung, scale, fns))
    best, number = {}, {}
    for rung, _, fns in jobs:
        with threads(rung.threads):
            for direction, fn in fns.items():
                key = (rung.name, prob["shape"], x.dtype.str, direction)
                if key not in _warm:
                    fn()
                    _warm.add(key)
                number[rung.name, direction], best[rung.name, direction] = _calibrate(
                    fn, min_time
                )
    for _ in range(rounds - 1):
        for rung, _, fns in jobs:
            with threads(rung.threads):
                for direction, fn in fns.items():
                    seconds = _seconds_per_call(fn, number[rung.name, direction])
                    best[rung.name, direction] = min(
                        best[rung.name, direction], seconds
                    )
    records = []
    for rung, scale, _ in jobs:
        fwd = best[rung.name, "forward"] * scale
        bwd = best.get((rung.name, "backward"), float("nan")) * scale
        record = dict(
            rung=rung.name,
            shape=prob["shape"],
            threads=rung.threads,
            forward=fwd,
            backward=bwd,
            flops=prob["flops"],
            numpy=rung.numpy,
            torch=rung.torch,
            extrapolated=rung.extrapolated,
        )
        if rung.extrapolated:
            record["ns_per_madd"] = fwd / (prob["flops"] / 2) * 1e9
        records.append(record)
    return records


def gemm_gflops(n_threads: int = 1, size: int = 512, repeat: int = 5) -> float:
    """numpy float32 matrix multiply (size × size) @ (size × size), in GFLOP/s."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    with threads(n_threads):
        seconds = best_time(lambda: a @ b, repeat=repeat)
    return 2 * size**3 / seconds / 1e9


def measure(
    shapes=("A", "B"), *, quick: bool = True, only: list[str] | None = None
) -> list[dict]:
    """Time every rung (or the ones named in ``only``) on every shape; one record per
    pair.

    All rungs of a shape are timed side by side (:func:`time_rungs`: interleaved
    rounds, each rung keeps its best forward and backward time), so that a burst of
    load from elsewhere does not fall on one rung only.
    """
    records = []
    for shape in shapes:
        ladder = [r for r in rungs() if only is None or r.name in only]
        records += time_rungs(ladder, problem(shape), rounds=3 if quick else 7)
    return records


_SAFETY = [
    ("reordered, unsigned indices (baseline)", "reordered", np.float32),
    ("boundscheck=True", "boundscheck", np.float32),
    ("check + raise in the inner loop", "raise", np.float32),
    ("signed computed indices", "signed", np.float32),
    ("flat arrays, signed offsets", "flat_signed", np.float32),
    ("flat arrays, unsigned offsets", "flat_unsigned", np.float32),
    ("float64 instead of float32", "reordered", np.float64),
]


_TEXTBOOK = ("textbook order (for comparison)", "textbook", np.float32)


def safety(
    shapes=("A", "B"),
    *,
    quick: bool = True,
    images: dict[str, int] | None = None,
    textbook: bool = False,
) -> list[dict]:
    """Forward time of each safety-vs-speed variant of the reordered kernel (one
    thread), and its ratio to the unchanged kernel on the same problem.

    The variants of one problem are timed side by side
    (:func:`cnnbook.bench.best_times`: interleaved rounds, each keeps its best), so a
    burst of load from elsewhere cannot fall on one variant only. ``images`` limits a
    problem to its first images (e.g. ``{"B": 8}``): the kernels loop over the images
    outermost, so every image costs the same and the ratios do not change.
    ``textbook=True`` adds the textbook order.
    """
    if numba is None:
        return []
    variants = _SAFETY + [_TEXTBOOK] * textbook
    records = []
    for shape in shapes:
        n = (images or {}).get(shape)
        probs = {}
        for dtype in (np.float32, np.float64):
            p = problem(shape, dtype)
            probs[dtype] = {**p, "x": p["x"][:n]}
        calls = {
            label: lambda p=probs[dtype], k=kernel: fast.conv2d(
                p["x"], p["w"], p["b"], padding=p["padding"], kernel=k
            )
            for label, kernel, dtype in variants
        }
        with threads(1):
            best = best_times(calls, rounds=5 if quick else 9)
        base = best[_SAFETY[0][0]]
        for label, kernel, dtype in variants:
            records.append(
                dict(
                    variant=label,
                    kernel=kernel,
                    dtype=np.dtype(dtype).name,
                    shape=shape,
                    images=len(probs[dtype]["x"]),
                    seconds=best[label],
                    ratio=best[label] / base,
                )
            )
    return records


def kernel_asm(kernel: str, dtype=np.float32) -> str:
    """The x86-64 (or other host) assembly of ``cnnbook.fast.KERNELS[kernel]`` compiled
    for ``dtype`` arrays, as numba's ``inspect_asm`` shows it.

    A kernel loaded from numba's on-disk cache cannot show its assembly (numba warns
    and returns nothing useful), but the cache keeps the optimized LLVM module next to
    the machine code: the host's code generator turns that module back into the same
    instructions in a fraction of a second. Only when neither is available is the
    kernel compiled once more, uncached. The kernel must have run for ``dtype`` once.
    """
    dispatcher = fast.KERNELS[kernel]
    sig = next(
        s for s in dispatcher.signatures if s[0].dtype == numba.from_dtype(dtype)
    )
    library = dispatcher.overloads[sig].library
    if not getattr(library, "_disable_inspection", True):
        return library.get_asm_str()  # compiled in this process
    module = getattr(library, "_shared_module", None)
    machine = getattr(getattr(library, "_codegen", None), "_tm", None)
    if module is not None and machine is not None:
        return str(machine.emit_assembly(module))
    options = {k: v for k, v in dispatcher.targetoptions.items() if k == "boundscheck"}
    fresh = numba.njit(**options)(dispatcher.py_func)  # uncached: keeps its assembly
    fresh.compile(sig)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fresh.inspect_asm(sig)


def ladder_tables(records: list[dict], gemm: dict) -> list[Table]:
    """One table per shape: times, GFLOP/s, and ratios to the best NumPy path and to
    PyTorch."""
    tables = []
    for shape in dict.fromkeys(r["shape"] for r in records):
        rows = [r for r in records if r["shape"] == shape]
        numpy_rows = [r for r in rows if r["numpy"]]
        best_np = (
            min(numpy_rows, key=lambda r: r["forward"] + r["backward"])
            if numpy_rows
            else None
        )
        torch_by_threads = {r["threads"]: r for r in rows if r["torch"]}
        xs, ws, p = SHAPES[shape]
        table = Table(
            f"conv2d, shape {shape}: x {xs}, w {ws}, padding {p}, float32",
            [
                "rung",
                "thr",
                "fwd ms",
                "bwd ms",
                "fwd GF/s",
                "bwd GF/s",
                "÷ NumPy",
                "÷ torch",
            ],
        )
        for r in rows:
            total = r["forward"] + r["backward"]
            ref = torch_by_threads.get(r["threads"])
            table.add(
                r["rung"] + (" *" if r["extrapolated"] else ""),
                r["threads"],
                r["forward"] * 1e3,
                r["backward"] * 1e3,
                r["flops"] / r["forward"] / 1e9,
                2 * r["flops"] / r["backward"] / 1e9,
                total / (best_np["forward"] + best_np["backward"]) if best_np else "-",
                total / (ref["forward"] + ref["backward"]) if ref else "-",
            )
        table.notes.append(
            "÷ NumPy, ÷ torch: fwd+bwd time over the best NumPy path's"
            " and over PyTorch's with the same threads"
        )
        if best_np:
            table.notes.append(f"best NumPy path (fwd+bwd): {best_np['rung']}")
        for r in rows:
            if r["extrapolated"]:
                table.notes.append(
                    "* timed on one image and one filter, scaled by the multiply-adds: "
                    f"{r['ns_per_madd']:.0f} ns per multiply-add"
                )
        table.notes.append(
            "numpy float32 GEMM 512³ in this run: "
            + ", ".join(
                f"{g:.0f} GF/s with {t} thread{'s' if t > 1 else ''}"
                for t, g in gemm.items()
            )
        )
        if not any(r["torch"] for r in rows):
            table.notes.append("PyTorch is not installed: no reference column.")
        tables.append(table)
    return tables


def markdown(table: Table) -> str:
    """``table`` as a Markdown table (title in bold, notes below) for a notebook."""

    def cell(v):
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"
        return str(v).replace("|", "\\|")

    out = [f"**{table.title}**", ""]
    out.append("| " + " | ".join(table.columns) + " |")
    out.append("|" + "|".join([" --- "] + [" ---: "] * (len(table.columns) - 1)) + "|")
    out += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.rows]
    if table.notes:
        out += [""] + [f"{note}  " for note in table.notes]
    return "\n".join(out)


def safety_table(records: list[dict]) -> Table:
    shapes = list(dict.fromkeys(r["shape"] for r in records))
    table = Table(
        "safety vs speed: the reordered numba kernel, forward, one thread",
        ["variant"] + [f"{s} ms" for s in shapes] + [f"{s} × baseline" for s in shapes],
    )
    for label in dict.fromkeys(r["variant"] for r in records):
        rs = {r["shape"]: r for r in records if r["variant"] == label}
        table.add(
            label,
            *(rs[s]["seconds"] * 1e3 for s in shapes),
            *(rs[s]["ratio"] for s in shapes),
        )
    return table


def run(quick: bool = False) -> list[Table]:
    gemm = {t: gemm_gflops(t) for t in (1, PARALLEL_THREADS)}
    records = measure(quick=quick)
    # the yardstick is measured before and after the ladder; the better rate is the
    # machine's
    gemm = {t: max(g, gemm_gflops(t)) for t, g in gemm.items()}
    tables = ladder_tables(records, gemm)
    if numba is None:
        tables[-1].notes.append(
            "numba is not installed: no compiled rungs (`pip install numba`)."
        )
    else:
        tables.append(safety_table(safety(quick=quick)))
    return tables
