"""nanoGPT's README CPU recipe and llmbook's default path, side by side on one text.

    python bench/side_by_side.py --nanogpt ~/src/nanoGPT        # 3 pairs, 2000 its
    python bench/side_by_side.py --nanogpt ~/src/nanoGPT --pairs 5 --nanogpt-compile
    python bench/side_by_side.py --nanogpt ~/src/nanoGPT --iters 30 --pairs 1  # smoke

nanoGPT runs unmodified from the checkout you name (git clone
https://github.com/karpathy/nanoGPT); nothing is written into it. Its recipe:
char-level Shakespeare, 4 layers x 128, 4 heads, block 64, batch 12, dropout 0, fp32,
no compile, lr 1e-3 -> 1e-4, 100 warm-up steps, beta2 0.99. llmbook trains the same
model on the same characters with `llmbook train` and its defaults (bf16 autocast
where the CPU has bf16 matrix units, torch.compile). The text is the one
`bench/bench_train.py --dump-corpus` writes (or --corpus); the first 90% of its
characters train, the last 10% validate, written once in both programs' formats.

Runs alternate (nanoGPT first in odd pairs, llmbook first in even ones), with the same
thread count. ms/iter is each run's median over iterations after --warmup, leaving out
nanoGPT's evaluation iterations. Both runs evaluate only at the end (nanoGPT also at
step 0); the wall time is the whole process, start-up and compilation included. The
validation loss of both final models is computed here, in fp32, on the same 200 windows.
MFU divides each run's matmul FLOP/s by the peak of the same matrix products (the
forward's and backward's, at the recipe's shapes), measured once before the runs.
The last line is a summary.
"""

import argparse
import contextlib
import importlib.util
import io
import json
import os
import pickle
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

import numpy as np
import torch

from llmbook.data import BPETokenizer, save_tokenizer
from llmbook.model import GPTConfig, flops_per_token, load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
RECIPE = dict(n_layer=4, n_head=4, n_embd=128, block_size=64, batch_size=12)


def write_data(text: str, out: Path) -> int:
    "Character ids in nanoGPT's layout (meta.pkl) and llmbook's (meta.json); the vocab."
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    ids = np.array([stoi[c] for c in text], dtype=np.uint16)
    cut = int(0.9 * len(ids))
    out.mkdir(parents=True, exist_ok=True)
    ids[:cut].tofile(out / "train.bin")
    ids[cut:].tofile(out / "val.bin")
    itos = dict(enumerate(chars))
    meta = dict(vocab_size=len(chars), stoi=stoi, itos=itos)
    (out / "meta.pkl").write_bytes(pickle.dumps(meta))
    tokens = dict(train=cut, val=len(ids) - cut)
    tok = char_tokenizer(chars)
    save_tokenizer(tok, out)  # `llmbook train` reads the data's own tokenizer
    meta_json = dict(dtype="uint16", n_vocab=tok.n_vocab, tokens=tokens)
    (out / "meta.json").write_text(json.dumps(meta_json))
    return len(chars)


