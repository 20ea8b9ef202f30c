r"""OmniSage's sampled softmax with logQ correction (OmniSage Eq. 1).

* :func:`sampled_softmax_loss`: the loss over in-batch plus random
  negatives, with the sampling-bias correction
  :math:`s(q, v) = \lambda \, q^\top v - \log Q(v)` and masking of accidental
  hits; with ``chunk_size`` it runs the chunked computation of §3.4.2,
  Algorithm 1 (:mod:`~pyg_multisage.losses.chunked_softmax`).
* :func:`candidate_log_q`: :math:`\log Q(v)` of a batch's candidates from a
  :class:`~pyg_multisage.losses.CountMinSketch`, the one place where the
  sketch is updated during training.
* :class:`SampledSoftmaxLoss`: the module form, owning an optional sketch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pyg_multisage._checks import check_aligned, check_ids, check_matrix
from pyg_multisage.losses.chunked_softmax import chunked_sampled_softmax
from pyg_multisage.losses.count_min_sketch import CountMinSketch
from pyg_multisage.losses.softmax_config import SampledSoftmaxConfig

__all__ = ["SampledSoftmaxLoss", "candidate_log_q", "sampled_softmax_loss"]


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
    Algorithm 1 (:func:`~pyg_multisage.losses.chunked_sampled_softmax`):
    the logits of :obj:`chunk_size` queries at a time, gradients accumulated
    on the detached embeddings, and ``backward()`` then runs *one* backward
    pass through the model. Values and gradients equal those of the unchunked
    loss; only :math:`\text{chunk\_size} \times (B + K)` logits live at a
    time. The chunked form does not support double backward.

    Args:
        query (torch.Tensor): Query embeddings :math:`[B, d]`.
        positive (torch.Tensor): Positive embeddings :math:`[B, d]`.
        negatives (torch.Tensor, optional): Random negatives :math:`[K, d]`
            shared by all queries. (default: :obj:`None`)
        temperature (float, optional): The scale :math:`\lambda`.
            (default: :obj:`1.0`)
        log_q (torch.Tensor, optional): :math:`\log Q(v)` of every candidate,
            shape :math:`[B + K]`: the :math:`B` positives first, then the
            :math:`K` negatives (e.g. from :func:`candidate_log_q`).
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
    b, k = _check_embeddings(query, positive, negatives)
    cfg = SampledSoftmaxConfig(
        num_queries=b,
        num_negatives=k,
        temperature=temperature,
        chunk_size=chunk_size,
        in_batch_negatives=in_batch_negatives,
        positive_ids=positive_ids,
        negative_ids=negative_ids,
        weight=weight,
        reduction=reduction,
        has_log_q=log_q is not None,
        device=query.device,
    )
    if log_q is not None and (log_q.dim() != 1 or log_q.numel() != b + k):
        raise ValueError(
            f"log_q must have shape [B + K] = [{b + k}] (positives first, "
            f"then negatives), got {list(log_q.shape)}"
        )
    if b == 0:
        return query.sum() * 0.0
    if cfg.chunked:
        return chunked_sampled_softmax(query, positive, negatives, log_q, cfg)
    return _loss_sum(query, positive, negatives, log_q, cfg) * cfg.scale


def candidate_log_q(
    sketch: CountMinSketch,
    positive_ids: Tensor,
    negative_ids: Tensor | None = None,
    *,
    update: bool = True,
    device: torch.device | str | None = None,
) -> Tensor:
    r"""The logQ correction of OmniSage Eq. 1 for one batch's candidates.

    The candidates are the :math:`B` positives (in-batch negatives of the
    other queries) followed by the :math:`K` random negatives, the order
    :func:`sampled_softmax_loss` expects for :obj:`log_q`. With
    :obj:`update` (training) their ids are first added to :obj:`sketch`, so
    that :math:`Q(v)` is the empirical frequency with which :math:`v` appears
    as a candidate; the result is :math:`\log(\hat c(v) / N)`
    (:meth:`CountMinSketch.log_q`) on :obj:`device`.

    Args:
        sketch (CountMinSketch): The frequency estimate.
        positive_ids (torch.Tensor): Ids of the positives :math:`[B]`.
        negative_ids (torch.Tensor, optional): Ids of the random negatives
            :math:`[K]`. (default: :obj:`None`, no random negatives)
        update (bool, optional): Add the candidates to the sketch first.
            (default: :obj:`True`)
        device (torch.device, optional): Where the result goes.
            (default: :obj:`None`, the sketch's device)

    Returns:
        torch.Tensor: ``float32`` :math:`[B + K]`.
    """
    ids = check_ids(positive_ids, "positive_ids")
    if negative_ids is not None:
        ids = torch.cat([ids, check_ids(negative_ids, "negative_ids").to(ids.device)])
    if update:
        sketch.update(ids)
    log_q = sketch.log_q(ids)
    return log_q if device is None else log_q.to(device)


class SampledSoftmaxLoss(nn.Module):
    r"""Module form of :func:`sampled_softmax_loss` (OmniSage Eq. 1), with an
    optional streaming :class:`~pyg_multisage.losses.CountMinSketch` for the
    logQ correction.

    With :obj:`sketch` given and ids passed to :meth:`forward`, each call
    corrects every score by :math:`\log Q(v) = \log(\hat c(v) / N)`
    (:func:`candidate_log_q`), adding the batch's candidate ids (the
    in-batch positives and the random negatives) to the sketch first in
    training mode: :math:`Q` is then the empirical sampling distribution of
    the mixed negatives.

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
            log_q = candidate_log_q(
                self.sketch,
                positive_ids,
                negative_ids if k else None,
                update=self.training,
                device=query.device,
            )
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


