"""The command line's path end to end on tiny data: train, then from a COPY of the final
checkpoint (it must be self-contained) generate, evaluate, fine-tune with SFT (full) and
DPO (LoRA, merged), and chat with the results (issue 12)."""

import io
import json
import shutil

import pytest
from conftest import pack_by_hand
from safetensors import safe_open

from llmbook.cli import main
from llmbook.finetune import CHAT_TOKENS, load_chat_model

TEXT = " ".join(f"{w}{i}" for i in range(40) for w in ("to be", "or not", "that is"))


def run(capsys, *argv) -> str:
    "Standard output of `llmbook ARGV`, which must succeed."
    main([str(a) for a in argv])
    return capsys.readouterr().out


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    "A two-step tiny run on hand-packed tokens of a 300-token BPE; its final checkpoint."
    root = tmp_path_factory.mktemp("path")
    data = root / "tokens"
    tok = pack_by_hand(data, TEXT)
    config = {
        "model": {"preset": "tiny", "max_seq_len": 64},
        "train": {"batch_size": 2, "block_size": 32, "max_steps": 2, "compile": False},
        "data": {"dir": str(data)},
        "out_dir": str(root / "run"),
        "progress": False,
    }
    (root / "run.json").write_text(json.dumps(config))
    main(["train", str(root / "run.json")])
    copy = root / "elsewhere" / "base"  # nothing outside the directory is needed
    shutil.copytree(root / "run" / "final", copy)
    return root, copy, tok


def test_generate_streams_and_repeats_with_a_seed(trained, capsys, monkeypatch):
    root, ckpt, tok = trained
    args = ("generate", ckpt, "to be", "--seed", "1", "--max-new-tokens", "12")
    first = run(capsys, *args)
    assert first.startswith("to be") and len(first) > len("to be\n")
    assert run(capsys, *args) == first
    monkeypatch.setattr("sys.stdin", io.StringIO("to be\nthat is\n"))
    both = run(capsys, "generate", ckpt, "--temperature", "0", "--max-new-tokens", "4")
    greedy = run(capsys, "generate", ckpt, "that is", "--temperature", "0")
    assert (
        both.count("\n") == 2
        and both.splitlines()[1] == greedy.splitlines()[0][: len(both.splitlines()[1])]
    )


def test_eval_from_the_copy(trained, capsys, tmp_path):
    root, ckpt, tok = trained
    text = tmp_path / "t.txt"
    text.write_text(TEXT)
    summary = json.loads(run(capsys, "eval", ckpt, "perplexity", "--text", text))
    assert summary["tokenizer"] == str(ckpt) and summary["tokens"] == len(
        tok.encode(TEXT)
    )


def chat(capsys, monkeypatch, ckpt, messages: str) -> list[str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(messages))
    return run(
        capsys, "chat", ckpt, "--temperature", "0", "--max-new-tokens", "6"
    ).splitlines()


def test_sft_then_dpo_with_lora_then_chat(trained, capsys, monkeypatch, tmp_path):
    root, ckpt, tok = trained
    talk = [
        {"role": "user", "content": "to be1"},
        {"role": "assistant", "content": "or not1"},
        {"role": "user", "content": "and then"},  # a second turn, trained in context
        {"role": "assistant", "content": "the question"},
    ]
    (tmp_path / "sft.jsonl").write_text(json.dumps({"messages": talk}) + "\n")
    pair = {"prompt": "to be2", "chosen": "or not2", "rejected": "that is2"}
    (tmp_path / "dpo.jsonl").write_text(json.dumps(pair) + "\n")
    sft, dpo = tmp_path / "sft", tmp_path / "dpo"
    report = json.loads(
        run(
            capsys,
            "finetune",
            "sft",
            ckpt,
            tmp_path / "sft.jsonl",
            "--out",
            sft,
            "--steps",
            "3",
        )
    )
    assert report["steps"] == 3 and report["out"] == str(sft)
    model, chat_tok = load_chat_model(sft)
    # the template's tokens were added after the base tokenizer's ids; rows grew to match
    assert chat_tok.n_vocab == tok.n_vocab + len(CHAT_TOKENS) - 1
    assert model.config.vocab_size == chat_tok.n_vocab
    assert chat_tok.encode_ordinary(TEXT) == tok.encode_ordinary(TEXT)
    assert len(chat(capsys, monkeypatch, sft, "to be1\n/reset\nthat is\n")) == 2
    argv = (
        "finetune",
        "dpo",
        sft,
        tmp_path / "dpo.jsonl",
        "--out",
        dpo,
        "--steps",
        "2",
    )
    json.loads(run(capsys, *argv, "--lora-rank", "2"))
    with safe_open(dpo / "model.safetensors", "pt") as f:
        assert not [k for k in f.keys() if k.endswith((".A", ".B")) or ".base." in k]
    merged, _ = load_chat_model(dpo)
    assert merged.config.vocab_size == chat_tok.n_vocab  # not grown twice
    assert len(chat(capsys, monkeypatch, dpo, "to be2\n")) == 1
