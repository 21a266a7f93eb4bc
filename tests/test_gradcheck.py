"""Backward passes are right: gradient checks, naive == fast, planted bugs are caught,
clear errors.

Part 1 tests the tool itself on a tiny layer defined here (so it does not depend on the
package's layers). Part 2 checks every package layer and the seed model over
hypothesis-drawn shapes.
"""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from cnnbook import functional as F
from cnnbook import layers, models, naive
from cnnbook.gradcheck import (
    _probe_indices,
    assert_gradients_close,
    gradcheck,
    gradcheck_loss,
    gradcheck_model,
    numerical_gradient,
    relative_error,
)

TOL = 1e-6


# --------------------------------------------------------------------------------------
# Part 1: the tool, on a layer written here
# --------------------------------------------------------------------------------------


class TanhAffine:
    """y = tanh(x Wᵀ + b): the protocol in a dozen lines, as a reader would write it."""

    def __init__(self, n_in, n_out, rng):
        self.params = {
            "weight": rng.standard_normal((n_out, n_in)),
            "bias": rng.standard_normal(n_out),
        }
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.x = None

    def forward(self, x):
        self.x = x
        self.y = np.tanh(x @ self.params["weight"].T + self.params["bias"])
        return self.y

    def backward(self, dout):
        dz = dout * (1 - self.y**2)
        self.grads["weight"][...] = dz.T @ self.x
        self.grads["bias"][...] = dz.sum(axis=0)
        return dz @ self.params["weight"]


class BiasMean(TanhAffine):
    def backward(self, dout):
        dx = super().backward(dout)
        self.grads["bias"][...] /= len(
            dout
        )  # planted: mean instead of sum over the batch
        return dx


class WrongSignInput(TanhAffine):
    def backward(self, dout):
        return -super().backward(dout)  # planted: sign error in dx only


class NoParams:
    def forward(self, x):
        self.x = x
        return x**3

    def backward(self, dout):
        return 3 * self.x**2 * dout


def test_correct_layer_passes_and_reports_every_tensor():
    rng = np.random.default_rng(0)
    layer = TanhAffine(4, 3, rng)
    report = gradcheck(layer, rng.standard_normal((5, 4)))
    assert set(report) == {"input", "weight", "bias"}
    assert max(report.values()) < 1e-8
    assert_gradients_close(layer, rng.standard_normal((5, 4)))


def test_layer_without_parameters():
    rng = np.random.default_rng(1)
    report = gradcheck(NoParams(), rng.standard_normal((2, 3, 4)))
    assert set(report) == {"input"} and report["input"] < 1e-8


@pytest.mark.parametrize("bad, name", [(BiasMean, "bias"), (WrongSignInput, "input")])
def test_planted_bugs_are_caught_and_named(bad, name):
    rng = np.random.default_rng(2)
    layer = bad(4, 3, rng)
    report = gradcheck(layer, rng.standard_normal((6, 4)))
    assert report[name] > 0.1
    assert report.worst()[0] == name
    with pytest.raises(AssertionError, match=name):
        assert_gradients_close(layer, rng.standard_normal((6, 4)))


def test_check_leaves_inputs_and_parameters_untouched():
    rng = np.random.default_rng(3)
    layer = TanhAffine(4, 3, rng)
    before = {k: v.copy() for k, v in layer.params.items()}
    ids = {k: id(v) for k, v in layer.params.items()}
    x = rng.standard_normal((5, 4))
    x_before = x.copy()
    gradcheck(layer, x)
    np.testing.assert_array_equal(x, x_before)
    for k in before:
        np.testing.assert_array_equal(
            layer.params[k], before[k]
        )  # restored bit for bit
        assert id(layer.params[k]) == ids[k]


def test_deterministic_for_a_seed():
    rng = np.random.default_rng(4)
    layer = TanhAffine(4, 3, rng)
    x = rng.standard_normal((5, 4))
    assert dict(gradcheck(layer, x, seed=7)) == dict(gradcheck(layer, x, seed=7))


