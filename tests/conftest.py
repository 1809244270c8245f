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


def pack_by_hand(data: Path, text: str):
    """Tokens packed without `llmbook prepare`: a 300-token BPE of `text`, saved with
    its tokenizer, ten copies of `text` split 4:1 into train.bin and val.bin."""
    import json

    import numpy as np

    from llmbook.data import save_tokenizer, train_bpe
    from llmbook.foundations import ENDOFTEXT

    tok = train_bpe(text, 300, special_tokens=[ENDOFTEXT])
    save_tokenizer(tok, data)
    ids = np.array(tok.encode_ordinary(text * 10), dtype=np.uint16)
    ids[: len(ids) * 4 // 5].tofile(data / "train.bin")
    ids[len(ids) * 4 // 5 :].tofile(data / "val.bin")
    meta = {"dtype": "uint16", "n_vocab": tok.n_vocab, "eot_id": 256}
    (data / "meta.json").write_text(json.dumps(meta))
    return tok
