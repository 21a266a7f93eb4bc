"""Chapter 7 checkers accept correct answers and reject the typical wrong ones."""

import numpy as np

from cnnbook.exercises import check_ravine_lr, check_velocity_update


def velocity_update(p, v, g, lr, momentum):
    v = momentum * v + g
    return p - lr * v, v


def test_velocity_update_accepts_correct():
    result = check_velocity_update(velocity_update)
    assert result and "passed" in repr(result)


def test_velocity_update_not_implemented():
    def stub(p, v, g, lr, momentum):
        raise NotImplementedError

    assert "not implemented yet" in repr(check_velocity_update(stub))


def test_velocity_update_rejects_old_velocity():
    def stale(p, v, g, lr, momentum):  # moves with the previous velocity
        return p - lr * v, momentum * v + g

    result = check_velocity_update(stale)
    assert not result and "hint" in repr(result)


def test_velocity_update_rejects_missing_momentum():
    def no_decay(p, v, g, lr, momentum):
        v = v + g
        return p - lr * v, v

    assert not check_velocity_update(no_decay)


def test_velocity_update_rejects_other_convention_with_note():
    def sutskever(p, v, g, lr, momentum):
        v = momentum * v - lr * g
        return p + v, v

    result = check_velocity_update(sutskever)
    assert not result and "other convention" in repr(result)


def test_velocity_update_rejects_wrong_sign():
    def uphill(p, v, g, lr, momentum):
        v = momentum * v + g
        return p + lr * v, v

    assert not check_velocity_update(uphill)


def test_ravine_lr_accepts_best_and_near_best():
    assert check_ravine_lr(lambda c: 2.0 / (min(c) + max(c)))
    assert check_ravine_lr(lambda c: 1.9 / (min(c) + max(c)))


def test_ravine_lr_rejects_divergent():
    result = check_ravine_lr(lambda c: 2.5 / max(c))
    assert not result and "lr < 2/λ_max" in repr(result)


def test_ravine_lr_rejects_too_cautious():
    result = check_ravine_lr(lambda c: 1.0 / max(c))
    assert not result and "too slowly" in repr(result)


def test_ravine_lr_rejects_flat_direction_step():
    assert not check_ravine_lr(lambda c: 1.0 / min(c))


def test_ravine_lr_stub_and_bad_return():
    def stub(c):
        raise NotImplementedError

    assert "not implemented yet" in repr(check_ravine_lr(stub))
    assert "expected a number" in repr(check_ravine_lr(lambda c: "fast"))
    assert not check_ravine_lr(lambda c: np.nan)
