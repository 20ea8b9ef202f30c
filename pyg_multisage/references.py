r"""Non-learned references for the retrieval table: what a user gets for free.

Two rows of MultiSage's Table 2 need no training, and show what learning adds:

* **Raw features** (the table's *Textual* / *Visual* rows):
  :func:`raw_feature_embeddings` returns the targets' own input features,
  L2-normalized, as embeddings; ranking them by cosine with
  :func:`pyg_multisage.experiment.evaluate` (or
  :func:`~pyg_multisage.metrics.retrieval_metrics`) gives every column of
  the table.
* **Pixie** (Eksombatchai et al., WWW 2018; MultiSage §3.1: "graph-based
  ranking through aggregating random-walk visiting counts"): for every query,
  random walks from the query through the graph, and the pool ranked by how
  often each target was visited. :func:`pixie_visit_counts` counts the visits
  with :func:`~pyg_multisage.sampling.pinsage_walk` (walks of up to
  ``num_traversals`` target :math:`\to` context :math:`\to` target hops, each
  walk ending after a traversal with probability ``termination_prob``:
  Pixie's walk with restarts cut into the segments between restarts), once
  per context type, and sums the counts over the context types;
  :func:`pixie_metrics` ranks the pool by those counts. Pixie's early
  stopping and its multi-query boosting are left out: one query, a fixed
  number of walks.

Ranking by visit counts follows :func:`~pyg_multisage.metrics.retrieval_metrics`
exactly, with the visit count in place of the cosine: the positive's rank is
pessimistic, :math:`R_q = 1 + |\{j \notin \{q, p\} : s_j \ge s_p\}|`, so a
competitor that ties with the positive ranks above it. Targets a query's walks
never reach all score 0: when the positive is never reached, every other
target of the pool (query and positive excluded) ties with it and
:math:`R_q = N - |\{q, p\}| + 1`, the worst rank. ``MRR`` is PinSage's
scaled MRR :math:`\frac{1}{|P|}\sum 1/\lceil R_q / M_s\rceil` and ``REC@K``
the fraction with :math:`R_q \le K`, as there. The overlap metrics ``INT``,
``UNI``, ``JAC`` compare :math:`\text{Top}_K(q)` and :math:`\text{Top}_K(p)`,
the :math:`K` targets with the highest counts from walks started at
:math:`q` resp. :math:`p` (ties, including the unvisited targets at 0, to
the lower id; a node never retrieves itself), as there. The distance columns
(``DC+``, ``DC*``, ``DE+``, ``DE*``) need embeddings, which Pixie does not
have (N/A in the paper's table too): :func:`pixie_metrics` leaves them out.

This module sits below :mod:`pyg_multisage.metrics` in the layer table
(it reads graphs, sampling kernels and the metrics' definitions).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import HeteroData

from pyg_multisage._checks import as_index_array, check_int, check_matrix
from pyg_multisage.convention import is_importance_edge_type
from pyg_multisage.graph import HeteroCSR
from pyg_multisage.sampling import NeighborTable, check_pinsage_walk_args, pinsage_walk

__all__ = [
    "PIXIE_COLUMNS",
    "pixie_metrics",
    "pixie_visit_counts",
    "raw_feature_embeddings",
    "visit_count_ranks",
]

#: The columns :func:`pixie_metrics` reports (Table 2's Pixie row).
PIXIE_COLUMNS = ("MRR", "REC@1", "REC@10", "INT", "UNI", "JAC")


def raw_feature_embeddings(x: Tensor) -> Tensor:
    """The targets' own features as embeddings: :obj:`x` L2-normalized per row
    (float32), ready for :func:`pyg_multisage.experiment.evaluate`; no
    training. A zero row stays zero (cosine 0 with everything).

    Args:
        x (torch.Tensor): Input features :math:`[N, F]`.
    """
    check_matrix(x, "x")
    finite = torch.isfinite(x).all(dim=1)
    if not bool(finite.all()):
        row = int((~finite).nonzero()[0, 0])
        raise ValueError(f"x holds non-finite values (NaN or inf) in row {row}")
    return F.normalize(x.float(), dim=1)


def _walk_graph(
    graph: HeteroData | HeteroCSR, target: str, contexts: Sequence[str]
) -> HeteroCSR:
    if isinstance(graph, HeteroCSR):
        return graph
    if not isinstance(graph, HeteroData):
        raise TypeError(
            f"graph must be a HeteroData or a HeteroCSR, got {type(graph).__name__}"
        )
    rels = [
        et
        for et in graph.edge_types
        if any({et[0], et[2]} == {target, c} for c in contexts)
        and not is_importance_edge_type(graph, et)
    ]
    return HeteroCSR.from_data(graph, edge_types=rels)


def _contexts(contexts: object) -> list[str]:
    ctx = [contexts] if isinstance(contexts, str) else contexts
    if (
        not isinstance(ctx, Sequence)
        or len(ctx) == 0
        or not all(isinstance(c, str) for c in ctx)
    ):
        raise TypeError(
            f"contexts must be a node type or a non-empty sequence of them, "
            f"got {contexts!r}"
        )
    if len(set(ctx)) != len(ctx):
        raise ValueError(f"contexts lists a node type twice: {list(ctx)}")
    return list(ctx)


def pixie_visit_counts(
    graph: HeteroData | HeteroCSR,
    seeds: Tensor | np.ndarray | Sequence[int],
    *,
    target: str,
    contexts: str | Sequence[str],
    num_walks: int = 3000,
    num_traversals: int = 3,
    termination_prob: float = 0.5,
    seed: int = 0,
    num_threads: int | None = None,
) -> NeighborTable:
    r"""Pixie's visit counts: for every seed, the number of times random walks
    from it reach each target, summed over the context types.

    For every context type :math:`c`,
    :func:`~pyg_multisage.sampling.pinsage_walk` runs :obj:`num_walks` walks
    of up to :obj:`num_traversals` traversals target :math:`\to c \to`
    target from the seed (terminating after each traversal with probability
    :obj:`termination_prob`) and counts every target reached, the seed
    excepted; with :math:`P_c` the one-traversal transition matrix via
    :math:`c` and :math:`p` the termination probability, the expected score is

    .. math::
        \mathbb{E}[s_v(u)] = \kappa \sum_c \sum_{t=1}^{T}
        (1 - p)^{t-1} (P_c^t)_{vu}.

    Every visited target is kept (nothing is cut to a top-k).

    Args:
        graph (HeteroData or HeteroCSR): The graph; the relations between
            :obj:`target` and each context type are walked (importance-neighbor
            edges of a :class:`HeteroData` are ignored).
        seeds (Tensor or array): ``[S]`` target ids, the queries.
        target (str): The target node type.
        contexts (str or Sequence[str]): The context types walked through.
        num_walks (int, optional): Walks per seed and context type
            :math:`\kappa`. (default: :obj:`3000`)
        num_traversals (int, optional): Maximum traversals per walk :math:`T`.
            (default: :obj:`3`)
        termination_prob (float, optional): :math:`p`. (default: :obj:`0.5`)
        seed (int, optional): Random seed of the walks. (default: :obj:`0`)
        num_threads (int, optional): Numba threads (default: Numba's).

    Returns:
        :class:`~pyg_multisage.sampling.NeighborTable` (no context), one row
        per seed, sorted by count descending, ties by id ascending; the
        :obj:`weight` holds the summed visit counts.
    """
    ctx = _contexts(contexts)
    if not isinstance(target, str):
        raise TypeError(f"target must be a node type (str), got {target!r}")
    csr = _walk_graph(graph, target, ctx)
    for c in ctx:
        check_pinsage_walk_args(
            target, c, num_walks, num_traversals, termination_prob, 1, seed, csr=csr
        )
    seed_ids = as_index_array(seeds, "seeds", csr.num_nodes[target])
    n = csr.num_nodes[target]
    # A walk counts at most one target per traversal: keep every visited one.
    keep = int(num_walks) * int(num_traversals)
    if keep * len(ctx) > 2**24:
        raise ValueError(
            f"num_walks * num_traversals * len(contexts) = {keep * len(ctx)} "
            "exceeds 2**24: the counts would not be exact in the float32 weights"
        )
    keep = max(1, min(keep, n - 1))
    rows, nbrs, counts = [], [], []
    for c in ctx:
        table = pinsage_walk(
            csr,
            seed_ids,
            target=target,
            context=c,
            num_walks=num_walks,
            num_traversals=num_traversals,
            termination_prob=termination_prob,
            num_neighbors=keep,
            seed=seed,
            num_threads=num_threads,
        )
        deg = (table.ptr[1:] - table.ptr[:-1]).numpy()
        rows.append(np.repeat(np.arange(len(seed_ids), dtype=np.int64), deg))
        nbrs.append(table.neighbor.numpy())
        counts.append(table.weight.numpy().astype(np.int64))
    row, nbr, cnt = np.concatenate(rows), np.concatenate(nbrs), np.concatenate(counts)
    key, inverse = np.unique(row * n + nbr, return_inverse=True)
    total = np.bincount(inverse, weights=cnt, minlength=len(key)).astype(np.int64)
    row, nbr = key // n, key % n
    order = np.lexsort((nbr, -total, row))
    row, nbr, total = row[order], nbr[order], total[order]
    count = np.bincount(row, minlength=len(seed_ids))
    ptr = np.zeros(len(seed_ids) + 1, np.int64)
    np.cumsum(count, out=ptr[1:])
    return NeighborTable(
        seeds=torch.from_numpy(seed_ids.copy()),
        ptr=torch.from_numpy(ptr),
        neighbor=torch.from_numpy(nbr.astype(np.int64)),
        weight=torch.from_numpy(total.astype(np.float32)),
    )


def _pair_ids(pairs: object, num_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(pairs, Tensor) or pairs.dim() != 2 or pairs.size(0) != 2:
        shape = list(pairs.shape) if isinstance(pairs, Tensor) else type(pairs).__name__
        raise ValueError(
            f"pairs must be a [2, P] tensor of (query, positive), got {shape}"
        )
    if pairs.size(1) == 0:
        raise ValueError("pairs must hold at least one (query, positive) pair")
    q = as_index_array(pairs[0], "pairs[0] (queries)", num_nodes)
    p = as_index_array(pairs[1], "pairs[1] (positives)", num_nodes)
    return q, p


def visit_count_ranks(
    table: NeighborTable, positive: Tensor, query: Tensor, num_nodes: int
) -> Tensor:
    r"""Pessimistic rank of each positive among the pool of all
    :obj:`num_nodes` targets, scored by the visit counts of its query's row:
    :math:`R = 1 + |\{j \notin \{q, p\} : s_j \ge s_p\}|` with :math:`s_j = 0`
    for a target the row does not list (the rule of
    :func:`~pyg_multisage.metrics.retrieval_metrics`).

    Args:
        table (NeighborTable): Row :math:`i` holds the counts of query
            :math:`i` (e.g. :func:`pixie_visit_counts`).
        positive (torch.Tensor): ``[B]`` positive ids, one per row.
        query (torch.Tensor): ``[B]`` query ids, one per row (excluded from
            the competitors like the positive).
        num_nodes (int): Size :math:`N` of the pool.

    Returns:
        ``int64 [B]`` ranks in ``[1, N]``.
    """
    n = check_int(num_nodes, "num_nodes", 1)
    b = table.num_seeds
    p = torch.as_tensor(as_index_array(positive, "positive", n))
    q = torch.as_tensor(as_index_array(query, "query", n))
    if p.numel() != b or q.numel() != b:
        raise ValueError(
            f"positive and query must hold one id per table row ({b}), "
            f"got {p.numel()} and {q.numel()}"
        )
    deg = table.ptr[1:] - table.ptr[:-1]
    row = torch.repeat_interleave(torch.arange(b), deg)
    nbr, w = table.neighbor, table.weight.double()
    s_pos = torch.zeros(b, dtype=torch.float64)
    is_pos = nbr == p[row]
    s_pos[row[is_pos]] = w[is_pos]
    other = (nbr != p[row]) & (nbr != q[row])
    beats = torch.zeros(b, dtype=torch.int64)
    beats.index_add_(0, row, (other & (w >= s_pos[row])).long())
    # Never reached: every target outside {q, p} ties with the positive at 0.
    unseen = n - 1 - (q != p).long()
    return torch.where(s_pos > 0, beats, unseen) + 1


def _top_k(table: NeighborTable, i: int, k: int, n: int) -> set[int]:
    """The ``k`` targets with the highest counts in row ``i`` (ties to the
    lower id, the unvisited at 0 after every visited one), its seed excluded."""
    lo, hi = int(table.ptr[i]), int(table.ptr[i + 1])
    own = int(table.seeds[i])
    visited = [u for u in table.neighbor[lo:hi].tolist() if u != own]
    top = visited[:k]
    if len(top) < k:
        seen = set(visited)
        seen.add(own)
        u = 0
        while len(top) < k and u < n:
            if u not in seen:
                top.append(u)
            u += 1
    return set(top)


def pixie_metrics(
    graph: HeteroData | HeteroCSR,
    pairs: Tensor,
    *,
    target: str,
    contexts: str | Sequence[str],
    num_walks: int = 3000,
    num_traversals: int = 3,
    termination_prob: float = 0.5,
    seed: int = 0,
    ks: Sequence[int] = (1, 10),
    mrr_scale: float = 10.0,
    topk_overlap_k: int = 100,
    num_threads: int | None = None,
    chunk_size: int = 1024,
) -> dict[str, float]:
    r"""MultiSage Table 2's Pixie row: the ranking metrics of query–positive
    :obj:`pairs` when the pool of all targets is ranked by the query's visit
    counts (:func:`pixie_visit_counts`), with no training.

    Ranks, ties and metrics follow
    :func:`~pyg_multisage.metrics.retrieval_metrics` (module docstring):
    ``MRR`` (scaled by :obj:`mrr_scale`), ``REC@K`` for each :math:`K` in
    :obj:`ks`, and ``INT`` / ``UNI`` / ``JAC`` of the top
    :obj:`topk_overlap_k` by the counts of walks from the query and from the
    positive (``0`` skips them and the positives' walks). No distance columns.

    Args:
        graph (HeteroData or HeteroCSR): The graph.
        pairs (torch.Tensor): ``[2, P]`` (query, positive) target ids.
        target, contexts, num_walks, num_traversals, termination_prob, seed,
            num_threads: as in :func:`pixie_visit_counts`.
        ks (Sequence[int], optional): Cut-offs of ``REC@K``.
            (default: :obj:`(1, 10)`)
        mrr_scale (float, optional): :math:`M_s`. (default: :obj:`10.0`)
        topk_overlap_k (int, optional): :math:`K` of the overlap metrics, or
            ``0``. (default: :obj:`100`)
    """
    ctx = _contexts(contexts)
    if not isinstance(target, str):
        raise TypeError(f"target must be a node type (str), got {target!r}")
    csr = _walk_graph(graph, target, ctx)
    n = csr.num_nodes[target]
    ks = tuple(check_int(k, f"ks[{i}]", 1) for i, k in enumerate(ks))
    if len(ks) == 0:
        raise ValueError("ks must not be empty")
    if not (isinstance(mrr_scale, (int, float)) and mrr_scale > 0):
        raise ValueError(f"mrr_scale must be a positive number, got {mrr_scale}")
    k_top = check_int(topk_overlap_k, "topk_overlap_k", 0)
    q, p = _pair_ids(pairs, n)
    walk = dict(
        target=target,
        contexts=ctx,
        num_walks=num_walks,
        num_traversals=num_traversals,
        termination_prob=termination_prob,
        seed=seed,
        num_threads=num_threads,
    )
    cs = check_int(chunk_size, "chunk_size", 1)
    k_top = min(k_top, n - 1)
    uq, q_row = np.unique(q, return_inverse=True)
    q_row = q_row.reshape(-1)
    order = np.argsort(q_row, kind="stable")  # pairs grouped by query chunk
    bounds = np.searchsorted(q_row[order], np.arange(0, len(uq) + cs, cs))
    ranks = torch.empty(len(q), dtype=torch.int64)
    q_sets: list[set[int]] = []
    for j, a in enumerate(range(0, len(uq), cs)):
        table = pixie_visit_counts(csr, uq[a : a + cs], **walk)
        sel = order[bounds[j] : bounds[j + 1]]
        rows = _select_rows(table, torch.from_numpy(q_row[sel] - a))
        ranks[torch.from_numpy(sel)] = visit_count_ranks(
            rows, torch.from_numpy(p[sel]), torch.from_numpy(q[sel]), n
        )
        q_sets += [_top_k(table, i, k_top, n) for i in range(table.num_seeds)]
    rf = ranks.double()
    out: dict[str, float] = {
        "MRR": (1.0 / torch.ceil(rf / float(mrr_scale))).mean().item()
    }
    for k in ks:
        out[f"REC@{k}"] = (ranks <= k).double().mean().item()
    if k_top > 0:
        up, p_row = np.unique(p, return_inverse=True)
        p_sets: list[set[int]] = []
        for a in range(0, len(up), cs):
            table = pixie_visit_counts(csr, up[a : a + cs], **walk)
            p_sets += [_top_k(table, i, k_top, n) for i in range(table.num_seeds)]
        inter = np.array(
            [
                len(q_sets[a] & p_sets[c])
                for a, c in zip(q_row, p_row.reshape(-1), strict=True)
            ],
            dtype=np.float64,
        )
        union = 2 * k_top - inter
        out["INT"] = float(inter.mean())
        out["UNI"] = float(union.mean())
        out["JAC"] = float((inter / union).mean())
    return out


def _select_rows(table: NeighborTable, rows: Tensor) -> NeighborTable:
    """The table's rows :obj:`rows` (repeats allowed), in that order."""
    deg = table.ptr[1:] - table.ptr[:-1]
    d = deg[rows]
    ptr = torch.zeros(rows.numel() + 1, dtype=torch.int64)
    torch.cumsum(d, 0, out=ptr[1:])
    start = table.ptr[rows]
    offs = torch.arange(int(ptr[-1])) - torch.repeat_interleave(ptr[:-1], d)
    idx = torch.repeat_interleave(start, d) + offs
    return NeighborTable(
        seeds=table.seeds[rows],
        ptr=ptr,
        neighbor=table.neighbor[idx],
        weight=table.weight[idx],
    )
