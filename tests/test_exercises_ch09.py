"""Each Chapter 9 checker accepts a correct solution and rejects typical wrong ones."""

import numpy as np

from cnnbook.exercises import check_count_subnormal, check_running_mean


def test_count_subnormal_accepts_a_correct_solution():
    def count_subnormal(x):
        magnitude = np.abs(x)
        return int(
            np.count_nonzero(
                (magnitude > 0) & (magnitude < np.finfo(x.dtype).smallest_normal)
            )
        )

    assert check_count_subnormal(count_subnormal)


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

    assert not check_count_subnormal(one_limit)


def test_count_subnormal_rejects_forgetting_the_sign():
    def signed(x):
        return int(np.count_nonzero((x > 0) & (x < np.finfo(x.dtype).smallest_normal)))

    assert not check_count_subnormal(signed)


def test_running_mean_accepts_welford_style_update():
    def running_mean(mean, count, value):
        count += 1
        return mean + (value - mean) / count, count

    assert check_running_mean(running_mean)


def test_running_mean_rejects_averaging_with_the_previous_mean_only():
    def wrong(mean, count, value):
        return (mean + value) / 2, count + 1

    assert not check_running_mean(wrong)


def test_running_mean_rejects_off_by_one_count():
    def wrong(mean, count, value):
        return mean + (value - mean) / (count + 2), count + 1

    assert not check_running_mean(wrong)


def test_running_mean_reports_a_wrong_return_type():
    result = check_running_mean(lambda mean, count, value: mean)
    assert not result and "must return (new_mean, new_count)" in result.message
