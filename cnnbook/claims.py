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
"""

from __future__ import annotations

__all__ = ["claim", "below"]


def claim(statement: str, holds, *, strict: bool = True) -> bool:
    """Print ``statement: yes`` if ``holds``; otherwise raise (or print ``no``)."""
    if not isinstance(statement, str) or not statement:
        raise TypeError("claim: the statement must be a non-empty string")
    holds = bool(holds)  # NumPy bools too; NaN comparisons are already False
    if not holds and strict:
        raise AssertionError(f"claim does not hold: {statement}")
    print(f"{statement}: {'yes' if holds else 'no'}")
    return holds


def below(what: str, value, bound: float, *, strict: bool = True) -> bool:
    """``claim(f"{what} < {bound:g}", value < bound)``: the usual tolerance claim."""
    return claim(f"{what} < {bound:g}", float(value) < bound, strict=strict)
