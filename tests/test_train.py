"""The training loop: schedule, determinism, resume, atomic checkpoints, curves."""

from __future__ import annotations

import csv
import math

import pytest
import torch
from torch import nn

import pyg_multisage.train as train_mod
from pyg_multisage.losses import sampled_softmax_loss
from pyg_multisage.train import (
    TrainConfig,
    fit,
    load_checkpoint,
    save_checkpoint,
    warmup_cosine_factor,
    warmup_cosine_schedule,
)

X = torch.randn(64, 6, generator=torch.Generator().manual_seed(0))


def make_model() -> nn.Module:
    torch.manual_seed(123)
    return nn.Sequential(nn.Linear(6, 8), nn.Dropout(0.2), nn.Linear(8, 4))


def batch_at(step: int) -> torch.Tensor:
    return torch.randint(0, 64, (16,), generator=torch.Generator().manual_seed(step))


def contrastive_step(model):
    def step_fn(idx):
        noise = 0.05 * torch.randn(len(idx), 6)  # uses the global RNG on purpose
        q, p = model(X[idx]), model(X[idx] + noise)
        loss = sampled_softmax_loss(q, p, temperature=2.0, positive_ids=idx)
        return {"loss": loss, "contrastive": loss}

    return step_fn


def test_warmup_cosine_schedule():
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=2.0)
    sched = warmup_cosine_schedule(opt, warmup_steps=4, total_steps=14, min_ratio=0.1)
    lrs = []
    for _ in range(14):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[:4] == pytest.approx([0.5, 1.0, 1.5, 2.0])  # linear warmup
    for s in range(4, 14):
        cos = 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (s - 4) / 10))
        assert lrs[s] == pytest.approx(2.0 * cos)
    assert all(a >= b for a, b in zip(lrs[3:], lrs[4:], strict=False))  # annealing
    assert warmup_cosine_factor(100, 4, 14, 0.1) == pytest.approx(0.1)


def test_fit_learns_logs_and_writes_curves(tmp_path):
    model = make_model()
    evals = []

    def eval_fn():
        evals.append(model.training)
        with torch.no_grad():
            return {"norm": float(model(X).norm())}

    cfg = TrainConfig(
        max_steps=30,
        lr=1e-2,
        warmup_steps=3,
        eval_every=10,
        output_dir=str(tmp_path),
        progress=False,
    )
    res = fit(model, contrastive_step(model), batch_at, cfg, eval_fn=eval_fn)
    assert len(res.history) == 30 and [r["step"] for r in res.history] == list(
        range(1, 31)
    )
    assert evals == [False, False, False]  # steps 10, 20, 30, in eval mode
    assert model.training
    assert "eval/norm" in res.history[9] and "eval/norm" not in res.history[10]
    first = sum(r["loss"] for r in res.history[:5]) / 5
    last = sum(r["loss"] for r in res.history[-5:]) / 5
    assert last < first
    assert res.history[0]["lr"] == pytest.approx(1e-2 / 3)
    with open(res.curves["csv"]) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 30 and {
        "loss",
        "contrastive",
        "lr",
        "grad_norm",
        "eval/norm",
    } <= set(rows[0])
    assert res.curves["png"].stat().st_size > 0
    assert res.checkpoint.exists() and load_checkpoint(res.checkpoint)["step"] == 30


