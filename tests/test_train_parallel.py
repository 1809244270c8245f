"""Every parallel strategy of llmbook.train against single-process training (torchrun,
gloo on CPU): after 4 steps of 2 micro-batches, each step's loss within 1e-5 and every
weight within 5e-5 (float32; Adam turns rounding in tiny gradients into slightly larger
weight differences), the gradient norm within 1e-5 relative. Every strategy must also
resume exactly from its halfway checkpoint, whose model.safetensors holds the whole
model, and a SIGTERM to its last rank alone must stop every rank after the same step,
with a checkpoint there, exit status 143 and an exact resume. The 1D strategies run on
two processes, FSDP x TP on a 2x2 mesh of four, FSDP x TP x PP on a 2x2x2 mesh of
eight, and DDP once more across two torchrun agents started as two nodes."""

import json
import os
import socket
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


@pytest.mark.parametrize("mode", MODES)
def test_checkpoint_holds_the_whole_model_and_norms_agree(results, mode):
    r = results[mode]
    assert r["checkpoint_diff"] < 5e-5, r  # model.safetensors, gathered from shards
    assert r["max_norm_rel_diff"] < 1e-5, r  # clipping saw the same gradient norm


@pytest.mark.parametrize("mode", MODES)
def test_a_signal_to_one_rank_stops_all_and_resumes_exactly(results, mode):
    r = results[mode]  # rank 0's view: it was never signalled itself
    assert r["signal_status"] == 128 + 15, r
    assert r["signal_latest"] == "step_000001", r  # not a checkpoint step
    assert r["signal_exact"], r


def launch(script, mode, *torchrun_args):
    return subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", *torchrun_args, script, mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def rank0_result(*procs) -> dict:
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-4000:]
    lines = [s for out, _ in outs for s in out.splitlines() if s.startswith("{")]
    assert len(lines) == 1, lines
    return json.loads(lines[0])


MESHES = [  # (mode, processes, the GPT block each rank holds a piece of)
    ("fsdp+tp", 4, [0] * 4),  # 2D: TP pairs {0,1} {2,3}, FSDP across them
    ("fsdp+tp+pp", 8, [0] * 4 + [1] * 4),  # 3D: two stages, each FSDP x TP on 2x2
]


@pytest.mark.parametrize("mode, n, blocks", MESHES, ids=[m for m, _, _ in MESHES])
def test_composed_on_a_mesh(tmp_path, mode, n, blocks):
    script = tmp_path / "check.py"
    script.write_text(SCRIPT)
    r = rank0_result(launch(str(script), mode, "--standalone", f"--nproc_per_node={n}"))
    assert r["world"] == n and len(r["losses"]) == 4
    assert r["max_loss_diff"] < 1e-5 and r["max_weight_diff"] < 5e-5, r
    assert r["resume_exact"] and r["checkpoint_diff"] < 5e-5, r
    assert r["max_norm_rel_diff"] < 1e-5, r  # each piece counted once
    assert (r["signal_status"], r["signal_latest"]) == (143, "step_000001"), r
    assert r["signal_exact"], r
    assert [h["block"] for h in r["holds"]] == blocks, r


def test_two_nodes_equal_one_process(tmp_path):
    "Two torchrun agents as two nodes, meeting at a c10d rendezvous on the loopback."
    script = tmp_path / "check.py"
    script.write_text(SCRIPT)
    with socket.socket() as s:  # a free port for the rendezvous
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    node = [
        "--nnodes=2",
        "--nproc_per_node=1",
        "--rdzv_backend=c10d",
        f"--rdzv_endpoint=127.0.0.1:{port}",
        "--rdzv_id=two-nodes",
    ]
    r = rank0_result(*(launch(str(script), "ddp", *node) for _ in range(2)))
    assert r["world"] == 2
    assert r["max_loss_diff"] < 1e-5 and r["max_weight_diff"] < 5e-5, r
    assert r["resume_exact"] and r["checkpoint_diff"] < 5e-5, r
    assert (r["signal_status"], r["signal_exact"]) == (143, True), r  # across nodes
