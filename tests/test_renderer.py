"""The fallback renderer's numbering and markdown handling, on small inputs."""

import json
import os
import re
from pathlib import Path

import book
import nbformat
import pytest
import yaml
from pypdf import PdfReader


def test_split_fences_keeps_code_apart():
    md = "a @fig-x\n```python\n# not a heading\n```\nb\n"
    pieces = book.split_fences(md)
    assert pieces == [
        (False, "a @fig-x\n"),
        (True, "```python\n# not a heading\n```\n"),
        (False, "b\n"),
    ]


def test_number_chapter_figures_tables_equations_sections():
    r = book.Renderer()
    md = (
        "# Title {#sec-t}\n\n## First {#sec-first}\n\n![A cap.](a.png){#fig-a}\n\n"
        "$$ x = 1 $$ {#eq-one}\n\n| a |\n|---|\n| 1 |\n\n: Numbers {#tbl-n}\n\n"
        "## Second\n\n### Deeper {#sec-deep}\n\n![B.](b.png){#fig-b width=50%}\n\n```\n# code {#sec-no}\n```\n"
    )
    out = r.number_chapter(md, "3", front=False)
    assert r.crossref == {
        "sec-t": "Chapter 3",
        "sec-first": "Section 3.1",
        "fig-a": "Figure 3.1",
        "eq-one": "Equation 3.1",
        "tbl-n": "Table 3.1",
        "sec-deep": "Section 3.2.1",
        "fig-b": "Figure 3.2",
    }
    assert "![Figure 3.1: A cap.](a.png){#fig-a}" in out
    assert ": Table 3.1: Numbers" in out and "::: {#tbl-n}" in out
    assert '.numbered-equation number="3.1"' in out
    assert "# code {#sec-no}" in out  # fenced code is untouched


def test_callout_titles_are_not_sections():
    r = book.Renderer()
    out = r.number_chapter(
        "# T\n\n::: {.callout-note}\n## Careful\ntext\n:::\n\n## Real {#sec-real}\n",
        "2",
        front=False,
    )
    assert "## Careful\n" in out and r.crossref["sec-real"] == "Section 2.1"


def test_front_matter_is_unnumbered():
    r = book.Renderer()
    out = r.number_chapter(
        "# Preface {.unnumbered}\n\n## How {#sec-how}\n", None, front=True
    )
    assert "sec-how" not in r.crossref and out.count(".unnumbered") == 2


def test_process_notebook_honours_directives():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("#| default_exp foundations"),
        nbformat.v4.new_code_cell("#| export\ndef f(): pass"),
        nbformat.v4.new_code_cell("#| hide\nassert True"),
        nbformat.v4.new_code_cell(
            "#| label: fig-x\n#| fig-cap: A plot\n#|notest\nplot()"
        ),
        nbformat.v4.new_markdown_cell("text"),
    ]
    out = book.process_notebook(nb)
    assert [c.source for c in out.cells] == [
        "def f(): pass",
        "#| label: fig-x\n#| fig-cap: A plot\nplot()",
        "text",
    ]


