"""llmbook.model against an independent implementation: Hugging Face transformers (a dev dependency only).

Export each family to the Hugging Face format, load it with transformers, compare logits in float32;
and import checkpoints that transformers itself wrote."""

import json

import pytest
import torch

transformers = pytest.importorskip("transformers")
transformers.logging.set_verbosity_error()

from llmbook.data import CheckpointError  # noqa: E402
from llmbook.model import (  # noqa: E402
    GPT,
    GPTConfig,
    export_hf,
    import_hf,
)

TOL = 1e-4
SHAPE = dict(vocab_size=331, max_seq_len=64, n_layer=3, n_head=4, n_embd=64)
CONFIGS = {
    "gpt2": GPTConfig.gpt2(**SHAPE),
    "gpt2-untied": GPTConfig.gpt2(**SHAPE, tie_embeddings=False),
    "gpt2-ffn": GPTConfig.gpt2(**SHAPE, ffn_hidden=96, norm_eps=1e-6),
    "llama": GPTConfig.llama(**SHAPE),
    "llama-gqa": GPTConfig.llama(**SHAPE, n_kv_head=2),
    "llama-mqa-tied": GPTConfig.llama(**SHAPE, n_kv_head=1, tie_embeddings=True),
    "llama-bias-rope-base": GPTConfig.llama(**SHAPE, bias=True, rope_base=500000.0),
}
HF_CLASS = {"gpt2": "GPT2LMHeadModel", "llama": "LlamaForCausalLM"}


def randomize_norms(model):
    """Norm weights start at 1 and biases at 0; give them random values so the mapping of every tensor is tested."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name or name.endswith("bias"):
                p.copy_(
                    torch.randn_like(p) * 0.1
                    + (1.0 if name.endswith("weight") else 0.0)
                )
    return model


@pytest.mark.parametrize("name", CONFIGS)
def test_export_loads_in_transformers_with_equal_logits(name, tmp_path):
    torch.manual_seed(0)
    cfg = CONFIGS[name]
    ours = randomize_norms(GPT(cfg)).eval()
    export_hf(ours, tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["architectures"] == [
        HF_CLASS[cfg.family]
    ]
    theirs = transformers.AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert type(theirs).__name__ == HF_CLASS[cfg.family]
    assert sum(p.numel() for p in theirs.parameters()) == sum(
        p.numel() for p in ours.parameters()
    )
    idx = torch.randint(0, cfg.vocab_size, (3, cfg.max_seq_len))
    with torch.no_grad():
        diff = (theirs(idx).logits - ours(idx)[0]).abs().max().item()
    assert diff < TOL, f"{name}: max logit difference {diff:.2e}"


@pytest.mark.parametrize("name", CONFIGS)
def test_import_of_transformers_checkpoint(name, tmp_path):
    """Round trip through transformers' own writer: export, load, save_pretrained, import_hf."""
    torch.manual_seed(1)
    ours = randomize_norms(GPT(CONFIGS[name])).eval()
    export_hf(ours, tmp_path / "a")
    theirs = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "a").eval()
    theirs.save_pretrained(tmp_path / "b")
    back = import_hf(tmp_path / "b").eval()
    assert back.config == ours.config
    idx = torch.randint(0, ours.config.vocab_size, (2, 20))
    with torch.no_grad():
        torch.testing.assert_close(back(idx)[0], ours(idx)[0], atol=0, rtol=0)


