"""On-the-fly importance-neighbor samplers: the kernels run for each batch's
seeds (OmniSage's on-the-fly neighbor sampling), for graphs where tabulating
every node beforehand is not wanted.

Each batch equals the batch that precompute-then-gather gives with the same
configuration and seed (:mod:`pyg_multisage.transforms` then
:class:`~pyg_multisage.sampler.ImportanceNeighborSampler`): the kernels' random
stream depends only on ``(seed, source, walk)``, and the push is deterministic.
The sampled edges are not stored edges, so their ``edge`` (edge id) entry is
:obj:`None` and the batch holds no ``e_id`` for them; their ``edge_weight`` and
batch-local ``context`` travel in the sampler output
(:class:`~pyg_multisage.sampler.utils.ImportanceHeteroSamplerOutput.edge_attr`)
and :mod:`pyg_multisage.loader` writes them into the batch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data, FeatureStore, GraphStore, HeteroData
from torch_geometric.data import remote_backend_utils as remote_utils
from torch_geometric.sampler.base import DataType

from pyg_multisage._checks import check_int
from pyg_multisage.convention import EdgeType, ppr_edge_type, walk_edge_types
from pyg_multisage.graph import DEFAULT_EDGE_TYPE, DEFAULT_NODE_TYPE, HeteroCSR
from pyg_multisage.sampler._fork import check_fork_safe_worker
from pyg_multisage.sampler.importance import _ImportanceSamplerBase
from pyg_multisage.sampler.utils import EgoIndex, Gathered, edge_types_into
from pyg_multisage.sampling.ppr import check_ppr_args, ppr_topk
from pyg_multisage.sampling.table import NeighborTable
from pyg_multisage.sampling.walks import check_contextual_walk_args, contextual_walk


def graph_view(
    data: HeteroData | Data | tuple[FeatureStore, GraphStore], undirected: bool = False
) -> HeteroCSR:
    """A :class:`HeteroCSR` of in-memory data or of a (FeatureStore,
    GraphStore) pair. A graph store with a ``hetero_csr()`` method (such as
    :class:`~pyg_multisage.storage.MmapGraphStore`) hands over its CSR view
    as it is (memory-mapped, no edge list built; with :obj:`undirected`,
    relations lacking a reverse get one in memory); other graph stores are
    read once as COO."""
    kind = DataType.from_data(data)
    if kind != DataType.remote:
        return HeteroCSR.from_data(data, undirected=undirected)
    feature_store, graph_store = data
    view = getattr(graph_store, "hetero_csr", None)
    if callable(view):
        csr = view()
        return _undirected(csr) if undirected else csr
    row, col, _ = graph_store.coo()
    eis = {tuple(et): torch.stack([row[et], col[et]]) for et in row}
    types = {t for et in eis for t in (et[0], et[2])}
    types |= {
        a.group_name
        for a in feature_store.get_all_tensor_attrs()
        if isinstance(a.group_name, str)
    }
    num_nodes = {
        t: remote_utils.num_nodes(feature_store, graph_store, t) for t in sorted(types)
    }
    return HeteroCSR(eis, num_nodes, undirected=undirected)


def _undirected(csr: HeteroCSR) -> HeteroCSR:
    """:obj:`csr` with reverse relations, as ``HeteroCSR(..., undirected=True)``
    builds them. Stored arrays are reused when every relation between two
    node types already has its reverse; otherwise the graph is rebuilt in
    memory from its edges."""
    pairs = {(et[0], et[2]) for et in csr.edge_types}
    if all(s != d and (d, s) in pairs for s, d in pairs):
        return csr
    eis, ws = {}, {}
    for et in csr.edge_types:
        c = csr[et]
        src = np.repeat(np.arange(c.num_src, dtype=np.int64), c.degree())
        eis[et] = np.stack([src, np.asarray(c.indices, np.int64)])
        if c.weight is not None:
            ws[et] = c.weight
    return HeteroCSR(eis, csr.num_nodes, ws, undirected=True)


def _unique(seeds: Tensor) -> tuple[Tensor, Tensor]:
    return torch.unique(seeds, return_inverse=True)


def _table_gather(
    table: NeighborTable, rows: Tensor, context_type: str | None
) -> Gathered:
    index = EgoIndex(
        ptr=table.ptr,
        neighbor=table.neighbor,
        weight=table.weight,
        context=table.context,
        stored=False,
    )
    owner, nbr, w, ctx, _ = index.gather(rows)
    return Gathered(owner, nbr, w, ctx, None, context_type)


class _OnTheFlyBase(_ImportanceSamplerBase):
    def _threads(self) -> int | None:
        check_fork_safe_worker()
        if self.num_threads is None and torch.utils.data.get_worker_info():
            return 1  # one process per worker already, as PyTorch does
        return self.num_threads


class ContextualWalkSampler(_OnTheFlyBase):
    r"""MultiSage's contextualized random walk (Alg. 2) run for each batch's
    seeds: for every target seed and context type :math:`c` the top
    :obj:`num_neighbors` targets by visit count with their dominant context
    node, returned as edges ``(target, 'walk_via_<c>', target)`` exactly like
    :class:`~pyg_multisage.transforms.ContextualWalkNeighbors` writes them
    followed by :class:`~pyg_multisage.sampler.ImportanceNeighborSampler`.

    Args:
        data (HeteroData or Tuple[FeatureStore, GraphStore]): the
            target–context graph.
        target (str): target node type (papers, pins).
        context (str or List[str]): context node type(s).
        num_walks (int, optional): walks per seed. (default: :obj:`100`)
        walk_length (int, optional): traversals per walk. (default: :obj:`3`)
        restart_prob (float, optional): restart probability.
            (default: :obj:`0.5`)
        num_neighbors (int, optional): neighbors kept per seed.
            (default: :obj:`10`)
        seed (int, optional): random seed. (default: :obj:`0`)
        num_threads (int, optional): Numba threads per call; in DataLoader
            workers one unless set. (default: :obj:`None`)
    """

    def __init__(
        self,
        data: HeteroData | tuple[FeatureStore, GraphStore],
        target: str,
        context: str | Sequence[str],
        num_walks: int = 100,
        walk_length: int = 3,
        restart_prob: float = 0.5,
        num_neighbors: int = 10,
        seed: int = 0,
        num_threads: int | None = None,
    ) -> None:
        if DataType.from_data(data) == DataType.homogeneous:
            raise ValueError(
                "ContextualWalkSampler needs heterogeneous data with target and "
                "context node types"
            )
        self.csr = graph_view(data)
        self.num_nodes = dict(self.csr.num_nodes)
        args = check_contextual_walk_args(
            target,
            context,
            num_walks,
            walk_length,
            restart_prob,
            num_neighbors,
            seed,
            csr=self.csr,
        )
        self.target = target
        self.contexts = [context] if isinstance(context, str) else args["context"]
        self.kwargs = {
            k: args[k]
            for k in ("num_walks", "walk_length", "restart_prob", "num_neighbors")
        }
        self.kwargs["seed"] = args["seed"]
        self.num_threads = check_int(num_threads, "num_threads", 1, allow_none=True)
        self.edge_types = walk_edge_types(target, self.contexts)

    def edge_types_for(self, node_type: str) -> list[EdgeType]:
        return edge_types_into(self.edge_types, node_type, self.__class__.__name__)

    def carried_edge_attrs(self) -> dict[EdgeType, tuple[str, ...]]:
        return {et: ("edge_weight", "context") for et in self.edge_types}

    def _gather(self, node_type: str, seeds: Tensor) -> dict[EdgeType, Gathered]:
        self.edge_types_for(node_type)
        uniq, inv = _unique(seeds)
        tables = contextual_walk(
            self.csr,
            uniq,
            target=self.target,
            context=self.contexts,
            num_threads=self._threads(),
            **self.kwargs,
        )
        return {
            et: _table_gather(tables[c], inv, c)
            for et, c in zip(self.edge_types, self.contexts, strict=True)
        }

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.kwargs.items())
        return (
            f"{self.__class__.__name__}(target='{self.target}', "
            f"context={self.contexts}, {args})"
        )


class PPRSampler(_OnTheFlyBase):
    r"""OmniSage §3.1.1 PPR neighbors computed for each batch's seeds: per
    relation subset :math:`R_i` (named ``name``) and node type :math:`t`, the
    top-:math:`k_t` nodes by personalized PageRank (forward push), returned as
    edges ``(t, 'ppr_<name>', source)`` with ``edge_weight`` = score, exactly
    like :class:`~pyg_multisage.transforms.PPRNeighbors` writes them followed
    by :class:`~pyg_multisage.sampler.ImportanceNeighborSampler`.

    Args:
        data (HeteroData or Data or Tuple[FeatureStore, GraphStore]): the graph.
            A homogeneous :class:`Data` is node type ``'node'`` with relation
            ``('node', 'to', 'node')`` and yields a
            :class:`~torch_geometric.sampler.SamplerOutput`.
        source (str): the seeds' node type. (default: :obj:`'node'`)
        relation_subsets (Dict[str, List[Tuple[str, str, str]]], optional):
            named relation subsets. (default: :obj:`None`: one subset
            ``'all'`` with every relation)
        top_k (int or Dict[str, Dict[str, int]]): :math:`k_t` per subset and
            node type; an int means ``{name: {source: k}}`` for every subset.
        alpha (float, optional): restart probability. (default: :obj:`0.15`)
        eps (float, optional): push threshold. (default: :obj:`1e-4`)
        undirected (bool, optional): add reverse relations first (see
            :class:`~pyg_multisage.graph.HeteroCSR`). (default: :obj:`False`)
        num_threads (int, optional): Numba threads per call; in DataLoader
            workers one unless set. (default: :obj:`None`)
    """

    def __init__(
        self,
        data: HeteroData | Data | tuple[FeatureStore, GraphStore],
        source: str = DEFAULT_NODE_TYPE,
        relation_subsets: Mapping[str, Sequence[EdgeType]] | None = None,
        top_k: int | Mapping[str, Mapping[str, int]] = 10,
        alpha: float = 0.15,
        eps: float = 1e-4,
        undirected: bool = False,
        num_threads: int | None = None,
    ) -> None:
        self.is_hetero = DataType.from_data(data) != DataType.homogeneous
        self.csr = graph_view(data, undirected=undirected)
        self.num_nodes = dict(self.csr.num_nodes)
        self.csr.check_node_type(source, "source")
        if relation_subsets is None:
            relation_subsets = {"all": list(self.csr.edge_types)}
        if not isinstance(relation_subsets, Mapping) or not relation_subsets:
            raise TypeError(
                "relation_subsets must be a non-empty dict name -> edge types"
            )
        self.source = source
        self.relation_subsets = {
            str(k): [tuple(et) for et in v] for k, v in relation_subsets.items()
        }
        if isinstance(top_k, Mapping):
            missing = set(self.relation_subsets) - set(top_k)
            extra = set(top_k) - set(self.relation_subsets)
            if missing or extra:
                raise ValueError(
                    f"top_k must have one entry per relation subset "
                    f"{list(self.relation_subsets)} (missing {sorted(missing)}, "
                    f"unknown {sorted(extra)})"
                )
            self.top_k = {k: dict(top_k[k]) for k in self.relation_subsets}
        else:
            self.top_k = {k: {source: top_k} for k in self.relation_subsets}
        self.num_threads = check_int(num_threads, "num_threads", 1, allow_none=True)
        self.edge_types = []
        for name in self.relation_subsets:
            args = check_ppr_args(
                source,
                self.relation_subsets[name],
                self.top_k[name],
                alpha,
                eps,
                csr=self.csr,
            )
            self.alpha, self.eps = args["alpha"], args["eps"]
            self.edge_types += [
                ppr_edge_type(t, name, source) for t in self.top_k[name]
            ]
        if not self.is_hetero and len(self.edge_types) != 1:
            raise ValueError("on homogeneous data PPRSampler takes one relation subset")

    def edge_types_for(self, node_type: str) -> list[EdgeType]:
        return edge_types_into(self.edge_types, node_type, self.__class__.__name__)

    def carried_edge_attrs(self) -> dict[EdgeType, tuple[str, ...]]:
        return {et: ("edge_weight",) for et in self.edge_types}

    def _gather(self, node_type: str, seeds: Tensor) -> dict[EdgeType, Gathered]:
        self.edge_types_for(node_type)
        uniq, inv = _unique(seeds)
        threads = self._threads()
        out = {}
        for name, relations in self.relation_subsets.items():
            tables = ppr_topk(
                self.csr,
                uniq,
                source_type=self.source,
                relations=relations,
                top_k=self.top_k[name],
                alpha=self.alpha,
                eps=self.eps,
                num_threads=threads,
            )
            for t in self.top_k[name]:
                et = ppr_edge_type(t, name, self.source)
                out[et if self.is_hetero else DEFAULT_EDGE_TYPE] = _table_gather(
                    tables[t], inv, None
                )
        return out

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(source='{self.source}', "
            f"relation_subsets={self.relation_subsets}, top_k={self.top_k}, "
            f"alpha={self.alpha}, eps={self.eps})"
        )
