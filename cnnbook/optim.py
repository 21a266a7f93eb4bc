"""Optimizers: stochastic gradient descent with momentum, a cosine learning-rate decay.

The update follows PyTorch's ``torch.optim.SGD`` exactly, so a model trained here and
one trained there take the same steps. For every parameter ``p`` with gradient ``g``:

    g ← g + λ·p              (weight decay λ, an L2 penalty λ/2·‖p‖²)
    v ← μ·v + g              (velocity; v starts at 0, so the first step is plain SGD)
    p ← p − η·v              (classical momentum)
    p ← p − η·(g + μ·v)      (Nesterov: look one velocity step ahead)

With μ = 0 both reduce to plain SGD, ``p ← p − η·g``.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["SGD", "cosine_lr"]


def _as_pairs(parameters) -> list[tuple[np.ndarray, np.ndarray]]:
    if hasattr(parameters, "parameters") and callable(parameters.parameters):
        parameters = parameters.parameters()  # a model or layer: use its pairs
    pairs = []
    for i, item in enumerate(parameters):
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise TypeError(
                f"parameters[{i}] must be a (param, grad) pair as returned by "
                f"model.parameters(), got {type(item).__name__}"
            )
        p, g = item
        if not isinstance(p, np.ndarray) or not isinstance(g, np.ndarray):
            raise TypeError(
                f"parameters[{i}]: param and grad must be NumPy arrays, "
                f"got {type(p).__name__} and {type(g).__name__}"
            )
        if p.shape != g.shape:
            raise ValueError(
                f"parameters[{i}]: param shape {p.shape} != grad shape {g.shape}"
            )
        if p.dtype.kind != "f":
            raise TypeError(
                f"parameters[{i}]: parameters must be floating point, got {p.dtype}"
            )
        pairs.append((p, g))
    if not pairs:
        raise ValueError("SGD got an empty parameter list")
    return pairs


class SGD:
    """Stochastic gradient descent with optional (Nesterov) momentum and weight decay.

    ``parameters`` is the list of ``(param, grad)`` pairs from ``model.parameters()``
    (or the model itself). The optimizer keeps references: the layers' ``backward``
    overwrites ``grad`` in place, then :meth:`step` updates ``param`` in place. ``lr``
    may be changed between steps (schedules). ``velocity`` holds one buffer per
    parameter, same shape and dtype.
    """

    def __init__(
        self,
        parameters,
        lr: float,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ):
        self.params = _as_pairs(parameters)
        if not lr > 0:
            raise ValueError(f"learning rate must be > 0, got {lr!r}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        if nesterov and momentum == 0:
            raise ValueError("Nesterov momentum needs momentum > 0")
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
        self.lr = float(lr)
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self.weight_decay = float(weight_decay)
        self.velocity = [np.zeros_like(p) for p, _ in self.params]
        self.steps = 0

    def step(self) -> None:
        """One update of every parameter, in place, from the gradients stored now."""
        lr, mu, wd = self.lr, self.momentum, self.weight_decay
        for (p, g), v in zip(self.params, self.velocity):
            d = g + wd * p if wd else g  # never modify the layer's gradient buffer
            if mu == 0.0:
                p -= lr * d
                continue
            v *= mu
            v += d
            p -= lr * (d + mu * v) if self.nesterov else lr * v
        self.steps += 1

    def __repr__(self) -> str:
        extra = ", nesterov=True" if self.nesterov else ""
        extra += f", weight_decay={self.weight_decay:g}" if self.weight_decay else ""
        n = len(self.params)
        return f"SGD(lr={self.lr:g}, momentum={self.momentum:g}{extra}; {n} tensors)"


def cosine_lr(epoch: int, epochs: int, lr_max: float, lr_min: float = 0.0) -> float:
    """Cosine decay: ``lr_max`` at epoch 0, falling smoothly to ``lr_min`` at the end.

    ``lr = lr_min + (lr_max − lr_min)·(1 + cos(π·epoch/epochs))/2`` (Loshchilov &
    Hutter's SGDR without restarts). Call it at the start of each epoch:
    ``opt.lr = cosine_lr(e, epochs, 0.05)``.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if not 0 <= epoch <= epochs:
        raise ValueError(f"epoch must be in [0, {epochs}], got {epoch}")
    return lr_min + (lr_max - lr_min) * 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))
