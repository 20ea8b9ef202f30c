r"""Negatives gathered across data-parallel workers (OmniSage §3.4.2).

OmniSage "aggregate[s] in-batch and random negatives from each device"
(§3.4.2): with :math:`W` workers each holding :math:`B_r` query–positive
pairs and :math:`K_r` random negatives, every query is scored against *all*
:math:`B = \sum_r B_r` positives and :math:`K = \sum_r K_r` negatives, so
the loss of a data-parallel step is the single-process loss of OmniSage
Eq. 1 over the union of the workers' batches.

* :func:`all_gather_with_grad`: the rows of a tensor from every worker
  (sizes may differ), differentiable: the gradient that reaches a worker's
  own rows is the *sum* of the gradients every worker's loss sends them.
* :func:`gathered_sampled_softmax_loss`: Eq. 1 for the local queries against
  the gathered candidates, with the logQ correction from a
  :class:`~pyg_multisage.losses.CountMinSketch` that every worker updates
  with the *gathered* candidate ids, so all replicas of the sketch hold the
  counts a single process would.
* :func:`gathered_max_margin_loss`: MultiSage's max-margin loss (Eq. 3)
  with the random negatives of every worker.

Both losses return a scalar whose **value** is the global loss (the same on
every worker, the mean over all :math:`B` queries) and whose **gradient**,
averaged over the workers as :class:`~torch.nn.parallel.DistributedDataParallel`
averages parameter gradients, equals the gradient of that global loss. Every
worker must call them the same number of times, in the same order (they run
collectives in the forward and the backward pass). Without an initialized
:mod:`torch.distributed` process group they reduce to the single-process
losses.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from pyg_multisage._checks import check_ids, check_matrix
from pyg_multisage.losses import (
    CountMinSketch,
    candidate_log_q,
    max_margin_loss,
    sampled_softmax_loss,
)

__all__ = [
    "all_gather_with_grad",
    "gathered_max_margin_loss",
    "gathered_sampled_softmax_loss",
    "world",
]


def world(group: Any = None) -> tuple[int, int]:
    """``(rank, world_size)`` of :obj:`group`; ``(0, 1)`` when
    :mod:`torch.distributed` is not initialized."""
    if not (dist.is_available() and dist.is_initialized()):
        return 0, 1
    return dist.get_rank(group), dist.get_world_size(group)


def _gather_sizes(local: list[int], device: torch.device, group: Any) -> Tensor:
    """``[W, len(local)]`` table of every worker's :obj:`local` counts."""
    _, w = world(group)
    mine = torch.tensor(local, dtype=torch.int64, device=device)
    out = [torch.empty_like(mine) for _ in range(w)]
    dist.all_gather(out, mine, group=group)
    return torch.stack(out).cpu()


class _AllGather(torch.autograd.Function):
    """All-gather of rows with padding to the largest share; the backward
    pass sums every worker's gradient (all-reduce) and keeps the local rows.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, sizes: list[int], rank: int, group: Any):
        ctx.sizes, ctx.rank, ctx.group = sizes, rank, group
        most = max(sizes)
        padded = x.new_zeros((most, *x.shape[1:]))
        padded[: x.shape[0]] = x
        parts = [torch.empty_like(padded) for _ in sizes]
        dist.all_gather(parts, padded.contiguous(), group=group)
        return torch.cat([p[:n] for p, n in zip(parts, sizes, strict=True)])

    @staticmethod
    def backward(ctx: Any, grad: Tensor):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM, group=ctx.group)
        start = sum(ctx.sizes[: ctx.rank])
        return grad[start : start + ctx.sizes[ctx.rank]], None, None, None


def all_gather_with_grad(x: Tensor, group: Any = None) -> tuple[Tensor, list[int]]:
    r"""The rows of :obj:`x` from every worker, concatenated in rank order.

    Workers may hold different numbers of rows (the trailing dimensions must
    agree). The result is differentiable: in the backward pass the gradients
    of all workers' gathered copies are summed (an all-reduce) and each
    worker receives the part belonging to its own rows, so that
    :math:`\partial (\sum_r L_r) / \partial x_{\text{local}}` reaches the
    local computation graph. Works with the ``gloo`` and ``nccl`` backends.
    (:func:`torch.distributed.nn.functional.all_gather` needs equal sizes
    and a reduce-scatter, which ``gloo`` lacks.)

    Returns:
        ``(gathered, sizes)``: the :math:`[\sum_r n_r, \dots]` tensor and the
        list of :math:`n_r`.
    """
    rank, w = world(group)
    if w == 1:
        return x, [x.shape[0]]
    sizes = _gather_sizes([x.shape[0]], x.device, group)[:, 0].tolist()
    return _AllGather.apply(x, sizes, rank, group), sizes


def _all_gather_ids(ids: Tensor, sizes: list[int], group: Any) -> Tensor:
    most = max(sizes)
    padded = ids.new_full((most,), -1)
    padded[: ids.numel()] = ids
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded, group=group)
    return torch.cat([p[:n] for p, n in zip(parts, sizes, strict=True)])


def _global_value(local_sum: Tensor, total: int, group: Any) -> Tensor:
    """The global mean ``sum_r local_sum_r / total`` (detached)."""
    s = local_sum.detach().clone().reshape(1).to(torch.float64)
    if world(group)[1] > 1:
        dist.all_reduce(s, group=group)
    return (s / max(total, 1)).to(local_sum.dtype).reshape(())


def _with_value(local: Tensor, value: Tensor) -> Tensor:
    """A tensor equal to :obj:`value` whose gradient is :obj:`local`'s."""
    return local + (value - local.detach())


