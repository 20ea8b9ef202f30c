r"""Synthetic multipartite graphs with planted facets.

A generator of target--context graphs in which the ground truth of "related
targets" is known: a stand-in for Pinterest's pin--board graph (MultiSage §1)
that scales to tens of millions of edges in seconds, for the demo, the tests
and the scale benchmarks.
"""

from __future__ import annotations

from collections.abc import Callable

import numba
import numpy as np
import torch
from numba import prange
from torch_geometric.data import HeteroData, InMemoryDataset

from pyg_multisage._checks import check_float, check_int, check_seed
from pyg_multisage.datasets.dblp import split_pairs
from pyg_multisage.sampling.rng import next_state, randint, stream, uniform

__all__ = ["SyntheticMultipartite", "synthetic_multipartite"]


def _power_law(rng: np.random.Generator, size: int, exponent: float) -> np.ndarray:
    """Continuous Pareto samples :math:`x \\geq 1` with density
    :math:`\\propto x^{-\\text{exponent}}`."""
    u = rng.random(size)
    return (1.0 - u) ** (-1.0 / (exponent - 1.0))


@numba.njit(cache=True, parallel=True)
def _draw_edges(
    draw_ptr,
    target_facets,
    cum,
    seg_start,
    seg_total,
    facet_ptr,
    by_facet,
    noise,
    num_contexts,
    seed,
    draws,
    counts,
    num_unique,
):
    """Per target ``t``: ``draw_ptr[t+1] - draw_ptr[t]`` context draws from
    stream ``(seed, t, 1)``, sorted and collapsed in place into the first
    ``num_unique[t]`` slots with their multiplicities in ``counts``."""
    num_targets = draw_ptr.size - 1
    k = target_facets.shape[1]
    for t in prange(num_targets):
        state = stream(seed, t, 1)
        lo = draw_ptr[t]
        hi = draw_ptr[t + 1]
        for e in range(lo, hi):
            state, bits = next_state(state)
            if noise > 0.0 and uniform(bits) < noise:
                state, bits = next_state(state)
                draws[e] = randint(bits, num_contexts)
                continue
            state, bits = next_state(state)
            f = target_facets[t, randint(bits, k)]
            state, bits = next_state(state)
            v = seg_start[f] + uniform(bits) * seg_total[f]
            a = facet_ptr[f]
            b = facet_ptr[f + 1] - 1
            while a < b:  # first position of the facet's segment with cum > v
                m = (a + b) // 2
                if cum[m] > v:
                    b = m
                else:
                    a = m + 1
            draws[e] = by_facet[a]
        draws[lo:hi].sort()
        w = lo
        for e in range(lo, hi):
            if w > lo and draws[e] == draws[w - 1]:
                counts[w - 1] += 1
            else:
                draws[w] = draws[e]
                counts[w] = 1
                w += 1
        num_unique[t] = w - lo


@numba.njit(cache=True, parallel=True)
def _compact(draw_ptr, ptr, draws, counts):
    """``[2, E]`` target-to-context edges (sorted) and their weights."""
    num_edges = ptr[-1]
    edge_index = np.empty((2, num_edges), dtype=np.int64)
    weight = np.empty(num_edges, dtype=np.float32)
    for t in prange(ptr.size - 1):
        n = ptr[t + 1] - ptr[t]
        for i in range(n):
            edge_index[0, ptr[t] + i] = t
            edge_index[1, ptr[t] + i] = draws[draw_ptr[t] + i]
            weight[ptr[t] + i] = counts[draw_ptr[t] + i]
    return edge_index, weight


@numba.njit(cache=True)
def _reverse(edge_index, weight, num_contexts):
    """The reversed edges sorted by context (a stable counting sort)."""
    num_edges = weight.size
    start = np.zeros(num_contexts + 1, dtype=np.int64)
    for e in range(num_edges):
        start[edge_index[1, e] + 1] += 1
    for i in range(num_contexts):
        start[i + 1] += start[i]
    out = np.empty((2, num_edges), dtype=np.int64)
    out_weight = np.empty(num_edges, dtype=np.float32)
    for e in range(num_edges):
        c = edge_index[1, e]
        j = start[c]
        out[0, j] = c
        out[1, j] = edge_index[0, e]
        out_weight[j] = weight[e]
        start[c] = j + 1
    return out, out_weight


