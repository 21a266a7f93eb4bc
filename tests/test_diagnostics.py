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


# --- diagnose: synthetic series, no clocks
# -------------------------------------------------------------------------

from cnnbook.diagnostics import compare_profiles, diagnose  # noqa: E402

STEPS = 120


def _noise(seed, level=0.05, n=STEPS):
    """Multiplicative timing noise, with a few slow outliers (GC pauses)."""
    rng = np.random.default_rng(seed)
    noise = 1 + level * rng.standard_normal(n)
    noise[rng.choice(n, 3, replace=False)] *= 3  # isolated spikes: judged by nothing
    return noise


def _flat(seed, ms=1.0):
    return 1e-3 * ms * _noise(seed)


def _ramp(seed, ms=1.0, to=2.0):
    return 1e-3 * ms * np.linspace(1.0, to, STEPS) * _noise(seed)


def _staircase(seed, ms=1.0, steps=3, height=0.4):
    level = 1 + height * (np.arange(STEPS) // (STEPS // (steps + 1)))
    return 1e-3 * ms * level * _noise(seed)


def test_flat_noise_is_flat_and_has_no_suspects():
    d = diagnose({"forward": _flat(1), "backward": _flat(2, ms=2), "update": _flat(3)})
    assert d.growing == []
    assert d.pattern == {"forward": "flat", "backward": "flat", "update": "flat"}
    assert all(abs(r - 1) < 0.1 for r in d.growth.values())
    assert d.suspects == [] and not d.memory_grows and not d.memory_measured


def test_flat_noise_never_grows_over_many_seeds():
    for seed in range(50):
        assert (
            diagnose({"forward": _flat(seed), "backward": _flat(seed + 1)}).growing
            == []
        )


def test_a_noisy_ramp_in_backward_with_growing_memory_is_a_never_cleared_graph():
    traced = np.linspace(10.0, 40.0, STEPS)  # every step keeps its inputs
    d = diagnose({"forward": _flat(4), "backward": _ramp(5), "traced_mb": traced})
    assert d.growing == ["backward"]
    assert d.pattern == {"forward": "flat", "backward": "ramp"}
    assert d.growth["backward"] == pytest.approx(1.66, abs=0.1)  # quarter windows
    assert d.memory_grows
    assert d.suspects[0] == "never-cleared graph"
    assert set(d.suspects) <= set(diagnostics.SUSPECTS)


def test_shapes_over_many_seeds():
    # Deterministic (seeded); rates rather than every seed, since a noisy ramp can
    # happen to look stepped, and a noisy staircase smeared.
    def rate(make, expected):
        patterns = [
            diagnose({"backward": make(s)}).pattern["backward"] for s in range(30)
        ]
        return patterns.count(expected) / len(patterns)

    assert rate(_ramp, "ramp") >= 0.9
    assert rate(_staircase, "staircase") >= 0.9
    assert rate(lambda s: _staircase(s, steps=2, height=1.0), "staircase") >= 0.9


def test_a_staircase_points_at_instrumentation():
    objects = np.full(STEPS, 5000.0)  # a hook per epoch: a handful of objects
    d = diagnose({"forward": _flat(6), "backward": _staircase(7), "objects": objects})
    assert d.pattern["backward"] == "staircase"
    assert d.growing == ["backward"] and not d.memory_grows
    assert d.suspects[0] == "instrumentation"


def test_growth_in_update_with_flat_memory_points_at_subnormals():
    d = diagnose(
        {
            "forward": _flat(8),
            "backward": _flat(9, ms=2),
            "update": _ramp(10, ms=0.3, to=3.0),
            "traced_mb": 12 + 0.01 * np.sin(np.arange(STEPS)),
        }
    )
    assert d.growing == ["update"] and d.pattern["update"] == "ramp"
    assert d.pattern["forward"] == d.pattern["backward"] == "flat"
    assert not d.memory_grows and d.memory_measured
    assert d.suspects == ["subnormals", "allocation"]


def test_memory_growing_without_time_growth_is_a_leak():
    objects = 40_000 + 50 * np.arange(STEPS)
    d = diagnose({"forward": _flat(11), "backward": _flat(12), "objects": objects})
    assert d.growing == [] and d.memory_grows
    assert d.suspects == ["leak"]


def test_every_phase_growing_alike_is_drift_not_growth():
    objects = 40_000 + 200 * np.arange(STEPS)
    d = diagnose({"forward": _ramp(13), "backward": _ramp(14), "objects": objects})
    assert d.growing == [] and d.drift
    assert d.pattern == {"forward": "flat", "backward": "flat"}
    assert d.growth["forward"] > 1.5 and d.growth["backward"] > 1.5  # by itself
    assert all(abs(r - 1) < 0.15 for r in d.relative.values())  # against the other
    assert d.suspects == ["allocation", "leak"]  # a global cause, or the machine


# --- the forward control: a machine that slows down is not a phase that grows
# -------------------------------------------------------------------------


def _load(seed, n=STEPS):
    """A busy neighbour core that comes and goes (runs of 5 to 40 steps), on top of
    a clock drifting by 1.3 over the run: the factor each step's time is slowed
    by, per unit of a phase's sensitivity to it."""
    rng = np.random.default_rng(1000 + seed)
    busy, on = np.zeros(n), bool(rng.integers(2))
    i = 0
    while i < n:
        length = int(rng.integers(5, 41))
        busy[i : i + length] = on
        i, on = i + length, not on
    return busy, np.linspace(1.0, 1.3, n)


def _under_load(series, busy, clock, sensitivity):
    """Phases slow by 1.6x when the neighbour is busy (1.6 to 1.9x by phase: a
    memory-bound phase suffers more) and by the drifting clock."""
    return {
        phase: values * (1 + 0.6 * sensitivity[phase] * busy) * clock
        for phase, values in series.items()
    }


SENSITIVITY = {"forward": 1.0, "backward": 1.2, "update": 1.5}


def _ramp_by(seed, ratio, ms=1.0):
    """A noisy ramp whose late/early window medians (quarters) differ by ``ratio``."""
    early, late = 14.5 / (STEPS - 1), 104.5 / (STEPS - 1)  # window median indices
    slope = (ratio - 1) / (late - ratio * early)
    return 1e-3 * ms * (1 + slope * np.linspace(0, 1, STEPS)) * _noise(seed)


def test_uniform_drift_of_all_phases_is_not_growth():
    flat = {"forward": _flat(20), "backward": _flat(21, ms=2), "update": _flat(22)}
    drifting = {p: v * np.linspace(1.0, 1.3, STEPS) for p, v in flat.items()}
    d = diagnose(drifting)
    assert d.growth["forward"] == pytest.approx(1.22, abs=0.05)  # it does drift
    assert d.growing == [] and d.drift
    assert set(d.pattern.values()) == {"flat"}
    # the worst case: the neighbour idle in the first half, busy in the second
    busy = (np.arange(STEPS) >= STEPS // 2).astype(float)
    d = diagnose(_under_load(flat, busy, np.ones(STEPS), SENSITIVITY))
    assert d.growth["update"] > 1.8 and d.growth["forward"] > 1.5
    assert d.growing == [] and d.drift
    assert d.suspects == ["allocation"]


def test_a_neighbour_that_comes_and_goes_is_never_growth_over_many_seeds():
    for seed in range(30):
        flat = {
            "forward": _flat(seed),
            "backward": _flat(seed + 1, ms=2),
            "update": _flat(seed + 2, ms=0.3),
        }
        d = diagnose(_under_load(flat, *_load(seed), SENSITIVITY), epochs=12)
        assert d.growing == [], (seed, d.growth, d.relative)


def test_backward_tripling_while_forward_drifts_by_1_3_is_growth():
    series = {
        "forward": _ramp_by(30, 1.3),
        "backward": _ramp_by(31, 3.0, ms=2),
        "update": _ramp_by(32, 1.3, ms=0.3),
        "traced_mb": np.linspace(10.0, 40.0, STEPS),
    }
    d = diagnose(series)
    assert d.growth["forward"] == pytest.approx(1.3, abs=0.08)
    assert d.growth["backward"] == pytest.approx(3.0, abs=0.2)
    assert d.relative["backward"] == pytest.approx(3.0 / 1.3, abs=0.25)
    assert d.growing == ["backward"] and d.pattern["backward"] == "ramp"
    assert d.drift and d.suspects[0] == "never-cleared graph"


def test_backward_tripling_under_a_neighbour_is_growth_over_many_seeds():
    for seed in range(30):
        series = {
            "forward": _flat(seed),
            "backward": _ramp_by(seed + 1, 3.0, ms=2),
            "update": _flat(seed + 2, ms=0.3),
        }
        d = diagnose(_under_load(series, *_load(seed), SENSITIVITY), epochs=12)
        assert d.growing == ["backward"], (seed, d.growth, d.relative)
        assert d.pattern["backward"] == "ramp", seed


def test_a_staircase_under_a_neighbour_stays_a_staircase():
    # hooks piling up (one per epoch of 12 steps), the neighbour coming and going
    found = []
    for seed in range(30):
        stairs = 1e-3 * (1.0 + np.repeat(np.arange(10), 12)) * _noise(seed)
        series = {"forward": _flat(seed + 1), "backward": stairs}
        d = diagnose(_under_load(series, *_load(seed), SENSITIVITY), epochs=12)
        assert d.growing == ["backward"], seed
        found.append(d.pattern["backward"])
    assert found.count("staircase") >= 27


def test_growth_in_the_forward_control_itself_is_judged_against_the_rest():
    d = diagnose({"forward": _ramp_by(40, 3.0), "backward": _flat(41, ms=2)})
    assert d.growing == ["forward"] and not d.drift
    assert d.relative["forward"] > 2 and d.relative["backward"] < 0.5
    assert "against the rest" in str(d)


def test_no_control_without_a_forward_phase():
    d = diagnose({"backward": _ramp_by(42, 1.3), "update": _ramp_by(43, 1.3)})
    assert d.growing == ["backward", "update"] and d.relative == {}


def test_memory_growth_below_the_floors_is_flat():
    d = diagnose(
        {"backward": _flat(15), "traced_mb": np.linspace(0.1, 0.3, STEPS)}
    )  # tripled, but by 0.2 MiB: below the guard's 0.25 MiB
    assert not d.memory_grows


def test_diagnose_accepts_a_phase_timer_and_its_medians(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(diagnostics.time, "perf_counter", clock)
    timer = PhaseTimer()
    for epoch in range(8):
        for step in range(5):
            with timer.phase("forward"):
                clock.now += 0.01
            with timer.phase("backward"):
                clock.now += 0.02 * (1 + epoch) if step else 5.0  # one huge step
        timer.end_epoch()
    d = diagnose(timer)
    assert set(d.growth) == {"forward", "backward"}  # medians used, not "_median"
    assert d.growth["forward"] == pytest.approx(1.0)
    assert d.growing == ["backward"] and d.pattern["backward"] == "ramp"
    assert d.suspects[0] == "never-cleared graph" and not d.memory_measured
    assert diagnose(timer.history) == d


def test_diagnose_accepts_a_history_from_fit():
    rng = np.random.default_rng(0)
    X = rng.random((64, 1, 12, 12), dtype=np.float32)
    y = rng.integers(0, 10, 64)
    model = seed_cnn(input_size=12, rng=0)
    history = fit(
        model,
        X,
        y,
        optimizer=SGD(model.parameters(), lr=0.05),
        epochs=6,
        batch_size=32,
    )
    d = diagnose(history)  # real timings: only the structure is asserted
    assert set(d.growth) == {"forward", "backward", "update"}
    assert set(d.pattern.values()) <= {"flat", "ramp", "staircase"}
    with pytest.raises(ValueError, match="at least 6"):
        diagnose(fit(model, X, y, optimizer=SGD(model.parameters(), lr=0.05), epochs=2))


def test_diagnose_rejects_what_it_cannot_judge():
    with pytest.raises(ValueError, match=r"has 5 values: too short.*at least 6"):
        diagnose({"backward": [1.0] * 5})
    with pytest.raises(ValueError, match="same points.*'forward': 8.*'backward': 7"):
        diagnose({"forward": [1.0] * 8, "backward": [1.0] * 7})
    with pytest.raises(ValueError, match="same points"):
        diagnose({"backward": [1.0] * 8, "traced_mb": [1.0] * 9})
    with pytest.raises(ValueError, match="'backward'.*negative duration at index 2"):
        diagnose({"backward": [1.0, 1.0, -1.0, 1.0, 1.0, 1.0]})
    with pytest.raises(ValueError, match="non-finite.*index 3: nan"):
        diagnose({"backward": [1.0, 1.0, 1.0, float("nan"), 1.0, 1.0]})
    with pytest.raises(ValueError, match="non-finite"):
        diagnose({"backward": [1.0] * 6, "objects": [1, 1, 1, 1, 1, np.inf]})
    with pytest.raises(ValueError, match="1-D"):
        diagnose({"backward": np.ones((6, 2))})
    with pytest.raises(ValueError, match="no phase durations"):
        diagnose({"traced_mb": [1.0] * 6})
    with pytest.raises(TypeError, match="PhaseTimer or a History"):
        diagnose([1.0] * 6)


def test_diagnosis_is_frozen_and_prints_narrow():
    d = diagnose({"forward": _flat(16), "backward": _staircase(17)})
    with pytest.raises(AttributeError):
        d.growing = []
    assert "suspects: instrumentation" in str(d)
    assert max(len(line) for line in str(d).splitlines()) <= 88


# --- compare_profiles: real cProfile runs, only the ranking asserted
# -------------------------------------------------------------------------


def _constant_work():
    return sum(range(2000))


def _growing_work(n):
    total = 0
    for i in range(n):
        total += i * i
    return total


def _step(n):
    _constant_work()
    return _growing_work(n)


def _profile(n):
    import cProfile

    profile = cProfile.Profile()
    profile.enable()
    for _ in range(5):
        _step(n)
    profile.disable()
    return profile


def test_compare_profiles_ranks_the_function_that_does_more_work_late():
    import pstats

    early, late = _profile(1_000), _profile(300_000)  # 300x the loop, planted
    table = compare_profiles(early, late)
    assert "_growing_work" in table.functions[0]
    assert table[0].early_calls == table[0].late_calls == 5
    assert table[0].ratio > 10 and table[0].grown > 0
    assert all(a.grown >= b.grown for a, b in zip(table, table.rows[1:]))
    text = str(table)
    assert max(len(line) for line in text.splitlines()) <= 88
    assert "_growing_work" in text.splitlines()[2]
    same = compare_profiles(pstats.Stats(early), pstats.Stats(late), top=1)
    assert len(same) == 1 and "_growing_work" in same.functions[0]


def test_compare_profiles_on_per_phase_records():
    early = {"forward": 1.0, "backward": 2.0, "update": 0.5}
    late = {"forward": 1.0, "backward": [2.0, 3.0], "update": 0.75, "hooks": 0.1}
    table = compare_profiles(early, late)
    assert table.functions == ["backward", "update", "hooks"]  # forward did not grow
    assert [r.ratio for r in table][:2] == [2.5, 1.5]
    assert "new" in str(table).splitlines()[-1]
    assert str(compare_profiles(late, early)) == "no function's time grew"
    long = {"x" * 200: 1.0}
    assert max(len(line) for line in str(compare_profiles({}, long)).splitlines()) <= 88
    with pytest.raises(ValueError, match="top"):
        compare_profiles(early, late, top=0)
    with pytest.raises(ValueError, match="'backward'.*non-negative"):
        compare_profiles(early, {"backward": -1.0})
    with pytest.raises(TypeError, match="cProfile.Profile"):
        compare_profiles(early, [1.0])


# --- diagnose with known epoch boundaries: robust to heavy noise
# -------------------------------------------------------------------------


def _per_epoch_staircase(seed, epochs=8, steps=12, level=0.2):
    """One cost added per epoch (hooks piling up), with 20% multiplicative noise."""
    rng = np.random.default_rng(seed)
    clean = 1.0 + np.repeat(np.arange(epochs), steps)
    return 1e-3 * clean * np.abs(1 + level * rng.standard_normal(epochs * steps))


def _steady_ramp(seed, epochs=8, steps=12, level=0.2):
    rng = np.random.default_rng(seed)
    clean = np.linspace(1.0, float(epochs), epochs * steps)
    return 1e-3 * clean * np.abs(1 + level * rng.standard_normal(epochs * steps))


def test_known_epochs_tell_a_noisy_staircase_from_a_noisy_ramp():
    for seed in range(30):  # 5% noise: every seed
        stairs = diagnose({"backward": _per_epoch_staircase(seed, level=0.05)}, 12)
        ramp = diagnose({"backward": _steady_ramp(seed, level=0.05)}, epochs=12)
        assert stairs.pattern["backward"] == "staircase", seed
        assert ramp.pattern["backward"] == "ramp", seed
        assert stairs.suspects[0] == "instrumentation"


def test_known_epochs_at_heavy_noise_mostly_right():
    # 10% and 20% noise (where the late stairs are smaller than the noise): rates
    def rate(make, expected):
        found = [diagnose({"b": make(s)}, epochs=12).pattern["b"] for s in range(30)]
        return found.count(expected) / len(found)

    assert rate(_per_epoch_staircase, "staircase") >= 0.85
    assert rate(_steady_ramp, "ramp") >= 0.85
    assert rate(lambda s: _per_epoch_staircase(s, level=0.1), "staircase") >= 0.95
    assert rate(lambda s: _steady_ramp(s, level=0.1), "ramp") >= 0.95


def test_epochs_as_step_counts_and_their_errors():
    series = {"backward": _per_epoch_staircase(0, epochs=4, level=0.05)}
    assert diagnose(series, epochs=[12, 24, 36, 48]).pattern["backward"] == "staircase"
    with pytest.raises(ValueError, match="ending at the series' length 48"):
        diagnose(series, epochs=[12, 24, 36])
    with pytest.raises(ValueError, match="positive steps per epoch"):
        diagnose(series, epochs=0)


def test_a_per_step_phase_timer_records_epoch_ends_for_diagnose():
    timer = PhaseTimer(per_step=True)
    durations = _per_epoch_staircase(1, epochs=5)
    clock = iter(np.cumsum(np.repeat(durations, 2) * np.tile([0, 1], durations.size)))
    timer.clock = lambda: next(clock)
    for _epoch in range(5):
        for _ in range(12):
            with timer.phase("update"):
                pass
        timer.end_epoch()
    assert timer.epoch_ends == [12, 24, 36, 48, 60]
    assert len(timer.steps["objects"]) == 60
    np.testing.assert_allclose(timer.steps["update"], durations)
    assert diagnose(timer).pattern["update"] == "staircase"
