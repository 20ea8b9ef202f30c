"""Top-k selection over a kernel's touched list (jitted, per source).

Rows of a :class:`~pyg_multisage.sampling.NeighborTable` are ordered by score
descending, ties broken by node id ascending. :func:`select_topk` finds the
``k`` best of ``m`` touched nodes with a bounded heap (``O(m log k)``), never
looking at untouched nodes. Where a score is an integer or a positive float
and ids fit the remaining bits, :func:`insert_packed` and
:func:`insert_packed_at` keep the best ``k`` as packed ``uint64`` keys
(score above ``mask - id``): one integer comparison orders two candidates,
and a full run rejects a worse one with a single comparison.
"""

import numba


@numba.njit(cache=True, inline="always")
def _worse(sa, ia, sb, ib):
    # True if (sa, ia) ranks below (sb, ib): lower score, or same score, larger id.
    return sa < sb or (sa == sb and ia > ib)


@numba.njit(cache=True)
def _sift_down(heap, ids, scores, size, pos):
    while True:
        left = 2 * pos + 1
        if left >= size:
            return
        child = left
        right = left + 1
        if right < size:
            a, b = heap[right], heap[left]
            if _worse(scores[a], ids[a], scores[b], ids[b]):
                child = right
        c, p = heap[child], heap[pos]
        if _worse(scores[c], ids[c], scores[p], ids[p]):
            heap[pos], heap[child] = c, p
            pos = child
        else:
            return


@numba.njit(cache=True)
def select_topk(ids, scores, m, k, heap, out_ids, out_scores):
    """Writes the best ``min(k, m)`` of ``ids[:m]`` / ``scores[:m]``, sorted.

    ``heap`` is scratch of length ``>= k``; ``out_ids`` and ``out_scores``
    receive the selection (best first). Returns the number written.
    """
    size = min(k, m)
    if size <= 0:
        return 0
    for i in range(size):
        heap[i] = i
    for pos in range(size // 2 - 1, -1, -1):
        _sift_down(heap, ids, scores, size, pos)
    for i in range(size, m):
        r = heap[0]
        if _worse(scores[r], ids[r], scores[i], ids[i]):
            heap[0] = i
            _sift_down(heap, ids, scores, size, 0)
    # Heap sort: pop the worst into the last free slot.
    for n in range(size, 0, -1):
        r = heap[0]
        out_ids[n - 1] = ids[r]
        out_scores[n - 1] = scores[r]
        heap[0] = heap[n - 1]
        _sift_down(heap, ids, scores, n - 1, 0)
    return size


@numba.njit(cache=True, inline="always")
def insert_packed(keys, base, k, c, key):
    """Offers ``key`` to the descending run ``keys[base:base + c]`` that keeps
    the best ``k`` keys seen so far (packed ``uint64`` keys: one integer
    comparison orders them); returns the run's new length. A key below a
    full run's last one is rejected by one comparison."""
    if c < k:
        pos = c
        c += 1
    elif k > 0 and key > keys[base + k - 1]:
        pos = k - 1
    else:
        return c
    while pos > 0 and keys[base + pos - 1] < key:
        keys[base + pos] = keys[base + pos - 1]
        pos -= 1
    keys[base + pos] = key
    return c


@numba.njit(cache=True, inline="always")
def insert_packed_at(keys, at, k, c, key, j):
    """:func:`insert_packed` for a run ``keys[:c]`` of at most ``k`` keys
    (from position 0) that also moves a parallel array: ``at[i]`` is the
    caller's position ``j`` of the item whose key is ``keys[i]`` (the walk
    kernels keep there the touched-list position, whose context follows the
    selection). Returns the run's new length."""
    if c < k:
        i = c
        c += 1
    elif k > 0 and key > keys[k - 1]:
        i = k - 1
    else:
        return c
    while i > 0 and keys[i - 1] < key:
        keys[i] = keys[i - 1]
        at[i] = at[i - 1]
        i -= 1
    keys[i] = key
    at[i] = j
    return c
