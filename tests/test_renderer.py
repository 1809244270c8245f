"""The fallback renderer's numbering and markdown handling, on small inputs."""

import book
import nbformat


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
