"""The main job: sample, train, evaluate one model on a retrieval task.

One function, :func:`run`, drives everything the ``pyg-multisage train``
command and ``examples/dblp_comparison.py`` do, so that every model of the
comparison (MultiSage Table 2) gets the same data, neighbors, negatives,
loss and training budget:

1. load a dataset with query–positive pairs (:func:`load_task`, from
   :mod:`pyg_multisage.datasets.retrieval`);
2. tabulate the importance neighbors the model's row of :data:`REGISTRY`
   names, once (:func:`add_neighbors`): MultiSage's contextual walks
   (Alg. 2) through some or all context types, or OmniSage's PPR neighbors
   (§3.1.1);
3. build the model with its row's builder and train it on batches of
   ``(query, positive, random negatives)`` seeds cut by
   :class:`~pyg_multisage.loader.ImportanceNeighborLoader`'s sampler, with
   the sampled softmax of OmniSage Eq. 1 (in-batch plus random negatives) or
   MultiSage's max-margin loss (Eq. 3);
4. embed every target and compute the metrics of MultiSage §3.1 on the
   held-out pairs against the pool of all targets.

The models are rows of one table, :data:`REGISTRY` (name → neighbor
source, builder); the models themselves live in
:mod:`pyg_multisage.nn.models`. The graph baselines (PinSage-style, GAT, HAN)
read the *same* walk neighbors as MultiSage but ignore their dominant
contexts, so the comparison isolates the contextual mechanism, as in the
paper ("our implementation ... based on PinSage"). Adding a model is one
row and one class (``docs/extending.rst``).
"""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor, nn
from torch_geometric.data import FeatureStore, GraphStore, HeteroData

from pyg_multisage import convention
from pyg_multisage.convention import EdgeType, ppr_edge_type
from pyg_multisage.datasets.retrieval import RETRIEVAL_TASKS, Task, retrieval_task
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
    FeatureSkip,
    GATEncoder,
    HANEncoder,
    MultiSage,
    OmniSage,
    PinSageEncoder,
    Retriever,
    SingleTypeEncoder,
    TextEncoder,
    embed,
)
from pyg_multisage.objectives import Objective, OmniSageObjective
from pyg_multisage.presets import PRESETS, preset_overrides
from pyg_multisage.references import pixie_visit_counts
from pyg_multisage.run_folder import (
    RunFolderError,
    check_output_dir,
    finish,
    partial_dir,
    write_json,
)
from pyg_multisage.train import BEST_NAME, TrainConfig, fit, load_checkpoint
from pyg_multisage.transforms import ContextualWalkNeighbors, PPRNeighbors

__all__ = [
    "MODELS",
    "DATASETS",
    "METRIC_COLUMNS",
    "REGISTRY",
    "ModelSpec",
    "NeighborSource",
    "NoNeighbors",
    "ContextualWalks",
    "PPR",
    "RunConfig",
    "PRESETS",
    "RunResult",
    "Task",
    "load_task",
    "add_neighbors",
    "model_edge_types",
    "build_model",
    "channels",
    "SeedBatcher",
    "embed_all",
    "cap_pairs",
    "evaluate",
    "make_step",
    "steps_per_epoch",
    "budget",
    "VAL_METRICS",
    "hard_negative_curriculum",
    "run",
    "load_run",
    "read_config",
    "check_output_dir",
    "partial_dir",
    "RunFolderError",
    "config_key",
    "aggregate",
    "format_table",
]

DATASETS = tuple(RETRIEVAL_TASKS)
METRIC_COLUMNS = (
    "MRR",
    "REC@1",
    "REC@10",
    "DC+",
    "DC*",
    "DE+",
    "DE*",
    "INT",
    "UNI",
    "JAC",
)


