"""The README and CI agree: two set-up commands, CI runs the same test command.

Also: the contributor section states the printing rule and the re-lock steps, and CI
runs the robustness pass and fails on it.
"""

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


def _section(title: str) -> str:
    readme = (ROOT / "README.md").read_text()
    assert f"\n## {title}\n" in readme, f"README has a '## {title}' section"
    return readme.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_contributor_section_states_the_printing_rule():
    text = _section("Contributing")
    for phrase in (
        "never prints digits that depend on rounding",
        "nbval-ignore-output",
        'below("max relative error", err, 1e-7)',
        "claim(",
        "glue",
        "cnnbook.machine.facts()",
        "NPY_DISABLE_CPU_FEATURES",
    ):
        assert phrase in text, phrase


def test_relock_command_is_the_one_that_made_the_lock():
    """The README's re-lock command is the one uv recorded in requirements.txt."""
    text = _section("Contributing")
    commands = re.findall(r"^\s*(uv pip compile .+)$", text, flags=re.M)
    header = (ROOT / "requirements.txt").read_text().splitlines()[:5]
    recorded = [ln.lstrip("# ").strip() for ln in header if "uv pip compile" in ln]
    assert commands and recorded and commands[0].strip() == recorded[0]
    for step in ("requirements.in", "re-execute every notebook", "bash .ci/run"):
        assert step in text, step


def test_ci_runs_the_robustness_pass_and_fails_on_it():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "narrow=$(.venv/bin/python .ci/narrow_simd.py)" in ci
    assert 'NPY_DISABLE_CPU_FEATURES="$narrow"' in ci
    assert (
        "chapters/" in ci.split('NPY_DISABLE_CPU_FEATURES="$narrow" PYTHONHASHSEED')[1]
    )
    assert '"$robust" -eq 5' in ci
    assert ci.rstrip().endswith('exit "$robust"')


def test_ci_enforces_one_code_style_before_the_build():
    ci = (ROOT / ".ci" / "run").read_text()
    assert ".venv/bin/ruff format --check ." in ci and ".venv/bin/ruff check ." in ci
    assert ci.index("ruff check") < ci.index("jupyter-book build")
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert "line-length = 88" in pyproject and '"*.ipynb"' in pyproject
