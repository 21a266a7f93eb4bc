"""Diagnostics for training runs: per-phase timers, memory tracking and subnormal
counting.

Chapter 9 uses these to find out why a backward pass can get slower every epoch. The
tools are small on purpose, so that they cost nothing measurable when switched on:

- :class:`PhaseTimer` sums wall time per named phase (``"forward"``, ``"backward"``,
  ...) within an epoch and keeps one total per epoch; optionally it records traced
  Python memory (``tracemalloc``) and the process's resident set size at the end of
  every epoch.
- :func:`count_subnormal` / :func:`flush_subnormal` find and zero subnormal floats in
  arrays.
- :func:`growth` turns a per-epoch series into one number: late epochs relative to early
  ones.
- :func:`plot_profile` draws forward/backward time and memory per epoch for any run.
"""

from __future__ import annotations

import os
import time
import tracemalloc
from collections import defaultdict
from contextlib import contextmanager
from typing import Iterable, Iterator

import numpy as np

__all__ = [
    "PhaseTimer",
    "rss_bytes",
    "count_subnormal",
    "subnormal_fraction",
    "flush_subnormal",
    "growth",
    "plot_profile",
]


def rss_bytes() -> int:
    """Resident set size of this process in bytes (Linux ``/proc``; 0 where
    unavailable)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


class PhaseTimer:
    """Wall time per phase and epoch, plus optional memory per epoch.

    Use it around the phases of a training step, and close each epoch::

        timer = PhaseTimer(track_memory=True)
        for epoch in range(epochs):
            for xb, yb in batches:
                with timer.phase("forward"):
                    loss = ...
                with timer.phase("backward"):
                    ...
            timer.end_epoch()
        timer.history["backward"]         # seconds per epoch
        timer.history["backward_median"]  # median seconds per call, per epoch: robust
                                          to noise
        timer.history["traced_mb"]        # traced memory at the end of each epoch

    ``track_memory`` starts ``tracemalloc`` (if it is not running already), which slows
    every allocation; leave it off when only time matters.
    """

    def __init__(self, track_memory: bool = False):
        self.track_memory = track_memory
        self.history: dict[str, list[float]] = defaultdict(list)
        self._calls: dict[str, list[float]] = defaultdict(
            list
        )  # this epoch's call durations
        self._started_tracemalloc = False
        if track_memory and not tracemalloc.is_tracing():
            tracemalloc.start()
            self._started_tracemalloc = True

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self._calls[name].append(time.perf_counter() - start)

    def end_epoch(self) -> None:
        """Store this epoch's totals (and memory) and start the next epoch from zero."""
        for name, calls in self._calls.items():
            self.history[name].append(float(np.sum(calls)))
            self.history[name + "_median"].append(float(np.median(calls)))
        self._calls.clear()
        if self.track_memory:
            current, peak = tracemalloc.get_traced_memory()
            self.history["traced_mb"].append(current / 2**20)
            self.history["peak_mb"].append(peak / 2**20)
            self.history["rss_mb"].append(rss_bytes() / 2**20)
            tracemalloc.reset_peak()

    @property
    def epochs(self) -> int:
        return max((len(v) for v in self.history.values()), default=0)

    def close(self) -> None:
        """Stop ``tracemalloc`` if this timer started it."""
        if self._started_tracemalloc:
            tracemalloc.stop()
            self._started_tracemalloc = False


def _float_arrays(arrays) -> Iterable[np.ndarray]:
    if isinstance(arrays, np.ndarray):
        arrays = [arrays]
    for a in arrays:
        a = np.asarray(a)
        if a.dtype.kind != "f":
            raise TypeError(
                f"subnormals exist only in floating-point arrays, got dtype {a.dtype}"
            )
        yield a


def count_subnormal(arrays) -> int:
    """How many entries are subnormal: nonzero but smaller in magnitude than the
    smallest normal."""
    total = 0
    for a in _float_arrays(arrays):
        tiny = np.finfo(a.dtype).smallest_normal
        magnitude = np.abs(a)
        total += int(np.count_nonzero((magnitude < tiny) & (magnitude > 0)))
    return total


