"""Winograd's minimal filtering: 3×3 convolutions with fewer multiplications (Ch. 11).

``F(m, r)`` computes ``m`` outputs of an ``r``-tap correlation from ``α = m + r - 1``
inputs with ``α`` multiplications instead of ``m·r``::

    y = Aᵀ [(G g) ⊙ (Bᵀ d)]         (1-D: y[i] = Σ_k d[i + k] g[k], i < m)
    Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A   (2-D: an m × m output tile from α × α inputs)

The three matrices come from polynomial interpolation (Toom-Cook): evaluate at ``α``
points, multiply pointwise, interpolate, the recipe of Chapter 2's FFT with a few small
real points in place of the roots of unity (Lavin & Gray, 2016).
:func:`winograd_matrices` computes them exactly, in rational arithmetic, from the
points.

A convolution layer tiles each image with overlapping ``α × α`` tiles at stride ``m``.
Batched over images, channels and filters, the ``⊙`` becomes ``α²`` independent matrix
products over the channels (:func:`conv2d`), done by ``numpy.matmul`` or any ``gemm``
with its semantics (Chapter 10's ``cnnbook.blas.matmul``).

Conventions are those of :func:`cnnbook.functional.conv2d`: NCHW, cross-correlation,
weights ``(F, C, kH, kW)``, float32 in → float32 out (the transforms are computed in
the input's precision). Only 3×3 kernels, stride 1 and dilation 1 are supported; the
arguments are checked at the boundary (``_conv_args``, at the end of the module), so
the bodies above it read as the formulas.
"""

from __future__ import annotations

import math
import numbers
from fractions import Fraction

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ._validation import check_conv_args, check_dout, nonnegative_pair, pair

__all__ = [
    "DEFAULT_POINTS",
    "SUPPORTED_M",
    "default_points",
    "winograd_matrices",
    "tiles_per_axis",
    "multiplications",
    "transform",
    "input_tiles",
    "conv2d",
    "conv2d_backward",
]

# The finite interpolation points, in the order they are taken: small integers and
# their reciprocals, each with its negative. F(2,3) takes the first three (0, 1, -1),
# F(4,3) five (Lavin & Gray's 0, ±1, ±2), F(6,3) seven (0, ±1, ±2, ±1/2).
DEFAULT_POINTS = (
    Fraction(0),
    Fraction(1),
    Fraction(-1),
    Fraction(2),
    Fraction(-2),
    Fraction(1, 2),
    Fraction(-1, 2),
    Fraction(3),
    Fraction(-3),
    Fraction(1, 3),
    Fraction(-1, 3),
    Fraction(4),
    Fraction(-4),
)
MAX_TILE = len(DEFAULT_POINTS) + 1  # α = m + r - 1 with the default points
SUPPORTED_M = tuple(range(1, 9))  # output tile sizes conv2d accepts (r = 3)
KERNEL = 3


# ----------------------------------------------------------------------------------
# The transforms
# ----------------------------------------------------------------------------------


def default_points(m: int, r: int) -> tuple[Fraction, ...]:
    """The ``m + r - 2`` finite points F(m, r) uses by default (∞ is the last one)."""
    m, r = _check_mr(m, r)
    return DEFAULT_POINTS[: m + r - 2]


def _poly_from_roots(roots, length: int) -> list[Fraction]:
    """Coefficients (lowest power first, ``length`` of them) of ``Π (x - a)``."""
    c = [Fraction(1)] + [Fraction(0)] * (length - 1)
    for a in roots:
        c = [(c[i - 1] if i else 0) - a * c[i] for i in range(length)]
    return c


