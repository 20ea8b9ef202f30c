"""Data-parallel training: negatives gathered across workers equal the
single-process loss over the union (OmniSage §3.4.2), two workers equal one
worker with the whole batch, and a killed Ray Train job resumes to the
uninterrupted result.

The collective parts run in two local processes with ``gloo``
(``torch.multiprocessing``), which is much faster than starting Ray; Ray
Train itself gets one local-mode test and one two-worker job that is killed
and resumed.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from pyg_multisage import experiment as ex
from pyg_multisage.distributed.negatives import (
    all_gather_with_grad,
    gathered_max_margin_loss,
    gathered_sampled_softmax_loss,
)
from pyg_multisage.losses import (
    CountMinSketch,
    candidate_log_q,
    max_margin_loss,
    sampled_softmax_loss,
)
from pyg_multisage.train import TrainConfig, fit, load_checkpoint

WORLD = 2


def _spawn(fn, *args) -> None:
    """Runs ``fn(rank, init_file, *args)`` in ``WORLD`` processes (gloo)."""
    with tempfile.TemporaryDirectory() as tmp:
        init = os.path.join(tmp, "init")
        mp.spawn(fn, args=(init, *args), nprocs=WORLD, join=True)


def _init(rank: int, init: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"file://{init}", rank=rank, world_size=WORLD
    )


# ---------------------------------------------------------------------------
# (b) the gathered losses equal the single-process losses over the union
# ---------------------------------------------------------------------------
def _union_batch():
    """Global batch of 5 pairs and 7 negatives (split 3/2 and 4/3 across
    two workers), ids with accidental hits, and a sketch with history."""
    gen = torch.Generator().manual_seed(0)
    q, p = torch.randn(5, 4, generator=gen), torch.randn(5, 4, generator=gen)
    n = torch.randn(7, 4, generator=gen)
    pid = torch.tensor([3, 8, 3, 1, 9])
    nid = torch.tensor([8, 2, 9, 4, 4, 7, 3])
    sketch = CountMinSketch(width=64, depth=3, seed=1)
    sketch.update(torch.tensor([3, 3, 4, 7, 1]))
    return q, p, n, pid, nid, sketch


def _gathered_worker(rank: int, init: str, out: str) -> None:
    _init(rank, init)
    q, p, n, pid, nid, sketch = _union_batch()
    qs, ps, ns = (x.tensor_split(WORLD)[rank].clone() for x in (q, p, n))
    pids, nids = pid.tensor_split(WORLD)[rank], nid.tensor_split(WORLD)[rank]
    for x in (qs, ps, ns):
        x.requires_grad_(True)
    loss = gathered_sampled_softmax_loss(
        qs,
        ps,
        ns,
        positive_ids=pids,
        negative_ids=nids,
        temperature=2.0,
        sketch=sketch,
    )
    loss.backward()
    grads = [x.grad.clone() for x in (qs, ps, ns)]
    for x in (qs, ps, ns):
        x.grad = None
    margin = gathered_max_margin_loss(qs, ps, ns, margin=0.5)
    margin.backward()
    mgrads = [x.grad.clone() for x in (qs, ps, ns)]
    gathered, sizes = all_gather_with_grad(ns)
    torch.save(
        {
            "loss": loss.detach(),
            "grads": grads,
            "margin": margin.detach(),
            "mgrads": mgrads,
            "table": sketch.table.clone(),
            "total": sketch.total.clone(),
            "gathered": gathered.detach(),
            "sizes": sizes,
        },
        os.path.join(out, f"rank{rank}.pt"),
    )
    dist.destroy_process_group()


def test_gathered_losses_equal_union(tmp_path):
    _spawn(_gathered_worker, str(tmp_path))
    q, p, n, pid, nid, sketch = _union_batch()
    for x in (q, p, n):
        x.requires_grad_(True)
    log_q = candidate_log_q(sketch, pid, nid)
    ref = sampled_softmax_loss(
        q, p, n, temperature=2.0, log_q=log_q, positive_ids=pid, negative_ids=nid
    )
    ref.backward()
    ref_grads = [x.grad.clone() for x in (q, p, n)]
    for x in (q, p, n):
        x.grad = None
    ref_margin = max_margin_loss(q, p, n, margin=0.5, shared_negatives=True)
    ref_margin.backward()
    ref_mgrads = [x.grad.clone() for x in (q, p, n)]
    outs = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]
    for r, out in enumerate(outs):
        # The value is the global loss on every worker.
        torch.testing.assert_close(out["loss"], ref.detach(), atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(out["margin"], ref_margin.detach())
        # Worker gradients, averaged as DDP does (divided by W), are the
        # union loss's gradients of that worker's rows.
        for got, want in zip(out["grads"], ref_grads, strict=True):
            torch.testing.assert_close(got / WORLD, want.tensor_split(WORLD)[r])
        for got, want in zip(out["mgrads"], ref_mgrads, strict=True):
            torch.testing.assert_close(got / WORLD, want.tensor_split(WORLD)[r])
        # Every replica of the sketch equals the single-process sketch.
        assert torch.equal(out["table"], sketch.table)
        assert int(out["total"]) == int(sketch.total)
        assert out["sizes"] == [4, 3]
        torch.testing.assert_close(out["gathered"], n.detach())
    # The masking matters here: id 3 is a positive twice and a negative.
    unmasked = sampled_softmax_loss(q, p, n, temperature=2.0, log_q=log_q)
    assert float(ref.detach()) != float(unmasked.detach())


def test_gathered_losses_alone_are_the_plain_losses():
    q, p, n, pid, nid, sketch = _union_batch()
    other = CountMinSketch(width=64, depth=3, seed=1)
    other.load_state_dict(sketch.state_dict())
    got = gathered_sampled_softmax_loss(
        q, p, n, positive_ids=pid, negative_ids=nid, sketch=sketch
    )
    want = sampled_softmax_loss(
        q,
        p,
        n,
        log_q=candidate_log_q(other, pid, nid),
        positive_ids=pid,
        negative_ids=nid,
    )
    torch.testing.assert_close(got, want)
    want = max_margin_loss(q, p, n, shared_negatives=True)
    torch.testing.assert_close(gathered_max_margin_loss(q, p, n), want)


def test_gathered_losses_refuse_bad_input():
    q, p, n, pid, nid, _ = _union_batch()
    with pytest.raises(ValueError, match="positive must have the shape"):
        gathered_sampled_softmax_loss(q, p[:3], n, positive_ids=pid, negative_ids=nid)
    with pytest.raises(ValueError, match="negative_ids are needed"):
        gathered_sampled_softmax_loss(q, p, n, positive_ids=pid)
    with pytest.raises(ValueError, match="positive_ids must have 5"):
        gathered_sampled_softmax_loss(q, p, n, positive_ids=pid[:2], negative_ids=nid)
    with pytest.raises(ValueError, match="negatives must have 4 columns"):
        gathered_max_margin_loss(q, p, n[:, :2])


# ---------------------------------------------------------------------------
# (a) two workers x B equal one process x 2B
# ---------------------------------------------------------------------------
def _config(out: Path | None = None, **kw) -> ex.RunConfig:
    base = dict(
        dataset="synthetic",
        model="multisage",
        synthetic={"num_targets": 200, "num_contexts": 20},
        steps=3,
        batch_size=8,
        num_negatives=6,
        hidden_channels=16,
        out_channels=16,
        heads=2,
        num_walks=10,
        num_neighbors=5,
        warmup_steps=1,
        progress=False,
        output_dir=None if out is None else str(out),
    )
    base.update(kw)
    return ex.RunConfig(**base)


@pytest.fixture(scope="module")
def task() -> ex.Task:
    config = _config()
    task = ex.load_task(config)
    return ex.Task(
        ex.add_neighbors(task, config), task.target, task.contexts, task.pairs, None
    )


def _single_process(task: ex.Task, config: ex.RunConfig):
    """What experiment.run trains: make_step's data and loss, one process."""
    model = ex.build_model(task, config)
    batcher = ex.SeedBatcher(task.data, task.target, ex.model_edge_types(task, config))
    data, step_fn = ex.make_step(model, batcher, task, config)
    result = fit(
        model,
        step_fn,
        data,
        TrainConfig(
            max_steps=config.steps,
            lr=config.lr,
            weight_decay=config.weight_decay,
            warmup_steps=min(config.warmup_steps, config.steps - 1),
            seed=config.seed,
            progress=False,
        ),
        resume=False,
    )
    return model.state_dict(), [row["loss"] for row in result.history]