def _gather_candidates(
    positive: Tensor,
    negatives: Tensor,
    positive_ids: Tensor,
    negative_ids: Tensor,
    group: Any,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, list[int], list[int]]:
    """Gathers positives and negatives (one all-gather of both) and their
    ids. Returns ``(P, N, P_ids, N_ids, all_rows, b_sizes, k_sizes)``."""
    rank, w = world(group)
    b, k = positive.shape[0], negatives.shape[0]
    if w == 1:
        rows = torch.cat([positive, negatives])
        return positive, negatives, positive_ids, negative_ids, rows, [b], [k]
    table = _gather_sizes([b, k], positive.device, group)
    bs, ks = table[:, 0].tolist(), table[:, 1].tolist()
    rows_sizes = [x + y for x, y in zip(bs, ks, strict=True)]
    rows = _AllGather.apply(torch.cat([positive, negatives]), rows_sizes, rank, group)
    ids = _all_gather_ids(torch.cat([positive_ids, negative_ids]), rows_sizes, group)
    p_parts, n_parts, pid_parts, nid_parts = [], [], [], []
    start = 0
    for nb, nk in zip(bs, ks, strict=True):
        p_parts.append(rows[start : start + nb])
        n_parts.append(rows[start + nb : start + nb + nk])
        pid_parts.append(ids[start : start + nb])
        nid_parts.append(ids[start + nb : start + nb + nk])
        start += nb + nk
    return (
        torch.cat(p_parts),
        torch.cat(n_parts),
        torch.cat(pid_parts),
        torch.cat(nid_parts),
        rows,
        bs,
        ks,
    )


def _check(query: Tensor, positive: Tensor, negatives: Tensor | None):
    check_matrix(query, "query")
    check_matrix(positive, "positive")
    if positive.shape != query.shape:
        raise ValueError(
            f"positive must have the shape of query {list(query.shape)}, "
            f"got {list(positive.shape)}"
        )
    if negatives is None:
        return query.new_zeros(0, query.shape[1])
    check_matrix(negatives, "negatives")
    if negatives.shape[1] != query.shape[1]:
        raise ValueError(
            f"negatives must have {query.shape[1]} columns, got {negatives.shape[1]}"
        )
    return negatives


