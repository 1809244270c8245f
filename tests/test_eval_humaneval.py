"""HumanEval: every canonical solution passes in the sandbox, and pass@k matches the published formula."""

import math
from fractions import Fraction

import numpy as np
import pytest

from llmbook.evaluate import (
    execute_completions,
    humaneval_report,
    load_humaneval,
    pass_at_k,
)


def chen_pass_at_k(n, c, k):
    "The numpy estimator as printed in Chen et al. (2021), figure 3."
    if n - c < k:
        return 1.0
    return 1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1))


def test_pass_at_k_matches_the_formula_for_all_n_c_k():
    for n in range(1, 61):
        for c in range(n + 1):
            for k in range(1, n + 1):
                exact = float(1 - Fraction(math.comb(n - c, k), math.comb(n, k)))
                got = pass_at_k(n, c, k)
                assert (
                    abs(got - exact) < 1e-12
                    and abs(got - chen_pass_at_k(n, c, k)) < 1e-12
                ), (n, c, k)


def test_pass_at_k_large_n_does_not_overflow():
    assert 0 < pass_at_k(10_000, 3, 100) < 1
    with pytest.raises(ValueError):
        pass_at_k(5, 6, 1)
    with pytest.raises(ValueError):
        pass_at_k(5, 1, 6)


def test_all_164_canonical_solutions_pass():
    problems = load_humaneval()
    assert len(problems) == 164
    results = execute_completions(
        problems, [[p["canonical_solution"]] for p in problems]
    )
    failed = {
        p["task_id"]: r[0].reason for p, r in zip(problems, results) if not r[0].passed
    }
    assert not failed, failed
    assert humaneval_report(problems, results, ks=(1,))["pass@1"] == 1.0


def test_wrong_solutions_fail():
    problems = load_humaneval()[:5]
    results = execute_completions(
        problems, [["    return None\n", "    pass\n"] for _ in problems]
    )
    report = humaneval_report(problems, results, ks=(1, 2))
    assert report["pass@1"] == 0 and report["pass@2"] == 0
