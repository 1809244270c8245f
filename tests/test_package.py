"""The wheel: builds from the repo, installs into a fresh virtual environment with only the
library's own requirements (torch==2.13.0 first, as on these machines), and every public
module imports and runs a small call there."""
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import pytest

import book

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
}


def modules():
    return sorted(p.stem for p in (ROOT / "llmbook").glob("*.py") if not p.stem.startswith("_"))


def test_every_module_has_a_smoke_call():
    assert set(modules()) <= set(SMOKE), f"add a call for {set(modules()) - set(SMOKE)} to SMOKE"


@pytest.fixture(scope="module")
def fresh_env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp / "dist"), str(ROOT)],
                   check=True, capture_output=True)
    wheel = next((tmp / "dist").glob("llmbook-*.whl"))
    venv.create(tmp / "venv", with_pip=True)
    py = tmp / "venv" / "bin" / "python"
    pip = [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run(pip + ["torch==2.13.0"], check=True, capture_output=True)
    subprocess.run(pip + [str(wheel)], check=True, capture_output=True)
    return py


def test_wheel_has_no_dev_dependencies(fresh_env):
    out = subprocess.run([str(fresh_env), "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True)
    installed = {line.split("==")[0].lower() for line in out.stdout.splitlines()}
    assert "llmbook" in installed and "torch" in installed
    assert not installed & {"nbdev", "jupyter", "matplotlib", "pytest", "transformers"}


@pytest.mark.parametrize("module", modules())
def test_module_runs_from_wheel(fresh_env, module):
    code = f"import llmbook.{module}\n" + textwrap.dedent(SMOKE[module])
    r = subprocess.run([str(fresh_env), "-c", code], capture_output=True, text=True, cwd="/")
    assert r.returncode == 0, r.stderr
