"""Transforms that tabulate importance neighbors into new edge types."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor
from torch_geometric.data import HeteroData
from torch_geometric.transforms import BaseTransform
from tqdm.auto import tqdm

from pyg_multisage._checks import check_int
from pyg_multisage.convention import (
    EdgeType,
    is_importance_edge_type,
    pinsage_edge_type,
    ppr_edge_type,
    walk_edge_type,
    write_table,
)
from pyg_multisage.graph import HeteroCSR
from pyg_multisage.sampling.ppr import check_ppr_args, ppr_topk
from pyg_multisage.sampling.table import NeighborTable
from pyg_multisage.sampling.walks import (
    check_contextual_walk_args,
    check_pinsage_walk_args,
    contextual_walk,
    pinsage_walk,
)

#: Most seeds per kernel call; results do not depend on the chunking
#: (counter-based RNG), only how often the progress bar moves.
CHUNK = 16384
#: Fewest seeds per kernel call, so smaller runs stay one call per few
#: milliseconds of work.
MIN_CHUNK = 512
#: Updates of the progress bar aimed at per run (between the two bounds).
PROGRESS_STEPS = 50


def chunk_size(num_seeds: int) -> int:
    """Seeds per kernel call for a run over :obj:`num_seeds` seeds: about
    ``num_seeds / PROGRESS_STEPS`` so the bar moves smoothly, within
    ``[MIN_CHUNK, CHUNK]`` (never above :data:`CHUNK`)."""
    steps = -(-num_seeds // PROGRESS_STEPS)
    return max(1, min(CHUNK, max(MIN_CHUNK, steps)))


def check_hetero(transform: BaseTransform, data: object) -> HeteroData:
    name = transform.__class__.__name__
    if not isinstance(data, HeteroData):
        raise TypeError(f"{name} expects a HeteroData, got {type(data).__name__}")
    if data.is_cuda:
        raise ValueError(f"{name} runs on CPU data; call data.cpu() first")
    return data


def check_node_types(transform: BaseTransform, data: HeteroData, *types: str) -> None:
    for t in types:
        if not isinstance(t, str) or t not in data.node_types:
            raise ValueError(
                f"{transform.__class__.__name__}: node type {t!r} is not in the "
                f"data (node types: {data.node_types})"
            )


def relations_between(
    transform: BaseTransform, data: HeteroData, a: str, b: str
) -> list[EdgeType]:
    found = [
        et
        for et in data.edge_types
        if {et[0], et[2]} == {a, b} and a != b and not is_importance_edge_type(data, et)
    ]
    if not found:
        raise ValueError(
            f"{transform.__class__.__name__}: no edge type connects '{a}' and "
            f"'{b}' (edge types: {data.edge_types})"
        )
    return found


def run_chunked(
    fn: Callable[[Tensor], dict[str, NeighborTable]],
    num_seeds: int,
    desc: str,
    progress: bool | None,
) -> dict[str, NeighborTable]:
    """Runs :obj:`fn` over all seeds ``0..num_seeds-1`` in chunks of
    :func:`chunk_size` seeds (a bar appears when the work takes more than a
    second and moves after every chunk) and concatenates rows."""
    parts: dict[str, list[NeighborTable]] = {}
    step = chunk_size(num_seeds)
    with tqdm(total=num_seeds, desc=desc, delay=1.0, disable=progress is False) as bar:
        for lo in range(0, max(num_seeds, 1), step):
            seeds = torch.arange(lo, min(lo + step, num_seeds))
            for key, table in fn(seeds).items():
                parts.setdefault(key, []).append(table)
            bar.update(seeds.numel())
    return {k: concat_tables(v) for k, v in parts.items()}


def concat_tables(tables: list[NeighborTable]) -> NeighborTable:
    ptr = [tables[0].ptr[:1]]
    offset = 0
    for t in tables:
        ptr.append(t.ptr[1:] + offset)
        offset += t.num_edges
    ctx = None
    if tables[0].context is not None:
        ctx = torch.cat([t.context for t in tables])
    return NeighborTable(
        seeds=torch.cat([t.seeds for t in tables]),
        ptr=torch.cat(ptr),
        neighbor=torch.cat([t.neighbor for t in tables]),
        weight=torch.cat([t.weight for t in tables]),
        context=ctx,
    )


class ContextualWalkNeighbors(BaseTransform):
    r"""Tabulates MultiSage's contextual neighbors (Algorithm 2) of every target
    node: for every context type :math:`c`, writes
    ``(target, 'walk_via_<c>', target)`` edges :math:`u \to v` from each of the
    top-:math:`s` visited targets :math:`u` of :math:`v`, grouped by :math:`v`
    and sorted by visit count, with

    * ``edge_weight`` (float32): the visit count
      :math:`\mathrm{vis}[v][u]`,
    * ``context`` (int64): the dominant context node
      :math:`\mathrm{ctx}[v][u]` (id in the ``c`` node store, ``-1`` none),
    * ``context_type = c`` on the edge store.

    See :func:`pyg_multisage.sampling.contextual_walk` for the walk.

    Args:
        target (str): target node type (papers, pins).
        context (str or List[str]): context node type(s) (venues, boards).
        num_walks (int, optional): walks per node :math:`\kappa`.
            (default: :obj:`100`)
        walk_length (int, optional): traversals per walk :math:`\zeta`.
            (default: :obj:`3`)
        restart_prob (float, optional): restart probability.
            (default: :obj:`0.5`)
        num_neighbors (int, optional): neighbors kept per node :math:`s`.
            (default: :obj:`10`)
        seed (int, optional): random seed. (default: :obj:`0`)
        num_threads (int, optional): Numba threads. (default: :obj:`None`)
        progress (bool, optional): :obj:`False` hides the progress bar, shown
            otherwise when the work takes more than a second.
            (default: :obj:`None`)
    """

    def __init__(
        self,
        target: str,
        context: str | Sequence[str],
        num_walks: int = 100,
        walk_length: int = 3,
        restart_prob: float = 0.5,
        num_neighbors: int = 10,
        seed: int = 0,
        num_threads: int | None = None,
        progress: bool | None = None,
    ) -> None:
        args = check_contextual_walk_args(
            target, context, num_walks, walk_length, restart_prob, num_neighbors, seed
        )
        self.target = target
        self.context = args["context"]
        self.contexts = [context] if isinstance(context, str) else args["context"]
        self.num_walks = args["num_walks"]
        self.walk_length = args["walk_length"]
        self.restart_prob = args["restart_prob"]
        self.num_neighbors = args["num_neighbors"]
        self.seed = args["seed"]
        self.num_threads = check_int(num_threads, "num_threads", 1, allow_none=True)
        self.progress = progress

    def forward(self, data: HeteroData) -> HeteroData:
        data = check_hetero(self, data)
        check_node_types(self, data, self.target, *self.contexts)
        rels = [
            et
            for c in self.contexts
            for et in relations_between(self, data, self.target, c)
        ]
        csr = HeteroCSR.from_data(data, edge_types=rels)

        def fn(seeds: Tensor) -> dict[str, NeighborTable]:
            return contextual_walk(
                csr,
                seeds,
                target=self.target,
                context=self.contexts,
                num_walks=self.num_walks,
                walk_length=self.walk_length,
                restart_prob=self.restart_prob,
                num_neighbors=self.num_neighbors,
                seed=self.seed,
                num_threads=self.num_threads,
            )

        tables = run_chunked(
            fn, data[self.target].num_nodes, self.__class__.__name__, self.progress
        )
        for c in self.contexts:
            write_table(data, walk_edge_type(self.target, c), tables[c], c)
        return data

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(target='{self.target}', "
            f"context={self.context!r}, num_walks={self.num_walks}, "
            f"walk_length={self.walk_length}, restart_prob={self.restart_prob}, "
            f"num_neighbors={self.num_neighbors}, seed={self.seed})"
        )


class PinSageNeighbors(BaseTransform):
    r"""Tabulates PinSage's importance neighbors (random-walk visit counts, no
    context) of every target node: writes ``(target, 'pinsage', target)``
    edges :math:`u \to v` from the top-:obj:`num_neighbors` visited targets,
    grouped by :math:`v`, with ``edge_weight`` = visit count (float32). See
    :func:`pyg_multisage.sampling.pinsage_walk`.

    Args:
        target (str): target node type.
        context (str): the node type walked through.
        num_walks (int, optional): walks per node. (default: :obj:`100`)
        num_traversals (int, optional): target–context–target hops per walk.
            (default: :obj:`3`)
        termination_prob (float, optional): stop probability after each
            traversal. (default: :obj:`0.5`)
        num_neighbors (int, optional): neighbors kept. (default: :obj:`10`)
        seed (int, optional): random seed. (default: :obj:`0`)
        num_threads (int, optional): Numba threads. (default: :obj:`None`)
        progress (bool, optional): :obj:`False` hides the progress bar.
            (default: :obj:`None`)
    """

    def __init__(
        self,
        target: str,
        context: str,
        num_walks: int = 100,
        num_traversals: int = 3,
        termination_prob: float = 0.5,
        num_neighbors: int = 10,
        seed: int = 0,
        num_threads: int | None = None,
        progress: bool | None = None,
    ) -> None:
        args = check_pinsage_walk_args(
            target,
            context,
            num_walks,
            num_traversals,
            termination_prob,
            num_neighbors,
            seed,
        )
        self.target = target
        self.context = context
        self.num_walks = args["num_walks"]
        self.num_traversals = args["num_traversals"]
        self.termination_prob = args["termination_prob"]
        self.num_neighbors = args["num_neighbors"]
        self.seed = args["seed"]
        self.num_threads = check_int(num_threads, "num_threads", 1, allow_none=True)
        self.progress = progress

    def forward(self, data: HeteroData) -> HeteroData:
        data = check_hetero(self, data)
        check_node_types(self, data, self.target, self.context)
        rels = relations_between(self, data, self.target, self.context)
        csr = HeteroCSR.from_data(data, edge_types=rels)

        def fn(seeds: Tensor) -> dict[str, NeighborTable]:
            table = pinsage_walk(
                csr,
                seeds,
                target=self.target,
                context=self.context,
                num_walks=self.num_walks,
                num_traversals=self.num_traversals,
                termination_prob=self.termination_prob,
                num_neighbors=self.num_neighbors,
                seed=self.seed,
                num_threads=self.num_threads,
            )
            return {"": table}

        table = run_chunked(
            fn, data[self.target].num_nodes, self.__class__.__name__, self.progress
        )[""]
        write_table(data, pinsage_edge_type(self.target), table)
        return data

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(target='{self.target}', "
            f"context='{self.context}', num_walks={self.num_walks}, "
            f"num_traversals={self.num_traversals}, "
            f"termination_prob={self.termination_prob}, "
            f"num_neighbors={self.num_neighbors}, seed={self.seed})"
        )


class PPRNeighbors(BaseTransform):
    r"""Tabulates OmniSage's PPR neighbors (§3.1.1) of every :obj:`source`
    node: for every relation subset :math:`R_i` (named ``name``) and node type
    :math:`t` of ``top_k[name]``, the top-:math:`k_t` nodes :math:`u` of type
    :math:`t` by personalized PageRank on the subgraph of :math:`R_i`,
    :math:`N_t(v, \mathcal{H}_{R_i})`, written as ``(t, 'ppr_<name>', source)``
    edges :math:`u \to v` grouped by :math:`v`, score descending, with
    ``edge_weight`` = PPR score estimate (float32). The union over subsets,
    :math:`N(v) = \bigcup_i N(v, \mathcal{H}_{R_i})`, is the set of these edge
    types. See :func:`pyg_multisage.sampling.ppr_topk`.

    Args:
        source (str): node type whose neighbors are tabulated.
        relation_subsets (Dict[str, List[Tuple[str, str, str]]]): named
            relation subsets :math:`R_i` (walked in their stored direction).
        top_k (Dict[str, Dict[str, int]]): :math:`k_t` per subset name and node
            type.
        alpha (float, optional): restart probability. (default: :obj:`0.15`)
        eps (float, optional): push threshold. (default: :obj:`1e-4`)
        undirected (bool, optional): walk every relation in both directions
            (:class:`~pyg_multisage.graph.HeteroCSR` with ``undirected=True``;
            subsets may then name the ``rev_`` relations). (default: :obj:`False`)
        num_threads (int, optional): Numba threads. (default: :obj:`None`)
        progress (bool, optional): :obj:`False` hides the progress bar.
            (default: :obj:`None`)
    """

    def __init__(
        self,
        source: str,
        relation_subsets: Mapping[str, Sequence[EdgeType]],
        top_k: Mapping[str, Mapping[str, int]],
        alpha: float = 0.15,
        eps: float = 1e-4,
        undirected: bool = False,
        num_threads: int | None = None,
        progress: bool | None = None,
    ) -> None:
        if not isinstance(relation_subsets, Mapping) or not relation_subsets:
            raise TypeError("relation_subsets must be a non-empty dict")
        if not isinstance(top_k, Mapping) or set(top_k) != set(relation_subsets):
            raise ValueError(
                f"top_k must be a dict with one entry per relation subset "
                f"{list(relation_subsets)}, got {top_k!r}"
            )
        for name, rels in relation_subsets.items():
            args = check_ppr_args(source, rels, top_k[name], alpha, eps)
        self.source = source
        self.relation_subsets = {
            str(k): [tuple(et) for et in v] for k, v in relation_subsets.items()
        }
        self.top_k = {k: dict(top_k[k]) for k in self.relation_subsets}
        self.alpha, self.eps = args["alpha"], args["eps"]
        self.undirected = undirected
        self.num_threads = check_int(num_threads, "num_threads", 1, allow_none=True)
        self.progress = progress

    def forward(self, data: HeteroData) -> HeteroData:
        data = check_hetero(self, data)
        check_node_types(self, data, self.source)
        for k in self.top_k.values():
            check_node_types(self, data, *k)
        known = set(data.edge_types)
        for name, rels in self.relation_subsets.items():
            for et in rels:
                if et not in known and not (
                    self.undirected and et[1].startswith("rev_")
                ):
                    raise ValueError(
                        f"{self.__class__.__name__}: relation subset '{name}' "
                        f"names edge type {et}, which is not in the data "
                        f"(edge types: {data.edge_types})"
                    )
        used = {
            et for rels in self.relation_subsets.values() for et in rels if et in known
        }
        csr = HeteroCSR.from_data(
            data, edge_types=sorted(used), undirected=self.undirected
        )

        def fn(seeds: Tensor) -> dict[str, NeighborTable]:
            out = {}
            for name, rels in self.relation_subsets.items():
                tables = ppr_topk(
                    csr,
                    seeds,
                    source_type=self.source,
                    relations=rels,
                    top_k=self.top_k[name],
                    alpha=self.alpha,
                    eps=self.eps,
                    num_threads=self.num_threads,
                )
                for t, table in tables.items():
                    out[f"{name}\0{t}"] = table
            return out

        tables = run_chunked(
            fn, data[self.source].num_nodes, self.__class__.__name__, self.progress
        )
        for name in self.relation_subsets:
            for t in self.top_k[name]:
                et = ppr_edge_type(t, name, self.source)
                write_table(data, et, tables[f"{name}\0{t}"])
        return data

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(source='{self.source}', "
            f"relation_subsets={self.relation_subsets}, top_k={self.top_k}, "
            f"alpha={self.alpha}, eps={self.eps}, undirected={self.undirected})"
        )
