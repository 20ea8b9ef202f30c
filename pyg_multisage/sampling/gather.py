"""Gathering rows of a CSR table for a batch of seeds (the loaders' hot path).

:func:`row_positions` lists, for a batch of row ids (repeats allowed), the
positions of the first ``limit`` entries of every row and the batch position
of the row each entry came from, in one pass: the samplers then gather the
neighbor, weight and context arrays with one indexed read each.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def _row_positions(ptr, rows, limit):
    num_rows = rows.shape[0]
    count = np.empty(num_rows, np.int64)
    total = 0
    for i in range(num_rows):
        r = rows[i]
        c = ptr[r + 1] - ptr[r]
        if 0 <= limit < c:
            c = limit
        count[i] = c
        total += c
    owner = np.empty(total, np.int64)
    pos = np.empty(total, np.int64)
    k = 0
    for i in range(num_rows):
        start = ptr[rows[i]]
        for j in range(count[i]):
            owner[k] = i
            pos[k] = start + j
            k += 1
    return owner, pos


def row_positions(
    ptr: np.ndarray, rows: np.ndarray, limit: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(owner, pos)``: the entries of :obj:`rows` of the CSR table with row
    offsets :obj:`ptr`, at most :obj:`limit` per row (the first ones), row by
    row in the order of :obj:`rows`. ``pos`` indexes the table's entry arrays;
    ``owner`` is the position in :obj:`rows` of the row each entry belongs to.

    Both inputs are ``int64`` arrays; every row id must lie in
    ``[0, len(ptr) - 1)`` (the samplers validate seeds beforehand).
    """
    ptr = np.ascontiguousarray(ptr, dtype=np.int64)
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    if rows.size and (int(rows.min()) < 0 or int(rows.max()) >= ptr.shape[0] - 1):
        raise ValueError(f"rows must lie in [0, {ptr.shape[0] - 1})")
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be non-negative or None, got {limit}")
    return _row_positions(ptr, rows, -1 if limit is None else int(limit))
