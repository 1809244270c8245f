"""GPU figures: training tokens/s and MFU of `llmbook train`, generation tokens/s.

    python bench/gpu_figures.py            # a GPU: GPT-2 small (124M), about 2 minutes
    python bench/gpu_figures.py --dry-run  # the CPU: the tiny preset, the same steps

Training runs `llmbook train` (its defaults: bf16 autocast where the GPU has it,
torch.compile) on random token ids, so no data package is needed: speed does not depend
on the text. tokens/s is the median over the steps after compilation. MFU divides the
model's matmul FLOP/s (Chapter 3's flops_per_token) by the bf16 peak: the one measured
here (an 8192^3 torch.mm, the best of 20) and the datasheet's where the GPU is known.
Generation times `generate` with the KV cache, greedy, bf16 weights, after a warm-up.
`bench/gpu.sh` runs this after the gpu tests; the last line is a summary.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from llmbook.model import GPT, GPTConfig, flops_per_token, generate

ROOT = Path(__file__).resolve().parents[1]
DATASHEET_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12}  # dense TFLOP/s


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def mm_peak(device, n: int, repeats: int = 20) -> float:
    "bf16 FLOP/s of an n x n x n torch.mm: the best of `repeats`, after a warm-up."
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        sync(device)
        t = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def train_figures(work: Path, model: dict, train: dict, device) -> dict:
    "tokens/s, ms/step and the run's precision from `llmbook train` on random ids."
    data = work / "data"
    data.mkdir()
    ids = np.random.default_rng(0).integers(0, 50257, 2_000_000, dtype=np.uint16)
    ids[:1_800_000].tofile(data / "train.bin")
    ids[1_800_000:].tofile(data / "val.bin")
    meta = dict(
        dtype="uint16", n_vocab=50257, tokens=dict(train=1_800_000, val=200_000)
    )
    (data / "meta.json").write_text(json.dumps(meta))
    config = dict(model=model, train=train, data=dict(dir=str(data)))
    config.update(out_dir=str(work / "run"), progress=False)
    (work / "config.json").write_text(json.dumps(config))
    main = "import sys; from llmbook.cli import main; sys.exit(main())"
    cmd = [sys.executable, "-c", main, "train", str(work / "config.json")]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT), env.get("PYTHONPATH")])
    )
    if device.type == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""  # a dry run stays on the CPU
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"llmbook train failed:\n{r.stderr[-3000:]}")
    log = (work / "run/metrics.jsonl").read_text().splitlines()
    dts = [json.loads(line)["dt"] for line in log][5:]  # after compilation
    said = r.stderr
    return dict(
        s_per_step=statistics.median(dts),
        wall=time.perf_counter() - t0,
        precision=("bf16" if "bf16 autocast" in said else "fp32")
        + (" + compile" if "compiled" in said else ""),
    )


@torch.no_grad()
def generate_tokens_per_s(cfg: GPTConfig, device, batch: int, new: int) -> float:
    torch.manual_seed(0)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    model = GPT(cfg).to(device=device, dtype=dtype)
    prompt = torch.randint(0, cfg.vocab_size, (batch, 16), device=device)
    generate(model, prompt, 8, temperature=0)  # warm-up
    sync(device)
    t = time.perf_counter()
    out = generate(model, prompt, new, temperature=0)
    sync(device)
    assert out.shape == (batch, 16 + new)
    return batch * new / (time.perf_counter() - t)


def main():
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--dry-run", action="store_true", help="tiny, on the CPU")
    p.add_argument("--steps", type=int, default=40)
    args = p.parse_args()
    cuda = torch.cuda.is_available() and not args.dry_run
    if not cuda and not args.dry_run:
        sys.exit("no CUDA device: run on a GPU machine, or pass --dry-run")
    device = torch.device("cuda" if cuda else "cpu")
    name = torch.cuda.get_device_name() if cuda else "CPU (dry run)"
    if cuda:  # GPT-2 small, a context of 1024, 16 sequences: 16,384 tokens a step
        model = dict(preset="gpt2")
        train = dict(batch_size=16, block_size=1024, max_steps=args.steps)
    else:  # the same path at the tiny preset's size, uncompiled to stay quick
        model = dict(preset="tiny")
        train = dict(batch_size=4, block_size=64, max_steps=8, compile=False)
    train.update(warmup_steps=5)  # eval_every: None, no evaluation
    peak = mm_peak(device, 8192 if cuda else 512)
    sheet = next((v for k, v in DATASHEET_BF16.items() if k in name), None)
    print(
        f"{name}, torch {torch.__version__}: bf16 torch.mm {peak / 1e12:.1f} TFLOP/s"
        + (f" (datasheet {sheet / 1e12:.0f})" if sheet else ""),
        flush=True,
    )

    with tempfile.TemporaryDirectory() as tmp:
        t = train_figures(Path(tmp), model, train, device)
    preset = model["preset"]
    cfg = GPTConfig.preset(preset, vocab_size=50257)
    tokens = train["batch_size"] * train["block_size"]
    tok_s = tokens / t["s_per_step"]
    flops = flops_per_token(cfg, seq_len=train["block_size"]) * tok_s
    mfu = f"MFU {flops / peak:.1%} of measured"
    mfu += f", {flops / sheet:.1%} of datasheet" if sheet else ""
    print(
        f"train {preset} ({t['precision']}), {tokens:,} tokens a step:"
        f" {tok_s:,.0f} tokens/s, {1000 * t['s_per_step']:.1f} ms/step,"
        f" {flops / 1e12:.1f} TFLOP/s, {mfu} [{t['wall']:.0f} s]",
        flush=True,
    )
    gen = {
        b: generate_tokens_per_s(cfg, device, b, 256 if cuda else 32) for b in (1, 16)
    }
    print(
        f"generate {preset} (KV cache, greedy): batch 1 {gen[1]:,.0f} tokens/s,"
        f" batch 16 {gen[16]:,.0f} tokens/s",
        flush=True,
    )
    print(
        f"FIGURES | {name} | train {preset} {t['precision']} {tok_s:,.0f} tok/s"
        f" {mfu} bf16 peak ({peak / 1e12:.0f} TFLOP/s)"
        f" | generate {gen[1]:,.0f} tok/s (batch 1), {gen[16]:,.0f} (batch 16)"
    )


if __name__ == "__main__":
    main()
