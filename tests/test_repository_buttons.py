"""No button to nowhere: repository and Binder buttons come from the real ``origin``.

``_ext/repository_buttons.py`` (a local Sphinx extension) reads
``git remote get-url origin`` at build time. Tested here: the URL normalization, the
theme options it computes, the book's own configuration, and two tiny Sphinx builds
with sphinx-book-theme (a GitHub origin, and none) whose HTML must show exactly the
right links.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "_ext"))
import repository_buttons as rb  # noqa: E402

sys.path.remove(str(ROOT / "_ext"))

GITHUB_FORMS = [
    "https://github.com/owner/name",
    "https://github.com/owner/name.git",
    "https://github.com/owner/name/",
    "http://github.com/owner/name.git",
    "https://www.github.com/owner/name",
    "https://user:secret@github.com/owner/name.git",
    "git@github.com:owner/name.git",
    "git@github.com:owner/name",
    "github.com:owner/name.git",
    "ssh://git@github.com/owner/name.git",
    "ssh://git@github.com:22/owner/name",
    "ssh://git@ssh.github.com:443/owner/name.git",
    "git+ssh://git@github.com/owner/name.git",
    "git://github.com/owner/name.git",
    "  https://GitHub.com/owner/name.git\n",
]

NOT_GITHUB = [
    None,
    "",
    "/work/main",
    "../cnnbook",
    "file:///work/main",
    "https://gitlab.com/owner/name.git",
    "git@gitlab.com:owner/name.git",
    "https://github.example.com/owner/name.git",
    "https://github.com.evil.example/owner/name",
    "https://notgithub.com/owner/name",
    "https://github.com/owner",
    "https://github.com/owner/name/tree/main",
    "https://github.com/owner/..",
]


@pytest.mark.parametrize("remote", GITHUB_FORMS)
def test_github_remotes_normalize_to_https(remote):
    assert rb.github_url(remote) == "https://github.com/owner/name"


def test_repository_names_with_dots_and_dashes_survive():
    assert (
        rb.github_url("git@github.com:my-org/my.repo-2.git")
        == "https://github.com/my-org/my.repo-2"
    )


@pytest.mark.parametrize("remote", NOT_GITHUB)
def test_other_remotes_give_no_url(remote):
    assert rb.github_url(remote) is None


CONFIGURED = {
    # What Jupyter Book passes when repository.url is left out: its own repository.
    "repository_url": "https://github.com/executablebooks/jupyter-book",
    "repository_branch": "main",
    "use_repository_button": False,
    "use_issues_button": True,
    "launch_buttons": {
        "binderhub_url": "https://mybinder.org",
        "jupyterhub_url": "https://hub.example",
        "thebe": True,
        "notebook_interface": "jupyterlab",
    },
}


def test_options_with_a_github_origin_point_there():
    options = rb.button_options(CONFIGURED, "https://github.com/owner/name")
    assert options["repository_url"] == "https://github.com/owner/name"
    assert options["use_repository_button"] is True
    assert options["launch_buttons"] == CONFIGURED["launch_buttons"]
    assert options["repository_branch"] == "main"


def test_options_without_origin_show_no_button_and_keep_no_guess():
    options = rb.button_options(CONFIGURED, None)
    assert options["repository_url"] == ""
    for key in rb._REPOSITORY_BUTTONS:
        assert options[key] is False
    launch = options["launch_buttons"]
    assert not any(launch.get(key) for key in rb._LAUNCHERS)
    assert launch["thebe"] is False
    assert launch["notebook_interface"] == "jupyterlab"
    assert CONFIGURED["launch_buttons"]["binderhub_url"], "input left unchanged"


def _git_repo(folder: Path, origin: str | None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", str(folder)], check=True)
    if origin:
        subprocess.run(
            ["git", "-C", str(folder), "remote", "add", "origin", origin], check=True
        )
    return folder


def test_origin_url_reads_the_remote_and_tolerates_none(tmp_path):
    with_origin = _git_repo(tmp_path / "a", "git@github.com:owner/name.git")
    assert rb.origin_url(with_origin) == "git@github.com:owner/name.git"
    assert rb.origin_url(_git_repo(tmp_path / "b", None)) is None
    (tmp_path / "c").mkdir()
    assert rb.origin_url(tmp_path / "c") is None  # not a repository at all


def test_the_book_loads_the_extension_and_guesses_no_url():
    """The real _config.yml, as Jupyter Book turns it into Sphinx configuration."""
    from jupyter_book.config import get_final_config

    config, _ = get_final_config(
        user_yaml=ROOT / "_config.yml",
        cli_config={"latex_individualpages": False},
        sourcedir=ROOT,
        validate=False,
    )
    assert "repository_buttons" in config["extensions"]
    assert "cnnbook/cnnbook" not in (ROOT / "_config.yml").read_text()
    theme = config["html_theme_options"]
    with_origin = rb.button_options(theme, "https://github.com/owner/name")
    assert with_origin["launch_buttons"]["binderhub_url"] == "https://mybinder.org"
    assert with_origin["launch_buttons"]["notebook_interface"] == "jupyterlab"
    without = rb.button_options(theme, None)
    assert without["repository_url"] == ""
    assert not any(without["launch_buttons"].get(k) for k in rb._LAUNCHERS)


NOTEBOOK = {
    "cells": [
        {"cell_type": "markdown", "metadata": {}, "source": ["# A page\n"]},
        {
            "cell_type": "code",
            "execution_count": 1,
            "metadata": {},
            "outputs": [],
            "source": ["1 + 1"],
        },
    ],
    "metadata": {
        "kernelspec": {
            "display_name": "Python 3",
            "language": "python",
            "name": "python3",
        }
    },
    "nbformat": 4,
    "nbformat_minor": 5,
}

# As Jupyter Book passes them without repository.url (its default URL), plus Binder.
BUILD_OPTIONS = {
    "repository_url": "https://github.com/executablebooks/jupyter-book",
    "repository_branch": "main",
    "launch_buttons": {
        "binderhub_url": "https://mybinder.org",
        "notebook_interface": "jupyterlab",
    },
}

CONF = f"""
import sys
sys.path.insert(0, {str(ROOT / "_ext")!r})
project = "tiny"
extensions = ["myst_nb", "repository_buttons"]
html_theme = "sphinx_book_theme"
nb_execution_mode = "off"
exclude_patterns = ["_build"]
html_theme_options = {BUILD_OPTIONS!r}
"""


# Both tiny books in one Python process, one Sphinx application each (sphinx-build's
# own entry point): the second build skips the interpreter start and the imports.
BUILD_ALL = """
import sys
from sphinx.cmd.build import main
status = [main(["-b", "html", "-q", "-W", "-E", src, out])
          for src, out in zip(sys.argv[1::2], sys.argv[2::2])]
