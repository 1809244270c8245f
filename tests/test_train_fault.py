"""Fault tolerance. `torchrun --max-restarts=1` runs `llmbook train` with DDP on two
processes; one worker is killed with SIGKILL mid-run; torchrun restarts the job, the
trainer resumes from the latest complete checkpoint, and the final weights equal those
of an uninterrupted run. Then, in one process: SIGKILL at 12 seeded moments and at
named points inside the checkpoint write, SIGTERM and SIGINT, the directory lock and
a changed configuration on resume; after each, resuming gives the uninterrupted run's
weights exactly and a log with one record per step."""

import json
import multiprocessing as mp
import os
import random
import re
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from llmbook.data import save_tokenizer, train_bpe
from llmbook.foundations import ENDOFTEXT
from llmbook.model import GPT, GPTConfig, load_checkpoint
from llmbook.train import (
    ResumeError,
    TrainConfig,
    Trainer,
    TrainingError,
    read_metrics,
)

STEPS, CKPT = 60, 10


def make_config(tmp: Path, name: str) -> Path:
    data = tmp / "tokens"
    if not (data / "meta.json").exists():
        data.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(0)
        for split, n in (("train", 20000), ("val", 2000)):
            rng.integers(0, 128, n).astype(np.uint16).tofile(data / f"{split}.bin")
        # packed by hand, with a tokenizer of its own that covers the ids (the CLI
        # reads a data directory's tokenizer and refuses one that does not match)
        tok = train_bpe("to be or not to be " * 40, 260, special_tokens=[ENDOFTEXT])
        save_tokenizer(tok, data)
        (data / "meta.json").write_text(
            json.dumps({"dtype": "uint16", "n_vocab": tok.n_vocab, "eot_id": 0})
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
    starts = [int(s) for s in re.findall(r"from step (\d+) to", err)]
    assert len(starts) == 2 and starts[1] >= CKPT, err[-3000:]  # it restarted
    steps = [json.loads(line)["step"] for line in log.read_text().splitlines()]
    assert steps == list(range(1, STEPS + 1))  # each step logged once
    a = load_file(tmp_path / "clean" / "final" / "model.safetensors")
    b = load_file(tmp_path / "killed" / "final" / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6)


# ---- Faults in one process, through the real Trainer: kills at seeded moments and
# inside the checkpoint write, signals, the directory lock, a changed schedule. Each
# training run is a forked child (cheap: torch is already imported), so that a
# SIGKILL ends it as it would end a real run; resuming happens in this process.

torch.set_num_threads(1)
TINY = GPTConfig.gpt2(vocab_size=64, max_seq_len=16, n_layer=2, n_head=2, n_embd=32)
CFG = TrainConfig(
    batch_size=4, block_size=16, max_steps=30, warmup_steps=4, ckpt_every=4, lr=3e-3
)
DATA = np.random.default_rng(1).integers(0, 64, 4000)


def fresh() -> GPT:
    torch.manual_seed(0)
    return GPT(TINY)


def train(out_dir, cfg=CFG, **kw):
    return Trainer(fresh(), cfg, DATA, out_dir=out_dir, progress=False, **kw).fit()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    "The uninterrupted run's final weights, and how long it took (with checkpoints)."
    out = tmp_path_factory.mktemp("reference")
    start = time.perf_counter()
    train(out)
    seconds = time.perf_counter() - start
    return load_file(out / "step_000030" / "model.safetensors"), seconds


def child(target, *args) -> mp.Process:
    proc = mp.get_context("fork").Process(target=target, args=args, daemon=True)
    proc.start()
    return proc


def resume_and_compare(out_dir, want: dict):
    "Resume to the end; the weights and the log must be the uninterrupted run's."
    train(out_dir)
    got = load_file(out_dir / "step_000030" / "model.safetensors")
    assert got.keys() == want.keys()
    for k in want:
        assert torch.equal(got[k], want[k]), k
    steps = [r["step"] for r in read_metrics(out_dir / "metrics.jsonl")]
    assert steps == list(range(1, CFG.max_steps + 1))
    assert (out_dir / "latest").read_text() == "step_000030"
    assert not list(out_dir.glob(".tmp-*"))


# The moments a run can be killed at: before any call of these, counted in order.
EVENTS = {
    "llmbook.train": ["save_checkpoint", "save_optimizer", "save_file", "atomic_write"],
    "llmbook.train.MetricsLog": ["write"],
    "llmbook.train.StepTrainer": ["train_step"],
    "os": ["rename"],
    "shutil": ["rmtree"],
}


def train_counting_events(out_dir, kill_at_event: int, count):
    "In the child: count the events; SIGKILL itself before event `kill_at_event`."
    import importlib

    for where, names in EVENTS.items():
        module, _, cls = where.partition(".train.")
        owner = importlib.import_module(where if not cls else module + ".train")
        owner = getattr(owner, cls) if cls else owner
        for name in names:
            real = getattr(owner, name)

            def counted(*args, _real=real, **kw):
                count.value += 1
                if count.value == kill_at_event:
                    os.kill(os.getpid(), signal.SIGKILL)
                return _real(*args, **kw)

            setattr(owner, name, counted)
    train(out_dir)


def test_sigkill_at_seeded_moments(tmp_path, reference):
    count = mp.get_context("fork").Value("i", 0)
    dry = child(train_counting_events, tmp_path / "dry", 0, count)
    dry.join()
    assert dry.exitcode == 0 and count.value > 100  # every step, every write
    moments = sorted(random.Random(0).sample(range(1, count.value + 1), 12))
    for i, moment in enumerate(moments):
        out = tmp_path / f"run{i}"
        count.value = 0
        proc = child(train_counting_events, out, moment, count)
        proc.join()
        assert proc.exitcode == -signal.SIGKILL and count.value == moment
        resume_and_compare(out, reference[0])


def kill_at(point: str):
    "In the child: SIGKILL itself at `point` of the second checkpoint write."
    import llmbook.train as train_module

    calls = {"save": 0, "rename": 0}

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    real_save, real_rename = train_module.save_checkpoint, os.rename

    def save(*args, **kw):  # writes model.safetensors and config.json
        real_save(*args, **kw)
        calls["save"] += 1
        if point == "after the weights" and calls["save"] == 2:
            die()

    def rename(src, dst):
        if not Path(src).name.startswith(".tmp-step_"):
            return real_rename(src, dst)
        calls["rename"] += 1
        if point == "before the rename" and calls["rename"] == 2:
            die()
        real_rename(src, dst)
        if point == "after the rename" and calls["rename"] == 2:
            die()

    train_module.save_checkpoint = save
    os.rename = rename


def train_and_die(out_dir, point):
    kill_at(point)
    train(out_dir)


@pytest.mark.parametrize(
    "point", ["after the weights", "before the rename", "after the rename"]
)
def test_sigkill_inside_checkpoint_write(tmp_path, reference, point):
    proc = child(train_and_die, tmp_path, point)
    proc.join()
    assert proc.exitcode == -signal.SIGKILL
    latest = (tmp_path / "latest").read_text()
    assert latest == "step_000004"  # the second checkpoint never became `latest`
    resume_and_compare(tmp_path, reference[0])


def train_and_signal(out_dir, signum):
    def stop_at_step_7(m):
        if m["step"] == 7:
            os.kill(os.getpid(), signum)

    trainer = Trainer(fresh(), CFG, DATA, out_dir=out_dir, progress=False)
    trainer.fit(on_log=stop_at_step_7)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_finishes_the_step_checkpoints_and_exits(tmp_path, reference, signum):
    proc = child(train_and_signal, tmp_path, signum)
    proc.join()
    assert proc.exitcode == 128 + signum
    assert (tmp_path / "latest").read_text() == "step_000007"  # not a due step
    resume_and_compare(tmp_path, reference[0])


def hold_the_lock(out_dir, ready):
    trainer = Trainer(fresh(), CFG, DATA, out_dir=out_dir, progress=False)
    ready.set()
    time.sleep(60)
    trainer.fit()


def test_lock_refuses_a_second_run_and_dies_with_its_holder(tmp_path):
    ready = mp.get_context("fork").Event()
    holder = child(hold_the_lock, tmp_path, ready)
    assert ready.wait(60)
    with pytest.raises(TrainingError, match=f"in use by process {holder.pid}"):
        Trainer(fresh(), CFG, DATA, out_dir=tmp_path, progress=False)
    os.kill(holder.pid, signal.SIGKILL)
    holder.join()
    assert train(tmp_path)[-1]["step"] == CFG.max_steps  # no lock left behind


def test_changed_settings_on_resume(tmp_path):
    train(tmp_path, replace(CFG, max_steps=8))
    with pytest.raises(ResumeError, match="trained with lr=0.003, this run asks"):
        train(tmp_path, replace(CFG, lr=1e-2))
    longer = replace(CFG, max_steps=10)
    history = train(tmp_path, longer)  # continues at the old schedule's floor
    assert [m["lr"] for m in history] == [CFG.min_lr, CFG.min_lr]
    assert load_checkpoint(tmp_path / "step_000010") is not None
