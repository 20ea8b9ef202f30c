r"""Random-walk neighbor kernels on a target–context bipartite relation.

Two samplers of one kernel family (:func:`_walk_kernel`), sharing the step
code (:func:`_pick`), the visit counting and the top-k selection:

- :func:`contextual_walk`: MultiSage's parallel contextualized random walk
  (Yang et al., KDD 2020, Appendix, Algorithm 2). Every walk ends in one
  target node, which is counted together with the context the walk passed
  first; a streaming majority vote keeps the dominant context of every
  (seed, neighbor) pair.
- :func:`pinsage_walk`: PinSage visit counts (Ying et al., KDD 2018) with the
  semantics of DGL's ``PinSAGESampler``: every target node a walk reaches
  after a traversal is counted.

A *traversal* is two hops, target :math:`\to` context :math:`\to` target.
Hops pick a neighbor uniformly, or proportionally to the edge weight when the
relation has weights (binary search over per-row prefix sums).

**Random streams.** Walk :math:`i` from seed node :math:`v` draws from
``rng.stream(seed, v, i)`` and from nothing else, in this order: for every
traversal :math:`t = 0, 1, \ldots`: if :math:`t > 0`, one uniform :math:`u`
(restart resp. terminate when :math:`u <` the probability); then one draw for
the context hop and one for the target hop. A uniform hop takes
``randint(bits, degree)``; a weighted hop takes the first edge of the row whose
running weight sum exceeds ``uniform(bits) * row_total``. Rows therefore
depend only on ``(seed, seed node)``: identical for any thread count, batch
split or seed order.

**Performance.** Hops are latency-bound random reads. The kernel advances
:data:`LANES` walks of one seed in lockstep, one hop at a time over all lanes,
so that the reads of independent walks overlap. A hop makes two dependent
reads, the node's row offsets and then the neighbor id at the drawn edge, so
each hop is two passes over the lanes: the first draws every lane's edge
from its row offsets (prefetched when the node became known) and prefetches
the id there, the second reads the ids (their misses now in flight
together) and prefetches the next rows. (Reading the id in the same pass as
the offsets left those misses one at a time: splitting them made the walks
1.2-2.2x faster, 1.9-2.2x on a 4.7M-edge power-law graph.) PinSage's walks
end at random (termination probability per traversal), so its kernel
(:func:`_pinsage_kernel`) runs the passes over a compacted list of the live
lanes rather than testing a flag per lane (1.55-1.59x faster); Algorithm 2's
walks restart instead and keep their lanes in place, and its restart draw is
applied as selects (a coin flip mispredicts as a branch).

Visit counters and dominant-context state live in a small open-addressing
table per seed (a power of two, at least twice the walks' largest number of
distinct visits: a few kilobytes
that stay in the L1/L2 cache whatever the graph's size, where a
``[threads, num_targets]`` array would miss the cache on every update and
hold anonymous memory in proportion to the graph), cleared through the
slots the seed used; the top-k is selected from the touched list only.
Seeds are split into chunks of 64 for ``prange``. The CSR arrays are
walked as ``int32`` copies when ids and offsets fit (built once per graph view through
:meth:`~pyg_multisage.graph.HeteroCSR.cached`): half the cache footprint of
the ``int64`` arrays, at the memory cost of the copies (half the relation's
``int64`` CSR arrays more). A memory-mapped graph
(:meth:`HeteroCSR.load(mmap=True) <pyg_multisage.graph.HeteroCSR.load>`) is
walked in place, offsets and ids: its pages stay file-backed, shared between
processes (every Ray worker of a precompute maps the same pages) and, read
into the page cache sequentially, mapped 2 MB at a time like NumPy's
anonymous arrays (``benchmarks/scale.py``: memory-mapped walks at 0.81-0.88
of the in-memory rate on 50M- and 100M-edge graphs; int32 copies of the
offsets gave 0.91-1.02 at 5% of the graph's bytes more anonymous memory per
process).
"""

from __future__ import annotations

import mmap
from collections.abc import Sequence
from typing import NamedTuple

import numba
import numpy as np
from torch import Tensor

from pyg_multisage._checks import (
    as_index_array,
    check_float,
    check_int,
    check_seed,
)
from pyg_multisage.graph import CSR, HeteroCSR
from pyg_multisage.sampling._threads import num_threads as _num_threads
from pyg_multisage.sampling._topk import insert_packed_at
from pyg_multisage.sampling.ppr import _prefetch
from pyg_multisage.sampling.rng import next_state, randint, stream, uniform
from pyg_multisage.sampling.table import NeighborTable

