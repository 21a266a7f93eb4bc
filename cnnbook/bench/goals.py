"""Benchmark section ``goals`` (issue 18): cnnbook against PyTorch CPU, side by side.

The goals, each a ratio cnnbook time / PyTorch time measured in this one run:

* conv2d forward + backward (input gradient included) of shape A (64×1×28×28, 8
  filters 3×3, padding 1) <= 0.5, and of shape B (32×16×32×32, 32 filters 3×3,
  padding 1) <= 1.0, with one thread;
* one training epoch of the default seed model and of the Chapter 7 model (16 filters
  5×5, padding 2), same data, batch 64, momentum SGD, <= 0.5 with one thread.

cnnbook runs its default path (``method="auto"``: on an AVX2 host, shape B takes the
implicit-im2col GEMM on the tiny BLAS, :mod:`cnnbook.implicit`, and shape A Chapter 8's
compiled loops) and, in rows of their own, the path ``auto`` did not take (``"numba"``
or ``"implicit"``), so that the rows show whether its choice was right. PyTorch runs
``torch.nn.functional`` and autograd; all three are timed in the same interleaved
rounds. The two-thread figures are reported too (BLAS, numba and torch
threads; no goal). A shape A row "as a first layer" times the backward without the
input gradient on both sides (``need_dx=False``; an input that does not require grad).
Times are the minimum over interleaved rounds, so that a burst of load from elsewhere
cannot fall on one side only. A second table splits the convolution into its parts
(forward, dw + db, dx) for both cnnbook paths and PyTorch. Never a timed test:
these are measurements of this machine.
"""

from __future__ import annotations

import numpy as np

from .. import functional
from . import Table, best_time
from .conv2d import SHAPES, problem, threads

try:
    import torch
    import torch.nn.functional as torch_F
except ImportError:  # pragma: no cover
    torch = None

__all__ = [
    "GOALS",
    "conv_pair",
    "conv_parts",
    "conv_rows",
    "other_path",
    "split_rows",
    "training_rows",
    "run",
]

# what is timed -> the goal for its one-thread ratio
GOALS = {
    "conv A fwd+bwd": 0.5,
    "conv B fwd+bwd": 1.0,
    "epoch, seed_cnn() 8 filters 3×3": 0.5,
    "epoch, 16 filters 5×5 (ch. 7 recipe)": 0.5,
}


def conv_pair(shape: str, *, need_dx: bool = True, method: str = "auto"):
    """``(cnnbook, torch)``: two callables, each one forward and one backward
    (cnnbook's with ``method``)."""
    p = problem(shape)
    x, w, b, dout, pad = p["x"], p["w"], p["b"], p["dout"], p["padding"]

    def ours():
        functional.conv2d(x, w, b, padding=pad, method=method)
        functional.conv2d_backward(
            dout, x, w, padding=pad, need_dx=need_dx, method=method
        )

    xt = torch.from_numpy(x).requires_grad_(need_dx)
    wt = torch.from_numpy(w).requires_grad_()
    bt = torch.from_numpy(b).requires_grad_()
    gt = torch.from_numpy(dout)
    inputs = (xt, wt, bt) if need_dx else (wt, bt)

    def theirs():
        out = torch_F.conv2d(xt, wt, bt, padding=pad)
        torch.autograd.grad(out, inputs, gt)

    return ours, theirs


def other_path(shape: str) -> str:
    """The compiled path that ``method="auto"`` does not take on ``shape``:
    ``"numba"`` where it runs the implicit GEMM, ``"implicit"`` elsewhere."""
    p = problem(shape)
    auto = functional.conv_path(p["x"], p["w"], p["b"])
    return "numba" if auto == "implicit" else "implicit"


def conv_rows(thread_counts=(1, 2), *, quick: bool = False) -> list[tuple]:
    """``(name, threads, cnnbook s, torch s)``: shapes A and B with ``method="auto"``
    and with the path it did not take (next to the same PyTorch time), and A as a
    first layer."""
    cases = [  # name, shape, need_dx, cnnbook's method
        ("conv A fwd+bwd", "A", True, "auto"),
        (f"conv A fwd+bwd, {other_path('A')}", "A", True, other_path("A")),
        ("conv B fwd+bwd", "B", True, "auto"),
        (f"conv B fwd+bwd, {other_path('B')}", "B", True, other_path("B")),
        ("conv A fwd+bwd, first layer (no dx)", "A", False, "auto"),
    ]
    rows = []
    for n in thread_counts:
        with threads(n):
            fns, torch_of = {}, {}
            for name, shape, dx, method in cases:
                ours, theirs = conv_pair(shape, need_dx=dx, method=method)
                fns[name] = ours
                torch_of[name] = f"torch {shape} {dx}"
                fns.setdefault(torch_of[name], theirs)
            best = _interleaved(fns, quick)
        rows += [(name, n, best[name], best[torch_of[name]]) for name, *_ in cases]
    return rows


def _interleaved(fns: dict, quick: bool) -> dict:
    """Seconds per call of each function, the best of interleaved rounds (each round
    times every function, each keeps its fastest)."""
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(2 if quick else 9):  # 5 left the minimum 15% noisy here
        for name, fn in fns.items():
            best[name] = min(best[name], best_time(fn, repeat=2 if quick else 3))
    return best