def _train_worker(rank: int, init: str, task, configs) -> None:
    from pyg_multisage.distributed.train import train_worker

    _init(rank, init)
    for config, log_q in configs:
        train_worker(config, task, resume=False, log_q=log_q)
    dist.destroy_process_group()


def _assert_same_run(ckpt: dict, state: dict, losses: list[float]) -> None:
    got = [row["loss"] for row in ckpt["history"]]
    torch.testing.assert_close(
        torch.tensor(got), torch.tensor(losses), atol=1e-5, rtol=1e-5
    )
    assert state.keys() == ckpt["model"].keys()
    for key, value in state.items():
        torch.testing.assert_close(ckpt["model"][key], value, atol=1e-5, rtol=1e-5)


def test_two_workers_equal_one_process(task, tmp_path):
    from pyg_multisage.distributed.train import train_worker

    plain = _config(tmp_path / "plain", steps=2)
    logq = _config(tmp_path / "logq", steps=2)
    margin = _config(tmp_path / "margin", steps=1, loss="margin")
    _spawn(_train_worker, task, [(plain, False), (logq, True), (margin, False)])

    # Without logQ the job is experiment.run's training, loss for loss.
    for cfg in (plain, margin):
        state, losses = _single_process(task, replace(cfg, output_dir=None))
        ckpt = load_checkpoint(Path(cfg.output_dir) / "checkpoint.pt")
        _assert_same_run(ckpt, state, losses)
    # With the merged sketch: one process with the whole batch.
    one = replace(logq, output_dir=str(tmp_path / "one"))
    train_worker(one, task, resume=False, log_q=True)
    ref = load_checkpoint(tmp_path / "one" / "checkpoint.pt")
    _assert_same_run(
        load_checkpoint(tmp_path / "logq" / "checkpoint.pt"),
        ref["model"],
        [row["loss"] for row in ref["history"]],
    )
    # Only rank 0 wrote, and nothing temporary is left.
    assert sorted(p.name for p in (tmp_path / "plain").iterdir()) == [
        "checkpoint.pt",
        "curves.csv",
        "curves.png",
    ]


