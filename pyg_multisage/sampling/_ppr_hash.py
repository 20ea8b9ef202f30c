r"""Forward push with per-seed hash-table scratch (``ppr_topk(scratch='hash')``).

The dense kernel of :mod:`pyg_multisage.sampling.ppr` keeps a residual and a
score for *every* node in each thread (8 bytes per node per thread): fastest
while those arrays sit in the caches, but on a graph of 10M nodes that is
80 MB of anonymous memory per thread, touched at random. This kernel keeps
the state of the nodes a seed touches only, in an open-addressing hash table
(linear probing, multiplicative hashing, load at most 1/2) that doubles when
needed and is allocated per chunk of seeds: its memory follows the touched
set (a few thousand nodes at ``eps = 1e-4``), not the graph.

Every arithmetic step, the FIFO order of the pushes and the top-k rule are
those of the dense kernel (:func:`~pyg_multisage.sampling.ppr._push_source`,
:func:`~pyg_multisage.sampling.ppr._topk_packed`), so both give identical
tables (tested): only where the state lives differs. The FIFO queue holds
table slots, remapped when the table grows (a node is queued at most once at
a time, so the queue never holds more entries than the table has keys).
"""

from __future__ import annotations

import numba
import numpy as np

from pyg_multisage.sampling._topk import insert_packed

#: Initial slots of a table (a power of two; doubled as needed).
INIT_SLOTS = 1 << 12
_EMPTY = np.int64(-1)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
#: Residual left on a node once pushed (both PPR kernels; why it is exact:
#: :func:`pyg_multisage.sampling.ppr._push_source`).
PUSHED = np.float32(-1e-30)


@numba.njit(cache=True, inline="always")
def _probe(keys, bits, v):
    """Slot of key ``v``, or of the empty slot where it would go."""
    mask = np.uint64(keys.shape[0] - 1)
    h = (np.uint64(v) * _GOLDEN) >> np.uint64(64 - bits)
    while True:
        k = keys[h]
        if k == v or k == _EMPTY:
            return h
        h = (h + np.uint64(1)) & mask


@numba.njit(cache=True)
def new_table(slots):
    """``(keys, residuals, scores, used, queue)`` with :obj:`slots` slots
    (a power of two): keys ``-1`` (empty), values zero."""
    return (
        np.full(slots, _EMPTY, dtype=np.int64),
        np.zeros(slots, dtype=np.float32),
        np.zeros(slots, dtype=np.float32),
        np.empty(slots, dtype=np.int64),
        np.empty(slots, dtype=np.int64),
    )


@numba.njit(cache=True)
def _grow(table, bits, m_used, head, size, need):
    """A table with at least ``2 * need`` slots holding the same keys and
    values; ``used`` and the live queue entries (from ``head``, ``size``)
    remapped to the new slots, the queue unrolled to start at 0. Returns
    ``(table, bits)``."""
    keys, r, p, used, queue = table
    old_mask = keys.shape[0] - 1
    new_bits = bits + 1
    while (1 << new_bits) < 2 * need:
        new_bits += 1
    t2 = new_table(1 << new_bits)
    k2, r2, p2, u2, q2 = t2
    for q in range(m_used):
        h = used[q]
        v = keys[h]
        h2 = _probe(k2, new_bits, v)
        k2[h2] = v
        r2[h2] = r[h]
        p2[h2] = p[h]
        u2[q] = h2
    for i in range(size):
        v = keys[queue[(head + i) & old_mask]]
        q2[i] = _probe(k2, new_bits, v)
    return t2, new_bits


