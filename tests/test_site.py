"""The built site, checked like a reader would: open every page in headless Chromium.

Every page must load; math must be typeset by the bundled (offline) MathJax, with no raw
``$$`` or ``\\(`` left in the visible text; every image and every local link must
resolve.

Every page is read through the DevTools protocol (``--remote-debugging-pipe``,
standard library only) by one Chromium for all pages, at 1400 px and at a 400-px phone
width, each width a fresh load as a reader's browser does it. The 1400-px load gives
the rendered DOM (after MathJax has finished) for the checks above, and both loads are
measured for what issue 13 asks:

* no code or output block wider than its container at 1400 px (folded cells opened);
* no page wider than a 400-px screen, and nothing clipped there (display math must
  scroll inside its own block);
* no console errors (exceptions, ``console.error``, failed loads);
* one search box;
* a caption and descriptive (non-path) alt text on every figure.

Each check lists every offender (page, element, width), not just the first.

The HTML in ``_build/html`` is reused when it is newer than every source; otherwise the
book is built first (strictly, as CI does). ``CNNBOOK_SITE_HTML=<dir>`` checks a site
already built elsewhere instead (``jupyter-book build . --path-output <out>`` puts it in
``<out>/_build/html``). ``python tests/test_site.py [<html dir>]`` prints the offender
counts of every check. Skips with a reason only where Chromium is not installed.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

ROOT = Path(__file__).resolve().parent.parent
HTML = ROOT / "_build" / "html"
SITE_ENV = "CNNBOOK_SITE_HTML"
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
    files = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                files.append(entry["file"])
            walk(entry.get("sections"))

    walk(toc.get("chapters"))
    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    return [f + ".html" for f in files]


# Headless, offline and quiet: no GPU, no QUIC, no background or update traffic.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def site() -> Path:
    if os.environ.get(SITE_ENV):
        html = Path(os.environ[SITE_ENV]).resolve()
        assert (html / "index.html").is_file(), f"{SITE_ENV}={html}: no built site"
        return html
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


class _PageParser(HTMLParser):
    """Collects links, images, element ids, MathJax output and the visible text."""

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
def test_page_loads_with_typeset_math_and_resolving_links(site, readings, page_name):
    page = site / page_name
    assert page.exists(), f"{page_name} was not built"
    static = page.read_text()
    # The DOM Chromium rendered at 1400 px, after MathJax finished typesetting.
    dom = _parse(readings[page_name]["dom"])

    assert "bd-article" in static and dom.text, f"{page_name} did not render an article"

    expected_math = static.count('class="math notranslate nohighlight"')
    assert dom.mathjax >= expected_math, (
        f"{page_name}: {expected_math} math elements but only {dom.mathjax} "
        "typeset by MathJax"
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


# ----------------------------------------------------------------------------------
# Reading every page through the DevTools protocol (issue 13)
# ----------------------------------------------------------------------------------

WIDE, PHONE = 1400, 400  # viewport widths, CSS px


class _DevTools:
    """Headless Chromium driven over ``--remote-debugging-pipe`` (fds 3 and 4)."""

    def __init__(self, timeout: float = 60.0):
        self.timeout = timeout
        self._profile = tempfile.TemporaryDirectory()
        to_chrome_r, self._w = os.pipe()
        self._r, from_chrome_w = os.pipe()

        def child_fds():  # runs in the child: its fd 3 reads commands, fd 4 answers
            a, b = os.dup(to_chrome_r), os.dup(from_chrome_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self._proc = subprocess.Popen(
            [
                CHROMIUM,
                *CHROMIUM_FLAGS,
                "--hide-scrollbars",
                "--remote-debugging-pipe",
                f"--user-data-dir={self._profile.name}",
                "about:blank",
            ],
            preexec_fn=child_fds,
            close_fds=False,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []

    def close(self):
        try:
            self.send("Browser.close")
        except Exception:
            pass
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        for fd in (self._r, self._w):
            try:
                os.close(fd)
            except OSError:
                pass
        self._profile.cleanup()

    def _message(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._r], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._r, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self._buffer += chunk
        raw, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(raw)

    def send(self, method: str, params: dict | None = None, session: str | None = None):
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._w, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)

    def wait_for(self, method: str, session: str):
        deadline = time.monotonic() + self.timeout
        for i, event in enumerate(self.events):
            if event.get("method") == method and event.get("sessionId") == session:
                return self.events.pop(i)
        while True:
            event = self._message(deadline)
            if event.get("method") == method and event.get("sessionId") == session:
                return event
            if "method" in event:
                self.events.append(event)

    def evaluate(self, session: str, expression: str):
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": True, "returnByValue": True},
            session,
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def read(
        self, url: str, width: int, script: str, dom: bool = False
    ) -> tuple[dict, list[str], str | None]:
        """Load ``url`` at ``width`` px, wait for MathJax, run ``script``.

        Returns what the script returns, the page's console errors, and (with
        ``dom``) the rendered DOM as HTML, taken before the script runs.
        """
        html = None
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send(
            "Target.attachToTarget", {"targetId": target, "flatten": True}
        )["sessionId"]
        try:
            for domain in ("Page", "Runtime", "Log"):
                self.send(f"{domain}.enable", {}, session)
            self.send(
                "Emulation.setDeviceMetricsOverride",
                {
                    "width": width,
                    "height": 900,
                    "deviceScaleFactor": 1,
                    "mobile": width < 800,
                },
                session,
            )
            self.send("Page.navigate", {"url": url}, session)
            self.wait_for("Page.loadEventFired", session)
            self.evaluate(session, _SETTLE)
            if dom:
                html = self.evaluate(session, "document.documentElement.outerHTML")
            value = self.evaluate(session, f"({script})({width})")
            errors = self._console_errors(session)
        finally:
            self.send("Target.closeTarget", {"targetId": target})
        return value, errors, html

    def _console_errors(self, session: str) -> list[str]:
        errors, keep = [], []
        for event in self.events:
            if event.get("sessionId") != session:
                keep.append(event)
                continue
            method, params = event["method"], event["params"]
            if method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                text = details.get("exception", {}).get("description") or details.get(
                    "text", ""
                )
                errors.append(f"exception: {text.splitlines()[0] if text else ''}")
            elif method == "Runtime.consoleAPICalled" and params["type"] in (
                "error",
                "assert",
            ):
                args = " ".join(
                    str(a.get("value", a.get("description", "")))
                    for a in params["args"]
                )
                errors.append(f"console.{params['type']}: {args}")
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                entry = params["entry"]
                errors.append(
                    f"{entry['source']}: {entry['text']} {entry.get('url', '')}"
                )
        self.events = keep
        return errors


# Wait for the bundled MathJax to finish typesetting, then for layout to settle.
_SETTLE = """(async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
  }
  await document.fonts.ready;
  await new Promise(r => requestAnimationFrame(() => setTimeout(r, 100)));
  return true;
})()"""

# Everything measured on one page at one width. Returns plain JSON.
_MEASURE = r"""(width) => {
  const article = document.querySelector("article.bd-article") || document.body;
  const px = (x) => Math.round(x);
  const tagOf = (el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
    [...el.classList].slice(0, 2).map((c) => "." + c).join("");
  const describe = (el) => {
    const name = tagOf(el);
    const cell = el.closest(".cell, section[id], div.section");
    const where = cell ? (cell.id || (cell.closest("section[id]") || {}).id || "") : "";
    const text = (el.innerText || el.getAttribute("alt") || "").trim()
      .split("\n")[0].slice(0, 60);
    return (where ? "[" + where + "] " : "") + name + (text ? ' "' + text + '"' : "");
  };
  const visible = (el) => {
    const r = el.getBoundingClientRect();
    const cs = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && cs.visibility !== "hidden";
  };
  const out = { height: document.documentElement.scrollHeight };

  // One search box: every visible search field or search button.
  const searchSel = 'input[type="search"], input[name="q"], .search-button-field, ' +
    'button.search-button, .search-button__button';
  out.search = [...new Set(document.querySelectorAll(searchSel))]
    .filter(visible)
    .filter((el, _, all) => !all.some((o) => o !== el && o.contains(el)))
    .map((el) => describe(el.closest(".navbar-item, .sidebar-primary-item, div") || el)
      + " at x=" + px(el.getBoundingClientRect().left));

  // Figures: every image or inline SVG the article shows needs a caption and alt.
  const pathLike = /^[^\s]*[\/\\][^\s]*$|^[^\s]+\.(png|jpe?g|gif|svg|webp)$/i;
  out.figures = [];
  for (const g of article.querySelectorAll("img")) {
    const figure = g.closest("figure");
    const caption = figure && figure.querySelector("figcaption");
    const alt = g.getAttribute("alt") || "";
    const problems = [];
    if (!caption || !caption.textContent.trim()) problems.push("no caption");
    if (!alt.trim()) problems.push("no alt text");
    else if (pathLike.test(alt.trim())) problems.push("alt is a path");
    if (problems.length) {
      out.figures.push(describe(g) + ": " + problems.join(", ") +
        " (" + (g.getAttribute("src") || "").split("/").pop() + ")");
    }
  }

  // Open folded cells (hide-input, hide-output): a reader can unfold them.
  for (const d of document.querySelectorAll("article details")) d.open = true;

  if (width >= 800) {
    // Code and output blocks wider than their container (they scroll sideways).
    const blockSel = "pre, .cell_output .output, .cell_output table, " +
      ".pst-scrollable-table-container, .table-wrapper";
    const aw = article.getBoundingClientRect();
    const over = [];
    for (const el of article.querySelectorAll(blockSel)) {
      const r = el.getBoundingClientRect();
      if (r.width === 0) continue;
      const scrolls = el.scrollWidth > el.clientWidth + 1;
      const sticksOut = r.right > aw.right + 1;
      if (scrolls || sticksOut) {
        const wide = px(Math.max(el.scrollWidth, r.width));
        const room = px(scrolls ? el.clientWidth : aw.width);
        over.push({ el, text: describe(el) + ": " + wide + " px in " + room + " px" });
      }
    }
    out.blocks = over.filter((o) => !over.some((p) => p !== o && o.el.contains(p.el)))
      .map((o) => o.text);
  } else {
    // A phone: the page must not be wider than the screen, and nothing may be cut off
    // except inside a block that scrolls on its own.
    const vw = document.documentElement.clientWidth;
    out.page_width = document.documentElement.scrollWidth;
    out.viewport = vw;
    const offenders = [];
    for (const el of document.body.querySelectorAll("*")) {
      const r = el.getBoundingClientRect();
      if (r.width === 0 || r.right <= vw + 1) continue;
      if (el.closest("mjx-assistive-mml")) continue;  // for screen readers only
      // Fixed boxes and closed dialogs never widen the page.
      let fixed = false;
      for (let a = el; a && a !== document.body; a = a.parentElement) {
        const cs = getComputedStyle(a);
        if (cs.position === "fixed" || cs.display === "none" ||
            a.tagName === "DIALOG") {
          fixed = true;
          break;
        }
      }
      if (fixed) continue;
      // The nearest ancestor that clips or scrolls and fits the screen decides.
      let kind = "wider than the screen";
      for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
        const cs = getComputedStyle(a);
        if (cs.overflowX === "visible" || a.getBoundingClientRect().right > vw + 1) {
          continue;
        }
        const scrolls = cs.overflowX === "auto" || cs.overflowX === "scroll";
        kind = scrolls ? null : "cut off by " + tagOf(a);
        break;
      }
      if (kind) offenders.push({ el, kind });
    }
    const outer = offenders.filter((o) => !offenders.some(
      (p) => p !== o && p.el.contains(o.el) && p.kind === o.kind));
    out.phone = outer.map((o) => describe(o.el) + ": right edge at " +
      px(o.el.getBoundingClientRect().right) + " px of " + vw + " (" + o.kind + ")");
    // Display math clipped inside its own box (overflow hidden, nothing to scroll).
    const mathSel = 'mjx-container[display="true"], div.math';
    for (const m of article.querySelectorAll(mathSel)) {
      const cs = getComputedStyle(m);
      if (m.scrollWidth > m.clientWidth + 1 &&
          !(cs.overflowX === "auto" || cs.overflowX === "scroll")) {
        out.phone.push(describe(m) + ": " + m.scrollWidth + " px clipped to " +
          m.clientWidth + " px (display math must scroll)");
      }
    }
  }
  return out;
}"""


@pytest.fixture(scope="module")
def readings(site) -> dict[str, dict]:
    """Every page of the table of contents, read at 1400 px and at 400 px."""
    return _read_site(site)


def _read_site(site: Path) -> dict[str, dict]:
    browser = _DevTools()
    pages = {}
    try:
        for name in _toc_pages():
            if not (site / name).is_file():
                continue  # test_page_loads_... reports it
            url = (site / name).as_uri()
            wide, wide_errors, dom = browser.read(url, WIDE, _MEASURE, dom=True)
            phone, phone_errors, _ = browser.read(url, PHONE, _MEASURE)
            pages[name] = {
                "wide": wide,
                "phone": phone,
                "errors": sorted(set(wide_errors + phone_errors)),
                "dom": dom,
            }
    finally:
        browser.close()
    return pages


def _report(what: str, offenders: dict[str, list[str]]) -> str:
    n = sum(len(v) for v in offenders.values())
    lines = [f"{n} {what} on {len(offenders)} page(s):"]
    for page, items in offenders.items():
        lines += [f"  {page}: {item}" for item in items]
    return "\n".join(lines)


def _blocks(readings):
    return {p: r["wide"]["blocks"] for p, r in readings.items() if r["wide"]["blocks"]}


def _phone(readings):
    out = {}
    for page, r in readings.items():
        items = list(r["phone"]["phone"])
        if r["phone"]["page_width"] > r["phone"]["viewport"] + 1 and not items:
            items.append(f"page is {r['phone']['page_width']} px wide")
        if items:
            out[page] = items
    return out


def _errors(readings):
    return {p: r["errors"] for p, r in readings.items() if r["errors"]}


def _search(readings):
    out = {}
    for page, r in readings.items():
        wide, phone = r["wide"]["search"], r["phone"]["search"]
        if len(wide) != 1 or len(phone) > 1:
            out[page] = [f"{len(wide)} at {WIDE} px: {wide}"] + (
                [f"{len(phone)} at {PHONE} px: {phone}"] if len(phone) > 1 else []
            )
    return out


def _figures(readings):
    return {
        p: r["wide"]["figures"] for p, r in readings.items() if r["wide"]["figures"]
    }


CHECKS = {
    "blocks": ("code or output blocks wider than their container at 1400 px", _blocks),
    "phone": ("elements wider than a 400-px screen or cut off", _phone),
    "console": ("console errors", _errors),
    "search": ("pages without exactly one search box", _search),
    "figures": ("figures without a caption or descriptive alt text", _figures),
}


def _check(readings, name):
    what, collect = CHECKS[name]
    offenders = collect(readings)
    assert not offenders, _report(what, offenders)


def test_no_block_wider_than_its_container(readings):
    _check(readings, "blocks")


def test_no_page_wider_than_a_phone(readings):
    _check(readings, "phone")


def test_no_console_errors(readings):
    _check(readings, "console")


def test_one_search_box(readings):
    _check(readings, "search")


def test_every_figure_has_a_caption_and_alt_text(readings):
    _check(readings, "figures")


if __name__ == "__main__":
    if CHROMIUM is None:
        sys.exit("Chromium is not installed")
    html = Path(sys.argv[1] if len(sys.argv) > 1 else os.environ.get(SITE_ENV, HTML))
    measured = _read_site(html.resolve())
    for what, collect in CHECKS.values():
        offenders = collect(measured)
        print(_report(what, offenders) if offenders else f"0 {what}")
    heights = {p: r["wide"]["height"] for p, r in measured.items()}
    print(f"total page height at {WIDE} px: {sum(heights.values())} px")
    for page, height in heights.items():
        print(f"  {page}: {height} px")


def test_introduction_lists_the_chapters_by_their_own_titles(site):
    """The chapter list links every chapter, with the chapter's own ``#`` title."""
    import re

    intro = (site / _toc_pages()[0]).read_text()
    listed = dict(
        re.findall(
            r'<a class="reference internal" href="([^"#]+\.html)">'
            r'<span class="doc">([^<]+)</span></a>',
            intro,
        )
    )
    for page in _toc_pages()[1:]:
        name = Path(page).name
        assert name in listed, f"the introduction does not link {page}"
        title = re.search(
            r"<h1>(.*?)<a class=\"headerlink\"", (site / page).read_text()
        )
        assert title, f"{page}: no title"
        own = re.sub(r"<[^>]+>", "", title.group(1)).strip()
        assert listed[name] == own, f"{page} is listed as {listed[name]!r}, not {own!r}"
