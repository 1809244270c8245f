"""The `llmbook` console script and `llmbook train`: help, overrides, a short run on packed tokens that
resumes, and errors that name the option."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from llmbook.cli import (
    DEFAULTS,
    ConfigError,
    apply_overrides,
    load_config,
)
from llmbook.data import save_tokenizer, train_bpe
from llmbook.foundations import ENDOFTEXT
from llmbook.train import FORMAT_VERSION

ROOT = Path(__file__).resolve().parents[1]


def llmbook(*args, **kw):
    exe = shutil.which("llmbook") or str(Path(sys.executable).parent / "llmbook")
    return subprocess.run(
        [exe, *args], capture_output=True, text=True, timeout=300, **kw
    )


def test_console_script_help():
    r = llmbook("--help")
    assert r.returncode == 0 and "train" in r.stdout


def test_overrides():
    cfg = apply_overrides(
        DEFAULTS,
        ["--train.lr", "3e-4", "--n_layer", "4", "--out_dir", "x", "--grad_clip", "0"],
    )
    assert (
        cfg["train"] == {"compile": True, "bf16": "auto", "lr": 3e-4, "grad_clip": 0}
        and cfg["model"]["n_layer"] == 4
        and cfg["out_dir"] == "x"
    )
    with pytest.raises(ConfigError, match="no such option"):
        apply_overrides(DEFAULTS, ["--nope", "1"])


def test_example_configs_parse():
    from llmbook.cli import check_config, recipe_stages

    for path in (ROOT / "configs").glob("*.json"):
        if path.name.startswith("recipe-"):
            stages = recipe_stages(json.loads(path.read_text()), path.parent)
            assert [name for name, _ in stages][:4] == [
                "prepare",
                "train",
                "sft",
                "dpo",
            ]
            continue
        cfg = check_config(load_config(path))
        preset = dict(cfg["model"]).pop("preset")
        assert preset in __import__("llmbook.model", fromlist=["PRESETS"]).PRESETS


def test_train_and_resume(tmp_path):
    data = tmp_path / "tokens"
    tok = train_bpe("to be or not to be " * 40, 300, special_tokens=[ENDOFTEXT])
    save_tokenizer(tok, data)  # packed by hand, with its tokenizer, no manifest
    rng = np.random.default_rng(0)
    for split, n in (("train", 5000), ("val", 1000)):
        rng.integers(0, 256, n).astype(np.uint16).tofile(data / f"{split}.bin")
    (data / "meta.json").write_text(
        json.dumps({"dtype": "uint16", "n_vocab": tok.n_vocab, "eot_id": 256})
    )
    config = tmp_path / "run.json"
    config.write_text(
        json.dumps(
            {
                "model": {"preset": "tiny", "max_seq_len": 32},
                "train": {
                    "batch_size": 4,
                    "block_size": 32,
                    "max_steps": 6,
                    "ckpt_every": 3,
                    "eval_every": 3,
                    "eval_batches": 1,
                },
                "data": {"dir": str(data)},
                "out_dir": str(tmp_path / "run"),
            }
        )
    )
    r = llmbook("train", str(config))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.splitlines()[-1])["step"] == 6
    r = llmbook("train", str(config), "--max_steps", "9")
    assert r.returncode == 0, r.stderr
    assert "from step 6 to 9" in r.stderr
    final = tmp_path / "run" / "final"
    assert (final / "model.safetensors").exists()
    assert (final / "tokenizer.tiktoken").read_bytes() == (
        data / "tokenizer.tiktoken"
    ).read_bytes()  # the checkpoint carries the data's tokenizer
    # every step's checkpoint is self-contained too: weights, config, tokenizer, state
    steps = sorted((tmp_path / "run").glob("step_*"))
    assert steps, "no step checkpoints were kept"
    for step in [*steps, final]:
        for name in ("model.safetensors", "config.json", "tokenizer.tiktoken"):
            assert (step / name).is_file(), f"{step.name} lacks {name}"
        trainer_json = json.loads((step / "trainer.json").read_text())
        assert trainer_json["format_version"] == FORMAT_VERSION
    log = [
        json.loads(line)
        for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    assert [m["step"] for m in log] == list(range(1, 10)) and "val_loss" in log[2]


def test_bad_option_is_a_message_not_a_traceback():
    r = llmbook("train", "--learning-rate", "1")
    assert r.returncode == 2 and "no such option" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.splitlines()) == 1
