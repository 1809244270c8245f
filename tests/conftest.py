"""Shared set-up for the tests: the build tool is importable, and items run in build order."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

# Notebooks execute first (their outputs feed the book), then the book renders, then the rest.
ORDER = ["test_notebooks.py", "test_book.py", "test_html.py"]


def pytest_collection_modifyitems(session, config, items):
    def rank(item):
        name = Path(str(item.fspath)).name
        return ORDER.index(name) if name in ORDER else len(ORDER)

    items.sort(key=rank)  # stable: keeps file order within a rank


@pytest.fixture(scope="session")
def rendered():
    """The book rendered once (fallback renderer) from the executed notebooks."""
    import book

    return book.render(fallback=True)