def test_bad_worker_counts_are_refused(task):
    from pyg_multisage.distributed.train import train_distributed

    with pytest.raises(ValueError, match="workers must be an int >= 1"):
        train_distributed(_config(), workers=0, task=task)
    with pytest.raises(ValueError, match=r"batch_size \(8\) must be >= workers \(9\)"):
        train_distributed(_config(), workers=9, task=task)
    with pytest.raises(ValueError, match="local_mode runs one worker"):
        train_distributed(_config(), workers=2, local_mode=True, task=task)
    with pytest.raises(ValueError, match="cpus_per_worker must be > 0"):
        train_distributed(_config(), workers=1, cpus_per_worker=0, task=task)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--ray-address", "auto"], "--ray-address needs --workers"),
        (["--workers", "0"], "--workers must be >= 1, got 0"),
        (["--workers", "4", "--batch-size", "2"], "--batch-size (2) must be >="),
    ],
)
def test_cli_refuses_bad_worker_flags(argv, message, capsys, tmp_path):
    from pyg_multisage.cli import main

    assert main(["train", "--out", str(tmp_path / "run"), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------------------
# Ray Train: local mode, and (c) a killed two-worker job resumed
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ray_session(tmp_path_factory):
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.train.torch")
    # Workers must import this checkout of the package.
    root = str(Path(__file__).resolve().parents[2])
    path = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (root, path) if p)
    started = not ray.is_initialized()
    if started:
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            _temp_dir=str(tmp_path_factory.mktemp("ray")),
        )
    yield ray
    if started:
        ray.shutdown()


def test_ray_local_mode_equals_experiment_run(task, tmp_path):
    pytest.importorskip("ray.train.torch")
    from pyg_multisage.distributed.train import train_distributed

    config = _config(tmp_path / "ray", steps=2)
    got = train_distributed(config, workers=1, local_mode=True, task=task)
    want = ex.run(replace(config, output_dir=str(tmp_path / "plain")), task=task)
    for key, value in want.model.state_dict().items():
        torch.testing.assert_close(got.model.state_dict()[key], value)
    assert got.metrics.keys() == want.metrics.keys()
    for key, value in want.metrics.items():
        assert got.metrics[key] == pytest.approx(value, abs=1e-6)
    for name in ("checkpoint.pt", "config.json", "metrics.json", "curves.csv"):
        assert (tmp_path / "ray" / name).is_file()
    assert got.distributed["steps_run"] == 2


