"""Perplexity through the chapter's harness equals the one computed by Hugging Face transformers on the
exported model, for both model families and several strides; and the benchmark loaders find their data."""

import math

import pytest
import torch

from llmbook.evaluate import (
    gpt_lm,
    hf_lm,
    load_gsm8k,
    load_mmlu,
    perplexity,
    stratified_sample,
    token_nll,
)
from llmbook.foundations import load_encoding
from llmbook.model import GPT, GPTConfig, export_hf

transformers = pytest.importorskip("transformers")
TEXT = (
    "It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in "
    "want of a wife. However little known the feelings or views of such a man may be "
) * 6


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_perplexity_matches_transformers(tmp_path, family):
    tok = load_encoding("gpt2")
    torch.manual_seed(0)
    cfg = getattr(GPTConfig, family)(
        vocab_size=tok.n_vocab, n_layer=2, n_head=4, n_embd=64, max_seq_len=64
    )
    model = GPT(cfg).eval()
    hf_cls = (
        transformers.GPT2LMHeadModel
        if family == "gpt2"
        else transformers.LlamaForCausalLM
    )
    hf = hf_cls.from_pretrained(export_hf(model, tmp_path)).eval()
    ours, theirs = gpt_lm(model, tok, tok.eot_token), hf_lm(hf, tok, tok.eot_token)
    for stride in (64, 32, 7, 1):
        a, b = perplexity(ours, TEXT, stride), perplexity(theirs, TEXT, stride)
        assert math.isclose(a["perplexity"], b["perplexity"], rel_tol=1e-4), (
            stride,
            a,
            b,
        )
    ids = torch.tensor([ours.encode(TEXT)[:64]])
    with torch.no_grad():
        hf_loss = hf(ids, labels=ids).loss.item()
    assert math.isclose(token_nll(ours, ids[0]).mean().item(), hf_loss, rel_tol=1e-4)


def test_stride_changes_the_number_for_a_long_text():
    tok = load_encoding("gpt2")
    torch.manual_seed(0)
    model = GPT(
        GPTConfig.gpt2(
            vocab_size=tok.n_vocab, n_layer=1, n_head=2, n_embd=32, max_seq_len=16
        )
    ).eval()
    lm = gpt_lm(model, tok)
    ids = lm.encode(TEXT)
    assert len(ids) > 100
    full, chunked = token_nll(lm, ids, stride=1), token_nll(lm, ids, stride=16)
    assert not torch.allclose(full, chunked)  # different contexts, different losses
    torch.testing.assert_close(
        full[:15], chunked[:15]
    )  # the first window is the same in both


def test_loaders():
    mmlu = load_mmlu()
    assert len(mmlu) == 14_042 and len({q["subject"] for q in mmlu}) == 57
    for n in (57, 60, 500, 1000):
        sub = stratified_sample(mmlu, n, key=lambda q: q["subject"], seed=1)
        assert len(sub) == n and len({q["subject"] for q in sub}) == 57
        assert (
            len({(q["subject"], q["question"], tuple(q["choices"])) for q in sub}) == n
        )
    gsm = load_gsm8k()
    assert len(gsm) == 1319 and all(p["answer"] is not None for p in gsm)
