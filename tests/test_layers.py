"""The layer protocol of cnnbook.layers and the seed model of cnnbook.models."""

import math

import numpy as np
import pytest

from cnnbook import functional as F
from cnnbook import layers as L
from cnnbook import models
from cnnbook import naive as N


def rng(seed=0):
    return np.random.default_rng(seed)


def make_layers():
    """(layer, input) pairs covering every layer type, in float64."""
    r = rng(1)
    return [
        (
            L.Conv2d(2, 3, 3, stride=2, padding=1, dilation=1, rng=r, dtype=np.float64),
            r.standard_normal((2, 2, 7, 6)),
        ),
        (
            L.Conv2d(
                2, 3, (2, 3), bias=False, dilation=(2, 1), rng=r, dtype=np.float64
            ),
            r.standard_normal((2, 2, 6, 6)),
        ),
        (L.MaxPool2d(2), r.standard_normal((2, 3, 6, 5))),
        (L.MaxPool2d(3, stride=1, padding=1), r.standard_normal((2, 1, 4, 4))),
        (L.MaxPool2d(2, ceil_mode=True), r.standard_normal((2, 2, 5, 3))),
        (L.MaxPool2d(3, 2, 1, ceil_mode=True), r.standard_normal((1, 2, 6, 6))),
        (L.AvgPool2d(2, padding=1), r.standard_normal((2, 3, 5, 5))),
        (L.ReLU(), r.standard_normal((3, 4))),
        (L.Flatten(), r.standard_normal((2, 3, 2, 2))),
        (L.Linear(5, 4, rng=r, dtype=np.float64), r.standard_normal((3, 5))),
        (
            L.Linear(5, 4, bias=False, rng=r, dtype=np.float64),
            r.standard_normal((3, 5)),
        ),
        (L.Softmax(), r.standard_normal((3, 4))),
    ]


LAYERS = make_layers()
IDS = [type(layer).__name__ for layer, _ in LAYERS]


@pytest.mark.parametrize("layer, x", LAYERS, ids=IDS)
def test_protocol(layer, x):
    out = layer(x)
    np.testing.assert_array_equal(out, layer.forward(x))
    assert set(layer.params) == set(layer.grads)
    for name, p, g in layer.named_parameters():
        assert p.shape == g.shape and p.dtype == g.dtype
        assert layer.params[name] is p and layer.grads[name] is g
    assert [(p, g) for _, p, g in layer.named_parameters()] == layer.parameters()
    grad_ids = {name: id(g) for name, g in layer.grads.items()}
    dx = layer.backward(np.ones_like(out))
    assert dx.shape == x.shape
    assert {
        name: id(g) for name, g in layer.grads.items()
    } == grad_ids  # written in place


@pytest.mark.parametrize("layer, x", LAYERS, ids=IDS)
def test_backward_before_forward_and_bad_dout(layer, x):
    fresh = type(layer).__new__(type(layer))
    fresh.__dict__.update(layer.__dict__)
    fresh._cache = None
    with pytest.raises(RuntimeError, match="before forward"):
        fresh.backward(np.ones(3))
    out = layer(x)
    with pytest.raises(ValueError, match="dout must have the shape"):
        layer.backward(np.ones(out.shape[:-1] + (out.shape[-1] + 1,)))


@pytest.mark.parametrize("layer, x", LAYERS, ids=IDS)
def test_gradients_by_central_differences(layer, x):
    """A small gradient check of each layer on loss = sum(out * R) (float64)."""
    R = rng(7).standard_normal(layer(x).shape)

    def loss():
        return float(np.sum(layer.forward(x) * R))

    layer.forward(x)
    dx = layer.backward(R)
    grads = {name: g.copy() for name, g in layer.grads.items()}
    eps = 1e-6
    for name, arr, analytic in [("input", x, dx)] + [
        (n, p, grads[n]) for n, p, _ in layer.named_parameters()
    ]:
        numeric = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            old = arr[idx]
            arr[idx] = old + eps
            up = loss()
            arr[idx] = old - eps
            down = loss()
            arr[idx] = old
            numeric[idx] = (up - down) / (2 * eps)
        np.testing.assert_allclose(
            analytic, numeric, rtol=1e-5, atol=1e-7, err_msg=name
        )


def test_grads_overwrite_not_accumulate():
    r = rng(2)
    conv = L.Conv2d(1, 2, 3, rng=r, dtype=np.float64)
    x = r.standard_normal((2, 1, 5, 5))
    out = conv(x)
    conv.backward(np.ones_like(out))
    first = conv.grads["weight"].copy()
    conv(x)
    conv.backward(np.ones_like(out))
    np.testing.assert_array_equal(conv.grads["weight"], first)


