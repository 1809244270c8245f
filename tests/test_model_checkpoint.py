"""Bad checkpoints and tokenizer files are refused with one line that names the file.

Every case raises llmbook.data.CheckpointError (a ValueError); none is unpickled."""

import json
import pickle

import pytest
import torch

from llmbook.data import CheckpointError, train_bpe
from llmbook.model import GPT, GPTConfig, import_hf, load_checkpoint, save_checkpoint

SHAPE = dict(vocab_size=97, max_seq_len=16, n_layer=1, n_head=2, n_embd=16)


class Trap:
    "Unpickling this object writes a file: proof that a loader unpickled it."

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _write_json(path, value):
    path.write_text(json.dumps(value))


def _truncate(path):
    path.write_bytes(path.read_bytes()[:-100])


def _pickle_renamed(path):
    torch.save({"tok_emb.weight": Trap(path.parent / "UNPICKLED")}, path)


def _other_shape(path):
    other = GPT(GPTConfig.gpt2(**{**SHAPE, "n_embd": 32}))
    save_checkpoint(other, path.parent / "other")
    path.write_bytes((path.parent / "other" / "model.safetensors").read_bytes())


def _missing_tensor(path):
    from safetensors.torch import load_file, save_file

    tensors = load_file(path)
    tensors.pop("blocks.0.mlp.up_proj.weight")
    save_file(tensors, path)


CASES = {
    "missing config": ("config.json", lambda p: p.unlink(), "config.json is missing"),
    "config not JSON": ("config.json", lambda p: p.write_text("{"), "not valid JSON"),
    "config a list": ("config.json", lambda p: _write_json(p, [1]), "not an object"),
    "config unknown key": (
        "config.json",
        lambda p: _write_json(p, {**json.loads(p.read_text()), "n_layers": 2}),
        "unknown GPTConfig options",
    ),
    "config wrong type": (
        "config.json",
        lambda p: _write_json(p, {**json.loads(p.read_text()), "n_layer": "two"}),
        "n_layer='two'",
    ),
    "config bad value": (
        "config.json",
        lambda p: _write_json(p, {**json.loads(p.read_text()), "n_head": 3}),
        "not divisible",
    ),
    "missing weights": ("model.safetensors", lambda p: p.unlink(), "is missing"),
    "empty weights": (
        "model.safetensors",
        lambda p: p.write_bytes(b""),
        "not a readable safetensors",
    ),
    "truncated weights": ("model.safetensors", _truncate, "not a readable safetensors"),
    "random weights": (
        "model.safetensors",
        lambda p: p.write_bytes(
            torch.randint(0, 256, (4096,)).byte().numpy().tobytes()
        ),
        "not a readable safetensors",
    ),
    "pickle renamed": ("model.safetensors", _pickle_renamed, "never unpickles"),
    "weights of another shape": ("model.safetensors", _other_shape, "does not match"),
    "weights lack a tensor": ("model.safetensors", _missing_tensor, "does not match"),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_checkpoint_is_refused_naming_the_file(case, tmp_path):
    torch.manual_seed(0)
    ckpt = save_checkpoint(GPT(GPTConfig.gpt2(**SHAPE)), tmp_path / "ckpt")
    name, damage, message = CASES[case]
    damage(ckpt / name)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(ckpt)
    text = str(err.value)
    assert message in text
    assert str(ckpt / name) in text
    assert "\n" not in text
    assert not (ckpt / "UNPICKLED").exists()


def test_missing_directory_is_refused(tmp_path):
    with pytest.raises(CheckpointError, match="not a checkpoint directory"):
        load_checkpoint(tmp_path / "nowhere")


def test_pickle_trap_works(tmp_path):
    "The trap of the 'pickle renamed' case does fire when unpickled (so its test can fail)."
    pickle.loads(pickle.dumps(Trap(tmp_path / "UNPICKLED")))
    assert (tmp_path / "UNPICKLED").exists()


def test_import_hf_refuses_a_pickle_renamed(tmp_path):
    torch.manual_seed(0)
    from llmbook.model import export_hf

    export_hf(GPT(GPTConfig.gpt2(**SHAPE)), tmp_path)
    _pickle_renamed(tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        import_hf(tmp_path)
    assert not (tmp_path / "UNPICKLED").exists()


TOKENIZER_DAMAGE = {
    "bad line": (lambda lines: lines[:5] + ["not-base64! 5"], "line 6"),
    "twice": (lambda lines: lines + [lines[-1]], "appears twice"),
    "a byte missing": (lambda lines: lines[1:], "single-byte"),
    "empty": (lambda lines: [], "empty"),
}


@pytest.mark.parametrize("case", TOKENIZER_DAMAGE)
def test_corrupt_tokenizer_file_is_refused(case, tmp_path):
    tok = train_bpe("to be, or not to be, that is the question " * 20, 270)
    path = tok.save(tmp_path / "tokenizer.tiktoken")
    damage, message = TOKENIZER_DAMAGE[case]
    path.write_text("\n".join(damage(path.read_text().splitlines())))
    with pytest.raises(CheckpointError) as err:
        type(tok).load(path)
    assert message in str(err.value)
    assert str(path) in str(err.value)