def test_fit_is_deterministic_and_resume_matches_uninterrupted(tmp_path):
    cfg = dict(max_steps=12, lr=1e-2, warmup_steps=2, progress=False, seed=7)
    full = make_model()
    fit(full, contrastive_step(full), batch_at, TrainConfig(**cfg))
    again = make_model()
    fit(again, contrastive_step(again), batch_at, TrainConfig(**cfg))
    for a, b in zip(full.parameters(), again.parameters(), strict=True):
        assert torch.equal(a, b)
    # Killed during step 7, after the checkpoint of step 5; then resumed.
    part = make_model()
    inner = contrastive_step(part)
    calls = []

    def crashing(idx):
        calls.append(1)
        if len(calls) == 7:
            raise KeyboardInterrupt
        return inner(idx)

    with pytest.raises(KeyboardInterrupt):
        fit(
            part,
            crashing,
            batch_at,
            TrainConfig(**cfg, output_dir=str(tmp_path), checkpoint_every=5),
        )
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] == 5
    # A fresh process would rebuild the model from scratch.
    resumed = make_model()
    res = fit(
        resumed,
        contrastive_step(resumed),
        batch_at,
        TrainConfig(**cfg, output_dir=str(tmp_path), checkpoint_every=4),
    )
    assert [r["step"] for r in res.history] == list(range(1, 13))
    for a, b in zip(full.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(a, b)


def test_iterable_data_cycles_and_is_skipped_on_resume(tmp_path):
    data = [batch_at(i) for i in range(3)]
    seen = []
    model = make_model()

    def step_fn(idx):
        seen.append(int(idx[0]))
        return model(X[idx]).pow(2).mean()

    fit(
        model,
        step_fn,
        data,
        TrainConfig(max_steps=4, progress=False, output_dir=str(tmp_path)),
    )
    expect = [int(data[i % 3][0]) for i in range(7)]
    assert seen == expect[:4]
    seen.clear()
    fit(
        model,
        step_fn,
        data,
        TrainConfig(max_steps=7, progress=False, output_dir=str(tmp_path)),
    )
    assert seen == expect[4:]
    with pytest.raises(ValueError, match="no batch"):
        fit(model, step_fn, [], TrainConfig(max_steps=1, progress=False))


def test_gradient_clipping_bounds_the_update():
    model = nn.Linear(6, 4)
    before = [p.detach().clone() for p in model.parameters()]
    sgd = torch.optim.SGD(model.parameters(), lr=1.0)
    res = fit(
        model,
        lambda idx: 1000.0 * model(X[idx]).pow(2).mean(),
        batch_at,
        TrainConfig(max_steps=1, grad_clip=0.5, progress=False),
        optimizer=sgd,
    )
    step = torch.cat(
        [
            (p.detach() - b).flatten()
            for p, b in zip(model.parameters(), before, strict=True)
        ]
    )
    assert res.history[0]["grad_norm"] > 0.5
    assert step.norm().item() == pytest.approx(0.5, rel=1e-4)


def test_crash_mid_save_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "ck.pt"
    save_checkpoint(path, {"step": 1, "w": torch.arange(3)})
    real_save = torch.save

    def broken_save(obj, f):
        f.write(b"partial garbage")  # half-written file, then the crash
        raise KeyboardInterrupt

    monkeypatch.setattr(train_mod.torch, "save", broken_save)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, {"step": 2, "w": torch.arange(5)})
    monkeypatch.setattr(train_mod.torch, "save", real_save)
    state = load_checkpoint(path)
    assert state["step"] == 1 and torch.equal(state["w"], torch.arange(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.pt"]  # no temp left


def test_loss_forms_amp_on_cpu_and_bad_config():
    model = nn.Linear(6, 1)
    res = fit(
        model,
        lambda idx: {"a": model(X[idx]).mean() ** 2, "b": model.weight.pow(2).sum()},
        batch_at,
        TrainConfig(max_steps=2, progress=False),
    )
    row = res.history[0]
    assert row["loss"] == pytest.approx(row["a"] + row["b"], rel=1e-6)
    with pytest.warns(UserWarning, match="CUDA"):
        fit(
            model,
            lambda i: model(X[i]).pow(2).mean(),
            batch_at,
            TrainConfig(max_steps=1, amp="bf16", progress=False),
        )
    with pytest.raises(TypeError, match="step_fn"):
        fit(model, lambda i: 1.0, batch_at, TrainConfig(max_steps=1, progress=False))
    with pytest.raises(FloatingPointError):
        fit(
            model,
            lambda i: model(X[i]).sum() * float("nan"),
            batch_at,
            TrainConfig(max_steps=1, progress=False),
        )
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig(max_steps=1, optimizer="sgd")
    with pytest.raises(ValueError, match="amp"):
        TrainConfig(max_steps=1, amp="fp8")
    with pytest.raises(ValueError, match="max_steps"):
        TrainConfig(max_steps=0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("amp", ["fp16", "bf16"])
def test_amp_on_cuda(amp):
    model = nn.Linear(6, 4).cuda()
    xs = X.cuda()
    res = fit(
        model,
        lambda idx: sampled_softmax_loss(model(xs[idx]), model(xs[idx]), chunk_size=4),
        batch_at,
        TrainConfig(max_steps=5, amp=amp, device="cuda", progress=False),
    )
    assert all(math.isfinite(r["loss"]) for r in res.history)