def test_killed_ray_job_resumes_to_the_uninterrupted_result(
    ray_session, task, tmp_path
):
    from pyg_multisage.distributed.train import (
        DistributedTrainingError,
        train_distributed,
        train_worker,
    )

    def kill_rank1_at_step2(rank: int, step: int) -> None:
        # Defined here so that Ray pickles it by value: the workers cannot
        # import this test module.
        if rank == 1 and step == 2:
            os._exit(3)

    config = _config(tmp_path / "run", steps=4)
    kwargs = dict(workers=2, cpus_per_worker=0.5, checkpoint_every=1, log_q=True)
    with pytest.raises(DistributedTrainingError) as err:
        train_distributed(config, task=task, step_hook=kill_rank1_at_step2, **kwargs)
    message = str(err.value)
    assert "distributed training on 2 workers failed" in message
    assert "(step 2) is intact" in message
    # The intact checkpoint after step 2; no temporary file, no metrics.
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["step"] == 2
    names = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert names == ["checkpoint.pt", "config.json"]

    # Resumed: equals one process running all four steps with the whole
    # batch (which test_two_workers_equal_one_process equates with two).
    resumed = train_distributed(config, task=task, **kwargs)
    assert resumed.distributed["steps_run"] == 2
    assert resumed.distributed["first_step"] == 2
    train_worker(replace(config, output_dir=str(tmp_path / "one")), task, log_q=True)
    ref = load_checkpoint(tmp_path / "one" / "checkpoint.pt")
    _assert_same_run(
        load_checkpoint(tmp_path / "run" / "checkpoint.pt"),
        ref["model"],
        [row["loss"] for row in ref["history"]],
    )

    # A different configuration does not resume this folder.
    with pytest.raises(ValueError, match="differs in lr"):
        train_distributed(replace(config, lr=1.0), task=task, **kwargs)


@pytest.mark.parametrize(
    "kw, name",
    [
        ({"steps": None, "epochs": 1.0}, "epochs"),
        ({"eval_every": 2, "patience": 1}, "patience"),
        ({"hard_negatives": 2}, "hard_negatives"),
        ({"model": "omnisage"}, "model 'omnisage'"),
    ],
)
def test_single_process_only_settings_are_refused(kw, name):
    from pyg_multisage.distributed.train import train_distributed

    config = ex.RunConfig(**{"dataset": "synthetic", "batch_size": 8, **kw})
    with pytest.raises(ValueError, match=f"does not support {name}"):
        train_distributed(config, workers=2)


# ---------------------------------------------------------------------------
# (d) workers cut their batches from one memory-mapped copy of the graph
# ---------------------------------------------------------------------------
def _mapped_files(maps: str, marker: str) -> set[str]:
    """The files under a folder named ``marker*`` that ``/proc/<pid>/maps``
    lists, as paths relative to that folder."""
    out = set()
    for line in maps.splitlines():
        path = line.split(maxsplit=5)[-1] if len(line.split()) >= 6 else ""
        if marker in path:
            out.add(path.split(marker, 1)[1].split("/", 1)[1])
    return out


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc")
def test_ray_workers_share_the_memory_mapped_graph(ray_session, task, tmp_path):
    from pyg_multisage.distributed.train import train_distributed
    from pyg_multisage.storage import save_data

    seen = tmp_path / "maps"
    seen.mkdir()

    def record_maps(rank: int, step: int) -> None:
        # Pickled by value (the workers cannot import this module).
        if step == 1:
            maps = Path("/proc/self/maps").read_text()
            (seen / f"rank{rank}.txt").write_text(maps)

    config = _config(tmp_path / "run", steps=2)
    got = train_distributed(
        config, workers=2, cpus_per_worker=0.5, task=task, step_hook=record_maps
    )
    # Every non-empty array the driver saved is mapped into both workers
    # (the same files, so one page-cache copy), read from the run folder.
    save_data(task.data, tmp_path / "saved")
    want = {
        str(p.relative_to(tmp_path / "saved"))
        for p in (tmp_path / "saved").rglob("*.npy")
        if p.stat().st_size > 128  # more than the .npy header
    }
    assert any(w.startswith("graph/") for w in want)
    assert any(w.startswith("features/") for w in want)
    assert any(w.startswith("tables/") for w in want)
    for rank in (0, 1):
        maps = (seen / f"rank{rank}.txt").read_text()
        assert str(tmp_path / "run" / ".graph.tmp-") in maps
        assert _mapped_files(maps, ".graph.tmp-") >= want, rank
    assert got.distributed["mmap"] is True
    assert got.distributed["memory_end"]["rss_file"] > 0
    # The run is the in-memory single-process run, loss for loss ...
    state, losses = _single_process(task, replace(config, output_dir=None))
    _assert_same_run(load_checkpoint(tmp_path / "run" / "checkpoint.pt"), state, losses)
    # ... and the saved graph is gone with the job.
    assert not list((tmp_path / "run").glob(".graph*"))


def test_worker_refuses_stores_of_another_graph(task, tmp_path):
    from torch_geometric.data import HeteroData

    from pyg_multisage.distributed.train import train_worker
    from pyg_multisage.storage import save_data

    save_data(task.data, tmp_path / "saved")
    other = HeteroData()
    other[task.target].num_nodes = 5
    small = ex.Task(other, task.target, task.contexts, task.pairs, None)
    with pytest.raises(ValueError, match=f"'{task.target}' has 200 nodes there, 5"):
        train_worker(_config(), small, resume=False, stores=tmp_path / "saved")
