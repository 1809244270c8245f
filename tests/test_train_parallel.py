"""Every parallel mode of llmbook.train on two processes (torchrun, gloo on CPU) against single-process
training: after 4 steps of 2 micro-batches, each step's loss within 1e-5 and every weight within 5e-5
(float32; Adam turns rounding in tiny gradients into slightly larger weight differences). Every mode must
also resume exactly from its halfway checkpoint (ddp: rank 0's safetensors; fsdp, dtensor-tp:
torch.distributed.checkpoint; tp, pp-*: one safetensors file per rank)."""

import json
import os
import subprocess
import sys

import pytest

MODES = ["ddp", "fsdp", "tp", "dtensor-tp", "pp-gpipe", "pp-1f1b"]
SCRIPT = """
import json, sys
import torch.distributed as dist
from llmbook.train import check_parallel
for mode in sys.argv[1:]:
    r = check_parallel(mode, steps=4)
    if dist.get_rank() == 0: print(json.dumps(r), flush=True)
"""


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    script = tmp_path_factory.mktemp("parallel") / "check.py"
    script.write_text(SCRIPT)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            str(script),
            *MODES,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert run.returncode == 0, run.stderr[-4000:]
    return {
        r["mode"]: r
        for r in (json.loads(s) for s in run.stdout.splitlines() if s.startswith("{"))
    }


@pytest.mark.parametrize("mode", MODES)
def test_matches_single_process(results, mode):
    r = results[mode]
    assert r["world"] == 2
    assert len(r["losses"]) == 4
    assert r["max_loss_diff"] < 1e-5, r
    assert r["max_weight_diff"] < 5e-5, r


@pytest.mark.parametrize("mode", MODES)
def test_resume_is_exact(results, mode):
    assert results[mode]["resume_exact"], results[mode]
