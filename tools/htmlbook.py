"""The HTML book of the fallback renderer: one page per chapter, offline.

`tools/book.py` renders the whole book to one HTML body with pandoc, each entry preceded
by a marker `<!--llmbook-page:NAME-->`. `build` cuts it into pages, gives each the
sidebar of contents, previous and next links and a search box, points every `#id` link
at the page that holds the id, copies the images beside the pages, and writes the
search index as a script (`search-index.js`), so search works from `file://` too.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

TOOLS = Path(__file__).resolve().parent
MARK = re.compile(r"<!--llmbook-page:(?P<name>[\w.-]+)-->")
ID = re.compile(r'\sid="([^"]+)"')
HREF = re.compile(r'href="#([^"]*)"')
SRC = re.compile(r'(<(?:img|source|embed)\b[^>]*?\ssrc=")([^"]+)(")')
H1 = re.compile(r"<h1\b[^>]*>(.*?)</h1>", re.S)
SECTION = re.compile(r'<h([23])\b[^>]*?\sid="([^"]+)"[^>]*>(.*?)</h\1>', re.S)
NUMBER = re.compile(r'<span class="header-section-number">(.*?)</span>')
TAG = re.compile(r"<[^>]+>")
ASSETS = ["book.css", "book.js"]
SEARCH_TEXT_LIMIT = 20000  # characters of one section's text in the search index


def text_of(fragment: str) -> str:
    """Visible text of an HTML fragment, on one line."""
    return re.sub(r"\s+", " ", html.unescape(TAG.sub(" ", fragment))).strip()


@dataclass
class Page:
    name: str
    body: str
    appendix: bool = False
    ids: set[str] = field(default_factory=set)

    @property
    def file(self) -> str:
        return f"{self.name}.html"

    @property
    def number(self) -> str:
        m = H1.search(self.body)
        n = NUMBER.search(m.group(1)) if m else None
        return text_of(n.group(1)) if n else ""

    @property
    def title(self) -> str:
        m = H1.search(self.body)
        if not m:
            return self.name
        return text_of(NUMBER.sub("", m.group(1)))

    def sections(self) -> list[tuple[int, str, str]]:
        """(level, id, title) of the page's level-2 and level-3 headings."""
        return [
            (int(m.group(1)), m.group(2), text_of(m.group(3)))
            for m in SECTION.finditer(self.body)
        ]


def split_pages(body: str, appendices: set[str]) -> list[Page]:
    pieces = MARK.split(body)
    pages = [
        Page(name, text, name in appendices)
        for name, text in zip(pieces[1::2], pieces[2::2])
    ]
    for p in pages:
        p.ids = set(ID.findall(p.body))
    return pages


def link_across_pages(pages: list[Page]) -> None:
    """`href="#x"` -> `href="page.html#x"` where x lives on another page."""
    where = {i: p.file for p in pages for i in p.ids}
    for p in pages:

        def fix(m, p=p):
            target = m.group(1)
            if not target or target in p.ids or target not in where:
                return m.group(0)
            return f'href="{where[target]}#{target}"'

        p.body = HREF.sub(fix, p.body)


def copy_images(pages: list[Page], work: Path, proc: Path, out: Path) -> None:
    """Copy every local image a page shows to `out` (same layout as in `_proc/`)."""
    for p in pages:

        def fix(m, p=p):
            src = m.group(2)
            if re.match(r"^[a-z]+:", src) or src.startswith("/"):
                return m.group(0)
            path = (work / src).resolve()
            rel = Path(os.path.relpath(path, proc))
            if rel.parts and rel.parts[0] == work.name:
                rel = rel.relative_to(work.name)
            if rel.parts and rel.parts[0] == "..":
                raise ValueError(f"{p.file}: image {src} lies outside {proc}")
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, out / rel)
            return m.group(1) + rel.as_posix() + m.group(3)

        p.body = SRC.sub(fix, p.body)


def search_index(pages: list[Page]) -> list[dict]:
    """One entry per section (the text between level-2/3 headings) of every page."""
    index = []
    for p in pages:
        cuts = [(0, "", p.title)] + [
            (m.start(), m.group(2), text_of(m.group(3)))
            for m in SECTION.finditer(p.body)
        ]
        for k, (start, ident, title) in enumerate(cuts):
            end = cuts[k + 1][0] if k + 1 < len(cuts) else len(p.body)
            body = text_of(p.body[start:end])[:SEARCH_TEXT_LIMIT]
            page = f"{p.number} {p.title}".strip()
            index.append(
                {"page": page, "url": f"{p.file}#{ident}" if ident else p.file}
                | {"title": title, "text": body}
            )
    return index


