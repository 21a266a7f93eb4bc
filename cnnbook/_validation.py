"""Argument checks at the package's boundary, shared by every module.

The functions the book displays (``cnnbook.functional``, ``cnnbook.naive``, the layers)
call one of these helpers on their first line and then compute, so that their bodies
read as the mathematics. The helpers raise ``TypeError`` for a wrong kind of value and
``ValueError`` for a wrong shape or size, always naming the function, the argument and
the offending shapes. Nothing is broadcast or converted silently.

Hyper-parameters (``kernel_size``, ``stride``, ``padding``, ``dilation``) accept an int
or an ``(h, w)`` pair; :func:`pair` normalizes them.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = [
    "pair",
    "positive_pair",
    "nonnegative_pair",
    "check_axis",
    "float_array",
    "check_ndim",
    "images",
    "conv_geometry",
    "check_conv_args",
    "conv_backward_args",
    "check_dout",
    "pool_output_size",
    "pool_geometry",
    "pool_args",
    "pool_backward_args",
    "check_pool_indices",
    "check_bool",
    "check_linear_args",
    "check_targets",
    "batched",
    "positive_counts",
    "one_of",
]


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(
        value, (bool, np.bool_)
    )


# ----------------------------------------------------------------------------------
# Hyper-parameters
# ----------------------------------------------------------------------------------


def pair(v, name: str = "value") -> tuple[int, int]:
    """``v`` as a pair of Python ints ``(h, w)``: an int means the same for both axes.

    Raises ``TypeError`` for non-integers (including bools and floats) and
    ``ValueError`` for a sequence that does not have exactly two entries. The sign is
    checked by the caller, which knows whether 0 is allowed (padding) or not (stride,
    dilation, kernel size).
    """

    def as_int(item):
        if not _is_int(item):
            raise TypeError(f"{name} must be an int or a pair of ints, got {v!r}")
        return int(item)

    if isinstance(v, (tuple, list, np.ndarray)):
        if len(v) != 2:
            raise ValueError(
                f"{name} must be an int or a pair (h, w), got {v!r} with "
                f"{len(v)} entries"
            )
        return as_int(v[0]), as_int(v[1])
    value = as_int(v)
    return value, value


def positive_pair(v, name: str) -> tuple[int, int]:
    """:func:`pair`, and both entries >= 1 (stride, dilation, kernel size)."""
    p = pair(v, name)
    if min(p) < 1:
        raise ValueError(f"{name} must be positive, got {v!r}")
    return p


def nonnegative_pair(v, name: str) -> tuple[int, int]:
    """:func:`pair`, and both entries >= 0 (padding)."""
    p = pair(v, name)
    if min(p) < 0:
        raise ValueError(f"{name} must be non-negative, got {v!r}")
    return p


def check_axis(n, k, stride, padding, dilation) -> None:
    """The arguments of ``conv_output_size``: ints in range, and a kernel that fits.

    ``n``, ``k``, ``stride``, ``dilation`` >= 1, ``padding`` >= 0 (``TypeError`` for a
    non-int, ``ValueError`` out of range); ``ValueError`` when the dilated kernel spans
    more cells than the padded input has.
    """
    for value, name, low in (
        (n, "n", 1),
        (k, "k", 1),
        (stride, "stride", 1),
        (padding, "padding", 0),
        (dilation, "dilation", 1),
    ):
        if not _is_int(value):
            raise TypeError(f"conv_output_size: {name} must be an int, got {value!r}")
        if value < low:
            raise ValueError(f"conv_output_size: {name} must be >= {low}, got {value}")
    span = dilation * (k - 1) + 1
    if span > n + 2 * padding:
        raise ValueError(
            f"kernel larger than the padded input: kernel {k} with dilation "
            f"{dilation} spans {span}, input {n} + 2·padding {padding} = "
            f"{n + 2 * padding}"
        )


# ----------------------------------------------------------------------------------
# Arrays
# ----------------------------------------------------------------------------------


def float_array(a, name: str, fn: str) -> np.ndarray:
    """``np.asarray(a)``; ``TypeError`` unless its dtype is a real float."""
    a = np.asarray(a)
    if a.dtype.kind != "f":
        raise TypeError(
            f"{fn}: {name} must be a float array (float32 or float64), got dtype "
            f"{a.dtype}"
        )
    return a


def check_ndim(a, ndim: int, name: str, layout: str, fn: str) -> None:
    """``ValueError`` unless ``a`` has ``ndim`` axes (``layout`` names them)."""
    if a.ndim != ndim:
        raise ValueError(
            f"{fn}: {name} must have shape {layout}, got shape {a.shape} ({a.ndim}-D)"
        )


def images(x, fn: str, name: str = "x") -> np.ndarray:
    """``x`` as a float array of shape ``(N, C, H, W)``."""
    x = float_array(x, name, fn)
    check_ndim(x, 4, name, "(N, C, H, W)", fn)
    return x


def check_dout(dout, expected, fn: str) -> np.ndarray:
    """An upstream gradient: a float array with the output's shape ``expected``."""
    dout = float_array(dout, "dout", fn)
    if dout.shape != tuple(expected):
        raise ValueError(
            f"{fn}: dout must have the output's shape {tuple(expected)}, got "
            f"{dout.shape}"
        )
    return dout


