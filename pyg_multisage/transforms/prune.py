"""OmniSage's degree-based graph pruning as a transform."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch_geometric.data import Data, HeteroData
from torch_geometric.data.storage import EdgeStorage
from torch_geometric.transforms import BaseTransform
from tqdm.auto import tqdm

from pyg_multisage.graph import EdgeType
from pyg_multisage.sampling.prune import check_prune_args, degree_prune


def _keys(src: Tensor, dst: Tensor, num_dst: int) -> Tensor:
    return src * max(num_dst, 1) + dst


def _consistent(keys: Tensor, priority: Tensor, mask: Tensor) -> Tensor:
    """Every edge takes the decision of the edge of lowest :obj:`priority`
    sharing its (pair) key, so copies and reverses agree."""
    if keys.numel() == 0:
        return mask
    uniq, inv = torch.unique(keys, return_inverse=True)
    perm = torch.argsort(priority)
    rank = torch.empty_like(perm)
    rank[perm] = torch.arange(perm.numel())
    first = torch.full((uniq.numel(),), perm.numel(), dtype=torch.long)
    first.scatter_reduce_(0, inv, rank, "amin")
    return mask[perm[first][inv]]


def find_reverse(
    edge_type: EdgeType, edge_types: Sequence[EdgeType]
) -> EdgeType | None:
    """The reverse of :obj:`edge_type` among :obj:`edge_types`: ``(dst,
    'rev_' + rel, src)`` (or the type it is ``rev_`` of) if present, else the
    only edge type from ``dst`` to ``src`` (same-type relations: none)."""
    src, rel, dst = edge_type
    if src == dst:
        return None
    named = [(dst, f"rev_{rel}", src)]
    if rel.startswith("rev_"):
        named.append((dst, rel[4:], src))
    for et in named:
        if et in edge_types:
            return et
    back = [et for et in edge_types if et[0] == dst and et[2] == src]
    return back[0] if len(back) == 1 else None


def _apply(store: EdgeStorage, mask: Tensor) -> None:
    num_edges = mask.numel()
    keys = [  # decided before anything changes the store's edge count
        key
        for key, value in store.items()
        if key != "edge_index"
        and isinstance(value, Tensor)
        and store.is_edge_attr(key)
        and value.dim() > 0
        and value.size(0) == num_edges
    ]
    if "edge_index" in store:
        store.edge_index = store.edge_index[:, mask]
    for key in keys:
        store[key] = store[key][mask]


class DegreePrune(BaseTransform):
    r"""Degree-based pruning of OmniSage (Appendix A.1, Algorithm 2): every
    node :math:`u` of out-degree :math:`d_u` keeps each out-edge with
    probability :math:`\min(d_{\text{target}} / d_u, 1)`,
    :math:`d_{\text{target}} = \max\{\min\{d_u^{\alpha}, d_{\max}\}, d_{\min}\}`
    (see :func:`pyg_multisage.sampling.degree_prune`), on every (or the named)
    edge types; every edge attribute is filtered alike.

    Reverse edges stay consistent: an edge and its reverse are kept or dropped
    together. For an edge type and its reverse (``(dst, 'rev_' + rel, src)``,
    or the only edge type from ``dst`` to ``src``) the edge type met first
    decides with its source nodes' degrees and the reverse edge ``(v, u)``
    follows (the first stored copy of) ``(u, v)``; reverse edges without a
    counterpart decide on their own. Within a relation between nodes of one
    type (e.g. an undirected citation graph storing both directions) the pair
    :math:`\{u, v\}` follows the decision for the first stored edge from
    :math:`\min(u, v)` to :math:`\max(u, v)` when there is one. Duplicate
    edges share one decision. Nodes are never removed (:math:`N_s` only matters
    for isolated nodes, which PyG keeps).

    Args:
        alpha (float, optional): the degree exponent. (default: :obj:`0.86`)
        d_min (int, optional): degrees kept in full. (default: :obj:`10`)
        d_max (int, optional): cap of the target degree. (default: :obj:`10000`)
        seed (int, optional): random seed. (default: :obj:`0`)
        edge_types (List[Tuple[str, str, str]], optional): edge types to prune
            (their reverses follow). (default: :obj:`None`: all)
        progress (bool, optional): :obj:`False` hides the progress bar, shown
            otherwise when the work takes more than a second.
            (default: :obj:`None`)
    """

    def __init__(
        self,
        alpha: float = 0.86,
        d_min: int = 10,
        d_max: int = 10000,
        seed: int = 0,
        edge_types: Sequence[EdgeType] | None = None,
        progress: bool | None = None,
    ) -> None:
        args = check_prune_args(alpha, d_min, d_max, seed)
        self.alpha, self.d_min = args["alpha"], args["d_min"]
        self.d_max, self.seed = args["d_max"], args["seed"]
        if edge_types is not None:
            if isinstance(edge_types, (str, tuple)) or not isinstance(
                edge_types, Sequence
            ):
                raise TypeError(
                    f"edge_types must be a list of (src, rel, dst) edge types, "
                    f"got {edge_types!r}"
                )
            for et in edge_types:
                if not isinstance(et, (tuple, list)) or len(et) != 3:
                    raise TypeError(
                        f"edge_types entry must be a (src, rel, dst) tuple, got {et!r}"
                    )
        self.edge_types = None if edge_types is None else [tuple(e) for e in edge_types]
        self.progress = progress

    def _mask(self, edge_index: Tensor, num_src: int) -> Tensor:
        return degree_prune(
            edge_index,
            num_src,
            alpha=self.alpha,
            d_min=self.d_min,
            d_max=self.d_max,
            seed=self.seed,
        )

    def _symmetric_mask(self, edge_index: Tensor, num_nodes: int) -> Tensor:
        mask = self._mask(edge_index, num_nodes)
        src, dst = edge_index[0], edge_index[1]
        lo, hi = torch.minimum(src, dst), torch.maximum(src, dst)
        num_edges = src.numel()
        priority = (src > dst).long() * num_edges + torch.arange(num_edges)
        return _consistent(_keys(lo, hi, num_nodes), priority, mask)

    def forward(self, data: HeteroData | Data) -> HeteroData | Data:
        if isinstance(data, Data):
            if data.is_cuda:
                raise ValueError("DegreePrune runs on CPU data; call data.cpu() first")
            if self.edge_types is not None:
                raise ValueError("edge_types is for heterogeneous data")
            if data.edge_index is not None:
                _apply(
                    data._store, self._symmetric_mask(data.edge_index, data.num_nodes)
                )
            return data
        if not isinstance(data, HeteroData):
            raise TypeError(
                f"DegreePrune expects HeteroData or Data, got {type(data).__name__}"
            )
        if data.is_cuda:
            raise ValueError("DegreePrune runs on CPU data; call data.cpu() first")
        chosen = list(data.edge_types) if self.edge_types is None else self.edge_types
        for et in chosen:
            if et not in data.edge_types:
                raise ValueError(
                    f"DegreePrune: edge type {et} is not in the data (edge types: "
                    f"{data.edge_types})"
                )
        done: set[EdgeType] = set()
        with tqdm(
            total=len(chosen),
            desc="DegreePrune",
            delay=1.0,
            disable=self.progress is False,
        ) as bar:
            for et in chosen:
                bar.update(1)
                if et in done:
                    continue
                done.add(et)
                src_t, _, dst_t = et
                ei = data[et].edge_index
                if src_t == dst_t:
                    _apply(data[et], self._symmetric_mask(ei, data[src_t].num_nodes))
                    continue
                mask = self._mask(ei, data[src_t].num_nodes)
                rev = find_reverse(et, data.edge_types)
                if rev is not None and rev not in done:
                    done.add(rev)
                    rei = data[rev].edge_index
                    rmask = self._mask(rei, data[dst_t].num_nodes)
                    n_dst = data[dst_t].num_nodes
                    keys = torch.cat(
                        [_keys(ei[0], ei[1], n_dst), _keys(rei[1], rei[0], n_dst)]
                    )
                    both = _consistent(
                        keys, torch.arange(keys.numel()), torch.cat([mask, rmask])
                    )
                    mask, rmask = both[: mask.numel()], both[mask.numel() :]
                    _apply(data[rev], rmask)
                _apply(data[et], mask)
        return data

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(alpha={self.alpha}, d_min={self.d_min}, "
            f"d_max={self.d_max}, seed={self.seed}, edge_types={self.edge_types})"
        )
