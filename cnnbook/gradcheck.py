"""Gradient checking: a layer's ``backward`` against central differences of ``forward``.

One line checks any layer or model that follows the book's protocol (``forward(x)``,
``backward(dout) -> dx``, and optionally ``params``/``grads`` dicts or
``named_parameters()``)::

    report = cnnbook.gradcheck.gradcheck(layer, x)
    report["weight"]          # the relative error, a float (e.g. 3e-10)
    report                    # prints the claim: "weight: relative error < 1e-6: yes"
    cnnbook.gradcheck.assert_gradients_close(layer, x)

How it works. The layer's output is turned into a scalar with a fixed random tensor
``R``: ``L = sum(forward(x) * R)``, so that ``dL/d(output) = R`` exactly.
``backward(R)`` gives the analytic gradients; for chosen entries ``i`` the numerical
gradient is the central difference ``(L(θ_i + ε) − L(θ_i − ε)) / 2ε``, whose error is
O(ε²) (one-sided differences are only O(ε)). Everything runs in float64: in float32 the
rounding error of ``L`` divided by ``2ε`` would swamp the comparison.

Which entries are probed. A tensor with at most ``max_entries`` entries is checked
completely. A larger one is checked on ``max_entries`` entries: its first and last entry
(borders are where padding and stride bugs live), the entries with the largest analytic
gradients, some entries whose analytic gradient is exactly zero (a wrong mask gives a
non-zero numerical gradient there), and the rest drawn uniformly at random with
``seed``. The analytic gradient is compared on the same entries.

The error reported per tensor is the relative error of the probed entries,
``‖g_analytic − g_numeric‖₂ / max(‖g_analytic‖₂, ‖g_numeric‖₂)`` (0 when both are
exactly zero). A correct float64 backward typically scores 1e-11…1e-8; a bug
scores 1e-3…1.

What a report prints. The digits of a rounding-level error (1.6e-09 on one CPU, 1.7e-09
on another) depend on the CPU's SIMD code paths and the BLAS kernel, so a report does
not print them: it prints the claim against its tolerance ``tol`` (default 1e-6),
``input: relative error < 1e-6: yes``. An error above the tolerance is a bug's O(1)
disagreement, not rounding, and is printed with two significant digits:
``input: relative error < 1e-6: no (1.2)``. The numbers themselves stay in the dict.

Caveats. The numerical gradient carries an absolute error of about (rounding error of L)
/ 2ε, and L's rounding error scales with the largest intermediate values, not with L
itself. So a tensor whose true gradient is tiny (say 1e-6, e.g. the logits of a
confidently right prediction, where the loss is log(1 + 1e-6)) shows a large *relative*
error even with a perfect backward; check such layers on inputs where the gradient is of
ordinary size. At a kink (ReLU at 0, a tie inside a max-pooling window) the loss is not
differentiable, and a perturbation of size ε that crosses the kink makes the numerical
gradient meaningless. With random continuous inputs this essentially never happens.
"""

from __future__ import annotations

import re
from typing import Callable

import numpy as np

__all__ = [
    "gradcheck",
    "assert_gradients_close",
    "gradcheck_loss",
    "gradcheck_model",
    "numerical_gradient",
    "relative_error",
    "GradcheckReport",
    "DEFAULT_TOLERANCE",
]

DEFAULT_MAX_ENTRIES = 100
DEFAULT_TOLERANCE = 1e-6


# --------------------------------------------------------------------------------------
# building blocks
# --------------------------------------------------------------------------------------


def relative_error(analytic, numeric) -> float:
    """``‖a − n‖₂ / max(‖a‖₂, ‖n‖₂)``; 0.0 when both are exactly zero.

    A norm over the whole tensor rather than a maximum over entries of per-entry ratios:
    per-entry ratios explode on entries whose true gradient is tiny, where only rounding
    noise is left.
    """
    a = np.asarray(analytic, dtype=np.float64).ravel()
    n = np.asarray(numeric, dtype=np.float64).ravel()
    if a.shape != n.shape:
        raise ValueError(f"relative_error: shapes differ, {a.shape} vs {n.shape}")
    scale = max(np.linalg.norm(a), np.linalg.norm(n))
    if scale == 0.0:
        return 0.0
    return float(np.linalg.norm(a - n) / scale)


