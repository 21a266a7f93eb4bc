"""Diagnostics for training runs: per-phase timers, memory tracking and subnormal
counting.

Chapter 9 uses these to find out why a backward pass can get slower every epoch. The
tools are small on purpose, so that they cost nothing measurable when switched on:

- :class:`PhaseTimer` sums the time of its clock (wall time by default) per named
  phase (``"forward"``, ``"backward"``, ...) within an epoch and keeps one total per
  epoch; optionally it records traced Python memory (``tracemalloc``) and the
  process's resident set size at the end of every epoch.
- :func:`count_subnormal` / :func:`flush_subnormal` find and zero subnormal floats in
  arrays.
- :func:`growth` turns a per-epoch series into one number: late epochs relative to early
  ones.
- :func:`plot_profile` draws forward/backward time and memory per epoch for any run.
- :func:`diagnose` judges per-phase series against the forward control: which phases
  grow, as a ramp or a staircase, whether memory grows, and which suspects remain.
- :func:`compare_profiles` ranks the functions whose own time grew between an early
  and a late cProfile profile.
- :func:`live_objects` counts the live Python objects the garbage collector tracks.
"""

from __future__ import annotations

import cProfile
import math
import os
import pstats
import sys
import time
import tracemalloc
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Mapping

import numpy as np

__all__ = [
    "PhaseTimer",
    "rss_bytes",
    "count_subnormal",
    "subnormal_fraction",
    "flush_subnormal",
    "growth",
    "plot_profile",
    "live_objects",
    "Diagnosis",
    "diagnose",
    "SUSPECTS",
    "CONTROL",
    "ProfileRow",
    "ProfileComparison",
    "compare_profiles",
]


def rss_bytes() -> int:
    """Resident set size of this process in bytes (Linux ``/proc``; 0 where
    unavailable)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def live_objects() -> int:
    """Memory blocks that Python's object allocator has handed out and not freed
    (``sys.getallocatedblocks()``): a cheap count of live Python objects, NumPy array
    headers included, that costs well under a microsecond."""
    return sys.getallocatedblocks()


class PhaseTimer:
    """Time per phase and epoch (wall or CPU: see ``clock``), plus optional memory.

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
        timer.history["backward_median"]  # median seconds per call, per epoch
        timer.history["traced_mb"]        # traced memory at the end of each epoch

    ``track_memory`` starts ``tracemalloc`` (if it is not running already), which slows
    every allocation; leave it off when only time matters.

    ``per_step=True`` also keeps every call: ``timer.steps["backward"][i]`` is step
    ``i``'s backward time, and a step ends with the phase ``step_end`` (``"update"``,
    the last phase of :func:`cnnbook.train.fit`'s step), where ``timer.steps`` also
    records ``"traced_mb"`` (with ``track_memory``) and ``"objects"``
    (:func:`live_objects`). The lists grow with the run: use it for diagnosis, not
    for every training run.

    ``clock()`` reads seconds: wall time (``time.perf_counter``) when None;
    ``time.thread_time`` counts only the CPU time of the calling thread, which
    leaves out the time other processes take the core away (use it with one BLAS
    thread).
    """

    def __init__(
        self,
        track_memory: bool = False,
        per_step: bool = False,
        step_end: str = "update",
        clock=None,
    ):
        self.clock = clock or (lambda: time.perf_counter())
        self.track_memory = track_memory
        self.per_step = per_step
        self.step_end = step_end
        self.history: dict[str, list[float]] = defaultdict(list)
        self.steps: dict[str, list[float]] = defaultdict(list)
        self._calls: dict[str, list[float]] = defaultdict(list)  # this epoch's
        self._epoch_ends: list[int] = []
        self._started_tracemalloc = False
        if track_memory and not tracemalloc.is_tracing():
            tracemalloc.start()
            self._started_tracemalloc = True

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = self.clock()
        try:
            yield
        finally:
            seconds = self.clock() - start
            self._calls[name].append(seconds)
            if self.per_step:
                self.steps[name].append(seconds)
                if name == self.step_end:
                    self._end_step()

    def _end_step(self) -> None:
        if self.track_memory:
            self.steps["traced_mb"].append(tracemalloc.get_traced_memory()[0] / 2**20)
        self.steps["objects"].append(float(live_objects()))

    @property
    def epoch_ends(self) -> list:
        """With ``per_step``: the number of steps recorded at the end of each epoch."""
        return list(self._epoch_ends)

    def end_epoch(self) -> None:
        """Store this epoch's totals (and memory) and start the next epoch from zero."""
        if self.per_step:
            self._epoch_ends.append(len(self.steps.get(self.step_end, ())))
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
        mask = (np.abs(a) < np.finfo(a.dtype).smallest_normal) & (a != 0)
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


