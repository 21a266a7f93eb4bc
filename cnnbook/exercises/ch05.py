"""Checkers for Chapter 5, softmax and the fully connected layer.

The expected answers are computed here in float64 with NumPy alone
(``np.logaddexp.reduce`` for the log-sum-exp), independent of ``cnnbook.functional``.
"""

from __future__ import annotations

import numpy as np

from ._core import Case, CheckResult, run_cases

__all__ = ["check_softmax", "check_cross_entropy", "check_linear_size"]


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    return z - np.logaddexp.reduce(z, axis=-1, keepdims=True)


def _logit_cases(rng):
    """Logit matrices (N, K), each with the trap it sets for a hand-written softmax."""
    square = rng.standard_normal((3, 3)) * 3
    square[:, 0] += np.array([0.0, 30.0, -30.0])  # rows with different maxima
    return [
        (np.array([[1.0, 2.0, 3.0]]), ""),
        (
            rng.standard_normal((4, 5)),
            "softmax normalizes each row (axis=-1): every row sums to 1",
        ),
        (square, "subtract each row's own maximum: z.max(axis=-1, keepdims=True)"),
        (
            np.array([[1000.0, 1001.0, 1002.0], [-5.0, 0.0, 5.0]]),
            "exp(1000) overflows to inf: subtract the row's maximum before "
            "exponentiating",
        ),
        (
            np.array([[1e4, -1e4, 0.0, 1e4], [-1e4, -1e4 + 1.0, -1e4 + 2.0, -1e4]]),
            "logits of ±1e4: subtract each row's own maximum (a single maximum over "
            "the whole batch "
            "leaves rows whose exponentials all underflow to 0, and 0/0 is nan)",
        ),
        (
            (rng.standard_normal((2, 6)) * 50).astype(np.float32),
            "float32 logits: exp overflows already above about 88.7",
        ),
    ]


def check_softmax(fn) -> CheckResult:
    """``fn(z)`` → the softmax of every row of ``z: (N, K)``, finite for any finite
    logits."""
    rng = np.random.default_rng(5)
    cases = [
        Case((z,), np.exp(_log_softmax(z)), hint=hint) for z, hint in _logit_cases(rng)
    ]
    # float32 inputs are checked to float32 accuracy.
    return run_cases("softmax", fn, cases, rtol=1e-5, atol=1e-7)


def check_cross_entropy(fn) -> CheckResult:
    """``fn(logits, targets)`` → mean over the batch of ``-log softmax(logits)[n,
    targets[n]]``.

    ``logits: (N, K)`` floats, ``targets: (N,)`` integer class indices; returns a Python
    float.
    """
    rng = np.random.default_rng(55)
    # Equal logits give every class probability 1/10: the mean loss is ln 10 (the sum is
    # 8 ln 10).
    cases = [
        Case(
            (np.zeros((8, 10)), np.arange(8) % 10),
            float(np.log(10)),
            hint="equal logits give each of 10 classes probability 1/10, so every "
            "example "
            "loses ln 10 and so does the batch *mean* (do not sum)",
        )
    ]
    for z, hint in _logit_cases(rng):
        n, k = z.shape
        targets = rng.integers(0, k, size=n)
        targets[0] = np.argmin(
            z[0]
        )  # the least likely class: its probability may round to 0
        if n > 1:
            targets[1] = np.argmax(
                z[1]
            )  # different targets, so using the wrong one shows
        expected = float(-_log_softmax(z)[np.arange(n), targets].mean())
        if n > 1 and not hint:
            hint = "take one entry per row, the target's: logp[np.arange(N), targets]"
        elif "axis=-1" in hint:
            hint = "take one entry per row, the target's: logp[np.arange(N), targets]"
        elif "±1e4" in hint or "1000" in hint:
            hint = (
                "with huge logits softmax rounds to exactly 0 and log(0) = -inf: "
                "compute "
                "log-softmax directly as z - max - log(sum(exp(z - max)))"
            )
        cases.append(Case((z, targets), expected, hint=hint))
    return run_cases("cross_entropy", fn, cases, rtol=1e-5, atol=1e-9)


def check_linear_size(fn) -> CheckResult:
    """``fn(feature_shape, out_features, bias=True)`` → ``(in_features, n_params)`` of a
    ``Linear`` layer.

    ``feature_shape`` is the ``(C, H, W)`` of one example's pooled feature maps, which
    ``Flatten`` turns into a vector of ``in_features`` numbers; the layer has a weight
    ``(out, in)`` and, if ``bias``, a bias ``(out,)``. Both answers are ints.
    """
    specs = [
        ((1, 28, 28), 10, False, "a weight (out, in) holds out·in numbers"),
        (
            (8, 14, 14),
            10,
            False,
            "the flattened vector holds every channel: C·H·W numbers",
        ),
        ((8, 14, 14), 10, True, "plus one bias per output"),
        ((16, 5, 5), 120, True, "one bias per output, not per input"),
        ((32, 3, 7), 64, True, ""),
    ]
    cases = []
    for shape, out, bias, hint in specs:
        c, h, w = shape
        n_in = c * h * w
        cases.append(
            Case(
                (shape, out),
                (int(n_in), int(out * n_in + (out if bias else 0))),
                kwargs={"bias": bias},
                hint=hint,
            )
        )
    return run_cases("linear_size", fn, cases)