def test_backward_uses_latest_forward():
    r = rng(3)
    lin = L.Linear(3, 2, rng=r, dtype=np.float64)
    x1, x2 = r.standard_normal((4, 3)), r.standard_normal((4, 3))
    lin(x1)
    lin(x2)
    lin.backward(np.ones((4, 2)))
    np.testing.assert_allclose(lin.grads["weight"], np.ones((4, 2)).T @ x2)


def test_init_and_dtype():
    conv = L.Conv2d(4, 16, 3, rng=rng(0))
    w = conv.params["weight"]
    assert w.shape == (16, 4, 3, 3) and w.dtype == np.float32
    assert conv.params["bias"].shape == (16,) and not conv.params["bias"].any()
    assert abs(w.std() - math.sqrt(2 / 36)) < 0.03  # He: var 2 / fan_in
    lin = L.Linear(200, 50, rng=rng(0), dtype=np.float64)
    assert (
        lin.params["weight"].shape == (50, 200)
        and lin.params["weight"].dtype == np.float64
    )
    assert abs(lin.params["weight"].std() - math.sqrt(2 / 200)) < 0.005
    np.testing.assert_array_equal(
        L.Conv2d(1, 2, 3, rng=5).params["weight"],
        L.Conv2d(1, 2, 3, rng=rng(5)).params["weight"],
    )
    with pytest.raises(ValueError):
        L.Linear(3, 2, init="xavier")
    with pytest.raises(ValueError):
        L.Conv2d(1, 2, 0)


def test_conv_layer_matches_functional():
    r = rng(4)
    conv = L.Conv2d(
        3,
        5,
        (3, 2),
        stride=(2, 1),
        padding=(1, 0),
        dilation=(1, 2),
        rng=r,
        dtype=np.float64,
    )
    x = r.standard_normal((2, 3, 9, 8))
    conv.params["bias"][...] = r.standard_normal(5)
    np.testing.assert_allclose(
        conv(x),
        F.conv2d(x, conv.params["weight"], conv.params["bias"], (2, 1), (1, 0), (1, 2)),
    )
    with pytest.raises(ValueError, match="channel mismatch"):
        conv(r.standard_normal((2, 4, 9, 8)))


def test_softmax_cross_entropy_layer():
    r = rng(5)
    z, t = r.standard_normal((4, 10)), np.array([1, 0, 9, 3])
    loss = L.SoftmaxCrossEntropy()
    with pytest.raises(RuntimeError):
        loss.backward()
    assert loss(z, t) == pytest.approx(F.cross_entropy(z, t))
    np.testing.assert_allclose(loss.backward(), F.softmax_cross_entropy_backward(z, t))
    np.testing.assert_allclose(
        loss.backward(2.0), 2 * F.softmax_cross_entropy_backward(z, t)
    )


def seed_model(seed=0):
    return models.seed_cnn(input_size=12, filters=4, rng=seed, dtype=np.float64)


def test_sequential_names_state_dict_round_trip():
    model = seed_model(0)
    names = [name for name, _, _ in model.named_parameters()]
    assert names == ["0.weight", "0.bias", "4.weight", "4.bias"]
    assert list(model.params) == names and list(model.grads) == names
    assert (
        len(model) == 5
        and isinstance(model[0], L.Conv2d)
        and isinstance(model[-1], L.Linear)
    )
    assert [type(layer).__name__ for layer in model] == [
        "Conv2d",
        "MaxPool2d",
        "ReLU",
        "Flatten",
        "Linear",
    ]
    assert len(model[1:3]) == 2

    other = seed_model(1)
    x = rng(0).standard_normal((3, 1, 12, 12))
    assert not np.allclose(model(x), other(x))
    refs = [p for p, _ in other.parameters()]
    other.load_state_dict(model.state_dict())
    np.testing.assert_array_equal(model(x), other(x))
    assert all(p is q for p, (q, _) in zip(refs, other.parameters()))  # loaded in place

    state = model.state_dict()
    state["0.weight"] += 1  # a copy: the model is untouched
    assert not np.allclose(state["0.weight"], model.params["0.weight"])
    with pytest.raises(ValueError, match="missing"):
        other.load_state_dict({k: v for k, v in state.items() if k != "0.bias"})
    with pytest.raises(ValueError, match="unexpected"):
        other.load_state_dict({**state, "9.weight": np.zeros(1)})
    with pytest.raises(ValueError, match="shape"):
        other.load_state_dict({**state, "4.bias": np.zeros(3)})


