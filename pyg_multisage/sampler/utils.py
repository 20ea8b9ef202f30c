"""Shared pieces of the samplers: ego-grouped neighbor indices, gathering and
the re-indexing of sampled nodes into batch-local positions."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor
from torch_geometric.sampler import HeteroSamplerOutput, SamplerOutput

from pyg_multisage.convention import EdgeType
from pyg_multisage.sampling.gather import row_positions
from pyg_multisage.sampling.relabel import relabel
from pyg_multisage.storage.stores import ego_order_ptr


@dataclass
class EgoIndex:
    """Importance neighbors of one edge type grouped by ego (CSC form).

    Entries ``ptr[v]:ptr[v + 1]`` belong to ego ``v`` in importance order
    (weight descending, ties in stored order).

    Attributes:
        ptr (Tensor): ``int64 [num_egos + 1]``.
        neighbor (Tensor): ``int64 [E]`` neighbor ids.
        weight (Tensor, optional): ``float32 [E]``.
        context (Tensor, optional): ``int64 [E]`` context node ids, ``-1`` none.
        edge_id (Tensor, optional): ``int64 [E]`` id of each entry among the
            stored edges, :obj:`None` when entries are not stored edges
            (on-the-fly tables) or are already in stored order (identity).
        stored (bool): whether the entries are real stored edges.
        mapped (bool): whether the tensors view read-only memory maps
            (:meth:`from_maps`).
    """

    ptr: Tensor
    neighbor: Tensor
    weight: Tensor | None = None
    context: Tensor | None = None
    edge_id: Tensor | None = None
    stored: bool = True
    mapped: bool = False

    @classmethod
    def from_edges(
        cls,
        edge_index: Tensor,
        num_egos: int,
        weight: Tensor | None = None,
        context: Tensor | None = None,
    ) -> EgoIndex:
        """Groups stored neighbor → ego edges by ego, weight descending; the
        sort is stable so ties keep their stored order (and edges already
        written in importance order, as the transforms write them, keep it)."""
        nbr, ego = edge_index[0].long(), edge_index[1].long()
        num_edges = ego.numel()
        if weight is not None:
            weight = weight.detach().to(torch.float32).view(-1)
        perm = None
        w = None if weight is None else weight.numpy()
        ptr = ego_order_ptr(ego.numpy(), w, num_egos)
        if ptr is None:  # not yet grouped by ego in importance order
            perm = torch.arange(num_edges)
            if weight is not None:
                perm = torch.sort(weight, descending=True, stable=True)[1]
            perm = perm[torch.sort(ego[perm], stable=True)[1]]
            nbr, ego = nbr[perm], ego[perm]
            weight = None if weight is None else weight[perm]
            context = None if context is None else context[perm]
            ptr = ego_order_ptr(ego.numpy(), None, num_egos)
        return cls(
            ptr=torch.from_numpy(ptr),
            neighbor=nbr.contiguous(),
            weight=weight,
            context=None if context is None else context.long().contiguous(),
            edge_id=perm,
        )

    @classmethod
    def from_maps(
        cls,
        ptr: np.ndarray,
        neighbor: np.ndarray,
        weight: np.ndarray | None = None,
        context: np.ndarray | None = None,
    ) -> EgoIndex:
        """An index over read-only memory maps of a table saved grouped by
        ego in importance order (:meth:`MmapGraphStore.ego_table
        <pyg_multisage.storage.MmapGraphStore.ego_table>`): the tensors view
        the maps, nothing is copied (processes that open the same files share
        their pages). Arrays of another dtype than the index's are copied."""

        def view(arr: np.ndarray | None, dtype: type) -> Tensor | None:
            if arr is None:
                return None
            if arr.dtype != dtype:
                return torch.from_numpy(np.asarray(arr, dtype))
            with warnings.catch_warnings():  # read-only: only ever read
                warnings.filterwarnings("ignore", "The given NumPy array is not")
                return torch.from_numpy(arr)

        return cls(
            ptr=view(ptr, np.int64),
            neighbor=view(neighbor, np.int64),
            weight=view(weight, np.float32),
            context=view(context, np.int64),
            mapped=True,
        )

    def share_memory_(self) -> EgoIndex:
        if self.mapped:  # memory maps are shared by the operating system
            return self
        for t in (self.ptr, self.neighbor, self.weight, self.context, self.edge_id):
            if t is not None:
                t.share_memory_()
        return self

    def gather(
        self, rows: Tensor, limit: int | None = None
    ) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None, Tensor | None]:
        """The entries of :obj:`rows` (row ids, repeats allowed), at most
        :obj:`limit` per row, as ``(position of the row in rows, neighbor,
        weight, context, edge id)``."""
        found, where = row_positions(self.ptr.numpy(), rows.numpy(), limit)
        owner, pos = torch.from_numpy(found), torch.from_numpy(where)
        weight = None if self.weight is None else self.weight.index_select(0, pos)
        context = None if self.context is None else self.context.index_select(0, pos)
        if not self.stored:
            edge_id = None
        else:
            edge_id = pos if self.edge_id is None else self.edge_id.index_select(0, pos)
        return owner, self.neighbor.index_select(0, pos), weight, context, edge_id


