"""Tokens per second of llmbook.model.generate with and without the KV cache.

    python bench/bench_generate.py [--new 256 512] [--prompt-len 16] [--batch 1] [--device cpu|cuda]
                                   [--dtype float32|bfloat16] [--threads N]

The model is the book's default small model, `GPT(GPTConfig())` (GPT-2 family, 6 layers, width 384, GPT-2's
50,257-token vocabulary, 1,024-token context), randomly initialised and seeded: speed does not depend on
the weights. Decoding is greedy, so both loops produce the same tokens (checked). The last line is the summary.
"""

import argparse
import time

import torch

from llmbook.model import GPT, GPTConfig, count_params, generate


def tokens_per_second(model, prompt, n_new, use_cache, device):
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = generate(model, prompt, n_new, temperature=0, use_cache=use_cache)
    if device == "cuda":
        torch.cuda.synchronize()
    return prompt.shape[0] * n_new / (time.perf_counter() - t0), out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--new", type=int, nargs="+", default=[256, 512], help="numbers of new tokens"
    )
    p.add_argument("--prompt-len", type=int, default=16)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
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
    cfg = GPTConfig()
    model = GPT(cfg).to(args.device, getattr(torch, args.dtype)).eval()
    prompt = torch.randint(
        0, cfg.vocab_size, (args.batch, args.prompt_len), device=args.device
    )
    generate(model, prompt, 8), generate(model, prompt, 8, use_cache=False)  # warm-up
    print(
        f"model: GPTConfig() ({count_params(cfg):,} parameters), {args.device} {args.dtype}, "
        f"{torch.get_num_threads()} threads, batch {args.batch}, prompt {args.prompt_len} tokens, greedy"
    )
    results = []
    for n in args.new:
        cached, out_c = tokens_per_second(model, prompt, n, True, args.device)
        uncached, out_u = tokens_per_second(model, prompt, n, False, args.device)
        assert torch.equal(out_c, out_u), "cached and uncached generation differ"
        results.append((n, cached, uncached))
        print(
            f"{n:5d} new tokens: {cached:8.1f} tokens/s with KV cache, {uncached:8.1f} without, "
            f"{cached / uncached:5.1f}x",
            flush=True,
        )
    print(
        "bench_generate: "
        + "; ".join(
            f"{n} new: cached {c:.1f} tok/s, uncached {u:.1f} tok/s, {c / u:.1f}x"
            for n, c, u in results
        )
        + f" (GPTConfig(), {args.device} {args.dtype}, {torch.get_num_threads()} threads, batch {args.batch}, "
        f"prompt {args.prompt_len})"
    )


if __name__ == "__main__":
    main()