# ----------------------------------------------------------------------------------
# Convolution
# ----------------------------------------------------------------------------------


def conv_geometry(x_shape, kernel_size, stride, padding, dilation, fn="conv2d"):
    """Validate the hyperparameters for an input ``(N, C, H, W)``; return the geometry.

    Returns ``(kh, kw), (sh, sw), (ph, pw), (dh, dw), (Ho, Wo)``.
    """
    kh, kw = positive_pair(kernel_size, "kernel_size")
    sh, sw = positive_pair(stride, "stride")
    ph, pw = nonnegative_pair(padding, "padding")
    dh, dw = positive_pair(dilation, "dilation")
    H, W = x_shape[2], x_shape[3]
    span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    if span_h > H + 2 * ph or span_w > W + 2 * pw:
        raise ValueError(
            f"{fn}: kernel larger than the padded input: kernel ({kh}, {kw}) with "
            f"dilation ({dh}, {dw}) spans ({span_h}, {span_w}), input "
            f"{tuple(x_shape)} padded by ({ph}, {pw}) is "
            f"({H + 2 * ph}, {W + 2 * pw})"
        )
    from .functional import conv_output_size  # the one copy of the formula

    Ho = conv_output_size(H, kh, sh, ph, dh)
    Wo = conv_output_size(W, kw, sw, pw, dw)
    return (kh, kw), (sh, sw), (ph, pw), (dh, dw), (Ho, Wo)


def _operands(x, w, w_name: str, x_layout: str, w_layout: str, fn: str):
    """``x`` and the weights ``w`` as float arrays with the axes their layouts name."""
    x, w = float_array(x, "x", fn), float_array(w, w_name, fn)
    check_ndim(x, x_layout.count(",") + 1, "x", x_layout, fn)
    check_ndim(w, w_layout.count(",") + 1, w_name, w_layout, fn)
    return x, w


def _bias(b, w, w_name: str, fn: str):
    """None, or a float bias with one entry per output (``w.shape[0]``)."""
    if b is None:
        return None
    b = float_array(b, "b", fn)
    if b.shape != (w.shape[0],):
        raise ValueError(
            f"{fn}: bias must have shape ({w.shape[0]},) for {w_name} of shape "
            f"{w.shape}, got shape {b.shape}"
        )
    return b


def check_conv_args(x, w, b, fn: str):
    """``x: (N, C, H, W)``, ``w: (F, C, kH, kW)``, ``b: (F,)`` or None, all float."""
    x, w = _operands(x, w, "w", "(N, C, H, W)", "(F, C, kH, kW)", fn)
    if x.shape[1] != w.shape[1]:
        raise ValueError(
            f"{fn}: channel mismatch: x has {x.shape[1]} channels (shape {x.shape}) "
            f"but w expects {w.shape[1]} (shape {w.shape}, layout (out, in, kH, kW))"
        )
    return x, w, _bias(b, w, "w", fn)