def winograd_matrices(m: int, r: int, points=None, *, exact: bool = False):
    """``(AT, G, BT)`` of F(m, r), ``y = AT @ ((G @ g) * (BT @ d))``: ``AT: (m, α)``,
    ``G: (α, r)``, ``BT: (α, α)``, ``α = m + r - 1`` (transposed Toom-Cook).

    ``points``: ``α - 1`` distinct finite points (∞ is added last) or ``α`` points,
    at most one of them ``inf``; default :func:`default_points`. Exact rational
    arithmetic; ``exact=True`` returns ``Fraction`` arrays, otherwise float64.
    """
    m, r, finite, infinity = _check_points(m, r, points)
    alpha = m + r - 1
    one, zero = Fraction(1), Fraction(0)
    AT = [
        [p**i for p in finite] + [one if i == m - 1 else zero] * infinity
        for i in range(m)
    ]
    G, BT = [], []
    for j, p in enumerate(finite):
        others = finite[:j] + finite[j + 1 :]
        scale = math.prod(p - q for q in others)  # N_j(p_j)
        G.append([p**k / scale for k in range(r)])
        BT.append(_poly_from_roots(others, alpha))
    if infinity:
        G.append([one if k == r - 1 else zero for k in range(r)])
        BT.append(_poly_from_roots(finite, alpha))
    if exact:
        return tuple(np.array(M, dtype=object) for M in (AT, G, BT))
    return tuple(np.array(M, dtype=np.float64) for M in (AT, G, BT))


def multiplications(m: int, r: int, dims: int = 2) -> tuple[int, int]:
    """``(Winograd, direct)`` multiplications for one output tile of F(m, r).

    1-D: ``α = m + r - 1`` against ``m·r``; 2-D (nested): ``α²`` against ``(m·r)²``.
    """
    m, r = _check_mr(m, r)
    return (m + r - 1) ** dims, (m * r) ** dims


def tiles_per_axis(n: int, padding: int, m: int, r: int = KERNEL) -> int:
    """Output tiles along one axis: ``ceil(n_out / m)``, ``n_out = n + 2p - r + 1``."""
    return -(-(n + 2 * padding - r + 1) // m)


# ----------------------------------------------------------------------------------
# The convolution: transform, α² GEMMs, transform back
# ----------------------------------------------------------------------------------


def transform(L: np.ndarray, X: np.ndarray) -> np.ndarray:
    """``L X Lᵀ`` for every ``X[:, :, ...]``, by two products with ``L: (q, p)``."""
    q, p = L.shape
    rest = X.shape[2:]
    LX = (L @ X.reshape(p, -1)).reshape(q, p, -1)  # (L X)[a, j, ...]
    return (L @ LX).reshape(q, q, *rest)  # (L X Lᵀ)[a, b, ...]


def input_tiles(x: np.ndarray, padding, m: int, r: int = KERNEL) -> np.ndarray:
    """Overlapping ``α × α`` tiles at stride ``m``: ``(α, α, C, N, tH, tW)``, a view
    of ``x`` zero-padded by ``padding``, and at the bottom and right until the last
    tiles are whole (their extra outputs are cropped away)."""
    N, C, H, W = x.shape
    ph, pw = padding
    tH, tW = tiles_per_axis(H, ph, m, r), tiles_per_axis(W, pw, m, r)
    alpha = m + r - 1
    extra_h = tH * m + r - 1 - (H + 2 * ph)
    extra_w = tW * m + r - 1 - (W + 2 * pw)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph + extra_h), (pw, pw + extra_w)))
    sN, sC, sH, sW = xp.strides
    shape, strides = (alpha, alpha, C, N, tH, tW), (sH, sW, sC, sN, m * sH, m * sW)
    return as_strided(xp, shape, strides, writeable=False)


