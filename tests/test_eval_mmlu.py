"""The MMLU macro-accuracy interval covers the true macro accuracy at least 95% of the time, simulated through
`accuracy_report` itself: with one question per subject (where the plug-in interval collapses), a few, and the
subject sizes of a 500-question stratified subset; and the plug-in interval it replaced does not."""

import functools

import numpy as np
import pytest

from llmbook.evaluate import accuracy_report, load_mmlu, stratified_sample


def coverage(sizes, rates, reps, seed=0):
    "Share of simulated runs whose macro_ci contains the true macro accuracy (the mean of `rates`)."
    rng = np.random.default_rng(seed)
    groups = [g for g, n in enumerate(sizes) for _ in range(n)]
    p = np.repeat(rates, sizes)
    truth, hits = float(np.mean(rates)), 0
    for _ in range(reps):
        lo, hi = accuracy_report(list(rng.random(len(p)) < p), groups)["macro_ci"]
        hits += lo <= truth <= hi
    return hits / reps


@functools.cache
def mmlu_500_sizes():
    sub = stratified_sample(load_mmlu(), 500, lambda q: q["subject"], seed=0)
    counts = {}
    for q in sub:
        counts[q["subject"]] = counts.get(q["subject"], 0) + 1
    return tuple(counts.values())


@pytest.mark.parametrize("sizes", ["one each", "two each", "mixed", "mmlu 500"])
@pytest.mark.parametrize("rates", ["chance", "spread", "high"])
def test_macro_interval_covers(sizes, rates):
    sizes = {
        "one each": [1] * 57,
        "two each": [2] * 57,
        "mixed": [1] * 20 + [3] * 20 + [20] * 17,
        "mmlu 500": None,
    }[sizes] or list(mmlu_500_sizes())
    rates = {
        "chance": np.full(len(sizes), 0.25),
        "high": np.full(len(sizes), 0.9),
        "spread": np.random.default_rng(1).uniform(0.1, 0.95, len(sizes)),
    }[rates]
    assert (
        coverage(sizes, rates, reps=400) >= 0.93
    )  # 95% nominal; 400 runs: standard error about 1.1 points


def test_plug_in_interval_would_collapse():
    "The per-subject plug-in variance p(1-p)/n is zero for every subject of one question: the reason for the fix."
    r = accuracy_report([i % 4 == 0 for i in range(57)], [f"s{i}" for i in range(57)])
    plug_in = sum(
        g["accuracy"] * (1 - g["accuracy"]) / g["n"] for g in r["per_group"].values()
    )
    assert plug_in == 0 and r["macro_ci"][1] - r["macro_ci"][0] > 0.2
