r"""The max-margin triplet loss of PinSage and MultiSage (MultiSage Eq. 3)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from pyg_multisage._checks import check_aligned, check_float, check_matrix

__all__ = ["MaxMarginLoss", "max_margin_loss"]


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
        margin (float, optional): The margin :math:`\delta \ge 0`. (default:
            :obj:`0.1`)
        shared_negatives (bool, optional): If :obj:`True`, every query is
            contrasted with every row of :obj:`negative` (PinSage's shared
            mini-batch negatives). (default: :obj:`False`)
    """
    margin = _check_margin(margin)
    check_matrix(query, "query")
    check_aligned(positive, "positive", query, "query")
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
    return torch.clamp(neg - pos.unsqueeze(-1) + margin, min=0.0).mean()


class MaxMarginLoss(nn.Module):
    r"""Module form of :func:`max_margin_loss` (MultiSage Eq. 3).

    Args:
        margin (float, optional): The margin :math:`\delta \ge 0`. (default:
            :obj:`0.1`)
        shared_negatives (bool, optional): Contrast every query with every
            negative row. (default: :obj:`False`)
    """

    def __init__(self, margin: float = 0.1, shared_negatives: bool = False) -> None:
        super().__init__()
        self.margin = _check_margin(margin)
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


def _check_margin(margin: object) -> float:
    return check_float(margin, "margin", 0.0, math.inf, high_open=True)
