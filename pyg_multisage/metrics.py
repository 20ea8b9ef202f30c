r"""The evaluation metrics of MultiSage §3.1 and OmniSage §4.2.1.

* :func:`retrieval_metrics` — MultiSage's offline table (Table 2): scaled MRR,
  recall@K, the cosine / Euclidean distances DC+, DC*, DE+, DE*, and the
  top-K overlap INT, UNI, JAC, from an exact cosine ranking over a candidate
  pool computed in chunks (a 1M x 256 pool needs only the pool itself plus a
  few hundred MB of scratch).
* :func:`recall_at_k` — OmniSage's recall@k of the positive against a set of
  random negatives.
* :func:`random_ranking_metrics` — the expected MRR and recall@K of a
  random ranking of the same pool, the reference to read the first two by.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from pyg_multisage._checks import check_int, check_matrix

__all__ = ["random_ranking_metrics", "recall_at_k", "retrieval_metrics"]

_LOW32 = (1 << 32) - 1
_MIN64 = -(2**63)


def _sort_keys(scores: Tensor, index: Tensor) -> Tensor:
    """``int64`` keys ordering ``(score desc, index asc)`` exactly.

    The float32 bits of a score are mapped to an ``int32`` of the same order;
    the low 32 bits hold ``2**32 - 1 - index``, so equal scores rank the
    lower pool index first.
    """
    bits = (scores.float() + 0.0).view(torch.int32)  # + 0.0 folds -0.0 into 0.0
    mono = torch.where(bits >= 0, bits, bits ^ 0x7FFFFFFF).to(torch.int64)
    return mono * (1 << 32) + (_LOW32 - index)


def _excluded_keys(scores: Tensor, index: Tensor) -> Tensor:
    """:func:`_sort_keys` with the excluded entries (score ``-inf``) at
    :data:`_MIN64`, below every other key."""
    keys = _sort_keys(scores, index)
    return keys.masked_fill_(scores == -math.inf, _MIN64)


def _topk_keys(scores: Tensor, index: Tensor, k: int, margin: int = 16) -> Tensor:
    """The :obj:`k` largest :func:`_excluded_keys` of each row, unsorted.

    The keys of a whole ``[rows, N]`` block cost more than the ranking itself,
    so the float top-``k + margin`` of each row is taken first and only those
    candidates get keys. That is exact where the last candidate scores
    strictly below the ``k``-th (then every other entry ranks below ``k``
    candidates); rows where ties reach past the candidates take the keys of
    the whole row.
    """
    k2 = min(scores.shape[1], k + margin)
    if k == 0 or k2 == scores.shape[1]:
        return _excluded_keys(scores, index).topk(k, dim=1, sorted=False).values
    vals, cols = scores.topk(k2, dim=1, sorted=True)
    best = _excluded_keys(vals, index[cols]).topk(k, dim=1, sorted=False).values
    tied = ~(vals[:, k2 - 1] < vals[:, k - 1])  # NaN counts as tied
    if bool(tied.any()):
        rows = tied.nonzero().squeeze(1)
        full = _excluded_keys(scores[rows], index)
        best[rows] = full.topk(k, dim=1, sorted=False).values
    return best


def _key_index(keys: Tensor) -> Tensor:
    return _LOW32 - (keys & _LOW32)


@torch.no_grad()
def retrieval_metrics(
    query: Tensor,
    positive: Tensor,
    pool: Tensor,
    *,
    positive_index: Tensor | None = None,
    query_index: Tensor | None = None,
    ks: Sequence[int] = (1, 10),
    mrr_scale: float = 10.0,
    topk_overlap_k: int = 100,
    tie_tol: float = 1e-6,
    num_distance_pairs: int = 100_000,
    seed: int = 0,
    query_chunk_size: int = 256,
    pool_chunk_size: int = 16384,
) -> dict[str, float]:
    r"""The offline metrics of MultiSage §3.1 (Table 2) for query–positive pairs.

    Every query :math:`q` is ranked against the :obj:`pool` by exact cosine
    similarity. With :math:`s_j = \cos(q, \text{pool}_j)` and
    :math:`s^+ = \cos(q, p)`, the positive's rank is **pessimistic** — a
    competitor that ties with the positive ranks above it:

    .. math::
        R_{q} = 1 + |\{ j \notin E_q : s_j \ge s^+ - \text{tol} \}|,

    where :math:`E_q` holds the positive's own row (:obj:`positive_index`,
    so the positive is never its own competitor) and the query's own row
    (:obj:`query_index`). The metrics are

    * ``MRR``: PinSage's scaled MRR,
      :math:`\frac{1}{|P|}\sum 1 / \lceil R_q / M_s \rceil` with
      :math:`M_s` = :obj:`mrr_scale`;
    * ``REC@K`` for each :math:`K` in :obj:`ks`: the fraction with
      :math:`R_q \le K`;
    * ``DC+`` / ``DE+``: the mean cosine distance :math:`1 - \cos` /
      Euclidean distance between query and positive, and ``DC*`` / ``DE*``
      the same over distinct pairs of pool nodes. Euclidean distances are
      taken between L2-normalized embeddings (the paper's table satisfies
      :math:`DE^* \approx \sqrt{2\,DC^*}`). ``DC*`` is exact (from the sum of
      the normalized pool vectors); ``DE*`` is exact when the pool has at
      most :obj:`num_distance_pairs` distinct pairs, otherwise the mean over
      :obj:`num_distance_pairs` uniformly drawn distinct pairs (seeded by
      :obj:`seed`);
    * ``INT`` / ``UNI`` / ``JAC``: with :math:`\text{Top}_K(x)` the
      :math:`K` = :obj:`topk_overlap_k` pool rows most cosine-similar to
      :math:`x` (ties to the lower pool index; a query never retrieves its
      own row :obj:`query_index`, a positive never its own row
      :obj:`positive_index`), the mean size of
      :math:`\text{Top}_K(q) \cap \text{Top}_K(p)`, of the union, and the
      mean per-pair Jaccard index. The default :math:`K = 100` is read off
      MultiSage's Table 2, where INT + UNI :math:`\approx 198 \approx 2K`.
      :math:`K` is capped by the number of pool rows left after exclusion.
      With :obj:`topk_overlap_k` ``0`` they are ``nan`` and only the
      queries are scored against the pool: about a sixth of the work, for a
      validation pass that reads ``MRR`` and ``REC@K`` alone (their values
      are the same).

    Args:
        query (torch.Tensor): Query embeddings :math:`[B, d]`.
        positive (torch.Tensor): Positive embeddings :math:`[B, d]`.
        pool (torch.Tensor): Candidate pool :math:`[N, d]`.
        positive_index (torch.Tensor, optional): Row of each positive in
            :obj:`pool` :math:`[B]`. (default: :obj:`None`)
        query_index (torch.Tensor, optional): Row of each query in
            :obj:`pool` :math:`[B]`. (default: :obj:`None`)
        ks (Sequence[int], optional): Cut-offs of ``REC@K``.
            (default: :obj:`(1, 10)`)
        mrr_scale (float, optional): :math:`M_s`. (default: :obj:`10.0`)
        topk_overlap_k (int, optional): :math:`K` of the overlap metrics;
            ``0`` skips them. (default: :obj:`100`)
        tie_tol (float, optional): Cosine scores within this tolerance of the
            positive's count as ties (absorbs float rounding between
            kernels). (default: :obj:`1e-6`)
        num_distance_pairs (int, optional): Budget of pool pairs for
            ``DE*``. (default: :obj:`100_000`)
        seed (int, optional): Seed of the ``DE*`` pair sample.
            (default: :obj:`0`)
        query_chunk_size (int, optional): Queries ranked at a time.
            (default: :obj:`256`)
        pool_chunk_size (int, optional): Pool rows scored at a time.
            (default: :obj:`16384`)
    """
    b, n = _check_inputs(query, positive, pool)
    ks = tuple(check_int(k, f"ks[{i}]", 1) for i, k in enumerate(ks))
    if len(ks) == 0:
        raise ValueError("ks must not be empty")
    if not (isinstance(mrr_scale, (int, float)) and mrr_scale > 0):
        raise ValueError(f"mrr_scale must be a positive number, got {mrr_scale}")
    k_top = check_int(topk_overlap_k, "topk_overlap_k", 0)
    qc, pc = (
        check_int(query_chunk_size, "query_chunk_size", 1),
        check_int(pool_chunk_size, "pool_chunk_size", 1),
    )
    pos_idx = _check_index(positive_index, "positive_index", b, n, pool.device)
    qry_idx = _check_index(query_index, "query_index", b, n, pool.device)
    if b == 0:
        raise ValueError("query must hold at least one row")

    qn = F.normalize(query.float(), dim=1)
    pn = F.normalize(positive.float(), dim=1)
    pool_n = F.normalize(pool.float(), dim=1)
    s_pos = (qn * pn).sum(1)
    excl = 1 if (pos_idx is not None or qry_idx is not None) else 0
    k_top = min(k_top, n - excl)

    ranks = torch.empty(b, dtype=torch.int64, device=pool.device)
    inter = torch.zeros(b, dtype=torch.int64, device=pool.device)
    for start in range(0, b, qc):
        end = min(start + qc, b)
        m = end - start
        rows = torch.arange(m, device=pool.device)
        # Queries, then positives (their top-K only).
        x = torch.cat([qn[start:end], pn[start:end]]) if k_top > 0 else qn[start:end]
        thr = s_pos[start:end].unsqueeze(1) - tie_tol
        count = torch.zeros(m, dtype=torch.int64, device=pool.device)
        best = None
        for p0 in range(0, n, pc):
            p1 = min(p0 + pc, n)
            s = x @ pool_n[p0:p1].t()  # [2m or m, chunk]
            # Exclusions: positive's and query's own rows for the ranking and
            # the query's top-K; positive's own row for the positive's top-K.
            sq = s[:m]
            hit = torch.zeros_like(sq, dtype=torch.bool)
            for ix in (pos_idx, qry_idx):
                if ix is None:
                    continue
                loc = ix[start:end] - p0
                ok = (loc >= 0) & (loc < p1 - p0)
                hit[rows[ok], loc[ok]] = True
            count += ((sq >= thr) & ~hit).sum(1)
            if k_top > 0:
                sf = s + 0.0  # a copy; + 0.0 folds -0.0 into 0.0
                for ix, off in ((qry_idx, 0), (pos_idx, m)):
                    if ix is None:
                        continue
                    loc = ix[start:end] - p0
                    ok = (loc >= 0) & (loc < p1 - p0)
                    sf[rows[ok] + off, loc[ok]] = -math.inf
                kk = min(k_top, p1 - p0)
                keys = _topk_keys(sf, torch.arange(p0, p1, device=pool.device), kk)
                cand = keys if best is None else torch.cat([best, keys], 1)
                best = cand.topk(min(k_top, cand.shape[1]), dim=1, sorted=False).values
        ranks[start:end] = count + 1
        if k_top > 0:
            top = _key_index(best)
            both = torch.cat([top[:m], top[m:]], 1).sort(1).values
            inter[start:end] = (both[:, 1:] == both[:, :-1]).sum(1)

    out: dict[str, float] = {}
    rf = ranks.double()
    out["MRR"] = (1.0 / torch.ceil(rf / float(mrr_scale))).mean().item()
    for k in ks:
        out[f"REC@{k}"] = (ranks <= k).double().mean().item()
    cos_pos = s_pos.double()
    out["DC+"] = (1.0 - cos_pos).mean().item()
    out["DE+"] = (qn.double() - pn.double()).norm(dim=1).mean().item()
    dc, de = _pool_distances(pool_n, num_distance_pairs, seed)
    out["DC*"], out["DE*"] = dc, de
    if k_top > 0:
        union = 2 * k_top - inter
        out["INT"] = inter.double().mean().item()
        out["UNI"] = union.double().mean().item()
        out["JAC"] = (inter.double() / union.double()).mean().item()
    else:
        out["INT"] = out["UNI"] = out["JAC"] = float("nan")
    return out


def random_ranking_metrics(
    num_competitors: int | Sequence[int] | Tensor,
    *,
    ks: Sequence[int] = (1, 10),
    mrr_scale: float = 10.0,
) -> dict[str, float]:
    r"""The expected ``MRR`` and ``REC@K`` of :func:`retrieval_metrics` when
    the pool is ranked at random: the reference a trained model's numbers
    are read against.

    With :math:`C` competitors (pool rows other than the excluded ones, see
    :func:`retrieval_metrics`), a random ranking puts the positive at a rank
    :math:`R` uniform on :math:`\{1, \dots, C + 1\}`, so

    .. math::
        \mathbb{E}[\text{MRR}] = \frac{1}{C + 1} \sum_{r=1}^{C+1}
        \frac{1}{\lceil r / M_s \rceil}, \qquad
        \mathbb{E}[\text{REC@}K] = \frac{\min(K, C + 1)}{C + 1},

    averaged over the pairs when :math:`C` differs per pair.

    Args:
        num_competitors (int or Sequence[int] or Tensor): :math:`C`, one
            value for all pairs or one per pair. For the pool of all ``N``
            nodes with the query's and the positive's rows excluded it is
            ``N - 2`` (``N - 1`` when the query is its own positive).
        ks (Sequence[int], optional): Cut-offs of ``REC@K``.
            (default: :obj:`(1, 10)`)
        mrr_scale (float, optional): :math:`M_s`. (default: :obj:`10.0`)

    Returns:
        dict[str, float]: ``MRR`` and ``REC@K`` for each :math:`K`.
    """
    ks = tuple(check_int(k, f"ks[{i}]", 1) for i, k in enumerate(ks))
    if not (isinstance(mrr_scale, (int, float)) and mrr_scale > 0):
        raise ValueError(f"mrr_scale must be a positive number, got {mrr_scale}")
    if isinstance(num_competitors, Tensor):
        counts = num_competitors.detach().cpu().flatten().tolist()
    elif isinstance(num_competitors, Sequence):
        counts = list(num_competitors)
    else:
        counts = [num_competitors]
    if not counts:
        raise ValueError("num_competitors must hold at least one value")
    counts = [check_int(c, "num_competitors", 0) for c in counts]
    mrr: dict[int, float] = {}
    for c in set(counts):
        r = torch.arange(1, c + 2, dtype=torch.float64)
        mrr[c] = (1.0 / torch.ceil(r / float(mrr_scale))).mean().item()
    out = {"MRR": sum(mrr[c] for c in counts) / len(counts)}
    for k in ks:
        out[f"REC@{k}"] = sum(min(k, c + 1) / (c + 1) for c in counts) / len(counts)
    return out


def _pool_distances(pool_n: Tensor, budget: int, seed: int) -> tuple[float, float]:
    """Mean cosine (exact) and Euclidean (exact or sampled) distance over
    distinct pairs of the (normalized) pool."""
    n = pool_n.shape[0]
    if n < 2:
        return float("nan"), float("nan")
    step = 65536
    total = torch.zeros(pool_n.shape[1], dtype=torch.float64, device=pool_n.device)
    sq_sum = 0.0
    for i0 in range(0, n, step):  # float64 sums, one chunk converted at a time
        blk = pool_n[i0 : i0 + step].double()
        total += blk.sum(0)
        sq_sum += (blk * blk).sum().item()
    # sum_{i != j} u_i . u_j = |sum u|^2 - sum |u|^2
    mean_cos = ((total @ total).item() - sq_sum) / (n * (n - 1))
    dc = 1.0 - mean_cos
    num_pairs = n * (n - 1) // 2
    if num_pairs <= budget:  # exact: n is at most ~1,400 here
        pd = pool_n.double()
        sq = (pd * pd).sum(1)
        d2 = sq[:, None] + sq[None] - 2.0 * (pd @ pd.t())
        dist = d2.clamp_min(0.0).sqrt()
        dist.fill_diagonal_(0.0)
        de = dist.sum().item() / (n * (n - 1))
    else:
        gen = torch.Generator(device="cpu").manual_seed(int(seed))
        i = torch.randint(0, n, (budget,), generator=gen)
        j = torch.randint(0, n - 1, (budget,), generator=gen)
        j = j + (j >= i).long()  # uniform over j != i
        i, j = i.to(pool_n.device), j.to(pool_n.device)
        de = 0.0
        for s0 in range(0, budget, step):
            a, c = i[s0 : s0 + step], j[s0 : s0 + step]
            de += (pool_n[a] - pool_n[c]).norm(dim=1).double().sum().item()
        de /= budget
    return dc, de


@torch.no_grad()
def recall_at_k(
    query: Tensor,
    positive: Tensor,
    negatives: Tensor,
    k: int = 10,
    *,
    chunk_size: int = 65536,
) -> float:
    r"""Recall@k against random negatives (OmniSage §4.2.1).

    .. math::
        \text{recall}_k(Q, P, N) = \frac{1}{|Q|} \sum_i \mathbb{1}\big\{
        |\{ n \in N : s(Q_i, n) \ge s(Q_i, P_i) \}| < k \big\}

    with the plain dot product :math:`s(a, b) = a^\top b` (no
    normalization); a negative that ties with the positive counts against it.

    Args:
        query (torch.Tensor): Query embeddings :math:`[B, d]`.
        positive (torch.Tensor): Positive embeddings :math:`[B, d]`.
        negatives (torch.Tensor): Random negatives :math:`[K, d]`, shared.
        k (int, optional): The cut-off. (default: :obj:`10`)
        chunk_size (int, optional): Negatives scored at a time.
            (default: :obj:`65536`)
    """
    b, _ = _check_inputs(query, positive, negatives, pool_name="negatives")
    k = check_int(k, "k", 1)
    cs = check_int(chunk_size, "chunk_size", 1)
    if b == 0:
        raise ValueError("query must hold at least one row")
    q = query.float()
    s_pos = (q * positive.float()).sum(1, keepdim=True)
    count = torch.zeros(b, dtype=torch.int64, device=query.device)
    for start in range(0, negatives.shape[0], cs):
        count += (q @ negatives[start : start + cs].float().t() >= s_pos).sum(1)
    return (count < k).double().mean().item()


def _check_inputs(
    query: Tensor, positive: Tensor, pool: Tensor, pool_name: str = "pool"
) -> tuple[int, int]:
    for x, name in ((query, "query"), (positive, "positive"), (pool, pool_name)):
        check_matrix(x, name)
        finite = torch.isfinite(x).all(dim=1)
        if not bool(finite.all()):
            row = int((~finite).nonzero()[0, 0])
            raise ValueError(
                f"{name} holds non-finite values (NaN or inf) in row {row} and "
                f"{int((~finite).sum()) - 1} other row(s); a NaN embedding would "
                "shift every rank silently"
            )
    if positive.shape != query.shape:
        raise ValueError(
            f"positive must have the shape of query {list(query.shape)}, "
            f"got {list(positive.shape)}"
        )
    if pool.shape[1] != query.shape[1]:
        raise ValueError(
            f"{pool_name} must have {query.shape[1]} columns, got {pool.shape[1]}"
        )
    if pool.shape[0] == 0:
        raise ValueError(f"{pool_name} must hold at least one row")
    if pool.shape[0] >= 2**32:
        raise ValueError(f"{pool_name} may hold at most 2**32 - 1 rows")
    return query.shape[0], pool.shape[0]


def _check_index(
    index: Tensor | None, name: str, b: int, n: int, device: torch.device
) -> Tensor | None:
    if index is None:
        return None
    index = torch.as_tensor(index)
    if index.is_floating_point() or index.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer row ids, got {index.dtype}")
    if index.dim() != 1 or index.numel() != b:
        raise ValueError(f"{name} must have shape [{b}], got {list(index.shape)}")
    index = index.to(device=device, dtype=torch.int64)
    if b and (int(index.min()) < 0 or int(index.max()) >= n):
        raise ValueError(f"{name} must hold rows in [0, {n}), got a value outside")
    return index
