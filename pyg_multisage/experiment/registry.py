"""The model registry of the main job: one row per model (:class:`ModelSpec`),
naming its neighbor source (which importance neighbors it reads, tabulated
once per run) and its builder. The models themselves live in
:mod:`pyg_multisage.nn.models`; adding a model is one row here and one class
there (``docs/extending.rst``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import torch
from torch import nn
from torch_geometric.data import HeteroData

from pyg_multisage import convention
from pyg_multisage.convention import EdgeType, ppr_edge_type
from pyg_multisage.datasets.retrieval import Task
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
)
from pyg_multisage.objectives import Objective, OmniSageObjective
from pyg_multisage.transforms import ContextualWalkNeighbors, PPRNeighbors

if TYPE_CHECKING:
    from pyg_multisage.experiment.config import RunConfig


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
