"""Gathering stored importance neighbors (precompute-then-gather)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data, FeatureStore, GraphStore, HeteroData
from torch_geometric.data import remote_backend_utils as remote_utils
from torch_geometric.sampler import (
    BaseSampler,
    EdgeSamplerInput,
    HeteroSamplerOutput,
    NegativeSampling,
    NodeSamplerInput,
    SamplerOutput,
)
from torch_geometric.sampler.base import DataType
from torch_geometric.sampler.neighbor_sampler import edge_sample, node_sample

from pyg_multisage._checks import check_int
from pyg_multisage.convention import (
    EdgeType,
    context_type_from_name,
    context_type_of,
    is_importance_edge_type,
    is_importance_name,
)
from pyg_multisage.graph import DEFAULT_EDGE_TYPE, DEFAULT_NODE_TYPE
from pyg_multisage.sampler.utils import (
    EgoIndex,
    Gathered,
    assemble,
    check_seeds,
    edge_types_into,
    to_homogeneous,
)
from pyg_multisage.storage import MmapFeatureStore, MmapGraphStore

NumNeighbors = int | Mapping[EdgeType, int] | None


class _ImportanceSamplerBase(BaseSampler):
    """Common sampling protocol: subclasses provide :meth:`_gather` for one
    seed type; this class validates seeds, re-indexes and implements
    :meth:`sample_from_nodes` / :meth:`sample_from_edges` (PyG's binary and
    triplet negative sampling)."""

    is_hetero: bool = True
    num_nodes: dict[str, int]

    def _gather(self, node_type: str, seeds: Tensor) -> dict[EdgeType, Gathered]:
        raise NotImplementedError

    def carried_edge_attrs(self) -> dict[EdgeType, tuple[str, ...]]:
        """Per sampled edge type, the edge attributes (``edge_weight``,
        ``context``) that every output carries in its ``edge_attr`` for the
        edge type whenever the edge type is sampled. The loaders write these
        into the batch themselves, so PyG's filtering need not gather them
        from the data. (default: none)"""
        return {}

    def _sample(
        self, seed: Tensor | dict[str, Tensor], seed_time: object = None
    ) -> SamplerOutput | HeteroSamplerOutput:
        if seed_time is not None:
            raise ValueError(
                f"{self.__class__.__name__} does not support temporal sampling"
            )
        name = self.__class__.__name__
        if isinstance(seed, Mapping):
            if not self.is_hetero:
                raise ValueError(
                    f"{name} was built on homogeneous data; seeds "
                    f"must be a tensor, not a dict"
                )
            seed_dict = check_seeds(seed, self.num_nodes, name)
        else:
            if self.is_hetero:
                raise ValueError(
                    f"{name} was built on heterogeneous data; give the seeds' "
                    f"node type (input_nodes=(node_type, ids))"
                )
            seed_dict = check_seeds({DEFAULT_NODE_TYPE: seed}, self.num_nodes, name)
        gathered: dict[EdgeType, Gathered] = {}
        for t, s in seed_dict.items():
            gathered.update(self._gather(t, s))
        out = assemble(seed_dict, gathered)
        if not self.is_hetero:
            return to_homogeneous(out, DEFAULT_NODE_TYPE, DEFAULT_EDGE_TYPE)
        return out

    def sample_from_nodes(
        self, index: NodeSamplerInput, **kwargs
    ) -> SamplerOutput | HeteroSamplerOutput:
        if self.is_hetero and index.input_type is None:
            raise ValueError(
                f"{self.__class__.__name__} was built on heterogeneous data; "
                f"give the seeds' node type"
            )
        return node_sample(index, self._sample)

    def sample_from_edges(
        self,
        index: EdgeSamplerInput,
        neg_sampling: NegativeSampling | None = None,
    ) -> SamplerOutput | HeteroSamplerOutput:
        if self.is_hetero:
            if index.input_type is None:
                raise ValueError(
                    f"{self.__class__.__name__} was built on heterogeneous "
                    f"data; give the seed edges' type"
                )
            num_nodes = self.num_nodes
        else:
            num_nodes = self.num_nodes[DEFAULT_NODE_TYPE]
        return edge_sample(index, self._sample, num_nodes, False, None, neg_sampling)


class ImportanceNeighborSampler(_ImportanceSamplerBase):
    r"""Gathers stored importance neighbors of the seeds: the edge types written
    by :mod:`pyg_multisage.transforms` (or any edge type of the same shape,
    neighbor :math:`\to` ego with ``edge_weight``), one hop, into a
    :class:`~torch_geometric.sampler.HeteroSamplerOutput`.

    For a seed :math:`v` of type :math:`t` and every chosen edge type
    :math:`(s, r, t)`, the batch receives the edges :math:`u \to v` of
    :math:`\mathcal{N}_r(v)` (MultiSage Alg. 2 / OmniSage §3.1.1 neighbor
    tables), the top :obj:`num_neighbors` by weight; the context nodes they
    reference join the batch's context node store and ``context`` is
    re-indexed to local positions there (``-1`` stays ``-1``).

    Outputs use real edge ids (``e_id``), so PyG's filtering gathers any
    other stored edge attribute. ``edge_weight`` and ``context`` travel in the
    output itself (:class:`~pyg_multisage.sampler.utils.ImportanceHeteroSamplerOutput`,
    named by :meth:`carried_edge_attrs`): the loaders write them into the
    batch, whatever the backend, and do not let PyG's filtering gather them
    a second time.

    Args:
        data (HeteroData or Data or Tuple[FeatureStore, GraphStore]): the graph
            with importance-neighbor edges. For a homogeneous :class:`Data`,
            ``data.edge_index`` (with ``edge_weight``) are the neighbor edges.
            For a remote pair, ``edge_weight``/``context`` are read from the
            feature store under ``group_name=edge_type`` when present.
        edge_types (List[Tuple[str, str, str]], optional): the importance edge
            types to gather. (default: :obj:`None`: every edge type whose
            relation starts with ``walk_via_``, ``pinsage`` or ``ppr_`` or whose
            store has a ``context_type``)
        num_neighbors (int or Dict[Tuple[str, str, str], int], optional): keep
            at most this many neighbors per ego (the highest weights).
            (default: :obj:`None`: all stored)
        context_types (Dict[Tuple[str, str, str], str], optional): context node
            type of edge types carrying ``context``; by default the store's
            ``context_type`` attribute or the ``walk_via_<type>`` name.
            (default: :obj:`None`)
        share_memory (bool, optional): move the index to shared memory (for
            workers). (default: :obj:`False`)
    """

    def __init__(
        self,
        data: HeteroData | Data | tuple[FeatureStore, GraphStore],
        edge_types: Sequence[EdgeType] | None = None,
        num_neighbors: NumNeighbors = None,
        context_types: Mapping[EdgeType, str] | None = None,
        share_memory: bool = False,
    ) -> None:
        self.data_type = DataType.from_data(data)
        context_types = {tuple(k): v for k, v in (context_types or {}).items()}
        self.index: dict[EdgeType, EgoIndex] = {}
        self.context_type: dict[EdgeType, str] = {}
        name = self.__class__.__name__

        if self.data_type == DataType.homogeneous:
            self.is_hetero = False
            if edge_types is not None:
                raise ValueError(f"{name}: edge_types is for heterogeneous data")
            if data.edge_index is None:
                raise ValueError(f"{name}: data has no edge_index")
            n = data.num_nodes
            self.num_nodes = {DEFAULT_NODE_TYPE: n}
            self.edge_types = [DEFAULT_EDGE_TYPE]
            w = _edge_attr(data, "edge_weight", data.edge_index.size(1), "data")
            self.index[DEFAULT_EDGE_TYPE] = EgoIndex.from_edges(data.edge_index, n, w)
        elif self.data_type == DataType.heterogeneous:
            self.is_hetero = True
            self.num_nodes = {t: data[t].num_nodes for t in data.node_types}
            if edge_types is None:
                edge_types = [
                    et for et in data.edge_types if is_importance_edge_type(data, et)
                ]
                if not edge_types:
                    raise ValueError(
                        f"{name}: the data holds no importance-neighbor edge type "
                        f"(relations walk_via_*, pinsage, ppr_*; edge types: "
                        f"{data.edge_types}); run a pyg_multisage transform or "
                        f"name edge_types"
                    )
            self.edge_types = [
                self._check_edge_type(et, data.edge_types) for et in edge_types
            ]
            for et in self.edge_types:
                store = data[et]
                ei = store.edge_index
                w = _edge_attr(store, "edge_weight", ei.size(1), et)
                ctx = _edge_attr(store, "context", ei.size(1), et)
                ctype = None
                if ctx is not None:
                    ctype = context_types.get(et) or context_type_of(data, et)
                    ctype = self._check_context(et, ctx, ctype)
                self.index[et] = EgoIndex.from_edges(ei, self.num_nodes[et[2]], w, ctx)
        else:  # (FeatureStore, GraphStore)
            self.is_hetero = True
            feature_store, graph_store = data
            stored = [tuple(a.edge_type) for a in graph_store.get_all_edge_attrs()]
            stored = list(dict.fromkeys(stored))
            if edge_types is None:
                edge_types = [et for et in stored if is_importance_name(et)]
            self.edge_types = [self._check_edge_type(et, stored) for et in edge_types]
            types = {t for et in stored for t in (et[0], et[2])}
            types |= {
                a.group_name
                for a in feature_store.get_all_tensor_attrs()
                if isinstance(a.group_name, str)
            }
            self.num_nodes = {
                t: remote_utils.num_nodes(feature_store, graph_store, t)
                for t in sorted(types)
            }
            mapped = {
                et: _mapped_index(feature_store, graph_store, et)
                for et in self.edge_types
            }
            rest = [et for et in self.edge_types if mapped[et] is None]
            row_dict, col_dict, perm_dict = {}, {}, {}
            if rest:  # saved in another order: indexed in memory
                row_dict, col_dict, perm_dict = graph_store.coo(rest)
            for et in self.edge_types:
                index = mapped[et]
                if index is None:  # indexed in memory from the stored edge list
                    ei = torch.stack([row_dict[et], col_dict[et]])
                    n = ei.size(1)
                    w = _remote_edge_attr(feature_store, et, "edge_weight", n)
                    ctx = _remote_edge_attr(feature_store, et, "context", n)
                    index = EgoIndex.from_edges(ei, self.num_nodes[et[2]], w, ctx)
                    perm = perm_dict.get(et)
                    if perm is not None:  # ids of the edges as stored
                        ids = index.edge_id
                        index.edge_id = perm if ids is None else perm[ids]
                if index.context is not None:
                    self._check_context(
                        et,
                        index.context,
                        context_types.get(et) or context_type_from_name(et),
                    )
                self.index[et] = index

        self.num_neighbors = self._limits(num_neighbors)
        if share_memory:
            for index in self.index.values():
                index.share_memory_()

    def _check_edge_type(self, et: object, known: Sequence[EdgeType]) -> EdgeType:
        if not isinstance(et, (tuple, list)) or len(et) != 3:
            raise TypeError(
                f"{self.__class__.__name__}: edge types must be (src, rel, dst) "
                f"tuples, got {et!r}"
            )
        et = tuple(et)
        if et not in known:
            raise ValueError(
                f"{self.__class__.__name__}: edge type {et} is not in the data "
                f"(edge types: {list(known)})"
            )
        return et

    def _check_context(self, et: EdgeType, ctx: Tensor, ctype: object) -> str:
        name = self.__class__.__name__
        if not isinstance(ctype, str):
            raise ValueError(
                f"{name}: edge type {et} has a 'context' but no context node type; "
                f"set data[{et}].context_type or pass context_types"
            )
        if ctype not in self.num_nodes:
            raise ValueError(
                f"{name}: context node type '{ctype}' of {et} is not in the data "
                f"(node types: {list(self.num_nodes)})"
            )
        if ctx.numel() and (
            int(ctx.min()) < -1 or int(ctx.max()) >= self.num_nodes[ctype]
        ):
            raise ValueError(
                f"{name}: context of {et} holds ids outside [-1, "
                f"{self.num_nodes[ctype]}) of '{ctype}'"
            )
        self.context_type[et] = ctype
        return ctype

    def _limits(self, num_neighbors: NumNeighbors) -> dict[EdgeType, int | None]:
        if isinstance(num_neighbors, Mapping):
            out = {}
            for et, k in num_neighbors.items():
                et = tuple(et)
                if et not in self.index:
                    raise ValueError(
                        f"{self.__class__.__name__}: num_neighbors names edge type "
                        f"{et}, which is not sampled (edge types: {self.edge_types})"
                    )
                out[et] = check_int(k, f"num_neighbors[{et}]", 1, allow_none=True)
            return {et: out.get(et) for et in self.edge_types}
        k = check_int(num_neighbors, "num_neighbors", 1, allow_none=True)
        return {et: k for et in self.edge_types}

    def edge_types_for(self, node_type: str) -> list[EdgeType]:
        """The sampled edge types whose ego type is :obj:`node_type`."""
        return edge_types_into(self.edge_types, node_type, self.__class__.__name__)

    def carried_edge_attrs(self) -> dict[EdgeType, tuple[str, ...]]:
        out = {}
        for et, index in self.index.items():
            keys = ("edge_weight",) if index.weight is not None else ()
            if index.context is not None:  # context_type is known, see __init__
                keys += ("context",)
            out[et] = keys
        return out

    def _gather(self, node_type: str, seeds: Tensor) -> dict[EdgeType, Gathered]:
        out = {}
        for et in self.edge_types_for(node_type):
            owner, nbr, w, ctx, eid = self.index[et].gather(
                seeds, self.num_neighbors[et]
            )
            out[et] = Gathered(owner, nbr, w, ctx, eid, self.context_type.get(et))
        return out

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(edge_types={self.edge_types}, "
            f"num_neighbors={self.num_neighbors})"
        )


def _edge_attr(store: object, key: str, num_edges: int, et: object) -> Tensor | None:
    value = store[key] if key in store else None
    if value is None:
        return None
    if not isinstance(value, Tensor):
        _check_edge_attr(key, (), False, num_edges, et)
    integer = not (value.is_floating_point() or value.dtype == torch.bool)
    _check_edge_attr(key, tuple(value.shape), integer, num_edges, et)
    return value


def _check_edge_attr(
    key: str, shape: tuple[int, ...], integer: bool, num_edges: int, et: object
) -> None:
    """An edge attribute must have one entry per edge; ``context`` must hold
    integer node ids."""
    if shape != (num_edges,):
        raise ValueError(
            f"'{key}' of {et} must be a one-dimensional tensor with one entry per "
            f"edge ({num_edges})"
        )
    if key == "context" and not integer:
        raise TypeError(f"'context' of {et} must hold integer node ids")


def _mapped_index(
    feature_store: FeatureStore, graph_store: GraphStore, et: EdgeType
) -> EgoIndex | None:
    """The :class:`EgoIndex` of a table that a memory-mapped store holds
    grouped by ego in importance order (views of the maps), else None."""
    if not isinstance(graph_store, MmapGraphStore):
        return None
    table = graph_store.ego_table(et)
    if table is None or not isinstance(feature_store, MmapFeatureStore):
        return None
    ptr, neighbor = table
    weight = feature_store.mapped(et, "edge_weight")
    context = feature_store.mapped(et, "context")
    for key, arr in (("edge_weight", weight), ("context", context)):
        if arr is not None:  # the same checks as for an in-memory table
            integer = np.issubdtype(arr.dtype, np.integer)
            _check_edge_attr(key, arr.shape, integer, len(neighbor), et)
    return EgoIndex.from_maps(ptr, neighbor, weight, context)


def _remote_edge_attr(
    feature_store: FeatureStore, et: EdgeType, key: str, num_edges: int
) -> Tensor | None:
    try:
        value = feature_store.get_tensor(group_name=et, attr_name=key, index=None)
    except KeyError:  # not stored
        return None
    if value is None:
        return None
    return _edge_attr({key: value}, key, num_edges, et)
