"""Layer objects: thin stateful wrappers around ``cnnbook.functional``, one protocol.

Every layer has

* ``forward(x)`` (also ``layer(x)``): computes the output and caches what ``backward``
  needs;
* ``backward(dout) -> dx``: ``dout`` is dL/d(output) of the most recent ``forward``;
  returns dL/d(input) and writes dL/d(parameter) into ``grads`` **in place,
  overwriting** (not adding);
* ``params`` and ``grads``: dicts with the same keys, arrays allocated once at
  construction, so an optimizer can keep references to them;
* ``parameters()`` → ``[(param, grad), ...]``, ``named_parameters()`` →
  ``[(name, param, grad), ...]``.

``needs_input_grad`` (default True): when False, a layer with parameters may skip
dL/d(input) and return None from ``backward``, like an input without
``requires_grad`` in PyTorch. :class:`Sequential` sets it to False on its first layer,
whose input gradient nobody uses (:class:`Conv2d` then computes dw and db only); set
``model.needs_input_grad = True`` to get it back. ``cnnbook.gradcheck`` does so.

Calling ``forward`` twice before ``backward`` is allowed: the second call replaces the
cache, so ``backward`` differentiates the *latest* forward pass only. ``backward``
before any ``forward`` raises ``RuntimeError``; a ``dout`` whose shape is not the
output's shape raises ``ValueError``.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from . import functional as Fn
from ._validation import (
    batched,
    check_bool,
    nonnegative_pair,
    one_of,
    positive_counts,
    positive_pair,
)

__all__ = [
    "Layer",
    "Conv2d",
    "MaxPool2d",
    "AvgPool2d",
    "ReLU",
    "Flatten",
    "Linear",
    "Softmax",
    "Sequential",
    "SoftmaxCrossEntropy",
    "input_grad_enabled",
]


def _as_rng(rng) -> np.random.Generator:
    """None → a fresh unseeded generator; an int → ``default_rng(int)``; a Generator →
    itself."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


@contextmanager
def input_grad_enabled(layer):
    """Within the block, ``layer.backward`` returns dL/d(input) whatever its
    ``needs_input_grad`` says; the flag is restored afterwards. An object without the
    flag is left alone."""
    if not hasattr(layer, "needs_input_grad"):
        yield layer
        return
    saved = layer.needs_input_grad
    layer.needs_input_grad = True
    try:
        yield layer
    finally:
        layer.needs_input_grad = saved


class Layer:
    """Base class: parameter bookkeeping, the cache check, the ``dout`` shape check."""

    needs_input_grad = True  # see the module docstring

    def __init__(self):
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self._cache = None

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, x):
        raise NotImplementedError

    def backward(self, dout):
        raise NotImplementedError

    def parameters(self) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(self.params[name], self.grads[name]) for name in self.params]

    def named_parameters(self) -> list[tuple[str, np.ndarray, np.ndarray]]:
        return [(name, self.params[name], self.grads[name]) for name in self.params]

    def zero_grad(self) -> None:
        for g in self.grads.values():
            g[...] = 0

    def _add_param(self, name: str, value: np.ndarray) -> None:
        self.params[name] = value
        self.grads[name] = np.zeros_like(value)

    def _cached(self):
        if self._cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        return self._cache

    def _check_dout(self, dout, shape):
        dout = np.asarray(dout)
        if dout.shape != tuple(shape):
            raise ValueError(
                f"{type(self).__name__}.backward: dout must have the shape of the last "
                f"forward output {tuple(shape)}, got {dout.shape}"
            )
        return dout

    def _extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._extra_repr()})"


