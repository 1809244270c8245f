"""`llmbook eval` on the command line: its help, a JSON report written for each task from a checkpoint that carries
its own tokenizer, and bad input stopped with a message (no traceback) before any work."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from llmbook.cli import main
from llmbook.data import load_tokenizer, save_tokenizer, train_bpe
from llmbook.evaluate import MMLU_SCORES, TASKS
from llmbook.foundations import ENDOFTEXT
from llmbook.model import GPT, GPTConfig, save_checkpoint


def llmbook(*args):
    exe = shutil.which("llmbook") or str(Path(sys.executable).parent / "llmbook")
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    "A one-layer GPT with a 300-token BPE of its own, saved the way the chapter saves its models."
    tok = train_bpe(
        ["def f(x):\n    return x + 1\n" * 50 + "The answer is 42. " * 50],
        300,
        special_tokens=[ENDOFTEXT],
    ).to_tiktoken()
    torch.manual_seed(0)
    model = GPT(
        GPTConfig.gpt2(
            vocab_size=tok.n_vocab, n_layer=1, n_head=2, n_embd=32, max_seq_len=128
        )
    )
    path = tmp_path_factory.mktemp("ckpt") / "model"
    save_tokenizer(tok, save_checkpoint(model, path))
    return path, tok


def test_help_names_every_task_and_score():
    r = llmbook("eval", "--help")
    assert (
        r.returncode == 0
        and all(t in r.stdout for t in TASKS)
        and all(s in r.stdout for s in MMLU_SCORES)
    )
    assert "examples:" in r.stdout


def test_tokenizer_round_trip(ckpt):
    path, tok = ckpt
    again = load_tokenizer(path)
    text = "def g(y):\n    return 'The answer'"
    assert again.encode(text) == tok.encode(text) and again.n_vocab == tok.n_vocab


@pytest.mark.parametrize(
    "task, args, n",
    [
        ("mmlu", ["--limit", "57", "--shots", "0", "--score", "text_per_byte"], 57),
        ("gsm8k", ["--limit", "3"], 3),
        ("humaneval", ["--limit", "2"], 2),
    ],
)
def test_report_for_each_task(ckpt, tmp_path, task, args, n):
    out = tmp_path / f"{task}.json"
    r = llmbook("eval", str(ckpt[0]), task, *args, "--out", str(out))
    assert r.returncode == 0, r.stderr
    report = json.loads(out.read_text())
    assert report["task"] == task and report.get("n", report.get("problems")) == n
    assert json.loads(r.stdout.strip().splitlines()[-1])["task"] == task
    assert [p.name for p in tmp_path.iterdir()] == [
        out.name
    ]  # the atomic write left no temporary file


def test_perplexity_of_a_file(ckpt, tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("def f(x):\n    return x + 1\n" * 20)
    r = llmbook("eval", str(ckpt[0]), "perplexity", "--text", str(text))
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert (
        summary["task"] == "perplexity"
        and summary["tokens"] > 0
        and summary["bits_per_byte"] > 0
    )


@pytest.mark.parametrize(
    "args, says",
    [
        (["{tmp}", "mmlu"], "is not a checkpoint"),
        (["{tmp}/none", "mmlu"], "does not exist"),
        (["{bare}", "mmlu"], "has no tokenizer"),
        (["{ckpt}", "mmlu", "--out", "{tmp}"], "is a directory"),
        (["{ckpt}", "humaneval", "--workers", "0"], "--workers"),
        (["{ckpt}", "mmlu", "--limit", "10"], "one question per subject"),
        (["{ckpt}", "humaneval", "--limit", "500"], "between 1"),
        (["{ckpt}", "gsm8k", "--shots", "-1"], "cannot be negative"),
        (["{ckpt}", "perplexity"], "needs text"),
        (["{ckpt}", "perplexity", "--text", "{tmp}/missing.txt"], "no such file"),
        (["{ckpt}", "mmlu", "--tokenizer", "gpt2"], "tokenizer has 50,257 tokens"),
        (
            ["{ckpt}", "mmlu", "--tokenizer", "nonsense"],
            "neither a directory nor an encoding",
        ),
        (["{ckpt}", "gsm8k", "--out", "{tmp}/no/such/report.json"], "does not exist"),
        (["{ckpt}", "bleu"], "invalid choice"),
    ],
)
def test_bad_input_is_a_message(ckpt, tmp_path, capsys, args, says):
    "In this process (milliseconds each); test_cli_bad_input runs the console script."
    bare = tmp_path / "bare"  # a checkpoint without its tokenizer
    shutil.copytree(ckpt[0], bare)
    (bare / "tokenizer.tiktoken").unlink()
    with pytest.raises(SystemExit) as stop:
        main(["eval", *[a.format(tmp=tmp_path, ckpt=ckpt[0], bare=bare) for a in args]])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and says in err, err
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
