"""The definitions as explicit Python loops, with the names and signatures of
``cnnbook.functional``.

Nothing here is clever on purpose. Each function is the formula written out one
multiply-add at a time, so that every index can be read off the code;
``cnnbook.functional`` computes the same numbers thousands of times faster, and the
tests check that both agree to 1e-10 in float64.

Layout is NCHW throughout: ``x[n, c, row, col]``; weights are
``w[out_channel, in_channel, kh, kw]``. Arguments are validated by the same helpers as
the fast path (``cnnbook._validation``), so both reject the same inputs.
"""

from __future__ import annotations

import math

import numpy as np

from ._validation import (
    check_conv_args,
    check_dout,
    check_linear_args,
    check_targets,
    conv_geometry,
    float_array,
    pool_args,
    pool_backward_args,
)
from .functional import conv_output_size

__all__ = [
    "conv2d",
    "conv2d_backward",
    "max_pool2d",
    "max_pool2d_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "relu",
    "relu_backward",
    "linear",
    "linear_backward",
    "softmax",
    "log_softmax",
    "cross_entropy",
    "softmax_cross_entropy_backward",
]


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1):
    """2-D convolution (cross-correlation, as PyTorch computes it) as seven loops.

    ``x: (N, C, H, W)``, ``w: (F, C, kH, kW)``, ``b: (F,)`` or None →
    ``(N, F, Ho, Wo)``.
    """
    x, w, b = check_conv_args(x, w, b, "conv2d")
    N, C, H, W = x.shape
    F, _, kH, kW = w.shape
    # conv_geometry validates the arguments; its output size is not used here, so the
    # listing shows the size computed by the formula itself, conv_output_size.
    _, (sH, sW), (pH, pW), (dH, dW), _ = conv_geometry(
        x.shape, (kH, kW), stride, padding, dilation
    )
    Ho = conv_output_size(H, kH, sH, pH, dH)
    Wo = conv_output_size(W, kW, sW, pW, dW)
    out = np.zeros((N, F, Ho, Wo), dtype=np.result_type(x, w))

    for n in range(N):  # 1. every image of the batch
        for f in range(F):  # 2. every output channel (one filter each)
            for oh in range(Ho):  # 3. every output row
                for ow in range(Wo):  # 4. every output column
                    total = 0.0 if b is None else float(b[f])
                    for c in range(C):  # 5. every input channel
                        for i in range(kH):  # 6. every kernel row
                            for j in range(kW):  # 7. every kernel column
                                # The window starts at oh*s in the padded
                                # image, tap i sits i*d further; minus the
                                # padding: the row of x. Same for columns.
                                r = oh * sH + i * dH - pH
                                q = ow * sW + j * dW - pW
                                if 0 <= r < H and 0 <= q < W:  # else padding: 0
                                    total += x[n, c, r, q] * w[f, c, i, j]
                    out[n, f, oh, ow] = total
    return out


def conv2d_backward(dout, x, w, stride=1, padding=0, dilation=1):
    """Gradients ``(dx, dw, db)`` of :func:`conv2d`: the seven loops, run backwards.

    Forward, every multiply-add ``out[n,f,oh,ow] += x[n,c,r,s] * w[f,c,i,j]`` made
    ``out`` depend on one input pixel and one weight. Backward visits the same
    multiply-adds and scatters ``dout[n,f,oh,ow]`` back along both factors: into
    ``dx[n,c,r,s]`` scaled by the weight and into ``dw[f,c,i,j]`` scaled by the input
    pixel.
    """
    x, w, _ = check_conv_args(x, w, None, "conv2d_backward")
    N, C, H, W = x.shape
    F, _, kH, kW = w.shape
    _, (sH, sW), (pH, pW), (dH, dW), (Ho, Wo) = conv_geometry(
        x.shape, (kH, kW), stride, padding, dilation, "conv2d_backward"
    )
    dout = check_dout(dout, (N, F, Ho, Wo), "conv2d_backward")
    dtype = np.result_type(x, w, dout)
    dx = np.zeros(x.shape, dtype=dtype)
    dw = np.zeros(w.shape, dtype=dtype)
    db = np.zeros(F, dtype=dtype)

    for n in range(N):
        for f in range(F):
            for oh in range(Ho):
                for ow in range(Wo):
                    g = dout[n, f, oh, ow]
                    db[f] += g  # the bias was added to every output
                    for c in range(C):
                        for i in range(kH):
                            for j in range(kW):
                                # the same offsets as the forward pass
                                r = oh * sH + i * dH - pH
                                s = ow * sW + j * dW - pW
                                if 0 <= r < H and 0 <= s < W:
                                    dx[n, c, r, s] += g * w[f, c, i, j]
                                    dw[f, c, i, j] += g * x[n, c, r, s]
    return dx, dw, db


