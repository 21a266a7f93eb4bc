"""Each Chapter 9 checker accepts correct solutions, rejects every typical wrong one
with its hint, and says "not implemented yet" for the stub."""

import math

import numpy as np
import pytest

from cnnbook.exercises import (
    check_count_subnormal,
    check_first_subnormal_step,
    check_mystery,
    check_running_mean,
)
from cnnbook.exercises.ch09 import EXERCISES, mystery


def stub(*args):
    raise NotImplementedError


@pytest.mark.parametrize(
    "checker",
    [
        check_mystery,
        check_first_subnormal_step,
        check_count_subnormal,
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


# --- 9.3 count the subnormals


def test_count_subnormal_accepts_a_correct_solution():
    def count_subnormal(x):
        magnitude = np.abs(x)
        return int(
            np.count_nonzero(
                (magnitude > 0) & (magnitude < np.finfo(x.dtype).smallest_normal)
            )
        )

    assert check_count_subnormal(count_subnormal)


def test_count_subnormal_accepts_a_loop():
    def by_loop(x):
        tiny = np.finfo(x.dtype).smallest_normal
        return sum(1 for v in x.ravel() if 0 < abs(v) < tiny)

    assert check_count_subnormal(by_loop)


def test_count_subnormal_rejects_counting_zeros():
    def counts_zeros(x):
        return int(np.count_nonzero(np.abs(x) < np.finfo(x.dtype).smallest_normal))

    result = check_count_subnormal(counts_zeros)
    assert not result and "zero is not subnormal" in result.message


def test_count_subnormal_rejects_the_float64_limit_for_every_dtype():
    def one_limit(x):
        magnitude = np.abs(x)
        return int(
            np.count_nonzero(
                (magnitude > 0) & (magnitude < np.finfo(np.float64).smallest_normal)
            )
        )

    result = check_count_subnormal(one_limit)
    assert not result and "float32's is 2**-126" in result.message


def test_count_subnormal_rejects_the_float32_limit_for_every_dtype():
    def float32_limit(x):
        magnitude = np.abs(x)
        tiny = np.finfo(np.float32).smallest_normal
        return int(np.count_nonzero((magnitude > 0) & (magnitude < tiny)))

    result = check_count_subnormal(float32_limit)
    assert not result and "use x.dtype's own limit" in result.message


def test_count_subnormal_rejects_forgetting_the_sign():
    def signed(x):
        return int(np.count_nonzero((x > 0) & (x < np.finfo(x.dtype).smallest_normal)))

    result = check_count_subnormal(signed)
    assert not result and "negative subnormals count too" in result.message


def test_count_subnormal_rejects_counting_the_smallest_normal():
    def inclusive(x):
        magnitude = np.abs(x)
        tiny = np.finfo(x.dtype).smallest_normal
        return int(np.count_nonzero((magnitude > 0) & (magnitude <= tiny)))

    result = check_count_subnormal(inclusive)
    assert not result and "strictly below it" in result.message


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
