"""Diagnostics helpers, and the regression guard: training must not grow memory or live
objects.

The guard counts memory and objects, never seconds, so a noisy machine cannot fail it; a
planted leak of one minibatch per step must fail it (tested below), so it is not a test
that cannot fail.
"""

import gc

import numpy as np
import pytest

from cnnbook import diagnostics
from cnnbook.diagnostics import (
    PhaseTimer,
    count_subnormal,
    flush_subnormal,
    growth,
    plot_profile,
    subnormal_fraction,
)
from cnnbook.models import seed_cnn
from cnnbook.optim import SGD
from cnnbook.train import fit

TINY32 = np.finfo(np.float32).smallest_normal


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_phase_timer_sums_and_medians_per_epoch(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(diagnostics.time, "perf_counter", clock)
    timer = PhaseTimer()
    for epoch_durations in ([1.0, 2.0, 6.0], [3.0, 3.0, 3.0]):
        for d in epoch_durations:
            with timer.phase("backward"):
                clock.now += d
            with timer.phase("forward"):
                clock.now += 0.5
        timer.end_epoch()
    assert timer.history["backward"] == [9.0, 9.0]
    assert timer.history["backward_median"] == [2.0, 3.0]
    assert timer.history["forward"] == [1.5, 1.5]
    assert timer.epochs == 2


def test_phase_timer_records_time_even_when_the_phase_raises(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(diagnostics.time, "perf_counter", clock)
    timer = PhaseTimer()
    with pytest.raises(ZeroDivisionError):
        with timer.phase("forward"):
            clock.now += 2.0
            _ = 1 / 0
    timer.end_epoch()
    assert timer.history["forward"] == [2.0]


def test_phase_timer_tracks_memory_that_stays_alive():
    timer = PhaseTimer(track_memory=True)
    try:
        timer.end_epoch()
        kept = np.ones(2**21)  # 16 MiB, alive across the epoch boundary
        timer.end_epoch()
        assert timer.history["traced_mb"][1] - timer.history["traced_mb"][0] > 15
        assert len(timer.history["rss_mb"]) == 2
        del kept
    finally:
        timer.close()


def test_count_and_flush_subnormals():
    x = np.array([0.0, 1.0, TINY32, TINY32 / 2, -TINY32 / 4, 1e-45], np.float32)
    assert count_subnormal(x) == 3
    assert count_subnormal([x, x.astype(np.float64)]) == 3  # all normal in float64
    assert subnormal_fraction(x) == pytest.approx(0.5)
    assert flush_subnormal(x) == 3
    np.testing.assert_array_equal(x, np.array([0, 1, TINY32, 0, 0, 0], np.float32))
    assert count_subnormal(x) == 0


def test_momentum_decay_becomes_subnormal_and_stays_there():
    v = np.ones(1, np.float32)
    counts = []
    for _ in range(3000):
        v *= np.float32(0.9)
        counts.append(count_subnormal(v))
    assert counts.index(1) == 828  # 0.9**829 < 2**-126 ≈ 1.18e-38
    assert counts[-1] == 1 and v[0] > 0  # rounding keeps it at 4·2**-149 forever


def test_subnormal_helpers_reject_integer_arrays():
    with pytest.raises(TypeError, match="floating-point"):
        count_subnormal(np.arange(3))


def test_growth():
    assert growth([1, 1, 1, 1]) == 1.0
    assert growth([1.0, 1.2, 5.0, 2.0, 2.2]) == pytest.approx(2.1 / 1.1)
    with pytest.raises(ValueError, match="at least 4"):
        growth([1, 2, 3])
    with pytest.raises(ValueError, match="positive"):
        growth([0, 0, 1, 1])


def test_plot_profile_accepts_a_timer_and_a_history_dict():
    import matplotlib

    matplotlib.use("Agg", force=True)
    timer = PhaseTimer()
    for _ in range(3):
        with timer.phase("forward"):
            pass
        with timer.phase("backward"):
            pass
        timer.end_epoch()
    ax = plot_profile(timer)
    assert len(ax.lines) == 2
    ax = plot_profile(
        {"forward_time": [1, 2], "backward_time": [2, 3], "traced_mb": [1, 1]}
    )
    assert ax.get_xlabel() == "epoch"
    with pytest.raises(ValueError, match="forward/backward"):
        plot_profile({"loss": [1, 2]})


# --- the regression guard
# -------------------------------------------------------------------------


def _train_and_measure(augment=None, epochs=6):
    """Train a small seed model; return (traced MiB growth, live-object growth) after
    warm-up."""
    rng = np.random.default_rng(0)
    X = rng.random((256, 1, 12, 12), dtype=np.float32)
    y = rng.integers(0, 10, 256)
    model = seed_cnn(input_size=12, rng=0)
    optimizer = SGD(model.parameters(), lr=0.05, momentum=0.9)
    objects = []

    class CountingTimer(PhaseTimer):
        def end_epoch(self):
            super().end_epoch()
            gc.collect()
            objects.append(len(gc.get_objects()))

    timer = CountingTimer(track_memory=True)
    try:
        history = fit(
            model,
            X,
            y,
            optimizer=optimizer,
            epochs=epochs,
            batch_size=32,
            augment=augment,
            timer=timer,
        )
    finally:
        timer.close()
    assert len(timer.history["backward"]) == history.epochs == epochs
    traced = timer.history["traced_mb"]
    # Epoch 1 is warm-up (caches, first allocations); compare the last epoch with the
    # second.
    return traced[-1] - traced[1], objects[-1] - objects[1]


def test_training_keeps_memory_and_live_objects_flat():
    memory_growth, object_growth = _train_and_measure()
    assert memory_growth < 0.25, (
        f"traced memory grew by {memory_growth:.2f} MiB over 4 epochs"
    )
    assert object_growth < 100, (
        f"{object_growth} more live Python objects after 4 epochs"
    )


def test_the_guard_catches_a_planted_leak():
    kept = []

    def leaky_augment(xb, rng):
        kept.append(xb)  # one minibatch (32·12·12 float32 = 18 KiB) kept per step
        return xb

    memory_growth, object_growth = _train_and_measure(augment=leaky_augment)
    assert memory_growth >= 0.25  # the same bound as above now fails: 32 steps × 18 KiB