def test_import_hf_initialised_models(tmp_path):
    """Models created and saved by transformers alone load into llmbook with equal logits."""
    torch.manual_seed(0)
    models = {
        "llama": transformers.LlamaForCausalLM(
            transformers.LlamaConfig(
                vocab_size=300,
                hidden_size=96,
                intermediate_size=200,
                num_hidden_layers=2,
                num_attention_heads=6,
                num_key_value_heads=2,
                max_position_embeddings=48,
                rms_norm_eps=1e-6,
                rope_theta=10000.0,
            )
        ),
        "gpt2": transformers.GPT2LMHeadModel(
            transformers.GPT2Config(
                vocab_size=300, n_positions=48, n_embd=96, n_layer=2, n_head=6
            )
        ),
    }
    for family, hf in models.items():
        hf.eval()
        hf.save_pretrained(tmp_path / family)
        ours = import_hf(tmp_path / family).eval()
        assert ours.config.family == family
        idx = torch.randint(0, 300, (2, 48))
        with torch.no_grad():
            diff = (hf(idx).logits - ours(idx)[0]).abs().max().item()
        assert diff < TOL, f"{family}: {diff:.2e}"


def test_sharded_and_original_gpt2_names(tmp_path):
    """A sharded checkpoint (index + several files), and GPT-2's original names without 'transformer.'."""
    from safetensors.torch import load_file, save_file

    torch.manual_seed(0)
    ours = GPT(CONFIGS["gpt2"]).eval()
    export_hf(ours, tmp_path / "hf")
    tensors = load_file(tmp_path / "hf" / "model.safetensors")
    shard = tmp_path / "sharded"
    shard.mkdir()
    (shard / "config.json").write_text((tmp_path / "hf" / "config.json").read_text())
    names = sorted(tensors)
    halves = {
        "model-00001-of-00002.safetensors": names[::2],
        "model-00002-of-00002.safetensors": names[1::2],
    }
    for f, keys in halves.items():
        save_file({k: tensors[k].contiguous() for k in keys}, shard / f)
    (shard / "model.safetensors.index.json").write_text(
        json.dumps(
            {
                "metadata": {},
                "weight_map": {k: f for f, keys in halves.items() for k in keys},
            }
        )
    )
    orig = tmp_path / "orig"
    orig.mkdir()
    (orig / "config.json").write_text((tmp_path / "hf" / "config.json").read_text())
    save_file(
        {k.removeprefix("transformer."): v for k, v in tensors.items()},
        orig / "model.safetensors",
    )
    idx = torch.randint(0, 331, (2, 16))
    with torch.no_grad():
        for d in (shard, orig):
            torch.testing.assert_close(
                import_hf(d).eval()(idx)[0], ours(idx)[0], atol=0, rtol=0
            )


def test_refusals(tmp_path):
    (tmp_path / "config.json").write_text(
        json.dumps(
            transformers.LlamaConfig(
                vocab_size=10,
                hidden_size=8,
                intermediate_size=16,
                num_hidden_layers=1,
                num_attention_heads=2,
                rope_scaling={"rope_type": "linear", "factor": 2.0},
            ).to_dict()
        )
    )
    with pytest.raises(ValueError, match="does not implement"):
        import_hf(tmp_path)
    (tmp_path / "config.json").write_text(
        json.dumps(
            {
                "model_type": "gpt2",
                "vocab_size": 10,
                "n_positions": 8,
                "n_layer": 1,
                "n_head": 1,
                "n_embd": 4,
            }
        )
    )
    (tmp_path / "pytorch_model.bin").write_bytes(b"not read")
    with pytest.raises(CheckpointError, match="never unpickles"):
        import_hf(tmp_path)
    with pytest.raises(ValueError, match="always has biases"):
        export_hf(GPT(GPTConfig.gpt2(**SHAPE, bias=False)), tmp_path / "x")


@pytest.mark.parametrize(
    "cfg",
    [
        *CONFIGS.values(),
        GPTConfig.gpt2(**SHAPE, dropout=0.1),
        GPTConfig.llama(**SHAPE, n_kv_head=2, dropout=0.2, norm_eps=1e-6),
    ],
    ids=[*CONFIGS, "gpt2-dropout", "llama-dropout"],
)
def test_export_then_import_gives_an_equal_config(cfg, tmp_path):
    """Every field export_hf writes comes back: dropout, norm_eps, rope_base, tying, bias."""
    export_hf(GPT(cfg), tmp_path)
    assert import_hf(tmp_path).config == cfg
