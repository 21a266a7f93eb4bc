"""cnnbook.bench's timers: what they measure, and that best_times interleaves."""

import time

from cnnbook.bench import best_time, best_times


def test_best_time_is_at_least_what_the_function_sleeps():
    # time.sleep sleeps at least as long as asked: a lower bound, not a timed assertion
    assert best_time(lambda: time.sleep(0.002), repeat=2, number=1) >= 0.002


def test_best_times_interleaves_the_rounds():
    calls = []
    fns = {name: (lambda name=name: calls.append(name)) for name in ("a", "b")}
    best = best_times(fns, rounds=3, min_time=0.0)
    assert set(best) == {"a", "b"}
    assert all(t >= 0 for t in best.values())
    # warm-ups a b, one calibration call each, then three rounds of a b
    assert calls == ["a", "b", "a", "b"] + ["a", "b"] * 3


def test_best_times_keeps_each_functions_own_time():
    best = best_times(
        {"sleeps": lambda: time.sleep(0.002), "returns": lambda: None},
        rounds=2,
        min_time=0.0,
    )
    assert best["sleeps"] >= 0.002 > best["returns"]
