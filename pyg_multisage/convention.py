r"""The importance-neighbor convention: the one extension point of the package.

Every neighbor source (our transforms, our on-the-fly samplers, or a user's
own co-engagement pairs) hands importance neighbors to the samplers, loaders
and layers as an **edge type of a** :class:`~torch_geometric.data.HeteroData`
of this shape:

* the edge points **from the neighbor to the ego** (``edge_index[0]`` is the
  neighbor :math:`u`, ``edge_index[1]`` the ego :math:`v`), so a
  :class:`~torch_geometric.nn.conv.MessagePassing` layer aggregates into the
  ego;
* ``edge_weight`` (float32) holds the importance (visit count or PPR score),
  and the edges of one ego are stored weight descending;
* for contextual walks (MultiSage Alg. 2), ``context`` (int64) holds the id of
  the pair's dominant context node in its own node store (``-1``: none) and
  the store records the context node type as ``context_type``;
* the relation name says what made the edges:

  ========================================  ===================================
  relation                                   made by
  ========================================  ===================================
  ``walk_via_<c>`` (``target -> target``)    contextual walks through context
                                             type ``c`` (MultiSage Alg. 2)
  ``pinsage`` (``target -> target``)         PinSage visit counts (no context)
  ``ppr_<name>`` (``t -> source``)           forward-push PPR over the relation
                                             subset ``name`` (OmniSage §3.1.1)
  ========================================  ===================================

A custom neighbor source follows the same protocol: write its pairs with
:func:`write_table` (or by hand, with the fields above) under any relation
name, and set ``context_type`` on the store when the edges carry contexts.
:func:`is_importance_edge_type` then tells the samplers that these edges are
neighbors, not graph structure.

Everything that names, recognizes or parses such an edge type, writes one, or
keeps the edges of a batch that end in its seeds lives in this module.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import Tensor

if TYPE_CHECKING:  # imported where used: loading a graph needs no PyG
    from torch_geometric.data import HeteroData

#: ``(source node type, relation, destination node type)``, as in PyG.
EdgeType = tuple[str, str, str]

#: Relation prefix of contextual-walk neighbors: ``walk_via_<context type>``.
WALK_PREFIX = "walk_via_"
#: Relation of PinSage visit-count neighbors.
PINSAGE_RELATION = "pinsage"
#: Relation prefix of PPR neighbors: ``ppr_<relation-subset name>``.
PPR_PREFIX = "ppr_"
#: Every relation prefix the package writes.
IMPORTANCE_PREFIXES = (WALK_PREFIX, PINSAGE_RELATION, PPR_PREFIX)


def walk_edge_type(target: str, context: str) -> EdgeType:
    """``(target, 'walk_via_<context>', target)``: contextual-walk neighbors of
    :obj:`target` nodes through :obj:`context` nodes (MultiSage Alg. 2)."""
    return (target, f"{WALK_PREFIX}{context}", target)


def pinsage_edge_type(target: str) -> EdgeType:
    """``(target, 'pinsage', target)``: PinSage visit-count neighbors."""
    return (target, PINSAGE_RELATION, target)


def ppr_edge_type(neighbor_type: str, name: str, source: str) -> EdgeType:
    """``(neighbor_type, 'ppr_<name>', source)``: the top PPR neighbors of type
    :obj:`neighbor_type` of every :obj:`source` node over the relation subset
    :obj:`name` (OmniSage §3.1.1)."""
    return (neighbor_type, f"{PPR_PREFIX}{name}", source)


def context_type_from_name(edge_type: EdgeType) -> str | None:
    """``'venue'`` for ``(t, 'walk_via_venue', t)``, else :obj:`None`."""
    rel = edge_type[1]
    return rel[len(WALK_PREFIX) :] if rel.startswith(WALK_PREFIX) else None


def context_type_of(data: HeteroData, edge_type: EdgeType) -> str | None:
    """The context node type of an importance edge type: the store's
    ``context_type`` attribute, else the one its ``walk_via_<c>`` name gives,
    else :obj:`None`."""
    stored = getattr(data[edge_type], "context_type", None)
    return stored if isinstance(stored, str) else context_type_from_name(edge_type)


def is_importance_name(edge_type: EdgeType) -> bool:
    """Whether the relation name is one the package writes (``walk_via_*``,
    ``pinsage*``, ``ppr_*``)."""
    return edge_type[1].startswith(IMPORTANCE_PREFIXES)


def is_importance_edge_type(data: HeteroData, edge_type: EdgeType) -> bool:
    """Whether :obj:`edge_type` holds importance neighbors rather than graph
    structure: its relation is one the package writes or its store records a
    ``context_type``."""
    store = data[edge_type]
    return is_importance_name(edge_type) or isinstance(
        getattr(store, "context_type", None), str
    )


class _Table(Protocol):
    """What :func:`write_table` reads (e.g. a
    :class:`~pyg_multisage.sampling.NeighborTable`)."""

    weight: Tensor
    context: Tensor | None

    def edge_index(self) -> Tensor: ...


def write_table(
    data: HeteroData,
    edge_type: EdgeType,
    table: _Table,
    context_type: str | None = None,
) -> None:
    """Writes a neighbor table as neighbor → ego edges grouped by ego, weight
    descending (the table's row order), with ``edge_weight`` (float32) and,
    with :obj:`context_type`, ``context`` (int64) and ``context_type``."""
    store = data[edge_type]
    store.edge_index = table.edge_index()
    store.edge_weight = table.weight.to(torch.float32)
    if context_type is not None:
        if table.context is None:
            raise ValueError(
                f"context_type={context_type!r} given for {edge_type}, but the "
                "table has no contexts"
            )
        store.context = table.context.to(torch.long)
        store.context_type = context_type


def batch_adjacency(store: Any) -> Any:
    """A batch edge store's adjacency: ``adj_t`` if it has one (after
    :class:`~torch_geometric.transforms.ToSparseTensor`), else
    ``edge_index``."""
    return store.adj_t if "adj_t" in store else store.edge_index


def edges_into_egos(adj: Any, num_egos: int, *per_edge: Tensor | None) -> tuple:
    r"""Keeps only the edges into the first :obj:`num_egos` egos (a batch's
    seeds), for a single-layer model reading a loader batch.

    :obj:`adj` is a ``[2, E]`` ``edge_index`` (neighbor → ego) or a
    :class:`torch_sparse.SparseTensor` ``adj_t`` ``[num_egos_all,
    num_neighbors]`` as PyG's
    :class:`~torch_geometric.transforms.ToSparseTensor` writes it (its
    values, if any, are the edge weights). :obj:`per_edge` are ``[E]``
    tensors in the edge order of :obj:`adj` (row-major for a
    ``SparseTensor``) or :obj:`None`. Returns the restricted adjacency (a
    ``SparseTensor`` stays one, narrowed to its first :obj:`num_egos` rows)
    followed by the restricted per-edge tensors.
    """
    from torch_geometric.typing import WITH_TORCH_SPARSE, SparseTensor

    if WITH_TORCH_SPARSE and isinstance(adj, SparseTensor):
        if adj.size(0) < num_egos:
            raise ValueError(
                f"the SparseTensor adjacency has {adj.size(0)} rows (egos), "
                f"fewer than the batch's {num_egos} seeds"
            )
        end = int(adj.storage.rowptr()[num_egos])
        sub = adj.narrow(0, 0, num_egos)
        return (sub, *(None if t is None else t[:end] for t in per_edge))
    if not isinstance(adj, Tensor) or adj.layout != torch.strided:
        kind = "" if not isinstance(adj, Tensor) else f" {adj.layout}"
        raise TypeError(
            "a batch's adjacency must be an 'edge_index' [2, E] tensor or a "
            f"torch_sparse SparseTensor 'adj_t' (got {type(adj).__name__}{kind})"
        )
    keep = adj[1] < num_egos
    return (adj[:, keep], *(None if t is None else t[keep] for t in per_edge))


def seed_edges(
    batch: HeteroData, edge_types: Iterable[EdgeType], batch_size: int
) -> Iterator[tuple[EdgeType, Any, Tensor | None, Tensor | None]]:
    """The importance edges of a loader batch that end in its first
    :obj:`batch_size` nodes of the ego type (the seeds), per edge type.

    Yields ``(edge_type, adjacency, edge_weight, context)`` for every edge
    type of :obj:`edge_types` present in :obj:`batch`: the adjacency is the
    store's ``edge_index`` (or its ``adj_t`` SparseTensor, see
    :func:`edges_into_egos`) restricted to the seeds; ``edge_weight`` and
    ``context`` are :obj:`None` where the store has none.
    """
    for et in edge_types:
        if et not in batch.edge_types:
            continue
        store = batch[et]
        adj, weight, context = edges_into_egos(
            batch_adjacency(store),
            batch_size,
            store.get("edge_weight"),
            store.get("context"),
        )
        yield et, adj, weight, context


def walk_edge_types(target: str, contexts: Sequence[str]) -> list[EdgeType]:
    """:func:`walk_edge_type` for every context type, in order."""
    return [walk_edge_type(target, c) for c in contexts]
