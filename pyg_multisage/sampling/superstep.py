r"""Walks over a graph split by node ranges: the kernels of one superstep.

The random-walk samplers of :mod:`pyg_multisage.sampling.walks` (MultiSage
Algorithm 2 and PinSage visit counts) re-cut as a message-passing program, so
that each part of a partitioned graph moves only the walkers that stand on
its own nodes (see :mod:`pyg_multisage.distributed.partitioned` for the
driver):

1. :func:`init_walkers` creates the walkers of a batch of seeds at the seeds'
   owner.
2. :func:`advance` moves every walker of a part hop after hop while it stays
   on the part's nodes; a walker that steps onto another part's node (a
   context node in hop 1, a target node in hop 2 or after a restart to its
   seed) leaves in the outbox for that part, with its whole state.
3. Walks report to the seed's owner: PinSage's visits as ``(seed, node,
   count)`` triples (pre-summed per superstep by :func:`sum_visits`),
   Algorithm 2's walks as one ``(seed, walk, end node, first context)``
   record each. :func:`reduce_contextual` replays the dominant-context votes
   in walk-number order, exactly as the single-process kernel does, and
   :func:`top_k_rows` keeps the top :math:`k` per seed (count descending,
   id ascending).

**Why the tables are identical for any partition.** A walker carries its
counter-based random state (:func:`~pyg_multisage.sampling.rng.stream` of
``(seed, source, walk)``) and draws in the order the single-process kernel
draws: per traversal :math:`t`, the context hop, the target hop and then, if
:math:`t + 1 <` the number of traversals, the restart (or termination) draw.
The single-process kernel makes that draw at the start of traversal
:math:`t + 1`; no hop lies in between, so the stream is the same. Hops read
the same rows (a part stores its rows unchanged, with global ids) through the
same :func:`~pyg_multisage.sampling.walks._pick`.

**Walker state** (:data:`WALKER_FIELDS`): an ``int64 [n, 6]`` array (source,
walk number, current target node, current context node, first context since
the last restart, ``2 * traversal + phase``) and a ``uint64 [n]`` array of
random states; 56 bytes per walker on the wire. ``phase`` 0: the walker
stands on target ``cur`` and its next hop is to a context; phase 1: it stands
on context ``mid`` and its next hop is back to a target.
"""

from __future__ import annotations

import numba
import numpy as np

from pyg_multisage.sampling.rng import next_state, stream, uniform
from pyg_multisage.sampling.walks import _pick, _vote

__all__ = [
    "WALKER_FIELDS",
    "advance",
    "init_walkers",
    "owner_of",
    "reduce_contextual",
    "sum_visits",
    "top_k_rows",
]

#: Columns of the ``int64`` walker array.
WALKER_FIELDS = ("source", "walk", "cur", "mid", "first", "step")
SRC, WALK, CUR, MID, FIRST, STEP = range(6)


@numba.njit(cache=True, inline="always")
def _owner(bounds, x):
    """The part whose range ``[bounds[p], bounds[p + 1])`` holds ``x``."""
    a = 0
    b = bounds.shape[0] - 2
    while a < b:
        m = (a + b + 1) >> 1
        if bounds[m] <= x:
            a = m
        else:
            b = m - 1
    return a


@numba.njit(cache=True)
def owner_of(bounds, nodes):
    """Owner part of every node id in ``nodes`` under node-range ``bounds``."""
    out = np.empty(nodes.shape[0], np.int64)
    for i in range(nodes.shape[0]):
        out[i] = _owner(bounds, nodes[i])
    return out


@numba.njit(cache=True)
def init_walkers(seeds, num_walks, seed):
    """Walkers ``0..num_walks-1`` of every seed, standing on their seed before
    traversal 0: ``(int64 [S * num_walks, 6], uint64 [S * num_walks])``."""
    n = seeds.shape[0] * num_walks
    w = np.empty((n, 6), np.int64)
    s = np.empty(n, np.uint64)
    j = 0
    for i in range(seeds.shape[0]):
        v = seeds[i]
        for k in range(num_walks):
            w[j, SRC] = v
            w[j, WALK] = k
            w[j, CUR] = v
            w[j, MID] = -1
            w[j, FIRST] = -1
            w[j, STEP] = 0
            s[j] = stream(seed, v, k)
            j += 1
    return w, s


