"""Honouring a kernel's ``num_threads`` argument."""

from collections.abc import Iterator
from contextlib import contextmanager

import numba


@contextmanager
def num_threads(n: int | None) -> Iterator[int]:
    """Runs the block with ``n`` Numba threads (``None``: leave as it is)."""
    if n is None:
        yield numba.get_num_threads()
        return
    limit = numba.config.NUMBA_NUM_THREADS
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= limit:
        raise ValueError(f"num_threads must be an int in [1, {limit}], got {n!r}")
    old = numba.get_num_threads()
    numba.set_num_threads(n)
    try:
        yield n
    finally:
        numba.set_num_threads(old)