__all__ = [
    "LANES",
    "check_contextual_walk_args",
    "check_pinsage_walk_args",
    "contextual_walk",
    "pinsage_walk",
]

#: Number of walks of one seed advanced in lockstep (64 against 16: 1.02-1.33x
#: in a CPU-time A/B on one thread, same tables; 128 gained nothing more).
LANES = 64
#: Seeds per parallel work item of the prange loop.
_CHUNK = 64


# -- kernel arguments, grouped by role --------------------------------------------
class _WalkCSR(NamedTuple):
    """One hop relation as the kernel walks it (see :func:`_walk_arrays`)."""

    indptr: np.ndarray  # int32 or int64 [num_src + 1]
    indices: np.ndarray  # int32 or int64 [E]
    cumw: np.ndarray  # float64 [E] per-row running weight sums, or [0]


class _WalkConfig(NamedTuple):
    """The scalars of one kernel call."""

    num_walks: int
    num_traversals: int
    prob: float  # restart (``restart``) or termination probability
    restart: bool  # Algorithm 2's restart, else PinSage's termination
    every_traversal: bool  # count every traversal (PinSage), else path[-1]
    k: int  # neighbors kept per seed
    seed: int
    # Work done per seed, for the benchmarks' time split:
    # 1 the hops only, 2 hops and visit counting, 3 everything (the default).
    stages: int = 3
    # Bits of a target id in the packed (count, id) keys of the top-k
    # selection (:func:`_run` checks that counts fit the rest).
    id_bits: int = 32


class _WalkOutput(NamedTuple):
    """Padded result rows ``[num_seeds, k]`` and their lengths."""

    neighbor: np.ndarray  # int64
    weight: np.ndarray  # float32 visit counts
    context: np.ndarray  # int64 dominant context ids, [0, 0] without contexts
    count: np.ndarray  # int64 [num_seeds] valid entries per row


# -- shared step code -------------------------------------------------------------
@numba.njit(cache=True, inline="always")
def _edge(indptr, cumw, node, bits):
    """The position (into ``indices``) of the edge one hop from ``node``
    takes with the 64 random ``bits``, or ``-1`` when ``node`` has no
    neighbor (or only zero-weight edges).

    ``cumw`` holds the per-row running sums of the edge weights (aligned with
    ``indices``), or is empty for an unweighted relation.
    """
    lo = indptr[node]
    hi = indptr[node + 1]
    deg = hi - lo
    if deg <= 0:
        return np.int64(-1)
    if cumw.shape[0] == 0:
        return np.int64(lo + randint(bits, deg))
    total = cumw[hi - 1]
    if not total > 0.0:
        return np.int64(-1)
    x = uniform(bits) * total
    a = lo
    b = hi - 1
    while a < b:  # first edge whose running sum exceeds x (skips zero weights)
        mid = (a + b) >> 1
        if cumw[mid] > x:
            b = mid
        else:
            a = mid + 1
    return np.int64(a)


@numba.njit(cache=True, inline="always")
def _pick(indptr, indices, cumw, node, bits):
    """One hop from ``node``: the neighbor :func:`_edge` picks, or ``-1``."""
    e = _edge(indptr, cumw, node, bits)
    if e < 0:
        return np.int64(-1)
    return np.int64(indices[e])


@numba.njit(cache=True, inline="always")
def _vote(ctx, dom, u, c):
    """Algorithm 2, lines 9–15: the streaming dominant-context rule.

    A Boyer–Moore majority vote over the contexts of the walks ending in
    ``u``: agree -> ``dom += 1``; disagree -> ``dom -= 1``, or, when ``dom``
    is already 0, ``c`` becomes the candidate with ``dom = 1``. The kernel
    stores context ``id + 1`` (``0``: none yet, so the state starts zeroed).
    """
    if ctx[u] == c:
        dom[u] += 1
    elif dom[u] > 0:
        dom[u] -= 1
    else:
        dom[u] += 1
        ctx[u] = c


@numba.njit(cache=True)
def _row_cumsum(indptr, weight):
    """Per-row running sums of ``weight`` (sequential, float64)."""
    out = np.empty(weight.shape[0], np.float64)
    for v in range(indptr.shape[0] - 1):
        s = 0.0
        for e in range(indptr[v], indptr[v + 1]):
            s += weight[e]
            out[e] = s
    return out


#: Multiplier of the visit table's hash (2^64 / golden ratio, odd).
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _table_size(max_touched: int) -> int:
    """Slots of the per-seed visit table: the smallest power of two at least
    twice :obj:`max_touched` (load factor <= 1/2)."""
    return 1 << max(4, int(2 * max_touched - 1).bit_length())


