"""The training loop: minibatches, shuffling, augmentation, history and timing; weights.

``fit`` runs epochs of minibatch SGD on any model that follows the layer protocol
(``forward``/``backward``/``parameters``), records per-epoch loss and accuracy, and
measures forward and backward wall time *separately* (the performance chapters start
from these numbers).

Timer hook: pass ``timer=`` any object with a ``phase(name)`` method returning a context
manager, e.g. :class:`cnnbook.diagnostics.PhaseTimer`. ``fit`` wraps its work in the
phases ``"augment"``, ``"forward"`` (model forward + loss), ``"backward"`` (loss
backward + model backward), ``"update"`` (optimizer step) and ``"evaluate"``
(validation at the end of each epoch), and calls the timer's ``end_epoch()`` after
every epoch if it has one. The timer sees every minibatch.
"""

from __future__ import annotations

import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

__all__ = [
    "History",
    "fit",
    "train_epoch",
    "evaluate",
    "random_shift",
    "save_weights",
    "load_weights",
]


@dataclass
class History:
    """Per-epoch records of one :func:`fit` call (one entry per epoch in every list).

    ``train_loss``/``train_acc`` average the minibatches seen during the epoch
    (augmented inputs, weights still moving). ``val_loss``/``val_acc`` are measured
    after the epoch, and stay empty when no validation data was given. Times are
    wall-clock seconds summed over the epoch: ``forward_time`` (model forward + loss),
    ``backward_time`` (loss backward + model backward), ``update_time`` (optimizer
    steps), ``epoch_time`` (everything, validation excluded).
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


# --------------------------------------------------------------------------------------
# checks at the boundary
# --------------------------------------------------------------------------------------


def _check_xy(X, y, name: str = "X") -> None:
    if not isinstance(X, np.ndarray) or not isinstance(y, np.ndarray):
        raise TypeError(
            f"{name} and its labels must be NumPy arrays, "
            f"got {type(X).__name__} and {type(y).__name__}"
        )
    if X.ndim < 2:
        raise ValueError(
            f"{name} must have a batch axis first, e.g. (N, C, H, W); "
            f"got shape {X.shape}"
        )
    if y.ndim != 1 or len(y) != len(X):
        raise ValueError(
            f"labels must have shape ({len(X)},) to match {name} {X.shape}, "
            f"got {y.shape}"
        )
    if y.dtype.kind not in "iu":
        raise TypeError(f"labels must be integer class indices, got dtype {y.dtype}")
    if len(X) == 0:
        raise ValueError(f"{name} is empty")


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _check_fit(X, y, X_val, y_val, epochs, batch_size, optimizer, loss):
    """Validate :func:`fit`'s arguments; returns ``(epochs, batch_size, loss)``."""
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
    if not hasattr(optimizer, "step"):
        raise TypeError(
            f"optimizer must have a step() method, got {type(optimizer).__name__}"
        )
    if loss is None:
        from .layers import SoftmaxCrossEntropy

        loss = SoftmaxCrossEntropy()
    return int(epochs), _positive_int(batch_size, "batch_size"), loss


def _finite(batch_loss, optimizer) -> float:
    """The minibatch loss as a float; stop training when it is no longer finite."""
    batch_loss = float(batch_loss)
    if not np.isfinite(batch_loss):
        raise FloatingPointError(
            f"loss became {batch_loss} "
            f"(learning rate {getattr(optimizer, 'lr', '?')} too large?)"
        )
    return batch_loss


def _check_epoch(X, y, batch_size, optimizer, loss) -> int:
    """Validate :func:`train_epoch`'s arguments; returns ``batch_size``."""
    _check_xy(X, y)
    for obj, method in ((optimizer, "step"), (loss, "backward")):
        if not hasattr(obj, method):
            raise TypeError(
                f"{type(obj).__name__} has no {method}() method: "
                "train_epoch needs an optimizer and a loss"
            )
    return _positive_int(batch_size, "batch_size")


# --------------------------------------------------------------------------------------
# bookkeeping around the loop: minibatches, phase clocks, the progress bar
# --------------------------------------------------------------------------------------


def _minibatches(n: int, batch_size: int, rng: np.random.Generator):
    """Index arrays of one epoch's minibatches, in a fresh random order."""
    order = rng.permutation(n)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


def _untimed(name: str):
    """No clock: the default ``phases`` of :func:`train_epoch`."""
    return nullcontext()