def test_numerical_gradient_and_relative_error():
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    g = numerical_gradient(lambda v: float(np.sum(v**2)), x)
    np.testing.assert_allclose(g, 2 * x, rtol=1e-8)
    g = numerical_gradient(lambda v: float(np.sum(v**2)), x, indices=[1])
    assert np.isnan(g.ravel()[[0, 2, 3]]).all() and np.isclose(g.ravel()[1], -4.0)
    assert relative_error([1.0, 2.0], [1.0, 2.0]) == 0.0
    assert relative_error([0.0], [0.0]) == 0.0
    assert relative_error([1.0, 0.0], [0.0, 1.0]) == pytest.approx(np.sqrt(2))
    with pytest.raises(TypeError, match="float64"):
        numerical_gradient(lambda v: 0.0, x.astype(np.float32))


def test_probe_indices_small_all_large_sample():
    rng = np.random.default_rng(5)
    small = rng.standard_normal((3, 4))
    np.testing.assert_array_equal(_probe_indices(small, 100, rng), np.arange(12))
    big = rng.standard_normal((40, 50))
    big[big < -1] = 0.0
    idx = _probe_indices(big, 100, rng)
    assert len(idx) == 100 and len(set(idx.tolist())) == 100
    assert 0 in idx and big.size - 1 in idx
    assert np.argmax(np.abs(big)) in idx
    assert (
        big.ravel()[idx] == 0
    ).any()  # some zero-gradient entries are probed on purpose


def test_large_tensor_bug_found_by_sampling():
    rng = np.random.default_rng(6)
    layer = BiasMean(60, 40, rng)  # weight has 2400 entries, sampled
    report = gradcheck(layer, rng.standard_normal((3, 60)), max_entries=50)
    assert report.details["weight"]["indices"].size == 50
    assert report["weight"] < 1e-7 and report["bias"] > 0.1


def test_rejects_float32_parameters_and_missing_methods():
    rng = np.random.default_rng(7)
    layer = TanhAffine(4, 3, rng)
    layer.params = {k: v.astype(np.float32) for k, v in layer.params.items()}
    layer.grads = {k: np.zeros_like(v) for k, v in layer.params.items()}
    with pytest.raises(TypeError, match="float64"):
        gradcheck(layer, rng.standard_normal((2, 4)))
    with pytest.raises(TypeError, match="backward"):
        gradcheck(type("OnlyForward", (), {"forward": lambda self, x: x})(), np.ones(3))


# --------------------------------------------------------------------------------------
# Part 2: every package layer, the loss and the seed model
# --------------------------------------------------------------------------------------

F64 = np.float64


@st.composite
def conv_configs(draw):
    k = draw(st.integers(1, 3))
    dilation = draw(st.integers(1, 2))
    padding = draw(st.integers(0, 2))
    stride = draw(st.integers(1, 3))
    span = dilation * (k - 1) + 1
    h = draw(st.integers(max(1, span - 2 * padding), max(1, span - 2 * padding) + 4))
    w = draw(st.integers(max(1, span - 2 * padding), max(1, span - 2 * padding) + 4))
    return dict(
        n=draw(st.integers(1, 2)),
        c=draw(st.integers(1, 3)),
        f=draw(st.integers(1, 3)),
        h=h,
        w=w,
        k=k,
        stride=stride,
        padding=padding,
        dilation=dilation,
        seed=draw(st.integers(0, 2**16)),
    )