def subnormal_fraction(arrays) -> float:
    """Fraction of all entries that are subnormal (0.0 for no entries)."""
    arrays = list(_float_arrays(arrays))
    size = sum(a.size for a in arrays)
    return count_subnormal(arrays) / size if size else 0.0


def flush_subnormal(arrays) -> int:
    """Set subnormal entries to zero, in place ("flush to zero" in software); returns
    how many."""
    flushed = 0
    for a in _float_arrays(arrays):
        mask = np.abs(a) < np.finfo(a.dtype).smallest_normal
        mask &= a != 0
        flushed += int(np.count_nonzero(mask))
        a[mask] = 0
    return flushed


def growth(series, early: int = 2, late: int = 2) -> float:
    """Median of the last ``late`` values divided by the median of the first ``early``
    values.

    1.0 means flat. Medians, not means, so that one noisy epoch does not decide the
    answer.
    """
    values = np.asarray(series, dtype=float)
    if values.ndim != 1 or values.size < early + late:
        raise ValueError(
            f"need a 1-D series of at least {early + late} values, "
            f"got shape {values.shape}"
        )
    first = np.median(values[:early])
    if first <= 0:
        raise ValueError(
            f"the early values must be positive to measure growth, got median {first}"
        )
    return float(np.median(values[-late:]) / first)


def plot_profile(history, title: str = "", ax=None):
    """Forward/backward time per epoch (and memory, when recorded) for one run.

    ``history`` is a :class:`PhaseTimer`, its ``history`` dict, or any mapping with
    per-epoch lists: the per-step medians ``"forward_median"``/``"backward_median"`` are
    plotted when present (robust to noise), else the epoch totals
    ``"forward"``/``"backward"`` (``forward_time``/
    ``backward_time``, as in :class:`cnnbook.train.History`, are accepted too); memory
    ``"traced_mb"`` gets a second panel when ``ax`` is not given. Returns the time
    plot's axes.
    """
    import matplotlib.pyplot as plt

    data = history.history if isinstance(history, PhaseTimer) else history
    if not isinstance(data, dict):
        data = vars(data)
    choices = [
        ("forward_median", "backward_median", "ms per step (median)"),
        ("forward", "backward", "ms per epoch"),
        ("forward_time", "backward_time", "ms per epoch"),
    ]
    for forward_key, backward_key, unit in choices:  # noqa: B007 - used after break
        if forward_key in data and backward_key in data:
            forward, backward = data[forward_key], data[backward_key]
            break
    else:
        raise ValueError("history has no forward/backward times per epoch")
    memory = data.get("traced_mb")
    mem_ax = None
    if ax is None:
        ncols = 2 if memory else 1
        size = (7.8, 3.0) if memory else (5.2, 3.0)
        _, axes = plt.subplots(1, ncols, figsize=size, squeeze=False)
        ax, mem_ax = axes[0, 0], (axes[0, 1] if memory else None)
    epochs = np.arange(1, len(forward) + 1)
    times = np.concatenate([forward, backward]) * 1e3
    ax.plot(epochs, np.asarray(forward) * 1e3, "o-", label="forward")
    ax.plot(epochs, np.asarray(backward) * 1e3, "s-", label="backward")
    # Start at zero, so growth is judged against the whole bar; headroom keeps the
    # legend clear.
    ax.set(
        xlabel="epoch",
        ylabel=unit,
        title=title or "time per epoch",
        ylim=(0, 1.3 * times.max()),
    )
    ax.legend(loc="upper left")
    if mem_ax is not None:
        mem_ax.plot(epochs, memory, "o-", color="tab:red", label="traced (tracemalloc)")
        mem_ax.set(
            xlabel="epoch",
            ylabel="MiB",
            title="memory at the end of each epoch",
            ylim=(0, 1.3 * max(memory)),
        )
        mem_ax.legend(loc="upper left")
    return ax
