r"""PinSage's hard-negative curriculum (Ying et al., KDD 2018, §3.3 and §3.4).

PinSage adds, for every query, *hard* negatives: items "somewhat related to
the query, but not as related as the positive", drawn from the query's own
Personalized PageRank ranking, ranks 2000–5000 of billions of items. They
enter by a curriculum: the first epoch uses random negatives only, and epoch
:math:`e` adds :math:`e - 1` hard negatives per query.

* :func:`hard_negative_count`: the schedule, a pure function of the step.
* :class:`HardNegativeBand`: the band ``[lo, hi)`` of every query's ranking
  (e.g. Pixie visit counts,
  :func:`~pyg_multisage.references.pixie_visit_counts`, or any
  :class:`~pyg_multisage.sampling.NeighborTable` sorted best first), and
  :meth:`HardNegativeBand.sample`, a uniform draw from it with a caller's
  generator (so a batch stays a pure function of its seed and step).
* :func:`softmax_loss_with_hard_negatives`: OmniSage's sampled softmax
  (Eq. 1: in-batch plus shared random negatives, accidental hits masked)
  with each query's own hard negatives as extra candidates.
* :func:`margin_loss_with_hard_negatives`: MultiSage Eq. 3 (PinSage's
  max-margin loss) over the shared and the hard negatives.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from pyg_multisage._checks import check_aligned, check_matrix
from pyg_multisage.losses.max_margin import max_margin_loss
from pyg_multisage.sampling import NeighborTable

__all__ = [
    "HardNegativeBand",
    "HardNegativeCurriculum",
    "hard_negative_count",
    "margin_loss_with_hard_negatives",
    "softmax_loss_with_hard_negatives",
]


def hard_negative_count(
    step: int,
    steps_per_epoch: int,
    max_count: int,
    epochs_per_negative: float = 1.0,
) -> int:
    r"""Hard negatives per query at optimizer step :obj:`step` (0-based):
    PinSage's curriculum, one more every :obj:`epochs_per_negative` epochs,
    none in the first, at most :obj:`max_count`,

    .. math::
        h(s) = \min\Big(h_{max}, \Big\lfloor \frac{s}{E \cdot S} \Big\rfloor
        \Big)

    with :math:`S` = :obj:`steps_per_epoch` and :math:`E` =
    :obj:`epochs_per_negative`; :math:`E = 1` is PinSage's "epoch
    :math:`e` adds :math:`e - 1`".

    Raises:
        ValueError: a negative step or count, a step count per epoch below
            one, or :math:`E \le 0`.
    """
    if int(step) != step or step < 0:
        raise ValueError(f"step must be an integer >= 0, got {step!r}")
    if int(steps_per_epoch) != steps_per_epoch or steps_per_epoch < 1:
        raise ValueError(
            f"steps_per_epoch must be an integer >= 1, got {steps_per_epoch!r}"
        )
    if int(max_count) != max_count or max_count < 0:
        raise ValueError(f"max_count must be an integer >= 0, got {max_count!r}")
    if not (isinstance(epochs_per_negative, (int, float)) and epochs_per_negative > 0):
        raise ValueError(
            f"epochs_per_negative must be > 0, got {epochs_per_negative!r}"
        )
    if max_count == 0:
        return 0
    period = epochs_per_negative * steps_per_epoch
    # Exact for integer periods; the epsilon guards 0.1 * 10 style rounding.
    return min(int(max_count), int(math.floor(step / period + 1e-9)))


class HardNegativeBand:
    r"""Each query's candidate hard negatives: the targets at ranks
    ``lo`` (inclusive) to ``hi`` (exclusive), 0-based, of the query's own
    ranking, best first (PinSage: ranks 2000–5000 of the PPR ranking).

    A query whose ranking is shorter than ``lo + 1`` has an empty band; its
    hard negatives are then drawn uniformly from all :obj:`num_nodes`
    targets, the query excepted (a random negative in their place), and
    :attr:`coverage` reports the fraction of queries with a non-empty band.

    Args:
        ranking (NeighborTable): Row :math:`i` ranks the targets for query
            ``ranking.seeds[i]``, best first (e.g.
            :func:`~pyg_multisage.references.pixie_visit_counts`). Queries
            that are not seeds have an empty band.
        num_nodes (int): Number of targets; every id is below it.
        band (tuple[int, int]): ``(lo, hi)`` with ``0 <= lo < hi``.
    """

    def __init__(self, ranking: NeighborTable, num_nodes: int, band: tuple[int, int]):
        if not isinstance(ranking, NeighborTable):
            raise TypeError(
                f"ranking must be a NeighborTable, got {type(ranking).__name__}"
            )
        if int(num_nodes) != num_nodes or num_nodes < 2:
            raise ValueError(f"num_nodes must be an integer >= 2, got {num_nodes!r}")
        lo, hi = _check_band(band)
        seeds, ptr, nbr = (
            ranking.seeds.long(),
            ranking.ptr.long(),
            ranking.neighbor.long(),
        )
        if seeds.numel() and (int(seeds.min()) < 0 or int(seeds.max()) >= num_nodes):
            raise ValueError(f"ranking.seeds must lie in [0, {num_nodes})")
        if nbr.numel() and (int(nbr.min()) < 0 or int(nbr.max()) >= num_nodes):
            raise ValueError(f"ranking.neighbor must lie in [0, {num_nodes})")
        if torch.unique(seeds).numel() != seeds.numel():
            raise ValueError("ranking.seeds lists a query twice")
        deg = ptr[1:] - ptr[:-1]
        start = torch.zeros(num_nodes, dtype=torch.long)
        size = torch.zeros(num_nodes, dtype=torch.long)
        start[seeds] = ptr[:-1] + lo
        size[seeds] = (deg - lo).clamp(min=0).clamp(max=hi - lo)
        self.num_nodes, self.band = int(num_nodes), (lo, hi)
        self.neighbor, self.start, self.size = nbr, start, size

    @property
    def coverage(self) -> float:
        """Fraction of all targets whose band is non-empty."""
        return float((self.size > 0).float().mean())

    def candidates(self, query: int) -> Tensor:
        """The band of one query (ids, best ranked first)."""
        s, n = int(self.start[query]), int(self.size[query])
        return self.neighbor[s : s + n]

    def sample(self, queries: Tensor, count: int, generator: torch.Generator) -> Tensor:
        """``[B, count]`` hard negatives, each drawn uniformly (with
        replacement) from its query's band, or from all targets but the
        query when the band is empty. Consumes random numbers of
        :obj:`generator` only when :obj:`count` > 0."""
        if queries.dim() != 1 or queries.dtype != torch.long:
            raise ValueError("queries must be a 1-D int64 tensor of target ids")
        if queries.numel() and (
            int(queries.min()) < 0 or int(queries.max()) >= self.num_nodes
        ):
            raise ValueError(f"queries must lie in [0, {self.num_nodes})")
        if int(count) != count or count < 0:
            raise ValueError(f"count must be an integer >= 0, got {count!r}")
        b = queries.numel()
        if count == 0:
            return queries.new_zeros(b, 0)
        u = torch.rand(b, count, generator=generator, dtype=torch.float64)
        size = self.size[queries].unsqueeze(1)
        start = self.start[queries].unsqueeze(1)
        in_band = (u * size).long().clamp(max=(size - 1).clamp(min=0))
        if self.neighbor.numel():
            last = self.neighbor.numel() - 1
            picked = self.neighbor[(start + in_band).clamp(max=last)]
        else:
            picked = torch.zeros_like(in_band)
        # Empty band: uniform over the other num_nodes - 1 targets.
        other = (u * (self.num_nodes - 1)).long().clamp(max=self.num_nodes - 2)
        other = other + (other >= queries.unsqueeze(1)).long()
        return torch.where(size > 0, picked, other)

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(num_nodes={self.num_nodes}, "
            f"band={self.band}, coverage={self.coverage:.3f})"
        )


class HardNegativeCurriculum:
    """PinSage's curriculum in one object: :func:`hard_negative_count`'s
    schedule and a :class:`HardNegativeBand` to draw from.

    Args:
        band (HardNegativeBand): Each query's candidates.
        steps_per_epoch (int): Optimizer steps per epoch, e.g.
            ``ceil(num_train_pairs / batch_size)``.
        max_count (int): Most hard negatives per query.
        epochs_per_negative (float, optional): One more hard negative every
            so many epochs. (default: :obj:`1.0`, PinSage's)
    """

    def __init__(
        self,
        band: HardNegativeBand,
        steps_per_epoch: int,
        max_count: int,
        epochs_per_negative: float = 1.0,
    ):
        if not isinstance(band, HardNegativeBand):
            raise TypeError(
                f"band must be a HardNegativeBand, got {type(band).__name__}"
            )
        hard_negative_count(0, steps_per_epoch, max_count, epochs_per_negative)
        self.band, self.steps_per_epoch = band, int(steps_per_epoch)
        self.max_count, self.epochs_per_negative = int(max_count), epochs_per_negative

    def count(self, step: int) -> int:
        """Hard negatives per query at :obj:`step` (:func:`hard_negative_count`)."""
        return hard_negative_count(
            step, self.steps_per_epoch, self.max_count, self.epochs_per_negative
        )

    def sample(self, queries: Tensor, step: int, generator: torch.Generator) -> Tensor:
        """``[B, count(step)]`` hard negatives of :obj:`queries`
        (:meth:`HardNegativeBand.sample`)."""
        return self.band.sample(queries, self.count(step), generator)


def _check_band(band: object) -> tuple[int, int]:
    if (
        not isinstance(band, (tuple, list))
        or len(band) != 2
        or not all(isinstance(b, int) and not isinstance(b, bool) for b in band)
    ):
        raise ValueError(f"band must be a pair of integers (lo, hi), got {band!r}")
    lo, hi = band
    if not 0 <= lo < hi:
        raise ValueError(f"band must satisfy 0 <= lo < hi, got {tuple(band)}")
    return int(lo), int(hi)


def _check_hard(query: Tensor, hard: Tensor, hard_ids: Tensor | None) -> None:
    if (
        hard.dim() != 3
        or hard.size(0) != query.size(0)
        or hard.size(2) != query.size(1)
    ):
        raise ValueError(
            f"hard must have shape [B, H, d] = [{query.size(0)}, H, {query.size(1)}], "
            f"got {list(hard.shape)}"
        )
    if hard_ids is not None and hard_ids.shape != hard.shape[:2]:
        raise ValueError(
            f"hard_ids must have shape [B, H] = {list(hard.shape[:2])}, "
            f"got {list(hard_ids.shape)}"
        )


def softmax_loss_with_hard_negatives(
    query: Tensor,
    positive: Tensor,
    negatives: Tensor | None,
    hard: Tensor,
    *,
    positive_ids: Tensor | None = None,
    negative_ids: Tensor | None = None,
    hard_ids: Tensor | None = None,
) -> Tensor:
    r"""The sampled softmax of OmniSage Eq. 1 (without logQ) with per-query
    hard negatives: for query :math:`q_i` the candidates are its positive,
    the other queries' positives, the shared random :obj:`negatives` and its
    own :math:`H` hard negatives,

    .. math::
        \ell_i = -\log \frac{e^{q_i^\top p_i}}{e^{q_i^\top p_i}
        + \sum_{j \ne i} e^{q_i^\top p_j} + \sum_{n} e^{q_i^\top n}
        + \sum_{h=1}^{H} e^{q_i^\top n_{ih}}},

    averaged over queries. Scale :obj:`query` by :math:`\lambda` first. A
    candidate whose id equals :math:`p_i`'s (given the ids) is masked, as in
    :func:`~pyg_multisage.losses.sampled_softmax_loss`.

    Args:
        query (torch.Tensor): :math:`[B, d]`. positive (torch.Tensor):
            :math:`[B, d]`.
        negatives (torch.Tensor, optional): Shared random negatives
            :math:`[K, d]`.
        hard (torch.Tensor): Hard negatives :math:`[B, H, d]`.
        positive_ids, negative_ids, hard_ids (torch.Tensor, optional): Ids
            :math:`[B]`, :math:`[K]`, :math:`[B, H]` for masking.
    """
    check_matrix(query, "query")
    check_aligned(positive, "positive", query, "query")
    _check_hard(query, hard, hard_ids)
    b = query.size(0)
    if b == 0:
        return query.sum() * 0.0
    cols = [query @ positive.t()]
    masks = [None]
    if positive_ids is not None:
        m = positive_ids.unsqueeze(1) == positive_ids.unsqueeze(0)
        masks[0] = m & ~torch.eye(b, dtype=torch.bool, device=query.device)
    if negatives is not None and negatives.size(0) > 0:
        check_matrix(negatives, "negatives")
        cols.append(query @ negatives.t())
        masks.append(
            positive_ids.unsqueeze(1) == negative_ids.unsqueeze(0)
            if positive_ids is not None and negative_ids is not None
            else None
        )
    cols.append((hard * query.unsqueeze(1)).sum(-1))
    masks.append(
        hard_ids == positive_ids.unsqueeze(1)
        if positive_ids is not None and hard_ids is not None
        else None
    )
    logits = torch.cat(
        [
            c if m is None else c.masked_fill(m, float("-inf"))
            for c, m in zip(cols, masks, strict=True)
        ],
        dim=1,
    )
    target = torch.arange(b, device=query.device)
    return torch.nn.functional.cross_entropy(logits, target)


def margin_loss_with_hard_negatives(
    query: Tensor,
    positive: Tensor,
    negatives: Tensor | None,
    hard: Tensor,
    *,
    margin: float = 0.1,
) -> Tensor:
    r"""MultiSage Eq. 3 (PinSage's max-margin loss) averaged over every
    triplet: each query against the shared :obj:`negatives` :math:`[K, d]`
    and its own hard negatives :obj:`hard` :math:`[B, H, d]`."""
    check_matrix(query, "query")
    _check_hard(query, hard, None)
    parts = [hard]
    if negatives is not None and negatives.size(0) > 0:
        parts.insert(0, negatives.unsqueeze(0).expand(query.size(0), -1, -1))
    return max_margin_loss(query, positive, torch.cat(parts, dim=1), margin=margin)