def gathered_sampled_softmax_loss(
    query: Tensor,
    positive: Tensor,
    negatives: Tensor | None,
    *,
    positive_ids: Tensor,
    negative_ids: Tensor | None = None,
    temperature: float = 1.0,
    sketch: CountMinSketch | None = None,
    group: Any = None,
) -> Tensor:
    r"""OmniSage Eq. 1 with the negatives of every worker (§3.4.2).

    Worker :math:`r` holds queries :math:`q_i` and positives :math:`p_i`
    (:math:`B_r` of each) and :math:`K_r` random :obj:`negatives`. The
    positives, negatives and their ids are all-gathered
    (:func:`all_gather_with_grad`), and each local query is scored, as in
    :func:`~pyg_multisage.losses.sampled_softmax_loss`, against its positive,
    the other :math:`B - 1` positives of all workers (in-batch negatives)
    and all :math:`K` random negatives, accidental hits (a candidate with
    the query's positive id) masked:

    .. math::
        L = \frac{1}{B} \sum_{r} \sum_{i \in \text{worker } r}
        -\log \frac{e^{s(q_i, p_i)}}{e^{s(q_i, p_i)}
        + \sum_{n \in N_i} e^{s(q_i, n)}}, \qquad
        s(q, v) = \lambda\, q^\top v - \log Q(v).

    With :obj:`sketch`, :math:`Q(v)` comes from a count-min sketch
    (:func:`~pyg_multisage.losses.candidate_log_q`) that is first updated
    with the gathered candidate ids in the single-process order (all
    positives by rank, then all negatives by rank): each worker's replica of
    the sketch stays identical to the sketch one process training on the
    union would hold.

    Returns a scalar equal to :math:`L` on every worker, whose gradient is
    :math:`W` times worker :math:`r`'s share, so that the *average* of the
    workers' parameter gradients (what DDP computes) is
    :math:`\nabla L`.

    Args:
        query (torch.Tensor): Local queries :math:`[B_r, d]` (already
            scaled by a learned :math:`\lambda` if one is used).
        positive (torch.Tensor): Local positives :math:`[B_r, d]`.
        negatives (torch.Tensor, optional): Local random negatives
            :math:`[K_r, d]`.
        positive_ids (torch.Tensor): Ids of the local positives :math:`[B_r]`.
        negative_ids (torch.Tensor, optional): Ids of the local negatives
            :math:`[K_r]` (required with :obj:`negatives`).
        temperature (float, optional): :math:`\lambda`. (default: :obj:`1.0`)
        sketch (CountMinSketch, optional): The logQ estimate, one replica
            per worker. (default: :obj:`None`, no correction)
        group (optional): The process group. (default: the world)
    """
    negatives = _check(query, positive, negatives)
    positive_ids = check_ids(positive_ids, "positive_ids").to(query.device)
    if positive_ids.numel() != query.shape[0]:
        raise ValueError(
            f"positive_ids must have {query.shape[0]} entries, "
            f"got {positive_ids.numel()}"
        )
    if negative_ids is None:
        if negatives.shape[0]:
            raise ValueError("negative_ids are needed with negatives")
        negative_ids = positive_ids.new_zeros(0)
    negative_ids = check_ids(negative_ids, "negative_ids").to(query.device)
    if negative_ids.numel() != negatives.shape[0]:
        raise ValueError(
            f"negative_ids must have {negatives.shape[0]} entries, "
            f"got {negative_ids.numel()}"
        )
    rank, _ = world(group)
    P, N, pid, nid, rows, bs, _ = _gather_candidates(
        positive, negatives, positive_ids, negative_ids, group
    )
    b_total = sum(bs)
    lo, hi = sum(bs[:rank]), sum(bs[: rank + 1])
    # Candidates of the local queries: their own positives first (the
    # in-batch block sampled_softmax_loss expects), then the other workers'
    # positives and all random negatives as shared negatives.
    others = torch.cat([P[:lo], P[hi:], N])
    others_ids = torch.cat([pid[:lo], pid[hi:], nid])
    log_q = None
    if sketch is not None:
        lq = candidate_log_q(sketch, pid, nid, update=True, device=query.device)
        lq_p, lq_n = lq[:b_total], lq[b_total:]
        log_q = torch.cat([lq_p[lo:hi], lq_p[:lo], lq_p[hi:], lq_n])
    local = sampled_softmax_loss(
        query,
        positive,
        others,
        temperature=temperature,
        log_q=log_q,
        positive_ids=positive_ids,
        negative_ids=others_ids,
        reduction="sum",
    )
    # Keep the gathered rows in every worker's graph (also with no local
    # queries) so that every worker runs the backward all-reduce.
    local = local + rows.sum() * 0.0
    _, w = world(group)
    value = _global_value(local, b_total, group)
    return _with_value(local * (w / max(b_total, 1)), value)


def gathered_max_margin_loss(
    query: Tensor,
    positive: Tensor,
    negatives: Tensor,
    *,
    margin: float = 0.1,
    group: Any = None,
) -> Tensor:
    r"""MultiSage's max-margin loss (Eq. 3) against the random negatives of
    every worker: the mean over all :math:`B` queries and :math:`K`
    negatives of :math:`\max(0, q^\top n - q^\top p + \Delta)`
    (:func:`~pyg_multisage.losses.max_margin_loss` with shared negatives).
    Value and gradient as :func:`gathered_sampled_softmax_loss`."""
    negatives = _check(query, positive, negatives)
    N, _ = all_gather_with_grad(negatives, group)
    _, w = world(group)
    b = query.shape[0]
    b_total = b
    if w > 1:
        sizes = _gather_sizes([b], query.device, group)[:, 0].tolist()
        b_total = sum(sizes)
    count = b_total * N.shape[0]
    if b and N.shape[0]:
        local = max_margin_loss(
            query, positive, N, margin=margin, shared_negatives=True
        )
        local = local * (b * N.shape[0])
    else:
        local = query.sum() * 0.0
    local = local + N.sum() * 0.0
    value = _global_value(local, count, group)
    return _with_value(local * (w / max(count, 1)), value)
