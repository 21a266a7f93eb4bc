"""The training loop: minibatches, shuffling, augmentation, history and timing; saving weights.

``fit`` runs epochs of minibatch SGD on any model that follows the layer protocol
(``forward``/``backward``/``parameters``), records per-epoch loss and accuracy, and measures
forward and backward wall time *separately* (the performance chapters start from these numbers).

Timer hook: pass ``timer=`` any object with a ``phase(name)`` method returning a context manager,
e.g. :class:`cnnbook.diagnostics.PhaseTimer`. ``fit`` wraps its work in the phases ``"augment"``,
``"forward"`` (model forward + loss), ``"backward"`` (loss backward + model backward), ``"update"``
(optimizer step) and ``"evaluate"`` (validation at the end of each epoch), and calls the timer's
``end_epoch()`` after every epoch if it has one. The timer sees every minibatch.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

__all__ = ["History", "fit", "evaluate", "random_shift", "save_weights", "load_weights"]


@dataclass
class History:
    """Per-epoch records of one :func:`fit` call (one entry per epoch in every list).

    ``train_loss``/``train_acc`` average the minibatches seen during the epoch (augmented inputs,
    weights still moving). ``val_loss``/``val_acc`` are measured after the epoch, and stay empty
    when no validation data was given. Times are wall-clock seconds summed over the epoch:
    ``forward_time`` (model forward + loss), ``backward_time`` (loss backward + model backward),
    ``update_time`` (optimizer steps), ``epoch_time`` (everything, validation excluded).
    """

    train_loss: list = field(default_factory=list)
    train_acc: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    val_acc: list = field(default_factory=list)
    forward_time: list = field(default_factory=list)
    backward_time: list = field(default_factory=list)
    update_time: list = field(default_factory=list)
    epoch_time: list = field(default_factory=list)
    lr: list = field(default_factory=list)

    @property
    def epochs(self) -> int:
        return len(self.train_loss)

    def __repr__(self) -> str:
        if not self.train_loss:
            return "History(no epochs)"
        text = (
            f"History({self.epochs} epochs, final train loss {self.train_loss[-1]:.4f}"
        )
        if self.val_acc:
            text += f", val accuracy {self.val_acc[-1]:.4f}"
        return text + ")"


def _check_xy(X, y, name: str = "X") -> None:
    if not isinstance(X, np.ndarray) or not isinstance(y, np.ndarray):
        raise TypeError(
            f"{name} and its labels must be NumPy arrays, got {type(X).__name__} and {type(y).__name__}"
        )
    if X.ndim < 2:
        raise ValueError(
            f"{name} must have a batch axis first, e.g. (N, C, H, W); got shape {X.shape}"
        )
    if y.ndim != 1 or len(y) != len(X):
        raise ValueError(
            f"labels must have shape ({len(X)},) to match {name} {X.shape}, got {y.shape}"
        )
    if y.dtype.kind not in "iu":
        raise TypeError(f"labels must be integer class indices, got dtype {y.dtype}")
    if len(X) == 0:
        raise ValueError(f"{name} is empty")


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def evaluate(
    model, X: np.ndarray, y: np.ndarray, batch_size: int = 256
) -> tuple[float, float]:
    """Mean cross-entropy loss and accuracy of ``model`` on ``(X, y)``, in batches (no gradients).

    ``X: (N, ...)`` inputs, ``y: (N,)`` int class indices. Returns ``(loss, accuracy)`` floats.
    """
    from .functional import cross_entropy

    _check_xy(X, y)
    batch_size = _positive_int(batch_size, "batch_size")
    total_loss, correct = 0.0, 0
    for start in range(0, len(X), batch_size):
        logits = model.forward(X[start : start + batch_size])
        yb = y[start : start + batch_size]
        total_loss += float(cross_entropy(logits, yb)) * len(yb)
        correct += int(np.count_nonzero(logits.argmax(axis=1) == yb))
    return total_loss / len(X), correct / len(X)


def random_shift(x: np.ndarray, max_shift, rng: np.random.Generator) -> np.ndarray:
    """Shift every image by its own random whole-pixel offset, filling the uncovered border with 0.

    ``x: (N, C, H, W)``; each image moves by ``(dy, dx)`` drawn uniformly from
    ``{-s, ..., s}²`` with ``s = max_shift`` (an int, or ``(s_h, s_w)``); all channels of an image
    move together. Returns a new array of the same shape and dtype; ``x`` is not modified.
    """
    if not isinstance(x, np.ndarray) or x.ndim != 4:
        raise ValueError(
            f"random_shift expects images (N, C, H, W), got shape {getattr(x, 'shape', None)}"
        )
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"rng must be a numpy.random.Generator, got {type(rng).__name__}"
        )
    sh, sw = (max_shift, max_shift) if np.ndim(max_shift) == 0 else tuple(max_shift)
    N, _, H, W = x.shape
    for s, size, axis in ((sh, H, "height"), (sw, W, "width")):
        if (
            isinstance(s, bool)
            or not isinstance(s, (int, np.integer))
            or not 0 <= s < size
        ):
            raise ValueError(
                f"max_shift must be an integer in [0, {size - 1}] for {axis} {size}, got {s!r}"
            )
    if sh == 0 and sw == 0:
        return x.copy()
    dy = rng.integers(-sh, sh + 1, size=N)
    dx = rng.integers(-sw, sw + 1, size=N)
    padded = np.pad(x, ((0, 0), (0, 0), (sh, sh), (sw, sw)))
    out = np.empty_like(x)
    # One slice per distinct offset (at most (2s+1)² of them), not one per image.
    for oy in np.unique(dy):
        rows = dy == oy
        for ox in np.unique(dx[rows]):
            sel = rows & (dx == ox)
            # out[i, j] = x[i - dy, j - dx]  ⇔  padded rows start at s - dy
            out[sel] = padded[sel, :, sh - oy : sh - oy + H, sw - ox : sw - ox + W]
    return out


def fit(
    model,
    X: np.ndarray,
    y: np.ndarray,
    *,
    optimizer,
    epochs: int,
    batch_size: int = 64,
    loss=None,
    X_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
    seed: int = 0,
    augment: Callable | None = None,
    schedule: Callable | None = None,
    progress: bool = False,
    timer=None,
) -> History:
    """Train ``model`` with minibatch gradient descent; returns a :class:`History`.

    - ``X: (N, ...)`` inputs, ``y: (N,)`` int class indices; the data are reshuffled every epoch
      with ``np.random.default_rng(seed)``, so the same seed (and the same initial weights) gives
      the same run. The last minibatch of an epoch may be smaller than ``batch_size``.
    - ``optimizer``: e.g. ``cnnbook.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)``.
    - ``loss``: an object with ``forward(logits, y) -> float`` and ``backward() -> dlogits``;
      default ``cnnbook.layers.SoftmaxCrossEntropy()``.
    - ``augment(xb, rng) -> xb``: applied to each training minibatch, with the run's generator,
      e.g. ``lambda xb, rng: random_shift(xb, 2, rng)``.
    - ``schedule(epoch) -> lr``: sets ``optimizer.lr`` at the start of every epoch.
    - ``progress=True`` shows a ``tqdm`` bar over epochs (off by default; keep it off in notebooks).
    - ``timer``: an object with ``phase(name)`` returning a context manager (see the module
      docstring), e.g. :class:`cnnbook.diagnostics.PhaseTimer`.
    """
    _check_xy(X, y)
    if (X_val is None) != (y_val is None):
        raise ValueError("give both X_val and y_val, or neither")
    if X_val is not None:
        _check_xy(X_val, y_val, "X_val")
    if (
        isinstance(epochs, bool)
        or not isinstance(epochs, (int, np.integer))
        or epochs < 0
    ):
        raise ValueError(f"epochs must be a non-negative integer, got {epochs!r}")
    batch_size = _positive_int(batch_size, "batch_size")
    if not hasattr(optimizer, "step"):
        raise TypeError(
            f"optimizer must have a step() method, got {type(optimizer).__name__}"
        )
    if loss is None:
        from .layers import SoftmaxCrossEntropy

        loss = SoftmaxCrossEntropy()

    def phase(name):
        return timer.phase(name) if timer is not None else nullcontext()

    rng = np.random.default_rng(seed)
    history = History()
    epoch_iter = range(int(epochs))
    bar = None
    if progress:
        try:
            from tqdm.auto import tqdm
        except ImportError:
            raise ImportError(
                "progress=True needs the optional package 'tqdm' (`pip install tqdm`)"
            ) from None
        epoch_iter = bar = tqdm(epoch_iter, desc="training", unit="epoch")
    clock = time.perf_counter
    n = len(X)
    for epoch in epoch_iter:
        if schedule is not None:
            optimizer.lr = float(schedule(epoch))
        history.lr.append(
            float(optimizer.lr) if hasattr(optimizer, "lr") else float("nan")
        )
        t_fwd = t_bwd = t_upd = 0.0
        total_loss, correct = 0.0, 0
        epoch_start = clock()
        order = rng.permutation(n)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            xb, yb = X[idx], y[idx]
            if augment is not None:
                with phase("augment"):
                    xb = augment(xb, rng)
            t0 = clock()
            with phase("forward"):
                logits = model.forward(xb)
                batch_loss = loss.forward(logits, yb)
            t1 = clock()
            with phase("backward"):
                model.backward(loss.backward())
            t2 = clock()
            with phase("update"):
                optimizer.step()
            t3 = clock()
            t_fwd += t1 - t0
            t_bwd += t2 - t1
            t_upd += t3 - t2
            batch_loss = float(batch_loss)
            if not np.isfinite(batch_loss):
                raise FloatingPointError(
                    f"loss became {batch_loss} in epoch {epoch} "
                    f"(learning rate {getattr(optimizer, 'lr', '?')} too large?)"
                )
            total_loss += batch_loss * len(idx)
            correct += int(np.count_nonzero(logits.argmax(axis=1) == yb))
        history.epoch_time.append(clock() - epoch_start)
        history.forward_time.append(t_fwd)
        history.backward_time.append(t_bwd)
        history.update_time.append(t_upd)
        history.train_loss.append(total_loss / n)
        history.train_acc.append(correct / n)
        if X_val is not None:
            with phase("evaluate"):
                val_loss, val_acc = evaluate(model, X_val, y_val)
            history.val_loss.append(val_loss)
            history.val_acc.append(val_acc)
        if timer is not None and hasattr(timer, "end_epoch"):
            timer.end_epoch()  # e.g. cnnbook.diagnostics.PhaseTimer: close this epoch's totals
        if bar is not None:
            info = {"loss": f"{history.train_loss[-1]:.4f}"}
            if X_val is not None:
                info["val_acc"] = f"{history.val_acc[-1]:.4f}"
            bar.set_postfix(info)
    if bar is not None:
        bar.close()
    return history


def save_weights(model, path) -> Path:
    """Save ``model.state_dict()`` to an uncompressed ``.npz`` file (no pickles); returns the path.

    NumPy appends ``.npz`` to a name without it; the returned path is the file actually written.
    """
    state = model.state_dict()
    for key, value in state.items():
        if not isinstance(value, np.ndarray) or value.dtype == object:
            raise TypeError(
                f"state_dict entry {key!r} is not a numeric array: {type(value).__name__}"
            )
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    np.savez(path, **state)
    return path


def load_weights(model, path) -> None:
    """Load weights saved by :func:`save_weights` into ``model`` (in place, bit-exact).

    The file is read with ``allow_pickle=False``. Missing or unexpected keys, or arrays whose
    shape or dtype differ from the model's, raise ``ValueError`` naming them and the file.
    """
    path = Path(path)
    with np.load(path, allow_pickle=False) as archive:
        state = {key: archive[key] for key in archive.files}
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"{path.name} does not fit this model: missing keys {missing}, "
            f"unexpected keys {unexpected}"
        )
    for key, value in state.items():
        want = expected[key]
        if value.shape != want.shape or value.dtype != want.dtype:
            raise ValueError(
                f"{path.name}: {key!r} has shape {value.shape} {value.dtype}, the model "
                f"expects {want.shape} {want.dtype}"
            )
    model.load_state_dict(state)
