r"""Training objectives, one file per objective.

* :mod:`~pyg_multisage.losses.max_margin`: :func:`max_margin_loss` and
  :class:`MaxMarginLoss`, the triplet objective of PinSage and MultiSage
  (MultiSage Eq. 3).
* :mod:`~pyg_multisage.losses.count_min_sketch`: :class:`CountMinSketch`,
  the streaming frequency estimate (Cormode and Muthukrishnan, 2005) that
  gives OmniSage's :math:`Q(v)` (§3.3).
* :mod:`~pyg_multisage.losses.sampled_softmax`: :func:`sampled_softmax_loss`
  and :class:`SampledSoftmaxLoss`, OmniSage's contrastive loss (Eq. 1) over
  in-batch plus random negatives with the correction
  :math:`s(q, v) = \lambda \, q^\top v - \log Q(v)` and masking of accidental
  hits; :func:`candidate_log_q`, the logQ of a batch's candidates from a
  sketch.
* :mod:`~pyg_multisage.losses.chunked_softmax`: the memory-saving chunked
  computation of the same loss (OmniSage §3.4.2, Algorithm 1), used by
  :func:`sampled_softmax_loss` when given ``chunk_size``.
* :mod:`~pyg_multisage.losses.hard_negatives`: PinSage's hard-negative
  curriculum (:class:`HardNegativeCurriculum`: negatives from a band of each
  query's own ranking, one more per epoch) and the two losses with per-query
  hard negatives.
* :mod:`~pyg_multisage.losses.softmax_config`:
  :class:`SampledSoftmaxConfig`, the validated settings of one sampled-softmax
  batch shared by the unchunked and chunked computations.
"""

from pyg_multisage.losses.chunked_softmax import chunked_sampled_softmax
from pyg_multisage.losses.count_min_sketch import CountMinSketch
from pyg_multisage.losses.hard_negatives import (
    HardNegativeBand,
    HardNegativeCurriculum,
    hard_negative_count,
    margin_loss_with_hard_negatives,
    softmax_loss_with_hard_negatives,
)
from pyg_multisage.losses.max_margin import MaxMarginLoss, max_margin_loss
from pyg_multisage.losses.sampled_softmax import (
    SampledSoftmaxLoss,
    candidate_log_q,
    sampled_softmax_loss,
)
from pyg_multisage.losses.softmax_config import SampledSoftmaxConfig

__all__ = [
    "CountMinSketch",
    "HardNegativeBand",
    "HardNegativeCurriculum",
    "hard_negative_count",
    "margin_loss_with_hard_negatives",
    "softmax_loss_with_hard_negatives",
    "MaxMarginLoss",
    "SampledSoftmaxConfig",
    "SampledSoftmaxLoss",
    "candidate_log_q",
    "chunked_sampled_softmax",
    "max_margin_loss",
    "sampled_softmax_loss",
]