@numba.njit(cache=True, inline="always")
def _visit(keys, slot, touched, u, m):
    """The slot of node ``u`` in the seed's visit table, inserting ``u`` on
    its first visit (as ``touched[m]``, its slot as ``slot[m]``); returns
    ``(slot, new m)``.

    ``keys`` is the open-addressing table (``-1`` = empty; Fibonacci hashing,
    linear probing); the per-slot state (counts, votes) lives in arrays of
    the same length, and ``slot`` lets the kernel gather and clear them
    without probing again.
    """
    mask = np.uint64(keys.shape[0] - 1)
    h = ((np.uint64(u) * _GOLDEN) >> np.uint64(32)) & mask
    while True:
        key = keys[h]
        if key == u:
            return h, m
        if key < 0:
            keys[h] = u
            slot[m] = h
            touched[m] = u
            return h, m + 1
        h = (h + np.uint64(1)) & mask


# -- the kernel -------------------------------------------------------------------
@numba.njit(cache=True, parallel=True)
def _walk_kernel(seeds, tc, ct, cfg, table_size, out):
    """Visit counts of random walks from every seed, top ``cfg.k`` per seed.

    ``tc`` and ``ct`` are the :class:`_WalkCSR` of the hops target -> context
    and context -> target, ``cfg`` a :class:`_WalkConfig`, ``table_size``
    the slots of the per-seed visit table (:func:`_table_size` of the
    largest number of distinct visits), ``out`` the :class:`_WalkOutput`
    written row by row.

    Walks with restart (``cfg.restart`` must be true; PinSage's terminating
    walks run on :func:`_pinsage_kernel`): before every traversal but the
    first, the walk jumps back to its seed with probability ``prob``
    (Algorithm 2). ``every_traversal=True`` counts the target reached after
    every traversal; otherwise only the walk's last target node ``path[-1]``
    is counted, and voted for its first context ``path[1]`` (Algorithm 2). A
    seed never counts itself. Writes row ``i`` into ``out.*[i,
    :out.count[i]]`` sorted by count desc, id asc.
    """
    ptr_tc, idx_tc, cw_tc = tc.indptr, tc.indices, tc.cumw
    ptr_ct, idx_ct, cw_ct = ct.indptr, ct.indices, ct.cumw
    num_walks = cfg.num_walks
    num_traversals = cfg.num_traversals
    prob = cfg.prob
    every_traversal = cfg.every_traversal
    k = cfg.k
    seed = cfg.seed
    count = cfg.stages >= 2
    select = cfg.stages >= 3
    id_bits = np.uint64(cfg.id_bits)
    id_mask = (np.uint64(1) << id_bits) - np.uint64(1)
    out_nbr, out_w, out_ctx, out_cnt = out.neighbor, out.weight, out.context, out.count
    num_seeds = seeds.shape[0]
    num_chunks = (num_seeds + _CHUNK - 1) // _CHUNK
    per_walk = num_traversals if every_traversal else 1
    max_touched = num_walks * per_walk
    track = not every_traversal
    for chunk in numba.prange(num_chunks):
        # The seed's visit table: node keys[h], its count cnt[h], Boyer-Moore
        # candidate context + 1 ctx[h] and vote dom[h]; touched[j] lists the
        # nodes in first-visit order, slot[j] their slots.
        keys = np.full(table_size, -1, np.int64)
        cnt = np.zeros(table_size, np.int32)
        ctx = np.zeros(table_size if track else 0, np.int64)
        dom = np.zeros(table_size if track else 0, np.int32)
        slot = np.empty(max_touched, np.uint64)
        touched = np.empty(max_touched, np.int64)
        gathered = np.empty(max_touched if track else 0, np.int64)
        best = np.empty(k, np.uint64)  # packed (count, id) keys, best first
        best_at = np.empty(k, np.int64)  # their positions in touched
        state = np.empty(LANES, np.uint64)
        cur = np.empty(LANES, np.int64)
        live = np.empty(LANES, np.bool_)
        mid = np.empty(LANES, np.int64)
        pos = np.empty(LANES, np.int64)
        first = np.empty(LANES, np.int64)
        for i in range(chunk * _CHUNK, min(num_seeds, (chunk + 1) * _CHUNK)):
            v = seeds[i]
            m = 0
            for w0 in range(0, num_walks, LANES):
                nl = min(LANES, num_walks - w0)
                for lane in range(nl):
                    state[lane] = stream(seed, v, w0 + lane)
                    cur[lane] = v
                    live[lane] = True
                    first[lane] = -1
                for t in range(num_traversals):
                    # Every hop in two passes over the lanes: pick each lane's
                    # edge (its row offsets were prefetched) and prefetch the
                    # id there; then read the ids, whose misses now overlap.
                    # Hop 1: restart, then to a context.
                    for lane in range(nl):
                        if not live[lane]:
                            continue
                        s = state[lane]
                        node = cur[lane]
                        if t > 0:
                            s, bits = next_state(s)
                            hit = uniform(bits) < prob
                            # the restart, as selects: the draw is a coin
                            # flip, which a branch would miss half the time
                            node = v if hit else node
                            cur[lane] = node
                            f0 = first[lane]
                            first[lane] = -1 if hit else f0
                        s, bits = next_state(s)
                        state[lane] = s
                        e = _edge(ptr_tc, cw_tc, node, bits)
                        if e < 0:
                            live[lane] = False
                        else:
                            pos[lane] = e
                            _prefetch(idx_tc, e)
                    for lane in range(nl):
                        if live[lane]:
                            c = np.int64(idx_tc[pos[lane]])
                            mid[lane] = c
                            _prefetch(ptr_ct, c)  # the next hop's row
                    # Hop 2: back to a target node.
                    for lane in range(nl):
                        if not live[lane]:
                            continue
                        s, bits = next_state(state[lane])
                        state[lane] = s
                        e = _edge(ptr_ct, cw_ct, mid[lane], bits)
                        if e < 0:
                            live[lane] = False
                        else:
                            pos[lane] = e
                            _prefetch(idx_ct, e)
                    for lane in range(nl):
                        if not live[lane]:
                            continue
                        u = np.int64(idx_ct[pos[lane]])
                        cur[lane] = u
                        _prefetch(ptr_tc, u)  # the next traversal's first row
                        f0 = first[lane]
                        first[lane] = mid[lane] if f0 < 0 else f0
                        if every_traversal and count and u != v:
                            h, m = _visit(keys, slot, touched, u, m)
                            cnt[h] += 1
                if not every_traversal and count:
                    # Algorithm 2, lines 8-15, in walk order.
                    for lane in range(nl):
                        u = cur[lane]
                        if u == v:
                            continue
                        h, m = _visit(keys, slot, touched, u, m)
                        cnt[h] += 1
                        _vote(ctx, dom, h, first[lane] + 1)
            # One pass over the touched nodes only: gather their state,
            # clear their slots and offer each to the top-k as one key, its
            # count above (mask - id): a larger key is a higher count, then
            # a smaller id (the tables' order).
            n = 0
            for j in range(m):
                h = slot[j]
                c = cnt[h]
                keys[h] = -1
                cnt[h] = 0
                if track:
                    gathered[j] = ctx[h]
                    ctx[h] = 0
                    dom[h] = 0
                if select:
                    key = (np.uint64(c) << id_bits) | (id_mask - np.uint64(touched[j]))
                    n = insert_packed_at(best, best_at, k, n, key, j)
            for j in range(n):
                at = best_at[j]
                out_nbr[i, j] = touched[at]
                out_w[i, j] = np.float32(best[j] >> id_bits)
                if track:
                    out_ctx[i, j] = gathered[at] - 1
            out_cnt[i] = n


