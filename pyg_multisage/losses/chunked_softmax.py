r"""The chunked sampled softmax of OmniSage §3.4.2, Algorithm 1.

The logits of :math:`B` queries against :math:`B + K` candidates take
:math:`O(B(B + K))` memory, the largest tensor of a training step at
OmniSage's batch sizes. :func:`chunked_sampled_softmax` detaches the query,
positive and negative embeddings, forms the logits of a chunk of queries at
a time, accumulates the chunk's loss and the gradients with respect to the
detached embeddings, frees the logits, and hands the accumulated gradients to
autograd, so that ``backward()`` runs *one* backward pass through the model
that made the embeddings. Values and gradients equal those of the unchunked
Eq. 1 (chunks are weighted by their size, so any chunk size is exact).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from pyg_multisage.losses.softmax_config import SampledSoftmaxConfig

__all__ = ["chunked_sampled_softmax"]


def chunked_sampled_softmax(
    query: Tensor,
    positive: Tensor,
    negatives: Tensor | None,
    log_q: Tensor | None,
    config: SampledSoftmaxConfig,
) -> Tensor:
    r"""The sampled softmax loss of OmniSage Eq. 1, computed as in Algorithm 1.

    Inputs are those of :func:`~pyg_multisage.losses.sampled_softmax_loss`,
    already checked into :obj:`config`; :obj:`config.chunk_size` queries are
    processed at a time. Half-precision inputs are computed in ``float32``;
    the result is ``float32`` (``float64`` for ``float64`` inputs). Only
    :math:`\text{chunk\_size} \times (B + K)` logits live at a time. Double
    backward is not supported.

    Args:
        query (torch.Tensor): Query embeddings :math:`[B, d]`.
        positive (torch.Tensor): Positive embeddings :math:`[B, d]`.
        negatives (torch.Tensor, optional): Random negatives :math:`[K, d]`.
        log_q (torch.Tensor, optional): :math:`\log Q(v)` of the
            :math:`B + K` candidates, positives first.
        config (SampledSoftmaxConfig): The validated settings; its
            :obj:`chunk_size` must be set.
    """
    if config.chunk_size is None:
        raise ValueError("chunked_sampled_softmax needs config.chunk_size")
    neg = negatives if negatives is not None else query.new_zeros(0, query.shape[1])
    lq = log_q if log_q is not None else query.new_zeros(0)
    return _ChunkedSampledSoftmax.apply(
        query, positive, neg, lq, config, torch.is_grad_enabled()
    )


class _Grads(NamedTuple):
    """Gradient accumulators of the detached inputs (``None``: not needed)."""

    query: Tensor | None
    positive: Tensor | None
    negatives: Tensor | None
    log_q: Tensor | None


class _ChunkLogits(NamedTuple):
    """The exponentiated, shifted logits of one chunk and what the loss needs.

    ``pos``: against the positives (``[c, B]`` in-batch, else ``[c, 1]``);
    ``neg``: against the random negatives ``[c, K]`` or ``None``; ``target``:
    the logit of each query's own positive; ``shift``: the row maxima
    subtracted before :func:`torch.exp`; ``total``: the row sums.
    """

    pos: Tensor
    neg: Tensor | None
    target: Tensor
    shift: Tensor
    total: Tensor


def _chunk_logits(qc, start, p, n, lq, cfg: SampledSoftmaxConfig) -> _ChunkLogits:
    """Scores :math:`s(q, v)` of one chunk, accidental hits masked, then
    shifted by their row maximum and exponentiated in place."""
    c, b = qc.shape[0], p.shape[0]
    lam = cfg.temperature
    dev = qc.device
    rows = torch.arange(start, start + c, device=dev)
    pos_ids, neg_ids = cfg.positive_ids, cfg.negative_ids
    ln = None
    if n is not None:
        ln = (qc @ n.t()).mul_(lam)
        if lq is not None:
            ln.sub_(lq[b:])
        if neg_ids is not None:
            ln.masked_fill_(
                neg_ids.unsqueeze(0) == pos_ids[rows].unsqueeze(1), float("-inf")
            )
    if cfg.in_batch_negatives:
        ar = torch.arange(c, device=dev)
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
    return _ChunkLogits(lp, ln, target, m, tot)


def _chunk_step(qc, start, p, n, lq, cfg: SampledSoftmaxConfig, grads: _Grads):
    r"""One chunk of Algorithm 1: the chunk's loss (weighted sum times scale)
    and, in place, its gradients w.r.t. the detached embeddings.

    Eq. 1 by hand, so that no logits matrix outlives the chunk and nothing
    the size of the negatives is allocated per chunk: with
    :math:`G = \mathrm{softmax}(S) - \mathrm{onehot}` (times the query
    weight), :math:`\nabla q = \lambda G C`, :math:`\nabla C \mathrel{+}=
    \lambda G^\top q` (accumulated with ``addmm_``) and
    :math:`\nabla \log Q \mathrel{-}= \sum_i G_i`.
    """
    c, b = qc.shape[0], p.shape[0]
    lam = cfg.temperature
    dev = qc.device
    rows = torch.arange(start, start + c, device=dev)
    coef = torch.full((c,), cfg.scale, dtype=qc.dtype, device=dev)
    if cfg.weight is not None:
        coef = coef * cfg.weight[start : start + c].to(qc.dtype)
    lp, ln, target, m, tot = _chunk_logits(qc, start, p, n, lq, cfg)
    loss = ((m + tot.log() - target) * coef).sum()
    # G = (softmax - onehot) * coef
    scale_col = (coef / tot).unsqueeze(1)
    lp.mul_(scale_col)
    if ln is not None:
        ln.mul_(scale_col)
    if cfg.in_batch_negatives:
        lp[torch.arange(c, device=dev), rows] -= coef
        if grads.query is not None:
            g = lp @ p
            if ln is not None:
                g.addmm_(ln, n)
            grads.query[start : start + c] = g.mul_(lam)
        if grads.positive is not None:
            grads.positive.addmm_(lp.t(), qc, alpha=lam)
        if grads.log_q is not None:
            grads.log_q[:b] -= lp.sum(0)
    else:
        pc = p[start : start + c]
        g0 = lp[:, 0] - coef  # [c]
        if grads.query is not None:
            g = pc * g0.unsqueeze(1)
            if ln is not None:
                g.addmm_(ln, n)
            grads.query[start : start + c] = g.mul_(lam)
        if grads.positive is not None:
            grads.positive[start : start + c] += qc * (lam * g0).unsqueeze(1)
        if grads.log_q is not None:
            grads.log_q[rows] -= g0
    if ln is not None:
        if grads.negatives is not None:
            grads.negatives.addmm_(ln.t(), qc, alpha=lam)
        if grads.log_q is not None:
            grads.log_q[b:] -= ln.sum(0)
    return loss


class _ChunkedSampledSoftmax(torch.autograd.Function):
    """OmniSage Algorithm 1: the loss chunk by chunk on detached embeddings,
    gradients accumulated in the forward, handed to autograd in the one
    backward pass through the model."""

    @staticmethod
    def forward(ctx, query, positive, negatives, log_q, cfg, grad_enabled):  # type: ignore[override]
        has_neg, has_lq = cfg.has_negatives, cfg.has_log_q
        req = [
            query.requires_grad,
            positive.requires_grad,
            has_neg and negatives.requires_grad,
            has_lq and log_q.requires_grad,
        ]
        if not grad_enabled:
            req = [False] * 4
        dtypes = (query.dtype, positive.dtype, negatives.dtype, log_q.dtype)
        # Half inputs are computed in float32 (as cross_entropy does under AMP).
        work = torch.float64 if query.dtype == torch.float64 else torch.float32
        q = query.detach().to(work)
        p = positive.detach().to(work)
        n = negatives.detach().to(work) if has_neg else None
        lq = log_q.detach().to(work) if has_lq else None
        grads = _Grads(
            torch.zeros_like(q) if req[0] else None,
            torch.zeros_like(p) if req[1] else None,
            torch.zeros_like(n) if req[2] else None,
            torch.zeros_like(lq) if req[3] else None,
        )
        total = torch.zeros((), dtype=work, device=q.device)
        cs = cfg.chunk_size
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
        return (*out, None, None)