def conv_backward_args(dout, x, w, stride, padding, dilation, fn: str):
    """:func:`check_conv_args` for ``x``, ``w``, then ``dout`` as the output's gradient.

    ``dout`` must be a float array of the forward output's shape ``(N, F, Ho, Wo)``.
    Returns ``(dout, x, w)``.
    """
    x, w, _ = check_conv_args(x, w, None, fn)
    *_, (Ho, Wo) = conv_geometry(x.shape, w.shape[2:], stride, padding, dilation, fn)
    return check_dout(dout, (len(x), len(w), Ho, Wo), fn), x, w


# ----------------------------------------------------------------------------------
# Pooling
# ----------------------------------------------------------------------------------


def pool_output_size(n: int, k: int, s: int, p: int, ceil_mode: bool = False) -> int:
    """Pooling output length along one axis, exactly as PyTorch computes it.

    ``floor((n + 2p - k) / s) + 1``, or with ``ceil_mode`` the ceiling, so that a last,
    partial window covers the cells the floor would drop; but that window must start
    inside the input or its left padding (``(out - 1)·s < n + p``), else it is dropped:
    a window lying entirely in the right padding would hold no real pixel.
    """
    out = (n + 2 * p - k + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    return out


def pool_geometry(x_shape, kernel_size, stride, padding, fn: str, ceil_mode=False):
    """Validate pooling hyperparameters; return the geometry.

    Returns ``(kh, kw), (sh, sw), (ph, pw), (Ho, Wo)``.

    ``stride=None`` means the kernel size. Padding may be at most half the kernel
    (PyTorch's rule: every window holds at least one real pixel). ``ceil_mode`` (a
    bool) rounds the output size up, see :func:`pool_output_size`.
    """
    ceil_mode = check_bool(ceil_mode, "ceil_mode", fn)
    kh, kw = positive_pair(kernel_size, "kernel_size")
    sh, sw = positive_pair(kernel_size if stride is None else stride, "stride")
    ph, pw = nonnegative_pair(padding, "padding")
    if ph > kh // 2 or pw > kw // 2:
        raise ValueError(
            f"{fn}: padding ({ph}, {pw}) must be at most half the kernel size "
            f"({kh}, {kw}), i.e. <= ({kh // 2}, {kw // 2})"
        )
    H, W = x_shape[2], x_shape[3]
    if kh > H + 2 * ph or kw > W + 2 * pw:
        raise ValueError(
            f"{fn}: kernel ({kh}, {kw}) larger than the padded input: input "
            f"{tuple(x_shape)} padded by ({ph}, {pw})"
        )
    Ho = pool_output_size(H, kh, sh, ph, ceil_mode)
    Wo = pool_output_size(W, kw, sw, pw, ceil_mode)
    return (kh, kw), (sh, sw), (ph, pw), (Ho, Wo)


def pool_args(x, kernel_size, stride, padding, fn: str, ceil_mode=False):
    """``x`` as a float ``(N, C, H, W)`` array, followed by :func:`pool_geometry`."""
    x = images(x, fn)
    return (x, *pool_geometry(x.shape, kernel_size, stride, padding, fn, ceil_mode))


def pool_backward_args(dout, x, kernel_size, stride, padding, fn: str, ceil_mode=False):
    """:func:`pool_args`, then ``dout`` as the gradient of the pooled output.

    Returns ``(dout, x, (kh, kw), (sh, sw), (ph, pw), (Ho, Wo))``.
    """
    x, k, s, p, out_hw = pool_args(x, kernel_size, stride, padding, fn, ceil_mode)
    dout = check_dout(dout, (*x.shape[:2], *out_hw), fn)
    return dout, x, k, s, p, out_hw


def check_pool_indices(dout, x, indices, fn: str):
    """``x: (N, C, H, W)`` and the ``indices`` of its maxima, integers in [0, H·W) of
    shape ``(N, C, Ho, Wo)``, and ``dout`` of that shape. Returns (dout, x, indices).
    """
    x = images(x, fn)
    indices = np.asarray(indices)
    if indices.dtype.kind not in "iu":
        raise TypeError(
            f"{fn}: indices must be integer positions, got dtype {indices.dtype}"
        )
    check_ndim(indices, 4, "indices", "(N, C, Ho, Wo)", fn)
    if indices.shape[:2] != x.shape[:2]:
        raise ValueError(
            f"{fn}: indices of shape {indices.shape} do not belong to x of shape "
            f"{x.shape} (batch and channels must agree)"
        )
    plane = x.shape[2] * x.shape[3]
    if indices.size and (indices.min() < 0 or indices.max() >= plane):
        raise ValueError(
            f"{fn}: indices must lie in [0, H·W) = [0, {plane}), got values from "
            f"{indices.min()} to {indices.max()}"
        )
    return check_dout(dout, indices.shape, fn), x, indices


def check_bool(value, name: str, fn: str) -> bool:
    """``bool(value)``; ``TypeError`` unless it is a bool."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{fn}: {name} must be a bool, got {value!r}")
    return bool(value)


# ----------------------------------------------------------------------------------
# Fully connected layer and the loss
# ----------------------------------------------------------------------------------


def check_linear_args(x, W, b, fn: str):
    """``x: (N, in)``, ``W: (out, in)``, ``b: (out,)`` or None, all float."""
    x, W = _operands(x, W, "W", "(N, in_features)", "(out_features, in_features)", fn)
    if x.shape[1] != W.shape[1]:
        raise ValueError(
            f"{fn}: x has {x.shape[1]} features (shape {x.shape}) but W of shape "
            f"{W.shape} (layout (out, in)) expects {W.shape[1]}"
        )
    return x, W, _bias(b, W, "W", fn)


def check_targets(logits, targets, fn: str):
    """Float ``logits: (N, K)`` and integer ``targets: (N,)`` with values in [0, K)."""
    logits = float_array(logits, "logits", fn)
    check_ndim(logits, 2, "logits", "(N, num_classes)", fn)
    targets = np.asarray(targets)
    if targets.dtype.kind not in "iu":
        raise TypeError(
            f"{fn}: targets must be integer class indices, got dtype {targets.dtype}"
        )
    if targets.shape != (logits.shape[0],):
        raise ValueError(
            f"{fn}: targets must have shape ({logits.shape[0]},) for logits of shape "
            f"{logits.shape}, got {targets.shape}"
        )
    if targets.size and (targets.min() < 0 or targets.max() >= logits.shape[1]):
        raise ValueError(
            f"{fn}: targets must lie in [0, {logits.shape[1]}), got values from "
            f"{targets.min()} to {targets.max()}"
        )
    return logits, targets


# ----------------------------------------------------------------------------------
# Layer constructors
# ----------------------------------------------------------------------------------


def batched(x, fn: str) -> np.ndarray:
    """``np.asarray(x)``, which must have a batch axis and at least one more."""
    x = np.asarray(x)
    if x.ndim < 2:
        raise ValueError(
            f"{fn}: x must have a batch axis and at least one more, got shape {x.shape}"
        )
    return x


def positive_counts(fn: str, what: str, **counts) -> tuple[int, ...]:
    """``int()`` of every count; ``ValueError`` naming them all if one is < 1.

    ``positive_counts("Linear", "feature", in_features=3, out_features=0)`` raises
    ``Linear: feature counts must be positive, got in_features=3, out_features=0``.
    """
    values = tuple(int(v) for v in counts.values())
    if min(values) < 1:
        given = ", ".join(f"{name}={v}" for name, v in counts.items())
        raise ValueError(f"{fn}: {what} counts must be positive, got {given}")
    return values


def one_of(value, choices, name: str, fn: str):
    """``choices[value]``; ``ValueError`` listing the choices if there is none."""
    if value not in choices:
        raise ValueError(
            f"{fn}: {name} must be one of {sorted(choices)}, got {value!r}"
        )
    return choices[value]
