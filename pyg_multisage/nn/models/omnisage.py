"""The OmniSage model (OmniSage, KDD 2025, §3.2, §3.3.2, A.3)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor
from torch_geometric.data import HeteroData
from torch_geometric.typing import EdgeType

from pyg_multisage._checks import batch_features
from pyg_multisage.convention import seed_edges
from pyg_multisage.nn.conv.omnisage_conv import OmniSageConv
from pyg_multisage.nn.models.embedding import embed, loader_num_nodes


class OmniSage(torch.nn.Module):
    r"""The OmniSage model of the `"OmniSage: Large Scale, Multi-Entity
    Heterogeneous Graph Representation Learning"
    <https://doi.org/10.1145/3711896.3737253>`_ paper.

    An independent embedder :math:`f_t` (:class:`OmniSageConv`) per entity
    type :math:`t` (§3.2). The model holds only the embedders :math:`f_t`;
    the feature encoders :math:`g_x` of the entity-feature task (§3.3.2,
    Eq. 3) belong to that task
    (:class:`~pyg_multisage.tasks.EntityFeatureTask`), as the user-sequence
    transformer belongs to :class:`~pyg_multisage.tasks.UserEntityTask`:
    they are training heads, not part of the embedding served at inference.

    Loader batches: the seeds of type :math:`t` are the first
    ``batch[t].batch_size`` rows of ``batch[t].x``; each neighbor edge type
    of :obj:`num_slots[t]` holds ``edge_index`` (neighbor → ego, local) and
    ``edge_weight`` (importance score, e.g. the PPR estimate) — or, after
    PyG's :class:`~torch_geometric.transforms.ToSparseTensor`, a
    :class:`torch_sparse.SparseTensor` ``adj_t`` with the scores as values. A
    batch lacking one of these edge types (an empty one is fine), or whose
    features hold NaN or infinite values, raises a :class:`ValueError`.

    Args:
        in_channels (dict[str, int]): Node type → feature size.
        out_channels (int): Embedding size :math:`d`.
        num_slots (dict[str, dict[tuple, int]]): Entity type → (neighbor edge
            type → number of slots); one embedder per entity type.
        **kwargs (optional): Arguments of :class:`OmniSageConv`
            (:obj:`hidden_channels`, :obj:`heads`, :obj:`num_layers`,
            :obj:`mlp_channels`, :obj:`dropout`).
    """

    def __init__(
        self,
        in_channels: Mapping[str, int],
        out_channels: int,
        num_slots: Mapping[str, Mapping[EdgeType, int]],
        **kwargs,
    ):
        super().__init__()
        if not num_slots:
            raise ValueError("'num_slots' needs at least one entity type")
        self.out_channels = out_channels
        self.entity_types = list(num_slots)
        self.embedders = torch.nn.ModuleDict(
            {
                t: OmniSageConv(in_channels, out_channels, t, slots, **kwargs)
                for t, slots in num_slots.items()
            }
        )

    def reset_parameters(self):
        for module in self.embedders.values():
            module.reset_parameters()

    def _entity_type(self, batch: HeteroData, node_type: str | None) -> str:
        if node_type is not None:
            if node_type not in self.embedders:
                raise KeyError(
                    f"no embedder for {node_type!r} (have {self.entity_types})"
                )
            return node_type
        seeded = [
            t
            for t in self.entity_types
            if t in batch.node_types and "batch_size" in batch[t]
        ]
        if len(seeded) != 1:
            raise ValueError(
                "pass 'node_type': the batch has seeds of "
                f"{seeded or 'no'} embedded entity type"
            )
        return seeded[0]

    def forward(self, batch: HeteroData, node_type: str | None = None) -> Tensor:
        r""":math:`f_t` of the batch's seeds, ``[batch_size, out_channels]``.
        Only edges into the seeds are used (a single aggregation step)."""
        t = self._entity_type(batch, node_type)
        conv: OmniSageConv = self.embedders[t]
        x_ego = batch_features(batch, t, "OmniSage")
        batch_size = int(getattr(batch[t], "batch_size", x_ego.size(0)))
        missing = [et for et in conv.num_slots if et not in batch.edge_types]
        if missing:
            raise ValueError(
                f"OmniSage: the batch lacks the neighbor edge types {missing} "
                f"of num_slots[{t!r}] (edge types: {batch.edge_types})"
            )
        edge_index_dict, edge_weight_dict = {}, {}
        for et, adj, weight, _ in seed_edges(batch, conv.num_slots, batch_size):
            edge_index_dict[et] = adj
            if weight is not None:
                edge_weight_dict[et] = weight
        used = {t} | {et[0] for et in conv.num_slots}
        x_dict = {
            k: batch_features(batch, k, "OmniSage")
            for k in batch.node_types
            if k in used and "x" in batch[k]
        }
        return conv(x_dict, edge_index_dict, edge_weight_dict, num_egos=batch_size)

    @torch.no_grad()
    def embed(
        self,
        loader,
        node_type: str | None = None,
        device: torch.device | None = None,
        progress: bool = True,
    ) -> Tensor:
        """Embed every seed of :obj:`loader` with a progress bar; returns
        ``[num_nodes, out_channels]`` indexed by ``batch[t].n_id``
        (:func:`~pyg_multisage.nn.models.embed`). Without
        :obj:`node_type`, each batch's one seeded entity type is embedded."""

        seen: list[str] = [node_type] if node_type is not None else []

        def type_of(batch: HeteroData) -> str:
            t = self._entity_type(batch, node_type)
            seen.append(t)
            return t

        emb = embed(
            self,
            loader,
            type_of,
            forward=lambda batch: self(batch, type_of(batch)),
            out_channels=self.out_channels,
            device=device,
            progress=progress,
            desc="OmniSage.embed",
        )
        # Rows for every node of the loader's graph (of the last seeded type).
        num_nodes = loader_num_nodes(loader, seen[-1] if seen else None)
        if num_nodes is not None and num_nodes > emb.size(0):
            emb = torch.cat([emb, emb.new_zeros(num_nodes - emb.size(0), emb.size(1))])
        return emb

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(entities={self.entity_types}, "
            f"out_channels={self.out_channels})"
        )