def _check_embeddings(
    query: Tensor, positive: Tensor, negatives: Tensor | None
) -> tuple[int, int]:
    """:math:`B` and :math:`K` of a batch, after checking the shapes."""
    check_matrix(query, "query")
    check_aligned(positive, "positive", query, "query")
    b, d = query.shape
    if negatives is None:
        return b, 0
    check_matrix(negatives, "negatives")
    if negatives.shape[1] != d:
        raise ValueError(f"negatives must have {d} columns, got {negatives.shape[1]}")
    return b, negatives.shape[0]


def _loss_sum(
    q: Tensor,
    positive: Tensor,
    negatives: Tensor | None,
    log_q: Tensor | None,
    cfg: SampledSoftmaxConfig,
) -> Tensor:
    """Sum over all queries of their (weighted) loss, Eq. 1 with autograd."""
    c = q.shape[0]
    rows = torch.arange(c, device=q.device)
    lam = cfg.temperature
    qs = q * lam if lam != 1.0 else q
    b = positive.shape[0]
    has_neg = negatives is not None and negatives.shape[0] > 0
    pos_ids, neg_ids = cfg.positive_ids, cfg.negative_ids
    if cfg.in_batch_negatives:
        cand = torch.cat([positive, negatives]) if has_neg else positive
        logits = qs @ cand.t()  # [B, B + K]; target column = own row
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
            mask = cand_ids.unsqueeze(0) == pos_ids.unsqueeze(1)
            mask[rows, rows] = False
            logits = logits.masked_fill(mask, float("-inf"))
    else:
        pos_logit = (qs * positive).sum(-1, keepdim=True)
        neg_logit = qs @ negatives.t()
        if log_q is not None:
            lq = log_q.to(pos_logit.dtype)
            pos_logit = pos_logit - lq[:b].unsqueeze(1)
            neg_logit = neg_logit - lq[b:]
        if neg_ids is not None:
            mask = neg_ids.unsqueeze(0) == pos_ids.unsqueeze(1)
            neg_logit = neg_logit.masked_fill(mask, float("-inf"))
        logits = torch.cat([pos_logit, neg_logit], 1)
        target = torch.zeros(c, dtype=torch.long, device=q.device)
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()
    if cfg.weight is None:
        return F.cross_entropy(logits, target, reduction="sum")
    loss = F.cross_entropy(logits, target, reduction="none")
    return (loss * cfg.weight.to(loss.dtype)).sum()