def sidebar(pages: list[Page], current: Page, title: str, pdf: str | None) -> str:
    items, in_appendix = [], False
    for p in pages:
        if p.appendix and not in_appendix:
            items.append('<li class="part">Appendices</li>')
            in_appendix = True
        number = (
            f'<span class="num">{html.escape(p.number)}</span> ' if p.number else ""
        )
        label = f"{number}{html.escape(p.title)}"
        if p is current:
            subs = "".join(
                f'<li class="level{level}"><a href="#{ident}">{html.escape(text)}</a></li>'
                for level, ident, text in p.sections()
                if level == 2
            )
            items.append(
                f'<li class="current"><a href="{p.file}" aria-current="page">{label}</a>'
                + (f'<ol class="sections">{subs}</ol>' if subs else "")
                + "</li>"
            )
        else:
            items.append(f'<li><a href="{p.file}">{label}</a></li>')
    pdf_link = f'<a class="pdf" href="{pdf}">PDF edition</a>' if pdf else ""
    return (
        '<nav class="sidebar" id="sidebar" aria-label="Contents">'
        f'<a class="book-title" href="index.html">{html.escape(title)}</a>'
        '<div class="search"><input id="search" type="search" '
        'placeholder="Search the book" aria-label="Search the book" autocomplete="off">'
        '<ol id="search-results" class="search-results" hidden></ol></div>'
        f'<ol class="contents">{"".join(items)}</ol>{pdf_link}</nav>'
    )


def page_nav(pages: list[Page], i: int) -> str:
    links = []
    if i > 0:
        p = pages[i - 1]
        links.append(
            f'<a class="prev" rel="prev" href="{p.file}">'
            f"<small>Previous</small>{html.escape(f'{p.number} {p.title}'.strip())}</a>"
        )
    if i + 1 < len(pages):
        p = pages[i + 1]
        links.append(
            f'<a class="next" rel="next" href="{p.file}">'
            f"<small>Next</small>{html.escape(f'{p.number} {p.title}'.strip())}</a>"
        )
    return f'<nav class="page-nav">{"".join(links)}</nav>'


def title_block(meta: dict) -> str:
    authors = ", ".join(meta.get("author") or [])
    return (
        '<header class="title-block">'
        f'<p class="title">{html.escape(meta["title"])}</p>'
        f'<p class="subtitle">{html.escape(meta.get("subtitle", ""))}</p>'
        f'<p class="author">{html.escape(authors)}</p>'
        f'<p class="date">{html.escape(meta["date"])}</p></header>'
    )


PAGE = """<!DOCTYPE html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{page_title}</title>
<link rel="stylesheet" href="book.css">
<style>{highlight}</style>
<script src="book.js" defer></script>
</head>
<body>
<header class="topbar"><button id="menu" type="button" aria-controls="sidebar"
aria-expanded="false" aria-label="Contents">&#9776;</button>
<a href="index.html">{title}</a></header>
<div class="layout">
{sidebar}
<main id="content">
{title_block}{body}
{nav}
<footer class="built">{built}</footer>
</main>
</div>
</body>
</html>
"""


def build(renderer, body: str, highlight_css: str, pdf: Path | None) -> Path:
    """Write the site into `renderer.out_dir`; returns the path of its `index.html`."""
    from book import entries, page_name

    out = renderer.out_dir
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.html"):
        old.unlink()
    for d in ("media", "figures", "nbs"):
        shutil.rmtree(out / d, ignore_errors=True)
    appendices = {page_name(e) for e in entries(renderer.cfg) if e.appendix}
    pages = split_pages(body, appendices)
    if not pages or pages[0].name != "index":
        raise ValueError("the book's first entry must be its home page, index")
    link_across_pages(pages)
    copy_images(pages, renderer.work, renderer.work.parent, out)
    meta = renderer.metadata()
    built = (
        f"Built {html.escape(meta['date'])} from commit "
        f"<code>{html.escape(meta['commit'])}</code>; "
        f"documents llmbook {html.escape(meta['version'])}."
    )
    pdf_rel = os.path.relpath(pdf, out) if pdf and pdf.exists() else None
    for i, p in enumerate(pages):
        head = meta["title"] if p.name == "index" else f"{p.title} – {meta['title']}"
        (out / p.file).write_text(
            PAGE.format(
                lang=meta.get("lang", "en"),
                page_title=html.escape(head),
                highlight=highlight_css,
                title=html.escape(meta["title"]),
                sidebar=sidebar(pages, p, meta["title"], pdf_rel),
                title_block=title_block(meta) if p.name == "index" else "",
                body=p.body,
                nav=page_nav(pages, i),
                built=built,
            ),
            encoding="utf-8",
        )
    index = json.dumps(search_index(pages), ensure_ascii=False, separators=(",", ":"))
    (out / "search-index.js").write_text(
        f"window.LLMBOOK_SEARCH = {index};\n", encoding="utf-8"
    )
    for name in ASSETS:
        shutil.copy2(TOOLS / name, out / name)
    return out / "index.html"
