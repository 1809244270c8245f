"""Peak memory and time of one training step (forward + backward) for each setting of the forward pass.

    python bench/bench_memory.py [--n-layer 4] [--n-embd 256] [--n-head 8] [--vocab 2048] [--batch 4] [--seq-len 256]
                                 [--device cpu|cuda] [--threads N]

The table of Chapter 3 (@tbl-memory) at a size of your choosing. On CUDA the peak is the caching allocator's
`max_memory_allocated` minus what was allocated before the step; on CPU it is `LiveTensorMemory`'s peak of tensors
created during the step (parameters excluded). Time: the fastest of --steps steps after one warm-up step.
The last line is the summary.
"""

import argparse

import torch

from llmbook.model import (
    BENCH_SHAPE,
    GPT,
    GPTConfig,
    count_params,
    measure_train_step,
)

SETTINGS = {  # name: (use_sdpa, activation_checkpointing, bf16)
    "explicit": (False, False, False),
    "sdpa": (True, False, False),
    "sdpa+ckpt": (True, True, False),
    "sdpa+bf16": (True, False, True),
    "sdpa+ckpt+bf16": (True, True, True),
}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n-layer", type=int, default=BENCH_SHAPE["n_layer"])
    p.add_argument("--n-embd", type=int, default=BENCH_SHAPE["n_embd"])
    p.add_argument("--n-head", type=int, default=BENCH_SHAPE["n_head"])
    p.add_argument("--vocab", type=int, default=BENCH_SHAPE["vocab_size"])
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: PyTorch's choice)",
    )
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = GPTConfig.gpt2(
        vocab_size=args.vocab,
        max_seq_len=args.seq_len,
        n_layer=args.n_layer,
        n_head=args.n_head,
        n_embd=args.n_embd,
    )
    model = GPT(cfg).to(args.device)
    idx = torch.randint(
        0, cfg.vocab_size, (args.batch, args.seq_len + 1), device=args.device
    )
    print(
        f"GPT-2 family, {count_params(cfg):,} parameters, batch {args.batch} x {args.seq_len}, {args.device}"
    )
    rows = []
    for name, (sdpa, ckpt, bf16) in SETTINGS.items():
        model.use_sdpa, model.activation_checkpointing = sdpa, ckpt
        peak, sec = measure_train_step(
            model, idx[:, :-1], idx[:, 1:], bf16=bf16, steps=args.steps
        )
        rows.append((name, peak, sec))
        print(
            f"{name:16s} peak {peak / 2**20:9.1f} MiB   {sec * 1e3:9.1f} ms/step",
            flush=True,
        )
    print(
        "bench_memory: "
        + "; ".join(f"{n} {m / 2**20:.1f} MiB {s * 1e3:.0f} ms" for n, m, s in rows)
        + f" ({args.device}, {torch.get_num_threads()} threads, L={args.n_layer} d={args.n_embd} B={args.batch} T={args.seq_len})"
    )


if __name__ == "__main__":
    main()