@st.composite
def pool_configs(draw):
    k = draw(st.integers(1, 3))
    stride = draw(st.integers(1, 3))
    padding = draw(st.integers(0, k // 2))
    h = draw(st.integers(max(1, k - 2 * padding), 7))
    w = draw(st.integers(max(1, k - 2 * padding), 7))
    return dict(
        n=draw(st.integers(1, 2)),
        c=draw(st.integers(1, 3)),
        h=h,
        w=w,
        k=k,
        stride=stride,
        padding=padding,
        seed=draw(st.integers(0, 2**16)),
    )


@given(conv_configs())
def test_gradcheck_conv2d(cfg):
    rng = np.random.default_rng(cfg["seed"])
    layer = layers.Conv2d(
        cfg["c"],
        cfg["f"],
        cfg["k"],
        stride=cfg["stride"],
        padding=cfg["padding"],
        dilation=cfg["dilation"],
        rng=rng,
        dtype=F64,
    )
    layer.params["bias"][...] = rng.standard_normal(
        cfg["f"]
    )  # a zero-initialised bias hides nothing
    x = rng.standard_normal((cfg["n"], cfg["c"], cfg["h"], cfg["w"]))
    report = gradcheck(layer, x, seed=cfg["seed"])
    assert set(report) == {"input", "weight", "bias"}
    assert max(report.values()) < TOL, report


def test_gradcheck_conv2d_without_bias_and_rectangular():
    rng = np.random.default_rng(8)
    layer = layers.Conv2d(
        2,
        3,
        (2, 3),
        stride=(1, 2),
        padding=(1, 0),
        dilation=(2, 1),
        bias=False,
        rng=rng,
        dtype=F64,
    )
    report = assert_gradients_close(layer, rng.standard_normal((2, 2, 6, 7)))
    assert set(report) == {"input", "weight"}


def separated(rng, shape):
    """Distinct values at least 4/size apart: no window has a near-tie that ±ε could
    flip."""
    size = int(np.prod(shape))
    return (rng.permutation(size) * (4.0 / size) - 2.0).reshape(shape)


def pooling_margin(a, pool):
    """Smallest gap between the two largest entries of a pool×pool window, and smallest
    |max|.

    Finite differences are meaningless where a perturbation of size ε can change which
    entry wins a window (a kink of max) or flip the sign of a pooled value going into
    ReLU (a kink of ReLU).
    """
    n, c, h, w = a.shape
    windows = a.reshape(n, c, h // pool, pool, w // pool, pool).transpose(
        0, 1, 2, 4, 3, 5
    )
    top = np.sort(windows.reshape(n, c, h // pool, w // pool, pool * pool), axis=-1)
    return min(
        float((top[..., -1] - top[..., -2]).min()), float(np.abs(top[..., -1]).min())
    )


@given(pool_configs())
def test_gradcheck_max_pool2d(cfg):
    rng = np.random.default_rng(cfg["seed"])
    x = separated(rng, (cfg["n"], cfg["c"], cfg["h"], cfg["w"]))
    layer = layers.MaxPool2d(cfg["k"], stride=cfg["stride"], padding=cfg["padding"])
    assert max(gradcheck(layer, x, seed=cfg["seed"]).values()) < TOL


@given(pool_configs())
def test_gradcheck_avg_pool2d(cfg):
    rng = np.random.default_rng(cfg["seed"])
    x = rng.standard_normal((cfg["n"], cfg["c"], cfg["h"], cfg["w"]))
    layer = layers.AvgPool2d(cfg["k"], stride=cfg["stride"], padding=cfg["padding"])
    assert max(gradcheck(layer, x, seed=cfg["seed"]).values()) < TOL


@given(st.lists(st.integers(1, 4), min_size=1, max_size=4), st.integers(0, 2**16))
def test_gradcheck_relu_and_flatten(shape, seed):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(shape)
    x = np.sign(z) * (0.01 + np.abs(z))  # keep every entry away from the kink at 0
    assert gradcheck(layers.ReLU(), x, seed=seed)["input"] < TOL
    if len(shape) >= 2:
        assert gradcheck(layers.Flatten(), x, seed=seed)["input"] < TOL


@given(st.integers(1, 4), st.integers(2, 6), st.integers(0, 2**16))
def test_gradcheck_softmax_layer(n, classes, seed):
    x = np.random.default_rng(seed).standard_normal((n, classes))
    assert gradcheck(layers.Softmax(), x, seed=seed)["input"] < TOL


@given(
    st.integers(1, 4),
    st.integers(1, 6),
    st.integers(1, 5),
    st.booleans(),
    st.integers(0, 2**16),
)
def test_gradcheck_linear(n, n_in, n_out, bias, seed):
    rng = np.random.default_rng(seed)
    layer = layers.Linear(n_in, n_out, bias=bias, rng=rng, dtype=F64)
    report = gradcheck(layer, rng.standard_normal((n, n_in)), seed=seed)
    assert set(report) == ({"input", "weight", "bias"} if bias else {"input", "weight"})
    assert max(report.values()) < TOL


@given(st.integers(1, 5), st.integers(2, 6), st.floats(0.1, 1.5), st.integers(0, 2**16))
def test_gradcheck_softmax_cross_entropy(n, classes, scale, seed):
    # Moderate logits: with a gap of ~15 the gradient is ~1e-6 while the loss is still
    # computed from O(1) intermediates, so its rounding noise / 2ε alone is a relative
    # error of ~1e-4. That is a limit of finite differences, not of the backward pass
    # (see the module docstring).
    rng = np.random.default_rng(seed)
    logits = scale * rng.standard_normal((n, classes))
    targets = rng.integers(0, classes, size=n)
    assert (
        gradcheck_loss(layers.SoftmaxCrossEntropy(), logits, targets, seed=seed)[
            "logits"
        ]
        < TOL
    )


@given(
    st.integers(1, 2),
    st.integers(1, 2),
    st.integers(2, 4),
    st.sampled_from([(3, 1), (5, 2), (1, 0)]),
    st.sampled_from([4, 6, 8]),
    st.integers(0, 2**16),
)
def test_gradcheck_seed_model(n, in_channels, filters, kernel_padding, size, seed):
    kernel_size, padding = kernel_padding
    rng = np.random.default_rng(seed)
    model = models.seed_cnn(
        in_channels=in_channels,
        num_classes=3,
        filters=filters,
        kernel_size=kernel_size,
        padding=padding,
        pool=2,
        input_size=size,
        rng=rng,
        dtype=F64,
    )
    x = rng.standard_normal((n, in_channels, size, size))
    # Skip the rare draws with a kink within reach of ε (a weight perturbation moves
    # every conv output by up to ε·Σ|x| over its window): there the numerical gradient
    # is not a derivative.
    assume(pooling_margin(model[0].forward(x), 2) > 1e-4)
    names = {name for name, _, _ in model.named_parameters()}
    report = gradcheck(model, x, seed=seed)
    assert set(report) == names | {"input"} and max(report.values()) < TOL, report
    targets = rng.integers(0, 3, size=n)
    report = gradcheck_model(model, x, targets, seed=seed)
    assert set(report) == names | {"input"} and max(report.values()) < TOL, report


def test_seed_model_defaults_with_loss():
    rng = np.random.default_rng(9)
    model = models.seed_cnn(
        rng=rng, dtype=F64
    )  # 1×28×28, 8 filters, 10 classes: sampled probes
    x = rng.random((2, 1, 28, 28))
    report = gradcheck_model(model, x, rng.integers(0, 10, size=2), max_entries=40)
    assert max(report.values()) < TOL, report


# --- naive (loops) == fast (vectorised), float64, to 1e-10 ----------------------------


def close(a, b):
    np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)


@given(conv_configs())
def test_conv2d_backward_naive_equals_fast(cfg):
    rng = np.random.default_rng(cfg["seed"])
    x = rng.standard_normal((cfg["n"], cfg["c"], cfg["h"], cfg["w"]))
    w = rng.standard_normal((cfg["f"], cfg["c"], cfg["k"], cfg["k"]))
    kw = dict(stride=cfg["stride"], padding=cfg["padding"], dilation=cfg["dilation"])
    dout = rng.standard_normal(F.conv2d(x, w, **kw).shape)
    for fast, slow in zip(
        F.conv2d_backward(dout, x, w, **kw), naive.conv2d_backward(dout, x, w, **kw)
    ):
        close(fast, slow)


@given(pool_configs(), st.booleans())
def test_pool_backward_naive_equals_fast(cfg, with_ties):
    rng = np.random.default_rng(cfg["seed"])
    shape = (cfg["n"], cfg["c"], cfg["h"], cfg["w"])
    # small integers make ties common, so both must follow the same tie rule
    x = (
        rng.integers(0, 3, size=shape).astype(F64)
        if with_ties
        else rng.standard_normal(shape)
    )
    kw = dict(stride=cfg["stride"], padding=cfg["padding"])
    dout = rng.standard_normal(F.max_pool2d(x, cfg["k"], **kw).shape)
    close(
        F.max_pool2d_backward(dout, x, cfg["k"], **kw),
        naive.max_pool2d_backward(dout, x, cfg["k"], **kw),
    )
    dout = rng.standard_normal(F.avg_pool2d(x, cfg["k"], **kw).shape)
    close(
        F.avg_pool2d_backward(dout, x, cfg["k"], **kw),
        naive.avg_pool2d_backward(dout, x, cfg["k"], **kw),
    )


@given(st.integers(1, 4), st.integers(1, 5), st.integers(1, 4), st.integers(0, 2**16))
def test_relu_and_linear_backward_naive_equals_fast(n, n_in, n_out, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, size=(n, n_in)).astype(F64)  # exact zeros included
    dout = rng.standard_normal(x.shape)
    close(F.relu_backward(dout, x), naive.relu_backward(dout, x))
    x = rng.standard_normal((n, n_in))
    W = rng.standard_normal((n_out, n_in))
    dout = rng.standard_normal((n, n_out))
    for fast, slow in zip(
        F.linear_backward(dout, x, W), naive.linear_backward(dout, x, W)
    ):
        close(fast, slow)
    targets = rng.integers(0, n_out, size=n)
    close(
        F.softmax_cross_entropy_backward(dout, targets),
        naive.softmax_cross_entropy_backward(dout, targets),
    )


# --- conventions at the kinks ---------------------------------------------------------


def test_relu_gradient_is_zero_at_zero():
    x = np.array([[-1.0, 0.0, 2.0]])
    np.testing.assert_array_equal(
        F.relu_backward(np.ones_like(x), x), [[0.0, 0.0, 1.0]]
    )
    np.testing.assert_array_equal(
        naive.relu_backward(np.ones_like(x), x), [[0.0, 0.0, 1.0]]
    )


@pytest.mark.parametrize("impl", [F, naive], ids=["functional", "naive"])
def test_max_pool_ties_go_to_first_maximum_and_overlaps_accumulate(impl):
    x = np.array([[[[1.0, 1.0], [1.0, 1.0]]]])
    np.testing.assert_array_equal(
        impl.max_pool2d_backward(np.ones((1, 1, 1, 1)), x, 2),
        [[[[1.0, 0.0], [0.0, 0.0]]]],
    )
    # 3×3 windows with stride 1 over a 4×4 input whose maximum sits in the middle:
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 1, 1] = 5.0
    dx = impl.max_pool2d_backward(np.ones((1, 1, 2, 2)), x, 3, stride=1)
    assert (
        dx[0, 0, 1, 1] == 4.0 and dx.sum() == 4.0
    )  # all four windows route to the same entry


# --- gradcheck catches bugs planted in the real layers --------------------------------


class ConvForgotFlip(layers.Conv2d):
    """Stride-1 conv whose dx forgets to rotate the kernel by 180°."""

    def __init__(self, *args, padding=0, **kwargs):
        super().__init__(*args, padding=padding, **kwargs)
        self.pad = padding

    def backward(self, dout):
        dx_true = super().backward(
            dout
        )  # fills grads["weight"], grads["bias"] correctly
        w = self.params["weight"]
        k_h, k_w = w.shape[2:]
        # dx = full convolution of dout with the kernel = correlation of the zero-padded
        # dout with the kernel rotated by 180°, channels swapped. The bug: no [...,
        # ::-1, ::-1].
        w_t = np.ascontiguousarray(w.transpose(1, 0, 2, 3))
        dx = F.conv2d(dout, w_t, padding=(k_h - 1 - self.pad, k_w - 1 - self.pad))
        assert dx.shape == dx_true.shape
        return dx


class ReluWrongMask(layers.ReLU):
    def backward(self, dout):
        super().backward(dout)
        return dout * (
            dout > 0
        )  # planted: masks on the upstream gradient, not on the input


class MaxPoolWholeWindow:
    """2×2 max pooling whose backward sends the gradient to every entry of the
    window."""

    def forward(self, x):
        self.x = x
        return F.max_pool2d(x, 2)

    def backward(self, dout):
        return 4 * F.avg_pool2d_backward(dout, self.x, 2)  # planted: no argmax routing


def test_gradcheck_catches_conv_without_flip():
    rng = np.random.default_rng(10)
    layer = ConvForgotFlip(2, 3, 3, padding=1, rng=rng, dtype=F64)
    report = gradcheck(layer, rng.standard_normal((2, 2, 5, 5)))
    assert report["input"] > 0.1 and report["weight"] < TOL and report["bias"] < TOL
    with pytest.raises(AssertionError, match="input"):
        assert_gradients_close(layer, rng.standard_normal((2, 2, 5, 5)))


def test_gradcheck_catches_relu_wrong_mask():
    rng = np.random.default_rng(11)
    assert gradcheck(ReluWrongMask(), rng.standard_normal((3, 4, 5)))["input"] > 0.1


def test_gradcheck_catches_max_pool_routing_to_whole_window():
    rng = np.random.default_rng(12)
    layer = MaxPoolWholeWindow()
    assert gradcheck(layer, rng.standard_normal((1, 2, 4, 4)))["input"] > 0.1


def test_gradcheck_catches_bug_inside_a_model():
    rng = np.random.default_rng(13)
    model = models.seed_cnn(filters=2, num_classes=3, input_size=6, rng=rng, dtype=F64)
    good = gradcheck(model, rng.standard_normal((2, 1, 6, 6)))
    assert max(good.values()) < TOL
    buggy = layers.Sequential(
        *[ReluWrongMask() if isinstance(lay, layers.ReLU) else lay for lay in model]
    )
    report = gradcheck(buggy, rng.standard_normal((2, 1, 6, 6)))
    assert (
        report["0.weight"] > 0.1 and report["input"] > 0.1 and report["4.weight"] < TOL
    )


# --- the protocol's errors and in-place gradients -------------------------------------


def all_layers():
    rng = np.random.default_rng(14)
    return [
        (layers.Conv2d(2, 3, 3, padding=1, rng=rng, dtype=F64), (2, 2, 4, 4)),
        (layers.MaxPool2d(2), (2, 2, 4, 4)),
        (layers.AvgPool2d(2), (2, 2, 4, 4)),
        (layers.ReLU(), (2, 3)),
        (layers.Flatten(), (2, 2, 3, 3)),
        (layers.Linear(3, 4, rng=rng, dtype=F64), (2, 3)),
        (
            models.seed_cnn(filters=2, input_size=4, num_classes=3, rng=rng, dtype=F64),
            (2, 1, 4, 4),
        ),
    ]


@pytest.mark.parametrize("layer, shape", all_layers(), ids=lambda v: type(v).__name__)
def test_backward_before_forward_raises(layer, shape):
    with pytest.raises(RuntimeError, match="forward"):
        layer.backward(np.ones(shape))


@pytest.mark.parametrize("layer, shape", all_layers(), ids=lambda v: type(v).__name__)
def test_wrong_dout_shape_raises(layer, shape):
    out = layer.forward(np.random.default_rng(15).standard_normal(shape))
    bad = np.ones(out.shape[:-1] + (out.shape[-1] + 1,))
    with pytest.raises(ValueError, match=r"\(|shape"):
        layer.backward(bad)


def test_loss_backward_before_forward_raises():
    with pytest.raises(RuntimeError, match="forward"):
        layers.SoftmaxCrossEntropy().backward()


@pytest.mark.parametrize("layer, shape", all_layers(), ids=lambda v: type(v).__name__)
def test_grads_are_overwritten_in_place_not_accumulated(layer, shape):
    rng = np.random.default_rng(16)
    x = rng.standard_normal(shape)
    out = layer.forward(x)
    dout = rng.standard_normal(out.shape)
    pairs = layer.parameters()
    ids = [id(g) for _, g in pairs]
    layer.backward(dout)
    first = [g.copy() for _, g in pairs]
    layer.forward(x)
    layer.backward(dout)
    assert [
        id(g) for _, g in layer.parameters()
    ] == ids  # an optimizer's references stay valid
    for g, g0 in zip((g for _, g in layer.parameters()), first):
        np.testing.assert_array_equal(g, g0)


def test_backward_uses_the_most_recent_forward():
    rng = np.random.default_rng(17)
    layer = layers.Linear(3, 2, rng=rng, dtype=F64)
    x1, x2 = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    dout = rng.standard_normal((4, 2))
    layer.forward(x1)
    layer.forward(x2)
    layer.backward(dout)
    np.testing.assert_allclose(layer.grads["weight"], dout.T @ x2)


# --------------------------------------------------------------------------------------
# What a report prints: claims against a tolerance, never rounding-level digits
# --------------------------------------------------------------------------------------


def test_report_prints_claims_not_rounding_digits():
    rng = np.random.default_rng(20)
    report = gradcheck(TanhAffine(4, 3, rng), rng.standard_normal((5, 4)))
    assert all(isinstance(error, float) for error in report.values())  # numbers kept
    assert (
        repr(report)
        == str(report)
        == (
            "input:  relative error < 1e-6: yes\n"
            "weight: relative error < 1e-6: yes\n"
            "bias:   relative error < 1e-6: yes"
        )
    )
    assert "e-1" not in repr(report) and "e-09" not in repr(report)
    assert report.passed() and report.failing() == []


def test_report_tolerance_is_explicit_and_a_broken_claim_shows():
    rng = np.random.default_rng(21)
    layer = TanhAffine(4, 3, rng)
    x = rng.standard_normal((5, 4))
    tight = gradcheck(layer, x, tol=1e-30)  # no float64 check passes this
    assert tight.tol == 1e-30 and not tight.passed()
    assert "relative error < 1e-30: no (" in repr(tight)
    assert gradcheck(layer, x).summary(tol=1e-7).count("< 1e-7: yes") == 3
    with pytest.raises(ValueError, match="tolerance"):
        gradcheck(layer, x, tol=0)


@pytest.mark.parametrize("bad, name", [(BiasMean, "bias"), (WrongSignInput, "input")])
def test_failing_report_prints_a_bug_at_two_digits(bad, name):
    rng = np.random.default_rng(22)
    report = gradcheck(bad(4, 3, rng), rng.standard_normal((6, 4)))
    line = next(ln for ln in repr(report).splitlines() if ln.startswith(name + ":"))
    assert line.endswith(f"relative error < 1e-6: no ({report[name]:.2g})")
    assert report.failing() == [name] and not report.passed()
    explained = report.explain(name)
    assert f"relative error {report[name]:.2g} " in explained
    # analytic and numerical values at three significant digits: no fragile tail
    for label in ("analytic", "numerical"):
        value = explained.split(label + " ")[1].split(",")[0]
        assert len(value.lstrip("-").replace(".", "").lstrip("0")) <= 3 or "e" in value


def test_assert_gradients_close_uses_the_tolerance_it_is_given():
    rng = np.random.default_rng(23)
    layer = TanhAffine(4, 3, rng)
    x = rng.standard_normal((5, 4))
    assert assert_gradients_close(layer, x).tol == TOL
    with pytest.raises(AssertionError, match=r"tolerance 1e-30\)"):
        assert_gradients_close(layer, x, tol=1e-30)
