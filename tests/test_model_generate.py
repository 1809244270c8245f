"""llmbook.model: generation with and without the KV cache, checkpoints, and config checks beyond the notebook."""

import json

import pytest
import torch

from llmbook.model import (
    GPT,
    GPTConfig,
    KVCache,
    count_params,
    generate,
    load_checkpoint,
    save_checkpoint,
)

SHAPE = dict(vocab_size=211, max_seq_len=40, n_layer=2, n_head=4, n_embd=32)


@pytest.mark.parametrize(
    "cfg",
    [
        GPTConfig.gpt2(**SHAPE),
        GPTConfig.llama(**SHAPE, n_kv_head=2),
        GPTConfig.llama(**SHAPE, n_kv_head=1, dropout=0.1),
    ],
    ids=["gpt2", "llama-gqa", "mqa"],
)
@pytest.mark.parametrize(
    "settings",
    [
        dict(temperature=0),
        dict(temperature=1.3, seed=0),
        dict(temperature=0.7, top_k=5, seed=1),
        dict(top_p=0.8, seed=2),
        dict(top_k=50, top_p=0.95, seed=3),
    ],
    ids=str,
)
@pytest.mark.parametrize("prompt_len", [1, 40, 55])
def test_cache_gives_identical_tokens(cfg, settings, prompt_len):
    torch.manual_seed(0)
    model = GPT(cfg)
    prompt = torch.randint(0, cfg.vocab_size, (2, prompt_len))
    n = 30
    a = generate(model, prompt, n, use_cache=True, **settings)
    b = generate(model, prompt, n, use_cache=False, **settings)
    assert a.shape == (2, prompt_len + n)
    assert torch.equal(a, b)
    assert model.training  # generate restores the mode


def test_cached_logits_match_full_forward():
    """Prefill in pieces of different sizes; each piece's logits equal the full forward's at those positions."""
    torch.manual_seed(0)
    for cfg in (GPTConfig.gpt2(**SHAPE), GPTConfig.llama(**SHAPE, n_kv_head=2)):
        model = GPT(cfg).eval()
        idx = torch.randint(0, cfg.vocab_size, (3, 40))
        with torch.no_grad():
            full, _ = model(idx)
            for use_sdpa in (True, False):
                model.use_sdpa = use_sdpa
                cache, start = KVCache(cfg, 3), 0
                for size in (7, 1, 1, 12, 19):
                    part, _ = model(idx[:, start : start + size], cache=cache)
                    torch.testing.assert_close(
                        part, full[:, start : start + size], atol=1e-5, rtol=1e-5
                    )
                    start += size
                assert cache.pos == 40
                with pytest.raises(ValueError, match="max_seq_len"):
                    model(idx[:, :1], cache=cache)


def test_checkpoint_round_trip_and_no_pickle(tmp_path):
    torch.manual_seed(0)
    model = GPT(GPTConfig.llama(**SHAPE, n_kv_head=2)).eval()
    save_checkpoint(model, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "config.json",
        "model.safetensors",
    ]
    # Positively safetensors: 8 bytes of header length, a JSON header naming every
    # tensor with its dtype, shape and byte range, then exactly those bytes.
    raw = (tmp_path / "model.safetensors").read_bytes()
    header_len = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + header_len])
    header.pop("__metadata__", None)
    state = model.state_dict()
    assert set(header) <= set(state) and "blocks.0.attn.qkv_proj.weight" in header
    ends = []
    for name, entry in header.items():
        assert entry["shape"] == list(state[name].shape)
        assert entry["dtype"] == "F32"
        ends.append(entry["data_offsets"][1])
    assert len(raw) == 8 + header_len + max(ends)
    back = load_checkpoint(tmp_path)
    idx = torch.randint(0, 211, (2, 9))
    with torch.no_grad():
        assert torch.equal(back(idx)[0], model(idx)[0])
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["n_layers"] = 3
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="unknown GPTConfig options"):
        load_checkpoint(tmp_path)


@pytest.mark.parametrize(
    "cfg",
    [
        GPTConfig.gpt2(**SHAPE, bias=False),
        GPTConfig.gpt2(**SHAPE, tie_embeddings=False),
        GPTConfig.llama(**SHAPE, bias=True),
        GPTConfig(**SHAPE, pos="rope", norm="rmsnorm"),
        GPTConfig(**SHAPE, mlp="swiglu", n_kv_head=2, ffn_hidden=50),
    ],
    ids=str,
)
def test_count_params_matches_the_model(cfg):
    model = GPT(cfg)
    assert count_params(cfg) == sum(p.numel() for p in model.parameters())
    emb = cfg.vocab_size * cfg.n_embd + (
        cfg.max_seq_len * cfg.n_embd if cfg.pos == "learned" else 0
    )
    assert count_params(cfg, embeddings=False) == count_params(cfg) - emb
