"""Checkers for the exercises of Chapter 10 (a tiny BLAS)."""

from __future__ import annotations

from typing import Callable

import numpy as np

from ._core import Case, CheckResult, require_function, run_cases

__all__ = ["check_matmul_ikj", "check_gemm_flops", "check_tile_intensity"]

ALONG_ROWS = "innermost loop over j: B and C read along their rows"


class _TracedRow:
    def __init__(self, parent: "_Traced", i: int):
        self._parent, self._i = parent, i

    def __getitem__(self, j):
        return self._parent[self._i, j]

    def __setitem__(self, j, value):
        self._parent[self._i, j] = value

    def __len__(self):
        return self._parent.shape[1]


class _Traced:
    """A 2-D array stand-in that records which elements are read, in order (loop-order
    check)."""

    def __init__(self, data: np.ndarray, name: str, log: list):
        self.data, self.name, self._log = data, name, log
        self.shape, self.ndim, self.dtype = data.shape, data.ndim, data.dtype

    def __len__(self):
        return self.shape[0]

    def _index(self, idx):
        if (
            isinstance(idx, tuple)
            and len(idx) == 2
            and all(
                isinstance(i, (int, np.integer)) and not isinstance(i, bool)
                for i in idx
            )
        ):
            return int(idx[0]), int(idx[1])
        raise TypeError(
            f"index {self.name} one element at a time, like {self.name}[i, j] "
            "(this exercise is about the order of the three loops),"
            f" got {self.name}[{idx!r}]"
        )

    def __getitem__(self, idx):
        if isinstance(idx, (int, np.integer)) and not isinstance(idx, bool):
            return _TracedRow(self, int(idx))
        i, j = self._index(idx)
        self._log.append((self.name, i, j))
        return self.data[i, j]

    def __setitem__(self, idx, value):
        i, j = self._index(idx)
        self.data[i, j] = value


def _loop_order(log: list) -> str:
    """Describe the innermost loop from the sequence of reads of B."""
    reads = [(i, j) for name, i, j in log if name == "B"]
    along = sum(
        1 for (p1, j1), (p2, j2) in zip(reads, reads[1:]) if p2 == p1 and j2 == j1 + 1
    )
    down = sum(
        1 for (p1, j1), (p2, j2) in zip(reads, reads[1:]) if j2 == j1 and p2 == p1 + 1
    )
    if along > down:
        return ALONG_ROWS
    if down > along:
        return "innermost loop over p (k): B read down its columns"
    return "innermost loop unclear: B was read in no regular order"


def check_matmul_ikj(fn: Callable) -> CheckResult:
    """``fn(A, B, C)`` adds ``A @ B`` to ``C`` in place (C: (m, n), A: (m, k), B: (k,
    n)) with three plain loops in the order i, p (the inner dimension k), j — indexing
    one element at a time, like ``C[i, j] += A[i, p] * B[p, j]``. The checker records
    the order in which B's elements are read."""
    require_function("matmul_ikj", fn)
    rng = np.random.default_rng(10)

    def traced(A, B, C):
        log: list = []
        fn(_Traced(A, "A", log), _Traced(B, "B", log), _Traced(C, "C", log))
        return C, _loop_order(log)

    traced.__name__ = getattr(fn, "__name__", "matmul_ikj")
    cases = []
    for m, k, n in ((2, 3, 4), (3, 5, 6), (4, 2, 7), (1, 4, 5)):
        A = rng.integers(-3, 4, (m, k)).astype(np.float64)
        B = rng.integers(-3, 4, (k, n)).astype(np.float64)
        C = rng.integers(-3, 4, (m, n)).astype(np.float64)
        cases.append(
            Case(
                (A, B, C),
                (C + A @ B, ALONG_ROWS),
                hint="C += A @ B, in place: add to C's elements, keep the old values, "
                "and let the loop over j be the innermost one",
            )
        )
    return run_cases("matmul_ikj", traced, cases)


def check_gemm_flops(fn: Callable) -> CheckResult:
    """``fn(m, n, k)`` returns the floating-point operations of ``C = A @ B`` with A (m,
    k) and B (k, n), counting one multiply and one add for every term of every sum (the
    GFLOP/s convention)."""
    hint = "m·n sums of k terms each, and every term is a multiply and an add: 2 flops"
    cases = [
        Case((2, 3, 4), 48, hint=hint),
        Case(
            (1, 1, 1),
            2,
            hint="by the convention even the first term counts its add: 2 flops",
        ),
        Case((512, 512, 512), 268435456, hint=hint),
        Case(
            (8, 50176, 9),
            7225344,
            hint="m, n and k differ: rectangular matrices, not n³",
        ),
        Case((64, 10, 1568), 2007040, hint=hint),
    ]
    return run_cases("gemm_flops", fn, cases)


def check_tile_intensity(fn: Callable) -> CheckResult:
    """``fn(mr, nr)`` returns the flops per float loaded of one step of an ``mr × nr``
    micro-kernel: it loads mr floats of A and nr floats of B and does mr·nr
    multiply-adds (2 flops each)."""
    hint = "2·mr·nr flops for mr + nr floats loaded"
    cases = [
        Case((1, 1), 1.0, hint="1 × 1: one multiply-add (2 flops) for 2 floats loaded"),
        Case((4, 4), 4.0, hint=hint),
        Case((6, 64), 2 * 6 * 64 / 70, hint=hint),
        Case((1, 16), 2 * 16 / 17, hint=hint),
    ]
    return run_cases("tile_intensity", fn, cases, rtol=1e-9)
