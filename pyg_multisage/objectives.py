r"""Training objectives a row of the main job's registry can bring along.

The main job (:mod:`pyg_multisage.experiment`) trains most models on one
loss over query–positive pairs. A registry row may instead name an
:class:`Objective`: it builds the trainable heads that the objective needs
beside the encoder (kept in the model, so they are optimized and saved in
its checkpoint) and the ``(data(step), step_fn)`` pair that
:func:`pyg_multisage.train.fit` runs. Each step's batch stays a pure
function of ``(seed, step)``, so an interrupted run resumes to the same
result.

:class:`OmniSageObjective` is OmniSage's weighted multi-task objective
(Eq. 6):

.. math::
    L_\Theta = \lambda_p L_{\text{pair}} + \lambda_f L_{\text{feat}}
    + \lambda_s \big[ L_{\text{next}} + L_{\text{fut}} \big]

* :math:`L_{\text{pair}}` (Eq. 1–2): the training pairs, in-batch plus
  random negatives, the count-min-sketch logQ correction (§3.3) and the
  chunked softmax (§3.4.2, Algorithm 1) when ``config.chunk_size`` is set.
* :math:`L_{\text{feat}}` (Eq. 3, :class:`~pyg_multisage.tasks.EntityFeatureTask`):
  every *feature type* is a node type whose features the embedder reads:
  the target's own features (DBLP: the paper's title) and the features of
  every neighbor node type of the model's importance edges (DBLP: terms and
  venues, and the titles of neighbor papers, which share the target's
  encoder). The rows of a query are its own features and those of its
  sampled neighbors (§3.3.2: "the input features of :math:`u` and the
  sampled set of nodes :math:`v \in N(u)`"); without neighbors only its own.
* :math:`L_{\text{next}} + L_{\text{fut}}` (Eq. 4–5,
  :class:`~pyg_multisage.tasks.UserEntityTask`): only when the task has user
  sequences (:attr:`Task.user_sequences`, e.g. the synthetic graph with
  ``num_users > 0``); a dataset without them (DBLP) trains Eq. 6 without
  the :math:`\lambda_s` term.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import Tensor, nn
from torch_geometric.data import HeteroData

from pyg_multisage.convention import seed_edges
from pyg_multisage.losses import CountMinSketch, candidate_log_q, sampled_softmax_loss
from pyg_multisage.tasks import EntityFeatureTask, MultiTaskObjective, UserEntityTask

if TYPE_CHECKING:  # pragma: no cover
    from pyg_multisage.datasets.retrieval import Task

#: :class:`pyg_multisage.experiment.RunConfig` (this module sits below the
#: main job, so it names the type without importing it).
RunConfig = Any
#: :class:`pyg_multisage.experiment.SeedBatcher`: target ids -> loader batch.
SeedBatcher = Callable[[Tensor], HeteroData]

__all__ = ["Objective", "OmniSageHeads", "OmniSageObjective", "feature_types"]

StepFns = tuple[Callable[[int], Any], Callable[[Any], Tensor]]


class Objective(Protocol):
    """What a registry row's ``objective`` provides."""

    def heads(
        self, task: Task, config: RunConfig, edge_types: list
    ) -> nn.Module | None:
        """Trainable modules besides the encoder (or :obj:`None`);
        :obj:`edge_types` are those of the row's neighbor source."""
        ...

    def make_step(
        self,
        model: nn.Module,
        batcher: SeedBatcher,
        task: Task,
        config: RunConfig,
        edge_types: list,
    ) -> StepFns:
        """``(data(step), step_fn)`` for :func:`pyg_multisage.train.fit`;
        the heads are ``model.heads``."""
        ...


def feature_types(task: Task, edge_types: list) -> dict[str, int]:
    """Feature type → width for Eq. 3: the target's node type and every
    neighbor node type of :obj:`edge_types`, each with its ``x``."""
    types = [task.target] + [et[0] for et in edge_types]
    out: dict[str, int] = {}
    for t in types:
        if t not in out:
            out[t] = int(task.data[t].x.size(-1))
    return out


class OmniSageHeads(nn.Module):
    """The trainable parts of Eq. 6 besides the embedders: the feature
    encoders :math:`g_x` (in :class:`EntityFeatureTask`), the user-sequence
    transformer (:class:`UserEntityTask`, only with user sequences), the
    count-min sketch of the logQ correction (a buffer, saved with the
    checkpoint so a resumed run continues the same estimate) and the task
    weights (:class:`MultiTaskObjective`)."""

    def __init__(
        self, task: Task, config: RunConfig, edge_types: list, num_users: int
    ) -> None:
        super().__init__()
        self.feature = EntityFeatureTask(
            feature_types(task, edge_types),
            config.out_channels,
            hidden_channels=config.feature_hidden_channels,
            num_layers=config.feature_layers,
            chunk_size=config.chunk_size,
        )
        self.user = (
            UserEntityTask(
                config.out_channels,
                config.user_max_length,
                hidden_channels=config.hidden_channels,
                num_layers=config.user_layers,
                heads=config.heads,
                chunk_size=config.chunk_size,
            )
            if num_users > 0 and config.lambda_seq > 0
            else None
        )
        self.sketch = (
            CountMinSketch(config.sketch_width, 4, seed=config.seed)
            if config.log_q
            else None
        )
        self.weights = MultiTaskObjective(
            config.lambda_pair, config.lambda_feat, config.lambda_seq
        )


