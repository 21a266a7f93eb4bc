"""Each Chapter 9 checker accepts correct solutions, rejects every typical wrong one
with its hint, and says "not implemented yet" for the stub."""

import math

import numpy as np
import pytest

from cnnbook.exercises import (
    check_first_subnormal_step,
    check_mystery,
    check_running_mean,
    check_stair_growth,
)
from cnnbook.exercises.ch09 import EXERCISES, mystery


def stub(*args):
    raise NotImplementedError


@pytest.mark.parametrize(
    "checker",
    [
        check_mystery,
        check_first_subnormal_step,
        check_stair_growth,
        check_running_mean,
    ],
)
def test_the_stub_is_not_implemented_yet(checker):
    result = checker(stub)
    assert not result and "not implemented yet" in result.message


def test_exercises_registered_with_thought():
    assert [e.number for e in EXERCISES] == ["9.1", "9.2", "9.3", "9.4"]
    assert sum(e.needs_thought for e in EXERCISES) >= 2


# --- 9.1 the second mystery


def test_mystery_accepts_the_answer_in_any_case_and_as_a_list():
    assert check_mystery(lambda: ("instrumentation", "update"))
    assert check_mystery(lambda: [" Instrumentation", "UPDATE "])


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        (("never-cleared graph", "update"), "look at traced_mb and objects"),
        (("leak", "update"), "a leak shows in memory"),
        (("allocation", "update"), "compare with the forward control"),
        (("subnormals", "update"), "per-step timeline"),
        (("instrumentation", "backward"), "grows against the forward control"),
        (("instrumentation", "forward"), "forward is the control"),
        (("hooks", "update"), "is not a suspect"),
        (("instrumentation", "optimizer"), "is not a phase of fit"),
        ("instrumentation", "return two strings"),
    ],
)
def test_mystery_rejects_wrong_answers_with_their_hint(answer, hint):
    result = check_mystery(lambda: answer)
    assert not result and hint in result.message


def test_mystery_reports_an_exception_and_a_non_function():
    def broken():
        raise KeyError("timer")

    result = check_mystery(broken)
    assert not result and "raised KeyError" in result.message
    with pytest.raises(TypeError, match="expects your function itself"):
        check_mystery("instrumentation")


def test_mystery_two_is_what_the_checker_says():
    # Counts, not seconds: in debug mode the optimizer adds one check per epoch.
    model, optimizer = mystery(2, steps_per_epoch=3)
    for _ in range(7):
        optimizer.step()
    assert len(optimizer.checks) == 3
    _, quiet = mystery(2, steps_per_epoch=3, debug=False)
    quiet.step()
    assert quiet.checks == []
    with pytest.raises(ValueError, match="two mysteries"):
        mystery(3, steps_per_epoch=3)


def test_mystery_one_keeps_every_input_only_in_debug_mode():
    x = np.ones((2, 1, 28, 28), np.float32)
    for debug, kept in [(True, 2), (False, 0)]:
        model, _ = mystery(1, steps_per_epoch=3, debug=debug)
        model.forward(x)
        model.forward(x)
        assert len(model.layers[2].seen) == kept


# --- 9.2 the first subnormal step


def closed_form(start, beta, dtype):
    tiny = float(np.finfo(dtype).smallest_normal)
    return math.floor(math.log(tiny / start) / math.log(beta)) + 1


def test_first_subnormal_accepts_the_closed_form_and_a_float_answer():
    assert check_first_subnormal_step(closed_form)
    assert check_first_subnormal_step(lambda s, b, d: float(closed_form(s, b, d)))


def test_first_subnormal_accepts_a_simulation_too():
    def simulate(start, beta, dtype):
        v, t = dtype.type(start), 0
        while v >= np.finfo(dtype).smallest_normal:
            v, t = dtype.type(v * dtype.type(beta)), t + 1
        return t

    assert check_first_subnormal_step(simulate)


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (
            lambda s, b, d: closed_form(s, b, np.float32),
            "use the smallest normal of the given dtype",
        ),
        (lambda s, b, d: closed_form(1.0, b, d), "starts at `start`"),
        (
            lambda s, b, d: math.ceil(
                math.log2(float(np.finfo(d).smallest_normal) / s) / math.log2(b)
            ),
            "2**-126 itself is normal",
        ),
        (lambda s, b, d: closed_form(s, b, d) - 1, "solve start * beta**t"),
    ],
)
def test_first_subnormal_rejects_typical_mistakes_with_their_hint(wrong, hint):
    result = check_first_subnormal_step(wrong)
    assert not result and hint in result.message


