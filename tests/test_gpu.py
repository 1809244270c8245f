"""The CUDA path: the model code on a GPU gives the CPU's numbers, in fp32 and bf16.

Marked `gpu`; `bench/gpu.sh` runs them (`pytest -m gpu tests/test_gpu.py`) on a machine
with a GPU. Without one every test skips with the reason "no CUDA device". With
LLMBOOK_GPU_DRY_RUN=1 they run on the CPU in place of the GPU: that checks the test
code, not CUDA. TF32 is off in the fp32 checks, so both sides round to float32.

Tolerances (float32 unless stated; chosen from rounding, not yet measured on a GPU):
- GPU vs CPU: loss within 1e-5, logits within 1e-4, gradients within 1e-4 of the
  largest gradient entry (reductions run in another order on each device);
- bf16 autocast vs fp32: loss within 2e-2, gradient cosine similarity above 0.99;
- fused attention vs explicit, compiled vs eager: as GPU vs CPU;
- KV cache vs none: the same greedy tokens.
"""

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from llmbook.model import GPT, GPTConfig, autocast_bf16, generate

pytestmark = pytest.mark.gpu
ROOT = Path(__file__).resolve().parents[1]
FAMILIES = ["gpt2", "llama"]


@pytest.fixture
def dev():
    if torch.cuda.is_available():
        flags = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
        yield torch.device("cuda")
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = flags
    elif os.environ.get("LLMBOOK_GPU_DRY_RUN"):
        yield torch.device("cpu")
    else:
        pytest.skip("no CUDA device")


def tiny(family: str) -> GPT:
    "A small seeded model of either family (the Llama one with grouped-query heads)."
    torch.manual_seed(0)
    shape = dict(vocab_size=97, max_seq_len=64, n_layer=2, n_head=4, n_embd=64)
    if family == "llama":
        return GPT(GPTConfig.llama(n_kv_head=2, **shape))
    return GPT(GPTConfig.gpt2(**shape))


def batch(device, B=4, T=48):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 97, (B, T + 1), generator=g)
    return ids[:, :-1].to(device), ids[:, 1:].to(device)


def step(model, x, y, bf16=False):
    "Logits, loss and gradients (by parameter name) of one forward and backward."
    model.zero_grad(set_to_none=True)
    with autocast_bf16(x.device.type, bf16):
        logits, loss = model(x, y)
    loss.backward()
    params = model.named_parameters()  # a compiled model's names start with _orig_mod.
    grads = {n.removeprefix("_orig_mod."): p.grad.float().cpu() for n, p in params}
    return logits.float().cpu(), loss.item(), grads


def assert_grads_close(a: dict, b: dict, rtol: float):
    for name in a:
        scale = a[name].abs().max().item()
        diff = (a[name] - b[name]).abs().max().item()
        assert diff <= rtol * scale, f"{name}: gradient differs by {diff:.2e}"


@pytest.mark.parametrize("family", FAMILIES)
def test_forward_backward_matches_cpu_fp32(dev, family):
    cpu = tiny(family)
    gpu = copy.deepcopy(cpu).to(dev)
    ref, out = step(cpu, *batch("cpu")), step(gpu, *batch(dev))
    assert abs(out[1] - ref[1]) <= 1e-5
    assert (out[0] - ref[0]).abs().max() <= 1e-4
    assert_grads_close(ref[2], out[2], 1e-4)


@pytest.mark.parametrize("family", FAMILIES)
def test_bf16_autocast_close_to_fp32(dev, family):
    cpu = tiny(family)
    gpu = copy.deepcopy(cpu).to(dev)
    ref, out = step(cpu, *batch("cpu")), step(gpu, *batch(dev), bf16=True)
    assert abs(out[1] - ref[1]) <= 2e-2
    for name, g in ref[2].items():
        cos = torch.cosine_similarity(g.flatten(), out[2][name].flatten(), dim=0)
        assert cos > 0.99, f"{name}: cosine {cos:.4f}"


