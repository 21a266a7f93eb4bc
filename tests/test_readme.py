"""The README promises exactly two set-up commands, and CI must run the same test command."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _setup_commands():
    readme = (ROOT / "README.md").read_text()
    setup = readme.split("## Set up", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", setup, flags=re.S)


def test_readme_has_exactly_two_setup_commands():
    commands = _setup_commands()
    assert len(commands) == 2, commands
    build, test = commands
    assert "\n" not in build and "\n" not in test, (
        "each set-up step must be one command"
    )
    assert (
        "pip install -r requirements.txt" in build and "jupyter-book build ." in build
    )
    assert "pip install -r requirements.txt" in test and "pytest" in test


def test_ci_runs_the_readme_test_command_verbatim():
    test_command = _setup_commands()[1]
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_command in ci_lines


def test_ci_builds_the_book_strictly_and_treats_no_tests_as_failure():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "jupyter-book build . -W -n --keep-going" in ci
    assert '"$status" -eq 5' in ci
