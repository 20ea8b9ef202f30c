r"""Training objectives: max-margin ranking and sampled softmax with logQ correction.

* :func:`max_margin_loss` — the triplet objective of PinSage / MultiSage
  (MultiSage Eq. 3).
* :func:`sampled_softmax_loss` — OmniSage's contrastive loss (OmniSage Eq. 1)
  over in-batch plus random negatives, with the sampling-bias correction
  :math:`s(q, v) = \lambda \, q^\top v - \log Q(v)`, masking of accidental
  hits (a duplicate of the positive among the negatives) and, with
  ``chunk_size``, the memory-saving chunked computation of OmniSage §3.4.2,
  Algorithm 1.
* :class:`CountMinSketch` — the streaming frequency estimate (Cormode and
  Muthukrishnan, 2005) that gives :math:`Q(v)`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from pyg_multisage._checks import check_matrix

__all__ = [
    "CountMinSketch",
    "MaxMarginLoss",
    "SampledSoftmaxLoss",
    "max_margin_loss",
    "sampled_softmax_loss",
]


# ---------------------------------------------------------------------------
# Max-margin (MultiSage Eq. 3)
# ---------------------------------------------------------------------------


def max_margin_loss(
    query: Tensor,
    positive: Tensor,
    negative: Tensor,
    *,
    margin: float = 0.1,
    shared_negatives: bool = False,
) -> Tensor:
    r"""The max-margin triplet loss of MultiSage Eq. 3 (PinSage's objective).

    .. math::
        J(v_q, v_p, v_n) = \max\{0,\; h_{v_q}^\top h_{v_n}
        - h_{v_q}^\top h_{v_p} + \delta\}

    averaged over all triplets.

    Args:
        query (torch.Tensor): Query embeddings :math:`[B, d]`.
        positive (torch.Tensor): Positive embeddings :math:`[B, d]`, row
            :math:`i` the positive of query :math:`i`.
        negative (torch.Tensor): Negative embeddings: :math:`[B, d]` (one
            negative per query), :math:`[B, K, d]` (:math:`K` per query), or
            :math:`[K, d]` shared by every query when
            :obj:`shared_negatives=True`.
        margin (float, optional): The margin :math:`\delta`. (default:
            :obj:`0.1`)
        shared_negatives (bool, optional): If :obj:`True`, every query is
            contrasted with every row of :obj:`negative` (PinSage's shared
            mini-batch negatives). (default: :obj:`False`)
    """
    check_matrix(query, "query")
    check_matrix(positive, "positive")
    if positive.shape != query.shape:
        raise ValueError(
            f"positive must have the shape of query {list(query.shape)}, "
            f"got {list(positive.shape)}"
        )
    d = query.shape[1]
    pos = (query * positive).sum(-1)  # [B]
    if shared_negatives:
        check_matrix(negative, "negative")
        if negative.shape[1] != d:
            raise ValueError(f"negative must have {d} columns, got {negative.shape[1]}")
        neg = query @ negative.t()  # [B, K]
    elif negative.dim() == 2:
        if negative.shape != query.shape:
            raise ValueError(
                f"negative must have the shape of query {list(query.shape)} "
                f"(or pass shared_negatives=True), got {list(negative.shape)}"
            )
        neg = (query * negative).sum(-1, keepdim=True)  # [B, 1]
    elif negative.dim() == 3:
        if negative.shape[0] != query.shape[0] or negative.shape[2] != d:
            raise ValueError(
                f"negative must have shape [{query.shape[0]}, K, {d}], "
                f"got {list(negative.shape)}"
            )
        neg = torch.einsum("bd,bkd->bk", query, negative)
    else:
        raise ValueError(f"negative must be 2- or 3-dimensional, got {negative.dim()}")
    if neg.numel() == 0:
        raise ValueError("negative must hold at least one negative")
    return torch.clamp(neg - pos.unsqueeze(-1) + float(margin), min=0.0).mean()


class MaxMarginLoss(nn.Module):
    r"""Module form of :func:`max_margin_loss` (MultiSage Eq. 3).

    Args:
        margin (float, optional): The margin :math:`\delta`. (default:
            :obj:`0.1`)
        shared_negatives (bool, optional): Contrast every query with every
            negative row. (default: :obj:`False`)
    """

    def __init__(self, margin: float = 0.1, shared_negatives: bool = False) -> None:
        super().__init__()
        self.margin = float(margin)
        self.shared_negatives = bool(shared_negatives)

    def forward(self, query: Tensor, positive: Tensor, negative: Tensor) -> Tensor:
        return max_margin_loss(
            query,
            positive,
            negative,
            margin=self.margin,
            shared_negatives=self.shared_negatives,
        )

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(margin={self.margin}, "
            f"shared_negatives={self.shared_negatives})"
        )


# ---------------------------------------------------------------------------
# Count-min sketch
# ---------------------------------------------------------------------------


class CountMinSketch(nn.Module):
    r"""A streaming frequency estimate (Cormode and Muthukrishnan, 2005).

    A table of :obj:`depth` rows by :obj:`width` counters; row :math:`r`
    hashes an id with its own hash :math:`h_r` and the estimate of a count is
    :math:`\hat c(v) = \min_r C[r, h_r(v)]`. It never underestimates, and
    with :math:`\varepsilon = e / w` and :math:`\delta = e^{-\text{depth}}`

    .. math::
        \Pr\big[\hat c(v) > c(v) + \varepsilon N\big] \le \delta,

    where :math:`N` is the total count added. The hashes are simple
    tabulation hashes (eight random 256-entry tables, one per byte of the
    id), which are 3-wise independent — more than the pairwise independence
    the bound needs.

    OmniSage (§3.3) estimates the sampling probability :math:`Q(v)` of each
    candidate with such a sketch: :meth:`log_q` returns
    :math:`\log(\hat c(v) / N)`. Counters and hash tables are buffers, so the
    sketch travels with a model's :meth:`state_dict` (and checkpoints).

    Args:
        width (int, optional): Counters per row :math:`w`. (default:
            :obj:`2 ** 20`)
        depth (int, optional): Number of rows (independent hashes).
            (default: :obj:`4`)
        seed (int, optional): Seed of the hash tables. (default: :obj:`0`)
    """

    table: Tensor
    total: Tensor
    hash_tables: Tensor

    def __init__(self, width: int = 2**20, depth: int = 4, seed: int = 0) -> None:
        super().__init__()
        width, depth = _check_pos_int(width, "width"), _check_pos_int(depth, "depth")
        gen = torch.Generator().manual_seed(int(seed))
        tabs = torch.randint(
            -(2**63), 2**63 - 1, (depth, 8, 256), generator=gen, dtype=torch.int64
        )
        self.width, self.depth, self.seed = width, depth, int(seed)
        self.register_buffer("hash_tables", tabs)
        self.register_buffer("table", torch.zeros(depth, width, dtype=torch.int64))
        self.register_buffer("total", torch.zeros((), dtype=torch.int64))

    @classmethod
    def from_error(cls, eps: float, delta: float, seed: int = 0) -> CountMinSketch:
        r"""A sketch sized so that :math:`\Pr[\hat c > c + \varepsilon N] \le
        \delta`: :math:`w = \lceil e / \varepsilon \rceil`,
        :math:`\text{depth} = \lceil \ln(1 / \delta) \rceil`."""
        if not 0 < eps < 1 or not 0 < delta < 1:
            raise ValueError(f"eps and delta must lie in (0, 1), got {eps}, {delta}")
        width = math.ceil(math.e / eps)
        depth = math.ceil(math.log(1.0 / delta))
        return cls(width=width, depth=depth, seed=seed)

    @property
    def eps(self) -> float:
        r"""The relative error :math:`\varepsilon = e / w`."""
        return math.e / self.width

    @property
    def delta(self) -> float:
        r"""The failure probability :math:`\delta = e^{-\text{depth}}`."""
        return math.exp(-self.depth)

    def _hash(self, ids: Tensor) -> Tensor:
        # [depth, n] bucket of every id in every row (simple tabulation).
        ids = ids.to(self.table.device)
        h = torch.zeros(self.depth, ids.numel(), dtype=torch.int64, device=ids.device)
        for b in range(8):
            byte = (ids >> (8 * b)) & 255
            h ^= self.hash_tables[:, b, :][:, byte]
        return (h & (2**63 - 1)) % self.width

    def update(self, ids: Tensor, counts: Tensor | None = None) -> None:
        """Adds :obj:`counts` (default one) occurrences of each id in :obj:`ids`."""
        ids = _check_ids(ids, "ids")
        if counts is None:
            counts = torch.ones(ids.numel(), dtype=torch.int64, device=ids.device)
        else:
            if counts.shape != ids.shape:
                raise ValueError("counts must have the shape of ids")
            counts = counts.to(torch.int64)
            if counts.numel() and int(counts.min()) < 0:
                raise ValueError("counts must be non-negative")
        if ids.numel() == 0:
            return
        counts = counts.to(self.table.device)
        h = self._hash(ids)
        for r in range(self.depth):
            self.table[r].index_add_(0, h[r], counts)
        self.total += counts.sum()

    def estimate(self, ids: Tensor) -> Tensor:
        r"""The estimated counts :math:`\hat c(v)` (``int64``, one per id)."""
        ids = _check_ids(ids, "ids")
        if ids.numel() == 0:
            return torch.zeros(0, dtype=torch.int64, device=self.table.device)
        h = self._hash(ids)
        rows = torch.arange(self.depth, device=h.device).unsqueeze(1)
        return self.table[rows, h].min(0).values

    def log_q(self, ids: Tensor) -> Tensor:
        r"""The log sampling probability :math:`\log(\hat c(v) / N)`.

        Counts are floored at one, so an id never seen gets
        :math:`\log(1 / N)` instead of :math:`-\infty`; before any update
        every id gets :math:`0`.
        """
        est = self.estimate(ids).clamp_min(1).to(torch.float32)
        n = max(int(self.total), 1)
        return torch.log(est) - math.log(n)

    def reset(self) -> None:
        """Zeroes all counters."""
        self.table.zero_()
        self.total.zero_()

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(width={self.width}, depth={self.depth}, "
            f"eps={self.eps:.3g}, delta={self.delta:.3g})"
        )


# ---------------------------------------------------------------------------
# Sampled softmax (OmniSage Eq. 1, Algorithm 1)
# ---------------------------------------------------------------------------


def sampled_softmax_loss(
    query: Tensor,
    positive: Tensor,
    negatives: Tensor | None = None,
    *,
    temperature: float = 1.0,
    log_q: Tensor | None = None,
    chunk_size: int | None = None,
    in_batch_negatives: bool = True,
    positive_ids: Tensor | None = None,
    negative_ids: Tensor | None = None,
    weight: Tensor | None = None,
    reduction: str = "mean",
) -> Tensor:
    r"""The sampled softmax loss of OmniSage Eq. 1 with logQ correction.

    For query :math:`q_i`, positive :math:`p_i` and candidate negatives
    :math:`N_i` (the other queries' positives when
    :obj:`in_batch_negatives=True`, plus the random :obj:`negatives`):

    .. math::
        s(q, v) = \lambda \, q^\top v - \log Q(v), \qquad
        \ell_i = -\log \frac{\exp s(q_i, p_i)}{\exp s(q_i, p_i)
        + \sum_{n \in N_i} \exp s(q_i, n)}

    and the loss is the mean (or sum) of :math:`w_i \ell_i` over queries.
    :math:`\lambda` is :obj:`temperature` and *multiplies* the dot product
    (the paper's notation); for the divisive convention
    :math:`q^\top v / \tau` pass :obj:`temperature=1/tau`.

    Accidental hits are masked: with :obj:`positive_ids`, a candidate whose
    id equals :math:`q_i`'s positive id (an in-batch positive of another
    query, or a random negative when :obj:`negative_ids` is given) is removed
    from :math:`N_i`.

    With :obj:`chunk_size`, the loss is computed as in OmniSage §3.4.2,
    Algorithm 1: the embeddings are detached, the logits of
    :obj:`chunk_size` queries at a time are formed, their loss and the
    gradients with respect to the detached query, positive and negative
    embeddings accumulated, and the logits freed; calling ``backward()`` on
    the result then runs *one* backward pass through the model that made
    the embeddings. Values and gradients equal those of the unchunked loss
    (chunks are weighted by their size, so any chunk size is exact); only
    :math:`\text{chunk\_size} \times (B + K)` logits live at a time. The
    chunked form does not support double backward.

    Args:
        query (torch.Tensor): Query embeddings :math:`[B, d]`.
        positive (torch.Tensor): Positive embeddings :math:`[B, d]`.
        negatives (torch.Tensor, optional): Random negatives :math:`[K, d]`
            shared by all queries. (default: :obj:`None`)
        temperature (float, optional): The scale :math:`\lambda`.
            (default: :obj:`1.0`)
        log_q (torch.Tensor, optional): :math:`\log Q(v)` of every candidate,
            shape :math:`[B + K]`: the :math:`B` positives first, then the
            :math:`K` negatives (e.g. from :meth:`CountMinSketch.log_q`).
            (default: :obj:`None`, no correction)
        chunk_size (int, optional): Queries per chunk; :obj:`None` computes
            all at once. (default: :obj:`None`)
        in_batch_negatives (bool, optional): Use the other queries'
            positives as negatives. (default: :obj:`True`)
        positive_ids (torch.Tensor, optional): Ids of the positives
            :math:`[B]`, for masking duplicates. (default: :obj:`None`)
        negative_ids (torch.Tensor, optional): Ids of the negatives
            :math:`[K]`, for masking duplicates. (default: :obj:`None`)
        weight (torch.Tensor, optional): Per-query weights :math:`[B]`.
            (default: :obj:`None`)
        reduction (str, optional): :obj:`"mean"` (divide the weighted sum by
            :math:`B`) or :obj:`"sum"`. (default: :obj:`"mean"`)
    """
    cfg = _prepare(
        query,
        positive,
        negatives,
        temperature,
        log_q,
        chunk_size,
        in_batch_negatives,
        positive_ids,
        negative_ids,
        weight,
        reduction,
    )
    b = query.shape[0]
    if b == 0:
        return query.sum() * 0.0
    if cfg["chunk_size"] is None or cfg["chunk_size"] >= b:
        total = _loss_sum(query, 0, positive, negatives, log_q, cfg)
        return total * cfg["scale"]
    cfg["grad_enabled"] = torch.is_grad_enabled()
    neg = negatives if negatives is not None else query.new_zeros(0, query.shape[1])
    lq = log_q if log_q is not None else query.new_zeros(0)
    return _ChunkedSampledSoftmax.apply(query, positive, neg, lq, cfg)


def _prepare(
    query,
    positive,
    negatives,
    temperature,
    log_q,
    chunk_size,
    in_batch,
    positive_ids,
    negative_ids,
    weight,
    reduction,
) -> dict:
    check_matrix(query, "query")
    check_matrix(positive, "positive")
    if positive.shape != query.shape:
        raise ValueError(
            f"positive must have the shape of query {list(query.shape)}, "
            f"got {list(positive.shape)}"
        )
    b, d = query.shape
    k = 0
    if negatives is not None:
        check_matrix(negatives, "negatives")
        if negatives.shape[1] != d:
            raise ValueError(
                f"negatives must have {d} columns, got {negatives.shape[1]}"
            )
        k = negatives.shape[0]
    if not in_batch and k == 0:
        raise ValueError("without in-batch negatives, negatives must be given")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
        raise TypeError(
            f"temperature must be a float, got {type(temperature).__name__}"
        )
    if not math.isfinite(temperature) or temperature <= 0:
        raise ValueError(
            f"temperature must be a positive finite number, got {temperature}"
        )
    if log_q is not None:
        if log_q.dim() != 1 or log_q.numel() != b + k:
            raise ValueError(
                f"log_q must have shape [B + K] = [{b + k}] (positives first, "
                f"then negatives), got {list(log_q.shape)}"
            )
    if chunk_size is not None:
        chunk_size = _check_pos_int(chunk_size, "chunk_size")
    if positive_ids is not None:
        positive_ids = _check_ids(positive_ids, "positive_ids")
        if positive_ids.numel() != b:
            raise ValueError(
                f"positive_ids must have {b} entries, got {positive_ids.numel()}"
            )
        positive_ids = positive_ids.to(query.device)
    if negative_ids is not None:
        negative_ids = _check_ids(negative_ids, "negative_ids")
        if negative_ids.numel() != k:
            raise ValueError(
                f"negative_ids must have {k} entries, got {negative_ids.numel()}"
            )
        if positive_ids is None:
            raise ValueError("negative_ids needs positive_ids to detect duplicates")
        negative_ids = negative_ids.to(query.device)
    if weight is not None:
        if weight.dim() != 1 or weight.numel() != b:
            raise ValueError(f"weight must have shape [{b}], got {list(weight.shape)}")
        if weight.requires_grad:
            raise ValueError("weight must not require gradients")
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    return {
        "temperature": float(temperature),
        "chunk_size": chunk_size,
        "in_batch": bool(in_batch),
        "positive_ids": positive_ids,
        "negative_ids": negative_ids,
        "weight": weight,
        "scale": 1.0 / b if reduction == "mean" else 1.0,
        "has_log_q": log_q is not None,
        "has_neg": k > 0,
    }


def _loss_sum(
    q: Tensor,
    start: int,
    positive: Tensor,
    negatives: Tensor | None,
    log_q: Tensor | None,
    cfg: dict,
) -> Tensor:
    """Sum over queries ``start .. start + len(q)`` of their (weighted) loss."""
    c = q.shape[0]
    rows = torch.arange(start, start + c, device=q.device)
    lam = cfg["temperature"]
    qs = q * lam if lam != 1.0 else q
    b = positive.shape[0]
    has_neg = negatives is not None and negatives.shape[0] > 0
    pos_ids, neg_ids = cfg["positive_ids"], cfg["negative_ids"]
    if cfg["in_batch"]:
        cand = torch.cat([positive, negatives]) if has_neg else positive
        logits = qs @ cand.t()  # [c, B + K]; target column = own row
        if log_q is not None:
            logits = logits - log_q.to(logits.dtype)
        target = rows
        if pos_ids is not None:
            if neg_ids is not None:
                cand_ids = torch.cat([pos_ids, neg_ids])
            elif has_neg:  # random negatives without ids: never masked
                cand_ids = torch.cat(
                    [pos_ids, pos_ids.new_full((negatives.shape[0],), -1)]
                )
            else:
                cand_ids = pos_ids
            mask = cand_ids.unsqueeze(0) == pos_ids[rows].unsqueeze(1)
            mask[torch.arange(c, device=q.device), rows] = False
            logits = logits.masked_fill(mask, float("-inf"))
    else:
        p = positive[start : start + c]
        pos_logit = (qs * p).sum(-1, keepdim=True)
        neg_logit = qs @ negatives.t()
        if log_q is not None:
            lq = log_q.to(pos_logit.dtype)
            pos_logit = pos_logit - lq[rows].unsqueeze(1)
            neg_logit = neg_logit - lq[b:]
        if neg_ids is not None:
            mask = neg_ids.unsqueeze(0) == pos_ids[rows].unsqueeze(1)
            neg_logit = neg_logit.masked_fill(mask, float("-inf"))
        logits = torch.cat([pos_logit, neg_logit], 1)
        target = torch.zeros(c, dtype=torch.long, device=q.device)
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()
    w = cfg["weight"]
    if w is None:
        return torch.nn.functional.cross_entropy(logits, target, reduction="sum")
    loss = torch.nn.functional.cross_entropy(logits, target, reduction="none")
    return (loss * w[start : start + c].to(loss.dtype)).sum()


def _chunk_step(qc, start, p, n, lq, cfg, grads) -> Tensor:
    r"""One chunk of Algorithm 1: the chunk's loss (weighted sum times scale)
    and, in place, its gradients w.r.t. the detached embeddings.

    Eq. 1 by hand, so that no logits matrix outlives the chunk and nothing
    the size of the negatives is allocated per chunk: with
    :math:`G = \mathrm{softmax}(S) - \mathrm{onehot}` (times the query
    weight), :math:`\nabla q = \lambda G C`, :math:`\nabla C \mathrel{+}=
    \lambda G^\top q` (accumulated with ``addmm_``) and
    :math:`\nabla \log Q \mathrel{-}= \sum_i G_i`.
    """
    gq, gp, gn, glq = grads
    c, b = qc.shape[0], p.shape[0]
    lam = cfg["temperature"]
    dev = qc.device
    rows = torch.arange(start, start + c, device=dev)
    ar = torch.arange(c, device=dev)
    pos_ids, neg_ids = cfg["positive_ids"], cfg["negative_ids"]
    w = cfg["weight"]
    coef = torch.full((c,), cfg["scale"], dtype=qc.dtype, device=dev)
    if w is not None:
        coef = coef * w[start : start + c].to(qc.dtype)
    ln = None
    if n is not None:
        ln = (qc @ n.t()).mul_(lam)
        if lq is not None:
            ln.sub_(lq[b:])
        if neg_ids is not None:
            ln.masked_fill_(
                neg_ids.unsqueeze(0) == pos_ids[rows].unsqueeze(1), float("-inf")
            )
    if cfg["in_batch"]:
        lp = (qc @ p.t()).mul_(lam)
        if lq is not None:
            lp.sub_(lq[:b])
        if pos_ids is not None:
            dup = pos_ids.unsqueeze(0) == pos_ids[rows].unsqueeze(1)
            dup[ar, rows] = False
            lp.masked_fill_(dup, float("-inf"))
        target = lp[ar, rows].clone()
        m = lp.amax(1)
    else:
        pc = p[start : start + c]
        lp = ((qc * pc).sum(1) * lam).unsqueeze(1)  # [c, 1]: the positive only
        if lq is not None:
            lp.sub_(lq[rows].unsqueeze(1))
        target = lp[:, 0].clone()
        m = target.clone()
    if ln is not None:
        m = torch.maximum(m, ln.amax(1))
    mcol = m.unsqueeze(1)
    lp.sub_(mcol).exp_()
    tot = lp.sum(1)
    if ln is not None:
        ln.sub_(mcol).exp_()
        tot += ln.sum(1)
    loss = ((m + tot.log() - target) * coef).sum()
    # G = (softmax - onehot) * coef
    scale_col = (coef / tot).unsqueeze(1)
    lp.mul_(scale_col)
    if ln is not None:
        ln.mul_(scale_col)
    if cfg["in_batch"]:
        lp[ar, rows] -= coef
        if gq is not None:
            g = lp @ p
            if ln is not None:
                g.addmm_(ln, n)
            gq[start : start + c] = g.mul_(lam)
        if gp is not None:
            gp.addmm_(lp.t(), qc, alpha=lam)
        if glq is not None:
            glq[:b] -= lp.sum(0)
    else:
        g0 = lp[:, 0] - coef  # [c]
        if gq is not None:
            g = pc * g0.unsqueeze(1)
            if ln is not None:
                g.addmm_(ln, n)
            gq[start : start + c] = g.mul_(lam)
        if gp is not None:
            gp[start : start + c] += qc * (lam * g0).unsqueeze(1)
        if glq is not None:
            glq[rows] -= g0
    if ln is not None:
        if gn is not None:
            gn.addmm_(ln.t(), qc, alpha=lam)
        if glq is not None:
            glq[b:] -= ln.sum(0)
    return loss


class _ChunkedSampledSoftmax(torch.autograd.Function):
    """OmniSage Algorithm 1: the loss chunk by chunk on detached embeddings,
    gradients accumulated in the forward, handed to autograd in the one
    backward pass through the model."""

    @staticmethod
    def forward(ctx, query, positive, negatives, log_q, cfg):  # type: ignore[override]
        has_neg, has_lq = cfg["has_neg"], cfg["has_log_q"]
        req = [
            query.requires_grad,
            positive.requires_grad,
            has_neg and negatives.requires_grad,
            has_lq and log_q.requires_grad,
        ]
        if not cfg["grad_enabled"]:
            req = [False] * 4
        dtypes = (query.dtype, positive.dtype, negatives.dtype, log_q.dtype)
        # Half inputs are computed in float32 (as cross_entropy does under AMP).
        work = torch.float64 if query.dtype == torch.float64 else torch.float32
        q = query.detach().to(work)
        p = positive.detach().to(work)
        n = negatives.detach().to(work) if has_neg else None
        lq = log_q.detach().to(work) if has_lq else None
        grads = (
            torch.zeros_like(q) if req[0] else None,
            torch.zeros_like(p) if req[1] else None,
            torch.zeros_like(n) if req[2] else None,
            torch.zeros_like(lq) if req[3] else None,
        )
        total = torch.zeros((), dtype=work, device=q.device)
        cs = cfg["chunk_size"]
        with torch.autocast(q.device.type, enabled=False):
            for start in range(0, q.shape[0], cs):
                total += _chunk_step(q[start : start + cs], start, p, n, lq, cfg, grads)
        ctx.grads = [
            None if g is None else g.to(dt) for g, dt in zip(grads, dtypes, strict=True)
        ]
        return total.to(query.dtype if query.dtype == torch.float64 else torch.float32)

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        out = [None if g is None else g.mul_(grad_out.to(g.dtype)) for g in ctx.grads]
        ctx.grads = None  # the gradients are handed over, not copied
        return (*out, None)


class SampledSoftmaxLoss(nn.Module):
    r"""Module form of :func:`sampled_softmax_loss` (OmniSage Eq. 1), with an
    optional streaming :class:`CountMinSketch` for the logQ correction.

    With :obj:`sketch` given and ids passed to :meth:`forward`, each call
    (in training mode) first adds the ids of all candidates of the batch —
    the in-batch positives and the random negatives — to the sketch, then
    corrects every score by :math:`\log Q(v) = \log(\hat c(v) / N)`: the
    estimated frequency with which :math:`v` appears as a candidate, i.e.
    the empirical sampling distribution of the mixed negatives.

    Args:
        temperature (float, optional): The scale :math:`\lambda`.
            (default: :obj:`1.0`)
        chunk_size (int, optional): Queries per chunk (Algorithm 1).
            (default: :obj:`None`)
        in_batch_negatives (bool, optional): Use the other queries'
            positives as negatives. (default: :obj:`True`)
        sketch (CountMinSketch, optional): Frequency estimate for the logQ
            correction. (default: :obj:`None`)
    """

    def __init__(
        self,
        temperature: float = 1.0,
        chunk_size: int | None = None,
        in_batch_negatives: bool = True,
        sketch: CountMinSketch | None = None,
    ) -> None:
        super().__init__()
        self.temperature = float(temperature)
        self.chunk_size = chunk_size
        self.in_batch_negatives = bool(in_batch_negatives)
        self.sketch = sketch

    def forward(
        self,
        query: Tensor,
        positive: Tensor,
        negatives: Tensor | None = None,
        *,
        positive_ids: Tensor | None = None,
        negative_ids: Tensor | None = None,
        weight: Tensor | None = None,
        reduction: str = "mean",
    ) -> Tensor:
        log_q = None
        if self.sketch is not None and positive_ids is not None:
            k = 0 if negatives is None else negatives.shape[0]
            if k and negative_ids is None:
                raise ValueError("the logQ correction needs negative_ids")
            ids = positive_ids if not k else torch.cat([positive_ids, negative_ids])
            if self.training:
                self.sketch.update(ids)
            log_q = self.sketch.log_q(ids).to(query.device)
        return sampled_softmax_loss(
            query,
            positive,
            negatives,
            temperature=self.temperature,
            log_q=log_q,
            chunk_size=self.chunk_size,
            in_batch_negatives=self.in_batch_negatives,
            positive_ids=positive_ids,
            negative_ids=negative_ids,
            weight=weight,
            reduction=reduction,
        )

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(temperature={self.temperature}, "
            f"chunk_size={self.chunk_size}, "
            f"in_batch_negatives={self.in_batch_negatives}, sketch={self.sketch})"
        )


# ---------------------------------------------------------------------------
# Validation helpers
# ---------------------------------------------------------------------------


def _check_pos_int(x: object, name: str) -> int:
    if isinstance(x, bool) or not isinstance(x, int):
        raise TypeError(f"{name} must be an int, got {type(x).__name__}")
    if x < 1:
        raise ValueError(f"{name} must be >= 1, got {x}")
    return int(x)


def _check_ids(ids: object, name: str) -> Tensor:
    if not isinstance(ids, Tensor):
        ids = torch.as_tensor(ids)
    if ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer ids, got {ids.dtype}")
    if ids.dim() != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {list(ids.shape)}")
    ids = ids.to(torch.int64)
    if ids.numel() and int(ids.min()) < 0:
        raise ValueError(f"{name} must hold non-negative ids, got {int(ids.min())}")
    return ids