@numba.njit(cache=True, inline="always")
def _compact(act, ok, na):
    """Keeps, in order, the lanes of ``act[:na]`` whose ``ok`` is set;
    returns their number."""
    nw = 0
    for q in range(na):
        lane = act[q]
        act[nw] = lane
        nw += ok[lane]
    return nw


@numba.njit(cache=True, parallel=True)
def _pinsage_kernel(seeds, tc, ct, cfg, table_size, out):
    """:func:`_walk_kernel` for PinSage's walks (``restart=False``,
    ``every_traversal=True``, no contexts), whose lanes end early: before
    every traversal but the first a walk ends with probability ``prob``, so
    after a few traversals most lanes have ended. Instead of testing a flag
    per lane and pass (a mispredicted branch whenever walks end at random),
    every pass runs over the list of live lanes ``act[:na]`` (in lane
    order), which the two passes that can end a walk rebuild
    (:func:`_compact`, only when one ended); a lane that ends draws its hop
    like the others (its state is never read again), so those passes do not
    branch on it either. Same streams, hops and counts as
    :func:`_walk_kernel`: identical rows (1.55-1.59x faster at 1 thread on
    pin-board, DBLP paper-term and the hub graph). A kernel of its own, not
    a branch of :func:`_walk_kernel`: with both disciplines in one kernel
    (or the traversals as helpers of one), Algorithm 2's walks ran 10-20%
    slower, so the preamble and the final selection are written twice."""
    ptr_tc, idx_tc, cw_tc = tc.indptr, tc.indices, tc.cumw
    ptr_ct, idx_ct, cw_ct = ct.indptr, ct.indices, ct.cumw
    num_walks = cfg.num_walks
    num_traversals = cfg.num_traversals
    prob = cfg.prob
    k = cfg.k
    seed = cfg.seed
    count = cfg.stages >= 2
    select = cfg.stages >= 3
    id_bits = np.uint64(cfg.id_bits)
    id_mask = (np.uint64(1) << id_bits) - np.uint64(1)
    out_nbr, out_w, out_cnt = out.neighbor, out.weight, out.count
    num_seeds = seeds.shape[0]
    num_chunks = (num_seeds + _CHUNK - 1) // _CHUNK
    max_touched = num_walks * num_traversals
    for chunk in numba.prange(num_chunks):
        keys = np.full(table_size, -1, np.int64)  # the visit table, as above
        cnt = np.zeros(table_size, np.int32)
        slot = np.empty(max_touched, np.uint64)
        touched = np.empty(max_touched, np.int64)
        best = np.empty(k, np.uint64)
        best_at = np.empty(k, np.int64)
        state = np.empty(LANES, np.uint64)
        cur = np.empty(LANES, np.int64)
        mid = np.empty(LANES, np.int64)
        pos = np.empty(LANES, np.int64)
        ok = np.empty(LANES, np.bool_)
        act = np.empty(LANES, np.uint64)  # unsigned: no wraparound on indexing
        for i in range(chunk * _CHUNK, min(num_seeds, (chunk + 1) * _CHUNK)):
            v = seeds[i]
            m = 0
            for w0 in range(0, num_walks, LANES):
                na = min(LANES, num_walks - w0)
                for lane in range(na):
                    state[lane] = stream(seed, v, w0 + lane)
                    cur[lane] = v
                    act[lane] = lane
                for t in range(num_traversals):
                    # Hop 1: terminate, then to a context (edge picked, id
                    # prefetched; the ids are read in the next pass).
                    ended = 0
                    for q in range(na):
                        lane = act[q]
                        s = state[lane]
                        alive = True
                        if t > 0:
                            s, bits = next_state(s)
                            alive = uniform(bits) >= prob
                        s, bits = next_state(s)
                        state[lane] = s
                        e = _edge(ptr_tc, cw_tc, cur[lane], bits)
                        pos[lane] = e
                        _prefetch(idx_tc, e)  # a hint: harmless for e = -1
                        ok[lane] = alive and e >= 0
                        ended += not ok[lane]
                    if ended:
                        na = _compact(act, ok, na)
                    for q in range(na):
                        lane = act[q]
                        c = np.int64(idx_tc[pos[lane]])
                        mid[lane] = c
                        _prefetch(ptr_ct, c)  # the next hop's row
                    # Hop 2: back to a target node, counted.
                    ended = 0
                    for q in range(na):
                        lane = act[q]
                        s, bits = next_state(state[lane])
                        state[lane] = s
                        e = _edge(ptr_ct, cw_ct, mid[lane], bits)
                        pos[lane] = e
                        _prefetch(idx_ct, e)
                        ok[lane] = e >= 0
                        ended += e < 0
                    if ended:
                        na = _compact(act, ok, na)
                    for q in range(na):
                        lane = act[q]
                        u = np.int64(idx_ct[pos[lane]])
                        cur[lane] = u
                        _prefetch(ptr_tc, u)  # the next traversal's first row
                        if count and u != v:
                            h, m = _visit(keys, slot, touched, u, m)
                            cnt[h] += 1
            n = 0  # clear the touched slots and select, as in _walk_kernel
            for j in range(m):
                h = slot[j]
                c = cnt[h]
                keys[h] = -1
                cnt[h] = 0
                if select:
                    key = (np.uint64(c) << id_bits) | (id_mask - np.uint64(touched[j]))
                    n = insert_packed_at(best, best_at, k, n, key, j)
            for j in range(n):
                out_nbr[i, j] = touched[best_at[j]]
                out_w[i, j] = np.float32(best[j] >> id_bits)
            out_cnt[i] = n


