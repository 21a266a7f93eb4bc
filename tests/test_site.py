"""The built site, checked like a reader would: open every page in headless Chromium.

Every page must load; math must be typeset by the bundled (offline) MathJax, with no raw ``$$`` or
``\\(`` left in the visible text; every image and every local link must resolve.

The HTML in ``_build/html`` is reused when it is newer than every source; otherwise the book is
built first (strictly, as CI does). Skips with a reason only where Chromium is not installed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

ROOT = Path(__file__).resolve().parent.parent
HTML = ROOT / "_build" / "html"
CHROMIUM = next(
    (
        shutil.which(n)
        for n in ("chromium", "chromium-browser", "google-chrome")
        if shutil.which(n)
    ),
    None,
)

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Chromium is not installed (Debian: apt-get install chromium)",
)


def _sources():
    yield from (ROOT / "chapters").glob("*.ipynb")
    yield from (ROOT / "chapters").glob("*.md")
    yield ROOT / "_config.yml"
    yield ROOT / "_toc.yml"


def _toc_pages() -> list[str]:
    import yaml

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]] + [entry["file"] for entry in toc.get("chapters", [])]
    return [f + ".html" for f in files]


@pytest.fixture(scope="module")
def site() -> Path:
    index = HTML / "index.html"
    newest_source = max(p.stat().st_mtime for p in _sources())
    pages = [HTML / p for p in _toc_pages()]
    if not index.exists() or any(
        not p.exists() or p.stat().st_mtime < newest_source for p in pages
    ):
        jb = Path(sys.executable).with_name("jupyter-book")
        result = subprocess.run(
            [str(jb), "build", str(ROOT), "-W", "-n", "--keep-going"],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return HTML


def _dump_dom(page: Path) -> str:
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                "--virtual-time-budget=15000",
                "--dump-dom",
                page.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 0, (
        f"{page.name}: Chromium exited with {result.returncode}: {result.stderr[-2000:]}"
    )
    return result.stdout


class _PageParser(HTMLParser):
    """Collects links, images, element ids, MathJax output and the visible prose text."""

    SKIP = {"script", "style", "pre", "code", "textarea", "mjx-container", "noscript"}

    def __init__(self):
        super().__init__()
        self.links, self.images, self.ids = [], [], set()
        self.mathjax = 0
        self.text: list[str] = []
        self._skip_depth = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        if tag == "img" and attrs.get("src"):
            self.images.append(attrs["src"])
        if tag == "mjx-container":
            self.mathjax += 1
        if tag in self.SKIP or self._skip_depth:
            self._skip_depth += 1

    def handle_endtag(self, tag):
        if self._skip_depth:
            self._skip_depth -= 1

    def handle_data(self, data):
        if not self._skip_depth:
            self.text.append(data)


def _parse(html: str) -> _PageParser:
    parser = _PageParser()
    parser.feed(html)
    return parser


def _local_target(page: Path, url: str) -> tuple[Path, str] | None:
    parsed = urlparse(url)
    if parsed.scheme in ("http", "https", "mailto", "data", "javascript"):
        return None
    if parsed.scheme == "file":
        return Path(unquote(parsed.path)), parsed.fragment
    target = page if not parsed.path else (page.parent / unquote(parsed.path)).resolve()
    return target, parsed.fragment


@pytest.mark.parametrize("page_name", _toc_pages())
def test_page_loads_with_typeset_math_and_resolving_links(site, page_name):
    page = site / page_name
    assert page.exists(), f"{page_name} was not built"
    static = page.read_text()
    dom = _parse(_dump_dom(page))

    assert "bd-article" in static and dom.text, f"{page_name} did not render an article"

    expected_math = static.count('class="math notranslate nohighlight"')
    assert dom.mathjax >= expected_math, (
        f"{page_name}: {expected_math} math elements but only {dom.mathjax} typeset by MathJax"
    )
    visible = "".join(dom.text)
    for raw in ("$$", "\\(", "\\["):
        assert raw not in visible, f"{page_name}: raw TeX {raw!r} left in the page text"

    for src in dom.images:
        target = _local_target(page, src)
        if target is not None:
            assert target[0].is_file(), f"{page_name}: image {src} does not resolve"

    for href in dom.links:
        target = _local_target(page, href)
        if target is None:
            continue
        path, fragment = target
        if path.is_dir():
            path = path / "index.html"
        assert path.is_file(), f"{page_name}: link {href} does not resolve"
        if fragment and path.suffix == ".html" and path != page:
            assert f'id="{fragment}"' in path.read_text(), (
                f"{page_name}: link {href}: no such anchor"
            )
        elif fragment and path == page:
            assert fragment in dom.ids, f"{page_name}: link #{fragment}: no such anchor"


def test_math_is_served_offline(site):
    """MathJax must come from the built site itself, never from a CDN."""
    index = (site / "index.html").read_text()
    assert "cdn.jsdelivr.net/npm/mathjax" not in index
    assert list((site / "_static").rglob("tex-chtml*.js")) or list(
        (site / "_static").rglob("tex-*.js")
    ), "no bundled MathJax under _static"