class OmniSageObjective:
    """OmniSage's Eq. 6 as a registry row's objective (see the module
    docstring for the tasks and the feature types)."""

    def heads(self, task: Task, config: RunConfig, edge_types: list) -> nn.Module:
        num_users = 0 if task.user_sequences is None else task.user_sequences.size(0)
        return OmniSageHeads(task, config, edge_types, num_users)

    def make_step(
        self,
        model: nn.Module,
        batcher: SeedBatcher,
        task: Task,
        config: RunConfig,
        edge_types: list,
    ) -> StepFns:
        heads: OmniSageHeads = model.heads
        pairs = task.pairs["train"]
        num_nodes = task.data[task.target].num_nodes
        b, k = config.batch_size, config.num_negatives
        seqs = task.user_sequences if heads.user is not None else None
        t_max = 0
        if seqs is not None:
            shortest = int((seqs >= 0).sum(1).min())
            if shortest < 2:
                raise ValueError(
                    "user_sequences: every user needs at least 2 actions (a "
                    f"history and a future), the shortest has {shortest}"
                )
            t_max = min(config.user_max_length, shortest - 1)
        ub = config.user_batch_size

        def data(step: int) -> tuple[HeteroData, dict[str, Tensor]]:
            gen = torch.Generator().manual_seed(config.seed * 1_000_003 + step)
            idx = torch.randint(0, pairs.size(1), (b,), generator=gen)
            neg = torch.randint(0, num_nodes, (k,), generator=gen)
            parts = {"q": pairs[0, idx], "p": pairs[1, idx], "n": neg}
            if seqs is not None:
                users = torch.randint(0, seqs.size(0), (ub,), generator=gen)
                seq = seqs[users]
                length = (seq >= 0).sum(1)
                # Eq. 5: the future action t' drawn uniformly from the
                # positions after the first t_max (every user has one).
                off = (torch.rand(ub, generator=gen) * (length - t_max)).long()
                parts["seq"] = seq[:, :t_max]
                parts["future"] = seq.gather(1, (t_max + off).unsqueeze(1)).squeeze(1)
            flat = [parts["q"], parts["p"], parts["n"]]
            if seqs is not None:
                flat += [parts["seq"].clamp_min(0).flatten(), parts["future"]]
            return batcher(torch.cat(flat)), parts

        def step_fn(item: tuple[HeteroData, dict[str, Tensor]]) -> Tensor:
            batch, parts = item
            z = model(batch)
            q, p, n = z[:b], z[b : 2 * b], z[2 * b : 2 * b + k]
            log_q = None
            if heads.sketch is not None:
                log_q = candidate_log_q(
                    heads.sketch, parts["p"], parts["n"], update=model.training
                )
            # Eq. 1-2 with lambda * q^T v: the learned scale on the queries.
            pair = sampled_softmax_loss(
                q * model.scale,
                p,
                n if k else None,
                log_q=log_q,
                chunk_size=config.chunk_size,
                positive_ids=parts["p"],
                negative_ids=parts["n"] if k else None,
            )
            feats, owner, index = _feature_rows(batch, task.target, edge_types, b)
            feat, _ = heads.feature(
                feats,
                q,
                n if k else None,
                owner=owner,
                index=index,
                node_ids=parts["q"],
                negative_ids=parts["n"] if k else None,
            )
            nxt = None
            if seqs is not None:
                off = 2 * b + k
                s = z[off : off + ub * t_max].view(ub, t_max, -1)
                f = z[off + ub * t_max :]
                # L_next + L_fut together: Eq. 6 weighs their sum by lambda_s.
                nxt, _ = heads.user(
                    s,
                    parts["seq"] >= 0,
                    seq_ids=parts["seq"],
                    future=f,
                    future_ids=parts["future"],
                )
            total, _ = heads.weights(pair=pair, feat=feat, next=nxt)
            return total

        return data, step_fn


def _feature_rows(
    batch: HeteroData, target: str, edge_types: list, num_egos: int
) -> tuple[dict[str, Tensor], dict[str, Tensor], dict[str, Tensor]]:
    """Eq. 3's feature rows of the first :obj:`num_egos` seeds: each seed's
    own features and those of its sampled neighbors, as ``(features, owner,
    index)`` for :class:`~pyg_multisage.tasks.EntityFeatureTask`: per node
    type the batch's feature matrix, the seed (row of the query block) each
    row belongs to and the node each row reads (so a node read by many rows
    is encoded once)."""
    owner = {target: [torch.arange(num_egos)]}
    index = {target: [torch.arange(num_egos)]}
    for et, adj, _, _ in seed_edges(batch, edge_types, num_egos):
        if not isinstance(adj, Tensor) or adj.layout != torch.strided:
            raise TypeError(f"{et}: the feature task needs an edge_index adjacency")
        index.setdefault(et[0], []).append(adj[0])
        owner.setdefault(et[0], []).append(adj[1])
    return (
        {t: batch[t].x for t in index},
        {t: torch.cat(v) for t, v in owner.items()},
        {t: torch.cat(v) for t, v in index.items()},
    )
