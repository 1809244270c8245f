"""The source is consistent: the library is what the notebooks export, notebooks are clean."""

import filecmp
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