class Conv2d(Layer):
    """2-D convolution (cross-correlation, like ``torch.nn.Conv2d``), NCHW.

    params ``"weight"``: (out_channels, in_channels, kH, kW), He/Kaiming normal
    initialization ``N(0, 2 / fan_in)`` with ``fan_in = in_channels·kH·kW`` (keeps the
    activations' scale through ReLU); ``"bias"``: (out_channels,), zeros. ``gemm``
    (optional matrix-multiply backend) and ``method`` (``"auto"``, ``"im2col"`` or
    ``"numba"``) are passed to ``cnnbook.functional``; both are plain attributes,
    settable later.
    """

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        bias=True,
        *,
        rng=None,
        dtype=np.float32,
        gemm=None,
        method="auto",
    ):
        super().__init__()
        kh, kw = positive_pair(kernel_size, "kernel_size")
        self.in_channels, self.out_channels = positive_counts(
            "Conv2d", "channel", in_channels=in_channels, out_channels=out_channels
        )
        self.kernel_size = (kh, kw)
        self.stride = positive_pair(stride, "stride")
        self.padding = nonnegative_pair(padding, "padding")
        self.dilation = positive_pair(dilation, "dilation")
        self.gemm, self.method = gemm, method
        fan_in = self.in_channels * kh * kw
        std = np.sqrt(2.0 / fan_in)
        weight = _as_rng(rng).standard_normal(
            (self.out_channels, self.in_channels, kh, kw)
        )
        self._add_param("weight", (std * weight).astype(dtype))
        if bias:
            self._add_param("bias", np.zeros(self.out_channels, dtype=dtype))

    def forward(self, x):
        out = Fn.conv2d(
            x,
            self.params["weight"],
            self.params.get("bias"),
            self.stride,
            self.padding,
            self.dilation,
            gemm=self.gemm,
            method=self.method,
        )
        self._cache = (x, out.shape)
        return out

    def backward(self, dout):
        x, out_shape = self._cached()
        dout = self._check_dout(dout, out_shape)
        dx, dw, db = Fn.conv2d_backward(
            dout,
            x,
            self.params["weight"],
            self.stride,
            self.padding,
            self.dilation,
            gemm=self.gemm,
            method=self.method,
            need_dx=self.needs_input_grad,
        )
        self.grads["weight"][...] = dw
        if "bias" in self.grads:
            self.grads["bias"][...] = db
        return dx

    def _extra_repr(self):
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}"
        )


class MaxPool2d(Layer):
    """Max pooling (``stride`` defaults to ``kernel_size``); backward: to the argmax.

    The forward records where each maximum is (``max_pool2d_with_indices``), so the
    backward only routes ``dout`` there. ``method`` (``"auto"``, ``"numpy"`` or
    ``"numba"``) picks the kernels, as in ``cnnbook.functional``.
    """

    def __init__(
        self, kernel_size, stride=None, padding=0, ceil_mode=False, *, method="auto"
    ):
        super().__init__()
        self.method = method
        self.kernel_size = positive_pair(kernel_size, "kernel_size")
        self.stride = (
            self.kernel_size if stride is None else positive_pair(stride, "stride")
        )
        self.padding = nonnegative_pair(padding, "padding")
        self.ceil_mode = check_bool(ceil_mode, "ceil_mode", type(self).__name__)

    def forward(self, x):
        out, indices = Fn.max_pool2d_with_indices(
            x,
            self.kernel_size,
            self.stride,
            self.padding,
            self.ceil_mode,
            method=self.method,
        )
        self._cache = (x, indices)
        return out

    def backward(self, dout):
        x, indices = self._cached()
        dout = self._check_dout(dout, indices.shape)
        return Fn.max_pool2d_with_indices_backward(dout, x, indices, method=self.method)

    def _extra_repr(self):
        ceil = ", ceil_mode=True" if self.ceil_mode else ""
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, "
            f"padding={self.padding}{ceil}"
        )


