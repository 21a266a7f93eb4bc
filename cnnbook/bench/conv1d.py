"""Chapter 2 benchmark: direct vs FFT 1-D convolution, and how well "auto" chooses.

``measure_grid`` is also what Chapter 2 uses to draw the crossover region and to fit
``cnnbook.fft.COST_MODEL``.
"""

from __future__ import annotations

import numpy as np

from . import Table, _calls_per_round, _seconds_per_call

__all__ = ["measure_grid", "run", "GRID", "QUICK_GRID"]

# Signal lengths N and kernel lengths K (pairs with K ≤ N; convolution is symmetric).
GRID = (
    [64, 256, 1024, 4096, 16384, 65536],
    [2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384],
)
QUICK_GRID = ([64, 512, 4096, 32768], [3, 8, 24, 64, 192, 512, 2048])


def _signals(n: int, k: int, seed: int, dtype=np.float64):
    rng = np.random.default_rng([seed, n, k])
    return rng.standard_normal(n).astype(dtype), rng.standard_normal(k).astype(dtype)


def measure_grid(
    ns,
    ks,
    *,
    methods=("direct", "fft"),
    repeat: int = 5,
    min_time: float = 0.005,
    seed: int = 0,
    dtype=np.float64,
    decided: float | None = None,
) -> dict:
    """Best-of-``repeat`` seconds per call of ``conv1d(x, w, method=m)``, mode 'full'.

    Returns ``{"n": (P,), "k": (P,), m: (P,) for each method}`` over the grid's pairs
    with k ≤ n. The methods of one pair are timed side by side, as by
    :func:`cnnbook.bench.best_times` (``repeat`` rounds, each timing every method
    once): on a shared machine a round can be several times slower than the quiet
    ones, so interleaved rounds and their minimum are what is robust.

    ``decided``: stop a pair's rounds after the second once its slowest method is
    more than ``decided`` times slower than its fastest (more rounds cannot change
    which is faster, only digits of a large ratio); ``None`` runs all rounds.
    """
    from ..signal import conv1d  # tools sit on top of the kernels

    pairs = [(n, k) for n in ns for k in ks if k <= n]
    out = {"n": np.array([p[0] for p in pairs]), "k": np.array([p[1] for p in pairs])}
    times = {m: [] for m in methods}
    for n, k in pairs:
        x, w = _signals(n, k, seed, dtype)
        calls = {m: (lambda m=m: conv1d(x, w, method=m)) for m in methods}
        for fn in calls.values():
            fn()  # warm-up, as in best_times
        number = {m: _calls_per_round(fn, min_time) for m, fn in calls.items()}
        best = dict.fromkeys(methods, float("inf"))
        for r in range(repeat):
            for m, fn in calls.items():  # interleaved, as in best_times
                best[m] = min(best[m], _seconds_per_call(fn, number[m]))
            spread = max(best.values()) / min(best.values())
            if decided is not None and r >= 1 and spread > decided:
                break
        for m in methods:
            times[m].append(best[m])
    out.update({m: np.array(t) for m, t in times.items()})
    return out


def run(quick: bool) -> list[Table]:
    from ..fft import choose_conv_method

    ns, ks = QUICK_GRID if quick else GRID
    repeat, min_time = (15, 0.002) if quick else (21, 0.003)
    grid = measure_grid(
        ns, ks, methods=("direct", "fft", "auto"), repeat=repeat, min_time=min_time
    )
    direct_over_fft = grid["direct"] / grid["fft"]
    auto_ratio = grid["auto"] / np.minimum(grid["direct"], grid["fft"])

    speed = Table(
        "conv1d: FFT vs direct (float64, mode 'full')",
        ["N", "K", "direct/fft time", "faster", "auto picks", "auto/best"],
    )
    for i, (n, k) in enumerate(zip(grid["n"], grid["k"])):
        ratio = direct_over_fft[i]
        speed.add(
            int(n),
            int(k),
            float(ratio),
            "fft" if ratio > 1 else "direct",
            choose_conv_method(int(n), int(k)),
            float(auto_ratio[i]),
        )

    try:  # scipy is a dependency, but keep the benchmark usable without it
        from scipy.signal import choose_conv_method as scipy_choose
    except ImportError:
        scipy_choose = None
    summary = Table(
        "conv1d: method='auto' vs the best of direct and fft over the grid",
        ["chooser", "worst ratio to best", "mean ratio", "wrong picks"],
    )
    picks = np.array(
        [choose_conv_method(int(n), int(k)) for n, k in zip(grid["n"], grid["k"])]
    )
    faster = np.where(direct_over_fft > 1, "fft", "direct")
    summary.add(
        "cnnbook auto (timed)",
        float(auto_ratio.max()),
        float(auto_ratio.mean()),
        f"{int((picks != faster).sum())}/{len(picks)}",
    )
    if scipy_choose is not None:
        choice = np.array(
            [
                scipy_choose(*_signals(int(n), int(k), 0), mode="full")
                for n, k in zip(grid["n"], grid["k"])
            ]
        )
        scipy_ratio = np.where(
            choice == "fft",
            1 / np.minimum(direct_over_fft, 1),
            np.maximum(direct_over_fft, 1),
        )
        summary.add(
            "scipy.signal.choose_conv_method (its pick, timed with cnnbook)",
            float(scipy_ratio.max()),
            float(scipy_ratio.mean()),
            f"{int((choice != faster).sum())}/{len(choice)}",
        )
    worst = int(np.argmax(auto_ratio))
    summary.notes.append(
        f"worst auto/best: {auto_ratio[worst]:.2f} at N={grid['n'][worst]}, "
        f"K={grid['k'][worst]} (goal: ≤ 1.2). auto pays for its decision, a "
        f"fraction of a µs, visible on the smallest inputs; a few % either way is noise"
    )
    return [speed, summary]