def max_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False):
    """Max pooling as loops: each output is the largest pixel of its kH×kW window.

    Padded cells (−inf) and cells past the input (``ceil_mode``) are skipped.
    """
    x, (kH, kW), (sH, sW), (pH, pW), (Ho, Wo) = pool_args(
        x, kernel_size, stride, padding, "max_pool2d", ceil_mode
    )
    N, C, H, W = x.shape
    out = np.empty((N, C, Ho, Wo), dtype=x.dtype)
    for n in range(N):
        for c in range(C):
            for oh in range(Ho):
                for ow in range(Wo):
                    best = -math.inf
                    for i in range(kH):
                        for j in range(kW):
                            r, q = oh * sH + i - pH, ow * sW + j - pW
                            if 0 <= r < H and 0 <= q < W:
                                best = max(best, x[n, c, r, q])
                    out[n, c, oh, ow] = best
    return out


def max_pool2d_backward(dout, x, kernel_size, stride=None, padding=0, ceil_mode=False):
    """Gradient of max pooling: each window sends its ``dout`` to its maximum.

    Ties go to the first maximum in row-major window order (strict ``>`` while
    scanning), like PyTorch. Windows that overlap can pick the same pixel; its
    gradients add up.
    """
    dout, x, (kH, kW), (sH, sW), (pH, pW), (Ho, Wo) = pool_backward_args(
        dout, x, kernel_size, stride, padding, "max_pool2d_backward", ceil_mode
    )
    N, C, H, W = x.shape
    dx = np.zeros(x.shape, dtype=np.result_type(x, dout))
    for n in range(N):
        for c in range(C):
            for oh in range(Ho):
                for ow in range(Wo):
                    best, where = -math.inf, None
                    for i in range(kH):
                        for j in range(kW):
                            r, s = oh * sH + i - pH, ow * sW + j - pW
                            if 0 <= r < H and 0 <= s < W:
                                # strict: the first maximum wins
                                if where is None or x[n, c, r, s] > best:
                                    best, where = x[n, c, r, s], (r, s)
                    dx[n, c, where[0], where[1]] += dout[n, c, oh, ow]
    return dx


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    """Average pooling as loops; padded zeros count (divide by kH·kW, like PyTorch)."""
    x, (kH, kW), (sH, sW), (pH, pW), (Ho, Wo) = pool_args(
        x, kernel_size, stride, padding, "avg_pool2d"
    )
    N, C, H, W = x.shape
    out = np.empty((N, C, Ho, Wo), dtype=x.dtype)
    for n in range(N):
        for c in range(C):
            for oh in range(Ho):
                for ow in range(Wo):
                    total = 0.0
                    for i in range(kH):
                        for j in range(kW):
                            r, s = oh * sH + i - pH, ow * sW + j - pW
                            if 0 <= r < H and 0 <= s < W:
                                total += x[n, c, r, s]
                    out[n, c, oh, ow] = total / (kH * kW)
    return out


def avg_pool2d_backward(dout, x, kernel_size, stride=None, padding=0):
    """Gradient of average pooling: each window shares ``dout`` among its kH·kW taps."""
    dout, x, (kH, kW), (sH, sW), (pH, pW), (Ho, Wo) = pool_backward_args(
        dout, x, kernel_size, stride, padding, "avg_pool2d_backward"
    )
    N, C, H, W = x.shape
    dx = np.zeros(x.shape, dtype=np.result_type(x, dout))
    for n in range(N):
        for c in range(C):
            for oh in range(Ho):
                for ow in range(Wo):
                    share = dout[n, c, oh, ow] / (kH * kW)
                    for i in range(kH):
                        for j in range(kW):
                            r, s = oh * sH + i - pH, ow * sW + j - pW
                            if 0 <= r < H and 0 <= s < W:  # padding: dropped
                                dx[n, c, r, s] += share
    return dx


