"""Test configuration shared by the unit tests and nbval.

pytest loads this file for every run that includes ``tests/`` (plain ``pytest`` from the root does),
so the notebook checks get the sanitize file and a fixed hash seed without any extra flags.
"""

import os
from pathlib import Path

from hypothesis import HealthCheck, settings

# Set before nbval starts any kernel: kernels inherit it, so set/dict ordering is reproducible.
os.environ.setdefault("PYTHONHASHSEED", "0")

HERE = Path(__file__).resolve().parent

# 2-core, noisy machines: property tests must not fail on wall-clock deadlines.
# Derandomized: the same examples on every run and machine, so a red CI run can be reproduced
# exactly, and no example database (.hypothesis/) is needed.
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
