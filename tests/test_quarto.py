"""The book as Quarto users get it: `quarto render` of the executed `_proc/`, both formats.

Runs only where `quarto` is on PATH (the build never needs it; `make book` falls back to
tools/book.py). The book is rendered in a copy of `_proc/`, so the fallback's `_book/`
that the other tests read is left alone.
"""

import re
import shutil
import subprocess

import book
import pytest
from pypdf import PdfReader
from test_book import squash

QUARTO = shutil.which("quarto")
pytestmark = pytest.mark.skipif(
    QUARTO is None,
    reason="quarto is not on PATH: install Quarto 1.10 (quarto.org) to check the book "
    "with it; `make book` renders without it",
)
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# A source run of Quarto has no typst-gather binary (an installed Quarto ships one), and
# Quarto falls back to staging every typst package: a toolchain message, not the book's.
TOOLCHAIN = ("typst-gather",)


@pytest.fixture(scope="session")
def quarto_book(rendered, tmp_path_factory):
    """`quarto render` of a copy of the staged `_proc/` (staged by the `rendered` fixture):
    (output folder, what Quarto printed)."""
    site = tmp_path_factory.mktemp("quarto") / "book"
    shutil.copytree(
        book.PROC, site, ignore=shutil.ignore_patterns(".render", "book-model", "_book")
    )
    r = subprocess.run(
        [QUARTO, "render", str(site)], capture_output=True, text=True, timeout=1800
    )
    log = ANSI.sub("", r.stdout + r.stderr)
    assert r.returncode == 0, log[-4000:]
    return site / "_book", log


def test_quarto_renders_without_warnings(quarto_book):
    _, log = quarto_book
    problems = [
        line
        for line in log.splitlines()
        if re.match(r"^\s*(WARN|WARNING|ERROR)\b", line)
        and not any(t in line for t in TOOLCHAIN)
    ]
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="session")
def quarto_pdf(quarto_book):
    out, _ = quarto_book
    name = book.book_config()["book"]["output-file"]
    reader = PdfReader(out / f"{name}.pdf")
    pages = [squash(p.extract_text()) for p in reader.pages]
    opens = {
        o.title: reader.get_destination_page_number(o)
        for o in reader.outline
        if not isinstance(o, list)
    }
    return pages, opens


def test_quarto_pdf_numbers_chapters_after_an_unnumbered_preface(quarto_pdf):
    _, opens = quarto_pdf
    titles = list(opens)
    assert titles[0] == "Preface", titles
    assert titles[1:6] == [
        "1. Foundations",
        "2. Data engineering",
        "3. Model code",
        "4. Distributed training",
        "5. Evaluation",
    ], titles
    assert "References" in titles
    assert any(re.match(r"A\. ", t) for t in titles), "appendices lettered"


def test_quarto_pdf_resolves_references_and_cites_author_date(quarto_pdf):
    pages, opens = quarto_pdf
    text = " ".join(pages)
    assert "?@" not in text and "??" not in text
    assert re.search(r"Figure 1\.1\b", text) and re.search(r"Table 2\.1\b", text)
    assert re.search(r"\(Vaswani et al\. 2017[;)]", text), "author-date citations"
    refs = opens["References"]
    after = min(p for p in opens.values() if p > refs)
    chapter = " ".join(pages[refs:after])
    assert "Vaswani, Ashish" in chapter, "the bibliography is in the References chapter"
    assert "Vaswani, Ashish" not in " ".join(pages[after:]), "printed twice"


def test_quarto_html_numbers_chapters_like_the_pdf(quarto_book):
    out, _ = quarto_book
    preface = (out / "index.html").read_text(encoding="utf-8")
    first = (out / "nbs" / "01_foundations.html").read_text(encoding="utf-8")
    assert '<h1 class="unnumbered">Preface</h1>' in preface
    title = re.search(r'<h1 class="title">(.*?)</h1>', first, re.S).group(1)
    assert '<span class="chapter-number">1</span>' in title, title
    assert "Figure&nbsp;1.1" in first or "Figure 1.1" in first
    pages = "".join(p.read_text(encoding="utf-8") for p in out.rglob("*.html"))
    assert "?@" not in re.sub(r"<[^>]+>", "", pages), "unresolved cross-reference"