def conv_parts(shape: str) -> dict:
    """Callables for the parts of one conv2d step on ``shape``: ``(part, side) ->
    fn``, part in ``forward``, ``dw+db`` (backward without dx) and ``backward`` (dx
    included), side in ``auto``, ``other`` (:func:`other_path`), ``torch``."""
    p = problem(shape)
    x, w, b, dout, pad = p["x"], p["w"], p["b"], p["dout"], p["padding"]
    fns = {}
    for side, method in (("auto", "auto"), ("other", other_path(shape))):
        fns["forward", side] = lambda m=method: functional.conv2d(
            x, w, b, padding=pad, method=m
        )
        for part, dx in (("dw+db", False), ("backward", True)):
            fns[part, side] = lambda m=method, dx=dx: functional.conv2d_backward(
                dout, x, w, padding=pad, method=m, need_dx=dx
            )
    xt, wt, bt = (torch.from_numpy(a).requires_grad_() for a in (x, w, b))
    gt = torch.from_numpy(dout)

    def forward():
        with torch.no_grad():
            torch_F.conv2d(xt, wt, bt, padding=pad)

    out = torch_F.conv2d(xt, wt, bt, padding=pad)  # the graph, kept for backward
    fns["forward", "torch"] = forward
    fns["dw+db", "torch"] = lambda: torch.autograd.grad(
        out, (wt, bt), gt, retain_graph=True
    )
    fns["backward", "torch"] = lambda: torch.autograd.grad(
        out, (xt, wt, bt), gt, retain_graph=True
    )
    return fns


def split_rows(thread_counts=(1, 2), *, quick: bool = False) -> list[tuple]:
    """``(shape, threads, part, auto s, other s, torch s)`` for the forward, the
    backward without dx (dw, db), dx alone (the backward's difference) and the total,
    all timed in the same interleaved rounds."""
    rows = []
    for n in thread_counts:
        with threads(n):
            for shape in ("A", "B"):
                best = _interleaved(conv_parts(shape), quick)
                sides = ("auto", "other", "torch")
                t = {
                    part: [best[part, side] for side in sides]
                    for part in ("forward", "dw+db", "backward")
                }
                t["dx"] = [a - b for a, b in zip(t["backward"], t["dw+db"])]
                t["fwd+bwd"] = [a + b for a, b in zip(t["forward"], t["backward"])]
                for part in ("forward", "dw+db", "dx", "fwd+bwd"):
                    rows.append((shape, n, part, *t[part]))
    return rows


def _xwb(shape: str):
    p = problem(shape)
    return p["x"], p["w"], p["b"]


def split_table(rows) -> Table:
    t = Table(
        "conv2d's parts: cnnbook auto and the other path ÷ PyTorch CPU, side by side",
        [
            "shape",
            "thr",
            "part",
            "auto ms",
            "other ms",
            "torch ms",
            "auto ÷",
            "other ÷",
        ],
    )
    for shape, n, part, auto, other, theirs in rows:
        ms = (auto * 1e3, other * 1e3, theirs * 1e3)
        t.add(shape, n, part, *ms, auto / theirs, other / theirs)
    t.notes += [
        "auto runs: "
        + ", ".join(f"{s} {functional.conv_path(*_xwb(s))}" for s in ("A", "B"))
        + "; other: "
        + ", ".join(f"{s} {other_path(s)}" for s in ("A", "B")),
        "dw+db: the backward without the input gradient (need_dx=False; torch: grad",
        "  of w and b only); dx: the full backward minus that; ÷: over PyTorch",
    ]
    return t


def training_rows(thread_counts=(1, 2), *, quick: bool = False) -> list[tuple]:
    """``(name, threads, cnnbook s, torch s)``: the fastest epoch of each model."""
    from ..data import load_digits_5k
    from .training import MODELS, epoch_versus_torch

    X, y, _, _ = load_digits_5k()
    n_images, epochs = (1000, 3) if quick else (4000, 4)
    X, y = X[:n_images], y[:n_images]
    rows = []
    for n in thread_counts:
        for name, kwargs in MODELS.items():
            ours, theirs = epoch_versus_torch(X, y, epochs=epochs, threads=n, **kwargs)
            rows.append((f"epoch, {name}", n, ours, theirs))
    return rows


def table(rows) -> Table:
    t = Table(
        "Issue 18's goals: cnnbook ÷ PyTorch CPU, measured side by side",
        ["work", "threads", "cnnbook ms", "PyTorch ms", "÷ torch", "goal", "met"],
    )
    for name, n, ours, theirs in rows:
        ratio = ours / theirs
        goal = GOALS.get(name) if n == 1 else None
        met = "-" if goal is None else ("yes" if ratio <= goal else "no")
        t.add(
            name,
            n,
            ours * 1e3,
            theirs * 1e3,
            ratio,
            "-" if goal is None else f"<= {goal}",
            met,
        )
    xa, wa, pa = SHAPES["A"]
    xb, wb, pb = SHAPES["B"]
    t.notes += [
        f"A: x {xa}, w {wa}, padding {pa}",
        f"B: x {xb}, w {wb}, padding {pb}; float32",
        "conv: one forward + one backward (dx, dw, db), cnnbook's method='auto'",
        "  (', numba' / ', implicit': that method) against F.conv2d + autograd",
        "epoch: cnnbook.train.fit against the same loop in PyTorch: same data and",
        "  initial weights, batch 64, SGD lr 0.05 momentum 0.9, no augmentation",
        "goals hold for one thread; the two-thread rows are reported, not judged",
    ]
    return t


def run(quick: bool = False) -> list[Table]:
    if torch is None:
        t = Table("Issue 18's goals: cnnbook ÷ PyTorch CPU", ["work"])
        t.notes.append("PyTorch is not installed: nothing to compare against.")
        return [t]
    torch.manual_seed(0)
    np.random.seed(0)
    return [
        table(conv_rows(quick=quick) + training_rows(quick=quick)),
        split_table(split_rows(quick=quick)),
    ]
