"""One run of the main job, start to end (:func:`run`): the task's graph with
its importance neighbors, the model of its registry row, training with
validation and early stopping, and the metrics of the best weights; and
:func:`load_run`, which rebuilds a finished run from its folder."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn
from torch_geometric.data import FeatureStore, GraphStore, HeteroData

from pyg_multisage.convention import EdgeType
from pyg_multisage.datasets.retrieval import Task, retrieval_task
from pyg_multisage.experiment.config import RunConfig, read_config
from pyg_multisage.experiment.registry import (
    REGISTRY,
    add_neighbors,
    build_model,
    model_edge_types,
)
from pyg_multisage.loader import ImportanceNeighborLoader
from pyg_multisage.losses import (
    HardNegativeBand,
    HardNegativeCurriculum,
    margin_loss_with_hard_negatives,
    max_margin_loss,
    sampled_softmax_loss,
    softmax_loss_with_hard_negatives,
)
from pyg_multisage.metrics import retrieval_metrics
from pyg_multisage.nn.models import (
    Retriever,
    embed,
)
from pyg_multisage.references import pixie_visit_counts
from pyg_multisage.run_folder import (
    check_output_dir,
    finish,
    partial_dir,
    write_json,
)
from pyg_multisage.train import BEST_NAME, TrainConfig, fit, load_checkpoint


def load_task(config: RunConfig) -> Task:
    """Loads :obj:`config.dataset` as a :class:`Task`
    (:func:`pyg_multisage.datasets.retrieval.retrieval_task`)."""
    return retrieval_task(
        config.dataset,
        root=config.root,
        raw_dir=config.raw_dir,
        synthetic=config.synthetic,
    )


# ---------------------------------------------------------------------------
# Batches, training, evaluation
# ---------------------------------------------------------------------------
class SeedBatcher:
    """Cuts a loader batch (seeds first) for any list of target ids, with the
    sampler of :class:`~pyg_multisage.loader.ImportanceNeighborLoader`.

    :obj:`data` is the graph holding the importance-neighbor edges: a
    :class:`~torch_geometric.data.HeteroData`, or the ``(feature_store,
    graph_store)`` pair of a directory saved by
    :func:`pyg_multisage.storage.save_data` (then every batch is gathered
    from the memory-mapped files, and the batches equal those of the
    in-memory graph)."""

    def __init__(
        self,
        data: HeteroData | tuple[FeatureStore, GraphStore],
        target: str,
        edge_types: Sequence[EdgeType],
    ):
        self.target = target
        self.features: FeatureStore | None = None
        if edge_types:
            self.loader = ImportanceNeighborLoader(
                data, input_nodes=target, edge_types=list(edge_types), batch_size=1
            )
        else:
            self.loader = None
            if isinstance(data, HeteroData):
                self.x = data[target].x
            else:  # gathered row by row from the store, never copied whole
                self.features = data[0]

    def __call__(self, seeds: Tensor) -> HeteroData:
        if self.loader is None:
            batch = HeteroData()
            if self.features is not None:
                batch[self.target].x = self.features[self.target, "x", seeds]
            else:
                batch[self.target].x = self.x[seeds]
            batch[self.target].n_id = seeds
            batch[self.target].batch_size = seeds.numel()
            return batch
        out = self.loader.collate_fn(seeds)
        return out if isinstance(out, HeteroData) else self.loader.filter_fn(out)


class _Batches:
    """Batches of consecutive target ids, cut lazily (sized, for the bar)."""

    def __init__(self, batcher: SeedBatcher, num_nodes: int, batch_size: int):
        self.batcher, self.num_nodes, self.batch_size = batcher, num_nodes, batch_size

    def __len__(self) -> int:
        return -(-self.num_nodes // self.batch_size)

    def __iter__(self):
        for i in range(0, self.num_nodes, self.batch_size):
            yield self.batcher(
                torch.arange(i, min(i + self.batch_size, self.num_nodes))
            )


def embed_all(
    model: nn.Module,
    batcher: SeedBatcher,
    num_nodes: int,
    batch_size: int = 1024,
    progress: bool = False,
    desc: str = "embed",
) -> Tensor:
    """Embeddings of every target, ``[num_nodes, d]``
    (:func:`pyg_multisage.nn.models.embed` over batches of
    :obj:`batch_size` consecutive ids), with a progress bar if
    :obj:`progress`."""
    batches = _Batches(batcher, num_nodes, batch_size)
    return embed(
        model, batches, batcher.target, num_nodes, progress=progress, desc=desc
    )


def cap_pairs(pairs: Tensor, max_pairs: int, seed: int = 0) -> Tensor:
    """A seeded uniform subset of at most :obj:`max_pairs` pairs (order
    kept); all of them when :obj:`max_pairs` is ``0``."""
    if max_pairs <= 0 or pairs.size(1) <= max_pairs:
        return pairs
    gen = torch.Generator().manual_seed(seed)
    keep = torch.randperm(pairs.size(1), generator=gen)[:max_pairs].sort().values
    return pairs[:, keep]


def evaluate(emb: Tensor, pairs: Tensor, overlap: bool = True) -> dict[str, float]:
    """MultiSage §3.1 metrics of ``pairs`` (query, positive) against the pool
    of all targets; without :obj:`overlap` the top-100 overlap metrics
    (``INT``, ``UNI``, ``JAC``) are ``nan`` and the call costs about a sixth
    (validation passes, which read ``MRR`` and ``REC@K`` only)."""
    return retrieval_metrics(
        emb[pairs[0]],
        emb[pairs[1]],
        emb,
        positive_index=pairs[1],
        query_index=pairs[0],
        topk_overlap_k=100 if overlap else 0,
    )


def steps_per_epoch(task: Task, config: RunConfig) -> int:
    """Optimizer steps of one pass over the training pairs (an epoch):
    ``ceil(num_train_pairs / batch_size)``."""
    return max(1, -(-task.pairs["train"].size(1) // config.batch_size))


def hard_negative_curriculum(
    task: Task, config: RunConfig
) -> HardNegativeCurriculum | None:
    """PinSage's hard-negative curriculum of :obj:`config` (``None`` when
    ``hard_negatives`` is 0): every target's Pixie visit-count ranking
    through every context type (:func:`pixie_visit_counts`, seeded with
    :obj:`config.seed`), cut to the band ``hard_negative_band``."""
    if config.hard_negatives == 0:
        return None
    num_nodes = task.data[task.target].num_nodes
    ranking = pixie_visit_counts(
        task.data,
        torch.arange(num_nodes),
        target=task.target,
        contexts=list(task.contexts),
        num_walks=config.hard_negative_walks,
        seed=config.seed,
    )
    band = HardNegativeBand(ranking, num_nodes, config.hard_negative_band)
    return HardNegativeCurriculum(
        band,
        steps_per_epoch(task, config),
        config.hard_negatives,
        config.hard_negative_epochs,
    )


def make_step(model: Retriever, batcher: SeedBatcher, task: Task, config: RunConfig):
    """``(data(step), step_fn)`` for :func:`pyg_multisage.train.fit`: the
    row's own objective when it has one (:attr:`ModelSpec.objective`), else
    each step draws ``batch_size`` training pairs, ``num_negatives`` random
    targets and, with ``hard_negatives``, each query's hard negatives of the
    step (:func:`hard_negative_curriculum`) for :obj:`config.loss`: a pure
    function of the seed and the step, so a resumed run repeats it."""
    spec = REGISTRY[config.model]
    if spec.objective is not None:
        edge_types = spec.neighbors.edge_types(task)
        return spec.objective.make_step(model, batcher, task, config, edge_types)
    pairs = task.pairs["train"]
    num_nodes = task.data[task.target].num_nodes
    b, k = config.batch_size, config.num_negatives
    curriculum = hard_negative_curriculum(task, config)

    def data(step: int) -> tuple[HeteroData, Tensor]:
        gen = torch.Generator().manual_seed(config.seed * 1_000_003 + step)
        idx = torch.randint(0, pairs.size(1), (b,), generator=gen)
        neg = torch.randint(0, num_nodes, (k,), generator=gen)
        ids = torch.cat([pairs[0, idx], pairs[1, idx], neg])
        if curriculum is not None and curriculum.count(step) > 0:
            hard = curriculum.sample(pairs[0, idx], step, gen)
            ids = torch.cat([ids, hard.flatten()])
        return batcher(ids), ids

    def step_fn(item: tuple[HeteroData, Tensor]) -> Tensor:
        batch, ids = item
        z = model(batch)
        q, p, n = z[:b], z[b : 2 * b], z[2 * b : 2 * b + k]
        if z.size(0) > 2 * b + k:
            return _hard_negative_loss(model, config, z, ids, b, k)
        if config.loss == "margin":
            return max_margin_loss(q, p, n, margin=config.margin, shared_negatives=True)
        # lambda * q^T v with a learned lambda: scale the queries.
        return sampled_softmax_loss(
            q * model.scale,
            p,
            n,
            positive_ids=ids[b : 2 * b],
            negative_ids=ids[2 * b :],
        )

    return data, step_fn


def budget(task: Task, config: RunConfig) -> tuple[int, int | None]:
    """``(max_steps, eval_every)`` of a run: :obj:`config.steps`, or
    :obj:`config.epochs` epochs of :func:`steps_per_epoch` steps validated
    :obj:`config.evals_per_epoch` times per epoch (unless
    :obj:`config.eval_every` says otherwise)."""
    if config.epochs is None:
        assert config.steps is not None
        return config.steps, config.eval_every
    per_epoch = steps_per_epoch(task, config)
    max_steps = max(1, round(config.epochs * per_epoch))
    every = config.eval_every or max(1, per_epoch // config.evals_per_epoch)
    return max_steps, every


def _hard_negative_loss(
    model: Retriever, config: RunConfig, z: Tensor, ids: Tensor, b: int, k: int
) -> Tensor:
    """The step's loss with hard negatives: the rows after the ``2b + k``
    (queries, positives, random negatives) are ``b`` blocks of ``h``."""
    q, p, n = z[:b], z[b : 2 * b], z[2 * b : 2 * b + k]
    hard = z[2 * b + k :].view(b, -1, z.size(-1))
    if config.loss == "margin":
        return margin_loss_with_hard_negatives(q, p, n, hard, margin=config.margin)
    return softmax_loss_with_hard_negatives(
        q * model.scale,
        p,
        n,
        hard,
        positive_ids=ids[b : 2 * b],
        negative_ids=ids[2 * b : 2 * b + k],
        hard_ids=ids[2 * b + k :].view(b, -1),
    )


@dataclass
class RunResult:
    """What :func:`run` returns.

    Attributes:
        metrics: The MultiSage §3.1 metrics on :obj:`config.eval_split`,
            computed once, with the best weights.
        history: :func:`~pyg_multisage.train.fit`'s history (one row per
            step; ``eval/MRR`` etc. at validation steps).
        val_curve: One row per validation: ``step``, ``epoch`` and the
            validation metrics.
        best_step, best_epoch: Where the best validation MRR was reached
            (the weights reported); :obj:`None` without validation.
        stopped_early: Whether patience ran out before the budget.
        steps_per_epoch: Steps of one pass over the training pairs.
    """

    config: RunConfig
    metrics: dict[str, float]
    history: list[dict[str, float]]
    output_dir: Path | None
    model: nn.Module
    embeddings: Tensor
    val_curve: list[dict[str, float]] = field(default_factory=list)
    best_step: int | None = None
    best_epoch: float | None = None
    stopped_early: bool = False
    steps_per_epoch: int = 0


#: Validation metrics followed during training.
VAL_METRICS = ("MRR", "REC@1", "REC@10")


def run(
    config: RunConfig,
    task: Task | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
) -> RunResult:
    """Samples, trains and evaluates one model.

    The budget is :obj:`config.steps` or :obj:`config.epochs`
    (:func:`budget`). A run that validates (``epochs`` or ``eval_every``)
    scores the validation pairs at each validation, keeps the weights with
    the best validation MRR, stops early after :obj:`config.patience`
    validations without improvement, and evaluates the best weights once on
    :obj:`config.eval_split` at the end.

    With :obj:`config.output_dir` set, the run folder is checked first
    (:func:`check_output_dir`, before any work), ``config.json`` is written
    at the start, a checkpoint every ``checkpoint_every`` steps
    (default: the validation interval, else 50), and the checkpoint,
    ``best.pt``, ``metrics.json``, ``training.json`` (validation curve,
    best epoch) and the curves (CSV, PNG) go into ``<output_dir>.partial``,
    renamed to :obj:`output_dir` when the run is complete. An interrupted
    run (SIGINT/SIGTERM: :class:`~pyg_multisage.train.TrainingInterrupted`)
    stays in the partial folder; ``resume=True`` continues it from its last
    checkpoint to the same result as an uninterrupted run (each step's batch
    is a pure function of the seed and the step; the random states are
    restored).
    """
    out_dir = Path(config.output_dir) if config.output_dir else None
    if resume and out_dir is None:
        raise ValueError("resume=True needs config.output_dir")
    work_dir = (
        check_output_dir(out_dir, resume=resume, overwrite=overwrite)
        if out_dir is not None
        else None
    )
    if work_dir is not None and not resume:
        write_json(work_dir / "config.json", asdict(config))
    task = task or load_task(config)
    task = task.replace_data(add_neighbors(task, config))
    model = build_model(task, config)
    batcher = SeedBatcher(task.data, task.target, model_edge_types(task, config))
    data, step_fn = make_step(model, batcher, task, config)
    num_nodes = task.data[task.target].num_nodes
    per_epoch = steps_per_epoch(task, config)
    max_steps, eval_every = budget(task, config)
    val_pairs = cap_pairs(task.pairs["val"], config.max_val_pairs, config.seed)

    def eval_fn() -> dict[str, float]:
        scores = evaluate(
            embed_all(model, batcher, num_nodes), val_pairs, overlap=False
        )
        return {k: scores[k] for k in VAL_METRICS}

    train_cfg = TrainConfig(
        max_steps=max_steps,
        lr=config.lr,
        weight_decay=config.weight_decay,
        warmup_steps=min(config.warmup_steps, max_steps - 1),
        eval_every=eval_every,
        checkpoint_every=config.checkpoint_every or eval_every or 50,
        output_dir=str(work_dir) if work_dir else None,
        seed=config.seed,
        progress=config.progress,
        monitor="MRR" if eval_every else None,
        patience=config.patience,
    )
    result = fit(
        model,
        step_fn,
        data,
        train_cfg,
        eval_fn=eval_fn if eval_every else None,
        resume=resume,
    )
    val_curve = [
        {
            "step": row["step"],
            "epoch": row["step"] / per_epoch,
            **{k: row[f"eval/{k}"] for k in VAL_METRICS},
        }
        for row in result.history
        if "eval/MRR" in row
    ]
    emb = embed_all(
        model, batcher, num_nodes, progress=config.progress, desc="final evaluation"
    )
    pairs = cap_pairs(task.pairs[config.eval_split], config.max_eval_pairs, config.seed)
    metrics = evaluate(emb, pairs)
    best_epoch = None if result.best_step is None else result.best_step / per_epoch
    training = {
        "steps_per_epoch": per_epoch,
        "max_steps": max_steps,
        "best_step": result.best_step,
        "best_epoch": best_epoch,
        "stopped_early": result.stopped_early,
        "val_curve": val_curve,
    }
    if work_dir is not None and out_dir is not None:
        write_json(work_dir / "metrics.json", metrics)
        write_json(work_dir / "training.json", training)
        finish(work_dir, out_dir)
    return RunResult(
        config,
        metrics,
        result.history,
        out_dir,
        model,
        emb,
        val_curve=val_curve,
        best_step=result.best_step,
        best_epoch=best_epoch,
        stopped_early=result.stopped_early,
        steps_per_epoch=per_epoch,
    )


def load_run(
    run_dir: str | os.PathLike, progress: bool = False
) -> tuple[RunConfig, Task, nn.Module, SeedBatcher]:
    """Rebuilds a trained run from its folder (config, graph, weights);
    :obj:`progress` shows the neighbor sampling's progress bar.

    Raises:
        FileNotFoundError: :obj:`run_dir` is not a run folder, or the run
            has not finished (it waits in ``<run_dir>.partial``).
        CheckpointError: the checkpoint is missing or unreadable (checked
            before the graph is built).
    """
    run_dir = Path(run_dir)
    cfg_file = run_dir / "config.json"
    if not cfg_file.is_file():
        if (partial_dir(run_dir) / "config.json").is_file():
            raise FileNotFoundError(
                f"{run_dir} has not finished (it was interrupted): resume it "
                f"with 'pyg-multisage train --resume {run_dir}'"
            )
        raise FileNotFoundError(f"{run_dir} holds no config.json: not a training run")
    config = read_config(cfg_file)
    config.progress = progress
    # A run that validated reports (and restores) its best weights.
    best = run_dir / BEST_NAME
    state = load_checkpoint(best if best.is_file() else run_dir / "checkpoint.pt")
    task = load_task(config)
    task = task.replace_data(add_neighbors(task, config))
    model = build_model(task, config)
    model.load_state_dict(state["model"])
    model.eval()
    batcher = SeedBatcher(task.data, task.target, model_edge_types(task, config))
    return config, task, model, batcher