def test_first_subnormal_reports_a_non_integer():
    result = check_first_subnormal_step(lambda s, b, d: 828.5)
    assert not result and "expected the integer" in result.message


# --- 9.3 how much do piling hooks grow


def _median(v):
    return float(np.median(v))


def test_stair_growth_accepts_a_correct_solution():
    def stair_growth(b, h, epochs, steps_per_epoch):
        steps = np.repeat(np.arange(1, epochs + 1), steps_per_epoch)
        series = b + steps * h
        w = max(3, len(series) // 4)
        return _median(series[-w:]) / _median(series[:w])

    assert check_stair_growth(stair_growth)


def test_stair_growth_accepts_a_loop():
    def by_loop(b, h, epochs, steps_per_epoch):
        series = []
        for e in range(1, epochs + 1):
            series += [b + e * h] * steps_per_epoch
        w = max(3, len(series) // 4)
        return _median(series[len(series) - w :]) / _median(series[:w])

    assert check_stair_growth(by_loop)


def _hooks(b, h, epochs, steps_per_epoch, first=1):
    steps = np.repeat(np.arange(first, epochs + first), steps_per_epoch)
    return b + steps * h


def test_stair_growth_rejects_counting_checks_from_zero():
    def from_zero(b, h, epochs, steps_per_epoch):
        series = _hooks(b, h, epochs, steps_per_epoch, first=0)
        w = max(3, len(series) // 4)
        return _median(series[-w:]) / _median(series[:w])

    result = check_stair_growth(from_zero)
    assert not result and "the first epoch already runs one" in result.message


def test_stair_growth_rejects_last_epoch_over_first():
    def epochs_only(b, h, epochs, steps_per_epoch):
        return (b + epochs * h) / (b + h)

    result = check_stair_growth(epochs_only)
    assert not result and "a quarter of all the steps" in result.message


def test_stair_growth_rejects_means():
    def means(b, h, epochs, steps_per_epoch):
        series = _hooks(b, h, epochs, steps_per_epoch)
        w = max(3, len(series) // 4)
        return float(np.mean(series[-w:]) / np.mean(series[:w]))

    result = check_stair_growth(means)
    assert not result and "medians, not means" in result.message


def test_stair_growth_rejects_windows_without_the_minimum():
    def no_minimum(b, h, epochs, steps_per_epoch):
        series = _hooks(b, h, epochs, steps_per_epoch)
        w = len(series) // 4
        return _median(series[-w:]) / _median(series[:w])

    result = check_stair_growth(no_minimum)
    assert not result and "at least 3 steps per window" in result.message


# --- 9.4 running mean


def test_running_mean_accepts_welford_style_update():
    def running_mean(mean, count, value):
        count += 1
        return mean + (value - mean) / count, count

    assert check_running_mean(running_mean)


def test_running_mean_accepts_a_weighted_average():
    def weighted(mean, count, value):
        return (mean * count + value) / (count + 1), count + 1

    assert check_running_mean(weighted)


def test_running_mean_rejects_averaging_with_the_previous_mean_only():
    def wrong(mean, count, value):
        return ((mean + value) / 2 if count else value), count + 1

    result = check_running_mean(wrong)
    assert not result and "new_mean = mean + (value - mean) / new_count" in (
        result.message
    )


def test_running_mean_rejects_off_by_one_count():
    def wrong(mean, count, value):
        return mean + (value - mean) / (count + 2), count + 1

    result = check_running_mean(wrong)
    assert not result and "count starts at 0" in result.message


def test_running_mean_reports_a_wrong_return_type():
    result = check_running_mean(lambda mean, count, value: mean)
    assert not result and "must return (new_mean, new_count)" in result.message
