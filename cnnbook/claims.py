"""Print a claim, not the digits behind it.

The book's printing rule: a checked notebook output never shows digits that depend on
rounding, the CPU's SIMD path, the BLAS kernel, the thread count or a library's patch
version. A rounding-level number (a gradient-check error, a float32-vs-float64 gap) is
shown as the claim the text makes about it::

    claim("max relative error < 1e-7", err < 1e-7)
    # prints: max relative error < 1e-7: yes

and a claim that does not hold raises ``AssertionError``, so a notebook cell fails
loudly (also in a cell whose output nbval ignores, such as a timing or a float32
training run). ``strict=False`` prints ``no`` instead, for a demonstration whose point
is a failing check.

CI's robustness pass (``.ci/run``) sets ``CNNBOOK_CLAIMS=report``: there a claim that
does not hold prints ``no`` instead of raising, and is appended to the file named by
``CNNBOOK_CLAIMS_LOG`` when that is set. That pass checks the *printed* outputs with a
narrower SIMD path, two notebooks at a time: a ``no`` in a checked cell still differs
from the stored ``yes`` and fails it, while timing claims in ignored cells, which the
README's test command has asserted on a quieter machine, are reported, not asserted.
"""

from __future__ import annotations

import os

__all__ = ["claim", "below"]


def claim(statement: str, holds, *, strict: bool = True) -> bool:
    """Print ``statement: yes`` if ``holds``; otherwise raise (or print ``no``)."""
    if not isinstance(statement, str) or not statement:
        raise TypeError("claim: the statement must be a non-empty string")
    holds = bool(holds)  # NumPy bools too; NaN comparisons are already False
    if not holds and strict:
        if os.environ.get("CNNBOOK_CLAIMS") != "report":
            raise AssertionError(f"claim does not hold: {statement}")
        _log_broken(statement)
    print(f"{statement}: {'yes' if holds else 'no'}")
    return holds


def below(what: str, value, bound: float, *, strict: bool = True) -> bool:
    """``claim(f"{what} < {bound:g}", value < bound)``: the usual tolerance claim."""
    return claim(f"{what} < {bound:g}", float(value) < bound, strict=strict)


def _log_broken(statement: str) -> None:
    log = os.environ.get("CNNBOOK_CLAIMS_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as f:
            f.write(statement + "\n")