def test_sequential_backward_runs_in_reverse_and_matches_numeric():
    model = seed_model(2)
    r = rng(1)
    x = r.standard_normal((2, 1, 12, 12))
    t = np.array([3, 7])
    loss = L.SoftmaxCrossEntropy()
    loss(model(x), t)
    assert model.backward(loss.backward()) is None  # the data's gradient: skipped
    model.needs_input_grad = True
    dx = model.backward(loss.backward())
    assert dx.shape == x.shape
    w = model.params["0.weight"]
    g = model.grads["0.weight"]
    eps = 1e-6
    for idx in [(0, 0, 0, 0), (1, 0, 1, 2), (3, 0, 2, 1)]:
        old = w[idx]
        w[idx] = old + eps
        up = loss(model(x), t)
        w[idx] = old - eps
        down = loss(model(x), t)
        w[idx] = old
        assert g[idx] == pytest.approx((up - down) / (2 * eps), rel=1e-5, abs=1e-9)


def test_seed_model_on_digits_starts_near_ln10():
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images[:200] / 16.0).astype(np.float32)[
        :, None
    ]  # (200, 1, 8, 8) in [0, 1]
    y = digits.target[:200]
    model = models.seed_cnn(input_size=8, rng=0)
    logits = model(x)
    assert logits.shape == (200, 10) and logits.dtype == np.float32
    loss = L.SoftmaxCrossEntropy()(logits, y)
    assert abs(loss - math.log(10)) < 0.35
    p = models.predict_proba(model, x, batch_size=64)
    np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-5)
    pred = models.predict(model, x, batch_size=64)
    assert pred.dtype == np.int64 and pred.shape == (200,)
    np.testing.assert_array_equal(pred, logits.argmax(axis=1))


def test_seed_model_shapes_default():
    model = models.seed_cnn(rng=0)
    assert model[0].params["weight"].shape == (8, 1, 3, 3)
    assert model[4].params["weight"].shape == (10, 8 * 14 * 14)
    assert model(np.zeros((2, 1, 28, 28), np.float32)).shape == (2, 10)


