"""Layer- and model-level gradients against ``torch.autograd`` (skipped when PyTorch is
absent).

tests/test_torch_reference.py compares the functional kernels one by one; this file
checks what the chapter on backpropagation promises on top of them: the layers'
``grads`` dicts, ``Sequential.backward`` through a whole model with its loss, and a
strided, dilated chain with ReLU *before* pooling (windows full of exact zeros: ties,
plus ReLU's gradient convention at 0, must combine exactly as in torch).
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cnnbook import layers, models

torch = pytest.importorskip("torch")
nn = torch.nn

TOL = dict(rtol=1e-9, atol=1e-11)


def torch_twin(model):
    """The same architecture in PyTorch (float64), with our model's weights copied
    in."""
    mods = []
    for layer in model:
        if isinstance(layer, layers.Conv2d):
            w = layer.params["weight"]
            m = nn.Conv2d(
                w.shape[1],
                w.shape[0],
                w.shape[2:],
                stride=layer.stride,
                padding=layer.padding,
                dilation=layer.dilation,
                bias="bias" in layer.params,
                dtype=torch.float64,
            )
        elif isinstance(layer, layers.Linear):
            w = layer.params["weight"]
            m = nn.Linear(
                w.shape[1], w.shape[0], bias="bias" in layer.params, dtype=torch.float64
            )
        elif isinstance(layer, layers.AvgPool2d):
            m = nn.AvgPool2d(layer.kernel_size, layer.stride, layer.padding)
        elif isinstance(layer, layers.MaxPool2d):
            m = nn.MaxPool2d(
                layer.kernel_size,
                layer.stride,
                layer.padding,
                ceil_mode=layer.ceil_mode,
            )
        elif isinstance(layer, layers.ReLU):
            m = nn.ReLU()
        elif isinstance(layer, layers.Flatten):
            m = nn.Flatten()
        else:
            raise TypeError(type(layer))
        with torch.no_grad():
            for name, p in layer.params.items():
                getattr(m, name).copy_(torch.from_numpy(p))
        mods.append(m)
    return nn.Sequential(*mods)


def compare_with_loss(model, x, targets):
    twin = torch_twin(model)
    loss_fn = layers.SoftmaxCrossEntropy()
    loss = loss_fn.forward(model.forward(x), targets)
    # the first layer skips the input gradient by default; the weights' gradients
    # must not depend on it
    assert model.needs_input_grad is False
    assert model.backward(loss_fn.backward()) is None
    skipped = {name: grad.copy() for name, _, grad in model.named_parameters()}
    model.needs_input_grad = True
    dx = model.backward(loss_fn.backward())
    for name, _, grad in model.named_parameters():
        # (the compiled dw-only kernel may sum in another order: rounding only)
        np.testing.assert_allclose(grad, skipped[name], rtol=1e-12, atol=1e-14)

    xt = torch.tensor(x, requires_grad=True)
    loss_t = nn.functional.cross_entropy(twin(xt), torch.from_numpy(targets))
    loss_t.backward()
    assert loss == pytest.approx(loss_t.item(), rel=1e-12, abs=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy(), **TOL)
    theirs = dict(twin.named_parameters())
    for name, _, grad in model.named_parameters():
        np.testing.assert_allclose(grad, theirs[name].grad.numpy(), **TOL, err_msg=name)
    assert {name for name, _, _ in model.named_parameters()} == set(theirs)


@given(
    st.integers(1, 3),
    st.integers(1, 2),
    st.integers(1, 4),
    st.sampled_from([(3, 1), (5, 2), (2, 0)]),
    st.sampled_from([2, 3]),
    st.sampled_from([6, 8, 9]),
    st.integers(0, 2**16),
)
def test_seed_model_with_loss_equals_torch(
    n, in_channels, filters, kernel_padding, pool, size, seed
):
    kernel_size, padding = kernel_padding
    rng = np.random.default_rng(seed)
    model = models.seed_cnn(
        in_channels=in_channels,
        num_classes=4,
        filters=filters,
        kernel_size=kernel_size,
        padding=padding,
        pool=pool,
        input_size=size,
        rng=rng,
        dtype=np.float64,
    )
    for layer in model:  # non-zero biases, so their gradients are really exercised
        if "bias" in layer.params:
            layer.params["bias"][...] = rng.standard_normal(layer.params["bias"].shape)
    compare_with_loss(
        model,
        rng.standard_normal((n, in_channels, size, size)),
        rng.integers(0, 4, size=n),
    )


@given(st.integers(0, 2**16), st.booleans())
def test_relu_before_pool_ties_and_strided_dilated_chain_equal_torch(seed, avg):
    rng = np.random.default_rng(seed)
    f64 = dict(rng=rng, dtype=np.float64)
    pool = (
        layers.AvgPool2d(3, stride=2, padding=1)
        if avg
        else layers.MaxPool2d(3, stride=1, padding=1)
    )
    model = layers.Sequential(
        layers.Conv2d(2, 3, 3, stride=2, padding=2, dilation=2, **f64),
        layers.ReLU(),  # exact zeros: tied windows, and ReLU's subgradient 0 at 0
        pool,
        layers.Flatten(),
        layers.Linear(3 * (9 if avg else 25), 5, **f64),
    )
    x = rng.standard_normal((2, 2, 9, 9))
    compare_with_loss(model, x, rng.integers(0, 5, size=2))


def test_layer_grads_equal_torch_without_bias():
    rng = np.random.default_rng(0)
    conv = layers.Conv2d(
        3,
        2,
        (2, 3),
        stride=(2, 1),
        padding=(1, 0),
        bias=False,
        rng=rng,
        dtype=np.float64,
    )
    twin = torch_twin([conv])
    x = rng.standard_normal((2, 3, 7, 6))
    out = conv.forward(x)
    dout = rng.standard_normal(out.shape)
    dx = conv.backward(dout)
    xt = torch.tensor(x, requires_grad=True)
    twin(xt).backward(torch.from_numpy(dout))
    np.testing.assert_allclose(dx, xt.grad.numpy(), **TOL)
    np.testing.assert_allclose(conv.grads["weight"], twin[0].weight.grad.numpy(), **TOL)
    assert set(conv.grads) == {"weight"}


@given(st.integers(0, 2**16))
def test_ceil_mode_max_pool_in_a_model_equals_torch(seed):
    # 7x7 feature maps, 2x2 windows: floor pooling drops the last row and column,
    # ceil_mode keeps them in a 4x4 output whose last windows hang past the input.
    rng = np.random.default_rng(seed)
    f64 = dict(rng=rng, dtype=np.float64)
    model = layers.Sequential(
        layers.Conv2d(1, 3, 3, **f64),
        layers.MaxPool2d(2, ceil_mode=True),
        layers.ReLU(),
        layers.Flatten(),
        layers.Linear(3 * 4 * 4, 4, **f64),
    )
    x = rng.standard_normal((2, 1, 9, 9))
    compare_with_loss(model, x, rng.integers(0, 4, size=2))