sys.exit(max(status))
"""

ORIGINS = {"github": "git@github.com:owner/name.git", "none": None}


@pytest.fixture(scope="module")
def tiny_books(tmp_path_factory) -> dict[str, str]:
    """The index.html of a tiny book per ORIGINS entry, built with -W."""
    args, outs = [], {}
    for name, origin in ORIGINS.items():
        tmp = tmp_path_factory.mktemp(name)
        src = _git_repo(tmp / "book", origin)
        (src / "conf.py").write_text(CONF)
        (src / "index.ipynb").write_text(json.dumps(NOTEBOOK))
        outs[name] = tmp / "html"
        args += [str(src), str(outs[name])]
    result = subprocess.run(
        [sys.executable, "-c", BUILD_ALL, *args], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return {name: (out / "index.html").read_text() for name, out in outs.items()}


def test_tiny_book_with_a_github_origin_links_there(tiny_books):
    html = tiny_books["github"]
    assert 'href="https://github.com/owner/name"' in html
    assert "source-repository-button" in html
    assert (
        "https://mybinder.org/v2/gh/owner/name/main?urlpath=lab/tree/index.ipynb"
    ) in html
    assert "executablebooks/jupyter-book" not in html


def test_tiny_book_without_origin_shows_no_button_to_nowhere(tiny_books):
    html = tiny_books["none"]
    assert "source-repository-button" not in html
    assert "mybinder.org" not in html
    assert "launch-buttons" not in html
    assert "executablebooks/jupyter-book" not in html
