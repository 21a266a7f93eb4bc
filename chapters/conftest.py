"""pytest configuration for the notebooks: loaded by every run over ``chapters/``.

With ``-n 2`` (``pyproject.toml``), pytest-xdist runs two workers, and the scheduler
below hands *all* notebook cells to one of them as a single unit of work: the notebooks
run one after another, each in cell order, so no two notebooks' timings compete for the
cores, while the unit tests (one test file at a time) run on the other worker. On a
2-core machine that hides the unit tests' minutes behind the notebooks' (CI's 15-minute
budget, issue 12). The unit-test worker keeps to the other cores meanwhile
(``tests/conftest.py``), so a 2-thread unit test cannot take the core a notebook is
timing on.

CI's robustness pass sets ``CNNBOOK_CLAIMS=report`` (``cnnbook.claims``): it checks the
printed outputs only, and asserts no timing claim, so there each notebook is a unit of
its own and two notebooks run side by side.
"""

import os
from pathlib import Path

from xdist.scheduler import LoadScopeScheduling

SANITIZER = Path(__file__).resolve().parent.parent / "tests" / "nbval_sanitize.cfg"


def pytest_configure(config):
    # `pytest chapters/NN.ipynb` alone does not load tests/conftest.py: the sanitizer
    # (timestamps, addresses, glued PNG bytes) is set here too.
    if (
        hasattr(config.option, "nbval_sanitize_with")
        and not config.option.nbval_sanitize_with
    ):
        config.option.nbval_sanitize_with = str(SANITIZER)


class NotebooksOnOneWorker(LoadScopeScheduling):
    """Scopes: every notebook cell in one, each test file its own (like ``loadfile``).

    The largest scope is handed out first (xdist's ``--loadscope-reorder``), so one
    worker starts on the notebooks at once and gets nothing else until they are done.
    """

    def _split_scope(self, nodeid: str) -> str:
        file = nodeid.split("::", 1)[0]
        if ".ipynb" in nodeid and "::Cell " in nodeid and not SIDE_BY_SIDE:
            return "notebooks"
        return file


# Timing claims are only reported in this mode, so notebooks may compete for the cores.
SIDE_BY_SIDE = os.environ.get("CNNBOOK_CLAIMS") == "report"


def pytest_runtest_setup(item):
    # Read by tests/conftest.py: a worker that has run notebooks does not move its unit
    # tests off the notebooks' core (there are no notebooks left to protect).
    item.config.cnnbook_ran_notebooks = True


def pytest_xdist_make_scheduler(config, log):
    return NotebooksOnOneWorker(config, log)