def ascii_text(text: str) -> tuple[str, int]:
    """The text in ASCII, one byte a character, as nanoGPT's own Shakespeare is:
    accents split off (NFKD) and dropped, other characters dropped; and how many."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return plain, len(text) - len(plain)


def char_tokenizer(chars: list[str]) -> BPETokenizer:
    """nanoGPT's character ids as a tokenizer `llmbook train` accepts: llmbook's
    tokenizers hold all 256 bytes (byte fallback), so the text's characters (ASCII) take
    ids 0..len(chars)-1, as in nanoGPT's meta.pkl, and the other bytes follow, never
    seen. llmbook's model thus has 256 output rows to nanoGPT's 81: 2.6% more matmul
    FLOPs a step, counted against llmbook."""
    assert all(len(c.encode()) == 1 for c in chars), "ascii_text first"
    first = [c.encode() for c in chars]
    rest = [bytes([b]) for b in range(256) if bytes([b]) not in first]
    ranks = {b: i for i, b in enumerate(first + rest)}
    return BPETokenizer(ranks, r"[\s\S]", {}, "chars")


def step_matmuls(vocab: int) -> list[tuple[int, int, int, int]]:
    "(batch, m, k, n) of each matrix product of one training step of the recipe."
    L, C, H = RECIPE["n_layer"], RECIPE["n_embd"], RECIPE["n_head"]
    B, T = RECIPE["batch_size"], RECIPE["block_size"]
    N, hd = B * T, C // H
    layer = [(1, N, C, 3 * C), (B * H, T, hd, T), (B * H, T, T, hd)]
    layer += [(1, N, C, C), (1, N, C, 4 * C), (1, N, 4 * C, C)]
    forward = L * layer + [(1, N, C, vocab)]  # the attention products in full
    # backward: dA = dC B^T (m x n @ n x k) and dB = A^T dC (k x m @ m x n)
    return [
        s for b, m, k, n in forward for s in ((b, m, k, n), (b, m, n, k), (b, k, m, n))
    ]


def matmul_peak(shapes, dtype, seconds: float) -> float:
    "FLOP/s of running `shapes` back to back in `dtype`: the best of repeated rounds."
    pairs = [
        (torch.randn(b, m, k, dtype=dtype), torch.randn(b, k, n, dtype=dtype))
        for b, m, k, n in shapes
    ]
    flops = sum(2 * b * m * k * n for b, m, k, n in shapes)
    for a, b in pairs:  # warm-up: the first products set up the kernels
        torch.bmm(a, b)
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        for a, b in pairs:
            torch.bmm(a, b)
        best = max(best, flops / (time.perf_counter() - t))
    return best


def run(cmd, cwd, log: Path, threads: int) -> dict:
    "Run a command to the end; its wall time and CPU use (200% = two busy cores)."
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT), env.get("PYTHONPATH")])
    )
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    load, t0 = os.getloadavg()[0], time.perf_counter()
    with open(log, "w") as f:
        done = subprocess.run(cmd, cwd=cwd, env=env, stdout=f, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        tail = "".join(log.read_text().splitlines(keepends=True)[-15:])
        sys.exit(f"{cmd[:3]} failed (exit {done.returncode}); end of {log}:\n{tail}")
    used = cpu1.ru_utime - cpu0.ru_utime + cpu1.ru_stime - cpu0.ru_stime
    return dict(wall=wall, cpu=100 * used / wall, load=load)


def steady_ms(times: dict[int, float], warmup: int, skip=()) -> float:
    "Median ms of the iterations after `warmup`, leaving out those in `skip`."
    kept = [ms for i, ms in times.items() if i >= warmup and i not in skip]
    if not kept:
        sys.exit(f"no iterations after --warmup {warmup}: raise --iters")
    return statistics.median(kept)


def run_nanogpt(args, data: Path, out: Path, compile_: bool) -> dict:
    n = args.iters
    cmd = [
        sys.executable,
        "train.py",
        "config/train_shakespeare_char.py",
        "--device=cpu",
        f"--compile={compile_}",
        f"--eval_iters={args.eval_batches}",
        "--log_interval=1",
        "--dropout=0.0",
        f"--max_iters={n}",
        f"--lr_decay_iters={n}",
        f"--eval_interval={n}",
        "--always_save_checkpoint=True",
        f"--dataset={data}",
        f"--out_dir={out}",
    ]
    cmd += [f"--{k}={v}" for k, v in RECIPE.items()]
    r = run(cmd, args.nanogpt, out.with_suffix(".log"), args.threads)
    times, val = {}, None
    for line in out.with_suffix(".log").read_text().splitlines():
        words = line.replace(",", "").split()
        if line.startswith("iter ") and "time" in words:
            times[int(words[1].rstrip(":"))] = float(
                words[words.index("time") + 1][:-2]
            )
        if line.startswith("step ") and "val" in words:
            val = float(words[-1])
    r["ms"] = steady_ms(times, args.warmup, skip={0, n})  # those two evaluate
    r["own_val"], r["precision"] = val, "fp32" + (" + compile" if compile_ else "")
    r["model"] = load_nanogpt(args.nanogpt, out / "ckpt.pt")
    return r


def load_nanogpt(checkout: Path, ckpt: Path) -> torch.nn.Module:
    "nanoGPT's final model, built by its own model.py."
    spec = importlib.util.spec_from_file_location(
        "nanogpt_model", checkout / "model.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    with contextlib.redirect_stdout(io.StringIO()):  # its parameter count, said again
        model = module.GPT(module.GPTConfig(**state["model_args"]))
    weights = {k.removeprefix("_orig_mod."): v for k, v in state["model"].items()}
    model.load_state_dict(weights)
    return model


def run_llmbook(args, data: Path, out: Path) -> dict:
    n = args.iters
    model = dict(preset=None, max_seq_len=RECIPE["block_size"], bias=False)
    model.update({k: RECIPE[k] for k in ("n_layer", "n_head", "n_embd")})
    train = dict(batch_size=RECIPE["batch_size"], block_size=RECIPE["block_size"])
    train.update(max_steps=n, lr=1e-3, min_lr=1e-4, warmup_steps=100, beta2=0.99)
    train.update(
        weight_decay=0.1, grad_clip=1.0, eval_every=n, eval_batches=args.eval_batches
    )
    config = dict(model=model, train=train, data=dict(dir=str(data)))
    config.update(out_dir=str(out), progress=False)
    out.mkdir(parents=True)
    (out / "bench.json").write_text(json.dumps(config, indent=1))
    llmbook = Path(sys.executable).with_name("llmbook")
    main = "import sys; from llmbook.cli import main; sys.exit(main())"
    cli = [str(llmbook)] if llmbook.exists() else [sys.executable, "-c", main]
    r = run(
        cli + ["train", str(out / "bench.json")], ROOT, out / "train.log", args.threads
    )
    log = [
        json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()
    ]
    times = {m["step"] - 1: 1000 * m["dt"] for m in log}
    r["ms"] = steady_ms(times, args.warmup)
    r["own_val"] = next((m["val_loss"] for m in log if "val_loss" in m), None)
    said = (out / "train.log").read_text()
    r["precision"] = ("bf16" if "bf16 autocast" in said else "fp32") + (
        " + compile" if "compiled" in said else ""
    )
    r["model"] = load_checkpoint(out / "final")
    return r


@torch.no_grad()
def val_loss(model: torch.nn.Module, val: np.ndarray, batches: int = 200) -> float:
    "Mean fp32 loss of any model over the same `batches` windows of the validation ids."
    B, T = RECIPE["batch_size"], RECIPE["block_size"]
    starts = np.random.default_rng(1337).integers(0, len(val) - T, size=(batches, B))
    model.eval()
    total = 0.0
    for row in starts:
        w = np.stack([val[s : s + T + 1] for s in row]).astype(np.int64)
        x, y = torch.from_numpy(w[:, :-1].copy()), torch.from_numpy(w[:, 1:].copy())
        total += model(x, y)[1].item()
    return total / batches


def main():
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--nanogpt", type=Path, required=True, help="a nanoGPT checkout")
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--iters", type=int, default=2000)
    p.add_argument("--threads", type=int, default=2, help="per run (OMP_NUM_THREADS)")
    p.add_argument("--warmup", type=int, default=10, help="iterations left out of ms")
    p.add_argument(
        "--nanogpt-compile",
        action="store_true",
        help="also run nanoGPT with --compile=True in every pair",
    )
    p.add_argument("--peak-seconds", type=float, default=5.0)
    p.add_argument("--eval-batches", type=int, default=200, help="fewer: smoke tests")
    p.add_argument("--corpus", type=Path, help="default: bench_train.py --dump-corpus")
    p.add_argument("--work", type=Path, help="keep data, logs and models here")
    args = p.parse_args()
    args.nanogpt = args.nanogpt.resolve()
    if not (args.nanogpt / "train.py").exists():
        sys.exit(f"{args.nanogpt} holds no train.py: pass --nanogpt a nanoGPT checkout")
    if args.iters <= args.warmup + 1:
        sys.exit(f"--iters {args.iters} leaves nothing after --warmup {args.warmup}")
    work = args.work or Path(tempfile.mkdtemp(prefix="side_by_side_"))
    work = work.resolve()
    if work.exists() and any(work.iterdir()) and args.work:
        sys.exit(f"--work {work} is not empty: name a new directory")
    work.mkdir(parents=True, exist_ok=True)
    corpus = args.corpus or work / "input.txt"
    if not args.corpus:
        dump = [sys.executable, str(ROOT / "bench/bench_train.py"), "--dump-corpus"]
        subprocess.run(dump + [str(corpus)], check=True, stdout=subprocess.DEVNULL)
    text, dropped = ascii_text(corpus.read_text(encoding="utf-8"))
    vocab = write_data(text, work / "data")
    val = np.fromfile(work / "data/val.bin", dtype=np.uint16)
    torch.set_num_threads(args.threads)
    shapes = step_matmuls(vocab)
    step_flops = sum(2 * b * m * k * n for b, m, k, n in shapes)
    shape = {k: RECIPE[k] for k in ("n_layer", "n_head", "n_embd")}
    cfg = GPTConfig.gpt2(vocab_size=vocab, max_seq_len=64, bias=False, **shape)
    tokens = RECIPE["batch_size"] * RECIPE["block_size"]
    # the products timed for the peak are those Chapter 3 counts for the model
    assert step_flops == flops_per_token(cfg, seq_len=64) * tokens
    peak = {
        name: matmul_peak(shapes, dtype, args.peak_seconds)
        for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16))
    }
    print(
        f"torch {torch.__version__}, {args.threads} threads; {len(text):,} characters"
        f" ({dropped:,} non-ASCII dropped),"
        f" vocab {vocab}; {step_flops / 1e9:.2f} GFLOP of matmuls per step; peak"
        f" at these shapes: fp32 {peak['fp32'] / 1e9:.0f}, bf16"
        f" {peak['bf16'] / 1e9:.0f} GFLOP/s ({args.peak_seconds:g} s each)",
        flush=True,
    )

    names = ["nanoGPT", "llmbook"] + ["nanoGPT+compile"] * args.nanogpt_compile
    results = {name: [] for name in names}
    for i in range(args.pairs):
        order = names if i % 2 == 0 else names[1::-1] + names[2:]
        for name in order:
            out = work / f"{name}-{i + 1}"
            if name == "llmbook":
                r = run_llmbook(args, work / "data", out)
            else:
                r = run_nanogpt(args, work / "data", out, name.endswith("compile"))
            r["val"] = val_loss(r.pop("model"), val, args.eval_batches)
            results[name].append(r)
        a, b = results["nanoGPT"][-1], results["llmbook"][-1]
        line = f"pair {i + 1}: " + ", ".join(
            f"{name} {results[name][-1]['ms']:.1f} ms/iter"
            f" ({results[name][-1]['cpu']:.0f}% CPU)"
            for name in order
        )
        print(
            f"{line}; ratio {a['ms'] / b['ms']:.2f}x; val {a['val']:.4f} vs"
            f" {b['val']:.4f}; load {a['load']:.1f}",
            flush=True,
        )

    ratios = [a["ms"] / b["ms"] for a, b in zip(results["nanoGPT"], results["llmbook"])]
    median = {
        name: {
            k: statistics.median(r[k] for r in rs) for k in ("ms", "wall", "val", "cpu")
        }
        for name, rs in results.items()
    }
    print(
        f"\n{'run':16s} {'precision':15s} {'tokens/s':>9s} {'ms/iter':>8s}"
        f" {'wall s':>7s} {'val':>7s} {'own val':>7s} {'MFU':>5s}"
    )
    for name, rs in results.items():
        m, precision = median[name], rs[0]["precision"]
        own = statistics.median([r["own_val"] or float("nan") for r in rs])
        mfu = step_flops / (m["ms"] / 1000) / peak[precision[:4]]
        print(
            f"{name:16s} {precision:15s} {tokens / m['ms'] * 1000:9,.0f}"
            f" {m['ms']:8.1f} {m['wall']:7.1f} {m['val']:7.4f} {own:7.4f} {mfu:5.1%}"
        )
    dval = median["llmbook"]["val"] - median["nanoGPT"]["val"]
    print(
        "\nspeed-up of llmbook (nanoGPT ms / llmbook ms), per pair: "
        + " ".join(f"{x:.2f}x" for x in ratios)
        + f"; median {statistics.median(ratios):.2f}x (goal: at least 1.5x)"
    )
    print(
        f"val loss, the same {args.eval_batches} windows, fp32: llmbook - nanoGPT ="
        f" {dval:+.4f} (goal:"
        f" within 0.01); 'own val' is each program's estimate (nanoGPT: random batches)"
    )
    kept = f"; data, logs, models: {work}" if args.work else ""
    print(
        f"medians over {args.pairs} pairs of {args.iters} iterations; wall s: whole"
        f" process, start-up and compilation included{kept}"
    )
    if args.nanogpt_compile:
        c = median["nanoGPT+compile"]
        extra = f" | nanoGPT+compile {c['ms']:.1f} ms/it, wall {c['wall']:.0f} s"
    else:
        extra = ""
    print(
        f"SUMMARY | {args.pairs} pairs x {args.iters} its, {args.threads} threads"
        f" | llmbook {median['llmbook']['ms']:.1f} ms/it"
        f" ({results['llmbook'][0]['precision']}) vs nanoGPT"
        f" {median['nanoGPT']['ms']:.1f}: median {statistics.median(ratios):.2f}x"
        f" | wall {median['llmbook']['wall']:.0f} vs {median['nanoGPT']['wall']:.0f} s"
        f" | val {median['llmbook']['val']:.4f} vs {median['nanoGPT']['val']:.4f}"
        + extra
    )
    if not args.work:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
