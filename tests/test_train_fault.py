"""Fault tolerance: `torchrun --max-restarts=1` runs `llmbook train` with DDP on two processes; one worker
is killed with SIGKILL mid-run; torchrun restarts the job, the trainer resumes from the latest complete
checkpoint, and the final weights equal those of an uninterrupted run (to 1e-6; in practice exactly)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

STEPS, CKPT = 60, 10


def make_config(tmp: Path, name: str) -> Path:
    data = tmp / "tokens"
    if not (data / "meta.json").exists():
        data.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(0)
        for split, n in (("train", 20000), ("val", 2000)):
            rng.integers(0, 128, n).astype(np.uint16).tofile(data / f"{split}.bin")
        (data / "meta.json").write_text(
            json.dumps({"dtype": "uint16", "n_vocab": 128, "eot_id": 0})
        )
    cfg = {
        "model": {"preset": "tiny", "n_layer": 4, "n_embd": 128, "max_seq_len": 64},
        "train": {
            "batch_size": 8,
            "block_size": 64,
            "max_steps": STEPS,
            "ckpt_every": CKPT,
            "warmup_steps": 5,
            "lr": 1e-3,
            "compile": False,
        },  # eager: each restart would compile again; this is about restarts
        "data": {"dir": str(data)},
        "out_dir": str(tmp / name),
        "parallel": "ddp",
    }
    path = tmp / f"{name}.json"
    path.write_text(json.dumps(cfg))
    return path


def torchrun(config: Path, restarts: int) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            f"--max-restarts={restarts}",
            "-m",
            "llmbook.cli",
            "train",
            str(config),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        start_new_session=True,
    )


def worker_pid(local_rank: int) -> int | None:
    "The pid of a running `llmbook.cli` worker with LOCAL_RANK=local_rank (read from /proc)."
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes()
            env = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if (
            b"llmbook.cli" in cmd
            and f"LOCAL_RANK={local_rank}".encode() in env
            and b"TORCHELASTIC_RUN_ID" in b" ".join(env)
        ):
            return int(proc.name)
    return None


def last_step(log: Path) -> int:
    if not log.exists():
        return 0
    steps = [
        json.loads(line)["step"]
        for line in log.read_text().splitlines()
        if line.endswith("}")
    ]
    return max(steps, default=0)


def test_sigkill_worker_then_restart_matches_uninterrupted(tmp_path):
    clean = torchrun(make_config(tmp_path, "clean"), restarts=0)
    out, err = clean.communicate(timeout=300)
    assert clean.returncode == 0, err[-3000:]

    run = torchrun(make_config(tmp_path, "killed"), restarts=1)
    log = tmp_path / "killed" / "metrics.jsonl"
    deadline, killed = time.time() + 240, None
    while time.time() < deadline and run.poll() is None and killed is None:
        if last_step(log) >= CKPT + 3 and (pid := worker_pid(1)):
            os.kill(pid, signal.SIGKILL)
            killed = last_step(log)
        time.sleep(0.05)
    assert killed is not None and killed < STEPS, (
        "the run ended before a worker could be killed"
    )
    out, err = run.communicate(timeout=300)
    assert run.returncode == 0, err[-3000:]
    steps = [json.loads(line)["step"] for line in log.read_text().splitlines()]
    assert len(steps) > len(
        set(steps)
    )  # steps after the checkpoint ran twice: it restarted
    assert max(steps) == STEPS
    a = load_file(tmp_path / "clean" / "final" / "model.safetensors")
    b = load_file(tmp_path / "killed" / "final" / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6)