class _Phases:
    """Wall-clock seconds per phase of one epoch, also passed on to a ``timer``."""

    def __init__(self, timer=None):
        self.timer = timer

    def start_epoch(self) -> None:
        self.seconds = {"forward": 0.0, "backward": 0.0, "update": 0.0}
        self.started = time.perf_counter()

    @contextmanager
    def __call__(self, name: str):
        start = time.perf_counter()
        with self.timer.phase(name) if self.timer is not None else nullcontext():
            yield
        if name in self.seconds:
            self.seconds[name] += time.perf_counter() - start

    def record(self, history: History) -> None:
        history.epoch_time.append(time.perf_counter() - self.started)
        history.forward_time.append(self.seconds["forward"])
        history.backward_time.append(self.seconds["backward"])
        history.update_time.append(self.seconds["update"])

    def end_epoch(self) -> None:
        if self.timer is not None and hasattr(self.timer, "end_epoch"):
            self.timer.end_epoch()  # e.g. cnnbook.diagnostics.PhaseTimer


class _Progress:
    """An optional ``tqdm`` bar over epochs, showing the latest loss and accuracy."""

    def __init__(self, epochs: int, enabled: bool):
        self.bar = None
        if enabled:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                raise ImportError(
                    "progress=True needs the optional package 'tqdm' "
                    "(`pip install tqdm`)"
                ) from None
            self.bar = tqdm(total=epochs, desc="training", unit="epoch")

    def update(self, history: History) -> None:
        if self.bar is None:
            return
        info = {"loss": f"{history.train_loss[-1]:.4f}"}
        if history.val_acc:
            info["val_acc"] = f"{history.val_acc[-1]:.4f}"
        self.bar.set_postfix(info, refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# --------------------------------------------------------------------------------------
# evaluation, augmentation, the loop
# --------------------------------------------------------------------------------------


def evaluate(
    model, X: np.ndarray, y: np.ndarray, batch_size: int = 256
) -> tuple[float, float]:
    """Mean cross-entropy loss and accuracy of ``model`` on ``(X, y)``, in batches.

    ``X: (N, ...)`` inputs, ``y: (N,)`` int class indices. Returns ``(loss, accuracy)``
    floats. No gradients are computed.
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


def _check_shift(x, max_shift, rng) -> tuple[int, int]:
    """Validate :func:`random_shift`'s arguments; returns ``(s_h, s_w)``."""
    if not isinstance(x, np.ndarray) or x.ndim != 4:
        raise ValueError(
            "random_shift expects images (N, C, H, W), "
            f"got shape {getattr(x, 'shape', None)}"
        )
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"rng must be a numpy.random.Generator, got {type(rng).__name__}"
        )
    sh, sw = (max_shift, max_shift) if np.ndim(max_shift) == 0 else tuple(max_shift)
    for s, size, axis in ((sh, x.shape[2], "height"), (sw, x.shape[3], "width")):
        if (
            isinstance(s, bool)
            or not isinstance(s, (int, np.integer))
            or not 0 <= s < size
        ):
            raise ValueError(
                f"max_shift must be an integer in [0, {size - 1}] for {axis} {size}, "
                f"got {s!r}"
            )
    return int(sh), int(sw)


def random_shift(x: np.ndarray, max_shift, rng: np.random.Generator) -> np.ndarray:
    """Shift every image by its own random whole-pixel offset (the border is set to 0).

    ``x: (N, C, H, W)``; each image moves by ``(dy, dx)`` drawn uniformly from
    ``{-s, ..., s}²`` with ``s = max_shift`` (an int, or ``(s_h, s_w)``); all channels
    of an image move together. Returns a new array of the same shape and dtype.
    """
    sh, sw = _check_shift(x, max_shift, rng)
    if sh == 0 and sw == 0:
        return x.copy()
    N, _, H, W = x.shape
    dy = rng.integers(-sh, sh + 1, size=N)
    dx = rng.integers(-sw, sw + 1, size=N)
    padded = np.zeros((*x.shape[:2], H + 2 * sh, W + 2 * sw), dtype=x.dtype)
    padded[:, :, sh : sh + H, sw : sw + W] = x
    # windows[i, c, a, b]: the H × W window of padded starting at row a, column b (a
    # view). out[i, j] = x[i - dy, j - dx] is the window starting at (s - dy, s - dx),
    # gathered for all images in one indexing step.
    windows = np.lib.stride_tricks.sliding_window_view(padded, (H, W), axis=(2, 3))
    return windows[np.arange(N), :, sh - dy, sw - dx]


