"""Checkers for Chapter 4, max pooling and ReLU.

The expected answers are computed here with a few lines of NumPy of their own,
independent of ``cnnbook.functional``, so a checker cannot agree with a bug in the code
it teaches.
"""

from __future__ import annotations

import numpy as np

from ._core import Case, CheckResult, require_function, run_cases

__all__ = ["check_pool_output_shape", "check_max_pool_single", "check_relu"]


def _pool_size(n: int, k: int, s: int, p: int) -> int:
    return (n + 2 * p - k) // s + 1


def _expected_shape(shape, kernel_size, stride=None, padding=0):
    n, c, h, w = shape
    k = kernel_size
    s = k if stride is None else stride
    return (n, c, _pool_size(h, k, s, padding), _pool_size(w, k, s, padding))


def check_pool_output_shape(fn) -> CheckResult:
    """``fn(shape, kernel_size, stride=None, padding=0)`` → the output shape of max
    pooling.

    ``shape`` is the input's ``(N, C, H, W)``; ``kernel_size``, ``stride`` and
    ``padding`` are ints (square windows). The stride defaults to the kernel size, as in
    PyTorch. The answer is a tuple of four Python ints.
    """
    specs = [
        (
            (1, 3, 32, 32),
            3,
            2,
            0,
            "floor((H + 2p - k)/s) + 1: an integer, rounded down",
        ),
        (
            (64, 8, 28, 28),
            2,
            None,
            0,
            "with stride=None the stride is the kernel size: windows do not overlap",
        ),
        (
            (2, 4, 7, 7),
            2,
            None,
            0,
            "a window that would stick out of the input is dropped (floor, not ceil)",
        ),
        ((1, 1, 5, 9), 3, 1, 1, "padding adds p rows/columns on *both* sides"),
        (
            (8, 16, 15, 10),
            3,
            2,
            1,
            "padding adds p rows/columns on both sides, then floor((H + 2p - k)/s) + 1",
        ),
        ((1, 2, 6, 6), 6, None, 0, ""),
    ]
    cases = []
    for shape, k, s, p, hint in specs:
        kwargs = {"padding": p}
        if s is not None:
            kwargs["stride"] = s
        expected = tuple(int(v) for v in _expected_shape(shape, k, s, p))
        cases.append(Case((shape, k), expected, kwargs=kwargs, hint=hint))
    return run_cases("pool_output_shape", fn, cases)


def _max_pool_single(x: np.ndarray, k: int, s: int) -> np.ndarray:
    h, w = x.shape
    ho, wo = _pool_size(h, k, s, 0), _pool_size(w, k, s, 0)
    out = np.empty((ho, wo), dtype=x.dtype)
    for i in range(ho):
        for j in range(wo):
            out[i, j] = x[i * s : i * s + k, j * s : j * s + k].max()
    return out


def check_max_pool_single(fn) -> CheckResult:
    """``fn(x, k, stride)`` → max pooling of one 2-D map ``x: (H, W)`` with a k×k
    window, no padding.

    The output has shape ``((H - k)//stride + 1, (W - k)//stride + 1)``.
    """
    rng = np.random.default_rng(4)
    specs = [
        (np.arange(16.0).reshape(4, 4), 2, 2, ""),
        (rng.standard_normal((6, 6)), 2, 2, ""),
        (
            -1.0 - rng.random((4, 6)),
            2,
            2,
            "every value here is negative: a running maximum must start at -inf (or "
            "the first value), not 0",
        ),
        (
            rng.standard_normal((5, 7)),
            2,
            2,
            "when the window does not fit, the last row/column is dropped: floor((H - "
            "k)/s) + 1 outputs",
        ),
        (
            rng.standard_normal((7, 6)),
            3,
            1,
            "overlapping windows: window (i, j) starts at row i*stride, column "
            "j*stride",
        ),
        (
            rng.standard_normal((9, 8)),
            3,
            2,
            "window (i, j) starts at row i*stride, column j*stride",
        ),
    ]
    cases = [
        Case((x, k, s), _max_pool_single(x, k, s), hint=hint) for x, k, s, hint in specs
    ]
    return run_cases("max_pool_single", fn, cases, rtol=0, atol=0)


def check_relu(fn) -> CheckResult:
    """``fn(x)`` → ``max(x, 0)`` elementwise, a new array of the same shape and dtype;
    ``x`` unchanged."""
    require_function("relu", fn)
    rng = np.random.default_rng(44)
    inputs = [
        np.array([-2.0, -0.5, 0.0, 0.5, 2.0]),
        rng.standard_normal((2, 3, 4, 4)),
        rng.standard_normal((3, 5)).astype(np.float32),
        -np.abs(rng.standard_normal((2, 2))) - 1.0,
    ]

    def guarded(x):
        before = x.copy()
        got = fn(x)
        if not np.array_equal(x, before):
            raise AssertionError(
                "it modified its input; ReLU must return a new array and leave x alone"
            )
        if isinstance(got, np.ndarray) and got.dtype != x.dtype:
            raise AssertionError(f"it changed the dtype from {x.dtype} to {got.dtype}")
        return got

    guarded.__name__ = getattr(fn, "__name__", "relu")
    cases = [Case((x,), np.maximum(x, 0)) for x in inputs]
    return run_cases("relu", guarded, cases, rtol=0, atol=0)
