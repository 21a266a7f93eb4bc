"""Benchmark section ``goals`` (issue 18): cnnbook against PyTorch CPU, side by side.

The goals, each a ratio cnnbook time / PyTorch time measured in this one run:

* conv2d forward + backward (input gradient included) of shape A (64×1×28×28, 8
  filters 3×3, padding 1) <= 0.5, and of shape B (32×16×32×32, 32 filters 3×3,
  padding 1) <= 1.0, with one thread;
* one training epoch of the default seed model and of the Chapter 7 model (16 filters
  5×5, padding 2), same data, batch 64, momentum SGD, <= 0.5 with one thread.

cnnbook runs its default path (``method="auto"``), PyTorch ``torch.nn.functional`` and
autograd. The two-thread figures are reported too (BLAS, numba and torch threads; no
goal). A shape A row "as a first layer" times the backward without the input gradient
on both sides (``need_dx=False``; an input that does not require grad). Times are the
minimum over interleaved rounds, so that a burst of load from elsewhere cannot fall on
one side only. Never a timed test: these are measurements of this machine.
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

__all__ = ["GOALS", "conv_pair", "conv_rows", "training_rows", "run"]

# what is timed -> the goal for its one-thread ratio
GOALS = {
    "conv A fwd+bwd": 0.5,
    "conv B fwd+bwd": 1.0,
    "epoch, seed_cnn() 8 filters 3×3": 0.5,
    "epoch, 16 filters 5×5 (ch. 7 recipe)": 0.5,
}


def conv_pair(shape: str, *, need_dx: bool = True):
    """``(cnnbook, torch)``: two callables, each one forward and one backward."""
    p = problem(shape)
    x, w, b, dout, pad = p["x"], p["w"], p["b"], p["dout"], p["padding"]

    def ours():
        functional.conv2d(x, w, b, padding=pad)
        functional.conv2d_backward(dout, x, w, padding=pad, need_dx=need_dx)

    xt = torch.from_numpy(x).requires_grad_(need_dx)
    wt = torch.from_numpy(w).requires_grad_()
    bt = torch.from_numpy(b).requires_grad_()
    gt = torch.from_numpy(dout)
    inputs = (xt, wt, bt) if need_dx else (wt, bt)

    def theirs():
        out = torch_F.conv2d(xt, wt, bt, padding=pad)
        torch.autograd.grad(out, inputs, gt)

    return ours, theirs


def conv_rows(thread_counts=(1, 2), *, quick: bool = False) -> list[tuple]:
    """``(name, threads, cnnbook s, torch s)``: shapes A, B, and A as a first layer."""
    cases = [
        ("conv A fwd+bwd", "A", True),
        ("conv B fwd+bwd", "B", True),
        ("conv A fwd+bwd, first layer (no dx)", "A", False),
    ]
    rows = []
    for n in thread_counts:
        with threads(n):
            pairs = {name: conv_pair(shape, need_dx=dx) for name, shape, dx in cases}
            best = {name: [float("inf"), float("inf")] for name in pairs}
            for _ in range(2 if quick else 5):
                for name, fns in pairs.items():
                    for side, fn in enumerate(fns):
                        seconds = best_time(fn, repeat=2 if quick else 3)
                        best[name][side] = min(best[name][side], seconds)
        rows += [(name, n, *best[name]) for name in pairs]
    return rows


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
        "  against F.conv2d + autograd",
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
    return [table(conv_rows(quick=quick) + training_rows(quick=quick))]
