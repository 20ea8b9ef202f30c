r"""Data-parallel training of the main job on Ray Train (optional ``[ray]``
extra).

:func:`train_distributed` runs :func:`pyg_multisage.experiment.run`'s
training on :obj:`workers` processes with Ray Train's
:class:`~ray.train.torch.TorchTrainer` (``gloo`` on CPU, ``nccl`` on GPU)
and :class:`~torch.nn.parallel.DistributedDataParallel`:

* **The same steps as one process.** Step :math:`s` draws the very pairs
  and random negatives :func:`~pyg_multisage.experiment.make_step` draws (a
  pure function of ``(seed, s)``); worker :math:`r` of :math:`W` embeds its
  contiguous slice of the step's queries, positives and negatives (the
  global batch stays ``batch_size``), cutting its batch with
  :class:`~pyg_multisage.experiment.SeedBatcher`.
* **One copy of the graph per machine.** The driver saves the graph with
  its importance-neighbor tables and features once
  (:func:`pyg_multisage.storage.save_data`); every worker opens it
  memory-mapped (:func:`~pyg_multisage.storage.open_stores`) and gathers
  its batches from the maps, so the workers of one machine share the
  operating system's page cache instead of each unpickling a private copy.
  The batches, hence the run, equal those of the in-memory graph.
* **Negatives gathered across workers** (OmniSage §3.4.2): every query is
  scored against the positives and negatives of *all* workers
  (:func:`~pyg_multisage.distributed.negatives.gathered_sampled_softmax_loss`),
  so the loss is the single-process loss over the union and, with DDP's
  gradient averaging, so is the gradient. With :obj:`log_q`, the logQ
  correction comes from a count-min sketch that every worker updates with
  the gathered candidate ids (identical replicas, equal to the sketch of one
  process).
* **Checkpoints** are written by rank 0 only, atomically
  (:func:`pyg_multisage.train.save_checkpoint`), every
  :obj:`checkpoint_every` steps; every worker resumes from the same file,
  and a resumed run repeats the uninterrupted one (the data are a function
  of the step; the sketch is rebuilt by replaying the candidate ids of the
  steps already done).
* **Failures.** A worker that dies or raises ends the job (Ray Train with
  ``max_failures=0``): :class:`DistributedTrainingError` names the reason
  and the last intact checkpoint; temporary checkpoint files are removed.

:func:`train_worker` is the per-process loop; it runs under any initialized
:mod:`torch.distributed` process group (Ray Train's, ``torchrun``'s, or
``torch.multiprocessing`` with ``gloo``, as the tests do).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch_geometric.data import HeteroData, TensorAttr

from pyg_multisage import experiment as ex
from pyg_multisage.distributed.negatives import (
    gathered_max_margin_loss,
    gathered_sampled_softmax_loss,
    world,
)
from pyg_multisage.losses import CountMinSketch
from pyg_multisage.nn.models import Retriever
from pyg_multisage.storage import (
    MmapFeatureStore,
    MmapGraphStore,
    open_stores,
    save_data,
)
from pyg_multisage.train import (
    CHECKPOINT_NAME,
    TrainConfig,
    TrainResult,
    fit,
    load_checkpoint,
)

__all__ = [
    "DistributedTrainingError",
    "make_distributed_step",
    "process_memory",
    "train_distributed",
    "train_worker",
]

StepHook = Callable[[int, int], None]


class DistributedTrainingError(RuntimeError):
    """A distributed training job failed (a worker died or raised). The
    message names the reason and the last intact checkpoint, from which
    :func:`train_distributed` resumes when run again with the same
    ``output_dir``."""


class _Scored(nn.Module):
    """The retriever's forward returning the embeddings *and* the learned
    scale :math:`\\lambda`, so that DDP sees every parameter used in
    ``forward``."""

    def __init__(self, model: Retriever) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: HeteroData) -> tuple[Tensor, Tensor]:
        return self.model(batch), self.model.scale


class _OnDevice(nn.Module):
    """Runs :obj:`model` on :obj:`device` for CPU batches; CPU outputs."""

    def __init__(self, model: nn.Module, device: torch.device) -> None:
        super().__init__()
        self.model, self.device = model, device

    def forward(self, batch: HeteroData) -> Tensor:
        return self.model(batch.to(self.device)).cpu()


def _shard(x: Tensor, rank: int, size: int) -> Tensor:
    return x.tensor_split(size)[rank]


def _check_shardable(config: ex.RunConfig, workers: int) -> None:
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an int >= 1, got {workers!r}")
    if config.batch_size < workers:
        raise ValueError(
            f"batch_size ({config.batch_size}) must be >= workers ({workers}): "
            "each worker takes a slice of every step's pairs"
        )
    # Settings of the single-process job that the data-parallel loop does
    # not implement yet: refused rather than ignored.
    unsupported = []
    if config.epochs is not None:
        unsupported.append("epochs (give steps)")
    if config.patience is not None:
        unsupported.append("patience")
    if config.hard_negatives:
        unsupported.append("hard_negatives")
    if ex.REGISTRY[config.model].objective is not None:
        unsupported.append(f"model {config.model!r} (its own objective)")
    if unsupported:
        raise ValueError(
            "data-parallel training does not support "
            + ", ".join(unsupported)
            + " yet: train it in one process"
        )


def make_distributed_step(
    model: Retriever,
    net: nn.Module,
    batcher: ex.SeedBatcher,
    task: ex.Task,
    config: ex.RunConfig,
    *,
    device: torch.device | str = "cpu",
    sketch: CountMinSketch | None = None,
    step_hook: StepHook | None = None,
) -> tuple[Callable[[int], Any], Callable[[Any], Tensor]]:
    """``(data(step), step_fn)`` of one worker, for
    :func:`pyg_multisage.train.fit`.

    ``data(step)`` draws the global step of
    :func:`~pyg_multisage.experiment.make_step` (``batch_size`` pairs and
    ``num_negatives`` random targets) and cuts a batch of this worker's
    slice (:meth:`torch.Tensor.tensor_split` by rank) of the queries,
    positives and negatives. ``step_fn`` embeds it with :obj:`net` (the
    DDP-wrapped :obj:`model`, returning embeddings and scale) and returns the
    gathered loss. :obj:`step_hook`, if given, is called as
    ``step_hook(rank, step)`` at the start of every step.
    """
    rank, size = world()
    device = torch.device(device)
    b = config.batch_size
    # make_step's data(step) is the single definition of a step's draw; with
    # a batcher that cuts nothing it returns only the global ids.
    draw, _ = ex.make_step(model, lambda ids: None, task, config)
    replayed = {"upto": 0}

    def global_ids(step: int) -> tuple[Tensor, Tensor, Tensor]:
        ids = draw(step)[1]
        return ids[:b], ids[b : 2 * b], ids[2 * b :]

    def data(step: int) -> tuple[HeteroData, int, Tensor]:
        if step_hook is not None:
            step_hook(rank, step)
        if sketch is not None:
            # On resume, the sketch receives the candidates of the steps
            # already done (gathered ids = the global draw, in that order).
            for s in range(replayed["upto"], step):
                _, p, n = global_ids(s)
                sketch.update(torch.cat([p, n]))
            replayed["upto"] = step + 1
        q, p, n = (_shard(x, rank, size) for x in global_ids(step))
        ids = torch.cat([q, p, n])
        batch = batcher(ids)
        if device.type != "cpu":
            batch = batch.to(device)
        return batch, q.numel(), ids.to(device)

    def step_fn(item: tuple[HeteroData, int, Tensor]) -> Tensor:
        batch, nb, ids = item
        z, scale = net(batch)
        q, p, n = z[:nb], z[nb : 2 * nb], z[2 * nb :]
        if config.loss == "margin":
            return gathered_max_margin_loss(q, p, n, margin=config.margin)
        return gathered_sampled_softmax_loss(
            q * scale,
            p,
            n,
            positive_ids=ids[nb : 2 * nb],
            negative_ids=ids[2 * nb :],
            sketch=sketch,
        )

    return data, step_fn


def process_memory() -> dict[str, int] | None:
    """This process's memory in bytes from ``/proc/self/status`` (Linux):
    ``rss_anon`` (private memory), ``rss_file`` (mapped file pages it
    touched, shared through the page cache), ``rss_shmem`` and ``hwm``
    (peak resident set); :obj:`None` where ``/proc`` is absent."""
    fields = {
        "RssAnon": "rss_anon",
        "RssFile": "rss_file",
        "RssShmem": "rss_shmem",
        "VmHWM": "hwm",
    }
    try:
        lines = Path("/proc/self/status").read_text().splitlines()
    except OSError:
        return None
    out = {}
    for line in lines:
        key, _, value = line.partition(":")
        if key in fields:
            out[fields[key]] = int(value.split()[0]) * 1024
    return out


def _task_on_stores(
    task: ex.Task, stores: tuple[MmapFeatureStore, MmapGraphStore], path: object
) -> ex.Task:
    """:obj:`task` with its graph replaced by the sizes the model is built
    from (node counts, and ``x`` as meta tensors of the stored shapes): no
    feature or edge is read. A :obj:`task` that still holds a graph must
    agree with the stores in its node counts."""
    fs, gs = stores
    data = HeteroData()
    for t, n in gs.hetero_csr().num_nodes.items():
        data[t].num_nodes = n
    for attr in fs.get_all_tensor_attrs():
        if isinstance(attr.group_name, str) and attr.attr_name == "x":
            size = fs.get_tensor_size(TensorAttr(attr.group_name, "x"))
            data[attr.group_name].x = torch.empty(size, device="meta")
    for t in task.data.node_types:
        want = task.data[t].num_nodes
        have = data[t].num_nodes if t in data.node_types else None
        if have != want:
            raise ValueError(
                f"stores {path} do not hold the task's graph: '{t}' has "
                f"{have} nodes there, {want} in the task"
            )
    if task.target not in data.node_types or "x" not in data[task.target]:
        raise ValueError(f"stores {path} hold no features of '{task.target}'")
    return ex.Task(data, task.target, task.contexts, task.pairs, task.names)


def _train_config(
    config: ex.RunConfig, checkpoint_every: int | None, rank: int
) -> TrainConfig:
    """:func:`pyg_multisage.experiment.run`'s training settings; rank 0
    alone writes and shows progress."""
    return TrainConfig(
        max_steps=config.steps,
        lr=config.lr,
        weight_decay=config.weight_decay,
        warmup_steps=min(config.warmup_steps, config.steps - 1),
        eval_every=config.eval_every,
        checkpoint_every=checkpoint_every,
        output_dir=config.output_dir,
        seed=config.seed,
        progress=config.progress and rank == 0,
        writes=rank == 0,
    )


def train_worker(
    config: ex.RunConfig,
    task: ex.Task,
    *,
    resume: bool = True,
    checkpoint_every: int | None = None,
    log_q: bool = False,
    device: torch.device | str = "cpu",
    step_hook: StepHook | None = None,
    stores: str | os.PathLike | None = None,
) -> TrainResult:
    """The training loop of one data-parallel worker.

    Builds the model of :obj:`config` (same seed on every worker), wraps it
    in :class:`~torch.nn.parallel.DistributedDataParallel` when a process
    group of more than one process is initialized, and runs
    :func:`pyg_multisage.train.fit` with :func:`make_distributed_step`. Rank
    0 writes the checkpoints into ``config.output_dir``; every rank resumes
    from them. Validation (``config.eval_every``) runs on rank 0 and is
    broadcast. :obj:`task` must already hold the importance neighbors
    (:func:`pyg_multisage.experiment.add_neighbors`).

    With :obj:`stores` (a directory written by
    :func:`pyg_multisage.storage.save_data` from the task's graph with its
    importance neighbors), the worker opens it memory-mapped and cuts every
    batch from the maps; ``task.data`` is then not read and may be an empty
    :class:`~torch_geometric.data.HeteroData` (when it holds a graph, its
    node counts must match the stores'). The run equals the in-memory one.
    """
    rank, size = world()
    device = torch.device(device)
    source: HeteroData | tuple[MmapFeatureStore, MmapGraphStore] = task.data
    if stores is not None:
        source = open_stores(stores)
        task = _task_on_stores(task, source, stores)
    model = ex.build_model(task, config).to(device)
    batcher = ex.SeedBatcher(source, task.target, ex.model_edge_types(task, config))
    net: nn.Module = _Scored(model)
    if size > 1:
        net = nn.parallel.DistributedDataParallel(
            net,
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=True,
        )
    sketch = (
        CountMinSketch(seed=config.seed).to(device)
        if log_q and config.loss == "softmax"
        else None
    )
    data, step_fn = make_distributed_step(
        model,
        net,
        batcher,
        task,
        config,
        device=device,
        sketch=sketch,
        step_hook=step_hook,
    )
    num_nodes = task.data[task.target].num_nodes

    def eval_fn() -> dict[str, float]:
        out: list[Any] = [None]
        if rank == 0:
            emb = ex.embed_all(_OnDevice(model, device), batcher, num_nodes)
            metrics = ex.evaluate(emb, task.pairs["val"])
            out[0] = {k: metrics[k] for k in ("MRR", "REC@10")}
        if size > 1:
            dist.broadcast_object_list(out, src=0)
        return out[0]

    return fit(
        model,
        step_fn,
        data,
        _train_config(config, checkpoint_every, rank),
        eval_fn=eval_fn if config.eval_every else None,
        resume=resume,
    )


def _ray_worker(loop: dict[str, Any]) -> dict[str, Any]:
    """Ray Train's ``train_loop_per_worker``: fetch the task and run
    :func:`train_worker` on Ray's device. Returns the loop's time, the steps
    it ran and the process's memory (:func:`process_memory`) before the
    task was fetched and after training."""
    import ray
    import ray.train.torch

    memory_start = process_memory()
    task = loop["task"]
    if isinstance(task, ray.ObjectRef):
        task = ray.get(task)
    steps: list[int] = []
    user_hook = loop["step_hook"]

    def hook(rank: int, step: int) -> None:
        steps.append(step)
        if user_hook is not None:
            user_hook(rank, step)

    start = time.perf_counter()
    train_worker(
        loop["config"],
        task,
        resume=loop["resume"],
        checkpoint_every=loop["checkpoint_every"],
        log_q=loop["log_q"],
        device=ray.train.torch.get_device(),
        step_hook=hook,
        stores=loop["stores"],
    )
    return {
        "train_seconds": time.perf_counter() - start,
        "steps_run": len(steps),
        "first_step": steps[0] if steps else None,
        "memory_start": memory_start,
        "memory_end": process_memory(),
    }


def _require_ray() -> Any:
    try:
        import ray
        import ray.train.torch  # noqa: F401
    except ImportError:
        raise ImportError(
            "distributed training needs Ray Train: pip install 'pyg_multisage[ray]'"
        ) from None
    return ray


def _clean_temporaries(out_dir: Path) -> None:
    """Removes temporary checkpoint files a killed writer left behind (the
    checkpoints themselves are only ever replaced atomically)."""
    for tmp in out_dir.glob(".*.pt.tmp-*"):
        tmp.unlink(missing_ok=True)
    for graph in out_dir.glob(".graph.tmp-*"):
        shutil.rmtree(graph, ignore_errors=True)


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=2))
    os.replace(tmp, path)


def _check_resumable(out_dir: Path, config: ex.RunConfig) -> None:
    """Refuses to resume a checkpoint that another configuration wrote."""
    cfg_file = out_dir / "config.json"
    if not (out_dir / CHECKPOINT_NAME).exists() or not cfg_file.is_file():
        return
    old = json.loads(cfg_file.read_text())
    new = json.loads(json.dumps(asdict(config)))
    diff = sorted(
        k for k in set(old) | set(new) if k != "progress" and old.get(k) != new.get(k)
    )
    if diff:
        raise ValueError(
            f"output_dir {out_dir} holds a checkpoint of a different run (it "
            f"differs in {', '.join(diff)}); choose another output_dir, or "
            "pass resume=False to start over"
        )


def _reason(err: BaseException) -> str:
    """First and last meaningful lines of Ray's error, on one line."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(err))
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    if not lines:
        return type(err).__name__
    keep = [ln for ln in lines if not ln.startswith(("File ", "Traceback", "^"))]
    return " | ".join(keep[:1] + keep[-1:]) if len(keep) > 1 else keep[0]


def train_distributed(
    config: ex.RunConfig,
    *,
    workers: int,
    address: str | None = None,
    use_gpu: bool | None = None,
    cpus_per_worker: float = 1.0,
    resume: bool = True,
    checkpoint_every: int | None = 50,
    log_q: bool = False,
    local_mode: bool = False,
    task: ex.Task | None = None,
    step_hook: StepHook | None = None,
    mmap: bool = True,
) -> ex.RunResult:
    r"""Trains and evaluates the main job's model on :obj:`workers` Ray Train
    workers (module docstring); the data-parallel twin of
    :func:`pyg_multisage.experiment.run`, with the same run folder
    (``checkpoint.pt``, ``config.json``, ``metrics.json``, curves).

    The driver loads the task and tabulates the importance neighbors once.
    With :obj:`mmap` (the default) it saves the graph, the tables and the
    features (:func:`pyg_multisage.storage.save_data`) into a temporary
    folder ``.graph.tmp-<pid>`` of the run folder, which every worker opens
    memory-mapped (the workers of a machine share its page cache; the
    folder is removed when the job ends); without, the graph travels
    through Ray's object store and each worker unpickles its own in-memory
    copy. Both give the same run. After training, the driver embeds every
    target from the final checkpoint and computes the metrics on
    ``config.eval_split``.

    Args:
        config (RunConfig): The run. ``batch_size`` is the *global* batch
            (split across workers); it must be at least :obj:`workers`.
        workers (int): Number of training processes.
        address (str, optional): A running Ray cluster; its nodes must see
            ``config.output_dir`` (a shared filesystem) and have the package
            installed. (default: :obj:`None`, a local cluster on this
            machine, or the running Ray session)
        use_gpu (bool, optional): One GPU per worker and NCCL.
            (default: :obj:`None`, when this machine has CUDA)
        cpus_per_worker (float, optional): Ray CPUs reserved per worker.
            (default: :obj:`1.0`)
        resume (bool, optional): Continue from ``config.output_dir``'s
            checkpoint when one of the same configuration exists.
            (default: :obj:`True`)
        checkpoint_every (int, optional): Steps between checkpoints (and
            after the last). (default: :obj:`50`)
        log_q (bool, optional): Correct the sampled softmax by
            :math:`\log Q(v)` from a count-min sketch merged across workers.
            (default: :obj:`False`, as the single-process job)
        local_mode (bool, optional): Ray Train's local mode: one worker in
            this process, no cluster (quick checks). (default: :obj:`False`)
        task (Task, optional): A loaded task (default: :obj:`config`'s).
        step_hook (callable, optional): ``step_hook(rank, step)``, called
            on every worker at the start of every step (progress reports,
            fault-injection tests); must be picklable.
        mmap (bool, optional): Workers read the graph memory-mapped from
            the run folder (which, on a cluster, every node must see).
            (default: :obj:`True`)

    Returns:
        RunResult: as :func:`~pyg_multisage.experiment.run`'s, with an
        extra attribute ``distributed`` (``train_seconds`` of rank 0's loop,
        ``steps_run`` in this call and its ``first_step``, ``workers``,
        ``mmap``, and rank 0's ``memory_start``/``memory_end``
        from :func:`process_memory`), also written to ``distributed.json``.

    Raises:
        DistributedTrainingError: a worker died or raised; the last
            checkpoint is intact and a rerun resumes from it.
    """
    _check_shardable(config, workers)
    if local_mode and workers != 1:
        raise ValueError(f"local_mode runs one worker, got workers={workers}")
    if cpus_per_worker <= 0:
        raise ValueError(f"cpus_per_worker must be > 0, got {cpus_per_worker}")
    if checkpoint_every is not None and checkpoint_every < 1:
        raise ValueError(
            f"checkpoint_every must be >= 1 or None, got {checkpoint_every}"
        )
    ray = _require_ray()
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    if use_gpu is None:
        use_gpu = torch.cuda.is_available()
    scratch = Path(tempfile.mkdtemp(prefix="pyg_multisage_ddp_"))
    keep_out = bool(config.output_dir)
    out_dir = Path(config.output_dir) if keep_out else scratch / "run"
    out_dir.mkdir(parents=True, exist_ok=True)
    config = ex.RunConfig(**{**asdict(config), "output_dir": str(out_dir)})
    try:
        if resume:
            _check_resumable(out_dir, config)
        _clean_temporaries(out_dir)
        task = task or ex.load_task(config)
        task = ex.Task(
            ex.add_neighbors(task, config),
            task.target,
            task.contexts,
            task.pairs,
            task.names,
        )
        _write_json(out_dir / "config.json", asdict(config))
        shipped, stores = task, None
        if mmap:
            stores = out_dir / f".graph.tmp-{os.getpid()}"
            save_data(task.data, stores, overwrite=True)
            shipped = ex.Task(
                HeteroData(), task.target, task.contexts, task.pairs, None
            )
        if not local_mode and not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False}
            ray.init(address=address, **({} if address else kwargs))
        loop = {
            "config": config,
            "task": shipped if local_mode else ray.put(shipped),
            "stores": None if stores is None else str(stores),
            "resume": resume,
            "checkpoint_every": checkpoint_every,
            "log_q": log_q,
            "step_hook": step_hook,
        }
        trainer = TorchTrainer(
            _ray_worker,
            train_loop_config=loop,
            scaling_config=ScalingConfig(
                num_workers=0 if local_mode else workers,
                use_gpu=use_gpu,
                resources_per_worker={"CPU": cpus_per_worker},
            ),
            torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
            run_config=RunConfig(
                name="pyg_multisage_train",
                storage_path=str(scratch / "ray"),
                failure_config=FailureConfig(max_failures=0),
            ),
        )
        try:
            outcome = trainer.fit()
        except Exception as err:
            _clean_temporaries(out_dir)
            ckpt = out_dir / CHECKPOINT_NAME
            kept = (
                f"the last checkpoint {ckpt} (step "
                f"{int(load_checkpoint(ckpt)['step'])}) is intact; run again "
                "with the same output folder to resume"
                if ckpt.exists()
                else "no checkpoint had been written"
            )
            raise DistributedTrainingError(
                f"distributed training on {workers} workers failed: "
                f"{_reason(err)} ({kept})"
            ) from err
        _clean_temporaries(out_dir)
        state = load_checkpoint(out_dir / CHECKPOINT_NAME)
        model = ex.build_model(task, config)
        model.load_state_dict(state["model"])
        batcher = ex.SeedBatcher(
            task.data, task.target, ex.model_edge_types(task, config)
        )
        emb = ex.embed_all(model, batcher, task.data[task.target].num_nodes)
        pairs = ex.cap_pairs(
            task.pairs[config.eval_split], config.max_eval_pairs, config.seed
        )
        metrics = ex.evaluate(emb, pairs)
        metrics_out = dict(metrics)
        _write_json(out_dir / "metrics.json", metrics_out)
        run_info = dict(outcome.return_value or {})
        run_info["workers"] = workers
        run_info["mmap"] = mmap
        _write_json(out_dir / "distributed.json", run_info)
        result = ex.RunResult(
            config,
            metrics,
            list(state["history"]),
            out_dir if keep_out else None,
            model,
            emb,
        )
        result.distributed = run_info  # type: ignore[attr-defined]
        return result
    finally:
        # Ray's own bookkeeping, the saved graph, and the run folder when
        # none was asked for.
        for graph in out_dir.glob(".graph.tmp-*"):
            shutil.rmtree(graph, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)