# --------------------------------------------------------------------------------------
# diagnosis: which phase grows, in what shape, and what could cause it (issue 16)
# --------------------------------------------------------------------------------------

#: The vocabulary of :func:`diagnose`'s ``suspects``, one name per mechanism.
SUSPECTS = (
    "never-cleared graph",  # a graph/tape/cache kept every step and walked every step
    "instrumentation",  # debug logs re-scanned, hooks piling up
    "leak",  # references kept: memory grows, time need not
    "allocation",  # allocation slows as live objects grow (debug allocators)
    "subnormals",  # values decay below the smallest normal float
)
MIN_POINTS = 6  # shortest series diagnose() will judge
GROWTH_THRESHOLD = 1.2  # late/early median ratio from which a phase "grows"
RELATIVE_THRESHOLD = 1.5  # ... and how much more than its control it must grow
CONTROL = "forward"  # the control phase: what slows every phase slows it too
_MEMORY_KEYS = ("traced_mb", "objects")
_MEMORY_FLOOR = {"traced_mb": 0.25, "objects": 100.0}  # as in the regression guard
_IGNORED_KEYS = ("peak_mb", "rss_mb")  # peaks and RSS: noisy, and RSS never shrinks


@dataclass(frozen=True)
class Diagnosis:
    """What :func:`diagnose` found; see there for the rules."""

    growing: list  # phases whose time grows, and more than the control's
    pattern: dict  # phase -> "flat" | "ramp" | "staircase"
    growth: dict  # phase -> late/early median ratio
    memory_grows: bool  # traced memory or live objects grow (False if not measured)
    suspects: list  # most likely first, drawn from SUSPECTS
    memory_measured: bool = True  # False when no "traced_mb"/"objects" were given
    relative: dict = field(default_factory=dict)  # phase -> growth over its control
    drift: bool = False  # the control grows too: the whole step slowed

    def __str__(self) -> str:
        lines = []
        for phase, ratio in self.growth.items():
            line = f"{phase:<12} {self.pattern[phase]:<9} x{ratio:.2f}"
            if phase in self.relative:
                control = "the rest" if phase == CONTROL else CONTROL
                line += f"  (x{self.relative[phase]:.2f} against {control})"
            lines.append(line)
        if self.drift:
            lines.append(f"{CONTROL}, the control, grows too: the whole step slowed")
        memory = (
            ("grows" if self.memory_grows else "flat")
            if self.memory_measured
            else "not measured"
        )
        lines.append(f"memory: {memory}")
        lines.append("suspects: " + (", ".join(self.suspects) or "none"))
        return "\n".join(lines)


def _series_from(series) -> dict:
    """Phase and memory series from a mapping, a PhaseTimer or a ``fit`` History."""
    if isinstance(series, PhaseTimer):
        if series.steps:  # per-step records judge the shape best
            return {
                key: values
                for key, values in series.steps.items()
                if len(values) == len(series.steps[series.step_end])
            }
        series = series.history
    if not isinstance(series, Mapping):
        if hasattr(series, "forward_time") and hasattr(series, "backward_time"):
            return {  # a cnnbook.train.History: seconds per epoch
                name: getattr(series, name + "_time")
                for name in ("forward", "backward", "update")
                if len(getattr(series, name + "_time", ()))
            }
        raise TypeError(
            "series must map phase names to durations, or be a PhaseTimer or a "
            f"History from fit, got {type(series).__name__}"
        )
    data = {}
    for key, values in series.items():
        if key in _IGNORED_KEYS or (
            key.endswith("_median") and key[: -len("_median")] in series
        ):
            continue
        if key + "_median" in series:  # PhaseTimer: per-step medians beat sums
            values = series[key + "_median"]
        data[str(key)] = values
    return data


