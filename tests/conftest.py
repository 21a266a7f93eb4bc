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
