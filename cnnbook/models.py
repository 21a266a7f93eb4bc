"""Ready-made models built from ``cnnbook.layers``: the seed CNN, prediction helpers."""

from __future__ import annotations

import numpy as np

from .functional import conv_output_size, softmax
from .layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential, _as_rng

__all__ = ["seed_cnn", "predict_proba", "predict"]


def seed_cnn(
    in_channels=1,
    num_classes=10,
    filters=8,
    kernel_size=3,
    padding=1,
    pool=2,
    input_size=28,
    *,
    rng=None,
    dtype=np.float32,
    gemm=None,
) -> Sequential:
    """The book's model: Conv2d → MaxPool2d → ReLU → Flatten → Linear (the logits).

    Input ``(N, in_channels, input_size, input_size)``, output ``(N, num_classes)`` raw
    scores (the softmax lives in the loss). The convolution is He-initialized (a ReLU
    follows it), the classifier LeCun-initialized, so the initial loss is close to
    ln(num_classes). ``rng``: Generator, int seed or None.
    """
    common = dict(rng=_as_rng(rng), dtype=dtype, gemm=gemm)
    conv_size = conv_output_size(input_size, kernel_size, 1, padding)
    pooled = conv_output_size(conv_size, pool, pool)
    return Sequential(
        Conv2d(in_channels, filters, kernel_size, padding=padding, **common),
        MaxPool2d(pool),
        ReLU(),
        Flatten(),
        Linear(filters * pooled * pooled, num_classes, init="lecun", **common),
    )


def predict_proba(model, x, batch_size: int = 256) -> np.ndarray:
    """Class probabilities ``(N, num_classes)``: softmax of the logits, in batches."""
    x = np.asarray(x)
    if len(x) == 0:
        raise ValueError(f"predict_proba: empty input of shape {x.shape}")
    parts = [
        softmax(model.forward(x[i : i + batch_size]), axis=-1)
        for i in range(0, len(x), batch_size)
    ]
    return np.concatenate(parts)


def predict(model, x, batch_size: int = 256) -> np.ndarray:
    """Predicted classes ``(N,)`` (int64): the argmax of the logits."""
    x = np.asarray(x)
    if len(x) == 0:
        raise ValueError(f"predict: empty input of shape {x.shape}")
    parts = [
        model.forward(x[i : i + batch_size]).argmax(axis=1)
        for i in range(0, len(x), batch_size)
    ]
    return np.concatenate(parts).astype(np.int64)
