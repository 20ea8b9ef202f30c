r"""The count-min sketch: a streaming frequency estimate for OmniSage's logQ.

OmniSage (§3.3) corrects the scores of its sampled softmax (Eq. 1) by
:math:`\log Q(v)`, the log of the probability that :math:`v` is sampled as a
candidate, estimated "with a count-min sketch" (Cormode and Muthukrishnan,
2005). :class:`CountMinSketch` is that estimate.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from pyg_multisage._checks import check_float, check_ids, check_int, check_seed

__all__ = ["CountMinSketch"]


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
        width, depth = check_int(width, "width", 1), check_int(depth, "depth", 1)
        seed = check_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        tabs = torch.randint(
            -(2**63), 2**63 - 1, (depth, 8, 256), generator=gen, dtype=torch.int64
        )
        self.width, self.depth, self.seed = width, depth, seed
        self.register_buffer("hash_tables", tabs)
        self.register_buffer("table", torch.zeros(depth, width, dtype=torch.int64))
        self.register_buffer("total", torch.zeros((), dtype=torch.int64))

    @classmethod
    def from_error(cls, eps: float, delta: float, seed: int = 0) -> CountMinSketch:
        r"""A sketch sized so that :math:`\Pr[\hat c > c + \varepsilon N] \le
        \delta`: :math:`w = \lceil e / \varepsilon \rceil`,
        :math:`\text{depth} = \lceil \ln(1 / \delta) \rceil`."""
        eps = check_float(eps, "eps", 0.0, 1.0, low_open=True, high_open=True)
        delta = check_float(delta, "delta", 0.0, 1.0, low_open=True, high_open=True)
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
        ids = check_ids(ids, "ids")
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
        ids = check_ids(ids, "ids")
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