# -- wrappers ----------------------------------------------------------------------
def _mapped(arr: np.ndarray) -> bool:
    """Whether :obj:`arr` is (a view of) a memory map of a file."""
    while arr is not None:
        if isinstance(arr, (np.memmap, mmap.mmap)):
            return True
        arr = getattr(arr, "base", None)
    return False


def _walk_arrays(csr: HeteroCSR, src: str, dst: str) -> _WalkCSR:
    """The :class:`_WalkCSR` of the relation ``src -> dst`` (checked by
    :func:`_check_graph`) as the kernel walks it: ``int32`` copies of
    ``indptr`` and ``indices`` when ids and offsets fit (the arrays of a
    memory-mapped relation as they are, in place), ``cumw`` the per-row
    running weight sums (empty when unweighted). Built once per view."""
    rel: CSR = csr.relation(src, dst)

    def build() -> _WalkCSR:
        fits = rel.num_edges < 2**31 - 1 and max(rel.num_dst, rel.num_src) < 2**31
        dtype = np.int32 if fits else np.int64

        def walked(arr: np.ndarray) -> np.ndarray:
            # a memory-mapped array is walked in place: file pages, shared
            # between processes and mapped 2 MB at a time
            return arr if _mapped(arr) else np.ascontiguousarray(arr, dtype=dtype)

        indptr, indices = walked(rel.indptr), walked(rel.indices)
        if rel.weight is None:
            cumw = np.zeros(0, np.float64)
        else:
            cumw = _row_cumsum(rel.indptr, rel.weight)
        return _WalkCSR(indptr, indices, cumw)

    return csr.cached(("walks", src, dst, id(rel)), build)


