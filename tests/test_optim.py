"""SGD with momentum, Nesterov and weight decay: hand-computed steps and PyTorch (when
present)."""

import math

import numpy as np
import pytest

from cnnbook.optim import SGD, cosine_lr


def pair(values, grads, dtype=np.float64):
    return np.array(values, dtype=dtype), np.array(grads, dtype=dtype)


def test_one_momentum_step_matches_hand_computation():
    p, g = pair([1.0, -2.0], [0.5, 1.0])
    opt = SGD([(p, g)], lr=0.1, momentum=0.9)
    opt.step()  # v = g = [0.5, 1]; p = [1 - 0.05, -2 - 0.1]
    np.testing.assert_allclose(p, [0.95, -2.1], rtol=0, atol=1e-15)
    g[:] = [1.0, -1.0]  # the layer's backward overwrites the gradient in place
    opt.step()  # v = 0.9*[0.5, 1] + [1, -1] = [1.45, -0.1]; p -= 0.1*v
    np.testing.assert_allclose(opt.velocity[0], [1.45, -0.1], rtol=0, atol=1e-15)
    np.testing.assert_allclose(p, [0.95 - 0.145, -2.1 + 0.01], rtol=0, atol=1e-15)


def test_momentum_zero_is_plain_sgd():
    rng = np.random.default_rng(0)
    p1 = rng.standard_normal((3, 4)).astype(np.float32)
    p2 = p1.copy()
    g1 = np.zeros_like(p1)
    opt = SGD([(p1, g1)], lr=0.03, momentum=0.0)
    for _ in range(5):
        g = rng.standard_normal(p1.shape).astype(np.float32)
        g1[:] = g
        opt.step()
        p2 -= np.float32(0.03) * g
    np.testing.assert_array_equal(p1, p2)
    assert p1.dtype == np.float32


def test_nesterov_step():
    p, g = pair([1.0], [2.0])
    opt = SGD([(p, g)], lr=0.1, momentum=0.5, nesterov=True)
    opt.step()  # v = 2; p -= 0.1*(2 + 0.5*2) = 0.3
    np.testing.assert_allclose(p, [0.7], atol=1e-15)
    g[:] = [-1.0]
    opt.step()  # v = 0.5*2 - 1 = 0; p -= 0.1*(-1 + 0) -> 0.8
    np.testing.assert_allclose(p, [0.8], atol=1e-15)


def test_weight_decay_adds_l2_gradient_without_touching_grad():
    p, g = pair([2.0, -4.0], [0.0, 1.0])
    opt = SGD([(p, g)], lr=0.5, weight_decay=0.1)
    opt.step()  # d = g + 0.1 p = [0.2, 0.6]; p -= 0.5 d
    np.testing.assert_allclose(p, [1.9, -4.3], atol=1e-15)
    np.testing.assert_array_equal(g, [0.0, 1.0])


def test_momentum_on_a_quadratic_reaches_effective_step():
    # Constant gradient: velocity tends to g/(1-mu), the step to lr*g/(1-mu).
    p, g = pair([0.0], [1.0])
    opt = SGD([(p, g)], lr=0.01, momentum=0.9)
    for _ in range(300):
        opt.step()
    np.testing.assert_allclose(opt.velocity[0], [10.0], rtol=1e-10)


def test_lr_is_mutable_and_model_accepted():
    class Model:
        def __init__(self):
            self.w = np.ones(2)
            self.dw = np.ones(2)

        def parameters(self):
            return [(self.w, self.dw)]

    m = Model()
    opt = SGD(m, lr=1.0)
    opt.lr = 0.25
    opt.step()
    np.testing.assert_array_equal(m.w, [0.75, 0.75])


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(lr=0.0), ValueError, "learning rate"),
        (dict(lr=0.1, momentum=1.0), ValueError, "momentum"),
        (dict(lr=0.1, momentum=-0.1), ValueError, "momentum"),
        (dict(lr=0.1, nesterov=True), ValueError, "Nesterov"),
        (dict(lr=0.1, weight_decay=-1.0), ValueError, "weight_decay"),
    ],
)
def test_bad_hyperparameters(kwargs, error, match):
    p, g = pair([1.0], [1.0])
    with pytest.raises(error, match=match):
        SGD([(p, g)], **kwargs)


def test_bad_parameters():
    with pytest.raises(ValueError, match="shape"):
        SGD([(np.zeros(3), np.zeros(4))], lr=0.1)
    with pytest.raises(TypeError, match="pair"):
        SGD([np.zeros(3)], lr=0.1)
    with pytest.raises(TypeError, match="floating"):
        SGD([(np.zeros(3, int), np.zeros(3, int))], lr=0.1)
    with pytest.raises(ValueError, match="empty"):
        SGD([], lr=0.1)


@pytest.mark.parametrize(
    "momentum, nesterov, wd",
    [(0.0, False, 0.0), (0.9, False, 0.0), (0.9, True, 1e-3), (0.5, False, 0.01)],
)
def test_matches_torch(momentum, nesterov, wd):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    p = rng.standard_normal(5)
    g = np.zeros(5)
    tp = torch.tensor(p.copy(), requires_grad=True)
    opt = SGD([(p, g)], lr=0.05, momentum=momentum, nesterov=nesterov, weight_decay=wd)
    topt = torch.optim.SGD(
        [tp], lr=0.05, momentum=momentum, nesterov=nesterov, weight_decay=wd
    )
    for _ in range(6):
        grad = rng.standard_normal(5)
        g[:] = grad
        opt.step()
        tp.grad = torch.tensor(grad)
        topt.step()
    np.testing.assert_allclose(p, tp.detach().numpy(), rtol=1e-12, atol=1e-14)


def test_cosine_lr():
    assert cosine_lr(0, 10, 0.1) == 0.1
    assert math.isclose(cosine_lr(5, 10, 0.1), 0.05)
    assert math.isclose(cosine_lr(10, 10, 0.1, 0.001), 0.001)
    values = [cosine_lr(e, 20, 0.05) for e in range(21)]
    assert all(a > b for a, b in zip(values, values[1:]))
    with pytest.raises(ValueError):
        cosine_lr(11, 10, 0.1)
