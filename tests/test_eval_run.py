"""`run_eval`, the library entry point the command line calls: bad input is refused with
an EvalInputError that names the culprit, before the model is loaded; the report is
written atomically and is always valid JSON; a few-shot prompt that does not fit the
model's context is reduced (the report says to what), never cropped in silence."""

import json
import math
import os
import random
import stat

import pytest
import torch

import llmbook.evaluate as evaluate
from llmbook.data import save_tokenizer, train_bpe
from llmbook.evaluate import EvalInputError, run_eval
from llmbook.foundations import ENDOFTEXT
from llmbook.model import GPT, GPTConfig, save_checkpoint


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    "A one-layer GPT with a 300-token BPE of its own and a 128-token context."
    text = "def f(x):\n    return x + 1\n" * 50 + "The answer is 42. " * 50
    tok = train_bpe([text], 300, special_tokens=[ENDOFTEXT]).to_tiktoken()
    torch.manual_seed(0)
    cfg = GPTConfig.gpt2(
        vocab_size=tok.n_vocab, n_layer=1, n_head=2, n_embd=32, max_seq_len=128
    )
    path = tmp_path_factory.mktemp("ckpt") / "model"
    return save_tokenizer(tok, save_checkpoint(GPT(cfg), path))


@pytest.fixture
def never_loaded(monkeypatch):
    "Fail the test if run_eval gets as far as loading the model."

    def load(path):
        raise AssertionError(
            f"the model was loaded before the input was checked: {path}"
        )

    monkeypatch.setattr(evaluate, "load_checkpoint", load)


def text_file(tmp_path, name, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "task, kwargs, says",
    [
        ("mmlu", dict(out_json="{tmp}"), "is a directory"),
        ("mmlu", dict(out_json="{tmp}/no/such/report.json"), "does not exist"),
        ("perplexity", dict(text="{empty}"), "is empty"),
        ("perplexity", dict(text="{blank}"), "is empty"),
        ("perplexity", dict(text="{latin1}"), "not UTF-8"),
        ("perplexity", dict(text="{tmp}/missing.txt"), "no such file"),
        ("perplexity", dict(), "needs text"),
        ("perplexity", dict(text="{good}", limit=5), "whole text"),
        ("humaneval", dict(workers=0), "workers=0"),
        ("humaneval", dict(workers=-2), "workers=-2"),
        ("humaneval", dict(limit=0), "limit=0"),
        ("humaneval", dict(limit=165), "limit=165"),
        ("mmlu", dict(limit=56), "one question per subject"),
        ("mmlu", dict(limit=14_043), "limit=14043"),
        ("gsm8k", dict(limit=1_316), "limit=1316"),  # 1,319 less the 4 examples
        ("gsm8k", dict(k=1_319), "shots=1319"),
        ("gsm8k", dict(k=-1), "cannot be negative"),
        ("mmlu", dict(score="vibes"), "score='vibes'"),
        ("bleu", dict(), "task='bleu'"),
    ],
)
def test_bad_input_is_refused_before_the_model_loads(
    ckpt, tmp_path, never_loaded, task, kwargs, says
):
    files = dict(
        tmp=tmp_path,
        empty=text_file(tmp_path, "empty.txt", b""),
        blank=text_file(tmp_path, "blank.txt", b" \n\t\n"),
        latin1=text_file(tmp_path, "latin1.txt", "Fran\xe7ais".encode("latin-1")),
        good=text_file(tmp_path, "good.txt", b"def f(x):\n    return x\n"),
    )
    kwargs = {
        k: v.format(**files) if isinstance(v, str) else v for k, v in kwargs.items()
    }
    with pytest.raises(EvalInputError) as e:
        run_eval(ckpt, task, **kwargs)
    assert says in str(e.value) and "\n" not in str(e.value), str(e.value)