def _check_graph(csr: object, target: str, contexts: Sequence[str]) -> None:
    """The graph side of the arguments: node types known, and one relation
    between the target type and every context type (either direction)."""
    if not isinstance(csr, HeteroCSR):
        raise TypeError(f"csr must be a HeteroCSR, got {type(csr).__name__}")
    for c in contexts:
        csr.check_node_type(target, "target")
        csr.check_node_type(c, "context")
        for src, dst in ((target, c), (c, target)):
            try:
                csr.relation(src, dst)
            except ValueError as err:
                raise ValueError(
                    f"context: no walkable relation from '{src}' to '{dst}' ({err})"
                ) from None


def _check_contexts(context: object, several: bool) -> list[str]:
    if not several:
        if not isinstance(context, str):
            raise TypeError(f"context must be a node type (str), got {context!r}")
        return [context]
    contexts = [context] if isinstance(context, str) else context
    if (
        not isinstance(contexts, Sequence)
        or len(contexts) == 0
        or not all(isinstance(c, str) for c in contexts)
    ):
        raise TypeError(
            f"context must be a node type or a non-empty sequence of them, "
            f"got {context!r}"
        )
    if len(set(contexts)) != len(contexts):
        raise ValueError(f"context lists a node type twice: {list(contexts)}")
    return list(contexts)


def check_contextual_walk_args(
    target: str,
    context: str | Sequence[str],
    num_walks: int = 100,
    walk_length: int = 3,
    restart_prob: float = 0.5,
    num_neighbors: int = 10,
    seed: int = 0,
    csr: HeteroCSR | None = None,
) -> dict[str, object]:
    """Validates the arguments of :func:`contextual_walk` and returns them
    as keyword arguments (ints and floats as such).

    Without :obj:`csr` only what needs no graph is checked (what transforms
    do at construction); with it also the node types and relations (what
    on-the-fly samplers do at construction, and the kernel on every call).
    Raises a :class:`TypeError` or :class:`ValueError` naming the argument.
    """
    if not isinstance(target, str):
        raise TypeError(f"target must be a node type (str), got {target!r}")
    contexts = _check_contexts(context, several=True)
    if csr is not None:
        _check_graph(csr, target, contexts)
    return dict(
        target=target,
        context=context if isinstance(context, str) else contexts,
        num_walks=check_int(num_walks, "num_walks", 1),
        walk_length=check_int(walk_length, "walk_length", 1),
        restart_prob=check_float(restart_prob, "restart_prob"),
        num_neighbors=check_int(num_neighbors, "num_neighbors", 1),
        seed=check_seed(seed),
    )


def check_pinsage_walk_args(
    target: str,
    context: str,
    num_walks: int = 100,
    num_traversals: int = 3,
    termination_prob: float = 0.5,
    num_neighbors: int = 10,
    seed: int = 0,
    csr: HeteroCSR | None = None,
) -> dict[str, object]:
    """Validates the arguments of :func:`pinsage_walk` as
    :func:`check_contextual_walk_args` does for :func:`contextual_walk`."""
    if not isinstance(target, str):
        raise TypeError(f"target must be a node type (str), got {target!r}")
    _check_contexts(context, several=False)
    if csr is not None:
        _check_graph(csr, target, [context])
    return dict(
        target=target,
        context=context,
        num_walks=check_int(num_walks, "num_walks", 1),
        num_traversals=check_int(num_traversals, "num_traversals", 1),
        termination_prob=check_float(termination_prob, "termination_prob"),
        num_neighbors=check_int(num_neighbors, "num_neighbors", 1),
        seed=check_seed(seed),
    )


