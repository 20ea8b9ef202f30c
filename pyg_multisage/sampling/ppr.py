r"""Heterogeneous personalized PageRank by forward push (OmniSage §3.1.1).

For a set of relations :math:`R` the walk runs on the induced subgraph
:math:`\mathcal{H}_R` (the edges whose type is in :math:`R`), over nodes of all
types at once: node ``i`` of type ``t`` gets the global id ``offset[t] + i``
(types in the order of :attr:`HeteroCSR.node_types`). The scores are the
random walk with restart probability :math:`\alpha`,

.. math::
    \boldsymbol{\pi}_s = \alpha\, \mathbf{e}_s + (1 - \alpha)\,
    \boldsymbol{\pi}_s \mathbf{P},

with :math:`\mathbf{P}` the row-stochastic transition matrix of
:math:`\mathcal{H}_R` (edges of every relation in :math:`R` count once each).
They are estimated with the forward push of Andersen, Chung and Lang (FOCS
2006): starting from :math:`p = 0`, :math:`r = \mathbf{e}_s`, a node :math:`v`
with :math:`r(v) \ge \epsilon \cdot d(v)` moves :math:`\alpha\, r(v)` into
:math:`p(v)` and spreads :math:`(1 - \alpha)\, r(v) / d(v)` over its
out-neighbors in :math:`\mathcal{H}_R`. Every push keeps the invariant

.. math::
    \boldsymbol{\pi}_s = \mathbf{p} + \sum_u r(u)\, \boldsymbol{\pi}_u,

so at the end (every :math:`r(u) < \epsilon\, d(u)`)
:math:`0 \le \pi_s(v) - p(v) \le \epsilon \sum_u d(u)\, \pi_u(v)`, which is
:math:`\epsilon\, d(v)` on an undirected graph (as
:math:`d(u)\pi_u(v) = d(v)\pi_v(u)`). For each node type :math:`t` the
:math:`k_t` nodes of highest :math:`p` form :math:`N(u, \mathcal{H}_R)`.

Nodes without out-edges in :math:`\mathcal{H}_R` keep the walk until it
restarts (as if they had a self-loop): their whole residual is absorbed into
their score, so the scores sum to one. (PyG's ``get_ppr`` drops the
:math:`1-\alpha` share there instead; on graphs without such sinks, e.g.
undirected ones, both agree.)

Kernel layout: the merged out-CSR of :math:`\mathcal{H}_R` (``int32``
offsets and global ids while they fit, else ``int64``) is built once per
relation subset and kept with :meth:`HeteroCSR.cached`; edge ``e`` is the pair
``(w, 1 / d(w))`` in one 8-byte record, so a push streams one array. Each
thread owns scratch reused across its seeds: a ``float32`` array of
degree-scaled residuals :math:`r(v) / d(v)` (4 bytes per node: the only state
an edge traversal reads and writes), a ``float32`` score array (read and
written once per push), a FIFO queue, the list of touched nodes (all that is
reset afterwards; a plain fill once more than :math:`n/8` were touched) and
the list of scored nodes (:math:`p > 0`, all that the top-k reads: one pass
for every node type, with packed ``uint64`` (score, id) keys). While popping
a node the
kernel prefetches the edge row and score of the node a few places behind it
in the queue (and the ``indptr`` entry of one twice as far), so the cache
misses of consecutive pushes overlap.
On graphs whose dense scratch would not fit the caches (millions of nodes)
``scratch='hash'`` (:mod:`pyg_multisage.sampling._ppr_hash`) keeps the same
state in a per-seed hash table instead, with identical results. On a view
loaded memory-mapped the merged CSR is saved beside the graph and mapped
(:meth:`HeteroCSR.derived`).
``float32`` suffices: residuals are compared with thresholds
:math:`\epsilon\, d(v) \ge 10^{-7}` at a relative precision of
:math:`6 \cdot 10^{-8}`, and the rounding of the scores (relative
:math:`\approx 10^{-7}` per addition, a few hundred additions per node at most)
stays orders of magnitude below the push error :math:`\epsilon\, d(v)`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic
from torch import Tensor

from pyg_multisage._arraydir import open_npy
from pyg_multisage._checks import as_index_array, check_float, check_int
from pyg_multisage.graph import EdgeType, HeteroCSR
from pyg_multisage.sampling import _ppr_hash
from pyg_multisage.sampling._threads import num_threads as _num_threads
from pyg_multisage.sampling._topk import insert_packed, select_topk
from pyg_multisage.sampling.table import NeighborTable

__all__ = ["check_ppr_args", "ppr_topk"]

#: Smallest accepted ``eps`` (the float32 thresholds must stay positive).
MIN_EPS = 1e-12
#: Seeds handed to a thread at a time (dynamic scheduling).
_CHUNK = 8
#: How many queue places ahead the edge row and score of a queued node are
#: prefetched (its ``indptr`` entry: twice as far).
_PREFETCH_DIST = 6
#: Scratch layouts of :func:`ppr_topk` (``scratch``).
SCRATCH = ("auto", "dense", "hash")
#: Bytes of one thread's dense scratch (9 per node) above which
#: ``scratch='auto'`` takes the hash tables
#: (:mod:`pyg_multisage.sampling._ppr_hash`): the dense arrays then no longer
#: fit a last-level cache (measurements: docs/benchmarks.rst, out-of-core).
DENSE_SCRATCH_LIMIT = 32 << 20
#: Initial size exponent of the hash-table scratch (tests lower it).
_HASH_INIT_BITS = 12
#: Source rows per chunk while building the merged CSR (:func:`_merged_csr`).
_MERGE_CHUNK = 1 << 18
#: Residual left on a node once pushed: marks it touched (``!= 0``) while
#: staying below every threshold; adding a share to it gives the share
#: (see :func:`_push_source`). Shared with the hash-table kernel.
_PUSHED = _ppr_hash.PUSHED
#: ``node_slot`` entry of a node whose type is not in ``top_k``.
_NO_SLOT = np.uint8(255)


# -- kernel arguments, grouped by role --------------------------------------------
class _PushGraph(NamedTuple):
    r"""The merged out-CSR of :math:`\mathcal{H}_R` (:func:`_merged_csr`) and
    the push parameters."""

    indptr: np.ndarray  # int32/int64 [n + 1]
    edges: np.ndarray  # int32/int64 [E, 2]: (head w, bits of f = 1 / d(w))
    edges_f: np.ndarray  # float32/float64 [E, 2], a view of ``edges``
    alpha: float
    eps: float


class _TypeSlots(NamedTuple):
    """The node types of ``top_k``: global id range, :math:`k_t` and output
    column of each, and the type slot of every node (packed top-k only)."""

    lo: np.ndarray  # int64 [T] first global id
    hi: np.ndarray  # int64 [T] one past the last global id
    k: np.ndarray  # int64 [T]
    col: np.ndarray  # int64 [T] first output column
    node_slot: np.ndarray  # uint8 [n] (or [0]): type slot, _NO_SLOT if none


class _PushScratch(NamedTuple):
    """Per-thread scratch rows ``[num_threads, ...]`` (see the module
    docstring); ``ids``/``values``/``heap`` serve the unpacked top-k, ``keys``
    the packed one, and the unused ones have no columns."""

    scores: np.ndarray  # float32 [n] p
    score_bits: np.ndarray  # uint32 [n], a view of ``scores``
    residuals: np.ndarray  # float32 [n] r / d
    queue: np.ndarray  # [n + 1] FIFO ring (slack for branch-free writes)
    touched: np.ndarray  # [n + 1] nodes with state to reset
    scored: np.ndarray  # [n] nodes with p > 0
    ids: np.ndarray  # [n] candidates of one type (unpacked top-k)
    values: np.ndarray  # float32 [n] their scores
    heap: np.ndarray  # int64 [max k]
    keys: np.ndarray  # uint64 [sum k] packed (score, id) keys


class _PushOutput(NamedTuple):
    """Padded result rows, columns ``types.col[j]:+types.k[j]`` for type
    ``j``, and the edge traversals per seed."""

    neighbor: np.ndarray  # int64 [S, sum k] global ids
    score: np.ndarray  # float32 [S, sum k]
    count: np.ndarray  # int64 [S, T] valid entries per type
    hops: np.ndarray  # int64 [S]


@intrinsic
def _prefetch(typingctx, arr, idx):
    """Hints the CPU to fetch the cache line of ``arr[idx]`` (first index of
    a C-contiguous array; no load, no fault)."""
    sig = types.void(arr, idx)

    def codegen(context, builder, signature, args):
        aryty, idxty = signature.args
        ary = context.make_array(aryty)(context, builder, args[0])
        zero = context.get_constant(types.intp, 0)
        ptr = cgutils.get_item_pointer2(
            context,
            builder,
            data=ary.data,
            shape=cgutils.unpack_tuple(builder, ary.shape),
            strides=cgutils.unpack_tuple(builder, ary.strides),
            layout=aryty.layout,
            inds=[context.cast(builder, args[1], idxty, types.intp)]
            + [zero] * (aryty.ndim - 1),
            wraparound=False,
            boundscheck=False,
        )
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        # read access, high temporal locality, data cache
        builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return sig, codegen


@numba.njit(cache=True)
def _push_source(s, indptr, edges, edges_f, alpha, eps, p, r, queue, touched, scored):
    """Forward push from global node ``s``; returns
    ``(num_touched, num_scored, hops)``.

    ``p[v]`` (score) and ``r[v]`` (residual scaled by ``1 / d(v)``) must be
    zero for every node on entry. Keeping the degree-scaled residual makes the
    push test ``r / d >= eps`` need no degree lookup: the push from ``v`` adds
    ``(1 - alpha) r(v) / d(v) * f`` to the scaled residual of each neighbor
    ``w``, where edge ``e`` is stored as ``edges[e] = (w, f)`` (``f`` in
    ``edges_f[e, 1]``, a float view of the same memory, so one cache line
    serves both) with ``f = 1 / d(w)``, or ``-1`` when ``w`` is a sink, whose
    share is absorbed into ``p(w)`` at once. A node is queued when its scaled
    residual crosses ``eps`` (so no in-queue flag is needed). A pushed node
    (and a reached sink) keeps the residual :data:`_PUSHED`, a tiny negative
    number, so ``r(w) == 0`` alone tells an untouched node and an edge reads
    no other per-node state. A share added to it is
    ``(1 - alpha) r(v) / d(v) / d(w) >= (1 - alpha) eps / d(w)``, above
    ``2e-23`` for any ``eps >= 1e-12``, ``alpha <= 0.99`` and ``d(w) < 2^31``,
    so ``_PUSHED + share`` rounds to ``share`` exactly in float32 and the
    result equals a push from a zeroed residual (in any case it differs by at
    most ``1e-30``).

    The touched nodes are listed in ``touched[:num_touched]``; their state is
    left for the caller to read and reset. ``hops`` counts edge traversals.
    ``scored[:num_scored]`` lists the nodes with ``p > 0`` (pushed at least
    once, or sinks reached), the only candidates of the top-k. ``queue`` and
    ``touched`` need length ``n + 1``: the branch-free writes use one slot
    beyond the live entries. Random-access indices are cast to unsigned (they
    are non-negative node ids and positions) so Numba emits no negative-index
    wraparound in the edge loop.
    """
    cap = queue.shape[0]
    a = np.float32(alpha)
    keep = np.float32(1.0) - a
    e32 = np.float32(eps)
    touched[0] = s
    d = indptr[s + 1] - indptr[s]
    if d == 0 or keep == 0.0:  # a sink seed (or alpha = 1) keeps all the mass
        p[s] = np.float32(1.0)
        r[s] = _PUSHED
        scored[0] = s
        return 1, 1, 0
    r[s] = np.float32(1.0) / np.float32(d)
    num_touched = 1
    num_scored = 0
    hops = 0
    head = 0
    size = 0
    if r[s] >= e32:
        queue[0] = s
        size = 1
    while size > 0:
        v = queue[head]
        if size > _PREFETCH_DIST:
            ahead = head + _PREFETCH_DIST
            if ahead >= cap:
                ahead -= cap
            u = queue[ahead]
            _prefetch(edges, indptr[u])
            _prefetch(p, u)
            if size > 2 * _PREFETCH_DIST:
                ahead2 = ahead + _PREFETCH_DIST
                if ahead2 >= cap:
                    ahead2 -= cap
                _prefetch(indptr, queue[ahead2])
        head += 1
        if head == cap:
            head = 0
        size -= 1
        rs = r[v]
        r[v] = _PUSHED
        start = indptr[v]
        end = indptr[v + 1]
        deg = end - start
        pv = p[v]
        if pv == 0.0:
            scored[num_scored] = v
            num_scored += 1
        p[v] = pv + a * rs * np.float32(deg)
        share = keep * rs
        hops += deg
        row_w = edges[start:end, 0]
        row_f = edges_f[start:end, 1]
        for j in range(deg):
            w = row_w[j]
            uw = np.uint64(w)
            f = row_f[j]
            old = r[uw]
            touched[np.uint64(num_touched)] = w  # kept only on first touch
            num_touched += old == 0.0
            if f < 0.0:  # sink: it keeps the walk until it restarts
                if old == 0.0:
                    r[uw] = _PUSHED
                pw = p[uw]
                if pw == 0.0:
                    scored[num_scored] = w
                    num_scored += 1
                p[uw] = pw + share
                continue
            new = old + share * f
            r[uw] = new
            tail = head + size  # queued only when crossing eps (branch-free)
            if tail >= cap:
                tail -= cap
            queue[np.uint64(tail)] = w
            size += (new >= e32) & (old < e32)
    return num_touched, num_scored, hops


@numba.njit(cache=True)
def _topk_packed(
    s, scored, m_p, p, p_bits, node_slot, type_k, type_col, keys, nbr, val, cnt
):
    """Top-:math:`k_t` of the scored nodes per node type, for global ids below
    ``2^32``: each candidate becomes one ``uint64`` key, the float bits of its
    (positive) score above ``2^32 - 1 - id``, so one integer comparison
    orders by score descending, then id ascending, as :func:`select_topk`
    does. One pass over ``scored[:m_p]`` keeps, per type, the best keys found
    so far sorted descending in ``keys[type_col[j]:][:k_j]`` (insertion from
    the tail; most candidates are rejected by one comparison with the current
    ``k``-th key, as the FIFO push finds high scores first). The winners'
    global ids and scores go to ``nbr`` / ``val`` (row slices of the output,
    at the same columns) and their counts to ``cnt``."""
    num_types = type_k.shape[0]
    for j in range(num_types):
        cnt[j] = 0
    low = np.uint64(0xFFFFFFFF)
    for q in range(m_p):
        v = scored[q]
        if v == s:
            continue
        uv = np.uint64(v)
        j = node_slot[uv]
        if j == _NO_SLOT:
            continue
        key = (np.uint64(p_bits[uv]) << np.uint64(32)) | (low - uv)
        cnt[j] = insert_packed(keys, type_col[j], type_k[j], cnt[j], key)
    for j in range(num_types):
        base = type_col[j]
        for q in range(cnt[j]):
            v = low - (keys[base + q] & low)
            nbr[base + q] = v
            val[base + q] = p[v]


@numba.njit(cache=True, parallel=True)
def _ppr_kernel(seeds, graph, types, scratch, out):
    """Forward push and per-type top-k from every (global) seed.

    ``graph`` is the :class:`_PushGraph`, ``types`` the :class:`_TypeSlots`,
    ``scratch`` the per-thread :class:`_PushScratch` (``scores`` and
    ``residuals`` zero on entry and on exit), ``out`` the :class:`_PushOutput`
    written row by row.
    """
    indptr, edges, edges_f = graph.indptr, graph.edges, graph.edges_f
    alpha, eps = graph.alpha, graph.eps
    type_lo, type_hi, type_k, type_col = types.lo, types.hi, types.k, types.col
    node_slot = types.node_slot
    out_nbr, out_score, out_count = out.neighbor, out.score, out.count
    hops = out.hops
    num_seeds = seeds.shape[0]
    num_chunks = (num_seeds + _CHUNK - 1) // _CHUNK
    for c in numba.prange(num_chunks):
        tid = numba.get_thread_id()
        tpv = scratch.scores[tid]
        tbits = scratch.score_bits[tid]
        trv = scratch.residuals[tid]
        tq = scratch.queue[tid]
        tt = scratch.touched[tid]
        tp = scratch.scored[tid]
        tb = scratch.ids[tid]
        ts = scratch.values[tid]
        th = scratch.heap[tid]
        tk = scratch.keys[tid]
        for i in range(c * _CHUNK, min((c + 1) * _CHUNK, num_seeds)):
            s = seeds[i]
            m_all, m_p, h = _push_source(
                s, indptr, edges, edges_f, alpha, eps, tpv, trv, tq, tt, tp
            )
            hops[i] = h
            if tk.shape[0] > 0:  # global ids below 2^32: packed keys
                _topk_packed(
                    s,
                    tp,
                    m_p,
                    tpv,
                    tbits,
                    node_slot,
                    type_k,
                    type_col,
                    tk,
                    out_nbr[i],
                    out_score[i],
                    out_count[i],
                )
            for j in range(type_lo.shape[0] if tk.shape[0] == 0 else 0):
                lo = type_lo[j]
                hi = type_hi[j]
                m = 0
                for q in range(m_p):
                    v = tp[q]
                    if v >= lo and v < hi and v != s:
                        tb[m] = v
                        ts[m] = tpv[v]
                        m += 1
                col = type_col[j]
                k = type_k[j]
                out_count[i, j] = select_topk(
                    tb,
                    ts,
                    m,
                    k,
                    th,
                    out_nbr[i, col : col + k],
                    out_score[i, col : col + k],
                )
            # reset: a sequential fill beats scattered stores once more
            # than 1/8 of the nodes were touched
            if m_all > tpv.shape[0] // 8:
                tpv[:] = 0.0
                trv[:] = 0.0
            else:
                for q in range(m_all):
                    v = tt[q]
                    tpv[v] = 0.0
                    trv[v] = 0.0


@numba.njit(cache=True, parallel=True)
def _ppr_kernel_hash(seeds, graph, types, keys_scratch, init_bits, out):
    """:func:`_ppr_kernel` with per-chunk hash-table scratch
    (:mod:`pyg_multisage.sampling._ppr_hash`): memory follows the touched
    nodes, not the graph; identical rows (packed top-k only)."""
    indptr, edges, edges_f = graph.indptr, graph.edges, graph.edges_f
    alpha, eps = graph.alpha, graph.eps
    type_lo, type_hi, type_k, type_col = types.lo, types.hi, types.k, types.col
    out_nbr, out_score, out_count, hops = out.neighbor, out.score, out.count, out.hops
    num_seeds = seeds.shape[0]
    num_chunks = (num_seeds + _CHUNK - 1) // _CHUNK
    for c in numba.prange(num_chunks):
        tk = keys_scratch[numba.get_thread_id()]
        bits = np.int64(init_bits)
        table = _ppr_hash.new_table(1 << bits)
        for i in range(c * _CHUNK, min((c + 1) * _CHUNK, num_seeds)):
            s = seeds[i]
            table, bits, m_used, h = _ppr_hash.push_source(
                s, indptr, edges, edges_f, alpha, eps, table, bits
            )
            hops[i] = h
            _ppr_hash.topk(
                s,
                table,
                bits,
                m_used,
                type_lo,
                type_hi,
                type_k,
                type_col,
                tk,
                out_nbr[i],
                out_score[i],
                out_count[i],
            )
            _ppr_hash.reset(table, m_used)


def _run_dense(
    gseeds: np.ndarray,
    graph: _PushGraph,
    type_lo: np.ndarray,
    type_hi: np.ndarray,
    type_k: np.ndarray,
    type_col: np.ndarray,
    nt: int,
    out: _PushOutput,
) -> None:
    """:func:`_ppr_kernel` on ``nt`` threads with dense per-thread scratch."""
    n = len(graph.indptr) - 1
    total_k = int(type_k.sum())
    packed = n < 2**32 and total_k > 0 and len(type_k) < _NO_SLOT
    node_slot = np.full(n if packed else 0, _NO_SLOT, dtype=np.uint8)
    for j in range(len(type_k) if packed else 0):
        node_slot[type_lo[j] : type_hi[j]] = j
    slots = _TypeSlots(type_lo, type_hi, type_k, type_col, node_slot)
    scores = np.zeros((nt, n), dtype=np.float32)
    idx = graph.edges.dtype
    unpacked = 0 if packed else n
    scratch = _PushScratch(
        scores=scores,
        score_bits=scores.view(np.uint32),
        residuals=np.zeros((nt, n), dtype=np.float32),
        queue=np.empty((nt, n + 1), dtype=idx),
        touched=np.empty((nt, n + 1), dtype=idx),
        scored=np.empty((nt, n), dtype=idx),
        ids=np.empty((nt, unpacked), dtype=idx),
        values=np.empty((nt, unpacked), dtype=np.float32),
        heap=np.empty((nt, max(1, int(type_k.max(initial=0)))), np.int64),
        keys=np.empty((nt, total_k if packed else 0), np.uint64),
    )
    with _num_threads(nt), numba.parallel_chunksize(1):
        _ppr_kernel(gseeds, graph, slots, scratch, out)


def _offsets(csr: HeteroCSR) -> dict[str, int]:
    out, acc = {}, 0
    for t in csr.node_types:
        out[t] = acc
        acc += csr.num_nodes[t]
    return out


@numba.njit(cache=True)
def _fill_merged(rel_indptr, rel_indices, dst_off, indptr, cursor, edges, ef):
    """Appends one relation's rows to the merged out-CSR: the edges of row
    ``i`` go to ``edges[cursor[i]:]`` as ``(dst_off + j, 1 / d)``, ``d`` the
    merged out-degree of the head (from ``indptr``) or ``-1`` for a sink
    (``ef``: a float view of ``edges``; the reciprocal is taken in ``float64``
    and rounded to its width)."""
    for i in range(rel_indptr.shape[0] - 1):
        pos = cursor[i]
        for e in range(rel_indptr[i], rel_indptr[i + 1]):
            w = dst_off + rel_indices[e]
            d = indptr[w + 1] - indptr[w]
            edges[pos, 0] = w
            ef[pos, 1] = 1.0 / np.float64(d) if d > 0 else -1.0
            pos += 1
        cursor[i] = pos


def _merged_csr(
    csr: HeteroCSR,
    relations: tuple[EdgeType, ...],
    folder: Path | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Out-CSR ``(indptr, edges)`` of the subgraph induced by
    :obj:`relations` over global ids. ``edges[e] = (w, bits of f)``: the head
    ``w`` and, as the bits of a float of the same width, ``f = 1 / d(w)``, or
    ``-1`` when ``w`` has no out-edge (a sink). Row ``v`` lists the edges of
    each relation in turn (in the order of :obj:`relations`), each in its
    CSR order.

    Streamed from the relations' own arrays in chunks of
    :data:`_MERGE_CHUNK` source rows: besides the result (:math:`8E` or
    :math:`16E` bytes) it holds one chunk of degrees or cursors. With
    :obj:`folder` the arrays are written there as ``indptr.npy`` and
    ``edges.npy`` through memory maps (file pages, not the process's
    anonymous memory) and those maps are returned.
    """
    off = _offsets(csr)
    n = sum(csr.num_nodes.values())
    by_src: dict[str, list[EdgeType]] = {}
    for et in relations:
        by_src.setdefault(et[0], []).append(et)
    num_edges = sum(csr[et].num_edges for et in relations)
    offset_dtype = np.int64 if num_edges >= 2**31 else np.int32
    idx_dtype = np.int32 if n < 2**31 else np.int64
    if folder is None:
        indptr = np.zeros(n + 1, dtype=offset_dtype)
        edges = np.empty((num_edges, 2), dtype=idx_dtype)
    else:
        indptr = open_npy(folder / "indptr.npy", offset_dtype, (n + 1,))
        edges = open_npy(folder / "edges.npy", idx_dtype, (num_edges, 2))
        indptr[0] = 0
    chunks = [
        (t, a, min(a + _MERGE_CHUNK, csr.num_nodes[t]))
        for t in by_src
        for a in range(0, csr.num_nodes[t], _MERGE_CHUNK)
    ]
    for t, a, b in chunks:  # out-degrees, into the offsets' places
        deg = np.zeros(b - a, dtype=np.int64)
        for et in by_src[t]:
            deg += np.diff(csr[et].indptr[a : b + 1])
        indptr[off[t] + a + 1 : off[t] + b + 1] = deg
    total = 0
    for a in range(1, n + 1, _MERGE_CHUNK):  # prefix sums, chunk by chunk
        part = np.cumsum(indptr[a : a + _MERGE_CHUNK], dtype=np.int64) + total
        indptr[a : a + _MERGE_CHUNK] = part
        total = int(part[-1])
    plain = indptr.view(np.ndarray), edges.view(np.ndarray)
    ef = plain[1].view(_float_view(idx_dtype))
    for t, a, b in chunks:  # rows a..b of type t, relation after relation
        cursor = np.array(indptr[off[t] + a : off[t] + b], dtype=np.int64)
        for et in by_src[t]:
            c = csr[et]
            _fill_merged(
                c.indptr[a : b + 1],
                c.indices,
                off[et[2]],
                plain[0],
                cursor,
                plain[1],
                ef,
            )
    if folder is not None:
        indptr.flush()
        edges.flush()
    return indptr, edges