def index_nodes(
    seeds: Tensor | None, others: list[Tensor], missing: bool = False
) -> tuple[Tensor, list[Tensor]]:
    """Batch-local node list of one node type and the local index of every
    entry of :obj:`others`.

    The list starts with :obj:`seeds` exactly as given (duplicates kept, as in
    PyG's :class:`NeighborLoader`), followed by the ids of :obj:`others` not
    among the seeds, each once, in order of first appearance. An entry equal
    to a seed maps to that seed's first position. With :obj:`missing`, an
    entry ``-1`` (no node, as in ``context``) maps to ``-1``.
    """
    empty = torch.empty(0, dtype=torch.long)
    seed_np = empty.numpy() if seeds is None else seeds.numpy()
    if not others:
        other_np = empty.numpy()
    else:  # one list is the common case: no concatenated copy then
        other_np = (others[0] if len(others) == 1 else torch.cat(others)).numpy()
    node, mapped = relabel(seed_np, other_np, missing)
    node = (
        torch.from_numpy(node) if seeds is None or node.size > seeds.numel() else seeds
    )
    mapped = torch.from_numpy(mapped)
    if len(others) == 1:
        return node, [mapped]
    return node, list(torch.split(mapped, [o.numel() for o in others]))


@dataclass
class ImportanceHeteroSamplerOutput(HeteroSamplerOutput):
    """A :class:`~torch_geometric.sampler.HeteroSamplerOutput` that also
    carries each sampled edge type's ``edge_weight`` and batch-local
    ``context`` (and the context node type), so that loaders can attach them
    whatever the data backend: :attr:`edge_attr` maps an edge type to
    ``{'edge_weight': Tensor, 'context': Tensor}`` (keys present when known)
    and :attr:`context_type` maps an edge type to its context node type."""

    edge_attr: dict[EdgeType, dict[str, Tensor]] = field(default_factory=dict)
    context_type: dict[EdgeType, str] = field(default_factory=dict)


@dataclass
class ImportanceSamplerOutput(SamplerOutput):
    """The homogeneous counterpart of :class:`ImportanceHeteroSamplerOutput`;
    :attr:`edge_attr` holds ``edge_weight``."""

    edge_attr: dict[str, Tensor] = field(default_factory=dict)


@dataclass
class Gathered:
    """Sampled entries of one edge type before re-indexing."""

    ego_pos: Tensor
    neighbor: Tensor
    weight: Tensor | None
    context: Tensor | None
    edge_id: Tensor | None
    context_type: str | None = None