def _run(
    csr: HeteroCSR,
    seeds: np.ndarray,
    target: str,
    context: str,
    num_walks: int,
    num_traversals: int,
    prob: float,
    restart: bool,
    k: int,
    seed: int,
    threads: int | None,
    stages: int = 3,
) -> NeighborTable:
    """Runs :func:`_walk_kernel`; :obj:`stages` < 3 stops each seed's work
    early (see :class:`_WalkConfig`; rows come out empty), for timing."""
    tc = _walk_arrays(csr, target, context)
    ct = _walk_arrays(csr, context, target)
    num_seeds = len(seeds)
    track = restart
    out = _WalkOutput(
        neighbor=np.empty((num_seeds, k), np.int64),
        weight=np.empty((num_seeds, k), np.float32),
        context=np.empty((num_seeds, k) if track else (0, 0), np.int64),
        count=np.zeros(num_seeds, np.int64),
    )
    if num_seeds:
        most = num_walks * (1 if restart else num_traversals)  # highest count
        id_bits = max(1, (csr.num_nodes[target] - 1).bit_length())
        if id_bits + most.bit_length() > 64:
            raise ValueError(
                f"num_walks={num_walks}: visit counts up to {most} and "
                f"{csr.num_nodes[target]} target ids do not fit the 64-bit keys "
                f"of the top-k selection"
            )
        cfg = _WalkConfig(
            num_walks=num_walks,
            num_traversals=num_traversals,
            prob=prob,
            restart=restart,
            every_traversal=not restart,
            k=k,
            seed=seed,
            stages=stages,
            id_bits=id_bits,
        )
        with _num_threads(threads):
            size = _table_size(num_walks * (1 if restart else num_traversals))
            kernel = _walk_kernel if restart else _pinsage_kernel
            kernel(seeds, tc, ct, cfg, size, out)
    return NeighborTable.from_padded(
        seeds, out.count, out.neighbor, out.weight, out.context if track else None
    )


def _seeds(csr: HeteroCSR, seeds: Tensor | np.ndarray, target: str) -> np.ndarray:
    return as_index_array(seeds, "seeds", csr.num_nodes[target])


def contextual_walk(
    csr: HeteroCSR,
    seeds: Tensor | np.ndarray | Sequence[int],
    *,
    target: str,
    context: str | Sequence[str],
    num_walks: int = 100,
    walk_length: int = 3,
    restart_prob: float = 0.5,
    num_neighbors: int = 10,
    seed: int = 0,
    num_threads: int | None = None,
) -> NeighborTable | dict[str, NeighborTable]:
    r"""MultiSage's parallel contextualized random walk (Algorithm 2).

    For every seed :math:`v`, :math:`\kappa` = :obj:`num_walks` walks of
    :math:`\zeta` = :obj:`walk_length` traversals target :math:`\to` context
    :math:`\to` target, with restart: before each traversal after the first
    (i.e. at every target node the walk stands on) it jumps back to
    :math:`v` with probability :obj:`restart_prob`. As in Algorithm 2's loop
    body, walk :math:`i` counts its last target node :math:`u =`
    ``path[-1]``, :math:`\mathrm{vis}[v][u] \mathrel{+}= 1`, and votes for
    its first context node :math:`c =` ``path[1]`` with the streaming rule

    .. math::
        \mathrm{dom}[v][u] \leftarrow \begin{cases}
        \mathrm{dom}[v][u] + 1 & \text{if } \mathrm{ctx}[v][u] = c \\
        \mathrm{dom}[v][u] - 1 & \text{else if } \mathrm{dom}[v][u] > 0 \\
        1,\ \mathrm{ctx}[v][u] \leftarrow c & \text{otherwise,}
        \end{cases}

    a Boyer–Moore majority vote (it finds the majority context whenever one
    exists). Since a restart starts a new path at :math:`v`, ``path[1]`` is
    the first context node after the walk's *last* restart. Walks are
    processed in walk-number order, so the vote is deterministic. A walk that
    ends on its seed (or only ever returns to it) counts nothing: a seed never
    lists itself. A walk that reaches a node without neighbors stops there.
    Each row keeps the top-:math:`s` = :obj:`num_neighbors` neighbors by
    visit count (ties: smaller id first) with their dominant context
    :math:`\mathrm{ctx}[v][u]`.

    Weighted relations (a :class:`~pyg_multisage.graph.CSR` with
    :obj:`weight`) are walked proportionally to the weight.

    Args:
        csr (HeteroCSR): the graph; the relations ``target -> context`` and
            ``context -> target`` are found with :meth:`HeteroCSR.relation`.
        seeds (Tensor or array): ``[S]`` target node ids (any integer dtype).
        target (str): the target node type (papers, pins).
        context (str or Sequence[str]): the context node type (venues,
            boards), or several: then one table per context type (MultiSage
            with several context types), each from its own walks.
        num_walks (int, optional): walks per seed :math:`\kappa`, ``>= 1``.
            (default: :obj:`100`)
        walk_length (int, optional): traversals per walk :math:`\zeta`,
            ``>= 1``. (default: :obj:`3`)
        restart_prob (float, optional): restart probability in ``[0, 1]``.
            (default: :obj:`0.5`)
        num_neighbors (int, optional): neighbors kept per seed :math:`s`,
            ``>= 1``. (default: :obj:`10`)
        seed (int, optional): random seed; the stream of walk :math:`i` from
            :math:`v` is ``stream(seed, v, i)``. (default: :obj:`0`)
        num_threads (int, optional): Numba threads (default: Numba's).

    Returns:
        :class:`NeighborTable` with :obj:`context` (ids in the context node
        store) for a single context type, else a dict context type -> table.
        :obj:`weight` holds the visit counts.
    """
    args = check_contextual_walk_args(
        target,
        context,
        num_walks,
        walk_length,
        restart_prob,
        num_neighbors,
        seed,
        csr=csr,
    )
    seed_ids = _seeds(csr, seeds, target)
    contexts = [context] if isinstance(context, str) else args["context"]
    tables = {
        c: _run(
            csr,
            seed_ids,
            target,
            c,
            args["num_walks"],
            args["walk_length"],
            args["restart_prob"],
            True,
            args["num_neighbors"],
            args["seed"],
            num_threads,
        )
        for c in contexts
    }
    return tables[context] if isinstance(context, str) else tables


