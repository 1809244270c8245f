"""The chat loop of llmbook.finetune driven through standard input that is not a terminal, as a script
or a pipe would drive `llmbook chat CHECKPOINT`; and the LoRA / DPO / SFT-mask properties on a tiny model."""

import copy
import io
import math
import subprocess
import sys

import pytest
import torch

from llmbook.data import train_bpe
from llmbook.finetune import (
    CHAT_TOKENS,
    END,
    add_lora,
    chat,
    collate,
    dpo_loss,
    encode_chat,
    load_chat_model,
    merge_lora,
    save_chat_model,
    special_id,
)
from llmbook.model import GPT, GPTConfig

TEXT = (
    "to be, or not to be, that is the question: whether 'tis nobler in the mind to suffer "
    * 30
)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    tok = train_bpe(TEXT, 300, special_tokens=CHAT_TOKENS).to_tiktoken()
    model = GPT(
        GPTConfig.gpt2(
            vocab_size=tok.n_vocab, max_seq_len=64, n_layer=2, n_head=2, n_embd=32
        )
    )
    return save_chat_model(model, tok, tmp_path_factory.mktemp("chat"))


def run(checkpoint, script, **kw):
    out = io.StringIO()
    history = chat(
        checkpoint,
        stdin=io.StringIO(script),
        stdout=out,
        temperature=0,
        max_new_tokens=8,
        **kw,
    )
    return out.getvalue(), history


def test_one_reply_per_line_and_nothing_else(checkpoint):
    out, history = run(checkpoint, "to be\nor not\n")
    assert (
        len(out.splitlines()) == 2 and "you>" not in out and "llmbook chat" not in out
    )
    assert [m["role"] for m in history] == ["user", "assistant", "user", "assistant"]


def test_reset_forgets_and_quit_stops(checkpoint):
    fresh, _ = run(checkpoint, "the question\n")
    out, history = run(checkpoint, "to be\n/reset\nthe question\n/quit\nnever read\n")
    assert (
        out.splitlines()[1] == fresh.splitlines()[0]
    )  # after /reset the reply is a fresh session's
    assert len(history) == 2 and history[0]["content"] == "the question"


def test_long_conversation_stays_in_context(checkpoint):
    out, history = run(checkpoint, "whether 'tis nobler in the mind to suffer\n" * 12)
    assert len(out.splitlines()) == 12  # no error once the history outgrows 64 tokens


def test_real_stdin_pipe(checkpoint):
    code = "import sys; from llmbook.finetune import chat; chat(sys.argv[1], temperature=0, max_new_tokens=6)"
    r = subprocess.run(
        [sys.executable, "-c", code, str(checkpoint)],
        input="to be\n/reset\nor not\n/quit\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == 2


def test_checkpoint_without_chat_tokens_is_refused(tmp_path):
    from llmbook.model import save_checkpoint

    save_checkpoint(
        GPT(
            GPTConfig.gpt2(
                vocab_size=300, max_seq_len=16, n_layer=1, n_head=1, n_embd=8
            )
        ),
        tmp_path,
    )
    with pytest.raises(FileNotFoundError, match="save_chat_model"):
        load_chat_model(tmp_path)


def test_lora_merge_and_dpo_formula(checkpoint):
    model, tok = load_chat_model(checkpoint)
    x, y = collate(tok, [("to be", "or not"), ("the question", "whether")])
    lora = add_lora(copy.deepcopy(model), r=4, alpha=8)
    for name, p in lora.named_parameters():
        if name.endswith(".B"):
            torch.nn.init.normal_(p, std=0.1)
    with torch.no_grad():
        before = lora.eval()(x)[0]
        assert torch.allclose(merge_lora(lora)(x)[0], before, atol=1e-5)
    pc, pr, rc, rr = (
        torch.tensor([-3.0]),
        torch.tensor([-4.0]),
        torch.tensor([-3.5]),
        torch.tensor([-3.2]),
    )
    z = 0.5 * (pc - rc) - 0.5 * (pr - rr)
    assert math.isclose(
        dpo_loss(pc, pr, rc, rr, beta=0.5)[0].item(),
        -math.log(1 / (1 + math.exp(-z.item()))),
        rel_tol=1e-6,
    )


def test_sft_mask_is_the_assistant_text(checkpoint):
    _, tok = load_chat_model(checkpoint)
    ids, mask = encode_chat(
        tok,
        [
            {"role": "user", "content": "to be"},
            {"role": "assistant", "content": "or not"},
        ],
    )
    assert tok.decode([i for i, m in zip(ids, mask) if m]) == "or not" + END
    x, y = collate(tok, [("to be", "or not")])
    assert (
        tok.decode(y[y != -100].tolist()) == "or not" + END
        and special_id(tok, END) in y.tolist()[0]
    )
