"""Test configuration shared by the unit tests and nbval.

pytest loads this file for every run that includes ``tests/`` (plain ``pytest`` from the
root does), so the notebook checks get the sanitize file and a fixed hash seed without
any extra flags. A run over ``chapters/`` alone does not load it: pass
``--nbval-sanitize-with tests/nbval_sanitize.cfg`` there (``.ci/run``'s robustness pass
does).
"""

import os
from pathlib import Path

from hypothesis import HealthCheck, settings

# Set before nbval starts any kernel: kernels inherit it, so set/dict ordering is
# reproducible.
os.environ.setdefault("PYTHONHASHSEED", "0")

HERE = Path(__file__).resolve().parent

# 2-core, noisy machines: property tests must not fail on wall-clock deadlines.
# Derandomized: the same examples on every run and machine, so a red CI run can be
# reproduced exactly, and no example database (.hypothesis/) is needed.
settings.register_profile(
    "cnnbook",
    deadline=None,
    max_examples=40,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "cnnbook"))


def pytest_configure(config):
    # An absolute path, so the sanitizer is found whatever the working directory.
    if (
        hasattr(config.option, "nbval_sanitize_with")
        and not config.option.nbval_sanitize_with
    ):
        config.option.nbval_sanitize_with = str(HERE / "nbval_sanitize.cfg")


def pytest_runtest_setup(item):
    """Under xdist, with notebooks in the run, keep this worker off the notebooks' core.

    ``chapters/conftest.py`` hands all notebooks to one worker, whose timing claims
    assume a core of their own; a unit test that runs BLAS or numba on every core for a
    few seconds would take it (the last red CI run: two timing claims failed that way).
    So, at its first unit test, a worker that has not run notebooks moves itself (and
    its children) to all but the first CPU it may use, and its BLAS and numba pools to
    that many threads. Tests that ask for more threads still get them, time-sliced."""
    global _kept_off_the_notebooks_core
    if _kept_off_the_notebooks_core or not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    _kept_off_the_notebooks_core = True
    cpus = sorted(os.sched_getaffinity(0))
    notebooks = any(".ipynb" in i.nodeid for i in item.session.items)
    if (
        len(cpus) < 2
        or not notebooks
        or getattr(item.config, "cnnbook_ran_notebooks", 0)
    ):
        return
    os.sched_setaffinity(0, cpus[1:])
    from threadpoolctl import threadpool_limits

    threadpool_limits(len(cpus) - 1)  # kept for the rest of the session
    try:
        import numba
    except ImportError:
        return
    numba.set_num_threads(min(len(cpus) - 1, numba.config.NUMBA_NUM_THREADS))


_kept_off_the_notebooks_core = False


def pytest_terminal_summary(terminalreporter):
    """Where the time went, for the CI log (budget: all of .ci/run under 15 minutes).

    Seconds per test file (a notebook's cells add up to its file), and the stage times
    that slow tests record with ``record_property("stage times", ...)``. Reporting
    only: no test asserts a time.
    """
    import pytest

    per_file: dict[str, float] = {}
    stages = []
    for reports in terminalreporter.stats.values():
        for report in reports:
            if not isinstance(report, pytest.TestReport):
                continue
            path = report.nodeid.split("::")[0]
            per_file[path] = per_file.get(path, 0.0) + report.duration
            if report.when == "call":
                stages += [
                    (report.nodeid, value)
                    for name, value in report.user_properties
                    if name == "stage times"
                ]
    if not per_file:
        return
    terminalreporter.section("time per test file (slowest first)")
    slowest = sorted(per_file.items(), key=lambda kv: -kv[1])
    for path, seconds in slowest[:15]:
        terminalreporter.write_line(f"{seconds:7.1f} s  {path}")
    rest = sum(seconds for _, seconds in slowest[15:])
    if rest:
        terminalreporter.write_line(f"{rest:7.1f} s  {len(slowest) - 15} other files")
    for nodeid, value in stages:
        terminalreporter.write_line(f"stage times of {nodeid}: {value}")