def test_a_missing_checkpoint_is_named(tmp_path, never_loaded):
    with pytest.raises(EvalInputError, match="does not exist"):
        run_eval(tmp_path / "nowhere", "mmlu")
    with pytest.raises(EvalInputError, match="not a checkpoint directory"):
        run_eval(tmp_path, "mmlu")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through permission bits")
def test_an_unwritable_report_directory_is_refused(ckpt, tmp_path, never_loaded):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with pytest.raises(EvalInputError, match="cannot write the report"):
            run_eval(ckpt, "mmlu", out_json=locked / "r.json")
    finally:
        locked.chmod(stat.S_IRWXU)


def test_a_read_only_report_directory_is_refused(ckpt, never_loaded):
    # /proc refuses new files even to root: the check must try, not read permission bits
    with pytest.raises(EvalInputError, match="cannot write the report"):
        run_eval(ckpt, "mmlu", out_json="/proc/llmbook-report.json")


@pytest.mark.parametrize("shots, fits", [(4, 0), (0, 0)])
def test_few_shot_prompts_are_reduced_to_fit_and_recorded(ckpt, shots, fits):
    # 128 tokens of context, 64 of them for the answer: four worked GSM8K examples
    # cannot fit, so the run uses fewer and says so
    r = run_eval(ckpt, "gsm8k", limit=2, k=shots)
    assert r["k_asked"] == shots and r["k"] == fits
    limit = 128 - r["max_new_tokens"]
    assert r["cropped_prompts"] == sum(n > limit for n in prompt_lengths(ckpt, r))


def prompt_lengths(ckpt, report):
    "Token counts of the zero-shot GSM8K prompts of the problems run_eval drew."
    tok = evaluate.load_tokenizer(ckpt)
    probs = evaluate.load_gsm8k()
    rng = random.Random(report["seed"])  # the same draw as run_eval's
    shots = rng.sample(probs, report["k_asked"])
    rest = [p for p in probs if all(p["question"] != s["question"] for s in shots)]
    drawn = rng.sample(rest, report["n"])
    return [len(tok.encode_ordinary(evaluate.gsm8k_prompt(p))) for p in drawn]


def test_mmlu_shots_are_reduced_until_the_prompts_fit(ckpt):
    r = run_eval(ckpt, "mmlu", limit=57, k=5)
    assert r["k_asked"] == 5 and r["k"] < 5, r["k"]


def test_the_report_is_written_atomically_and_is_valid_json(ckpt, tmp_path):
    out = tmp_path / "report.json"
    r = run_eval(ckpt, "mmlu", limit=57, k=0, out_json=out)
    assert json.loads(out.read_text())["predictions"] == r["predictions"]
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_a_nan_result_is_written_as_null(ckpt, tmp_path, monkeypatch):
    # A model whose weights went NaN: the perplexity is NaN, the report still valid JSON
    real = evaluate.load_checkpoint

    def poisoned(path):
        model = real(path)
        with torch.no_grad():
            model.lm_head.weight.fill_(float("nan"))
        return model

    monkeypatch.setattr(evaluate, "load_checkpoint", poisoned)
    text = text_file(tmp_path, "t.txt", b"def f(x):\n    return x + 1\n" * 5)
    out = tmp_path / "r.json"
    r = run_eval(ckpt, "perplexity", text=text, out_json=out)
    saved = json.loads(out.read_text())  # json.loads accepts NaN; check the text too
    assert "NaN" not in out.read_text() and saved["loss"] is None
    assert "loss" in saved["non_finite"] and "perplexity" in saved["non_finite"]
    assert r["loss"] is None and not any(
        isinstance(v, float) and math.isnan(v) for v in r.values()
    )


def test_a_humaneval_report_says_how_the_sandbox_was_walled(ckpt):
    r = run_eval(ckpt, "humaneval", limit=1, workers=1)
    walls = evaluate.available_walls()
    assert r["sandbox"].startswith("uid" if walls.uid else "same uid"), r["sandbox"]
    assert ("cannot give" in r["sandbox"]) == bool(walls.missing())