@pytest.mark.parametrize("bf16", [False, True])
def test_fused_attention_matches_explicit(dev, bf16):
    model = tiny("gpt2").to(dev)
    model.use_sdpa = False
    explicit = step(model, *batch(dev), bf16=bf16)
    model.use_sdpa = True
    fused = step(model, *batch(dev), bf16=bf16)
    tol = 2e-2 if bf16 else 1e-5
    assert abs(fused[1] - explicit[1]) <= tol
    assert (fused[0] - explicit[0]).abs().max() <= (5e-2 if bf16 else 1e-4)
    if not bf16:
        assert_grads_close(explicit[2], fused[2], 1e-4)


def test_compile_matches_eager(dev):
    model = tiny("gpt2").to(dev)
    eager = step(model, *batch(dev))
    compiled = step(torch.compile(model), *batch(dev))
    assert abs(compiled[1] - eager[1]) <= 1e-5
    assert_grads_close(eager[2], compiled[2], 1e-4)


@pytest.mark.parametrize("family", FAMILIES)
def test_kv_cache_generates_same_tokens(dev, family):
    model = tiny(family).to(dev)
    with torch.no_grad():  # larger weights than GPT-2's init: attention matters
        for p in model.parameters():
            p.normal_(0.0, 0.3)
    prompt = batch(dev, B=2, T=5)[0]
    # 80 new tokens pass max_seq_len (64): the window slides and the cache refills
    kw = dict(max_new_tokens=80, temperature=0)
    cached = generate(model, prompt, use_cache=True, **kw)
    plain = generate(model, prompt, use_cache=False, **kw)
    assert cached.shape == (2, 85)
    assert torch.equal(cached, plain)


def write_tokens(out: Path, n_vocab=64):
    "A packed-token directory in llmbook's layout: a repeating pattern to learn."
    ids = (np.arange(20_000) * 7 % 61 + np.arange(20_000) // 500) % n_vocab
    out.mkdir()
    ids[:18_000].astype(np.uint16).tofile(out / "train.bin")
    ids[18_000:].astype(np.uint16).tofile(out / "val.bin")
    meta = dict(dtype="uint16", n_vocab=n_vocab, tokens=dict(train=18_000, val=2_000))
    (out / "meta.json").write_text(json.dumps(meta))


def train_losses(tmp: Path, name: str, bf16: bool, cpu: bool) -> list[float]:
    "Losses of 6 steps of `llmbook train` on the tokens in tmp/data."
    train = dict(max_steps=6, batch_size=4, block_size=32, compile=False, bf16=bf16)
    config = dict(model=dict(preset="tiny"), train=train, progress=False)
    config.update(data=dict(dir=str(tmp / "data")), out_dir=str(tmp / name))
    (tmp / f"{name}.json").write_text(json.dumps(config))
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    if cpu:
        env["CUDA_VISIBLE_DEVICES"] = ""
    main = "import sys; from llmbook.cli import main; sys.exit(main())"
    cmd = [sys.executable, "-c", main, "train", str(tmp / f"{name}.json")]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = (tmp / name / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["loss"] for line in lines]


def test_train_command_on_gpu_matches_cpu(dev, tmp_path):
    write_tokens(tmp_path / "data")
    ref = train_losses(tmp_path, "cpu", bf16=False, cpu=True)
    fp32 = train_losses(tmp_path, "fp32", bf16=False, cpu=dev.type == "cpu")
    bf16 = train_losses(tmp_path, "bf16", bf16=True, cpu=dev.type == "cpu")
    assert len(ref) == len(fp32) == len(bf16) == 6
    # looser than one step's 1e-5: AdamW's normalized updates carry rounding along
    assert max(abs(a - b) for a, b in zip(ref, fp32)) <= 1e-4
    assert max(abs(a - b) for a, b in zip(ref, bf16)) <= 5e-2
    assert ref[-1] < ref[0]  # it learns: the comparison is not between two constants