def _flat_view(array) -> np.ndarray:
    """A flat view of a float64 array, for ``numerical_gradient`` to perturb."""
    if not isinstance(array, np.ndarray) or array.dtype != np.float64:
        raise TypeError(
            "numerical_gradient needs a float64 ndarray (float32 rounding would swamp "
            f"the differences), got {getattr(array, 'dtype', type(array).__name__)}"
        )
    flat = array.reshape(-1)
    if not np.shares_memory(flat, array):  # reshape copied: f would not see the change
        raise ValueError(
            "numerical_gradient needs a contiguous array (it perturbs it in place)"
        )
    return flat


def numerical_gradient(
    f: Callable[[np.ndarray], float],
    array: np.ndarray,
    *,
    eps: float = 1e-6,
    indices=None,
) -> np.ndarray:
    """Central-difference gradient of the scalar ``f(array)`` with respect to ``array``.

    ``array`` is perturbed **in place** (one entry at a time, restored afterwards), so
    ``f`` may also ignore its argument and read the array through a layer that holds it,
    e.g. ``numerical_gradient(lambda _: loss(), layer.params["weight"])``.

    indices: flat indices to probe (default: all). The result has ``array``'s shape;
    entries that were not probed are NaN.
    """
    flat = _flat_view(array)
    grad = np.full(flat.size, np.nan)
    for i in range(flat.size) if indices is None else indices:
        original = flat[i]
        flat[i] = original + eps
        plus = float(f(array))
        flat[i] = original - eps
        minus = float(f(array))
        flat[i] = original  # restore exactly: later probes see the unperturbed point
        grad[i] = (plus - minus) / (2 * eps)
    return grad.reshape(array.shape)