@dataclass
class RunConfig:
    """Settings of one run of the main job (the ``train`` command's flags).

    Args:
        dataset (str): ``synthetic``, ``dblp`` or ``ogbn-mag``.
        model (str): A row of :data:`REGISTRY`. ``multisage`` uses every context
            type of the dataset (MultiSage-3 on DBLP: venue + term),
            ``multisage-2`` only the first (venue); ``pinsage-2`` is
            PinSage-style over the same first-context walks (the ablation
            that gives PinSage-style MultiSage-2's information).
        root (str, optional): Dataset folder (processed files go there).
        raw_dir (str, optional): Folder of raw files read in place (DBLP).
        steps (int, optional): Optimizer steps (default: 400 when
            :obj:`epochs` is not given either).
        epochs (float, optional): The budget in epochs instead of steps: an
            epoch is one pass over the training pairs,
            ``ceil(num_train_pairs / batch_size)`` steps
            (:func:`steps_per_epoch`). Give :obj:`steps` or :obj:`epochs`,
            not both.
        patience (int, optional): Early stopping: stop after this many
            validations without a better validation MRR. Every run that
            validates keeps the best weights (by validation MRR) and is
            reported with them (:attr:`RunResult.best_epoch`).
        evals_per_epoch (int): Validations per epoch when :obj:`epochs` is
            given and :obj:`eval_every` is not.
        batch_size (int): pairs per step.
        num_negatives (int): random negatives per step, shared by the batch.
        loss (str): ``softmax`` (OmniSage Eq. 1) or ``margin`` (MultiSage
            Eq. 3).
        temperature (float): :math:`\\lambda` of the sampled softmax.
        num_walks, walk_length, restart_prob, num_neighbors: contextual walk
            (MultiSage Alg. 2) settings shared by every graph model.
        ppr_eps, ppr_alpha, ppr_top_k: OmniSage's PPR neighbors.
        eval_every (int, optional): validate every so many steps.
        checkpoint_every (int, optional): save a checkpoint every so many
            steps (default: :obj:`eval_every`, else every 50 steps), so an
            interrupted run loses little (:func:`run` with ``resume=True``).
        max_eval_pairs (int): score a seeded subset of at most this many
            evaluation pairs (``0``: all).
        max_val_pairs (int): validate on a seeded subset of at most this many
            validation pairs (``0``: all).
        target_relu (bool), act (str), combine (str), share_weights (bool),
        attention (str):
            MultiSage's layer options (:class:`~pyg_multisage.nn.MultiSageConv`).
            The defaults (no ReLU on the last target layer, the zero-centred
            ``tanh`` for Eq. 7's sigmoid, Eq. 5's additive ``trans``
            combination, neighbors embedded with their own last layer
            instead of the egos' ``W_t``) were chosen on DBLP's *validation*
            pairs: the literal equations keep every output non-negative with
            a common offset and the cosines in a narrow band, the venue mask
            of ``mask`` gates the paper's own embedding by one of 20 venues,
            and with shared weights the neighbors weigh as much as the paper
            itself (the validation numbers are in ``docs/comparison.rst``).
        feature_skip (bool): Add a learned linear skip path from the raw
            target features to every model's output before the final
            normalization (:class:`~pyg_multisage.nn.models.FeatureSkip`),
            the same for every model.
        hard_negatives (int): PinSage's hard-negative curriculum: at most so
            many hard negatives per query (``0``: off), one more every
            ``hard_negative_epochs`` epochs, none in the first
            (:class:`~pyg_multisage.losses.HardNegativeCurriculum`; an epoch
            is ``ceil(train pairs / batch_size)`` steps). They are drawn
            uniformly from ranks ``hard_negative_band = (lo, hi)`` of the
            query's Pixie visit-count ranking
            (:func:`~pyg_multisage.references.pixie_visit_counts`,
            ``hard_negative_walks`` walks per context type, the walk
            settings of the Pixie reference otherwise).
        lambda_pair, lambda_feat, lambda_seq (float): OmniSage Eq. 6's
            weights (lambda_p, lambda_f, lambda_s) of the
            entity–entity, entity–feature and user–entity tasks (rows with
            an :mod:`~pyg_multisage.objectives` objective; default ``1``
            each, the paper gives no values). ``lambda_seq`` only matters
            for datasets with user sequences.
        log_q (bool): the count-min-sketch logQ correction of Eq. 1
            (``sketch_width`` columns, depth 4).
        chunk_size (int, optional): queries per chunk of the chunked
            softmax (Alg. 1); :obj:`None`: unchunked.
        feature_hidden_channels, feature_layers (int): the feature encoders
            g_x (A.3.2: 4 layers of 1,024; narrower here for CPU).
        proj_layers (int): layers of the OmniSage rows' token projections
            (§3.2: the features "are then passed through an MLP";
            :class:`~pyg_multisage.nn.OmniSageConv`'s ``proj_layers``). Two
            (one hidden ReLU layer) chosen on DBLP's validation pairs: 1.31×
            the linear projection's MRR after 2 epochs without neighbors
            (``docs/omnisage.rst``).
        update_gate (bool): the OmniSage rows' zero-initialized gate on the
            CLS token's attention update (:class:`~pyg_multisage.nn.OmniSageConv`'s
            ``update_gate``; not in the paper), chosen on DBLP's validation
            pairs (``docs/omnisage.rst``). Rows without neighbor slots
            (``omnisage-nograph``) are built without it: there it would only
            damp the ego's own update.
        user_batch_size, user_max_length, user_layers (int): users per step,
            t_max and causal transformer layers of the
            user–entity task (A.3.2: 4 layers).

    Named settings (each paper's stated hyper-parameters, ``docs/paper_settings.rst``)
    come from :meth:`from_preset`.
    """

    dataset: str = "synthetic"
    model: str = "multisage"
    root: str | None = None
    raw_dir: str | None = None
    output_dir: str | None = None
    seed: int = 0
    steps: int | None = None
    epochs: float | None = None
    patience: int | None = None
    evals_per_epoch: int = 1
    batch_size: int = 128
    num_negatives: int = 256
    lr: float = 3e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 20
    loss: str = "softmax"
    temperature: float = 20.0
    learn_temperature: bool = True
    margin: float = 0.1
    hidden_channels: int = 128
    out_channels: int = 128
    heads: int = 4
    target_relu: bool = False
    combine: str = "trans"
    share_weights: bool = False
    act: str = "tanh"
    feature_skip: bool = False
    hard_negatives: int = 0
    hard_negative_band: tuple[int, int] = (100, 500)
    hard_negative_epochs: float = 1.0
    hard_negative_walks: int = 200
    attention: str | None = "three_way"
    num_walks: int = 100
    walk_length: int = 3
    restart_prob: float = 0.5
    num_neighbors: int = 10
    ppr_alpha: float = 0.15
    ppr_eps: float = 1e-4
    ppr_top_k: int = 20
    eval_every: int | None = None
    checkpoint_every: int | None = None
    eval_split: str = "test"
    max_eval_pairs: int = 0
    max_val_pairs: int = 0
    progress: bool = True
    synthetic: dict[str, Any] = field(default_factory=dict)
    # --- OmniSage's multi-task objective (Eq. 6), rows with an objective ---
    lambda_pair: float = 1.0
    lambda_feat: float = 1.0
    lambda_seq: float = 1.0
    log_q: bool = True
    chunk_size: int | None = 64
    sketch_width: int = 2**16
    feature_hidden_channels: int = 256
    feature_layers: int = 4
    proj_layers: int = 2
    update_gate: bool = True
    user_batch_size: int = 32
    user_max_length: int = 8
    user_layers: int = 2

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> RunConfig:
        """A config with the settings of preset :obj:`name`
        (:data:`pyg_multisage.presets.PRESETS`) for the model
        ``overrides["model"]`` (default ``multisage``), then
        :obj:`overrides` on top (explicit settings win).

        ``RunConfig.from_preset("paper", model="omnisage", steps=2000)``
        trains OmniSage with OmniSage A.3's settings, as far as this machine
        allows (``docs/paper_settings.rst``).

        Raises:
            ValueError: unknown preset, or an invalid resulting setting.
        """
        model = overrides.get("model", cls.model)
        values = preset_overrides(name, model)
        values.update(overrides)
        return cls(**values)

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {DATASETS}, got {self.dataset!r}")
        if self.model not in REGISTRY:
            raise ValueError(
                f"model must be one of {tuple(REGISTRY)}, got {self.model!r}"
            )
        if self.loss not in ("softmax", "margin"):
            raise ValueError(f"loss must be 'softmax' or 'margin', got {self.loss!r}")
        if self.eval_split not in ("val", "test"):
            raise ValueError(
                f"eval_split must be 'val' or 'test', got {self.eval_split!r}"
            )
        if self.steps is not None and self.epochs is not None:
            raise ValueError(
                f"give steps or epochs, not both (got steps={self.steps}, "
                f"epochs={self.epochs})"
            )
        if self.epochs is not None and not self.epochs > 0:
            raise ValueError(f"epochs must be > 0, got {self.epochs}")
        if self.steps is None and self.epochs is None:
            self.steps = 400
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be >= 1 or None, got {self.patience}")
        if self.patience is not None and self.epochs is None and not self.eval_every:
            raise ValueError("patience needs validations: set epochs or eval_every")
        names = ("batch_size", "num_neighbors", "num_walks", "evals_per_epoch")
        if self.steps is not None:
            names = ("steps", *names)
        for name in names:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.num_negatives < 0:
            raise ValueError(
                f"num_negatives must be >= 0 (0: in-batch negatives only), "
                f"got {self.num_negatives}"
            )
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        for name in ("eval_every", "checkpoint_every"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1 or None, got {value}")
        for name in ("max_eval_pairs", "max_val_pairs"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.hard_negatives < 0:
            raise ValueError(f"hard_negatives must be >= 0, got {self.hard_negatives}")
        band = self.hard_negative_band
        if (
            not isinstance(band, (tuple, list))
            or len(band) != 2
            or not all(isinstance(b, int) and not isinstance(b, bool) for b in band)
            or not 0 <= band[0] < band[1]
        ):
            raise ValueError(
                f"hard_negative_band must be two integers 0 <= lo < hi, got {band!r}"
            )
        self.hard_negative_band = (int(band[0]), int(band[1]))
        if not self.hard_negative_epochs > 0:
            raise ValueError(
                f"hard_negative_epochs must be > 0, got {self.hard_negative_epochs}"
            )
        if self.hard_negative_walks < 1:
            raise ValueError(
                f"hard_negative_walks must be >= 1, got {self.hard_negative_walks}"
            )
        for name in ("lambda_pair", "lambda_feat", "lambda_seq"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.chunk_size is not None and self.chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1 or None, got {self.chunk_size}")
        for name in (
            "sketch_width",
            "feature_layers",
            "proj_layers",
            "user_batch_size",
            "user_layers",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.user_max_length < 1:
            raise ValueError(
                f"user_max_length must be >= 1, got {self.user_max_length}"
            )


# ---------------------------------------------------------------------------
# Neighbor sources: which importance neighbors a model reads
# ---------------------------------------------------------------------------
class NeighborSource(Protocol):
    """Where a model's importance neighbors come from: the edge types it
    reads (named by :mod:`pyg_multisage.convention`) and how to tabulate
    them into the task's graph."""

    def edge_types(self, task: Task) -> list[EdgeType]:
        """The importance-neighbor edge types the model reads."""
        ...

    def add(self, task: Task, config: RunConfig) -> HeteroData:
        """The task's graph with those edge types written into it."""
        ...


@dataclass(frozen=True)
class NoNeighbors:
    """No neighbors: the model reads only a node's own features."""

    def edge_types(self, task: Task) -> list[EdgeType]:
        return []

    def add(self, task: Task, config: RunConfig) -> HeteroData:
        return task.data


@dataclass(frozen=True)
class ContextualWalks:
    """MultiSage's contextualized random walks (Alg. 2,
    :class:`~pyg_multisage.transforms.ContextualWalkNeighbors`) through the
    task's context types, one ``walk_via_<c>`` edge type each: all of them,
    or the first :obj:`num_contexts` (MultiSage-2). Every context type gets
    its own walks, so a subset gives the same tables as the full set."""

    num_contexts: int | None = None

    def contexts(self, task: Task) -> list[str]:
        if self.num_contexts is None:
            return list(task.contexts)
        return list(task.contexts[: self.num_contexts])

    def edge_types(self, task: Task) -> list[EdgeType]:
        return convention.walk_edge_types(task.target, self.contexts(task))

    def add(self, task: Task, config: RunConfig) -> HeteroData:
        transform = ContextualWalkNeighbors(
            task.target,
            self.contexts(task),
            num_walks=config.num_walks,
            walk_length=config.walk_length,
            restart_prob=config.restart_prob,
            num_neighbors=config.num_neighbors,
            seed=config.seed,
            progress=config.progress,
        )
        return transform(task.data)


@dataclass(frozen=True)
class PPR:
    """OmniSage's PPR neighbors (§3.1.1,
    :class:`~pyg_multisage.transforms.PPRNeighbors`): forward push over every
    relation between the target and a context type, the top
    ``ppr_top_k`` targets and ``ppr_top_k // 4`` (at least one) nodes of
    each context type per target, as ``ppr_<name>`` edge types."""

    name: str = "ctx"

    def top_k(self, task: Task, config: RunConfig) -> dict[str, int]:
        """Neighbors kept per node type."""
        top_k = {task.target: config.ppr_top_k}
        top_k.update({c: max(1, config.ppr_top_k // 4) for c in task.contexts})
        return top_k

    def edge_types(self, task: Task) -> list[EdgeType]:
        return [
            ppr_edge_type(t, self.name, task.target)
            for t in [task.target, *task.contexts]
        ]

    def add(self, task: Task, config: RunConfig) -> HeteroData:
        data = task.data
        rels = [
            et
            for et in data.edge_types
            if task.target in (et[0], et[2]) and {et[0], et[2]} & set(task.contexts)
        ]
        transform = PPRNeighbors(
            task.target,
            {self.name: rels},
            {self.name: self.top_k(task, config)},
            alpha=config.ppr_alpha,
            eps=config.ppr_eps,
            progress=config.progress,
        )
        return transform(data)


# ---------------------------------------------------------------------------
# The model registry: one row per model
# ---------------------------------------------------------------------------
#: ``builder(task, config, edge_types) -> encoder``: an encoder maps a loader
#: batch to ``[batch_size, d]`` L2-normalized embeddings of its seeds;
#: :obj:`edge_types` are those of the row's neighbor source.
Builder = Callable[[Task, "RunConfig", list[EdgeType]], nn.Module]


@dataclass(frozen=True)
class ModelSpec:
    """One row of :data:`REGISTRY`.

    Args:
        neighbors (NeighborSource): Which importance neighbors the model
            reads (:class:`NoNeighbors`, :class:`ContextualWalks`,
            :class:`PPR` or your own).
        build (Builder): ``(task, config, edge_types) -> encoder``.
        description (str): One line for tables and help texts.
        objective (Objective, optional): The row's own training objective
            (:class:`~pyg_multisage.objectives.Objective`: its trainable
            heads and step function); :obj:`None`: the pair loss of
            :obj:`config.loss`.
    """

    neighbors: NeighborSource
    build: Builder
    description: str
    objective: Objective | None = None


def channels(task: Task, config: RunConfig) -> tuple[int, int, int]:
    """``(in_channels, hidden_channels, out_channels)`` of the target."""
    in_channels = task.data[task.target].x.size(-1)
    return in_channels, config.hidden_channels, config.out_channels


def _multisage(task: Task, config: RunConfig, edge_types: list[EdgeType]):
    contexts = [convention.context_type_from_name(et) for et in edge_types]
    return MultiSage(
        channels(task, config)[0],
        {c: task.data[c].x.size(-1) for c in contexts},
        out_channels=config.out_channels,
        hidden_channels=(config.hidden_channels,),
        target=task.target,
        edge_types=dict(zip(contexts, edge_types, strict=True)),
        heads=config.heads,
        target_relu=config.target_relu,
        combine=config.combine,
        share_weights=config.share_weights,
        attention=config.attention,
        act=config.act,
    )


def _omnisage(task: Task, config: RunConfig, edge_types: list[EdgeType]):
    top_k = PPR().top_k(task, config)
    t, hid = task.target, config.hidden_channels
    model = OmniSage(
        {nt: task.data[nt].x.size(-1) for nt in [t, *task.contexts]},
        config.out_channels,
        {t: {et: top_k[et[0]] for et in edge_types}},
        hidden_channels=hid,
        heads=config.heads,
        num_layers=1,
        mlp_channels=2 * hid,
        proj_layers=config.proj_layers,
        # Without neighbor slots the gate would only damp the ego's own
        # update: the no-graph row is built without it (RunConfig.update_gate).
        update_gate=config.update_gate and bool(edge_types),
    )
    return SingleTypeEncoder(model, t)


#: The models of the main job (MultiSage Table 2 and OmniSage), one row each:
#: name → (neighbor source, builder, description).
REGISTRY: dict[str, ModelSpec] = {
    "text": ModelSpec(
        NoNeighbors(),
        lambda task, cfg, ets: TextEncoder(*channels(task, cfg), task.target),
        "MLP on the target's own features",
    ),
    "pinsage": ModelSpec(
        ContextualWalks(),
        lambda task, cfg, ets: PinSageEncoder(*channels(task, cfg), task.target, ets),
        "PinSage-style importance pooling over walk neighbors",
    ),
    "pinsage-2": ModelSpec(
        ContextualWalks(num_contexts=1),
        lambda task, cfg, ets: PinSageEncoder(*channels(task, cfg), task.target, ets),
        "PinSage-style over the first context type's walks (multisage-2's)",
    ),
    "gat": ModelSpec(
        ContextualWalks(),
        lambda task, cfg, ets: GATEncoder(
            *channels(task, cfg), task.target, ets, heads=cfg.heads
        ),
        "graph attention over walk neighbors",
    ),
    "han": ModelSpec(
        ContextualWalks(),
        lambda task, cfg, ets: HANEncoder(
            *channels(task, cfg), task.target, ets, heads=cfg.heads
        ),
        "HAN: one metapath per context type",
    ),
    "multisage": ModelSpec(
        ContextualWalks(), _multisage, "MultiSage, every context type"
    ),
    "multisage-2": ModelSpec(
        ContextualWalks(num_contexts=1), _multisage, "MultiSage, first context type"
    ),
    "omnisage": ModelSpec(
        PPR(),
        _omnisage,
        "OmniSage over PPR neighbors, multi-task objective (Eq. 6)",
        OmniSageObjective(),
    ),
    "omnisage-nograph": ModelSpec(
        NoNeighbors(),
        _omnisage,
        "OmniSage without neighbors (Table 3), same objective",
        OmniSageObjective(),
    ),
}

#: The registry's model names, in table order.
MODELS = tuple(REGISTRY)


def load_task(config: RunConfig) -> Task:
    """Loads :obj:`config.dataset` as a :class:`Task`
    (:func:`pyg_multisage.datasets.retrieval.retrieval_task`)."""
    return retrieval_task(
        config.dataset,
        root=config.root,
        raw_dir=config.raw_dir,
        synthetic=config.synthetic,
    )


def add_neighbors(task: Task, config: RunConfig) -> HeteroData:
    """Writes the importance-neighbor edges :obj:`config.model` reads into
    the graph (its row's neighbor source)."""
    return REGISTRY[config.model].neighbors.add(task, config)


def model_edge_types(task: Task, config: RunConfig) -> list[EdgeType]:
    """The importance-neighbor edge types :obj:`config.model` reads."""
    return REGISTRY[config.model].neighbors.edge_types(task)


def build_model(task: Task, config: RunConfig) -> Retriever:
    """The encoder of :obj:`config.model` (``batch -> [batch_size, d]``, L2
    normalized), seeded with :obj:`config.seed`, in a :class:`Retriever`
    (with a :class:`~pyg_multisage.nn.models.FeatureSkip` from the raw
    target features when :obj:`config.feature_skip`)."""
    spec = REGISTRY[config.model]
    torch.manual_seed(config.seed)
    edge_types = spec.neighbors.edge_types(task)
    encoder = spec.build(task, config, edge_types)
    skip = None
    if config.feature_skip:
        in_channels, _, out_channels = channels(task, config)
        skip = FeatureSkip(in_channels, out_channels, task.target)
    model = Retriever(
        encoder, config.temperature, learn=config.learn_temperature, feature_skip=skip
    )
    if spec.objective is not None:
        heads = spec.objective.heads(task, config, edge_types)
        if heads is not None:
            # Trained with the encoder and saved in the same checkpoint.
            model.heads = heads
    return model


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


#: Settings added after runs were saved with the behaviour of another value:
#: a saved config without the field gets the value its run was trained with
#: (the default :obj:`RunConfig` now has may differ).
SAVED_BEFORE: dict[str, Any] = {
    "proj_layers": 1,
    "update_gate": False,
    "share_weights": True,
}


def read_config(path: str | os.PathLike) -> RunConfig:
    """The :class:`RunConfig` saved as JSON at :obj:`path` (a run folder's
    ``config.json``); fields that configs saved before them lack take
    :data:`SAVED_BEFORE`'s values, so an older run rebuilds as it trained.

    Raises:
        ValueError: the file is not a run configuration.
    """
    path = Path(path)
    try:
        values = json.loads(path.read_text())
        return RunConfig(**{**SAVED_BEFORE, **values})
    except (TypeError, ValueError) as err:  # JSONDecodeError is a ValueError
        raise ValueError(f"{path}: not a run configuration ({err})") from None


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


def config_key(config: RunConfig) -> dict[str, Any]:
    """The settings that decide a run's result, as plain JSON values (tuples
    become lists): :obj:`config` without ``progress``, ``raw_dir`` and
    ``output_dir``. A cached result is reusable when its saved key equals
    this one."""
    skip = ("progress", "raw_dir", "output_dir")
    key = {k: v for k, v in asdict(config).items() if k not in skip}
    return json.loads(json.dumps(key))


def aggregate(runs: Sequence[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Mean and sample standard deviation (``0`` for one run) of each metric
    over runs, e.g. seeds: ``{metric: {"mean": ..., "std": ...}}``, the
    cells :func:`format_table` prints."""
    out = {}
    for key in runs[0]:
        values = [r[key] for r in runs]
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        out[key] = {"mean": statistics.fmean(values), "std": std}
    return out


def format_table(
    rows: dict[str, dict[str, Any]], columns: Sequence[str] = METRIC_COLUMNS
) -> str:
    """A plain-text table of MultiSage Table 2's columns, one row per model.
    A cell is a float or a ``{"mean": ..., "std": ...}`` dict."""

    def cell(v: Any, col: str) -> str:
        fmt = "{:.2f}" if col in ("INT", "UNI") else "{:.4f}"
        if isinstance(v, dict):
            return f"{fmt.format(v['mean'])}±{fmt.format(v['std'])}"
        return fmt.format(v)

    head = ["model", *columns]
    body = [[name, *(cell(r[c], c) for c in columns)] for name, r in rows.items()]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body, strict=True)]
    line = lambda xs: "  ".join(
        str(x).rjust(w) for x, w in zip(xs, widths, strict=True)
    )
    return "\n".join([line(head), line(["-" * w for w in widths]), *map(line, body)])
