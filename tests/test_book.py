"""The rendered book: rendered once from the executed notebooks, then read back as a reader would."""

import re

import book
import nbformat
import pytest
from pypdf import PdfReader


@pytest.fixture(scope="session")
def rendered():
    return book.render(fallback=True)


@pytest.fixture(scope="session")
def pdf_text(rendered):
    text = "\n".join(page.extract_text() for page in PdfReader(rendered["pdf"]).pages)
    return squash(text)


def squash(s):
    """One space between words; typographic quotes (pandoc's smart punctuation) as ASCII."""
    s = s.translate(
        str.maketrans({"\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'"})
    )
    return re.sub(r"\s+", " ", s).strip()


def chapter_titles():
    """The level-1 heading of each book entry, read from its source (as _quarto.yml lists them)."""
    titles = []
    for e in book.entries():
        if e.is_notebook:
            md = "\n".join(
                c.source
                for c in nbformat.read(e.source, as_version=4).cells
                if c.cell_type == "markdown"
            )
        else:
            md = e.source.read_text()
        m = re.search(r"^# (.+?)\s*(\{.*\})?\s*$", md, re.M)
        titles.append((e, m.group(1), "unnumbered" in (m.group(2) or "")))
    return titles


def test_title_and_contents(pdf_text):
    title = book.book_config()["book"]["title"]
    assert squash(title) in pdf_text
    assert "Contents" in pdf_text


def test_chapter_headings(pdf_text):
    numbered = [(e, t) for e, t, unnumbered in chapter_titles() if not unnumbered]
    chapters = [t for e, t in numbered if not e.appendix]
    assert chapters[:5] == [
        "Foundations",
        "Data engineering",
        "Model code",
        "Distributed training",
        "Evaluation",
    ]
    for n, title in enumerate(chapters, 1):
        assert f"Chapter {n} {title}" in pdf_text
    for letter, (e, title) in zip(
        "ABCDEFG", [(e, t) for e, t in numbered if e.appendix]
    ):
        assert f"Appendix {letter} {title}" in pdf_text


def figure_captions(nb_path):
    """Captions of a processed notebook's figures: from cell options and from markdown images."""
    caps = []
    for cell in nbformat.read(nb_path, as_version=4).cells:
        if cell.cell_type == "code":
            _, opts = book.cell_options(cell)
            if str(opts.get("label", "")).startswith("fig-"):
                caps.append(opts["fig-cap"])
        else:
            caps += [m.group("cap") for m in book.FIG_IMAGE.finditer(cell.source)]
    return caps


def plain(md):
    """Caption markdown as the PDF shows it: no emphasis marks, code ticks or math dollars."""
    md = re.sub(r"\[@[^\]]+\]", "", md)
    return squash(re.sub(r"[*_`$]", "", md))


def test_chapter1_figures_captioned_and_numbered(rendered, pdf_text):
    caps = figure_captions(book.PROC / "nbs" / "01_foundations.ipynb")
    assert caps, "Chapter 1 has figures"
    for i, cap in enumerate(caps, 1):
        words = plain(cap).split()[
            :8
        ]  # the start of the caption, as extracted from the PDF
        assert f"Figure 1.{i}: {' '.join(words)}" in pdf_text, (
            f"Figure 1.{i} caption missing: {cap}"
        )


def test_no_unresolved_references(pdf_text):
    assert "??" not in pdf_text
    assert "?@" not in pdf_text


def test_citations_and_bibliography(pdf_text):
    assert "References" in pdf_text
    assert "Attention Is All You Need" in pdf_text


def test_html_is_offline(rendered):
    html = rendered["html"].read_text(encoding="utf-8")
    assert "<math" in html, "math is MathML"
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=\"https?://", html), (
        "no CDN or remote resource"
    )
    assert "Foundations" in html
