"""Batch-local relabelling of sampled node ids (the loaders' hot path).

:func:`relabel` gives the node list of one node type in a mini-batch (the
seeds first, exactly as given, then every other id once in order of first
appearance) and the local position of every other id, in one pass with a
position map indexed by node id: ``O(n)`` work, no sort. With
``missing=True`` an id ``-1`` among the others ("no node", as in the
``context`` of an importance edge) maps to ``-1`` and adds no node. The map is
per-thread scratch kept between calls (all ``-1`` outside a call; entries
touched by a call are reset through the node list it wrote).
"""

from __future__ import annotations

import threading

import numba
import numpy as np

_local = threading.local()


@numba.njit(cache=True)
def _relabel(seeds, others, position):
    num_seeds = seeds.shape[0]
    node = np.empty(num_seeds + others.shape[0], np.int64)
    for i in range(num_seeds):
        v = seeds[i]
        node[i] = v
        if position[v] < 0:
            position[v] = i  # a duplicate seed maps to its first position
    count = num_seeds
    mapped = np.empty(others.shape[0], np.int64)
    for j in range(others.shape[0]):
        v = others[j]
        if v < 0:  # "no node" (callers allow -1 only with missing=True)
            mapped[j] = -1
            continue
        pos = position[v]
        if pos < 0:
            pos = count
            position[v] = pos
            node[count] = v
            count += 1
        mapped[j] = pos
    for i in range(count):
        position[node[i]] = -1
    return node[:count], mapped


def _position_map(size: int) -> np.ndarray:
    buf = getattr(_local, "position", None)
    if buf is None or buf.shape[0] < size:
        buf = np.full(max(size, 2 * (0 if buf is None else buf.shape[0])), -1, np.int64)
        _local.position = buf
    return buf


def relabel(
    seeds: np.ndarray, others: np.ndarray, missing: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """``(node, mapped)``: the batch-local node list of one node type and the
    local index of every entry of :obj:`others`.

    ``node`` starts with :obj:`seeds` exactly as given (duplicates kept, as in
    PyG's :class:`~torch_geometric.loader.NeighborLoader`), followed by the
    ids of :obj:`others` not among the seeds, each once, in order of first
    appearance; an entry equal to a seed maps to that seed's first position.
    Both inputs are non-negative ``int64`` arrays, except that with
    :obj:`missing` the entries of :obj:`others` may be ``-1`` ("no node"):
    they map to ``-1``.
    """
    seeds = np.ascontiguousarray(seeds, dtype=np.int64)
    others = np.ascontiguousarray(others, dtype=np.int64)
    top = max(
        int(seeds.max()) if seeds.size else -1, int(others.max()) if others.size else -1
    )
    if seeds.min(initial=0) < 0 or others.min(initial=0) < (-1 if missing else 0):
        allowed = "-1 (missing) or non-negative" if missing else "non-negative"
        raise ValueError(f"relabel needs {allowed} node ids")
    return _relabel(seeds, others, _position_map(top + 1))