def pinsage_walk(
    csr: HeteroCSR,
    seeds: Tensor | np.ndarray | Sequence[int],
    *,
    target: str,
    context: str,
    num_walks: int = 100,
    num_traversals: int = 3,
    termination_prob: float = 0.5,
    num_neighbors: int = 10,
    seed: int = 0,
    num_threads: int | None = None,
) -> NeighborTable:
    r"""PinSage importance neighbors: visit counts of short random walks.

    The semantics of DGL's ``PinSAGESampler``: from every seed :math:`v`,
    :obj:`num_walks` walks of up to :obj:`num_traversals` traversals target
    :math:`\to` context :math:`\to` target; after each traversal but the last
    the walk terminates with probability :obj:`termination_prob`; every target
    node reached after a traversal is counted (the seed itself excepted). With
    :math:`P` the one-traversal transition matrix and :math:`p` the
    termination probability, the expected count of :math:`u` is

    .. math::
        \mathbb{E}[\mathrm{vis}[v][u]] = \kappa \sum_{t=1}^{T}
        (1 - p)^{t-1} \, (P^t)_{vu}.

    Each row keeps the top :obj:`num_neighbors` by count (ties: smaller id
    first); there is no context (:obj:`NeighborTable.context` is
    :obj:`None`). Same kernel and random streams as :func:`contextual_walk`.

    Args:
        csr (HeteroCSR): the graph (relations as in :func:`contextual_walk`).
        seeds (Tensor or array): ``[S]`` target node ids (any integer dtype).
        target (str): the target node type (items, pins).
        context (str): the context node type (boards).
        num_walks (int, optional): walks per seed, ``>= 1``.
            (default: :obj:`100`)
        num_traversals (int, optional): maximum traversals per walk, ``>= 1``.
            (default: :obj:`3`)
        termination_prob (float, optional): termination probability after a
            traversal, in ``[0, 1]``. (default: :obj:`0.5`)
        num_neighbors (int, optional): neighbors kept per seed, ``>= 1``.
            (default: :obj:`10`)
        seed (int, optional): random seed. (default: :obj:`0`)
        num_threads (int, optional): Numba threads (default: Numba's).
    """
    args = check_pinsage_walk_args(
        target,
        context,
        num_walks,
        num_traversals,
        termination_prob,
        num_neighbors,
        seed,
        csr=csr,
    )
    seed_ids = _seeds(csr, seeds, target)
    return _run(
        csr,
        seed_ids,
        target,
        context,
        args["num_walks"],
        args["num_traversals"],
        args["termination_prob"],
        False,
        args["num_neighbors"],
        args["seed"],
        num_threads,
    )