def relu(x):
    """``max(x, 0)`` one element at a time (any shape)."""
    x = float_array(x, "x", "relu")
    out = np.empty_like(x)
    for idx in np.ndindex(x.shape):
        out[idx] = x[idx] if x[idx] > 0 else 0.0
    return out


def relu_backward(dout, x):
    """Gradient of ReLU: ``dout`` where ``x > 0``; 0 elsewhere, including at 0."""
    x = float_array(x, "x", "relu_backward")
    dout = check_dout(dout, x.shape, "relu_backward")
    dx = np.zeros_like(dout)
    for idx in np.ndindex(x.shape):
        if x[idx] > 0:
            dx[idx] = dout[idx]
    return dx


def linear(x, W, b=None):
    """Fully connected layer as loops: ``out[n, o] = b[o] + sum_k x[n, k] W[o, k]``."""
    x, W, b = check_linear_args(x, W, b, "linear")
    N, K = x.shape
    M = W.shape[0]  # out_features
    out = np.zeros((N, M), dtype=np.result_type(x, W))
    for n in range(N):
        for o in range(M):
            total = 0.0 if b is None else float(b[o])
            for k in range(K):
                total += x[n, k] * W[o, k]
            out[n, o] = total
    return out


def linear_backward(dout, x, W):
    """Gradients ``(dx, dW, db)`` of :func:`linear`, scattering each ``dout[n, o]``."""
    x, W, _ = check_linear_args(x, W, None, "linear_backward")
    N, K = x.shape
    M = W.shape[0]  # out_features
    dout = check_dout(dout, (N, M), "linear_backward")
    dtype = np.result_type(x, W, dout)
    dx, dW, db = np.zeros((N, K), dtype), np.zeros((M, K), dtype), np.zeros(M, dtype)
    for n in range(N):
        for o in range(M):
            g = dout[n, o]
            db[o] += g
            for k in range(K):
                dx[n, k] += g * W[o, k]
                dW[o, k] += g * x[n, k]
    return dx, dW, db


def softmax(z, axis=-1):
    """Softmax along ``axis``, one slice at a time, the maximum subtracted first."""
    z = float_array(z, "z", "softmax")
    moved = np.moveaxis(z, axis, -1)
    out = np.empty_like(moved)
    for idx in np.ndindex(moved.shape[:-1]):
        row = moved[idx]
        m = max(row)
        exps = [math.exp(v - m) for v in row]
        total = sum(exps)
        for k, e in enumerate(exps):
            out[idx + (k,)] = e / total
    return np.moveaxis(out, -1, axis)


def log_softmax(z, axis=-1):
    """Log-softmax along ``axis``: ``z_k - m - log sum_j exp(z_j - m)``, ``m = max``."""
    z = float_array(z, "z", "log_softmax")
    moved = np.moveaxis(z, axis, -1)
    out = np.empty_like(moved)
    for idx in np.ndindex(moved.shape[:-1]):
        row = moved[idx]
        m = max(row)
        log_total = math.log(sum(math.exp(v - m) for v in row))
        for k, v in enumerate(row):
            out[idx + (k,)] = v - m - log_total
    return np.moveaxis(out, -1, axis)


def cross_entropy(logits, targets):
    """The batch mean of ``-log softmax(logits[n])[targets[n]]``, a Python float."""
    logits, targets = check_targets(logits, targets, "cross_entropy")
    logp = log_softmax(logits, axis=1)
    total = 0.0
    for n in range(logits.shape[0]):
        total -= logp[n, targets[n]]
    return float(total / logits.shape[0])


def softmax_cross_entropy_backward(logits, targets):
    """``(softmax(logits) - onehot(targets)) / N`` written out per element."""
    logits, targets = check_targets(logits, targets, "softmax_cross_entropy_backward")
    N, K = logits.shape
    p = softmax(logits, axis=1)
    grad = np.empty_like(p)
    for n in range(N):
        for k in range(K):
            grad[n, k] = (p[n, k] - (1.0 if k == targets[n] else 0.0)) / N
    return grad