def assemble(
    seed_dict: Mapping[str, Tensor],
    gathered: Mapping[EdgeType, Gathered],
) -> ImportanceHeteroSamplerOutput:
    """Re-indexes gathered entries into a batch: per node type the node list
    (seeds first), per edge type local ``row`` (neighbor) and ``col`` (ego:
    the seed's position in the seed list), real edge ids where entries are
    stored edges, ``edge_weight`` and batch-local ``context``."""
    # per node type: the (edge type, role, ids) lists re-indexed together;
    # contexts keep their -1 ("none") entries, which map to -1
    cand: dict[str, list[tuple[EdgeType, str, Tensor]]] = {}
    for et, g in gathered.items():
        cand.setdefault(et[0], []).append((et, "neighbor", g.neighbor))
        if g.context is not None and g.context_type is not None:
            cand.setdefault(g.context_type, []).append((et, "context", g.context))
    node: dict[str, Tensor] = {}
    local: dict[tuple[EdgeType, str], Tensor] = {}
    for t in dict.fromkeys([*seed_dict, *cand]):
        items = cand.get(t, [])
        missing = any(what == "context" for _, what, _ in items)
        node[t], mapped = index_nodes(seed_dict.get(t), [c for *_, c in items], missing)
        for (et, what, _), m in zip(items, mapped, strict=True):
            local[(et, what)] = m
    row, col, edge, edge_attr, ctx_type = {}, {}, {}, {}, {}
    num_sampled_edges = {}
    for et, g in gathered.items():
        row[et] = local[(et, "neighbor")]
        col[et] = g.ego_pos
        edge[et] = g.edge_id
        attrs = {}
        if g.weight is not None:
            attrs["edge_weight"] = g.weight
        if g.context is not None and g.context_type is not None:
            attrs["context"] = local[(et, "context")]
            ctx_type[et] = g.context_type
        edge_attr[et] = attrs
        num_sampled_edges[et] = [row[et].numel()]
    num_sampled_nodes = {}
    for t, n in node.items():
        s = seed_dict[t].numel() if t in seed_dict else 0
        num_sampled_nodes[t] = [s, n.numel() - s]
    return ImportanceHeteroSamplerOutput(
        node=node,
        row=row,
        col=col,
        edge=edge,
        num_sampled_nodes=num_sampled_nodes,
        num_sampled_edges=num_sampled_edges,
        edge_attr=edge_attr,
        context_type=ctx_type,
    )


def to_homogeneous(
    out: ImportanceHeteroSamplerOutput, node_type: str, edge_type: EdgeType
) -> ImportanceSamplerOutput:
    """The homogeneous view of a one-type output."""
    attrs = out.edge_attr.get(edge_type, {})
    return ImportanceSamplerOutput(
        node=out.node[node_type],
        row=out.row[edge_type],
        col=out.col[edge_type],
        edge=out.edge[edge_type],
        num_sampled_nodes=out.num_sampled_nodes[node_type],
        num_sampled_edges=out.num_sampled_edges[edge_type],
        edge_attr={k: v for k, v in attrs.items() if k == "edge_weight"},
    )


def check_seeds(
    seed_dict: Mapping[str, Tensor],
    num_nodes: Mapping[str, int],
    owner: str,
) -> dict[str, Tensor]:
    """Validates seed node types and ids; returns int64 seeds."""
    out = {}
    for t, s in seed_dict.items():
        if t not in num_nodes:
            raise ValueError(
                f"{owner}: seed node type '{t}' is not in the data (node types: "
                f"{list(num_nodes)})"
            )
        if not isinstance(s, Tensor) or s.is_floating_point() or s.dtype == torch.bool:
            raise TypeError(f"{owner}: seeds of '{t}' must be an integer tensor")
        s = s.view(-1).long()
        if s.numel() and (int(s.min()) < 0 or int(s.max()) >= num_nodes[t]):
            bad = int(s.min()) if int(s.min()) < 0 else int(s.max())
            raise ValueError(
                f"{owner}: seed id {bad} of '{t}' is outside [0, {num_nodes[t]})"
            )
        out[t] = s
    return out


def edge_types_into(
    edge_types: Iterable[EdgeType], node_type: str, owner: str
) -> list[EdgeType]:
    """The edge types whose ego (destination) type is :obj:`node_type`;
    raises if there is none."""
    edge_types = list(edge_types)
    found = [et for et in edge_types if et[2] == node_type]
    if not found:
        raise ValueError(
            f"{owner}: no importance-neighbor edge type ends at node type "
            f"'{node_type}' (edge types: {edge_types})"
        )
    return found