def _checked(data: dict) -> dict:
    arrays = {}
    for key, values in data.items():
        a = np.asarray(values, dtype=float)
        if a.ndim != 1:
            raise ValueError(f"{key!r} must be a 1-D sequence, got shape {a.shape}")
        if a.size < MIN_POINTS:
            raise ValueError(
                f"{key!r} has {a.size} values: too short to judge growth and shape; "
                f"need at least {MIN_POINTS} (per step or per epoch)"
            )
        bad = np.flatnonzero(~np.isfinite(a) | (a < 0))
        if bad.size:
            what = "duration" if key not in _MEMORY_KEYS else "value"
            raise ValueError(
                f"{key!r} has a non-finite or negative {what} at index {bad[0]}: "
                f"{float(a[bad[0]])!r}"
            )
        arrays[key] = a
    lengths = {key: a.size for key, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(
            f"series must be measured at the same points, got lengths {lengths}"
        )
    if not any(key not in _MEMORY_KEYS for key in arrays):
        raise ValueError("series has no phase durations, only memory")
    return arrays


def _windows(a: np.ndarray) -> tuple[float, float]:
    w = max(3, a.size // 4)
    return float(np.median(a[:w])), float(np.median(a[-w:]))


def _median3(a: np.ndarray) -> np.ndarray:
    """Running median of 3 with Tukey's end rule: removes isolated spikes, keeps
    steps and ramps."""
    y = a.copy()
    y[1:-1] = np.median(np.stack([a[:-2], a[1:-1], a[2:]]), axis=0)
    y[0] = np.median([a[0], y[1], 3 * y[1] - 2 * y[2]])
    y[-1] = np.median([a[-1], y[-2], 3 * y[-2] - 2 * y[-3]])
    return y


def _robust_sigma(d: np.ndarray) -> float:
    return 1.4826 * float(np.median(np.abs(d - np.median(d))))


def _phase_growth(
    a: np.ndarray, threshold: float = GROWTH_THRESHOLD
) -> tuple[float, bool]:
    early, late = _windows(a)
    if early == 0:
        ratio = 1.0 if late == 0 else math.inf
    else:
        ratio = late / early
    # Noise gate: per-point noise from the spread of the increments (a trend or a
    # few steps shift their median, not their spread); the medians of two windows
    # of w points must differ by more than about 2.3 of their standard errors.
    w = max(3, a.size // 4)
    noise = _robust_sigma(np.diff(a)) / math.sqrt(2)
    grows = ratio >= threshold and late - early > 4 * noise / math.sqrt(w)
    return ratio, grows


def _sse(design: np.ndarray, y: np.ndarray) -> float:
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    return float(np.sum((y - design @ coef) ** 2))


def _change_points(
    y: np.ndarray, k: int, penalty: float = 0.0, min_len: int = 2
) -> list:
    """Up to ``k`` mean-shift change points of ``y`` by binary segmentation: each
    split is the one, over all current segments, that lowers the squared error of
    a piecewise-constant fit the most, and only if by more than ``penalty``."""
    bounds = [0, y.size]
    for _ in range(k):
        best = (penalty, None)
        for s, e in zip(bounds[:-1], bounds[1:]):
            seg = y[s:e]
            if seg.size < 2 * min_len:
                continue
            j = np.arange(min_len, seg.size - min_len + 1)
            c = np.cumsum(seg)
            left, right = c[j - 1] / j, (c[-1] - c[j - 1]) / (seg.size - j)
            gain = j * (seg.size - j) / seg.size * (left - right) ** 2
            i = int(np.argmax(gain))
            if gain[i] > best[0]:
                best = (float(gain[i]), s + int(j[i]))
        if best[1] is None:
            break
        bounds = sorted(bounds + [best[1]])
    return bounds[1:-1]


def _bends(y: np.ndarray, k: int) -> float:
    """Squared error of a continuous piecewise-linear fit with up to ``k`` bends,
    each added greedily where it lowers the error the most."""
    t = np.arange(y.size, dtype=float)
    columns = [np.ones_like(t), t]
    error = _sse(np.column_stack(columns), y)
    for _ in range(k):
        trials = [
            (_sse(np.column_stack(columns + [np.maximum(t - c, 0)]), y), c)
            for c in t[1:-1]
        ]
        best, c = min(trials)
        if best >= error:
            break
        error = best
        columns.append(np.maximum(t - c, 0))
    return error


def _shape(a: np.ndarray, points: int = 60) -> str:
    """ "ramp" or "staircase" for a growing series (see :func:`diagnose`)."""
    if a.size > points:
        a = np.array([np.median(b) for b in np.array_split(a, points)])
    y = _median3(a)
    # A jump must lower the squared error by more than noise could (a BIC-like
    # penalty, noise from the increments' spread): this counts the jumps needed.
    noise = _robust_sigma(np.diff(a)) / math.sqrt(2)  # before smoothing
    penalty = 3 * noise**2 * math.log(y.size)
    cps = _change_points(y, max(1, min(10, y.size // 6)), penalty)
    if not cps:
        return "ramp"
    t = np.arange(y.size, dtype=float)
    steps = _sse(np.column_stack([np.ones_like(t)] + [t >= c for c in cps]), y)
    return "staircase" if steps < 0.75 * _bends(y, len(cps)) else "ramp"


def _memory_grows(key: str, a: np.ndarray) -> bool:
    early, late = _windows(a)
    return late - early > max(0.05 * abs(early), _MEMORY_FLOOR[key])


def _epoch_shape(a: np.ndarray, ends: list) -> str | None:
    """ "staircase" or "ramp" from the epoch boundaries: is the slope *within* the
    epochs (median of the pairwise slopes inside each epoch, pooled) less than half
    the slope *between* them (pairwise slopes of the epoch medians)? None when the
    epochs are too few or too short to tell."""
    starts = [0] + list(ends[:-1])
    if len(ends) < 3 or min(e - s for s, e in zip(starts, ends)) < 6:
        return None
    within, centers, medians = [], [], []
    for s, e in zip(starts, ends):
        t, v = np.arange(s, e, dtype=float), a[s:e]
        i, j = np.triu_indices(t.size, 1)
        within.append((v[j] - v[i]) / (t[j] - t[i]))
        centers.append((s + e - 1) / 2)
        medians.append(float(np.median(v)))
    c, m = np.array(centers), np.array(medians)
    i, j = np.triu_indices(c.size, 1)
    between = float(np.median((m[j] - m[i]) / (c[j] - c[i])))
    inside = float(np.median(np.concatenate(within)))
    return "staircase" if between > 0 and inside < 0.4 * between else "ramp"


def _control_of(arrays: dict, phases: list, phase: str) -> np.ndarray | None:
    """The series ``phase`` is judged against: the forward pass for every other
    phase, the sum of the other phases for the forward pass itself; None when
    there is none (a single phase, or a control with a zero duration)."""
    if CONTROL not in phases or len(phases) < 2:
        return None
    if phase == CONTROL:
        control = sum(arrays[p] for p in phases if p != CONTROL)
    else:
        control = arrays[CONTROL]
    return control if np.all(control > 0) else None


def _against(a: np.ndarray, control: np.ndarray | None) -> np.ndarray:
    """``a`` divided, step by step, by its control (scaled back to the control's
    median): a load or clock change that slows the whole step cancels out."""
    if control is None:
        return a
    return a / control * float(np.median(control))


def _epoch_ends_of(series, epochs, n: int):
    if epochs is None and isinstance(series, PhaseTimer) and series.steps:
        epochs = series.epoch_ends
    if epochs is None:
        return None
    if isinstance(epochs, (int, np.integer)) and not isinstance(epochs, bool):
        if epochs < 1:
            raise ValueError(f"epochs must be positive steps per epoch, got {epochs}")
        ends = list(range(int(epochs), n + 1, int(epochs)))
    else:
        ends = [int(e) for e in epochs]
    if not ends or ends[-1] != n or any(b <= a for a, b in zip([0] + ends, ends)):
        raise ValueError(
            f"epochs must be increasing step counts ending at the series' length {n}, "
            f"got {ends}"
        )
    return ends


def diagnose(series, epochs=None) -> Diagnosis:
    """Which phases get slower, in what shape, and which causes fit the evidence.

    ``series`` maps phase names (``"forward"``, ``"backward"``, ``"update"``, ...) to
    sequences of durations in seconds, one per step or per epoch; optional keys
    ``"traced_mb"`` (tracemalloc MiB) and ``"objects"`` (live-object counts) hold
    memory at the same points. A :class:`PhaseTimer` (or its ``history``) is
    accepted: its per-step records ``timer.steps`` when it kept them (``per_step``),
    else its per-epoch medians ``"<phase>_median"`` in place of the epoch sums;
    ``"peak_mb"``/``"rss_mb"`` are ignored. A ``History`` from
    :func:`cnnbook.train.fit` is accepted too (``forward_time``, ``backward_time``,
    ``update_time``; seconds per epoch).

    Rules (each robust to timing noise, and to a machine that slows down):

    - **growth**: median of the last ``w`` points over the median of the first ``w``,
      ``w = max(3, n // 4)``; medians, so one slow step (a GC pause, a context
      switch) decides nothing. A phase's time **grows by itself** when that ratio
      is at least 1.2 *and* the rise exceeds what noise could make,
      ``4 sigma / sqrt(w)``: the noise sigma is estimated from the spread (MAD) of
      the point-to-point increments, which a trend or a few steps do not inflate.
    - **the control**: a busy neighbor core, a clock that drops, a debug allocator
      slow *every* phase of a step together, so a phase is judged against a
      control measured at the same steps: every phase against ``"forward"``
      (``CONTROL``), the forward pass against the sum of the other phases.
      ``relative`` is the growth (same windows) of the phase's time divided, step
      by step, by its control's: 1.0 when both drift alike. A phase is
      **growing** when its time grows by itself *and* grows clearly more than its
      control's: ``relative`` at least 1.5 (``RELATIVE_THRESHOLD``) and beyond
      the noise of that quotient. Uniform drift is therefore never growth, while a
      backward that triples as forward drifts by 1.3 is (``relative`` 2.3). With a
      single phase, or no ``"forward"``, there is no control: the first rule
      alone decides. ``drift`` is True when the control's own time grows (the
      whole step slowed) and it is not itself the phase that grows.
    - **pattern**: ``"flat"`` for a phase that is not growing (shrinking included).
      A growing phase is a ``"staircase"`` or a ``"ramp"`` by which of two shapes
      fits its time divided by its control's (so that the control's own steps, a
      neighbor's job starting, say, are not taken for the phase's) better with as
      many breakpoints: the series is first reduced to
      ``m <= 60`` block medians and smoothed by a running median of 3, so that isolated
      spikes and most noise are gone; binary segmentation then places jumps, each
      only if it lowers the squared error by more than noise could (``3 sigma^2
      ln m``, sigma from the spread of the increments; at most ``min(10, m //
      6)`` jumps); the series is a staircase when this piecewise-*constant* fit
      leaves less than 0.75 of the squared error of a continuous
      piecewise-*linear* fit with as many bends (placed greedily), else a ramp.
      Why: a ramp adds a little at every step (a cache walked once more per step,
      values decaying), which bends fit and jumps can only quantize; a staircase
      adds nothing between events and a lot at each one (a hook registered per
      epoch), which jumps fit and bends can only smear. Where noise drowns the
      difference, the answer is "ramp". Per-epoch sums or medians turn a per-epoch
      staircase into a ramp: judge the shape on per-step series.
    - **pattern, when the epochs are known** (``epochs``: steps per epoch, or the
      step counts at which epochs end; taken from a per-step :class:`PhaseTimer`
      automatically), with at least 3 epochs of at least 6 steps: a growing phase
      is a ``"staircase"`` when its slope *within* the epochs (the median of all
      pairwise slopes between steps of the same epoch, Theil-Sen style) is less
      than 0.4 of its slope *between* them (the median pairwise slope of the epochs'
      medians against their centers), else a ``"ramp"``. A ramp has the same slope
      within and between; a cost added once per epoch has none within. This test
      uses where the events are, and is far more robust to noise than the blind
      one above.
    - **memory_grows**: ``"traced_mb"`` or ``"objects"`` rises, late window against
      early window, by more than 5% and by more than 0.25 MiB or 100 objects.

    ``suspects`` (most likely first, from :data:`SUSPECTS`) follow the evidence:

    - nothing grows: ``"allocation"`` if the control drifted (``drift``: a debug
      allocator slows every phase that allocates, a cache only the phase that
      walks it; the other explanation is the machine itself, so re-measure),
      then ``"leak"`` if memory grows; ``[]`` when neither;
    - a growing phase is a staircase: ``"instrumentation"`` first (something is
      added at discrete events, and every later step pays for it);
    - time and memory grow: ``"never-cleared graph"`` (each step keeps its inputs
      and the growing phase walks them all; the control, which does not grow as
      much, rules out a *global* cause), then ``"instrumentation"`` (logs
      re-scanned also grow), ``"allocation"`` (an allocation made in that phase
      alone that gets slower cannot be ruled out by these series), ``"leak"`` (a
      leak alone does not cost time, but can come with any of them). The list
      holds everything these series cannot rule out, most likely first; the
      fingerprints of Chapter 9 rule out more;
    - time grows, memory flat: ``"subnormals"`` (nothing is kept, values decay:
      count subnormals in that phase's tensors), then ``"allocation"``. A
      never-cleared graph or a leak would show in memory, so they are not
      suspects;
    - time grows, memory not measured (``memory_measured`` False): nothing rules
      a cause out, so ``["never-cleared graph", "subnormals", "instrumentation",
      "allocation"]``, reordered by the staircase rule above.

    Raises ``ValueError`` for series shorter than ``MIN_POINTS`` (6) points, of
    ``epochs`` that do not fit the series, of
    unequal lengths, with non-finite or negative values, or with no phase at all.
    """
    arrays = _checked(_series_from(series))
    phases = [key for key in arrays if key not in _MEMORY_KEYS]
    n = len(next(iter(arrays.values())))
    ends = _epoch_ends_of(series, epochs, n)
    memory_keys = [key for key in _MEMORY_KEYS if key in arrays]
    growth_of, relative, pattern, growing, by_itself = {}, {}, {}, [], []
    for phase in phases:
        ratio, grows = _phase_growth(arrays[phase])
        growth_of[phase] = ratio
        if grows:
            by_itself.append(phase)
        control = _control_of(arrays, phases, phase)
        judged = _against(arrays[phase], control)
        if control is not None:
            relative[phase], more = _phase_growth(judged, RELATIVE_THRESHOLD)
            grows = grows and more
        shape = _epoch_shape(judged, ends) if ends and grows else None
        pattern[phase] = (shape or _shape(judged)) if grows else "flat"
        if grows:
            growing.append(phase)
    memory = any(_memory_grows(key, arrays[key]) for key in memory_keys)
    measured = bool(memory_keys)
    drift = CONTROL in by_itself and CONTROL not in growing and len(phases) >= 2
    staircase = any(pattern[p] == "staircase" for p in growing)
    if not growing:
        order = (["allocation"] if drift else []) + (["leak"] if memory else [])
    elif memory:
        order = ["never-cleared graph", "instrumentation", "allocation", "leak"]
    elif measured:
        order = ["subnormals", "allocation"]
    else:
        order = ["never-cleared graph", "subnormals", "instrumentation", "allocation"]
    if staircase:
        order = ["instrumentation"] + [s for s in order if s != "instrumentation"]
    return Diagnosis(
        growing=growing,
        pattern=pattern,
        growth=growth_of,
        memory_grows=memory,
        suspects=order,
        memory_measured=measured,
        relative=relative,
        drift=drift,
    )


# --------------------------------------------------------------------------------------
# profiles compared: which functions' time grew between an early and a late profile
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProfileRow:
    """One function of :func:`compare_profiles`: own seconds early and late."""

    function: str
    early: float
    late: float
    early_calls: int | None = None
    late_calls: int | None = None

    @property
    def grown(self) -> float:
        return self.late - self.early

    @property
    def ratio(self) -> float:
        return self.late / self.early if self.early > 0 else math.inf


_WIDTH = 88


def _fit_name(name: str, width: int) -> str:
    """Cut on the right: the function's name comes first, its file after."""
    return name if len(name) <= width else name[: width - 1] + "…"


@dataclass(frozen=True)
class ProfileComparison:
    """Functions whose time grew, largest growth first; prints within 88 columns."""

    rows: tuple

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def __getitem__(self, i):
        return self.rows[i]

    @property
    def functions(self) -> list:
        return [row.function for row in self.rows]

    def __str__(self) -> str:
        if not self.rows:
            return "no function's time grew"
        tail = f"{'early s':>8} {'late s':>8} {'grown s':>9} {'ratio':>7}"
        tail += f" {'calls':>7} {'calls':>7}"
        name_width = _WIDTH - len(tail) - 1
        lines = [f"{'function (own time)':<{name_width}} {tail}"]
        lines.append(
            f"{'':<{name_width}} {'':>8} {'':>8} {'':>9} {'':>7}"
            f" {'early':>7} {'late':>7}"
        )
        for r in self.rows:
            ratio = "new" if math.isinf(r.ratio) else f"{r.ratio:.1f}x"
            calls = " ".join(
                f"{'-' if c is None else c:>7}" for c in (r.early_calls, r.late_calls)
            )
            lines.append(
                f"{_fit_name(r.function, name_width):<{name_width}} "
                f"{r.early:>8.4f} {r.late:>8.4f} {r.grown:>+9.4f} {ratio:>7} {calls}"
            )
        return "\n".join(line.rstrip() for line in lines)

    def __repr__(self) -> str:
        return str(self)


def _label(key) -> str:
    filename, line, name = key
    if filename == "~":  # built-ins: pstats' own convention
        return name
    return f"{name} ({os.path.basename(filename)}:{line})"


_PROFILER_OFF = "<method 'disable' of '_lsprof.Profiler' objects>"


def _profile_records(profile, which: str) -> dict:
    """function -> (own seconds, calls or None)."""
    if isinstance(profile, cProfile.Profile):
        profile = pstats.Stats(profile)
    if isinstance(profile, pstats.Stats):
        records = {}
        for key, (_, calls, own, _, _) in profile.stats.items():
            if key[2] == _PROFILER_OFF:  # the profiler switching itself off
                continue
            label = _label(key)
            old_own, old_calls = records.get(label, (0.0, 0))
            records[label] = (old_own + own, old_calls + calls)
        return records
    if isinstance(profile, Mapping):
        records = {}
        for name, seconds in profile.items():
            total = float(np.sum(seconds))
            if not math.isfinite(total) or total < 0:
                raise ValueError(
                    f"{which} profile: {name!r} must be finite non-negative seconds, "
                    f"got {total!r}"
                )
            records[str(name)] = (total, None)
        return records
    raise TypeError(
        f"{which} profile must be a cProfile.Profile, a pstats.Stats or a dict of "
        f"seconds per phase/function, got {type(profile).__name__}"
    )


def compare_profiles(early, late, top: int = 10) -> ProfileComparison:
    """The functions whose time grew from an ``early`` to a ``late`` profile.

    Each profile is a ``cProfile.Profile``, a ``pstats.Stats``, or a dict
    of per-phase (or per-function) records: name -> seconds, or a sequence of
    seconds that is summed (e.g. one epoch of a :class:`PhaseTimer`'s calls). Both
    should cover the same amount of work (one epoch each, say). Functions are
    compared by *own* time (pstats' ``tottime``): cumulative time grows in every
    caller of a slow function, own time only where the time is spent. Returns at
    most ``top`` rows, ranked by growth in seconds (largest first; ties by ratio),
    functions whose time did not grow left out; a function absent early counts as
    0 s there (ratio "new"). Functions are labeled ``name (file.py:line)``,
    built-ins by name alone. ``print`` it for a table within 88 columns; each row
    (:class:`ProfileRow`) has ``function``, ``early``, ``late``, ``grown``,
    ``ratio`` and call counts (None for dict records).
    """
    if not isinstance(top, int) or top < 1:
        raise ValueError(f"top must be a positive integer, got {top!r}")
    before = _profile_records(early, "early")
    after = _profile_records(late, "late")
    rows = []
    for name, (late_s, late_calls) in after.items():
        early_s, early_calls = before.get(
            name, (0.0, 0 if late_calls is not None else None)
        )
        row = ProfileRow(name, early_s, late_s, early_calls, late_calls)
        if row.grown > 0:
            rows.append(row)
    rows.sort(key=lambda r: (-r.grown, -r.ratio, r.function))
    return ProfileComparison(tuple(rows[:top]))
