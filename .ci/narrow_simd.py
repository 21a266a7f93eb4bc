"""The SIMD targets CI's robustness pass disables: the widest level NumPy uses here.

NumPy compiles some kernels (exp, log, sums, sorting, ...) several times, once per
SIMD level in ``__cpu_dispatch__``, and picks at import time the widest one the host
supports (``__cpu_features__``). Digits that depend on rounding can differ between
those paths, so CI runs nbval a second time with that widest level switched off
through ``NPY_DISABLE_CPU_FEATURES``: an output that changes is fragile (issue 12).

With NumPy 2.4 the dispatch targets are ``X86_V3`` (AVX2 + FMA, 256-bit) and the
AVX-512 group ``X86_V4 AVX512_ICL AVX512_SPR``. On an AVX2-only host that gives
``X86_V3``; on an AVX-512 host, the members of the AVX-512 group it has.

    python .ci/narrow_simd.py            # prints the names, space separated
    NPY_DISABLE_CPU_FEATURES="$names" python .ci/narrow_simd.py --verify "$names"

``--verify`` exits non-zero unless every named target is really off in this process.
"""

from __future__ import annotations

import sys

# Vector width in bits of each dispatch target NumPy names; anything not listed
# (SSE*, X86_V2, NEON, ASIMD*, VSX*, VX*, ...) is a 128-bit level.
_WIDTH_256 = {"X86_V3", "AVX", "AVX2", "FMA3", "F16C", "FMA4", "XOP"}


def vector_width(target: str) -> int:
    """Vector width in bits of a NumPy dispatch target (SVE counts as the widest)."""
    if target == "X86_V4" or target.startswith("AVX512"):
        return 512
    if target in _WIDTH_256:
        return 256
    if target.startswith("SVE"):
        return 2048  # length-agnostic, up to 2048 bits: wider than NEON/ASIMD
    return 128


def widest_dispatch_level(dispatch: list[str], features: dict[str, bool]) -> list[str]:
    """The dispatch targets of the widest vector width the host supports.

    ``dispatch`` is ``__cpu_dispatch__`` (the targets NumPy was compiled for, beyond
    its baseline), ``features`` is ``__cpu_features__`` (what this host has).
    Returns them in NumPy's order; empty when NumPy runs only its baseline here.
    """
    present = [t for t in dispatch if features.get(t)]
    if not present:
        return []
    widest = max(vector_width(t) for t in present)
    return [t for t in present if vector_width(t) == widest]


def _numpy_dispatch() -> tuple[list[str], dict[str, bool]]:
    try:
        from numpy._core._multiarray_umath import (
            __cpu_dispatch__,
            __cpu_features__,
        )
    except ImportError:  # NumPy 1.x
        from numpy.core._multiarray_umath import (  # type: ignore[no-redef]
            __cpu_dispatch__,
            __cpu_features__,
        )
    return list(__cpu_dispatch__), dict(__cpu_features__)


def main(argv: list[str]) -> int:
    dispatch, features = _numpy_dispatch()
    if argv[:1] == ["--verify"]:
        names = " ".join(argv[1:]).split()
        still_on = [n for n in names if features.get(n)]
        if still_on:
            print(f"still enabled: {' '.join(still_on)}", file=sys.stderr)
            return 1
        return 0
    if argv:
        print(__doc__, file=sys.stderr)
        return 2
    print(" ".join(widest_dispatch_level(dispatch, features)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
