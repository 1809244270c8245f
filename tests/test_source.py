"""The source is consistent: the library is what the notebooks export, notebooks are clean."""

import filecmp
import json
import shutil
import subprocess
import sys

import book
import nbformat

ROOT = book.ROOT


def test_export_in_sync(tmp_path):
    """nbdev_export of nbs/ reproduces llmbook/ exactly (nobody edited the library by hand)."""
    for name in ("settings.ini", "nbs", "llmbook"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, tmp_path / name)
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from nbdev.doclinks import nbdev_export; nbdev_export()",
        ],
        cwd=tmp_path,
        check=True,
    )
    cmp = filecmp.dircmp(ROOT / "llmbook", tmp_path / "llmbook", ignore=["__pycache__"])
    assert not cmp.diff_files and not cmp.left_only and not cmp.right_only, (
        f"llmbook/ differs from the export of nbs/ (changed {cmp.diff_files}, only in repo {cmp.left_only}, "
        f"only in export {cmp.right_only}): edit the notebooks and run `make export`"
    )


def test_notebooks_committed_clean():
    """No outputs or execution counts in nbs/: every number in the book comes from the build."""
    for path in book.notebooks():
        nb = nbformat.read(path, as_version=4)
        for i, cell in enumerate(nb.cells):
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, (
                    f"{path.name} cell {i} holds outputs: run `make clean-nbs`"
                )


def test_cell_ids_are_unique():
    """nbdev marks each exported cell with its id: two cells of one id would be confused."""
    for path in book.notebooks():
        cells = json.loads(path.read_text())["cells"]  # nbformat would renumber them
        ids = [cell["id"] for cell in cells]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        assert not twice, f"{path.name}: cell ids used twice: {twice}"


def test_every_notebook_is_in_the_book():
    listed = {e.source.resolve() for e in book.entries()}
    missing = [p.name for p in book.notebooks() if p.resolve() not in listed]
    assert not missing, f"notebooks not listed in _quarto.yml: {missing}"


def test_book_entries_exist():
    for e in book.entries():
        assert e.source.exists(), (
            f"_quarto.yml lists {e.path} but {e.source} does not exist"
        )


def test_chapter_modules_import():
    import importlib

    mods = [
        p.stem for p in (ROOT / "llmbook").glob("*.py") if not p.stem.startswith("_")
    ]
    for m in mods:
        importlib.import_module(f"llmbook.{m}")


# ---------------------------------------------------------------------------- the page
PAGE_WIDTH = 88  # characters of code the book's page holds (pyproject.toml, book.typ)
MAX_EXPORTED_LINES = 50
EXPORT_FLAGS = {"export", "exports", "exporti"}


def shown_code(nb_path):
    """(cell index, flags, code) of each code cell the book prints, directives removed.

    The same rules as the build (`book.process_notebook`): `#| hide`, `include: false`
    and `echo: false` cells are not printed; the `#|` lines themselves never are."""
    nb = nbformat.read(nb_path, as_version=4)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        directives, body = book.split_directives(cell.source)
        flags, options = book.parse_directives(directives)
        if "hide" in flags or options.get("include") is False:
            continue
        if options.get("echo") is False or not body.strip():
            continue
        yield i, flags, body


def fenced_code(nb_path):
    """(cell index, code) of each fenced code block (```) in the prose: printed too."""
    nb = nbformat.read(nb_path, as_version=4)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            for inside, text in book.split_fences(cell.source):
                if inside:
                    yield i, text


def too_wide(nb_path, width=PAGE_WIDTH):
    shown = [(i, body) for i, _, body in shown_code(nb_path)]
    return [
        f"{nb_path.name} cell {i} line {n}: {len(line)} characters: {line.strip()[:60]}"
        for i, body in sorted(shown + list(fenced_code(nb_path)))
        for n, line in enumerate(body.splitlines(), 1)
        if len(line) > width
    ]


def too_long(nb_path, limit=MAX_EXPORTED_LINES):
    """Exported cells (printed or hidden) longer than `limit` lines."""
    found = []
    for i, cell in enumerate(nbformat.read(nb_path, as_version=4).cells):
        directives, body = book.split_directives(cell.source)
        flags, _ = book.parse_directives(directives)
        n = len(body.rstrip().splitlines())
        if cell.cell_type == "code" and flags & EXPORT_FLAGS and n > limit:
            found.append(f"{nb_path.name} cell {i}: {n} lines exported")
    return found


