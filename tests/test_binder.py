"""Binder works: after only the steps repo2docker performs, ``import cnnbook`` works
in a kernel started in ``chapters/``.

repo2docker (Binder's builder) reads its configuration from ``binder/`` or ``.binder/``
when one exists, and then ignores the top-level files; otherwise from the top level. It
takes Python from ``runtime.txt`` (``python-X.Y``), installs ``requirements.txt`` with
pip, and runs ``postBuild`` from the repository's root. Before version 2025.12 it does
not install a package that has only a ``pyproject.toml``; ``postBuild`` does.

The test replays exactly those steps on a copy of the repository's files in a fresh
virtual environment, and checks both sides: before ``postBuild`` a kernel in
``chapters/`` cannot import the package (so the test can fail), after it it can.
Differences from a real Binder build, each harmless here: the Python is this one (the
test skips unless it is the one ``runtime.txt`` names), and ``requirements.txt`` is
installed by uv (pinned in the lock itself, so it is in this environment) instead of
pip, when uv is there. The lock pins every version, so both installers put the same
packages in the environment; what is under test is the repository's side of the
steps (which files repo2docker reads, that the lock holds what a kernel needs, that
``postBuild`` makes ``import cnnbook`` work in ``chapters/``), not the installer. uv
takes ~10 s from its cache where pip took ~70 s downloading (CI: pip's cache is empty,
uv's is warm from CI's own install). Without uv, pip installs the lock, as
repo2docker does (minus byte-compiling, ``--no-compile``). The test prints its stage
times.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

KERNEL_CHECK = r"""
import json, sys
from jupyter_client.manager import start_new_kernel

out = []
km, kc = start_new_kernel(kernel_name="python3", cwd=sys.argv[1])
try:
    reply = kc.execute_interactive(
        "import os, cnnbook; print(os.getcwd()); print(cnnbook.__file__)",
        timeout=120,
        output_hook=out.append,
    )
finally:
    kc.stop_channels()
    km.shutdown_kernel(now=True)