def _merged_graph(
    csr: HeteroCSR, relations: tuple[EdgeType, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_merged_csr` of :obj:`relations`, built once per view: saved
    beside a memory-mapped graph and mapped (:meth:`HeteroCSR.derived`: no
    anonymous memory, shared by every process that loads the graph), else in
    memory."""

    def build() -> tuple[np.ndarray, np.ndarray]:
        key = json.dumps([list(et) for et in relations])
        name = "ppr-" + hashlib.blake2b(key.encode(), digest_size=8).hexdigest()

        def write(folder: Path) -> list[str]:
            _merged_csr(csr, relations, folder)
            return ["indptr", "edges"]

        saved = csr.derived(name, {"kind": "ppr merged csr", "relations": key}, write)
        if saved is None:
            return _merged_csr(csr, relations)
        return saved["indptr"], saved["edges"]

    return csr.cached(("ppr_topk.merged_csr", relations), build)


def _float_view(int_dtype: np.dtype) -> type:
    return np.float32 if np.dtype(int_dtype) == np.int32 else np.float64


def _check_relations(
    relations: Sequence[EdgeType], csr: HeteroCSR | None
) -> tuple[EdgeType, ...]:
    if isinstance(relations, (str, bytes)) or not isinstance(
        relations, (Sequence, set, frozenset)
    ):
        raise TypeError(
            f"relations must be a sequence of (src, rel, dst) edge types, "
            f"got {relations!r}"
        )
    if len(relations) > 0 and all(isinstance(x, str) for x in relations):
        raise TypeError(
            f"relations must be a sequence of edge types, got the single "
            f"{tuple(relations)!r}; wrap it in a list"
        )
    out = set()
    for et in relations:
        if csr is not None:
            out.add(csr.check_edge_type(et, "relations entry"))
        elif (
            not isinstance(et, (tuple, list))
            or len(et) != 3
            or not all(isinstance(x, str) for x in et)
        ):
            raise TypeError(
                f"relations entry must be a (src, rel, dst) tuple, got {et!r}"
            )
        else:
            out.add(tuple(et))
    if not out:
        raise ValueError("relations must name at least one edge type")
    return tuple(sorted(out))


def check_ppr_args(
    source_type: str,
    relations: Sequence[EdgeType],
    top_k: Mapping[str, int],
    alpha: float = 0.15,
    eps: float = 1e-4,
    csr: HeteroCSR | None = None,
) -> dict[str, object]:
    """Validates the arguments of :func:`ppr_topk` and returns them as
    keyword arguments (``relations`` as a sorted tuple without duplicates,
    ``top_k`` a dict of ints).

    Without :obj:`csr` only what needs no graph is checked (what transforms
    do at construction); with it also that the node and edge types exist
    (what on-the-fly samplers do at construction, and the kernel on every
    call). Raises a :class:`TypeError` or :class:`ValueError` naming the
    argument.
    """
    if csr is not None:
        if not isinstance(csr, HeteroCSR):
            raise TypeError(f"csr must be a HeteroCSR, got {type(csr).__name__}")
        csr.check_node_type(source_type, "source_type")
    elif not isinstance(source_type, str):
        raise TypeError(f"source_type must be a str, got {type(source_type).__name__}")
    rels = _check_relations(relations, csr)
    if not isinstance(top_k, Mapping):
        raise TypeError(
            f"top_k must map node types to ints, got {type(top_k).__name__}"
        )
    ks: dict[str, int] = {}
    for t, k in top_k.items():
        if csr is not None:
            csr.check_node_type(t, "top_k key")
        elif not isinstance(t, str):
            raise TypeError(f"top_k key must be a str, got {type(t).__name__}")
        ks[t] = check_int(k, f"top_k['{t}']", 1)
    alpha = check_float(alpha, "alpha", 0.0, 1.0, low_open=True)
    eps = check_float(eps, "eps", 0.0, float("inf"), low_open=True)
    if eps < MIN_EPS:
        raise ValueError(f"eps must be >= {MIN_EPS}, got {eps}")
    return dict(source_type=source_type, relations=rels, top_k=ks, alpha=alpha, eps=eps)


def ppr_topk(
    csr: HeteroCSR,
    seeds: Tensor | np.ndarray | Sequence[int],
    *,
    source_type: str,
    relations: Sequence[EdgeType],
    top_k: Mapping[str, int],
    alpha: float = 0.15,
    eps: float = 1e-4,
    num_threads: int | None = None,
    scratch: str = "auto",
) -> dict[str, NeighborTable]:
    r"""Top-:math:`k_t` nodes of every type by personalized PageRank on the
    subgraph induced by a relation subset (OmniSage §3.1.1, forward push of
    Andersen, Chung and Lang).

    For a seed :math:`u` and node type :math:`t` the row lists
    :math:`N_t(u, \mathcal{H}_R)`, the :math:`k_t` nodes of type :math:`t` with
    the highest estimated random-walk-with-restart score :math:`p(v)`, sorted
    by score descending, ties by id ascending. Only nodes with a positive
    estimate are listed (fewer than :math:`k_t` when fewer were reached); the
    seed itself never is. Each estimate satisfies
    :math:`0 \le \pi_u(v) - p(v) \le \epsilon \sum_w d(w)\, \pi_w(v)`
    (:math:`\epsilon\, d(v)` on an undirected subgraph); see the module
    docstring for the sink convention. The result is a pure function of the
    seed: identical for any thread count, batch split or seed order.

    Args:
        csr (HeteroCSR): the graph.
        seeds (Tensor): ``[S]`` integer ids of :obj:`source_type` nodes
            (any integer dtype; converted to ``int64``).
        source_type (str): node type of the seeds.
        relations (Sequence[EdgeType]): the relation subset :math:`R`; the
            walk follows only edges of these types, in their stored direction
            (build the :class:`HeteroCSR` with :obj:`undirected=True` and list
            both directions for an undirected walk).
        top_k (Mapping[str, int]): :math:`k_t \ge 1` per node type
            :math:`t` (leave a type out rather than give it 0). A
            :math:`k_t` above the number of nodes of type :math:`t` is
            lowered to that number: every row can list at most all of them.
        alpha (float, optional): restart probability :math:`\alpha \in (0, 1]`.
            (default: :obj:`0.15`)
        eps (float, optional): push threshold :math:`\epsilon`: a node is
            pushed while :math:`r(v) \ge \epsilon\, d(v)`. Must be at least
            ``1e-12``. (default: :obj:`1e-4`)
        num_threads (int, optional): Numba threads; :obj:`None` keeps
            Numba's setting. (default: :obj:`None`)
        scratch (str, optional): where each thread keeps the residuals and
            scores: ``'dense'``, arrays over all nodes (8 bytes per node per
            thread; fastest while they fit the caches); ``'hash'``, a hash
            table of the nodes each seed touches (memory follows the touched
            set; needs fewer than :math:`2^{32}` nodes); ``'auto'`` takes
            ``'hash'`` when one thread's dense arrays would exceed
            :data:`DENSE_SCRATCH_LIMIT` bytes (about 3.7M nodes). Both give
            identical tables.
            (default: ``'auto'``)

    Returns:
        dict[str, NeighborTable]: one table per key of :obj:`top_k`, with
        local ids of that type in ``neighbor`` and the scores :math:`p(v)` in
        ``weight``.
    """
    return _ppr_topk(
        csr,
        seeds,
        source_type=source_type,
        relations=relations,
        top_k=top_k,
        alpha=alpha,
        eps=eps,
        num_threads=num_threads,
        scratch=scratch,
    )[0]


def _ppr_topk(
    csr: HeteroCSR,
    seeds: Tensor | np.ndarray | Sequence[int],
    *,
    source_type: str,
    relations: Sequence[EdgeType],
    top_k: Mapping[str, int],
    alpha: float = 0.15,
    eps: float = 1e-4,
    num_threads: int | None = None,
    scratch: str = "auto",
) -> tuple[dict[str, NeighborTable], np.ndarray]:
    """:func:`ppr_topk`, also returning the edge traversals per seed."""
    if not isinstance(csr, HeteroCSR):
        raise TypeError(f"csr must be a HeteroCSR, got {type(csr).__name__}")
    args = check_ppr_args(source_type, relations, top_k, alpha, eps, csr=csr)
    if scratch not in SCRATCH:
        raise ValueError(f"scratch must be one of {SCRATCH}, got {scratch!r}")
    rels, alpha, eps = args["relations"], args["alpha"], args["eps"]
    ks = {t: min(k, csr.num_nodes[t]) for t, k in args["top_k"].items()}
    seeds_np = as_index_array(seeds, "seeds", csr.num_nodes[source_type])

    off = _offsets(csr)
    indptr, edges = _merged_graph(csr, rels)
    n = len(indptr) - 1
    types = list(ks)
    type_lo = np.asarray([off[t] for t in types], dtype=np.int64)
    type_hi = np.asarray([off[t] + csr.num_nodes[t] for t in types], np.int64)
    type_k = np.asarray([ks[t] for t in types], dtype=np.int64)
    type_col = np.zeros(len(types), dtype=np.int64)
    if len(types) > 1:
        np.cumsum(type_k[:-1], out=type_col[1:])
    total_k = int(type_k.sum())
    num_seeds = len(seeds_np)
    gseeds = (seeds_np + off[source_type]).astype(edges.dtype)

    out = _PushOutput(
        neighbor=np.zeros((num_seeds, total_k), dtype=np.int64),
        score=np.zeros((num_seeds, total_k), dtype=np.float32),
        count=np.zeros((num_seeds, len(types)), dtype=np.int64),
        hops=np.zeros(num_seeds, dtype=np.int64),
    )
    if num_seeds > 0 and n > 0:
        with _num_threads(num_threads) as nt:
            nt = min(nt, max(1, (num_seeds + _CHUNK - 1) // _CHUNK))
            hashable = n < 2**32 and len(types) < _NO_SLOT  # packed keys
            if scratch == "hash" and not hashable:
                raise ValueError(
                    "scratch='hash' needs fewer than 2^32 nodes and fewer than "
                    f"{int(_NO_SLOT)} node types in top_k"
                )
            if scratch == "auto":  # dense: scores, residuals, type slots
                big = 9 * n > DENSE_SCRATCH_LIMIT
                scratch = "hash" if hashable and big else "dense"
            graph = _PushGraph(
                indptr, edges, edges.view(_float_view(edges.dtype)), alpha, eps
            )
            if scratch == "hash":
                slots = _TypeSlots(type_lo, type_hi, type_k, type_col, np.empty(0))
                keys = np.empty((nt, total_k), np.uint64)
                with _num_threads(nt), numba.parallel_chunksize(1):
                    _ppr_kernel_hash(gseeds, graph, slots, keys, _HASH_INIT_BITS, out)
            else:
                _run_dense(gseeds, graph, type_lo, type_hi, type_k, type_col, nt, out)
    tables: dict[str, NeighborTable] = {}
    for j, t in enumerate(types):
        col, k = int(type_col[j]), int(type_k[j])
        nbr = out.neighbor[:, col : col + k] - type_lo[j]
        tables[t] = NeighborTable.from_padded(
            seeds_np, out.count[:, j], nbr, out.score[:, col : col + k]
        )
    return tables, out.hops
