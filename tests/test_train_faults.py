"""The training loop under faults: signals, divergence, hostile or damaged
checkpoints, early stopping and determinism at the default thread count."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from pyg_multisage.train import (
    CheckpointError,
    TrainConfig,
    TrainingDiverged,
    deterministic_algorithms,
    fit,
    load_checkpoint,
    save_checkpoint,
)

X = torch.randn(64, 6, generator=torch.Generator().manual_seed(0))


def batch_at(step: int) -> torch.Tensor:
    return torch.randint(0, 64, (16,), generator=torch.Generator().manual_seed(step))


def make_model() -> nn.Module:
    torch.manual_seed(5)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))


def square_step(model):
    return lambda idx: (model(X[idx]) - 1).pow(2).mean()


# A training process that a test kills: 40 steps of a small model, slowed
# down so that a signal arrives mid-run, checkpoint every 5 steps. The same
# source runs in-process for the reference and the resume.
SCRIPT = textwrap.dedent(
    """
    import sys, time, torch
    from torch import nn
    from pyg_multisage.train import TrainConfig, TrainingInterrupted, fit

    def main(out, delay):
        X = torch.randn(64, 6, generator=torch.Generator().manual_seed(0))
        torch.manual_seed(5)
        model = nn.Sequential(nn.Linear(6, 8), nn.Dropout(0.3), nn.Linear(8, 3))

        def data(step):
            gen = torch.Generator().manual_seed(step)
            return torch.randint(0, 64, (16,), generator=gen)

        def step_fn(idx):
            time.sleep(delay)
            print("step", flush=True)
            return (model(X[idx]) - 1).pow(2).mean()

        cfg = TrainConfig(max_steps=40, lr=1e-2, checkpoint_every=5,
                          output_dir=out, progress=False)
        fit(model, step_fn, data, cfg)
        return {k: v.clone() for k, v in model.state_dict().items()}

    if __name__ == "__main__":
        try:
            main(sys.argv[1], float(sys.argv[2]))
        except TrainingInterrupted as err:
            print(err, flush=True)
            sys.exit(130)
    """
)


@pytest.fixture(scope="module")
def train_script(tmp_path_factory):
    script = tmp_path_factory.mktemp("script") / "train_script.py"
    script.write_text(SCRIPT)
    namespace: dict = {}
    exec(compile(SCRIPT, str(script), "exec"), namespace)
    reference = namespace["main"](str(script.parent / "ref"), 0.0)
    return script, namespace["main"], reference


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_killed_run_saves_and_resumes_to_the_same_result(
    tmp_path, train_script, sig, capsys
):
    script, main, expected = train_script
    run = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1]))
    proc = subprocess.Popen(
        [sys.executable, str(script), str(run), "0.05"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    for _ in range(12):  # wait until a dozen steps have run
        assert proc.stdout.readline().startswith("step")
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    name = signal.Signals(sig).name
    assert f"interrupted by {name} after step" in out
    step = load_checkpoint(run / "checkpoint.pt")["step"]
    assert 12 <= step < 40  # saved where it stopped

    resumed = main(str(run), 0.0)  # resume: the same call again
    for key, value in expected.items():
        assert torch.equal(resumed[key], value), key
    assert load_checkpoint(run / "checkpoint.pt")["step"] == 40


def test_divergence_keeps_the_last_good_checkpoint(tmp_path):
    model = make_model()
    base = square_step(model)

    def step_fn(idx):
        loss = base(idx)
        return loss * float("nan") if step_fn.calls == 7 else loss

    def counted(idx):
        out = step_fn(idx)
        step_fn.calls += 1
        return out

    step_fn.calls = 0
    cfg = TrainConfig(
        max_steps=20, checkpoint_every=5, output_dir=str(tmp_path), progress=False
    )
    with pytest.raises(TrainingDiverged, match="loss is nan at step 8") as info:
        fit(model, counted, batch_at, cfg)
    assert "checkpoint.pt is kept" in str(info.value)
    assert "\n" not in str(info.value)
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] == 5
    # Without any checkpoint yet, the message says so.
    step_fn.calls = 0
    with pytest.raises(TrainingDiverged, match="no checkpoint had been written"):
        fit(make_model(), counted, batch_at, TrainConfig(max_steps=20, progress=False))


class _Payload:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_checkpoints_refuse_payloads_and_name_damaged_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    evil = tmp_path / "evil.pt"
    torch.save({"step": 1, "model": _Payload()}, evil)
    with pytest.raises(CheckpointError, match="evil.pt: refused to load"):
        load_checkpoint(evil)
    assert not (tmp_path / "PWNED").exists()

    good = tmp_path / "good.pt"
    save_checkpoint(good, {"step": 3, "w": torch.arange(4)})
    data = good.read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cut.pt: not a readable checkpoint"):
        load_checkpoint(cut)
    garbled = tmp_path / "garbled.pt"
    garbled.write_bytes(b"\x00not a checkpoint" * 10)
    with pytest.raises(CheckpointError, match="garbled.pt"):
        load_checkpoint(garbled)
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty.pt: the checkpoint file is empty"):
        load_checkpoint(empty)
    with pytest.raises(CheckpointError, match="missing.pt: no such checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")
    tensor_only = tmp_path / "tensor.pt"
    torch.save(torch.arange(3), tensor_only)
    with pytest.raises(CheckpointError, match="not a pyg_multisage checkpoint"):
        load_checkpoint(tensor_only)


def test_checkpoint_of_fit_loads_with_weights_only(tmp_path):
    model = make_model()
    cfg = TrainConfig(max_steps=3, output_dir=str(tmp_path), progress=False)
    fit(model, square_step(model), batch_at, cfg)
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert state["step"] == 3 and "rng" in state


def test_early_stopping_restores_the_best_weights(tmp_path):
    model = make_model()
    scores = iter([0.1, 0.3, 0.2, 0.25, 0.29, 0.5])
    snapshots = {}

    def eval_fn():
        step = len(snapshots) + 1
        snapshots[step] = {k: v.clone() for k, v in model.state_dict().items()}
        return {"MRR": next(scores)}

    cfg = TrainConfig(
        max_steps=100,
        eval_every=2,
        monitor="MRR",
        patience=3,
        output_dir=str(tmp_path),
        progress=False,
    )
    res = fit(model, square_step(model), batch_at, cfg, eval_fn=eval_fn)
    # evaluations at steps 2, 4, 6, 8, 10: best at step 4, then three worse.
    assert res.stopped_early and len(res.history) == 10
    assert res.best_step == 4 and res.best_eval == {"MRR": 0.3}
    for k, v in model.state_dict().items():
        assert torch.equal(v, snapshots[2][k]), k
    assert load_checkpoint(tmp_path / "best.pt")["step"] == 4
    with pytest.raises(ValueError, match="patience needs 'monitor'"):
        TrainConfig(max_steps=5, patience=2)
    with pytest.raises(ValueError, match="needs eval_every"):
        TrainConfig(max_steps=5, monitor="MRR")


def test_deterministic_algorithms_is_scoped():
    before = torch.are_deterministic_algorithms_enabled()
    with deterministic_algorithms():
        assert torch.are_deterministic_algorithms_enabled()
    assert torch.are_deterministic_algorithms_enabled() == before
    with deterministic_algorithms(False):
        assert torch.are_deterministic_algorithms_enabled() == before


def test_message_passing_training_is_bit_identical_at_default_threads():
    # index_add_ over many colliding destinations: the CPU kernel's default
    # summation order follows thread scheduling; fit() makes it fixed.
    if torch.get_num_threads() < 2:
        pytest.skip("needs 2 or more threads to show scheduling effects")
    gen = torch.Generator().manual_seed(0)
    src = torch.randint(0, 2000, (200_000,), generator=gen)
    dst = torch.randint(0, 50, (200_000,), generator=gen)
    feats = torch.randn(2000, 16, generator=gen)

    def train_once():
        torch.manual_seed(0)
        lin = nn.Linear(16, 16)

        def step_fn(_):
            h = lin(feats)[src]
            agg = torch.zeros(50, 16).index_add_(0, dst, h)
            return agg.pow(2).mean()

        fit(lin, step_fn, lambda s: s, TrainConfig(max_steps=5, progress=False))
        return torch.cat([p.detach().flatten() for p in lin.parameters()])

    first = train_once()
    for _ in range(2):
        assert torch.equal(train_once(), first)


def test_fit_restores_signal_handlers():
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    model = make_model()
    fit(model, square_step(model), batch_at, TrainConfig(max_steps=1, progress=False))
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
    time.sleep(0)  # nothing pending