def conv2d(
    x, w, b=None, padding=0, m=2, *, stride=1, dilation=1, points=None, gemm=None
):
    """:func:`cnnbook.functional.conv2d` with F(m×m, 3×3), up to rounding: ``x: (N, C,
    H, W)``, ``w: (F, C, 3, 3)`` → ``(N, F, Ho, Wo)``. ``gemm`` does the α² products
    (default ``numpy.matmul``); ``points`` as in :func:`winograd_matrices`."""
    x, w, b, (ph, pw), (Ho, Wo) = _conv_args(x, w, b, padding, m, stride, dilation)
    AT, G, BT = (M.astype(x.dtype) for M in winograd_matrices(m, KERNEL, points))
    mm = np.matmul if gemm is None else gemm
    (N, C, _, _), F, alpha = x.shape, len(w), m + KERNEL - 1
    d = input_tiles(x, (ph, pw), m)  # (α, α, C, N, tH, tW)
    tH, tW = d.shape[4:]
    U = transform(G, w.transpose(2, 3, 0, 1))  # (α, α, F, C)
    V = transform(BT, d)  # (α, α, C, N, tH, tW)
    M = mm(U.reshape(alpha**2, F, C), V.reshape(alpha**2, C, -1))  # (α², F, N·tiles)
    Y = transform(AT, M.reshape(alpha, alpha, F, N, tH, tW))  # (m, m, F, N, tH, tW)
    y = Y.transpose(3, 2, 4, 0, 5, 1).reshape(N, F, tH * m, tW * m)[:, :, :Ho, :Wo]
    if b is not None:
        y = y + b.reshape(1, F, 1, 1)
    return np.ascontiguousarray(y)


def conv2d_backward(
    dout, x, w, padding=0, m=2, *, stride=1, dilation=1, points=None, gemm=None
):
    """Gradients ``(dx, dw, db)`` of :func:`conv2d`: its steps transposed, in reverse
    order (shapes as :func:`cnnbook.functional.conv2d_backward`)."""
    x, w, _, (ph, pw), (Ho, Wo) = _conv_args(x, w, None, padding, m, stride, dilation)
    dout = check_dout(dout, (len(x), len(w), Ho, Wo), "winograd.conv2d_backward")
    AT, G, BT = (M.astype(x.dtype) for M in winograd_matrices(m, KERNEL, points))
    mm = np.matmul if gemm is None else gemm
    (N, C, H, W), F, alpha = x.shape, len(w), m + KERNEL - 1
    d = input_tiles(x, (ph, pw), m)  # (α, α, C, N, tH, tW)
    tH, tW = d.shape[4:]
    U = transform(G, w.transpose(2, 3, 0, 1)).reshape(alpha**2, F, C)
    V = transform(BT, d).reshape(alpha**2, C, -1)  # (α², C, N·tH·tW)
    dY = np.zeros((N, F, tH * m, tW * m), dtype=np.result_type(x, dout))
    dY[:, :, :Ho, :Wo] = dout  # the cropped outputs get no gradient
    dY = dY.reshape(N, F, tH, m, tW, m).transpose(3, 5, 1, 0, 2, 4)  # (m, m, F, ...)
    dM = transform(AT.T, dY).reshape(alpha**2, F, -1)  # (α², F, N·tH·tW)
    dU = mm(dM, V.transpose(0, 2, 1))  # (α², F, C)
    dV = mm(U.transpose(0, 2, 1), dM)  # (α², C, N·tH·tW)
    dw = transform(G.T, dU.reshape(alpha, alpha, F, C)).transpose(2, 3, 0, 1)
    dd = transform(BT.T, dV.reshape(alpha, alpha, C, N, tH, tW))
    dxp = np.zeros((N, C, tH * m + alpha - m, tW * m + alpha - m), dtype=dd.dtype)
    for i in range(alpha):  # tile offset (i, j): the tiles' pixels are all distinct
        for j in range(alpha):
            dxp[:, :, i : i + m * tH : m, j : j + m * tW : m] += dd[i, j].swapaxes(0, 1)
    dx = dxp[:, :, ph : ph + H, pw : pw + W]
    return np.ascontiguousarray(dx), np.ascontiguousarray(dw), dout.sum(axis=(0, 2, 3))


# ----------------------------------------------------------------------------------
# Argument checks (the boundary)
# ----------------------------------------------------------------------------------


