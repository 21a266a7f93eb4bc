"""Repository and launch (Binder) buttons from the checkout's real ``origin`` remote.

A button must never point at a guessed or foreign repository (issue 12). At build time
this Sphinx extension reads ``git remote get-url origin`` in the book's folder:

- a GitHub remote, in any of git's spellings (``git@github.com:owner/name.git``,
  ``ssh://git@github.com/owner/name``, ``https://github.com/owner/name.git``, ...),
  becomes ``https://github.com/owner/name``: the repository button links there and the
  launch buttons configured in ``_config.yml`` (``launch_buttons:``) open it on Binder;
- anything else (no remote, no git, a local path or another host, which Binder and the
  theme's launch links do not support) shows neither button.

It sets sphinx-book-theme's options on ``config-inited``, before the theme reads them,
so ``jupyter-book build .`` needs no extra step. Jupyter Book 1 loads it through
``sphinx: local_extensions: {repository_buttons: _ext}`` in ``_config.yml``.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

from sphinx.util import logging

__all__ = ["github_url", "origin_url", "button_options", "setup"]

LOGGER = logging.getLogger(__name__)

_OWNER = r"(?P<owner>[A-Za-z0-9](?:[A-Za-z0-9-]{0,38}))"
_NAME = r"(?P<name>[A-Za-z0-9._-]+?)"
_TAIL = r"(?:\.git)?/*"
_GITHUB = [
    # https://github.com/o/n(.git), http://, git://, ssh://git@github.com(:22)/o/n,
    # git+ssh://, with optional credentials (which never reach the page).
    re.compile(
        r"^(?:git\+)?(?:https?|git|ssh)://(?:[^@/]+@)?(?:www\.|ssh\.)?github\.com"
        rf"(?::\d+)?/{_OWNER}/{_NAME}{_TAIL}$",
        re.IGNORECASE,
    ),
    # scp-like: git@github.com:o/n(.git)
    re.compile(rf"^(?:[^@/:]+@)?github\.com:/?{_OWNER}/{_NAME}{_TAIL}$", re.IGNORECASE),
]

# The launch_buttons keys that make sphinx-book-theme draw a launch button.
_LAUNCHERS = (
    "binderhub_url",
    "jupyterhub_url",
    "colab_url",
    "deepnote_url",
    "jupyterlite_url",
)
_REPOSITORY_BUTTONS = (
    "use_repository_button",
    "use_source_button",
    "use_edit_page_button",
    "use_issues_button",
)


def github_url(remote: str | None) -> str | None:
    """``https://github.com/owner/name`` for a GitHub remote URL, else ``None``."""
    if not remote:
        return None
    remote = remote.strip()
    for pattern in _GITHUB:
        match = pattern.match(remote)
        if match and match["name"] not in (".", ".."):
            return f"https://github.com/{match['owner']}/{match['name']}"
    return None


def origin_url(folder: str | Path) -> str | None:
    """``git remote get-url origin`` run in ``folder``; ``None`` when there is none."""
    try:
        result = subprocess.run(
            ["git", "-C", str(folder), "remote", "get-url", "origin"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):  # no git, or it hung
        return None
    if result.returncode != 0:
        return None
    return result.stdout.strip() or None


def button_options(theme_options: dict[str, Any], repo_url: str | None) -> dict:
    """sphinx-book-theme options with the buttons set for ``repo_url`` (or none).

    With a URL: ``repository_url`` is it, the repository button is on, and the
    launch buttons are those configured. Without: no repository URL (so nothing guessed,
    such as Jupyter Book's default, survives), every repository button off, and every
    launch provider removed. Returns a new dict; the input is not changed.
    """
    options = dict(theme_options)
    launch = dict(options.get("launch_buttons") or {})
    if repo_url:
        options["repository_url"] = repo_url
        options["use_repository_button"] = True
    else:
        options["repository_url"] = ""
        for key in _REPOSITORY_BUTTONS:
            options[key] = False
        for key in _LAUNCHERS:
            launch.pop(key, None)
        launch["thebe"] = False
    options["launch_buttons"] = launch
    return options


def _set_buttons(app, config) -> None:
    remote = origin_url(app.srcdir)
    url = github_url(remote)
    config.html_theme_options = button_options(config.html_theme_options or {}, url)
    if url:
        LOGGER.info(f"repository and launch buttons: {url} (from origin)")
    else:
        why = "no origin remote" if remote is None else "origin is not on GitHub"
        LOGGER.info(f"no repository or launch buttons: {why}")


def setup(app) -> dict:
    app.connect("config-inited", _set_buttons)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