def _distinct_facets(
    rng: np.random.Generator, n: int, num_facets: int, k: int
) -> np.ndarray:
    """``[n, k]`` sorted rows of ``k`` distinct uniform facets.

    Draw ``j`` is uniform over the ``num_facets - j`` facets not yet taken:
    a rank ``r`` is shifted past every taken facet ``<= r`` (taken facets
    visited in increasing order), in ``O(n k^2)``.
    """
    out = np.empty((n, k), dtype=np.int64)
    for j in range(k):
        r = rng.integers(0, num_facets - j, n)
        taken = np.sort(out[:, :j], axis=1)
        for i in range(j):
            r += r >= taken[:, i]
        out[:, j] = r
    out.sort(axis=1)
    return out


def synthetic_multipartite(
    num_targets: int = 10_000,
    num_contexts: int = 1_000,
    num_facets: int = 20,
    avg_degree: float = 10.0,
    facets_per_target: int = 2,
    exponent: float = 2.5,
    context_exponent: float = 2.5,
    noise: float = 0.05,
    num_features: int = 32,
    feature_noise: float = 1.0,
    num_pairs: int | None = None,
    split: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    target: str = "item",
    context: str = "board",
    relation: str = "in",
    reverse_relation: str = "has",
    num_users: int = 0,
    sequence_length: int = 8,
) -> HeteroData:
    r"""Generates one planted-facet multipartite graph; see
    :class:`SyntheticMultipartite` for the model and the arguments."""
    num_targets = check_int(num_targets, "num_targets", 2)
    num_contexts = check_int(num_contexts, "num_contexts", 1)
    num_facets = check_int(num_facets, "num_facets", 1)
    avg_degree = check_float(avg_degree, "avg_degree", 1.0, float(num_contexts))
    facets_per_target = check_int(facets_per_target, "facets_per_target", 1)
    if facets_per_target > num_facets:
        raise ValueError(
            f"facets_per_target ({facets_per_target}) cannot exceed "
            f"num_facets ({num_facets})"
        )
    if num_contexts < num_facets:
        raise ValueError(
            f"num_contexts ({num_contexts}) must be >= num_facets ({num_facets})"
        )
    exponent = check_float(exponent, "exponent", 1.0, 100.0, low_open=True)
    context_exponent = check_float(
        context_exponent, "context_exponent", 1.0, 100.0, low_open=True
    )
    noise = check_float(noise, "noise")
    num_features = check_int(num_features, "num_features", 1)
    feature_noise = check_float(feature_noise, "feature_noise", 0.0, 1e6)
    if num_pairs is None:
        num_pairs = 2 * num_targets
    num_pairs = check_int(num_pairs, "num_pairs", 0)
    num_users = check_int(num_users, "num_users", 0)
    sequence_length = check_int(sequence_length, "sequence_length", 2)
    seed = check_seed(seed)
    rng = np.random.default_rng(seed)

    # Contexts: one facet each (every facet gets at least one context) and a
    # power-law popularity weight (Pareto with exponent context_exponent).
    context_facet = np.concatenate(
        [np.arange(num_facets), rng.integers(0, num_facets, num_contexts - num_facets)]
    )
    rng.shuffle(context_facet)
    popularity = _power_law(rng, num_contexts, context_exponent)
    by_facet = np.argsort(context_facet, kind="stable")  # contexts grouped by facet
    cum = np.cumsum(popularity[by_facet])
    facet_ptr = np.searchsorted(context_facet[by_facet], np.arange(num_facets + 1))
    seg_start = np.concatenate([[0.0], cum])[facet_ptr[:-1]]
    seg_total = cum[facet_ptr[1:] - 1] - seg_start

    # Targets: `facets_per_target` distinct facets, uniformly.
    target_facets = _distinct_facets(rng, num_targets, num_facets, facets_per_target)

    # Power-law degrees rescaled to the mean avg_degree, capped at
    # num_contexts (duplicates collapse later, so the mean is approximate).
    raw = _power_law(rng, num_targets, exponent)
    degree = np.maximum(1, np.rint(raw * (avg_degree / raw.mean()))).astype(np.int64)
    np.minimum(degree, num_contexts, out=degree)
    draw_ptr = np.zeros(num_targets + 1, dtype=np.int64)
    np.cumsum(degree, out=draw_ptr[1:])

    # Edge draws: a Numba kernel over targets, each with its own
    # counter-based stream (seed, target); duplicates collapse into counts.
    draws = np.empty(int(draw_ptr[-1]), dtype=np.int64)
    counts = np.empty_like(draws)
    num_unique = np.empty(num_targets, dtype=np.int64)
    _draw_edges(
        draw_ptr,
        np.ascontiguousarray(target_facets),
        cum,
        seg_start,
        seg_total,
        facet_ptr.astype(np.int64),
        by_facet.astype(np.int64),
        noise,
        num_contexts,
        seed,
        draws,
        counts,
        num_unique,
    )
    ptr = np.zeros(num_targets + 1, dtype=np.int64)
    np.cumsum(num_unique, out=ptr[1:])
    edge_index, weight = _compact(draw_ptr, ptr, draws, counts)
    rev_index, rev_weight = _reverse(edge_index, weight, num_contexts)
    del draws, counts

    # Features: facet centroids plus Gaussian noise.
    centroids = rng.standard_normal((num_facets, num_features)).astype(np.float32)
    x_target = centroids[target_facets].mean(axis=1)
    x_target += feature_noise * rng.standard_normal(x_target.shape, dtype=np.float32)
    x_context = centroids[context_facet].copy()
    x_context += feature_noise * rng.standard_normal(x_context.shape, dtype=np.float32)

    # Positive pairs: a target, one of its facets, another target of it.
    fl = target_facets.ravel()
    order = np.argsort(fl, kind="stable")
    members = order // facets_per_target  # targets grouped by facet
    mptr = np.searchsorted(fl[order], np.arange(num_facets + 1))
    a = rng.integers(0, num_targets, num_pairs)
    f = target_facets[a, rng.integers(0, facets_per_target, num_pairs)]
    size = mptr[f + 1] - mptr[f]
    b = members[
        mptr[f] + np.minimum((rng.random(num_pairs) * size).astype(np.int64), size - 1)
    ]
    keep = a != b
    lo, hi = np.minimum(a, b)[keep], np.maximum(a, b)[keep]
    pkey = np.unique(lo * num_targets + hi)  # sorted, no repeats
    pairs = torch.from_numpy(np.stack([pkey // num_targets, pkey % num_targets]))

    # Users (drawn last, so the graph and pairs do not depend on them): one
    # facet each, a sequence of uniform targets of that facet.
    if num_users:
        uf = rng.integers(0, num_facets, num_users)
        size = (mptr[uf + 1] - mptr[uf])[:, None]
        pick = np.minimum(
            (rng.random((num_users, sequence_length)) * size).astype(np.int64),
            size - 1,
        )
        user_seq = members[mptr[uf][:, None] + pick]

    data = HeteroData()
    data[target].x = torch.from_numpy(x_target)
    data[target].facets = torch.from_numpy(target_facets.astype(np.int64))
    data[target].y = data[target].facets[:, 0].clone()
    data[target].degree = torch.from_numpy(num_unique)
    data[context].x = torch.from_numpy(x_context)
    data[context].facet = torch.from_numpy(context_facet.astype(np.int64))
    fwd = data[target, relation, context]
    fwd.edge_index = torch.from_numpy(edge_index)
    fwd.edge_weight = torch.from_numpy(weight)
    bwd = data[context, reverse_relation, target]
    bwd.edge_index = torch.from_numpy(rev_index)
    bwd.edge_weight = torch.from_numpy(rev_weight)
    data.train_pairs, data.val_pairs, data.test_pairs = split_pairs(pairs, split, seed)
    data.num_facets = num_facets
    if num_users:
        data.user_sequences = torch.from_numpy(user_seq.astype(np.int64))
        data.user_facet = torch.from_numpy(uf.astype(np.int64))
    return data


class SyntheticMultipartite(InMemoryDataset):
    r"""A synthetic target--context graph with planted facets.

    Every context (board) belongs to one of :math:`F` facets (topics); every
    target (item) has :obj:`facets_per_target` distinct facets drawn
    uniformly. A target :math:`t` gets a power-law degree
    :math:`d_t \propto x, \; p(x) \propto x^{-\gamma}` (:obj:`exponent`
    :math:`\gamma`, rescaled to mean :obj:`avg_degree`, capped at the number
    of contexts) and draws :math:`d_t` contexts: with probability
    :math:`1 - \epsilon` (:obj:`noise` :math:`\epsilon`) one of its facets
    uniformly, then a context of that facet with probability proportional
    to its popularity :math:`w_c`, itself power-law distributed,
    :math:`p(w) \propto w^{-\beta}` (:obj:`context_exponent`
    :math:`\beta`), so context degrees are heavy tailed too; otherwise a
    uniform context. Repeated draws collapse into
    one edge whose ``edge_weight`` counts them.

    Features carry a noisy facet signal:
    :math:`\mathbf{x}_t = \frac{1}{k}\sum_{f \in F_t} \boldsymbol{\mu}_f
    + \sigma \boldsymbol{\varepsilon}` and
    :math:`\mathbf{x}_c = \boldsymbol{\mu}_{f_c} + \sigma
    \boldsymbol{\varepsilon}` with Gaussian centroids
    :math:`\boldsymbol{\mu}_f` and :obj:`feature_noise` :math:`\sigma`.
    Positive pairs (the retrieval ground truth, as DBLP's same-author pairs)
    are distinct targets sharing a facet: a uniform target, one of its
    facets, a uniform other target of that facet; unordered, deduplicated,
    split by :func:`~pyg_multisage.datasets.dblp.split_pairs`.

    The graph is ``data[target]`` (``x``, ``facets`` ``[N, k]`` ground
    truth, ``y`` = first facet, ``degree``), ``data[context]`` (``x``,
    ``facet``), edges ``(target, relation, context)`` and the reverse
    ``(context, reverse_relation, target)`` with ``edge_weight``, and
    ``train_pairs`` / ``val_pairs`` / ``test_pairs`` (``[2, P]``). Everything
    is vectorised NumPy driven by ``numpy.random.default_rng(seed)``: the same
    seed gives the same graph; :math:`10^7` edges take seconds.

    Args:
        num_targets (int, optional): number of targets. (default: :obj:`10000`)
        num_contexts (int, optional): number of contexts (:math:`\geq F`).
            (default: :obj:`1000`)
        num_facets (int, optional): number of facets :math:`F`.
            (default: :obj:`20`)
        avg_degree (float, optional): mean target degree before duplicate
            draws collapse. (default: :obj:`10.0`)
        facets_per_target (int, optional): facets per target :math:`k`.
            (default: :obj:`2`)
        exponent (float, optional): power-law exponent :math:`\gamma > 1` of
            target degrees. (default: :obj:`2.5`)
        context_exponent (float, optional): power-law exponent
            :math:`\beta > 1` of context popularity. (default: :obj:`2.5`)
        noise (float, optional): probability :math:`\epsilon` of an
            off-facet edge. (default: :obj:`0.05`)
        num_features (int, optional): feature size. (default: :obj:`32`)
        feature_noise (float, optional): feature noise :math:`\sigma`.
            (default: :obj:`1.0`)
        num_pairs (int, optional): positive pairs drawn before
            deduplication (default: :obj:`2 * num_targets`).
        split ((float, float, float), optional): train/val/test ratios of
            the pairs. (default: :obj:`(0.8, 0.1, 0.1)`)
        seed (int, optional): random seed. (default: :obj:`0`)
        target (str, optional): target node type. (default: :obj:`'item'`)
        context (str, optional): context node type. (default: :obj:`'board'`)
        relation (str, optional): target-to-context relation.
            (default: :obj:`'in'`)
        reverse_relation (str, optional): context-to-target relation.
            (default: :obj:`'has'`)
        num_users (int, optional): users with an engagement sequence.
            (default: :obj:`0`, none)
        sequence_length (int, optional): actions per user (:math:`\geq 2`).
            (default: :obj:`8`)
        transform (callable, optional): applied on every access.
            (default: :obj:`None`)
    """

    def __init__(
        self,
        num_targets: int = 10_000,
        num_contexts: int = 1_000,
        num_facets: int = 20,
        avg_degree: float = 10.0,
        facets_per_target: int = 2,
        exponent: float = 2.5,
        context_exponent: float = 2.5,
        noise: float = 0.05,
        num_features: int = 32,
        feature_noise: float = 1.0,
        num_pairs: int | None = None,
        split: tuple[float, float, float] = (0.8, 0.1, 0.1),
        seed: int = 0,
        target: str = "item",
        context: str = "board",
        relation: str = "in",
        reverse_relation: str = "has",
        transform: Callable | None = None,
        num_users: int = 0,
        sequence_length: int = 8,
    ) -> None:
        super().__init__(None, transform)
        self.target, self.context = target, context
        self.params = dict(
            num_targets=num_targets,
            num_contexts=num_contexts,
            num_facets=num_facets,
            avg_degree=avg_degree,
            facets_per_target=facets_per_target,
            seed=seed,
        )
        data = synthetic_multipartite(
            num_targets,
            num_contexts,
            num_facets,
            avg_degree,
            facets_per_target,
            exponent,
            context_exponent,
            noise,
            num_features,
            feature_noise,
            num_pairs,
            split,
            seed,
            target,
            context,
            relation,
            reverse_relation,
            num_users,
            sequence_length,
        )
        self._data, self.slices = self.collate([data])

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.__class__.__name__}({args})"
