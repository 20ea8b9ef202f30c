r"""The configuration of one sampled-softmax call (OmniSage Eq. 1).

:func:`~pyg_multisage.losses.sampled_softmax_loss` validates its keyword
arguments once into a :class:`SampledSoftmaxConfig` and hands that to the
unchunked computation and to the chunked one (OmniSage §3.4.2, Algorithm 1),
so both read the same, already checked, values by name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from pyg_multisage._checks import check_float, check_ids, check_int

__all__ = ["SampledSoftmaxConfig"]


@dataclass(frozen=True)
class SampledSoftmaxConfig:
    r"""The validated settings of one sampled-softmax batch (OmniSage Eq. 1).

    A batch has :math:`B` queries and positives and :math:`K` shared random
    negatives; the candidates of query :math:`i` are its positive, the other
    positives (with :obj:`in_batch_negatives`) and the :math:`K` negatives.
    Every field is checked in ``__post_init__``; ids are converted to
    ``int64`` on :obj:`device`. The config is frozen: build a new one per
    batch.

    Args:
        num_queries (int): :math:`B`.
        num_negatives (int): :math:`K` (:obj:`0` for in-batch negatives
            only).
        temperature (float, optional): The scale :math:`\lambda > 0` of
            :math:`s(q, v) = \lambda \, q^\top v - \log Q(v)`.
            (default: :obj:`1.0`)
        chunk_size (int, optional): Queries per chunk of Algorithm 1;
            :obj:`None` computes all at once. (default: :obj:`None`)
        in_batch_negatives (bool, optional): Use the other queries'
            positives as negatives. (default: :obj:`True`)
        positive_ids (torch.Tensor, optional): Ids of the positives
            :math:`[B]`, for masking accidental hits. (default: :obj:`None`)
        negative_ids (torch.Tensor, optional): Ids of the negatives
            :math:`[K]`; needs :obj:`positive_ids`. (default: :obj:`None`)
        weight (torch.Tensor, optional): Per-query weights :math:`[B]`, not
            requiring gradients. (default: :obj:`None`)
        reduction (str, optional): :obj:`"mean"` (divide the weighted sum by
            :math:`B`) or :obj:`"sum"`. (default: :obj:`"mean"`)
        has_log_q (bool, optional): Whether a :math:`\log Q` correction is
            applied. (default: :obj:`False`)
        device (torch.device, optional): Where the ids are moved (the
            embeddings' device). (default: :obj:`None`, left where they are)
    """

    num_queries: int
    num_negatives: int
    temperature: float = 1.0
    chunk_size: int | None = None
    in_batch_negatives: bool = True
    positive_ids: Tensor | None = field(default=None, repr=False)
    negative_ids: Tensor | None = field(default=None, repr=False)
    weight: Tensor | None = field(default=None, repr=False)
    reduction: str = "mean"
    has_log_q: bool = False
    device: torch.device | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        b = check_int(self.num_queries, "num_queries")
        k = check_int(self.num_negatives, "num_negatives")
        if not self.in_batch_negatives and k == 0:
            raise ValueError("without in-batch negatives, negatives must be given")
        temperature = check_float(
            self.temperature,
            "temperature",
            0.0,
            math.inf,
            low_open=True,
            high_open=True,
        )
        chunk_size = self.chunk_size
        if chunk_size is not None:
            chunk_size = check_int(chunk_size, "chunk_size", 1)
        pos_ids, neg_ids = self.positive_ids, self.negative_ids
        if pos_ids is not None:
            pos_ids = check_ids(pos_ids, "positive_ids")
            if pos_ids.numel() != b:
                raise ValueError(
                    f"positive_ids must have {b} entries, got {pos_ids.numel()}"
                )
            pos_ids = pos_ids.to(self.device)
        if neg_ids is not None:
            neg_ids = check_ids(neg_ids, "negative_ids")
            if neg_ids.numel() != k:
                raise ValueError(
                    f"negative_ids must have {k} entries, got {neg_ids.numel()}"
                )
            if pos_ids is None:
                raise ValueError("negative_ids needs positive_ids to detect duplicates")
            neg_ids = neg_ids.to(self.device)
        w = self.weight
        if w is not None:
            if not isinstance(w, Tensor) or w.dim() != 1 or w.numel() != b:
                shape = list(w.shape) if isinstance(w, Tensor) else type(w).__name__
                raise ValueError(f"weight must have shape [{b}], got {shape}")
            if w.requires_grad:
                raise ValueError("weight must not require gradients")
        if self.reduction not in ("mean", "sum"):
            raise ValueError(
                f"reduction must be 'mean' or 'sum', got {self.reduction!r}"
            )
        for name, value in (
            ("num_queries", b),
            ("num_negatives", k),
            ("temperature", temperature),
            ("chunk_size", chunk_size),
            ("in_batch_negatives", bool(self.in_batch_negatives)),
            ("positive_ids", pos_ids),
            ("negative_ids", neg_ids),
            ("has_log_q", bool(self.has_log_q)),
        ):
            object.__setattr__(self, name, value)

    @property
    def scale(self) -> float:
        """The factor applied to the weighted sum of the per-query losses."""
        if self.reduction == "sum" or self.num_queries == 0:
            return 1.0
        return 1.0 / self.num_queries

    @property
    def has_negatives(self) -> bool:
        """Whether there are random negatives (:math:`K > 0`)."""
        return self.num_negatives > 0

    @property
    def chunked(self) -> bool:
        """Whether Algorithm 1 applies: a chunk smaller than the batch."""
        return self.chunk_size is not None and self.chunk_size < self.num_queries