class AvgPool2d(MaxPool2d):
    """Average pooling (zero padding counted in the average, like PyTorch's default)."""

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__(kernel_size, stride, padding)  # no ceil_mode, no method

    def forward(self, x):
        out = Fn.avg_pool2d(x, self.kernel_size, self.stride, self.padding)
        self._cache = (np.shape(x), out.shape)  # backward needs only x's shape
        return out

    def backward(self, dout):
        x_shape, out_shape = self._cached()
        dout = self._check_dout(dout, out_shape)
        # avg_pool2d_backward reads only the shape and dtype of x: a broadcast view.
        x_like = np.broadcast_to(np.zeros((), dtype=dout.dtype), x_shape)
        return Fn.avg_pool2d_backward(
            dout, x_like, self.kernel_size, self.stride, self.padding
        )


class ReLU(Layer):
    """``max(x, 0)``; gradient 0 where ``x <= 0``."""

    def forward(self, x):
        out = Fn.relu(x)
        self._cache = x
        return out

    def backward(self, dout):
        x = self._cached()
        dout = self._check_dout(dout, np.shape(x))
        return Fn.relu_backward(dout, x)


class Flatten(Layer):
    """``(N, d1, d2, ...) -> (N, d1·d2·...)`` in C order, as ``torch.flatten(x, 1)``."""

    def forward(self, x):
        x = batched(x, "Flatten")
        self._cache = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dout):
        shape = self._cached()
        dout = self._check_dout(dout, (shape[0], int(np.prod(shape[1:]))))
        return dout.reshape(shape)


class Linear(Layer):
    """Fully connected layer ``x @ W.T + b``.

    params ``"weight"`` (out, in), ``"bias"`` (out,).

    Weight init (``init``): ``"he"`` (default) Kaiming normal ``N(0, 2 / in_features)``,
    right when a ReLU follows; ``"lecun"`` ``N(0, 1 / in_features)``, for a layer with
    no ReLU after it, such as the one producing the logits. Bias zeros.
    """

    def __init__(
        self,
        in_features,
        out_features,
        bias=True,
        *,
        rng=None,
        dtype=np.float32,
        gemm=None,
        init="he",
    ):
        super().__init__()
        self.in_features, self.out_features = positive_counts(
            "Linear", "feature", in_features=in_features, out_features=out_features
        )
        self.gemm = gemm
        # Var(W) = gain / fan_in: gain 2 ("he") when a ReLU follows, as PyTorch names
        # it (the derivation's 2 is for a ReLU that feeds the layer); 1 ("lecun")
        # otherwise.
        gain = one_of(init, {"he": 2.0, "lecun": 1.0}, "init", "Linear")
        std = np.sqrt(gain / self.in_features)
        weight = _as_rng(rng).standard_normal((self.out_features, self.in_features))
        self._add_param("weight", (std * weight).astype(dtype))
        if bias:
            self._add_param("bias", np.zeros(self.out_features, dtype=dtype))

    def forward(self, x):
        out = Fn.linear(
            x, self.params["weight"], self.params.get("bias"), gemm=self.gemm
        )
        self._cache = x
        return out

    def backward(self, dout):
        x = self._cached()
        dout = self._check_dout(dout, (np.shape(x)[0], self.out_features))
        dx, dW, db = Fn.linear_backward(dout, x, self.params["weight"], gemm=self.gemm)
        self.grads["weight"][...] = dW
        if "bias" in self.grads:
            self.grads["bias"][...] = db
        return dx

    def _extra_repr(self):
        return f"{self.in_features}, {self.out_features}"


class Softmax(Layer):
    """Softmax over the last axis, for inference (``predict_proba``).

    Train with :class:`SoftmaxCrossEntropy` on the logits instead: fused, it is simpler
    and stable. ``backward`` is provided for completeness:
    ``dx = p * (dout - sum(dout * p))``.
    """

    def forward(self, x):
        p = Fn.softmax(x, axis=-1)
        self._cache = p
        return p

    def backward(self, dout):
        p = self._cached()
        dout = self._check_dout(dout, p.shape)
        return p * (dout - (dout * p).sum(axis=-1, keepdims=True))