def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))


def _check_mr(m, r) -> tuple[int, int]:
    for value, name in ((m, "m"), (r, "r")):
        if not _is_int(value):
            raise ValueError(f"winograd: {name} must be a positive int, got {value!r}")
        if value < 1:
            raise ValueError(f"winograd: {name} must be >= 1, got {value}")
    return int(m), int(r)


def _as_point(p, i: int):
    """A point as an exact Fraction, or None for +inf."""
    if isinstance(p, Fraction):
        return p
    if isinstance(p, (numbers.Real, np.floating, np.integer)) and not isinstance(
        p, (bool, np.bool_)
    ):
        value = float(p)
        if value == math.inf:
            return None
        if not math.isfinite(value):
            raise ValueError(
                f"winograd_matrices: point {i} must be finite or +inf, got {p!r}"
            )
        return Fraction(int(p)) if _is_int(p) else Fraction(value)
    raise ValueError(f"winograd_matrices: point {i} must be a real number, got {p!r}")


def _check_points(m, r, points):
    """``(m, r, finite points, whether ∞ is used)``; ValueError for bad arguments."""
    m, r = _check_mr(m, r)
    alpha = m + r - 1
    if points is None:
        if alpha > MAX_TILE:
            raise ValueError(
                f"winograd_matrices: F({m}, {r}) needs {alpha - 1} points, there are "
                f"{len(DEFAULT_POINTS)} default ones: pass points explicitly"
            )
        return m, r, list(DEFAULT_POINTS[: alpha - 1]), True
    points = list(points)
    if len(points) not in (alpha - 1, alpha):
        raise ValueError(
            f"winograd_matrices: F({m}, {r}) needs {alpha - 1} finite points (∞ is "
            f"added) or {alpha} points; got {len(points)}: {points!r}"
        )
    exact = [_as_point(p, i) for i, p in enumerate(points)]
    finite = [p for p in exact if p is not None]
    if len(finite) < len(exact) - 1:
        raise ValueError(
            f"winograd_matrices: at most one point may be inf, got {points!r}"
        )
    if len(set(finite)) != len(finite):
        raise ValueError(
            f"winograd_matrices: the points must be distinct, got {points!r} "
            "(a repeated point makes the interpolation singular)"
        )
    return m, r, finite, len(finite) == alpha - 1


def _conv_args(x, w, b, padding, m, stride, dilation):
    """Checked ``x, w, b``, the padding pair and the output size ``(Ho, Wo)``."""
    fn = "winograd.conv2d"
    x, w, b = check_conv_args(x, w, b, fn)
    if w.shape[2:] != (KERNEL, KERNEL):
        raise ValueError(
            f"{fn}: kernel_size must be 3×3 (F(m×m, 3×3)), got w of shape {w.shape}"
        )
    if pair(stride, "stride") != (1, 1):
        raise ValueError(f"{fn}: stride must be 1, got stride={stride!r}")
    if pair(dilation, "dilation") != (1, 1):
        raise ValueError(f"{fn}: dilation must be 1, got dilation={dilation!r}")
    if not _is_int(m) or m not in SUPPORTED_M:
        raise ValueError(f"{fn}: m must be one of {SUPPORTED_M}, got m={m!r}")
    ph, pw = nonnegative_pair(padding, "padding")
    Ho, Wo = x.shape[2] + 2 * ph - KERNEL + 1, x.shape[3] + 2 * pw - KERNEL + 1
    if Ho < 1 or Wo < 1:
        raise ValueError(
            f"{fn}: kernel larger than the padded input: x of shape {x.shape} padded "
            f"by ({ph}, {pw}) is smaller than 3×3"
        )
    dtype = np.result_type(x, w) if b is None else np.result_type(x, w, b)
    x, w = x.astype(dtype, copy=False), w.astype(dtype, copy=False)
    return x, w, b, (ph, pw), (Ho, Wo)
