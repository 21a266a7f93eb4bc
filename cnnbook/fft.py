"""Convolution becomes multiplication: the DFT, a from-scratch FFT, FFT convolution.

Conventions
-----------
* ``dft``/``fft`` use NumPy's sign and scaling:
  ``X[k] = sum_j x[j] exp(-2 pi i jk / N)``, and the inverse divides by ``N``.
* ``fft_conv1d`` and ``overlap_add`` compute *true* convolution (kernel flipped)
  with exactly the modes of ``numpy.convolve`` / ``cnnbook.signal.conv1d``,
  including a kernel longer than the signal: 'full' has length N+K-1, 'same'
  length max(N, K), 'valid' length max(N,K)-min(N,K)+1.
* ``fft_conv2d`` follows ``scipy.signal.convolve2d``: 'same' has the shape of
  ``x``; 'valid' needs one input at least as large as the other in every
  dimension.
* Result dtype follows NumPy's promotion of the inputs (float32 in, float32 out).
  Integer inputs are computed in float64 and rounded back to integers, like
  ``numpy.convolve`` returns integers.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

__all__ = [
    "dft_matrix",
    "dft",
    "fft",
    "ifft",
    "frequency_response",
    "next_fast_len",
    "fft_conv1d",
    "overlap_add",
    "fft_conv2d",
    "COST_MODEL",
    "conv_cost",
    "choose_conv_method",
    "fit_cost_model",
]

_MODES = ("full", "same", "valid")


# ------------------------------------------------------------------------------------
# The DFT as a matrix, and the radix-2 FFT
# ------------------------------------------------------------------------------------


def dft_matrix(n: int) -> np.ndarray:
    """The N×N DFT matrix ``F[j, k] = exp(-2πi·jk/N)``, complex128: dft(x) = F @ x."""
    n = _positive_int(n, "n")
    j = np.arange(n)
    # Reduce jk modulo n first: the angle stays in [0, 2π), exact for large n too.
    return np.exp(-2j * np.pi * (np.outer(j, j) % n) / n)


def dft(x) -> np.ndarray:
    """Discrete Fourier transform by the definition, a matrix-vector product: O(N²).

    x: (N,) real or complex → (N,) complex128, equal to ``numpy.fft.fft(x)``.
    """
    x = _as_vector(x, "x", "dft")
    # Row k times x, summed: F @ x written out, so that it runs in NumPy's own loops
    # (its timing then measures the O(N²) algorithm, not a multithreaded BLAS).
    return (dft_matrix(len(x)) * x).sum(axis=1)


def fft(x) -> np.ndarray:
    """Recursive radix-2 FFT (Cooley–Tukey, decimation in time): O(N log N).

    x: (N,) real or complex, N a power of two → (N,) complex128, equal to
    ``numpy.fft.fft(x)``. Other lengths raise ``ValueError`` (zero-padding to
    ``2**ceil(log2 N)`` changes the transform; ``dft`` and ``numpy.fft.fft``
    handle any length).
    """
    x = _power_of_two_vector(x, "x", "fft")
    return _radix2(x, -1)


def ifft(X) -> np.ndarray:
    """Inverse of ``fft``: x[j] = (1/N) sum_k X[k] exp(+2πi·jk/N), N a power of 2."""
    X = _power_of_two_vector(X, "X", "ifft")
    return _radix2(X, +1) / len(X)


def _radix2(x: np.ndarray, sign: int) -> np.ndarray:
    """Unnormalized DFT with kernel exp(sign·2πi·jk/N), N a power of two."""
    n = len(x)
    if n == 1:
        return x.copy()  # the DFT of one sample is that sample
    even = _radix2(x[0::2], sign)  # half-length DFT of the even-indexed samples
    odd = _radix2(x[1::2], sign)  # ... and of the odd-indexed ones
    # X[k] = E[k] + t^k O[k], X[k + N/2] = E[k] - t^k O[k], t = exp(sign·2πi/N)
    twisted = np.exp(sign * 2j * np.pi * np.arange(n // 2) / n) * odd
    return np.concatenate([even + twisted, even - twisted])


def frequency_response(kernel, n: int) -> np.ndarray:
    """What a kernel does to each frequency: the DFT of the kernel zero-padded to n.

    kernel: (K,) finite, n ≥ K → H: (n,) complex128, ``H[m] = sum_j kernel[j]
    exp(-2πi·jm/n)``; H[0] is the zero frequency (the sum of the taps), H[m] belongs
    to the angular frequency ω = 2πm/n. Convolving ``exp(iωj)`` with the kernel
    multiplies it by H[m] (tap 0 at time 0, so a kernel centered on tap r has the
    extra phase ``exp(-iωr)``). Raises ``ValueError`` if n < K, if the kernel is not
    1-D, or if it is not finite.
    """
    kernel, n = _kernel_and_length(kernel, n, "frequency_response")
    return np.fft.fft(kernel, n)


# ------------------------------------------------------------------------------------
# FFT convolution
# ------------------------------------------------------------------------------------


def next_fast_len(n: int) -> int:
    """Smallest 5-smooth number 2**a · 3**b · 5**c ≥ n (NumPy's FFT is fast there)."""
    n = _positive_int(n, "n")
    best = 1 << (n - 1).bit_length()  # the next power of two is always a candidate
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            # the smallest p35·2^a ≥ n
            quotient = -(-n // p35)
            candidate = p35 << (quotient - 1).bit_length()
            best = min(best, candidate)
            p35 *= 3
        p5 *= 5
    return best


def fft_conv1d(x, w, mode: str = "full") -> np.ndarray:
    """1-D convolution by the convolution theorem: pad, transform, multiply, invert.

    x: (N,), w: (K,) → ``numpy.convolve(x, w, mode)`` up to rounding, in
    O((N+K) log(N+K)). Both are zero-padded to ``>= N+K-1``: no wrap-around.
    """
    x, w, out_dtype = _inputs_1d(x, w, mode, "fft_conv1d")
    n, k = len(x), len(w)
    nfft = next_fast_len(n + k - 1)
    full = _product_inverse(x, w, (nfft,))[: n + k - 1]
    return _finish(_crop1d(full, n, k, mode), out_dtype)


def overlap_add(x, w, block: int, mode: str = "full") -> np.ndarray:
    """FFT convolution of a long signal with a short kernel, one block at a time.

    x: (N,), w: (K,), block ≥ 1 → equal to ``fft_conv1d(x, w, mode)``. Each block
    of ``x`` is convolved with ``w`` by FFTs of length
    ``next_fast_len(block + K - 1)`` (all blocks in one batched transform); the
    block results overlap by K - 1 samples and are added. Memory and transform size
    depend on ``block``, not on N: the way streaming audio filters work.
    """
    x, w, out_dtype = _inputs_1d(x, w, mode, "overlap_add")
    block = _block_size(block)
    n, k = len(x), len(w)
    n_blocks = -(-n // block)  # ceil(n / block); the last block is zero-padded
    blocks = np.zeros((n_blocks, block), dtype=x.dtype)
    blocks.reshape(-1)[:n] = x
    seg_len = block + k - 1  # the full convolution of one block
    segments = _product_inverse(blocks, w, (next_fast_len(seg_len),))[:, :seg_len]
    total = _add_at_offsets(segments, block)  # segment i starts at i·block
    return _finish(_crop1d(total[: n + k - 1], n, k, mode), out_dtype)


def _add_at_offsets(segments: np.ndarray, step: int) -> np.ndarray:
    """Sum of the rows of ``segments``, row i shifted right by i·step samples.

    Vectorized: cut every row into pieces of ``step`` samples; piece c of all rows
    lands, back to back, at offset c·step: one add per piece, not per row.
    """
    rows, length = segments.shape
    chunks = -(-length // step)
    padded = np.zeros((rows, chunks * step), dtype=segments.dtype)
    padded[:, :length] = segments
    total = np.zeros((rows + chunks - 1) * step, dtype=segments.dtype)
    for c in range(chunks):
        piece = padded[:, c * step : (c + 1) * step].reshape(-1)
        total[c * step : c * step + rows * step] += piece
    return total


def fft_conv2d(x, w, mode: str = "full") -> np.ndarray:
    """2-D convolution (kernel flipped in both axes) by 2-D FFTs.

    x: (H, W) or a stack (..., H, W), w: (kH, kW) → like
    ``scipy.signal.convolve2d(x, w, mode)`` for each image: 'full'
    (H+kH-1, W+kW-1), 'same' (H, W) centered, 'valid'
    (``|H-kH|+1``, ``|W-kW|+1``), which needs one of image and kernel at least as
    large as the other in both dimensions. A stack is transformed in one batched
    call.
    """
    x, w, out_dtype = _inputs_2d(x, w, mode, "fft_conv2d")
    image = x.shape[-2:]
    full_shape = tuple(a + b - 1 for a, b in zip(image, w.shape))
    nfft = tuple(next_fast_len(s) for s in full_shape)
    full = _product_inverse(x, w, nfft)[..., : full_shape[0], : full_shape[1]]
    return _finish(_crop2d(full, image, w.shape, mode), out_dtype)


def _crop2d(full: np.ndarray, image: tuple, kernel: tuple, mode: str) -> np.ndarray:
    """scipy.signal.convolve2d's part of the full result, over the last two axes."""
    if mode == "full":
        return full
    if mode == "same":
        start = tuple((f - s) // 2 for f, s in zip(full.shape[-2:], image))
        size = image
    else:
        start = tuple(min(a, b) - 1 for a, b in zip(image, kernel))
        size = tuple(abs(a - b) + 1 for a, b in zip(image, kernel))
    return full[..., start[0] : start[0] + size[0], start[1] : start[1] + size[1]]


def _product_inverse(a: np.ndarray, b: np.ndarray, nfft: tuple) -> np.ndarray:
    """inverse_DFT(DFT(a) · DFT(b)) over the last len(nfft) axes, padded to nfft."""
    axes = tuple(range(-len(nfft), 0))
    if np.iscomplexobj(a) or np.iscomplexobj(b):
        forward, inverse = np.fft.fftn, np.fft.ifftn
    else:  # real inputs: half-spectrum transforms, half the work, a real result
        forward, inverse = np.fft.rfftn, np.fft.irfftn
    return inverse(forward(a, nfft, axes) * forward(b, nfft, axes), nfft, axes)


def _crop1d(full: np.ndarray, n: int, k: int, mode: str) -> np.ndarray:
    """numpy.convolve's slice of the full result (symmetric in n and k)."""
    short, long = min(n, k), max(n, k)
    if mode == "full":
        return full
    if mode == "same":
        start = (short - 1) // 2
        return full[start : start + long]
    return full[short - 1 : long]


def _dtypes(x: np.ndarray, w: np.ndarray):
    """(result dtype, dtype the transforms run in)."""
    out = np.result_type(x, w)
    if out.kind in "iu":
        return out, np.dtype(np.float64)
    if out.kind == "f":  # float16 has no FFT: run it in float32
        return out, np.result_type(out, np.float32)
    return out, np.result_type(out, np.complex64)


def _finish(y: np.ndarray, out_dtype: np.dtype) -> np.ndarray:
    if out_dtype.kind in "iu":
        y = np.rint(y)  # the exact integer result: the rounding error is far below 0.5
    return np.ascontiguousarray(y, dtype=out_dtype)


# ------------------------------------------------------------------------------------
# Direct or FFT? A cost model fitted to measurements
# ------------------------------------------------------------------------------------

# Seconds per call, fitted by ``fit_cost_model`` to timings of
# ``cnnbook.signal.conv1d(x, w, method="direct")`` and ``method="fft"`` (float64, mode
# 'full'; ``cnnbook.bench.conv1d.measure_grid`` with repeat=5, min_time=0.01; the
# elementwise minimum of two such runs) on 213 pairs: N = 16, 32, ..., 65536 and K from
# 2 to 8192 (21 values, K ≤ N), on the book's first reference machine, a shared 2-core
# x86-64 with AVX-512, NumPy 2.4 and its bundled pocketfft, one thread. Chapter 2
# repeats the fit on a smaller grid, on the machine it runs on. Model:
#   direct(N, K) = d0 + d1·min(N, K) + d2·N·K   (a Python loop over the shorter
#                  input's taps, each a vectorized multiply-add over the longer)
#   fft(N, K)    = f0 + f1·L·log2(L)            with L = next_fast_len(N + K - 1)
COST_MODEL = {
    "direct": (2.8e-06, 1.4e-06, 8.6e-11),
    "fft": (2.9e-05, 8.4e-10),
}


def _features(method: str, n, k) -> np.ndarray:
    n = np.asarray(n, dtype=float)
    k = np.asarray(k, dtype=float)
    if method == "direct":
        return np.stack([np.ones_like(n * k), np.minimum(n, k), n * k], axis=-1)
    lengths = np.asarray(n + k - 1, dtype=int)
    fast = np.vectorize(next_fast_len, otypes=[float])(lengths)
    return np.stack([np.ones_like(fast), fast * np.log2(fast)], axis=-1)


def conv_cost(n, k, method: str, model: dict | None = None):
    """Predicted seconds to convolve lengths n and k (scalars or arrays) by method."""
    if method not in ("direct", "fft"):
        raise ValueError(f"conv_cost: method must be 'direct' or 'fft', got {method!r}")
    coef = np.asarray((model or COST_MODEL)[method])
    return _features(method, n, k) @ coef


@lru_cache(maxsize=8192)
def choose_conv_method(n: int, k: int) -> str:
    """'direct' or 'fft': whichever ``COST_MODEL`` predicts is faster for n, k.

    Cached: ``conv1d(..., method="auto")`` asks on every call; after the first time,
    the answer for a pair of lengths costs a dictionary look-up.
    """
    n, k = _positive_int(n, "n"), _positive_int(k, "k")
    d0, d1, d2 = COST_MODEL["direct"]
    f0, f1 = COST_MODEL["fft"]
    fast = next_fast_len(n + k - 1)
    direct = d0 + d1 * min(n, k) + d2 * n * k
    fourier = f0 + f1 * fast * math.log2(fast)
    return "fft" if fourier < direct else "direct"


def fit_cost_model(n, k, t_direct, t_fft) -> dict:
    """Fit ``COST_MODEL``'s coefficients to times (seconds) measured at (n, k).

    1. Each method alone: non-negative least squares on *relative* residuals (rows
       divided by the measured time), so a 10 µs case counts as much as a 10 ms one.
    2. The decision only needs the *ratio* direct/fft, and on a shared machine the
       ratio of two methods timed side by side is far steadier than either time (a
       busy neighbor slows both). So refine all coefficients together to fit
       log(t_direct / t_fft) (robust loss: an outlier costs little), then rescale
       them to the measured times' level.
    """
    from scipy.optimize import least_squares, nnls

    n, k, times = _fit_inputs(n, k, t_direct, t_fft)
    A = {m: _features(m, n, k) for m in times}
    start = []
    for m, t in times.items():
        scale = A[m].max(axis=0)  # column scaling keeps the solver well conditioned
        coef, _ = nnls(A[m] / scale / t[:, None], np.ones_like(t))
        coef /= scale
        start.append(np.maximum(coef, 1e-6 * coef.max()))  # positive, for the logs
    nd = A["direct"].shape[1]
    target = np.log(times["direct"] / times["fft"])

    def residual(theta):  # coefficients as exp(theta): positive by construction
        return (
            np.log(A["direct"] @ np.exp(theta[:nd]))
            - np.log(A["fft"] @ np.exp(theta[nd:]))
            - target
        )

    theta0 = np.log(np.concatenate(start))
    # Bounds (a factor e^10 either way of the separate fits) keep coefficients finite.
    bounds = (theta0 - 10, theta0 + 10)
    fit = least_squares(residual, theta0, bounds=bounds, loss="soft_l1", f_scale=0.2)
    coef = {"direct": np.exp(fit.x[:nd]), "fft": np.exp(fit.x[nd:])}
    misfit = [np.log(times[m] / (A[m] @ coef[m])) for m in times]
    scale = np.exp(np.median(np.concatenate(misfit)))  # to the measured times' level
    return {m: tuple(float(f"{c * scale:.2g}") for c in coef[m]) for m in times}


def _fit_inputs(n, k, t_direct, t_fft):
    """``fit_cost_model``'s inputs as flat float arrays of one size, times > 0."""
    n, k = np.asarray(n, dtype=float).ravel(), np.asarray(k, dtype=float).ravel()
    times = {
        "direct": np.asarray(t_direct, dtype=float).ravel(),
        "fft": np.asarray(t_fft, dtype=float).ravel(),
    }
    for name, t in times.items():
        if t.shape != n.shape or k.shape != n.shape:
            raise ValueError(
                f"fit_cost_model: n {n.shape}, k {k.shape} and t_{name} {t.shape} "
                "differ in size"
            )
        if not np.all(t > 0):
            raise ValueError(f"fit_cost_model: t_{name} must be positive seconds")
    return n, k, times


# ------------------------------------------------------------------------------------
# Validation and dtypes, at the boundary
# ------------------------------------------------------------------------------------


def _positive_int(v, name: str) -> int:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {v!r}")
    if v < 1:
        raise ValueError(f"{name} must be ≥ 1, got {v}")
    return int(v)


def _as_array(a, name: str, who: str, ndim: int, batched: bool = False) -> np.ndarray:
    arr = np.asarray(a)
    if arr.dtype.kind not in "iufc":
        raise TypeError(
            f"{who}: {name} must be numeric (int, float or complex), "
            f"got dtype {arr.dtype}"
        )
    if arr.ndim < ndim if batched else arr.ndim != ndim:
        need = f"{ndim}-D (or a stack of {ndim}-D arrays)" if batched else f"{ndim}-D"
        raise ValueError(f"{who}: {name} must be {need}, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{who}: {name} must not be empty, got shape {arr.shape}")
    return arr


def _as_vector(a, name: str, who: str) -> np.ndarray:
    return _as_array(a, name, who, 1)


def _kernel_and_length(kernel, n, who: str):
    """A finite 1-D kernel and a transform length n ≥ its length, or an error."""
    kernel = _as_vector(kernel, "kernel", who)
    n = _positive_int(n, "n")
    if not np.all(np.isfinite(kernel)):
        bad = int(np.count_nonzero(~np.isfinite(kernel)))
        raise ValueError(f"{who}: the kernel must be finite, got {bad} NaN/inf taps")
    if n < len(kernel):
        raise ValueError(
            f"{who}: n = {n} is shorter than the kernel ({len(kernel)} taps); "
            "the kernel must fit in one period"
        )
    return kernel.astype(np.complex128), n


def _check_mode(mode, who: str) -> None:
    if mode not in _MODES:
        raise ValueError(f"{who}: mode must be one of {_MODES}, got {mode!r}")


def _power_of_two_vector(a, name: str, who: str) -> np.ndarray:
    """``a`` as a complex128 vector whose length is a power of two, or an error."""
    a = _as_vector(a, name, who)
    n = len(a)
    if n & (n - 1):
        up = 1 << (n - 1).bit_length()
        raise ValueError(
            f"{who}: the radix-2 FFT needs a power-of-two length, got {n}; "
            f"zero-pad to {up} (a different transform) or use cnnbook.fft.dft / "
            "numpy.fft.fft for any length"
        )
    return a.astype(np.complex128)


def _inputs_1d(x, w, mode, who: str):
    """Checked 1-D inputs in the dtype the transforms run in, and the result dtype."""
    x, w = _as_vector(x, "x", who), _as_vector(w, "w", who)
    _check_mode(mode, who)
    out_dtype, work = _dtypes(x, w)
    return x.astype(work, copy=False), w.astype(work, copy=False), out_dtype


def _inputs_2d(x, w, mode, who: str):
    """Like ``_inputs_1d`` for images (..., H, W) and a kernel (kH, kW)."""
    x = _as_array(x, "x", who, 2, batched=True)
    w = _as_array(w, "w", who, 2)
    _check_mode(mode, who)
    image = x.shape[-2:]
    if mode == "valid":
        x_big = all(a >= b for a, b in zip(image, w.shape))
        w_big = all(b >= a for a, b in zip(image, w.shape))
        if not (x_big or w_big):
            raise ValueError(
                f"{who}: mode 'valid' needs one input at least as large as the other "
                f"in both dimensions, got images {image} and kernel {w.shape}"
            )
    out_dtype, work = _dtypes(x, w)
    return x.astype(work, copy=False), w.astype(work, copy=False), out_dtype


def _block_size(block) -> int:
    if isinstance(block, (bool, np.bool_)) or not isinstance(block, (int, np.integer)):
        raise TypeError(f"overlap_add: block must be an integer, got {block!r}")
    if block < 1:
        raise ValueError(f"overlap_add: block must be ≥ 1, got {block}")
    return int(block)
