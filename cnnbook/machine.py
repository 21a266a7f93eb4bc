"""What machine is this? The facts every measured claim in the book must name.

Speed and the last digits of floating-point results depend on the host: the CPU's
vector instructions (SIMD width and register count), the BLAS library and the kernel it
picked for this CPU, the thread count, and the environment (``OPENBLAS_CORETYPE`` forces
a kernel).
``facts()`` gathers them; ``print(facts())`` is the "measured on" line of a chapter.

This module imports nothing from ``cnnbook``: kernels that tune themselves to the host
(the tiny BLAS) and tools that report it (the benchmark) can both use it.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

__all__ = ["MachineFacts", "facts", "cpu_flags", "vector_isa"]

# (ISA name, vector width in bits, vector registers), widest first.
_ISAS = {
    "avx512": ("AVX-512", 512, 32),
    "avx2": ("AVX2 + FMA", 256, 16),
    "sse": ("SSE2", 128, 16),
    "neon": ("NEON", 128, 32),
}


@lru_cache(maxsize=None)
def cpu_flags() -> frozenset[str]:
    """The host CPU's feature flags, lower case: ``avx2``, ``fma``, ``avx512f``, ..."""
    try:  # LLVM's view is what numba compiles for, so prefer it when numba is installed
        from llvmlite import binding

        features = binding.get_host_cpu_features()
        return frozenset(name for name, on in features.items() if on)
    except Exception:  # noqa: BLE001 - no llvmlite, or an old one: read the kernel's list
        pass
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def vector_isa(flags: frozenset[str] | None = None) -> tuple[str, int, int]:
    """``(name, vector bits, vector registers)`` of the host's widest FMA vector ISA."""
    flags = cpu_flags() if flags is None else flags
    if "avx512f" in flags:
        return _ISAS["avx512"]
    if "avx2" in flags and "fma" in flags:
        return _ISAS["avx2"]
    if platform.machine().lower() in ("arm64", "aarch64") or "asimd" in flags:
        return _ISAS["neon"]
    return _ISAS["sse"]


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _blas() -> list[dict]:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    return [i for i in threadpool_info() if i.get("user_api") == "blas"]


def _numpy_simd() -> str:
    """The SIMD targets NumPy dispatches to on this host, e.g. ``AVX2 FMA3 AVX512F``."""
    try:
        from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    except ImportError:  # NumPy 1.x
        from numpy.core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    on = [name for name in __cpu_dispatch__ if __cpu_features__.get(name)]
    return " ".join(on) or "baseline only"


@dataclass(frozen=True)
class MachineFacts:
    cpu: str
    arch: str
    cores: int
    isa: str
    vector_bits: int
    vector_registers: int
    python: str
    numpy: str
    numpy_simd: str
    blas: list[dict] = field(default_factory=list)
    environment: dict[str, str | None] = field(default_factory=dict)

    @property
    def blas_kernel(self) -> str:
        """Each BLAS library on a line, e.g. ``OpenBLAS 0.3.x (numpy), Haswell``."""
        if not self.blas:
            return "unknown (threadpoolctl not installed)"
        lines = []
        for b in self.blas:
            api = b.get("internal_api", "?")
            name = {"openblas": "OpenBLAS", "mkl": "MKL"}.get(api, api)
            # which package loaded it: numpy.libs/..., scipy.libs/..., torch/lib/...
            owner = Path(b.get("filepath", "")).parent.name.removesuffix(".libs")
            threads = b.get("num_threads")
            lines.append(
                f"{name} {b.get('version') or ''} ({owner or '?'}), "
                f"{b.get('architecture') or '?'} kernels, "
                f"{threads} thread{'' if threads == 1 else 's'}"
            )
        return "\n       ".join(lines)

    def __str__(self) -> str:
        env = ", ".join(
            f"{k}={v}" if v is not None else f"{k} not set"
            for k, v in self.environment.items()
        )
        return "\n".join(
            [
                f"CPU:   {self.cpu} ({self.arch}), {self.cores} cores",
                f"SIMD:  {self.isa}, {self.vector_bits}-bit vectors, "
                f"{self.vector_registers} vector registers",
                f"NumPy: {self.numpy} (dispatches to {self.numpy_simd}), "
                f"Python {self.python}",
                f"BLAS:  {self.blas_kernel}",
                f"env:   {env}",
            ]
        )


def facts() -> MachineFacts:
    """Gather the host's facts now (thread counts can change during a run)."""
    import numpy as np

    isa, bits, registers = vector_isa()
    return MachineFacts(
        cpu=_cpu_model(),
        arch=platform.machine(),
        cores=os.cpu_count() or 1,
        isa=isa,
        vector_bits=bits,
        vector_registers=registers,
        python=platform.python_version(),
        numpy=np.__version__,
        numpy_simd=_numpy_simd(),
        blas=_blas(),
        environment={
            k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
        },
    )