def test_unnumbered_front_heading_is_not_the_first_line():
    """Quarto takes a notebook's first heading as its title, dropping `.unnumbered`
    (the preface became chapter 1): something must precede it in its cell."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Preface {.unnumbered}\n\nText.")]
    out = book.process_notebook(nb)
    assert [c.cell_type for c in out.cells] == ["markdown"]
    first, rest = out.cells[0].source.split("\n", 1)
    assert first.strip() and not first.startswith("#")
    assert rest == "# Preface {.unnumbered}\n\nText."
    nb.cells = [nbformat.v4.new_markdown_cell("# Foundations {#sec-foundations}")]
    assert book.process_notebook(nb).cells[0].source == nb.cells[0].source


def test_image_links_follow_the_notebook_into_proc():
    md = "![A diagram.](../figures/x.svg)\n\n```\n![not](../figures/x.svg)\n```\n![web](https://example.org/a.png)"
    moved = book.relink_images(
        md, book.NBS, book.PROC
    )  # the preface: nbs/index.ipynb -> _proc/index.ipynb
    assert moved.startswith("![A diagram.](figures/x.svg)")
    assert (
        "![not](../figures/x.svg)" in moved and "(https://example.org/a.png)" in moved
    )
    assert (
        book.relink_images(md, book.NBS, book.PROC / "nbs") == md
    )  # chapters keep their relative place


def test_duplicate_labels_are_refused():
    r = book.Renderer()
    r.number_chapter("# A\n\n![x](a.png){#fig-same}\n", "1", front=False)
    try:
        r.number_chapter("# B\n\n![y](b.png){#fig-same}\n", "2", front=False)
    except book.BuildError as e:
        assert "#fig-same" in str(e) and "Figure 1.1" in str(e)
    else:
        raise AssertionError("a label used twice must stop the build")


# ---------------------------------------------------------------------------- the page
def test_output_wraps_with_a_mark_and_keeps_indentation():
    line = "    " + " ".join(f"word{i}" for i in range(40))
    wrapped = book.wrap_output(line + "\n" + "x" * 200).splitlines()
    assert all(len(w) <= book.PAGE_WIDTH for w in wrapped)
    assert wrapped[0].startswith("    word0") and not wrapped[0].startswith("    ↪")
    assert wrapped[1].startswith("    ↪ word")  # indented, marked
    assert [w for w in wrapped if w.startswith("x")] == ["x" * book.PAGE_WIDTH]
    assert wrapped[-1].startswith("↪ x")
    joined = " ".join(w.replace("↪", "").strip() for w in wrapped[:-3])
    assert joined.split() == line.split()  # nothing lost


def pdf_lines(tmp_path, md):
    pdf = book.Renderer(out_dir=tmp_path).pdf(md, tmp_path / "piece.pdf")
    return [
        t.strip()
        for page in PdfReader(pdf).pages
        for t in page.extract_text().splitlines()
    ]


def test_page_holds_88_characters_of_code(tmp_path):
    """A line of 88 characters prints as one line; a wider one is broken (so the
    check can fail)."""
    fits = "".join(str(i % 10) for i in range(book.PAGE_WIDTH))
    wide = " ".join(["abcdefg"] * 13)  # 103 characters
    lines = pdf_lines(
        tmp_path, f"# T\n\n```python\n{fits}\n```\n\n```python\n{wide}\n```\n"
    )
    assert fits in lines
    assert wide not in lines and any(t.startswith("abcdefg abcdefg") for t in lines)


# ---------------------------------------------------------------------------- exercises
FIXTURE = Path(__file__).parent / "fixtures" / "exercises.ipynb"


@pytest.fixture(scope="module")
def executed_fixture():
    nb, _ = book.execute_notebook(FIXTURE, timeout=120)
    return nb


def test_solutions_execute_and_a_wrong_one_fails(executed_fixture, tmp_path):
    outputs = [o for c in executed_fixture.cells for o in c.get("outputs", [])]
    assert any("doubled: 4" in o.get("text", "") for o in outputs)
    nb = nbformat.read(FIXTURE, as_version=4)
    nb.cells[6].source = nb.cells[6].source.replace("x == 2", "x == 3")
    wrong = tmp_path / "wrong.ipynb"
    nbformat.write(nb, wrong)
    with pytest.raises(book.BuildError, match="x changed"):
        book.execute_notebook(wrong, timeout=120)


def test_solutions_fold_under_their_exercise(executed_fixture):
    out = book.process_notebook(executed_fixture)
    sources = [c.source for c in out.cells]
    assert not any("solution:" in s for s in sources), "directive lines never printed"
    opened = [i for i, s in enumerate(sources) if s == book.SOLUTION_OPEN]
    closed = [i for i, s in enumerate(sources) if s == book.SOLUTION_CLOSE]
    assert len(opened) == len(closed) == 2  # one folded box per exercise
    first = sources[opened[0] + 1 : closed[0]]
    assert first[0].startswith("y = 2 * x") and first[1].startswith("Doubling is")
    assert [c.metadata.get("solution") for c in out.cells].count("exr-tiny-double") == 2


def test_exercises_numbered_and_solutions_in_print(executed_fixture, tmp_path):
    processed = book.process_notebook(executed_fixture)
    path = tmp_path / "tiny.ipynb"
    nbformat.write(processed, path)
    r = book.Renderer(out_dir=tmp_path)
    chapter = r.number_chapter(r.notebook_markdown(path), "3", front=False)
    assert r.crossref["exr-tiny-double"] == "Exercise 3.1"
    assert r.crossref["exr-tiny-check"] == "Exercise 3.2"
    appendix = book.notebook_solutions(processed, "Chapter 3: Tiny", tmp_path, "tiny")
    assert "### Solution to @exr-tiny-double" in appendix
    assert "doubled: 4" in appendix and "solution:" not in appendix
    md = chapter + "\n\n# Solutions {.unnumbered}\n\n" + appendix

    typ = re.sub(r"[ \n]+", " ", r.convert(md, "typst"))
    body, solutions = typ.split("Solutions", 1)
    assert "Exercise 3.1" in body and "(Double it)" in body
    assert "y = 2 \\* x" not in body and "y = 2 * x" not in body  # not in the chapter
    assert (
        "y = 2 * x" in solutions and "Solution to #link(<exr-tiny-double>)" in solutions
    )

    page = re.sub(r"[ \n]+", " ", r.convert(md, "html5"))
    chapter_html = page.split("Solutions", 1)[0]
    assert '<details class="callout callout-tip solution">' in chapter_html
    assert "<summary" in chapter_html and "y <span" in chapter_html
    assert 'href="#exr-tiny-double">Exercise 3.1</a>' in chapter_html


# ---------------------------------------------------------------------------- the book's model
def test_book_model_trained_once_and_rebuilt_on_change(tmp_path, monkeypatch):
    """The build trains the book's model with the CLI, reuses it while its config and
    the library are unchanged, retrains when the config changes, and tells kernels."""
    config = json.loads(book.BOOK_MODEL_CONFIG.read_text())
    config["train"].update(max_steps=2, eval_every=2, ckpt_every=2, eval_batches=1)
    config["train"].update(batch_size=2, block_size=16)
    config["model"] = {"preset": "tiny", "n_layer": 1, "max_seq_len": 16}
    path = tmp_path / "book-model.json"
    path.write_text(json.dumps(config))
    monkeypatch.setattr(book, "BOOK_MODEL_CONFIG", path)
    monkeypatch.setattr(book, "BOOK_MODEL_DIR", tmp_path / "model")
    monkeypatch.delenv(book.BOOK_MODEL_ENV, raising=False)
    from llmbook.data import pack_tokens
    from llmbook.foundations import load_encoding

    line = "To be, or not to be, that is the question. "
    text = {"hamlet": line * 40, "ophelia": line * 40}
    pack_tokens(text, load_encoding("gpt2"), book.book_model_tokens(), val_fraction=0.5)

    final = book.ensure_book_model()
    assert final.exists() and os.environ[book.BOOK_MODEL_ENV] == str(final)
    stamp = tmp_path / "model" / "stamp.json"
    first = stamp.read_text()
    assert book.ensure_book_model() == final and stamp.read_text() == first  # cached

    config["train"]["seed"] = 1
    path.write_text(json.dumps(config))
    book.ensure_book_model()
    assert stamp.read_text() != first  # a new config trains again


def quarto_cell_options(cell: dict) -> dict:
    """A code cell's options read the way Quarto 1.10 reads them from a notebook file
    (`partitionCellOptions`): the `#|` lines of its source, as stored, joined by a
    newline each."""
    src = cell["source"]
    stored = src.splitlines() if isinstance(src, str) else src
    options = []
    for line in stored:
        if not line.startswith("#| "):
            break
        options.append(line[3:])
    return yaml.safe_load("\n".join(options))


def test_proc_notebooks_keep_folded_options_whole_for_quarto():
    caption = "A caption long enough to be folded over two lines of the cell."
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# T\n\nSee @tbl-a.\n"),
        nbformat.v4.new_code_cell(
            "#| label: tbl-a\n#| tbl-cap: >-\n#|   A caption long enough to be\n"
            "#|   folded over two lines of the cell.\n#| echo: false\nshow()\n"
        ),
    ]
    data = json.loads(book.notebook_json(nb))
    assert quarto_cell_options(data["cells"][1])["tbl-cap"] == caption
    assert data["cells"][0]["source"] == ["# T\n", "\n", "See @tbl-a.\n"]
    assert nbformat.reads(book.notebook_json(nb), as_version=4) == nb
