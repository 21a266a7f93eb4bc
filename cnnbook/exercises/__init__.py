"""Exercise checkers: ``cnnbook.exercises.check_<name>(your_function)``.

Each chapter's checkers live in their own module (``ch01``, ``ch02``, ...); every public
``check_*`` function of those modules is available right here.
"""

from importlib import import_module
from pkgutil import iter_modules

from ._core import Case, CheckResult, run_cases

__all__ = ["Case", "CheckResult", "run_cases"]

_info = _module = _name = None
for _info in sorted(iter_modules(__path__), key=lambda m: m.name):
    if _info.name.startswith("ch"):
        _module = import_module(f".{_info.name}", __name__)
        for _name in getattr(_module, "__all__", ()):
            if _name.startswith("check_"):
                globals()[_name] = getattr(_module, _name)
                __all__.append(_name)
del _info, _module, _name
