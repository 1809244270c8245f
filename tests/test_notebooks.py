"""Every notebook in nbs/ is executed once, as one test item, into _proc/ (the book's input)."""

import book
import pytest


@pytest.mark.parametrize("notebook", book.notebooks(), ids=lambda p: p.stem)
def test_notebook(notebook):
    out = book.build_notebook(notebook, force=True)
    assert out.exists()
