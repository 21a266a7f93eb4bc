"""One-dimensional convolution and cross-correlation, and Chapter 1's kernels.

Conventions
-----------
* Signals and kernels are 1-D arrays: ``x: (N,)``, ``w: (K,)``. Lists are
  accepted and converted.
* ``conv1d`` is *true* convolution (the kernel is flipped), exactly like
  ``numpy.convolve``::

      full[i] = sum_j x[i - j] * w[j],   i = 0 .. N + K - 2

  where terms with ``x`` outside ``0 .. N-1`` count as zero.
  ``correlate1d`` slides the kernel without flipping it (what deep-learning
  libraries call "convolution"), exactly like ``numpy.correlate`` (which
  conjugates a complex kernel).
* Modes, with ``M = min(N, K)`` and ``L = max(N, K)`` (NumPy's semantics, so
  a kernel longer than the signal works in every mode): ``"full"`` has length
  ``N + K - 1``, ``"same"`` length ``L`` (the center of ``full``), ``"valid"``
  length ``L - M + 1`` (complete overlaps only).
* Methods: ``"loops"`` (the definition in plain Python), ``"direct"``
  (vectorized NumPy), ``"fft"`` (``cnnbook.fft``, Chapter 2), ``"auto"``
  (``cnnbook.fft.choose_conv_method`` picks ``"direct"`` or ``"fft"``).
* Dtype: NumPy's common type of ``x`` and ``w`` (booleans count as integers),
  so integer inputs give exact integer results with ``"loops"`` and
  ``"direct"``. ``"fft"`` computes in floating point, so ``"auto"`` always
  picks ``"direct"`` for integer inputs.
"""

from __future__ import annotations

import math

import numpy as np

from .fft import choose_conv_method, fft_conv1d  # Chapter 2's methods

__all__ = [
    "MODES",
    "METHODS",
    "conv1d",
    "correlate1d",
    "output_length",
    "box",
    "gaussian",
    "derivative",
    "second_derivative",
    "sharpen",
    "identity",
]

MODES = ("full", "same", "valid")
METHODS = ("loops", "direct", "fft", "auto")


# ------------------------------------------------------------------ validation


def _as_1d(a, name: str, caller: str) -> np.ndarray:
    """``a`` as a non-empty 1-D numeric array, or an error naming the fault."""
    arr = np.asarray(a)
    if arr.dtype == bool:
        arr = arr.astype(np.int64)  # True/False as 1/0, like counts
    if arr.dtype.kind not in "iufc":
        raise TypeError(
            f"{caller}: {name} must hold numbers (integer, float or complex), "
            f"got dtype {arr.dtype}"
        )
    if arr.ndim != 1:
        raise ValueError(
            f"{caller}: {name} must be 1-D, got an array of shape {arr.shape}"
        )
    if arr.size == 0:
        raise ValueError(
            f"{caller}: {name} is empty (shape {arr.shape}); "
            "it needs at least one value"
        )
    return arr


def _check_choice(value, choices: tuple, what: str, caller: str) -> str:
    if not isinstance(value, str) or value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise ValueError(
            f"{caller}: unknown {what} {value!r}; expected one of {options}"
        )
    return value