def test_shown_code_fits_the_page():
    """Every code line the book prints is at most 88 characters: the page holds no more."""
    wide = [w for path in book.notebooks() for w in too_wide(path)]
    assert not wide, (
        f"{len(wide)} code lines are wider than the page ({PAGE_WIDTH} characters); "
        "rewrap them (`ruff format`, then strings and comments by hand):\n"
        + "\n".join(wide[:40])
    )


def test_cell_options_fold_within_the_page():
    """A notebook's `#|` lines are source a maintainer reads at 88 columns too: a long
    caption folds onto indented lines (YAML `>-`, as Quarto reads it), and the folded
    value reads back as one string."""
    wide = [
        f"{path.name} cell {i} line {n}: {len(line)} characters: {line[:60]}"
        for path in book.notebooks()
        for i, cell in enumerate(nbformat.read(path, as_version=4).cells)
        if cell.cell_type == "code"
        for n, line in enumerate(cell.source.splitlines(), 1)
        if book.DIRECTIVE.match(line) and len(line) > PAGE_WIDTH
    ]
    assert not wide, (
        f"{len(wide)} cell options are wider than {PAGE_WIDTH} characters; fold them "
        "(`#| fig-cap: >-`, then the text on `#|   ` lines):\n" + "\n".join(wide[:40])
    )
    source = (
        "#| label: fig-x\n#| fig-cap: >-\n#|   A caption: long,\n#|   on two lines.\n"
        "#| echo: false\n#| export\nx = 1"
    )
    flags, options = book.cell_options(nbformat.v4.new_code_cell(source))
    want = {
        "label": "fig-x",
        "fig-cap": "A caption: long, on two lines.",
        "echo": False,
    }
    assert options == want
    assert flags == {"export"}


def test_exported_cells_are_small():
    """An exported cell is one idea: at most 50 lines, then prose or a check."""
    long = [x for path in book.notebooks() for x in too_long(path)]
    assert not long, (
        f"exported cells longer than {MAX_EXPORTED_LINES} lines; split them:\n"
        + "\n".join(long)
    )


def test_page_checks_catch_a_bad_cell(tmp_path):
    """The two checks above fail on a deliberately bad notebook and pass on its fix."""
    nb = nbformat.v4.new_notebook()
    wide = "x = " + "1 + " * 30 + "1"
    nb.cells = [
        nbformat.v4.new_code_cell("#| hide\n" + wide),  # hidden: not printed
        nbformat.v4.new_code_cell("#| echo: false\n" + wide),  # output only
        nbformat.v4.new_code_cell("#| export\n" + "y = 1\n" * 51),
        nbformat.v4.new_code_cell("#| export\n#| hide\n" + "z = 1\n" * 51),
        nbformat.v4.new_code_cell("a = 1\n" + wide),
        nbformat.v4.new_markdown_cell(f"Run\n\n```bash\n{wide}\n```\n\n{wide}"),
    ]
    path = tmp_path / "bad.ipynb"
    nbformat.write(nb, path)
    assert too_wide(path) == [
        f"bad.ipynb cell 4 line 2: {len(wide)} characters: {wide[:60]}",
        f"bad.ipynb cell 5 line 2: {len(wide)} characters: {wide[:60]}",
    ]  # prose may be wide (it wraps); a fenced listing may not
    assert too_long(path) == [
        "bad.ipynb cell 2: 51 lines exported",
        "bad.ipynb cell 3: 51 lines exported",
    ]
    nb.cells[4].source = "a = 1\nx = (\n    1 + 1\n)"
    nb.cells[5].source = f"Run\n\n```bash\nx = 1\n```\n\n{wide}"
    nb.cells[2].source = "#| export\n" + "y = 1\n" * 50
    nb.cells[3].source = "#| export\n#| hide\n" + "z = 1\n" * 50
    nbformat.write(nb, path)
    assert too_wide(path) == [] and too_long(path) == []


def ruff(*args):
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )


def test_ruff_lint_and_format():
    """ruff (config in pyproject.toml): lint and format over the notebooks, tools/, tests/
    and bench/; lint only over the generated llmbook/."""
    sources = [str(p.relative_to(ROOT)) for p in book.notebooks()]
    sources += ["tools", "tests", "bench"]
    lint = ruff("check", "--output-format", "concise", *sources, "llmbook")
    assert lint.returncode == 0, f"ruff check:\n{lint.stdout[-6000:]}{lint.stderr}"
    fmt = ruff("format", "--check", *sources)
    assert fmt.returncode == 0, (
        "ruff format --check (run `ruff format` on these):\n"
        f"{fmt.stdout[-6000:]}{fmt.stderr}"
    )