def train_epoch(
    model, X, y, optimizer, loss, rng, batch_size=64, augment=None, phases=_untimed
) -> tuple[float, float]:
    """One epoch of minibatch SGD in a fresh random order; returns the mean training
    loss and accuracy. ``phases(name)``: a context manager around each phase (``fit``
    times them); ``augment(xb, rng)``: transforms each minibatch's inputs first."""
    batch_size = _check_epoch(X, y, batch_size, optimizer, loss)
    total_loss, correct = 0.0, 0
    for idx in _minibatches(len(X), batch_size, rng):
        xb, yb = X[idx], y[idx]
        if augment is not None:
            with phases("augment"):
                xb = augment(xb, rng)
        with phases("forward"):
            logits = model.forward(xb)
            batch_loss = _finite(loss.forward(logits, yb), optimizer)
        with phases("backward"):
            model.backward(loss.backward())
        with phases("update"):
            optimizer.step()
        total_loss += batch_loss * len(idx)
        correct += int(np.count_nonzero(logits.argmax(axis=1) == yb))
    return total_loss / len(X), correct / len(X)


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

    - ``X: (N, ...)`` inputs, ``y: (N,)`` int class indices; the data are reshuffled
      every epoch with ``np.random.default_rng(seed)``, so the same seed (and the same
      initial weights) gives the same run. The last minibatch may be smaller.
    - ``optimizer``: e.g. ``cnnbook.optim.SGD(model.parameters(), lr=0.05)``.
    - ``loss``: ``forward(logits, y) -> float`` and ``backward() -> dlogits``; default
      ``cnnbook.layers.SoftmaxCrossEntropy()``.
    - ``augment(xb, rng) -> xb``: applied to each training minibatch, with the run's
      generator, e.g. ``lambda xb, rng: random_shift(xb, 2, rng)``.
    - ``schedule(epoch) -> lr``: sets ``optimizer.lr`` at the start of every epoch.
    - ``progress=True`` shows a ``tqdm`` bar (keep it off in notebooks).
    - ``timer``: an object with ``phase(name)`` returning a context manager (see the
      module docstring), e.g. :class:`cnnbook.diagnostics.PhaseTimer`.

    Each epoch is one :func:`train_epoch`, then the validation data's loss and
    accuracy (:func:`evaluate`) if given.
    """
    epochs, batch_size, loss = _check_fit(
        X, y, X_val, y_val, epochs, batch_size, optimizer, loss
    )
    rng = np.random.default_rng(seed)
    history, phases, bar = History(), _Phases(timer), _Progress(epochs, progress)
    for epoch in range(epochs):
        if schedule is not None:
            optimizer.lr = float(schedule(epoch))
        history.lr.append(float(getattr(optimizer, "lr", np.nan)))
        phases.start_epoch()
        try:
            train_loss, train_acc = train_epoch(
                model, X, y, optimizer, loss, rng, batch_size, augment, phases
            )
        except FloatingPointError as err:
            raise FloatingPointError(f"epoch {epoch}: {err}") from None
        phases.record(history)
        history.train_loss.append(train_loss)
        history.train_acc.append(train_acc)
        if X_val is not None:
            with phases("evaluate"):
                val_loss, val_acc = evaluate(model, X_val, y_val)
            history.val_loss.append(val_loss)
            history.val_acc.append(val_acc)
        phases.end_epoch()
        bar.update(history)
    bar.close()
    return history


# --------------------------------------------------------------------------------------
# saving and loading weights
# --------------------------------------------------------------------------------------


def _check_state(state: dict) -> None:
    for key, value in state.items():
        if not isinstance(value, np.ndarray) or value.dtype == object:
            raise TypeError(
                f"state_dict entry {key!r} is not a numeric array: "
                f"{type(value).__name__}"
            )


def _check_fits(expected: dict, state: dict, name: str) -> None:
    """Raise ``ValueError`` unless ``state`` has the keys, shapes, dtypes expected."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"{name} does not fit this model: missing keys {missing}, "
            f"unexpected keys {unexpected}"
        )
    for key, value in state.items():
        want = expected[key]
        if value.shape != want.shape or value.dtype != want.dtype:
            raise ValueError(
                f"{name}: {key!r} has shape {value.shape} {value.dtype}, "
                f"the model expects {want.shape} {want.dtype}"
            )


def save_weights(model, path) -> Path:
    """Save ``model.state_dict()`` to an uncompressed ``.npz`` file; returns the path.

    No pickles. NumPy appends ``.npz`` to a name without it; the returned path is the
    file actually written.
    """
    state = model.state_dict()
    _check_state(state)
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    np.savez(path, **state)
    return path


def load_weights(model, path) -> None:
    """Load weights saved by :func:`save_weights` into ``model`` (in place, bit-exact).

    The file is read with ``allow_pickle=False``. Missing or unexpected keys, or arrays
    whose shape or dtype differ from the model's, raise ``ValueError`` naming them.
    """
    path = Path(path)
    with np.load(path, allow_pickle=False) as archive:
        state = {key: archive[key] for key in archive.files}
    _check_fits(model.state_dict(), state, path.name)
    model.load_state_dict(state)