def _positive_int(value, name: str, caller: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{caller}: {name} must be an integer, got {value!r}")
    if value < 1:
        raise ValueError(f"{caller}: {name} must be at least 1, got {value}")
    return int(value)


def _lengths_and_mode(n, k, mode, caller: str) -> tuple[int, int, str]:
    """``n`` and ``k`` as positive ints and ``mode`` as one of ``MODES``."""
    n = _positive_int(n, "n", caller)
    k = _positive_int(k, "k", caller)
    return n, k, _check_choice(mode, MODES, "mode", caller)


def _gaussian_radius(sigma, radius) -> int:
    """Check ``gaussian``'s arguments; the radius, ``ceil(4 sigma)`` by default."""
    if isinstance(sigma, bool) or not isinstance(
        sigma, (int, float, np.integer, np.floating)
    ):
        raise TypeError(f"gaussian: sigma must be a number, got {sigma!r}")
    if not np.isfinite(sigma) or sigma <= 0:
        raise ValueError(f"gaussian: sigma must be a positive number, got {sigma!r}")
    if radius is None:
        return max(1, math.ceil(4 * sigma))
    if (
        isinstance(radius, bool)
        or not isinstance(radius, (int, np.integer))
        or radius < 0
    ):
        raise ValueError(
            f"gaussian: radius must be a non-negative integer, got {radius!r}"
        )
    return int(radius)


def _finite(value, name: str, caller: str):
    if not np.isfinite(value):
        raise ValueError(f"{caller}: {name} must be a finite number, got {value!r}")
    return value


# --------------------------------------------------------------------- lengths


def output_length(n: int, k: int, mode: str = "full") -> int:
    """Length of ``conv1d(x, w, mode)`` for ``len(x) == n``, ``len(w) == k``.

    full: n + k - 1;  same: max(n, k);  valid: max(n, k) - min(n, k) + 1.
    """
    n, k, mode = _lengths_and_mode(n, k, mode, "output_length")
    if mode == "full":
        return n + k - 1
    if mode == "same":
        return max(n, k)
    return max(n, k) - min(n, k) + 1


def _window(n: int, k: int, mode: str, same_start: int) -> tuple[int, int]:
    """(start, length) of the part of the full output that ``mode`` keeps."""
    length = output_length(n, k, mode)
    if mode == "full":
        return 0, length
    if mode == "same":
        return same_start, length
    return min(n, k) - 1, length


# --------------------------------------------------------------------- methods


def _conv_loops(x, w, start: int, length: int) -> np.ndarray:
    """The definition, one product at a time, for the outputs the mode keeps."""
    n, k = len(x), len(w)
    y = np.zeros(length, dtype=np.result_type(x, w))
    for i in range(start, start + length):
        total = 0
        for j in range(k):
            if 0 <= i - j < n:  # outside the signal x is zero: skip the term
                total += x[i - j] * w[j]
        y[i - start] = total
    return y


def _conv_direct(x, w, start: int, length: int) -> np.ndarray:
    """Vectorized: tap j adds ``w[j] * x`` shifted right by j samples.

    Convolution commutes, so the Python loop runs over the shorter array.
    """
    if len(w) > len(x):
        x, w = w, x
    n, k = len(x), len(w)
    full = np.zeros(n + k - 1, dtype=np.result_type(x, w))
    for j in range(k):
        full[j : j + n] += w[j] * x
    return full[start : start + length]


def _pick_method(method: str, x: np.ndarray, w: np.ndarray) -> str:
    if method != "auto":
        return method
    if x.dtype.kind in "iu" and w.dtype.kind in "iu":
        return "direct"  # exact integer arithmetic; the FFT would round
    # Kept lean: at the smallest sizes a direct convolution takes a few
    # microseconds, so choosing must cost much less than that.
    n, k = len(x), len(w)
    return choose_conv_method(n, k) if n >= k else choose_conv_method(k, n)


# ------------------------------------------------------------------ public API


def conv1d(x, w, mode: str = "full", method: str = "direct") -> np.ndarray:
    """Convolution (kernel flipped), equal to ``numpy.convolve(x, w, mode)``.

    Parameters
    ----------
    x : (N,) array_like, numeric.
    w : (K,) array_like, numeric. K > N is allowed (convolution commutes).
    mode : ``"full"`` (length N+K-1), ``"same"`` (length max(N, K), centered
        like NumPy) or ``"valid"`` (length max(N, K) - min(N, K) + 1).
    method : ``"loops"``, ``"direct"``, ``"fft"`` or ``"auto"``.

    Returns
    -------
    y : (output_length(N, K, mode),) array.
    """
    x = _as_1d(x, "x", "conv1d")
    w = _as_1d(w, "w", "conv1d")
    mode = _check_choice(mode, MODES, "mode", "conv1d")
    method = _check_choice(method, METHODS, "method", "conv1d")
    method = _pick_method(method, x, w)
    if method == "fft":
        return fft_conv1d(x, w, mode)
    n, k = len(x), len(w)
    start, length = _window(n, k, mode, (min(n, k) - 1) // 2)
    if method == "loops":
        return _conv_loops(x, w, start, length)
    return _conv_direct(x, w, start, length)


def correlate1d(x, w, mode: str = "valid", method: str = "direct"):
    """Cross-correlation (no flip), equal to ``numpy.correlate(x, w, mode)``.

    ``full[i] = sum_j x[i + j - (K-1)] * conj(w[j])``, which is
    ``conv1d(x, conj(w[::-1]))``. Deep-learning "convolution" layers compute
    this (on real numbers, where conj does nothing). Shapes and methods as in
    :func:`conv1d`; the default mode is ``"valid"``, as in NumPy.
    """
    x = _as_1d(x, "x", "correlate1d")
    w = _as_1d(w, "w", "correlate1d")
    mode = _check_choice(mode, MODES, "mode", "correlate1d")
    method = _check_choice(method, METHODS, "method", "correlate1d")
    method = _pick_method(method, x, w)
    flipped = np.conj(w[::-1]) if w.dtype.kind == "c" else w[::-1]
    n, k = len(x), len(w)
    m = min(n, k)
    # NumPy correlates a kernel longer than the signal by swapping the two and
    # reversing the result, which moves an even-length "same" window by one
    # sample; match it exactly.
    start, length = _window(n, k, mode, (m - 1) // 2 if n >= k else m // 2)
    if method == "fft":
        return fft_conv1d(x, flipped, "full")[start : start + length]
    if method == "loops":
        return _conv_loops(x, flipped, start, length)
    return _conv_direct(x, flipped, start, length)


# --------------------------------------------------------------------- kernels


def box(k: int) -> np.ndarray:
    """Moving-average kernel: ``k`` equal weights ``1/k`` (sum 1)."""
    k = _positive_int(k, "k", "box")
    return np.full(k, 1.0 / k)


def gaussian(sigma: float, radius: int | None = None) -> np.ndarray:
    """Sampled Gaussian ``exp(-j**2 / (2 sigma**2))``, j = -radius..radius.

    Normalized to sum 1; length ``2 * radius + 1``, symmetric (so convolution
    and correlation agree). ``radius`` defaults to ``ceil(4 * sigma)``: the
    weights left out are below 4e-4 of the peak.
    """
    radius = _gaussian_radius(sigma, radius)
    j = np.arange(-radius, radius + 1, dtype=float)
    g = np.exp(-0.5 * (j / sigma) ** 2)
    return g / g.sum()


def derivative() -> np.ndarray:
    """Central difference ``[1, 0, -1] / 2`` for *convolution*.

    ``conv1d(x, derivative(), "same")[i] == (x[i+1] - x[i-1]) / 2``. The
    convolution flips it; as a correlation kernel it reads ``[-1, 0, 1] / 2``.
    """
    return np.array([0.5, 0.0, -0.5])


def second_derivative() -> np.ndarray:
    """``[1, -2, 1]``: ``x[i+1] - 2 x[i] + x[i-1]`` (symmetric)."""
    return np.array([1.0, -2.0, 1.0])


def identity(k: int = 1) -> np.ndarray:
    """A kernel of length k that leaves signals unchanged in mode "same".

    A single 1 at index ``(k - 1) // 2``, the tap that "same" mode aligns
    with the output (for k = 1 also in mode "full").
    """
    k = _positive_int(k, "k", "identity")
    e = np.zeros(k)
    e[(k - 1) // 2] = 1.0
    return e


def sharpen(sigma: float = 1.0, amount: float = 1.0, radius=None):
    """Unsharp mask ``x + amount * (x - blur(x))`` as one kernel.

    The kernel is ``(1 + amount) * delta - amount * g`` with
    ``g = gaussian(sigma, radius)``. It sums to 1, so flat regions stay
    unchanged, while detail (what the blur removes) is multiplied by
    ``1 + amount``.
    """
    amount = _finite(amount, "amount", "sharpen")
    g = gaussian(sigma, radius)
    return (1.0 + amount) * identity(len(g)) - amount * g