def test_conv2d_layer_method_attribute_selects_the_path_with_equal_results():
    from cnnbook.layers import Conv2d

    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 9, 9)).astype(np.float32)
    layers_by_method = {
        m: Conv2d(3, 4, 3, padding=1, rng=0, method=m) for m in ("auto", "im2col")
    }
    outs = {m: layer.forward(x) for m, layer in layers_by_method.items()}
    dout = rng.standard_normal(outs["auto"].shape).astype(np.float32)
    dxs = {m: layer.backward(dout) for m, layer in layers_by_method.items()}
    np.testing.assert_allclose(outs["auto"], outs["im2col"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dxs["auto"], dxs["im2col"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        layers_by_method["auto"].grads["weight"],
        layers_by_method["im2col"].grads["weight"],
        rtol=1e-4,
        atol=1e-4,
    )
    layers_by_method["auto"].method = "nonsense"
    with pytest.raises(ValueError, match="method must be one of"):
        layers_by_method["auto"].forward(x)


def test_chapter5_claims_on_the_untrained_model_hold_and_catch_a_bad_init():
    """Chapter 5 asserts (not prints) the untrained model's accuracy and loss.

    The claims hold for seed_cnn, and a badly scaled initialization breaks the loss
    claim, so the notebook cell would fail.
    """
    from cnnbook.claims import claim
    from cnnbook.data import load_digits_5k

    *_, X_test, y_test = load_digits_5k()

    def check(model):
        logits = model(X_test)
        accuracy = np.mean(logits.argmax(axis=1) == y_test)
        loss = F.cross_entropy(logits, y_test)
        claim("accuracy between 5% and 20%", 0.05 <= accuracy <= 0.20)
        claim("loss a little above ln 10", 0 < loss - math.log(10) < 0.5)

    model = models.seed_cnn(rng=0)
    check(model)
    model[4].params["weight"] *= 100  # logits 100 times too large
    with pytest.raises(AssertionError, match="loss a little above ln 10"):
        check(model)


def test_max_pool_ceil_mode_layer():
    x = np.random.default_rng(0).standard_normal((1, 2, 5, 5))
    layer = L.MaxPool2d(2, ceil_mode=True)
    assert layer.forward(x).shape == (1, 2, 3, 3)
    assert L.MaxPool2d(2).forward(x).shape == (1, 2, 2, 2)
    assert "ceil_mode=True" in repr(layer)
    with pytest.raises(TypeError, match="MaxPool2d: ceil_mode must be a bool"):
        L.MaxPool2d(2, ceil_mode=1)
    with pytest.raises(TypeError):  # average pooling has no ceil_mode here
        L.AvgPool2d(2, ceil_mode=True)


# ---------------------------------------------------------------- no unused gradients


@pytest.mark.parametrize("method", ["auto", "im2col"])
def test_sequential_skips_the_first_layers_input_gradient(method):
    model = seed_model(3)
    model[0].method = method
    assert model.needs_input_grad is False and model[0].needs_input_grad is False
    assert all(layer.needs_input_grad for layer in model.layers[1:])
    x, t = rng(2).standard_normal((3, 1, 12, 12)), np.array([1, 4, 9])
    loss = L.SoftmaxCrossEntropy()
    loss(model(x), t)
    assert model.backward(loss.backward()) is None
    skipped = {k: g.copy() for k, g in model.grads.items()}
    with L.input_grad_enabled(model):
        assert model.needs_input_grad is True
        dx = model.backward(loss.backward())
    assert model.needs_input_grad is False  # restored
    assert dx.shape == x.shape
    for k, g in model.grads.items():
        # dw, db unchanged by the skip (the dw-only kernel may round differently)
        np.testing.assert_allclose(g, skipped[k], rtol=1e-12, atol=1e-14)


def test_slicing_a_sequential_changes_no_layer_flag():
    model = seed_model(4)
    tail = model[1:]
    assert model[1].needs_input_grad is True and tail.needs_input_grad is True
    head = model[:2]
    assert head.needs_input_grad is False and model[0].needs_input_grad is False
    with pytest.raises(TypeError, match="needs_input_grad must be a bool"):
        model.needs_input_grad = 1


def test_gradcheck_still_checks_the_input_of_a_sequential():
    from cnnbook.gradcheck import gradcheck, gradcheck_model

    model = seed_model(5)
    x = rng(3).standard_normal((2, 1, 12, 12))
    report = gradcheck(model, x, max_entries=40)
    assert "input" in report and report.passed()
    report = gradcheck_model(model, x, np.array([2, 5]), max_entries=40)
    assert "input" in report and report.passed()
    assert model.needs_input_grad is False  # left as it was


def test_a_standalone_conv_layer_skips_dx_only_when_asked():
    conv = L.Conv2d(2, 3, 3, padding=1, rng=0, dtype=np.float64)
    x = rng(4).standard_normal((2, 2, 5, 5))
    dout = rng(5).standard_normal(conv(x).shape)
    dx = conv.backward(dout)
    dw = conv.grads["weight"].copy()
    conv.needs_input_grad = False
    assert conv.backward(dout) is None
    np.testing.assert_allclose(conv.grads["weight"], dw, rtol=1e-12, atol=1e-14)
    assert dx.shape == x.shape


# ---------------------------------------------------------------- max pooling


@pytest.mark.parametrize("method", ["auto", "numpy", "numba"])
@pytest.mark.parametrize(
    "args, shape",
    [
        ((2,), (2, 3, 8, 6)),
        ((3, 1, 1), (2, 2, 5, 5)),
        ((2, None, 0, True), (1, 2, 5, 7)),
        ((3, 2, 1, True), (2, 1, 6, 6)),
    ],
)
def test_max_pool_layer_routes_the_recorded_argmax(method, args, shape, monkeypatch):
    x = np.round(rng(6).standard_normal(shape))  # rounded: ties are common
    layer = L.MaxPool2d(*args, method=method)
    out = layer.forward(x)
    np.testing.assert_array_equal(out, N.max_pool2d(x, *args))
    dout = rng(7).standard_normal(out.shape)
    want = N.max_pool2d_backward(dout, x, *args)

    def recompute(*a, **k):
        raise AssertionError("backward recomputed the forward")

    monkeypatch.setattr(F, "max_pool2d", recompute)
    np.testing.assert_allclose(layer.backward(dout), want, rtol=1e-12, atol=1e-12)
    x_cached, indices = layer._cache
    assert x_cached is x and indices.shape == out.shape  # nothing more is kept


def test_max_pool_layer_method_errors():
    with pytest.raises(ValueError, match="method must be one of"):
        L.MaxPool2d(2, method="loops").forward(np.zeros((1, 1, 4, 4)))
