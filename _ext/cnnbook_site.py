"""Site polish for the cnnbook book (issue 13): one search box, no duplicated scripts.

Two fixes for the pinned toolchain (jupyter-book 1.0.4.post1, Sphinx 7.4,
sphinx-book-theme 1.3, pydata-sphinx-theme 0.17):

* pydata-sphinx-theme 0.17 puts a search field in a top navbar (``navbar_persistent``)
  unless the user sets that option, and sphinx-book-theme already has one in its
  sidebar: two search boxes on every page (executablebooks/sphinx-book-theme#986).
  Setting ``navbar_persistent`` in ``html_theme_options`` from ``_config.yml`` would
  replace jupyter-book's own theme options (repository, launch buttons), so the
  option is set here, before the theme reads it.
* Sphinx 7.4 emits an inline script that an extension adds after the builder starts
  twice (sphinx-doc/sphinx#13402, fixed in Sphinx 8.2, which jupyter-book 1 does not
  allow): sphinx-thebe's ``const THEBE_JS_URL`` then throws a SyntaxError on every
  page. Each page's script list is de-duplicated here.

And one for the API page (``chapters/api.md``): a section title inside a module
docstring (``Conventions`` / ``-----------``) would open a new section in the middle of
the page, and two modules with the same title collide (duplicate target). They are
shown as rubrics instead.
"""

from __future__ import annotations

import re


def _one_search_box(app):
    options = getattr(app.builder, "theme_options", None)
    if options is None:
        options = app.config.html_theme_options
    options.setdefault("navbar_persistent", [])


def _dedupe_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not isinstance(scripts, list):
        return
    seen, unique = set(), []
    for js in scripts:
        filename = getattr(js, "filename", js) or ""
        attributes = getattr(js, "attributes", {})
        key = (
            filename,
            getattr(js, "priority", 500),
            tuple(sorted(attributes.items())),
        )
        if key not in seen:
            seen.add(key)
            unique.append(js)
    scripts[:] = unique


_UNDERLINE = re.compile(r"^([-=~^\"'`#*+])\1{2,}\s*$")


def _titles_as_rubrics(app, what, name, obj, options, lines):
    for i in range(len(lines) - 1, 0, -1):
        title, underline = lines[i - 1], lines[i]
        if (
            title.strip()
            and _UNDERLINE.match(underline)
            and len(underline.strip()) >= len(title.strip())
        ):
            lines[i - 1 : i + 1] = [f".. rubric:: {title.strip()}", ""]


def setup(app):
    # Before pydata-sphinx-theme's own builder-inited handler (priority 500).
    app.connect("builder-inited", _one_search_box, priority=100)
    # After every extension has added its page scripts.
    app.connect("html-page-context", _dedupe_scripts, priority=999)
    app.connect("autodoc-process-docstring", _titles_as_rubrics)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
