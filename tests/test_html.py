"""The HTML book as a reader gets it: pages, links and search, in a real headless Chromium.

The browser is Chromium from the system's packages (`apt-get install chromium`), driven
through its DevTools protocol; nothing is downloaded. With `CI` set the browser tests
must run; elsewhere they skip, saying how to install it. Link checks need no browser.
"""

import asyncio
import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import book
import pytest

BROWSERS = ["chromium", "chromium-browser", "google-chrome", "chrome"]
INSTALL = "install it with `apt-get install chromium` (Debian/Ubuntu)"


class Links(HTMLParser):
    """ids, links and images of one HTML page."""

    def __init__(self):
        super().__init__()
        self.ids, self.hrefs, self.images = set(), [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "a" and a.get("href"):
            self.hrefs.append(a["href"])
        if tag in ("img", "script") and a.get("src"):
            self.images.append(a["src"])
        if tag == "link" and a.get("href"):
            self.hrefs.append(a["href"])


@pytest.fixture(scope="module")
def site(rendered):
    html = rendered["html"]
    pages = {}
    for path in sorted(html.parent.glob("*.html")):
        parsed = Links()
        parsed.feed(path.read_text(encoding="utf-8"))
        pages[path.name] = parsed
    return html.parent, pages


def test_one_page_per_book_entry(site):
    out, pages = site
    names = [f"{book.page_name(e)}.html" for e in book.entries()]
    assert sorted(pages) == sorted(names)
    for name in names:
        text = (out / name).read_text(encoding="utf-8")
        assert 'name="viewport"' in text, f"{name}: no viewport meta (phones)"
        assert 'id="search"' in text and 'class="sidebar"' in text
        remote = re.search(r'<(script|link|img)[^>]+(src|href)="(https?:)?//', text)
        assert not remote, f"{name}: remote asset {remote.group(0)}"


def test_internal_links_and_images_resolve(site):
    out, pages = site
    broken = []
    for name, page in pages.items():
        for href in page.hrefs:
            if re.match(r"^[a-z]+:", href):
                continue
            target, _, anchor = href.partition("#")
            target = target or name
            if not (out / target).exists():
                broken.append(f"{name}: {href} (no file {target})")
            elif anchor and target in pages and anchor not in pages[target].ids:
                broken.append(f"{name}: {href} (no id {anchor} in {target})")
        for src in page.images:
            if not re.match(r"^[a-z]+:", src) and not (out / src).exists():
                broken.append(f"{name}: image or script {src} missing")
    assert not broken, "\n".join(broken[:30])


def test_previous_and_next_links_follow_the_book(site):
    out, pages = site
    order = [f"{book.page_name(e)}.html" for e in book.entries()]
    for i, name in enumerate(order):
        text = (out / name).read_text(encoding="utf-8")
        nexts = re.findall(r'rel="next" href="([^"]+)"', text)
        assert nexts == ([order[i + 1]] if i + 1 < len(order) else [])
        prevs = re.findall(r'rel="prev" href="([^"]+)"', text)
        assert prevs == ([order[i - 1]] if i else [])


# ---------------------------------------------------------------------------- the browser
def chromium() -> str:
    found = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail(
            f"CI is set, so the browser tests must run, but Chromium is missing: {INSTALL}"
        )
    pytest.skip(f"Chromium not found, browser tests skipped: {INSTALL}")


class DevTools:
    """A headless Chromium and one page of it, over the DevTools protocol (websocket)."""

    def __init__(self, exe: str):
        self.profile = tempfile.mkdtemp(prefix="llmbook-chromium-")
        self.proc = subprocess.Popen(
            [
                exe,
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-extensions",
                "--no-first-run",
                "--no-default-browser-check",
                "--allow-file-access-from-files",
                "--remote-debugging-port=0",
                f"--user-data-dir={self.profile}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.time() + 60
        while not port_file.exists() or not port_file.read_text().strip():
            if time.time() > deadline or self.proc.poll() is not None:
                self.close()
                raise RuntimeError("Chromium did not start (no DevToolsActivePort)")
            time.sleep(0.2)
        port = port_file.read_text().split()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list") as r:
            targets = json.load(r)
        self.ws_url = next(t for t in targets if t["type"] == "page")[
            "webSocketDebuggerUrl"
        ]
        self.next_id = 0
        self.events = []

    async def connect(self):
        from tornado.websocket import websocket_connect

        self.ws = await websocket_connect(self.ws_url, max_message_size=64 << 20)
        for domain in ("Page", "Runtime", "Log"):
            await self.call(f"{domain}.enable")

    async def call(self, method, **params):
        self.next_id += 1
        me = self.next_id
        await self.ws.write_message(
            json.dumps({"id": me, "method": method, "params": params})
        )
        while True:
            msg = json.loads(await asyncio.wait_for(self.ws.read_message(), 60))
            if msg.get("id") == me:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    async def wait_for(self, method, timeout=60):
        deadline = time.time() + timeout
        while True:
            for i, e in enumerate(self.events):
                if e.get("method") == method:
                    return self.events.pop(i)
            msg = await asyncio.wait_for(
                self.ws.read_message(), max(1, deadline - time.time())
            )
            self.events.append(json.loads(msg))

    async def open(self, url):
        """Load a page; returns the errors it reported (console, exceptions, failed loads)."""
        self.events = []
        await self.call("Page.navigate", url=url)
        await self.wait_for("Page.loadEventFired")
        await self.evaluate("new Promise(r => setTimeout(r, 300))")
        errors = []
        for e in self.events:
            p = e.get("params", {})
            if e.get("method") == "Runtime.exceptionThrown":
                errors.append(p["exceptionDetails"].get("text", "exception"))
            elif e.get("method") == "Runtime.consoleAPICalled" and p["type"] == "error":
                errors.append(" ".join(str(a.get("value")) for a in p["args"]))
            elif e.get("method") == "Log.entryAdded" and p["entry"]["level"] == "error":
                errors.append(f"{p['entry']['text']} {p['entry'].get('url', '')}")
        return errors

    async def evaluate(self, expression):
        r = await self.call(
            "Runtime.evaluate",
            expression=expression,
            awaitPromise=True,
            returnByValue=True,
        )
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expression[:60]}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.profile, ignore_errors=True)


def page_words(html_text: str) -> list[str]:
    """Words of the page's own text (not its sidebar or code), at least 7 letters long."""
    main = html_text.split('<main id="content">', 1)[1]
    main = main.split('<nav class="page-nav">')[0]
    main = re.sub(r"<(script|style|pre)\b.*?</\1>", " ", main, flags=re.S)
    text = re.sub(r"<[^>]+>", " ", main)
    return [w.lower() for w in re.findall(r"\b[A-Za-z]{7,}\b", text)]


def search_words(texts: dict[str, str]) -> dict[str, str]:
    """For each page, a word of its text that as few other pages as possible use."""
    words = {name: page_words(t) for name, t in texts.items()}
    spread = {}
    for ws in words.values():
        for w in set(ws):
            spread[w] = spread.get(w, 0) + 1
    chosen = {}
    for name, ws in words.items():
        assert ws, f"{name} has no prose to search for"
        chosen[name] = min(ws, key=lambda w: (spread[w], -ws.count(w), w))
    return chosen


@pytest.fixture(scope="module")
def browser_report(site):
    """Visit every page in Chromium once; everything the tests below check."""
    exe = chromium()
    out, pages = site
    chapter = next(n for n in pages if n != "index.html")
    words = search_words({n: (out / n).read_text(encoding="utf-8") for n in pages})

    async def visit():
        b = DevTools(exe)
        try:
            await b.connect()
            report = {"errors": {}, "images": {}, "search": {}}
            for name in pages:
                url = (out / name).as_uri()
                report["errors"][name] = await b.open(url)
                report["images"][name] = await b.evaluate(
                    "Array.from(document.images).filter(i => !(i.complete && "
                    "i.naturalWidth > 0)).map(i => i.getAttribute('src'))"
                )
            await b.open((out / "index.html").as_uri())
            for name, word in words.items():
                urls = await b.evaluate(
                    f"llmbookSearch({json.dumps(word)}).then(r => r.map(x => x.entry.url))"
                )
                report["search"][name] = (word, urls)
            # the search box itself: type, wait, read the result list
            report["typed"] = await b.evaluate(
                "(async () => { const i = document.getElementById('search');"
                f"i.value = {json.dumps(words[chapter])};"
                "i.dispatchEvent(new Event('input'));"
                "await new Promise(r => setTimeout(r, 800));"
                "return document.querySelectorAll('#search-results li a').length; })()"
            )
            await b.open((out / chapter).as_uri())
            report["copy_buttons"] = await b.evaluate(
                "document.querySelectorAll('div.sourceCode button.copy').length"
            )
            await b.call(
                "Emulation.setDeviceMetricsOverride",
                width=1280,
                height=900,
                deviceScaleFactor=1,
                mobile=False,
            )
            shot = await b.call("Page.captureScreenshot", format="png")
            (out / "screenshot-chapter.png").write_bytes(base64.b64decode(shot["data"]))
            await b.call(
                "Emulation.setDeviceMetricsOverride",
                width=390,
                height=844,
                deviceScaleFactor=2,
                mobile=True,
            )
            report["phone"] = {}
            for name in [*pages, chapter]:  # the chapter last, for its screenshot
                await b.open((out / name).as_uri())
                report["phone"][name] = await b.evaluate(
                    "({scroll: document.documentElement.scrollWidth, width: innerWidth,"
                    " sidebar: getComputedStyle(document.getElementById('sidebar'))"
                    ".display})"
                )
            shot = await b.call("Page.captureScreenshot", format="png")
            (out / "screenshot-phone.png").write_bytes(base64.b64decode(shot["data"]))
            return report
        finally:
            b.ws.close() if hasattr(b, "ws") else None
            b.close()

    return asyncio.run(visit())


def test_pages_load_without_console_errors(browser_report):
    errors = {n: e for n, e in browser_report["errors"].items() if e}
    assert not errors, json.dumps(errors, indent=1)[:3000]


def test_images_load_in_the_browser(browser_report):
    missing = {n: m for n, m in browser_report["images"].items() if m}
    assert not missing, missing


def test_search_finds_a_word_from_each_chapter(browser_report):
    for name, (word, urls) in browser_report["search"].items():
        assert any(u.split("#")[0] == name for u in urls), f"{word!r} of {name}: {urls}"
    assert browser_report["typed"] > 0, "typing in the search box shows no results"


def test_code_has_copy_buttons_and_pages_fit_a_phone(browser_report, site):
    out, _ = site
    assert browser_report["copy_buttons"] > 0
    for name, phone in browser_report["phone"].items():
        assert phone["width"] == 390 and phone["scroll"] <= 391, (
            f"{name} too wide: {phone}"
        )
        assert phone["sidebar"] == "none", f"{name}: contents not folded into the menu"
    assert (out / "screenshot-chapter.png").stat().st_size > 10_000
    assert (out / "screenshot-phone.png").stat().st_size > 10_000