class SoftmaxCrossEntropy(Layer):
    """Softmax and the mean cross-entropy, fused: the loss at the end of a classifier.

    ``forward(logits, targets) -> float``: ``logits (N, K)``, ``targets (N,)`` integer
    classes.
    ``backward() -> dlogits = (softmax(logits) - onehot(targets)) / N`` (times ``dout``
    if given, the gradient of the final objective with respect to this loss; 1 by
    default).
    """

    def forward(self, logits, targets):
        loss = Fn.cross_entropy(logits, targets)
        self._cache = (logits, np.asarray(targets))
        return loss

    def backward(self, dout=1.0):
        logits, targets = self._cached()
        grad = Fn.softmax_cross_entropy_backward(logits, targets)
        if dout != 1.0:
            grad *= dout
        return grad


class Sequential(Layer):
    """Layers applied in order; ``backward`` runs them in reverse.

    Parameters are named PyTorch-style: ``"<index>.<name>"``, e.g. ``"0.weight"``.
    ``params`` and ``grads`` are dicts under those names (views of the layers' own
    arrays, built on access).
    """

    def __init__(self, *layers):
        super().__init__()
        for i, layer in enumerate(layers):
            if not (hasattr(layer, "forward") and hasattr(layer, "backward")):
                raise TypeError(
                    f"Sequential: item {i} ({layer!r}) is not a layer "
                    "(needs forward/backward)"
                )
        self.layers = list(layers)
        self.needs_input_grad = False  # nobody uses the gradient of the data

    @property
    def needs_input_grad(self) -> bool:
        """Whether ``backward`` returns dL/d(input): the first layer's flag."""
        return bool(self.layers) and self.layers[0].needs_input_grad

    @needs_input_grad.setter
    def needs_input_grad(self, value: bool) -> None:
        if self.layers:
            self.layers[0].needs_input_grad = check_bool(
                value, "needs_input_grad", "Sequential"
            )

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dout):
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout

    def named_parameters(self):
        return [
            (f"{i}.{name}", p, g)
            for i, layer in enumerate(self.layers)
            for name, p, g in layer.named_parameters()
        ]

    def parameters(self):
        return [(p, g) for _, p, g in self.named_parameters()]

    @property
    def params(self):
        return {name: p for name, p, _ in self.named_parameters()}

    # Layer.__init__ assigns {}; the real dicts are derived from the layers.
    @params.setter
    def params(self, value):
        pass

    @property
    def grads(self):
        return {name: g for name, _, g in self.named_parameters()}

    @grads.setter
    def grads(self, value):
        pass

    def zero_grad(self):
        for layer in self.layers:
            if hasattr(layer, "zero_grad"):
                layer.zero_grad()

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every parameter, by name."""
        return {name: p.copy() for name, p, _ in self.named_parameters()}

    def load_state_dict(self, state: dict) -> None:
        """Copy ``state``'s arrays into the parameters *in place*.

        Optimizer references stay valid. ``ValueError`` for missing or unexpected keys
        or a wrong shape; nothing is changed then.
        """
        own = {name: p for name, p, _ in self.named_parameters()}
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        if missing or unexpected:
            raise ValueError(
                f"load_state_dict: missing keys {missing}, unexpected keys {unexpected}"
            )
        for name, p in own.items():
            shape = np.shape(state[name])
            if shape != p.shape:
                raise ValueError(
                    f"load_state_dict: {name!r} has shape {shape}, the model expects "
                    f"{p.shape}"
                )
        for name, p in own.items():
            p[...] = state[name]

    def __getitem__(self, index):
        if isinstance(index, slice):
            layers = self.layers[index]
            flag = layers[0].needs_input_grad if layers else False
            part = Sequential(*layers)
            part.needs_input_grad = flag  # a view of the model changes no layer
            return part
        return self.layers[index]

    def __len__(self):
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    def __repr__(self):
        lines = [f"  ({i}): {layer!r}" for i, layer in enumerate(self.layers)]
        return "Sequential(\n" + "\n".join(lines) + "\n)"
