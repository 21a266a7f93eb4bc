"""CI's robustness pass disables the widest SIMD level NumPy dispatches to on the host.

``.ci/narrow_simd.py`` picks it from NumPy's ``__cpu_dispatch__`` and
``__cpu_features__``; ``.ci/run`` passes it to nbval as ``NPY_DISABLE_CPU_FEATURES``.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / ".ci" / "narrow_simd.py"
_spec = importlib.util.spec_from_file_location("narrow_simd", SCRIPT)
narrow_simd = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(narrow_simd)
widest = narrow_simd.widest_dispatch_level

NUMPY_2_4 = ["X86_V3", "X86_V4", "AVX512_ICL", "AVX512_SPR"]
NUMPY_1_26 = (
    "SSSE3 SSE41 POPCNT SSE42 AVX F16C FMA3 AVX2 AVX512F AVX512CD AVX512_KNL "
    "AVX512_KNM AVX512_SKX AVX512_CLX AVX512_CNL AVX512_ICL AVX512_SPR"
).split()


def host(*present):
    return dict.fromkeys(present, True)


@pytest.mark.parametrize(
    "dispatch, features, expected",
    [
        # AVX2-only (the Zen 3 CI box): the 256-bit level.
        (NUMPY_2_4, host("X86_V2", "X86_V3"), ["X86_V3"]),
        # AVX-512 hosts: the AVX-512 group members they have, never X86_V3.
        (NUMPY_2_4, host("X86_V3", "X86_V4", "AVX512_ICL"), ["X86_V4", "AVX512_ICL"]),
        (
            NUMPY_2_4,
            host("X86_V3", "X86_V4", "AVX512_ICL", "AVX512_SPR"),
            ["X86_V4", "AVX512_ICL", "AVX512_SPR"],
        ),
        # A host with nothing beyond NumPy's baseline: nothing to disable.
        (NUMPY_2_4, host("X86_V2"), []),
        # Absent features count as absent, whatever their key says.
        (NUMPY_2_4, {"X86_V3": True, "X86_V4": False}, ["X86_V3"]),
        # NumPy 1.26 named the AVX2 level by its parts.
        (NUMPY_1_26, host(*NUMPY_1_26[:8]), ["AVX", "F16C", "FMA3", "AVX2"]),
        (NUMPY_1_26, host(*NUMPY_1_26[:13]), NUMPY_1_26[8:13]),
        # Arm: the optional 128-bit extensions, or SVE where present.
        (
            ["ASIMDHP", "ASIMDDP", "SVE"],
            host("ASIMDHP", "ASIMDDP"),
            ["ASIMDHP", "ASIMDDP"],
        ),
        (["ASIMDHP", "ASIMDDP", "SVE"], host("ASIMDHP", "SVE"), ["SVE"]),
    ],
)
def test_widest_level(dispatch, features, expected):
    assert widest(dispatch, features) == expected


def _script(*args, env=None):
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )


def test_on_this_host_the_choice_is_real_and_takes_effect():
    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__

    printed = _script(env={"NPY_DISABLE_CPU_FEATURES": ""})
    assert printed.returncode == 0, printed.stderr
    names = printed.stdout.split()
    assert names == widest(list(__cpu_dispatch__), dict(__cpu_features__))
    if not names:
        pytest.skip("NumPy runs only its baseline SIMD level on this host")
    assert all(__cpu_features__[n] for n in names)
    # Without the variable they are on, so --verify fails; with it, they are off.
    assert _script("--verify", *names, env={"NPY_DISABLE_CPU_FEATURES": ""}).returncode
    verified = _script(
        "--verify", *names, env={"NPY_DISABLE_CPU_FEATURES": " ".join(names)}
    )
    assert verified.returncode == 0, verified.stderr