text = "".join(m["content"].get("text", "") for m in out if m["msg_type"] == "stream")
errors = [m["content"]["ename"] for m in out if m["msg_type"] == "error"]
status = reply["content"]["status"]
print(json.dumps({"status": status, "text": text, "errors": errors}))
"""


def repo2docker_config_dir(root: Path) -> Path:
    """Where repo2docker reads its configuration files (its ``binder_dir`` rule)."""
    binder, dotbinder = root / "binder", root / ".binder"
    if binder.is_dir() and dotbinder.is_dir():
        raise RuntimeError("both binder/ and .binder/: repo2docker refuses to build")
    if dotbinder.is_dir():
        return dotbinder
    if binder.is_dir():
        return binder
    return root


def runtime_python(config_dir: Path) -> tuple[int, int] | None:
    runtime = config_dir / "runtime.txt"
    if not runtime.exists():
        return None
    match = re.fullmatch(r"python-(\d+)\.(\d+)", runtime.read_text().strip())
    assert match, f"runtime.txt must read python-X.Y, not {runtime.read_text()!r}"
    return int(match[1]), int(match[2])


def _repository_files(root: Path) -> list[str]:
    """What a clone holds: tracked files, plus new ones not yet committed."""
    listed = subprocess.run(
        ["git", "-C", str(root), "ls-files", "-z", "--cached", "--others"]
        + ["--exclude-standard"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [f for f in listed.split("\0") if f and (root / f).is_file()]


def _clean_env(venv: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")
    }
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    # repo2docker's names for the environment the kernel runs in.
    env["KERNEL_PYTHON_PREFIX"] = env["NB_PYTHON_PREFIX"] = str(venv)
    return env


def _run(cmd, cwd, env, what):
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, (
        f"{what} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    )
    return result.stdout


def _install_requirements(python: Path, requirements: Path) -> list[str]:
    """The command that installs the lock into ``python``'s environment.

    repo2docker runs ``pip install -r requirements.txt``; the installer is not what
    this test checks (the lock pins every version, so pip and uv install the same
    packages), and uv does it in seconds from its cache instead of a minute of
    downloads. uv is pinned in the lock, so it is next to this interpreter.
    """
    lock = ["-r", str(requirements)]
    uv = Path(sys.executable).with_name("uv")
    if uv.is_file():
        # No byte-compiling up front (uv's default, as pip's --no-compile): Python
        # writes the .pyc files on first import.
        return [str(uv), "pip", "install", "-q", "--python", str(python), *lock]
    return [str(python), "-m", "pip", "install", "-q", "--no-compile", *lock]


def _kernel_import(python: Path, chapters: Path, env) -> dict:
    out = _run(
        [str(python), "-c", KERNEL_CHECK, str(chapters)], chapters, env, "kernel"
    )
    return json.loads(out.strip().splitlines()[-1])


def test_runtime_txt_names_a_python_the_package_accepts():
    version = runtime_python(repo2docker_config_dir(ROOT))
    assert version is not None, "runtime.txt selects Binder's Python"
    pyproject = (ROOT / "pyproject.toml").read_text()
    requires = re.search(r'^requires-python = ">=(\d+)\.(\d+)"$', pyproject, re.M)
    assert requires, "pyproject.toml states the lowest Python it supports"
    low = (int(requires[1]), int(requires[2]))
    assert version >= low
    assert (ROOT / ".python-version").read_text().strip() == "%d.%d" % version


def test_postbuild_is_a_strict_bash_script():
    post_build = repo2docker_config_dir(ROOT) / "postBuild"
    text = post_build.read_text()
    assert text.startswith("#!/bin/bash\n")
    assert "set -euo pipefail" in text  # repo2docker does not stop on errors otherwise


def test_a_kernel_in_chapters_imports_cnnbook_after_repo2docker_steps(record_property):
    config_dir = repo2docker_config_dir(ROOT)
    version = runtime_python(config_dir)
    if version is not None and version != sys.version_info[:2]:
        pytest.skip(f"runtime.txt asks for Python {version}, this is {sys.version}")
    times = {}
    with tempfile.TemporaryDirectory(prefix="cnnbook-binder-") as tmp:
        repo, venv = Path(tmp) / "repo", Path(tmp) / "venv"
        for name in _repository_files(ROOT):
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, repo / name)
        config = repo / config_dir.relative_to(ROOT)
        chapters = repo / "chapters"
        python = venv / "bin" / "python"

        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        env = _clean_env(venv)
        requirements = config / "requirements.txt"
        assert requirements.exists(), "repo2docker installs requirements.txt"
        _run(_install_requirements(python, requirements), repo, env, "install")
        times["install requirements.txt"] = time.perf_counter() - start

        start = time.perf_counter()
        before = _kernel_import(python, chapters, env)
        assert before["status"] == "error"
        assert before["errors"] == ["ModuleNotFoundError"], before
        times["kernel, before postBuild"] = time.perf_counter() - start

        start = time.perf_counter()
        post_build = config / "postBuild"
        assert post_build.exists()
        post_build.chmod(0o755)  # repo2docker: chmod +x, then run it from the root
        _run([f"./{post_build.relative_to(repo)}"], repo, env, "postBuild")
        times["postBuild"] = time.perf_counter() - start

        start = time.perf_counter()
        after = _kernel_import(python, chapters, env)
        assert after["status"] == "ok", after
        cwd, module = after["text"].split()
        assert Path(cwd) == chapters
        assert Path(module).resolve() == (repo / "cnnbook" / "__init__.py").resolve()
        times["kernel, after postBuild"] = time.perf_counter() - start
    # No timed assertion: the stage times are for the CI log (tests/conftest.py
    # prints them in pytest's summary).
    record_property(
        "stage times", ", ".join(f"{k} {v:.0f} s" for k, v in times.items())
    )
