"""cnnbook: a convolutional neural network from scratch in NumPy, the book's package.

Submodules load on first use (``cnnbook.signal``, ``cnnbook.functional``, ...), so
``import cnnbook`` is quick and a chapter only pays for what it uses.

Layering, imports pointing one way only:
  math kernels   signal, fft, functional, naive, blas, fast, implicit, winograd
  layers/models  layers, models
  training       optim, train, data, diagnostics
  tools on top   exercises, gradcheck, bench, sourcecode (``show``), claims
  host facts     machine (imports nothing from cnnbook; any layer may use it)
"""

from importlib import import_module

from .sourcecode import diff, excerpt, show

__version__ = "0.1.0"
__all__ = ["show", "excerpt", "diff", "__version__"]

_SUBMODULES = {
    "signal",
    "fft",
    "functional",
    "naive",
    "blas",
    "fast",
    "implicit",
    "winograd",
    "layers",
    "models",
    "optim",
    "train",
    "data",
    "diagnostics",
    "exercises",
    "gradcheck",
    "bench",
    "sourcecode",
    "claims",
    "machine",
}


def __getattr__(name):
    if name in _SUBMODULES:
        module = import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    raise AttributeError(f"module 'cnnbook' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | _SUBMODULES)