@numba.njit(cache=True)
def advance(
    walkers,
    states,
    lo_t,
    lo_c,
    bounds_t,
    bounds_c,
    part,
    ptr_tc,
    idx_tc,
    cw_tc,
    ptr_ct,
    idx_ct,
    cw_ct,
    num_traversals,
    prob,
    restart,
    every_traversal,
):
    """Moves every walker of part ``part`` until it leaves the part or ends.

    ``walkers``/``states`` must all stand on this part's nodes (a target in
    phase 0, a context in phase 1). ``ptr_*``/``idx_*``/``cw_*`` are the
    part's rows of the relations target -> context and context -> target
    (local row ``x - lo``, global ids in ``idx``; ``cw`` running weight sums
    or empty). ``restart``/``prob``/``every_traversal`` as in the
    single-process kernel (Algorithm 2: restart, count the end node;
    PinSage: terminate, count every target reached).

    Returns ``(walkers, states, dest)`` of the walkers that moved to another
    part, and ``(records, rec_dest)``: for PinSage ``(source, node)`` visits,
    for Algorithm 2 ``(source, walk, end node, first context)`` of finished
    walks whose end node is not the source; ``rec_dest`` is the source's
    owner.
    """
    n = walkers.shape[0]
    out_w = np.empty((n, 6), np.int64)
    out_s = np.empty(n, np.uint64)
    out_d = np.empty(n, np.int64)
    rec_cols = 2 if every_traversal else 4
    rec = np.empty((n * num_traversals if every_traversal else n, rec_cols), np.int64)
    rec_d = np.empty(rec.shape[0], np.int64)
    no = 0
    nr = 0
    for i in range(n):
        v = walkers[i, SRC]
        cur = walkers[i, CUR]
        mid = walkers[i, MID]
        first = walkers[i, FIRST]
        t = walkers[i, STEP] >> 1
        phase = walkers[i, STEP] & 1
        s = states[i]
        finished = False
        dead = False
        while True:
            if phase == 0:
                s, bits = next_state(s)
                c = _pick(ptr_tc, idx_tc, cw_tc, cur - lo_t, bits)
                if c < 0:
                    finished = True
                    break
                mid = c
                phase = 1
                if _owner(bounds_c, c) != part:
                    break
            else:
                s, bits = next_state(s)
                u = _pick(ptr_ct, idx_ct, cw_ct, mid - lo_c, bits)
                if u < 0:
                    finished = True
                    break
                cur = u
                if first < 0:
                    first = mid
                if every_traversal and u != v:
                    rec[nr, 0] = v
                    rec[nr, 1] = u
                    rec_d[nr] = _owner(bounds_t, v)
                    nr += 1
                t += 1
                phase = 0
                if t == num_traversals:
                    finished = True
                    break
                s, bits = next_state(s)
                if uniform(bits) < prob:
                    if not restart:
                        dead = True  # terminated (PinSage): nothing to report
                        break
                    cur = v
                    first = -1
                if _owner(bounds_t, cur) != part:
                    break
        if dead:
            continue
        if finished:
            if not every_traversal and cur != v:
                rec[nr, 0] = v
                rec[nr, 1] = walkers[i, WALK]
                rec[nr, 2] = cur
                rec[nr, 3] = first
                rec_d[nr] = _owner(bounds_t, v)
                nr += 1
            continue
        out_w[no, SRC] = v
        out_w[no, WALK] = walkers[i, WALK]
        out_w[no, CUR] = cur
        out_w[no, MID] = mid
        out_w[no, FIRST] = first
        out_w[no, STEP] = 2 * t + phase
        out_s[no] = s
        out_d[no] = _owner(bounds_t, cur) if phase == 0 else _owner(bounds_c, mid)
        no += 1
    return out_w[:no], out_s[:no], out_d[:no], rec[:nr], rec_d[:nr]


def _order(*keys: np.ndarray) -> np.ndarray:
    """The permutation sorting rows by ``keys`` (non-negative ``int64``,
    first key most significant): one ``argsort`` of a packed key when the
    packed key fits in ``int64``, else ``np.lexsort``."""
    bases = [int(k.max()) + 1 for k in keys]
    if np.prod([float(b) for b in bases]) < 2.0**62:
        packed = keys[0].astype(np.int64, copy=True)
        for k, b in zip(keys[1:], bases[1:], strict=True):
            packed *= b
            packed += k
        return np.argsort(packed, kind="stable")
    return np.lexsort(keys[::-1])