def _probe_indices(
    analytic: np.ndarray, max_entries: int, rng: np.random.Generator
) -> np.ndarray:
    """Flat indices to probe: everything for small tensors, a mixed sample for large."""
    size = analytic.size
    if size <= max_entries:
        return np.arange(size)
    flat = np.abs(analytic.reshape(-1))
    chosen = {0, size - 1}
    # the largest analytic gradients: where a wrong formula shows most clearly
    largest = np.argsort(flat, kind="stable")[::-1][: max(1, max_entries // 10)]
    chosen.update(largest.tolist())
    # entries the backward claims are exactly zero: a wrong mask/routing shows there
    zeros = np.flatnonzero(flat == 0)
    if zeros.size:
        take = min(zeros.size, max(1, max_entries // 10))
        chosen.update(rng.choice(zeros, size=take, replace=False).tolist())
    rest = np.setdiff1d(np.arange(size), np.fromiter(chosen, dtype=np.int64))
    take = min(rest.size, max_entries - len(chosen))
    if take > 0:
        chosen.update(rng.choice(rest, size=take, replace=False).tolist())
    return np.array(sorted(chosen), dtype=np.int64)


def _short(number: float) -> str:
    """``1e-06`` → ``1e-6``: a tolerance as one writes it."""
    return re.sub(r"e\+?(-?)0*(\d)", r"e\1\2", f"{number:g}")


class GradcheckReport(dict):
    """``{name: relative error}`` (floats), printed as claims against a tolerance.

    The dict holds the numbers for programs (``report["weight"] < 1e-8``). Printed, a
    report shows one line per tensor, the claim and its verdict::

        input:  relative error < 1e-6: yes
        weight: relative error < 1e-6: no (1.2)

    A passing error is a rounding-level number whose digits change with the CPU's SIMD
    path and the BLAS kernel, so it is not printed; a failing one is a bug's
    disagreement and is shown with two significant digits. ``tol`` is the tolerance
    (default 1e-6).

    ``details[name]`` is a dict with ``indices`` (flat indices probed), ``analytic`` and
    ``numeric`` (the probed entries) and ``shape``.
    """

    def __init__(self, tol: float = DEFAULT_TOLERANCE):
        super().__init__()
        if not tol > 0:
            raise ValueError(f"gradcheck: tolerance must be > 0, got {tol!r}")
        self.tol = float(tol)
        self.details: dict[str, dict] = {}

    def failing(self, tol: float | None = None) -> list[str]:
        """Names whose relative error is not below ``tol`` (NaN fails too)."""
        tol = self.tol if tol is None else tol
        return [name for name, error in self.items() if not error < tol]

    def passed(self, tol: float | None = None) -> bool:
        """Every relative error below ``tol`` (default: the report's tolerance)."""
        return not self.failing(tol)

    def summary(self, tol: float | None = None) -> str:
        """Per tensor: ``name: relative error < tol: yes`` (or ``no (1.2)``)."""
        tol = self.tol if tol is None else tol
        width = max((len(name) for name in self), default=0) + 1
        lines = []
        for name, error in self.items():
            verdict = "yes" if error < tol else f"no ({error:.2g})"
            label = f"{name}:".ljust(width)
            lines.append(f"{label} relative error < {_short(tol)}: {verdict}")
        return "\n".join(lines) or "(no tensors checked)"

    __repr__ = summary

    def __str__(self) -> str:
        return self.summary()

    def worst(self) -> tuple[str, float]:
        """``(name, error)`` of the largest relative error."""
        name = max(self, key=self.get)
        return name, self[name]

    def explain(self, name: str) -> str:
        """Where the largest disagreement for ``name`` sits, analytic vs numerical.

        Three significant digits: the numerical value is a central difference, its last
        digits are rounding.
        """
        d = self.details[name]
        diff = np.abs(d["analytic"] - d["numeric"])
        k = int(np.argmax(diff))
        index = tuple(int(i) for i in np.unravel_index(d["indices"][k], d["shape"]))
        return (
            f"{name!r}: relative error {self[name]:.2g} over {len(d['indices'])} "
            f"probed entries; worst at index {index}: analytic {d['analytic'][k]:.3g}, "
            f"numerical {d['numeric'][k]:.3g}"
        )


# --------------------------------------------------------------------------------------
# checks at the boundary: what a layer must offer before it can be checked
# --------------------------------------------------------------------------------------


def _float64_input(x) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype.kind not in "fiu":
        raise TypeError(f"gradcheck: input must be numeric, got dtype {x.dtype}")
    # a private float64 copy: probing perturbs it, the caller's array stays untouched
    return np.array(x, dtype=np.float64, order="C", copy=True)


def _check_protocol(layer):
    """The layer itself, if it has ``forward`` and ``backward`` methods."""
    for method in ("forward", "backward"):
        if not callable(getattr(layer, method, None)):
            raise TypeError(
                f"gradcheck: {type(layer).__name__} has no {method}() method"
            )
    return layer


def _parameters(obj) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, param, grad) triples of a model (named_parameters) or a layer (params)."""
    if hasattr(obj, "named_parameters"):
        triples = [tuple(t) for t in obj.named_parameters()]
    else:
        params = getattr(obj, "params", None) or {}
        grads = getattr(obj, "grads", None) or {}
        missing = sorted(set(params) - set(grads))
        if missing:
            raise ValueError(
                f"gradcheck: {type(obj).__name__}.grads has no entry for {missing} "
                f"(params and grads must have the same keys)"
            )
        triples = [(name, params[name], grads[name]) for name in params]
    for name, param, grad in triples:
        if not isinstance(param, np.ndarray) or param.dtype != np.float64:
            raise TypeError(
                f"gradcheck needs float64 parameters, but {name!r} is "
                f"{getattr(param, 'dtype', type(param).__name__)}: build the layer "
                "with dtype=np.float64 (an ε of 1e-6 is lost in float32 rounding)"
            )
        if not param.flags.c_contiguous:
            raise ValueError(f"gradcheck: parameter {name!r} must be C-contiguous")
        if np.shape(grad) != param.shape:
            raise ValueError(
                f"gradcheck: gradient of {name!r} has shape {np.shape(grad)}, "
                f"parameter has shape {param.shape}"
            )
    return triples


def _output_shape(layer, x64: np.ndarray) -> tuple[int, ...]:
    """The shape of ``layer.forward(x64)``, which must stay float64."""
    out = np.asarray(layer.forward(x64))
    if out.dtype != np.float64:
        raise TypeError(
            f"gradcheck: forward returned {out.dtype} for a float64 input; "
            "the check needs float64 all the way through"
        )
    return out.shape


def _gradients(dx, triples) -> dict[str, np.ndarray]:
    """``{"input": dx, name: grad, ...}`` as float64 copies.

    Copies: later forward/backward calls may overwrite the layer's grads in place.
    """
    if dx is None:
        raise ValueError("gradcheck: backward returned None; it must return dL/dx")
    grads = {"input": np.array(dx, dtype=np.float64)}
    grads.update({name: np.array(g, dtype=np.float64) for name, _, g in triples})
    return grads


def _compare(
    loss: Callable[[], float],
    run_backward: Callable[[], dict[str, np.ndarray]],
    arrays: dict[str, np.ndarray],
    *,
    eps: float,
    seed: int,
    max_entries: int,
    tol: float,
) -> GradcheckReport:
    """Analytic gradients from ``run_backward()`` against central differences.

    ``loss()`` is the scalar; ``arrays[name]`` is the float64 array that ``loss`` reads
    and that gets perturbed in place.
    """
    report = GradcheckReport(tol)
    analytic = run_backward()
    # a random stream independent of the one that drew R
    rng = np.random.default_rng([seed, 1])
    for name, array in arrays.items():
        a = np.asarray(analytic[name], dtype=np.float64)
        if a.shape != array.shape:
            raise ValueError(
                f"gradcheck: analytic gradient of {name!r} has shape {a.shape}, "
                f"expected {array.shape}"
            )
        idx = _probe_indices(a, max_entries, rng)
        numeric = numerical_gradient(lambda _: loss(), array, eps=eps, indices=idx)
        a_probed = a.reshape(-1)[idx]
        n_probed = numeric.reshape(-1)[idx]
        report[name] = relative_error(a_probed, n_probed)
        report.details[name] = {
            "indices": idx,
            "analytic": a_probed,
            "numeric": n_probed,
            "shape": array.shape,
        }
    return report


# --------------------------------------------------------------------------------------
# public checks
# --------------------------------------------------------------------------------------


def gradcheck(
    layer,
    x,
    *,
    eps: float = 1e-6,
    seed: int = 0,
    max_entries: int = DEFAULT_MAX_ENTRIES,
    tol: float = DEFAULT_TOLERANCE,
) -> GradcheckReport:
    """Relative errors of ``layer.backward`` for ``"input"`` and every parameter.

    layer: a layer or model with ``forward(x)`` and ``backward(dout) -> dx``; its
    parameters come from ``named_parameters()`` (Sequential: ``"0.weight"``) or
    the ``params``/``grads`` dicts (``"weight"``, ``"bias"``); float64.
    x: the input; a float64 copy is used. eps: the central-difference step.
    seed: fixes ``R`` and the probed entries. max_entries: larger tensors are probed
    on a sample. tol: the tolerance the report prints its claims against.

    Returns a :class:`GradcheckReport`, a dict ``{name: relative error}``. Parameters
    are left as they were; the layer's cache and ``grads`` reflect the last pass.
    """
    x64 = _float64_input(x)
    params = _parameters(_check_protocol(layer))
    R = np.random.default_rng(seed).standard_normal(_output_shape(layer, x64))

    def loss() -> float:  # L = sum(y * R), so that dL/dy = R exactly
        return float(np.sum(layer.forward(x64) * R))

    def run_backward() -> dict[str, np.ndarray]:
        from .layers import input_grad_enabled  # dx is checked: it must be computed

        layer.forward(x64)
        with input_grad_enabled(layer):
            dx = layer.backward(R.copy())  # a copy: backward may not hurt R
        return _gradients(dx, params)

    arrays = {"input": x64, **{name: p for name, p, _ in params}}
    return _compare(
        loss, run_backward, arrays, eps=eps, seed=seed, max_entries=max_entries, tol=tol
    )


def gradcheck_loss(
    loss_layer,
    logits,
    targets,
    *,
    eps: float = 1e-6,
    seed: int = 0,
    max_entries: int = DEFAULT_MAX_ENTRIES,
    tol: float = DEFAULT_TOLERANCE,
) -> GradcheckReport:
    """Check a loss layer: ``forward(logits, targets) -> float``, ``backward() -> dz``.

    The loss is already a scalar, so no random ``R`` is needed. Returns
    ``{"logits": error}``.
    """
    z = _float64_input(logits)

    def loss() -> float:
        return float(loss_layer.forward(z, targets))

    def run_backward() -> dict[str, np.ndarray]:
        loss_layer.forward(z, targets)
        return {"logits": np.array(loss_layer.backward(), dtype=np.float64)}

    return _compare(
        loss,
        run_backward,
        {"logits": z},
        eps=eps,
        seed=seed,
        max_entries=max_entries,
        tol=tol,
    )


def gradcheck_model(
    model,
    x,
    targets,
    loss=None,
    *,
    eps: float = 1e-6,
    seed: int = 0,
    max_entries: int = DEFAULT_MAX_ENTRIES,
    tol: float = DEFAULT_TOLERANCE,
) -> GradcheckReport:
    """Check a whole model trained with a loss layer (default ``SoftmaxCrossEntropy``).

    The scalar is the real training loss ``loss.forward(model.forward(x), targets)``;
    the analytic gradients come from ``model.backward(loss.backward())``, exactly as in
    a training step. Returns ``{"input": ..., "0.weight": ..., ...}``.
    """
    if loss is None:
        from .layers import SoftmaxCrossEntropy  # a tool may import layers, not reverse

        loss = SoftmaxCrossEntropy()
    x64 = _float64_input(x)
    params = _parameters(_check_protocol(model))

    def value() -> float:
        return float(loss.forward(model.forward(x64), targets))

    def run_backward() -> dict[str, np.ndarray]:
        from .layers import input_grad_enabled

        value()
        with input_grad_enabled(model):
            return _gradients(model.backward(loss.backward()), params)

    arrays = {"input": x64, **{name: p for name, p, _ in params}}
    return _compare(
        value,
        run_backward,
        arrays,
        eps=eps,
        seed=seed,
        max_entries=max_entries,
        tol=tol,
    )


def assert_gradients_close(
    layer, x, tol: float = DEFAULT_TOLERANCE, **kwargs
) -> GradcheckReport:
    """Run :func:`gradcheck`; raise ``AssertionError`` naming the worst tensor, entry.

    Extra keyword arguments go to :func:`gradcheck` (``eps``, ``seed``,
    ``max_entries``).
    Returns the report when every relative error is below ``tol``.
    """
    report = gradcheck(layer, x, tol=tol, **kwargs)
    failing = report.failing()
    if failing:
        listed = ", ".join(f"{name} ({report[name]:.2g})" for name in failing)
        name, _ = report.worst()
        raise AssertionError(
            f"{type(layer).__name__}: gradient check failed for {listed} "
            f"(tolerance {_short(tol)}). Worst: {report.explain(name)}"
        )
    return report