@numba.njit(cache=True)
def push_source(s, indptr, edges, edges_f, alpha, eps, table, bits):
    """Forward push from global node ``s`` into an empty :obj:`table` (see
    :func:`~pyg_multisage.sampling.ppr._push_source` for the algorithm and
    the edge layout). Returns ``(table, bits, m_used, hops)``: the table
    (a new one if it grew), its size exponent, the number of used slots
    (listed in ``table[3][:m_used]``) and the edge traversals."""
    a = np.float32(alpha)
    keep = np.float32(1.0) - a
    e32 = np.float32(eps)
    keys, r, p, used, queue = table
    h = _probe(keys, bits, s)
    keys[h] = s
    used[0] = h
    m_used = 1
    d = indptr[s + 1] - indptr[s]
    if d == 0 or keep == 0.0:
        p[h] = np.float32(1.0)
        r[h] = PUSHED
        return table, bits, m_used, 0
    r[h] = np.float32(1.0) / np.float32(d)
    hops = 0
    head = 0
    size = 0
    if r[h] >= e32:
        queue[0] = h
        size = 1
    while size > 0:
        start = indptr[keys[queue[head]]]
        end = indptr[keys[queue[head]] + 1]
        deg = end - start
        if 2 * (m_used + deg) > keys.shape[0]:  # room for the whole row
            table, bits = _grow(table, bits, m_used, head, size, m_used + deg)
            keys, r, p, used, queue = table
            head = 0
        mask = keys.shape[0] - 1
        hv = queue[head]
        head = (head + 1) & mask
        size -= 1
        rs = r[hv]
        r[hv] = PUSHED
        p[hv] = p[hv] + a * rs * np.float32(deg)
        share = keep * rs
        hops += deg
        for j in range(start, end):
            w = np.int64(edges[j, 0])
            f = edges_f[j, 1]
            hw = _probe(keys, bits, w)
            if keys[hw] == _EMPTY:
                keys[hw] = w
                used[m_used] = hw
                m_used += 1
            old = r[hw]
            if f < 0.0:  # sink: it keeps the walk until it restarts
                if old == 0.0:
                    r[hw] = PUSHED
                p[hw] = p[hw] + share
                continue
            new = old + share * f
            r[hw] = new
            if new >= e32 and old < e32:
                queue[(head + size) & mask] = hw
                size += 1
    return table, bits, m_used, hops


@numba.njit(cache=True)
def topk(
    s, table, bits, m_used, type_lo, type_hi, type_k, type_col, keys_out, nbr, val, cnt
):
    """Top-:math:`k_t` per node type of the used slots with a positive score
    (the seed excluded), by the packed ``(score bits, 2^32 - 1 - id)`` key of
    :func:`~pyg_multisage.sampling.ppr._topk_packed` (global ids below
    ``2^32``): the same rows, whatever the order of the candidates."""
    keys, r, p, used, queue = table
    p_bits = p.view(np.uint32)
    num_types = type_k.shape[0]
    for j in range(num_types):
        cnt[j] = 0
    low = np.uint64(0xFFFFFFFF)
    for q in range(m_used):
        h = used[q]
        v = keys[h]
        if v == s or p[h] == 0.0:
            continue
        j = -1
        for t in range(num_types):
            if v >= type_lo[t] and v < type_hi[t]:
                j = t
                break
        if j < 0:
            continue
        key = (np.uint64(p_bits[h]) << np.uint64(32)) | (low - np.uint64(v))
        cnt[j] = insert_packed(keys_out, type_col[j], type_k[j], cnt[j], key)
    for j in range(num_types):
        base = type_col[j]
        for q in range(cnt[j]):
            key = keys_out[base + q]
            v = np.int64(low - (key & low))
            nbr[base + q] = v
            val[base + q] = p[_probe(keys, bits, v)]


@numba.njit(cache=True)
def reset(table, m_used):
    """Empties the used slots (or the whole table when most are used)."""
    keys, r, p, used, queue = table
    if 8 * m_used > keys.shape[0]:
        keys[:] = _EMPTY
        r[:] = 0.0
        p[:] = 0.0
    else:
        for q in range(m_used):
            h = used[q]
            keys[h] = _EMPTY
            r[h] = 0.0
            p[h] = 0.0
