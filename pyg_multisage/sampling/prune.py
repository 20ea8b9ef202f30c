r"""Degree-based graph pruning (OmniSage Appendix A.1, Algorithm 2).

Every source node :math:`u` of out-degree :math:`d_u` keeps each of its edges
independently with probability

.. math::
    p_u = \min\left(\frac{d_{\text{target}}}{d_u}, 1\right), \qquad
    d_{\text{target}} = \max\{\min\{d_u^{\alpha}, d_{\max}\}, d_{\min}\},

so it keeps :math:`\min(d_u, d_{\text{target}})` edges in expectation and
nodes with :math:`d_u \le d_{\min}` keep all of theirs. The coin of the
:math:`j`-th edge of :math:`u` (in input order) is the :math:`j`-th draw of the
counter-based stream ``stream(seed, u, substream)`` (``substream`` 0 unless
given): the mask is a pure function of ``(seed, substream, u, j)``, identical
for any thread count.
"""

from __future__ import annotations

import numba
import numpy as np
import torch
from torch import Tensor

from pyg_multisage._checks import (
    check_edge_index,
    check_float,
    check_int,
    check_seed,
)
from pyg_multisage.graph import CSR, build_csr
from pyg_multisage.sampling.rng import next_state, stream, uniform

__all__ = ["check_prune_args", "degree_prune"]


@numba.njit(cache=True, parallel=True)
def _prune_kernel(indptr, alpha, d_min, d_max, seed, substream, keep):
    """``keep[e]`` for the CSR edges: Algorithm 2, lines 2-9, per node."""
    num_src = indptr.shape[0] - 1
    for u in numba.prange(num_src):
        start = indptr[u]
        end = indptr[u + 1]
        d = end - start
        if d <= d_min:
            for e in range(start, end):
                keep[e] = True
            continue
        target = max(min(float(d) ** alpha, float(d_max)), float(d_min))
        p = min(target / d, 1.0)
        state = stream(seed, u, substream)
        for e in range(start, end):
            state, bits = next_state(state)
            keep[e] = uniform(bits) < p


def check_prune_args(
    alpha: float = 0.86, d_min: int = 10, d_max: int = 10000, seed: int = 0
) -> dict[str, float | int]:
    """Validates the arguments of :func:`degree_prune` and returns them as
    keyword arguments; raises naming the argument."""
    alpha = check_float(alpha, "alpha", 0.0, 1.0)
    d_min = check_int(d_min, "d_min", 0)
    d_max = check_int(d_max, "d_max", 0)
    if d_max < d_min:
        raise ValueError(f"d_max must be >= d_min ({d_min}), got {d_max}")
    return dict(alpha=alpha, d_min=d_min, d_max=d_max, seed=check_seed(seed))


def degree_prune(
    edge_index_or_csr: Tensor | np.ndarray | CSR,
    num_nodes: int | None = None,
    *,
    alpha: float = 0.86,
    d_min: int = 10,
    d_max: int = 10000,
    seed: int = 0,
    substream: int = 0,
) -> Tensor:
    r"""Degree-based pruning of OmniSage (Appendix A.1, Algorithm 2).

    Each source node :math:`u` of out-degree :math:`d_u` keeps every edge with
    probability :math:`\min(d_{\text{target}} / d_u, 1)`, where
    :math:`d_{\text{target}} = \max\{\min\{d_u^{\alpha}, d_{\max}\}, d_{\min}\}`:
    high-degree nodes lose most edges, nodes with :math:`d_u \le d_{\min}`
    none. Deterministic for a :obj:`seed` (the coins of node :math:`u` come
    from the stream ``(seed, u, 0)``).

    Args:
        edge_index_or_csr (Tensor or CSR): ``[2, E]`` integer edge indices
            (source in row 0) or a :class:`~pyg_multisage.graph.CSR`.
        num_nodes (int, optional): number of source nodes for an
            :obj:`edge_index`; inferred as ``max + 1`` when :obj:`None`.
            Ignored for a :class:`CSR`. (default: :obj:`None`)
        alpha (float, optional): the degree exponent :math:`\alpha \in [0, 1]`.
            (default: :obj:`0.86`)
        d_min (int, optional): degree kept in full. (default: :obj:`10`)
        d_max (int, optional): cap of :math:`d_{\text{target}}`,
            ``>= d_min``. (default: :obj:`10000`)
        seed (int, optional): random seed. (default: :obj:`0`)
        substream (int, optional): the third key of the nodes' streams, so
            two prunings under one :obj:`seed` (e.g. of an edge type and its
            reverse, whose node ids overlap) draw independent coins.
            (default: :obj:`0`)

    Returns:
        Tensor: ``bool [E]`` keep-mask in the input's edge order (for a
        :class:`CSR`, the order of its ``indices``).
    """
    args = check_prune_args(alpha, d_min, d_max, seed)
    alpha, d_min = args["alpha"], args["d_min"]
    d_max, seed = args["d_max"], args["seed"]
    substream = check_int(substream, "substream", 0)

    if isinstance(edge_index_or_csr, CSR):
        indptr = edge_index_or_csr.indptr
        keep = np.empty(edge_index_or_csr.num_edges, dtype=np.bool_)
        _prune_kernel(indptr, alpha, d_min, d_max, seed, substream, keep)
        return torch.from_numpy(keep)

    edge_index = edge_index_or_csr
    if isinstance(edge_index, Tensor):
        edge_index = edge_index.detach().cpu()
    check_edge_index(edge_index, "edge_index_or_csr")
    if isinstance(edge_index, Tensor):
        edge_index = edge_index.numpy()
    src = np.ascontiguousarray(edge_index[0], dtype=np.int64)
    num_edges = len(src)
    if num_nodes is None:
        num_nodes = int(src.max()) + 1 if num_edges else 0
    num_nodes = check_int(num_nodes, "num_nodes", 0)
    check_edge_index(
        edge_index, "edge_index_or_csr", num_nodes, size_names=("num_nodes", None)
    )
    # The CSR of the edge ids: row u lists u's edges in input order, so
    # ``indices`` maps CSR positions back to input positions.
    by_source = build_csr(src, np.arange(num_edges), num_nodes, num_edges)
    keep_sorted = np.empty(num_edges, dtype=np.bool_)
    _prune_kernel(by_source.indptr, alpha, d_min, d_max, seed, substream, keep_sorted)
    keep = np.empty(num_edges, dtype=np.bool_)
    keep[by_source.indices] = keep_sorted
    return torch.from_numpy(keep)
