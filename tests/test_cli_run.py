"""`llmbook run RECIPE` on tiny data: stopped by a bad stage after training, then resumed
with the stage fixed; the finished stages are skipped (training is not repeated) and the
report card holds its tables, samples, chat replies and figures (issue 12)."""

import json

import pytest
from conftest import pack_by_hand

from llmbook.cli import main

TEXT = " ".join(f"{w}{i}" for i in range(40) for w in ("to be", "or not", "that is"))


def test_run_stops_then_resumes(tmp_path, capsys):
    data = tmp_path / "tokens"
    pack_by_hand(data, TEXT)
    config = {
        "model": {"preset": "tiny", "max_seq_len": 64},
        "train": {"batch_size": 2, "block_size": 32, "max_steps": 3, "compile": False},
        "data": {"dir": str(data)},
        "progress": False,
    }
    (tmp_path / "run.json").write_text(json.dumps(config))
    (tmp_path / "text.txt").write_text(TEXT)
    recipe = {
        "config": "run.json",
        "out_dir": str(tmp_path / "out"),
        "chat_examples": 8,
        "train": {"eval_every": 3, "eval_batches": 1},
        "sft": {"steps": 2, "batch_size": 2},
        "dpo": {"steps": 0},  # a bad stage: the run stops there, exit status 2
        "eval": [["perplexity", "--text", str(tmp_path / "text.txt")]],
        "prompts": ["to be"],
        "chat": ["that is1"],
    }
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps(recipe))
    with pytest.raises(SystemExit) as stop:
        main(["run", str(path)])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "argument --steps" in err, err
    done = sorted(p.stem for p in (tmp_path / "out" / "stages").iterdir())
    assert done == ["prepare", "sft", "train"]
    path.write_text(json.dumps(recipe | {"dpo": {"steps": 2, "lora_rank": 2}}))
    main(["run", str(path)])
    out, err = capsys.readouterr()
    assert (
        "stage train: done before" in err and "stage dpo: llmbook finetune dpo" in err
    )
    log = (tmp_path / "out" / "base" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in log] == [1, 2, 3]  # trained once
    card = (tmp_path / "out" / "report.md").read_text()
    assert out.strip() == str(tmp_path / "out" / "report.md")
    assert "| perplexity-base |" in card and "| perplexity-dpo |" in card
    assert "bits per byte" in card and "**to be**" in card and "**that is1**" in card
    rows = {
        r.split("|")[1].strip(): r.split("|")[2].strip()
        for r in card.splitlines()
        if r.startswith("| ")
    }
    assert rows["train"].isdigit() and rows["all stages"].isdigit(), rows  # seconds
    assert "3 steps, loss" in card and "2 steps, loss" in card  # train; sft and dpo
    figures = json.loads((tmp_path / "out" / "report.json").read_text())
    assert figures["stages"]["train"]["step"] == 3 and set(figures["chat"]) == {
        "that is1"
    }
    assert (tmp_path / "out" / "loss.png").read_bytes()[:4] == b"\x89PNG"
