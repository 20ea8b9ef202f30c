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
    sharing its key, so duplicate copies agree."""
    if keys.numel() == 0:
        return mask
    uniq, inv = torch.unique(keys, return_inverse=True)
    perm = torch.argsort(priority)
    rank = torch.empty_like(perm)
    rank[perm] = torch.arange(perm.numel())
    first = torch.full((uniq.numel(),), perm.numel(), dtype=torch.long)
    first.scatter_reduce_(0, inv, rank, "amin")
    return mask[perm[first][inv]]


def _all_by_key(keys: Tensor, mask: Tensor) -> Tensor:
    """Every edge is kept iff every edge sharing its (pair) key is kept: the
    logical AND of the endpoints' decisions."""
    if keys.numel() == 0:
        return mask
    uniq, inv = torch.unique(keys, return_inverse=True)
    ok = torch.ones(uniq.numel(), dtype=torch.long)
    ok.scatter_reduce_(0, inv, mask.long(), "amin")
    return ok[inv].bool()


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

    Edges between two nodes are pruned by both endpoints, each with its own
    degree, as Algorithm 2 does on the undirected graph: an edge
    :math:`(u, v)` whose reverse :math:`(v, u)` is stored too (in the reverse
    edge type ``(dst, 'rev_' + rel, src)`` or the only edge type from ``dst``
    to ``src``, or in the same relation between nodes of one type) is kept iff
    :math:`u` keeps it among its :math:`d_u` out-edges *and* :math:`v` keeps
    it among its :math:`d_v`, and then both copies are kept. An edge and its
    reverse are thus kept or dropped together, the result does not depend on
    the order of the edge types, and a hub of degree :math:`d` linked to
    leaves of degree :math:`\le d_{\min}` keeps about :math:`d^{\alpha}` edges
    whichever side is listed first. Edges without a stored reverse are decided
    by their source alone; duplicate edges share one decision. The two sides
    of a pair of edge types draw from independent streams (``substream`` 0
    for the side whose source type sorts first, 1 for the other). Nodes are
    never removed (:math:`N_s` only matters for isolated nodes, which PyG
    keeps).

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

    def _mask(self, edge_index: Tensor, num_src: int, substream: int = 0) -> Tensor:
        return degree_prune(
            edge_index,
            num_src,
            alpha=self.alpha,
            d_min=self.d_min,
            d_max=self.d_max,
            seed=self.seed,
            substream=substream,
        )

    def _symmetric_mask(self, edge_index: Tensor, num_nodes: int) -> Tensor:
        """One relation between nodes of one type: the pair ``{u, v}`` is
        kept iff ``u`` keeps ``(u, v)`` and ``v`` keeps ``(v, u)`` (each
        side's stored copies share the first copy's decision)."""
        mask = self._mask(edge_index, num_nodes)
        src, dst = edge_index[0], edge_index[1]
        lo, hi = torch.minimum(src, dst), torch.maximum(src, dst)
        pair = _keys(lo, hi, num_nodes)
        side = (src > dst).long()
        mask = _consistent(pair * 2 + side, torch.arange(src.numel()), mask)
        return _all_by_key(pair, mask)

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
                n_dst = data[dst_t].num_nodes
                first = src_t < dst_t  # this side draws substream 0
                mask = self._mask(ei, data[src_t].num_nodes, 0 if first else 1)
                keys = _keys(ei[0], ei[1], n_dst)
                mask = _consistent(keys, torch.arange(keys.numel()), mask)
                rev = find_reverse(et, data.edge_types)
                if rev is not None and rev not in done:
                    done.add(rev)
                    rei = data[rev].edge_index
                    rmask = self._mask(rei, n_dst, 1 if first else 0)
                    rkeys = _keys(rei[1], rei[0], n_dst)
                    rmask = _consistent(rkeys, torch.arange(rkeys.numel()), rmask)
                    both = _all_by_key(
                        torch.cat([keys, rkeys]), torch.cat([mask, rmask])
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
