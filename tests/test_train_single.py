"""Chapter 4's trainer in one process: accumulation equals a larger batch, a resumed run repeats the
uninterrupted one exactly, non-finite losses are skipped and then stop the run, checkpoints are atomic."""

import json

import numpy as np
import pytest
import torch

from llmbook.model import GPT, GPTConfig, load_checkpoint
from llmbook.train import (
    TrainConfig,
    Trainer,
    TrainingDiverged,
    clip_grad_norm,
    get_batch,
    lr_at,
    make_optimizer,
)

torch.set_num_threads(1)
MODEL = GPTConfig.gpt2(vocab_size=96, max_seq_len=32, n_layer=2, n_head=4, n_embd=32)
TOKENS = np.random.default_rng(0).integers(0, 96, 6000).astype(np.uint16)


def fresh(cfg=MODEL):
    torch.manual_seed(0)
    return GPT(cfg)


def test_accumulation_equals_large_batch():
    """k micro-batches of B rows == one batch of k*B rows: loss to 1e-6, gradients to 1e-7, and after
    several AdamW steps, the weights to 1e-4 (Adam's first steps amplify rounding in gradients near eps)."""
    cfg_big = TrainConfig(
        batch_size=8, block_size=16, grad_accum=1, max_steps=5, warmup_steps=2, lr=1e-3
    )
    one, four = fresh(), fresh()
    opt1, opt4 = make_optimizer(one, cfg_big), make_optimizer(four, cfg_big)
    for step in range(5):
        x, y = get_batch(TOKENS, step, 0, cfg_big)
        loss1 = one(x, y)[1]
        loss1.backward()
        loss4 = 0.0
        for xb, yb in zip(x.split(2), y.split(2)):
            part = four(xb, yb)[1] / 4
            part.backward()
            loss4 += part.item()
        assert abs(loss1.item() - loss4) < 1e-6
        assert (
            max(
                (a.grad - b.grad).abs().max().item()
                for a, b in zip(one.parameters(), four.parameters())
            )
            < 1e-6
        )
        opt1.step()
        opt4.step()
        opt1.zero_grad()
        opt4.zero_grad()
    assert (
        max(
            (a - b).abs().max().item()
            for a, b in zip(one.parameters(), four.parameters())
        )
        < 1e-4
    )


def test_schedule():
    cfg = TrainConfig(lr=1.0, min_lr=0.1, warmup_steps=10, max_steps=110)
    assert lr_at(0, cfg) == pytest.approx(0.1) and lr_at(9, cfg) == pytest.approx(1.0)
    assert lr_at(60, cfg) == pytest.approx(0.55) and lr_at(110, cfg) == pytest.approx(
        0.1
    )


def test_clip_matches_torch():
    model = fresh()
    x, y = get_batch(TOKENS, 0, 0, TrainConfig(batch_size=4, block_size=16))
    model(x, y)[1].backward()
    grads = [p.grad.clone() for p in model.parameters()]
    want = torch.nn.utils.get_total_norm(grads)
    got = clip_grad_norm(model.parameters(), 0.05)
    assert got.item() == pytest.approx(want.item(), rel=1e-5) and want.item() > 0.05
    assert torch.nn.utils.get_total_norm(
        [p.grad for p in model.parameters()]
    ).item() == pytest.approx(0.05, rel=1e-4)
    for p, g in zip(model.parameters(), grads):
        torch.testing.assert_close(p.grad, g * 0.05 / want, rtol=1e-4, atol=1e-9)


def test_resume_reproduces_losses_exactly(tmp_path):
    cfg = TrainConfig(
        batch_size=4,
        block_size=16,
        grad_accum=2,
        max_steps=12,
        warmup_steps=3,
        ckpt_every=4,
        lr=3e-3,
    )
    full = [m["loss"] for m in Trainer(fresh(), cfg, TOKENS, progress=False).fit()]
    Trainer(fresh(), cfg, TOKENS, out_dir=tmp_path, progress=False).fit(
        steps=6
    )  # stops after step 6
    resumed = Trainer(fresh(), cfg, TOKENS, out_dir=tmp_path, progress=False)
    assert resumed.step == 4
    assert [m["loss"] for m in resumed.fit()] == full[4:]
    final = load_checkpoint(tmp_path / "step_000012")  # a shareable model
    assert isinstance(final, GPT)
    for p, q in zip(final.parameters(), resumed.raw_model.parameters()):
        assert torch.equal(p, q)
    assert (tmp_path / "latest").read_text() == "step_000012"
    assert sorted(p.name for p in tmp_path.glob("step_*")) == [
        "step_000008",
        "step_000012",
    ]  # keep_ckpts=2
    records = [
        json.loads(line)
        for line in (tmp_path / "metrics.jsonl").read_text().splitlines()
    ]
    # one record per step: the resumed run dropped the records after its checkpoint
    assert [r["step"] for r in records] == list(range(1, 13))


def test_half_written_checkpoint_is_ignored(tmp_path):
    cfg = TrainConfig(batch_size=4, block_size=16, max_steps=8, ckpt_every=2)
    Trainer(fresh(), cfg, TOKENS, out_dir=tmp_path, progress=False).fit(steps=4)
    tmp = tmp_path / ".tmp-step_000006"
    tmp.mkdir()
    (tmp / "model.safetensors").write_bytes(
        b"\x00" * 10
    )  # a kill in the middle of a write
    again = Trainer(fresh(), cfg, TOKENS, out_dir=tmp_path, progress=False)
    assert again.step == 4 and not tmp.exists()


class NaNAt(GPT):
    def __init__(self, cfg, bad):
        super().__init__(cfg)
        self.bad, self.calls = bad, 0

    def forward(self, idx, targets=None):
        logits, loss = super().forward(idx, targets)
        self.calls += 1
        return logits, (loss * float("nan") if self.calls - 1 in self.bad else loss)


def test_nonfinite_loss_skips_then_stops_keeping_last_checkpoint(tmp_path):
    cfg = TrainConfig(
        batch_size=4, block_size=16, max_steps=20, ckpt_every=2, max_bad_steps=3
    )
    torch.manual_seed(0)
    model = NaNAt(MODEL, bad={3, 4} | set(range(7, 100)))
    trainer = Trainer(model, cfg, TOKENS, out_dir=tmp_path, progress=False)
    with pytest.raises(TrainingDiverged, match="3 non-finite losses in a row"):
        trainer.fit()
    skipped = [m["skipped"] for m in trainer.history]
    assert skipped == [False, False, False, True, True, False, False, True, True]
    assert (
        tmp_path / "latest"
    ).read_text() == "step_000006"  # the last good step's checkpoint stays
    good = load_checkpoint(tmp_path / "step_000006")
    assert all(torch.isfinite(p).all() for p in good.parameters())