def sum_visits(records: np.ndarray) -> np.ndarray:
    """Sums PinSage visits: ``(source, node)`` or ``(source, node, count)``
    rows -> unique ``(source, node, count)`` rows sorted by (source, node)."""
    if records.shape[0] == 0:
        return np.zeros((0, 3), np.int64)
    cnt = records[:, 2] if records.shape[1] == 3 else np.ones(len(records), np.int64)
    order = _order(records[:, 0], records[:, 1])
    v, u, cnt = records[order, 0], records[order, 1], cnt[order]
    start = np.ones(len(v), bool)
    start[1:] = (v[1:] != v[:-1]) | (u[1:] != u[:-1])
    idx = np.flatnonzero(start)
    return np.stack([v[idx], u[idx], np.add.reduceat(cnt, idx)], axis=1)


@numba.njit(cache=True)
def _replay_votes(v, u, first):
    """Runs over records sorted by (source, node, walk): count and the
    Boyer–Moore vote (:func:`~pyg_multisage.sampling.walks._vote`) of each
    (source, node) pair, in walk order."""
    m = v.shape[0]
    out = np.empty((m, 4), np.int64)
    ctx = np.zeros(1, np.int64)
    dom = np.zeros(1, np.int64)
    k = -1
    for i in range(m):
        if i == 0 or v[i] != v[i - 1] or u[i] != u[i - 1]:
            if k >= 0:
                out[k, 3] = ctx[0] - 1
            k += 1
            out[k, 0] = v[i]
            out[k, 1] = u[i]
            out[k, 2] = 0
            ctx[0] = 0
            dom[0] = 0
        out[k, 2] += 1
        _vote(ctx, dom, 0, first[i] + 1)
    if k >= 0:
        out[k, 3] = ctx[0] - 1
    return out[: k + 1]


def reduce_contextual(records: np.ndarray) -> np.ndarray:
    """Algorithm 2, lines 8–15, at the seed's owner: ``(source, walk, end,
    first context)`` records of finished walks (any order) -> ``(source,
    node, count, dominant context)`` rows, the vote replayed in walk order."""
    if records.shape[0] == 0:
        return np.zeros((0, 4), np.int64)
    order = _order(records[:, 0], records[:, 2], records[:, 1])
    r = records[order]
    return _replay_votes(
        np.ascontiguousarray(r[:, 0]),
        np.ascontiguousarray(r[:, 2]),
        np.ascontiguousarray(r[:, 3]),
    )


def top_k_rows(
    seeds: np.ndarray, pairs: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Padded rows ``[S, k]`` of the sorted unique ``seeds`` from ``(source,
    node, count[, context])`` pairs: the top ``k`` per source by count
    descending, ties by node ascending (the tables' order). Returns
    ``(count, neighbor, weight, context or None)``."""
    num = len(seeds)
    has_ctx = pairs.shape[1] == 4
    cnt = np.zeros(num, np.int64)
    nbr = np.zeros((num, k), np.int64)
    w = np.zeros((num, k), np.float32)
    ctx = np.full((num, k), -1, np.int64) if has_ctx else None
    if pairs.shape[0] == 0:
        return cnt, nbr, w, ctx
    order = _order(pairs[:, 0], pairs[:, 2].max() - pairs[:, 2], pairs[:, 1])
    p = pairs[order]
    start = np.ones(len(p), bool)
    start[1:] = p[1:, 0] != p[:-1, 0]
    first = np.flatnonzero(start)
    rank = np.arange(len(p)) - np.repeat(first, np.diff(np.append(first, len(p))))
    keep = rank < k
    p, rank = p[keep], rank[keep]
    row = np.searchsorted(seeds, p[:, 0])
    if np.any(row >= num) or np.any(seeds[np.minimum(row, num - 1)] != p[:, 0]):
        raise RuntimeError("walk records reached a part that does not own the seed")
    nbr[row, rank] = p[:, 1]
    w[row, rank] = p[:, 2]
    if has_ctx:
        ctx[row, rank] = p[:, 3]
    np.add.at(cnt, row, 1)
    return cnt, nbr, w, ctx
