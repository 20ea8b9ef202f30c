"""Honouring a kernel's ``num_threads`` argument, and a fork-safe threading layer.

Numba picks its threading layer at the first parallel launch of a process,
preferring ``tbb``, then ``omp``, then ``workqueue``. The GNU OpenMP runtime is
not fork-safe: once a parent process has launched an OpenMP parallel region, a
forked child that launches one again is terminated (``"fork() called from a
process already using GNU OpenMP"``). PyTorch's ``DataLoader`` forks its
workers, and the on-the-fly samplers run parallel kernels in them, so importing
:mod:`pyg_multisage.sampling` selects the fork-safe ``workqueue`` layer, unless
the user chose a layer (``NUMBA_THREADING_LAYER``) or one is already running.
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager

import numba

from pyg_multisage._checks import check_int


@contextmanager
def num_threads(n: int | None) -> Iterator[int]:
    """Runs the block with ``n`` Numba threads (``None``: leave as it is)."""
    if n is None:
        yield numba.get_num_threads()
        return
    limit = numba.config.NUMBA_NUM_THREADS
    n = check_int(n, "num_threads", 1)
    if n > limit:
        raise ValueError(f"num_threads must be <= {limit} (Numba's), got {n}")
    old = numba.get_num_threads()
    numba.set_num_threads(n)
    try:
        yield n
    finally:
        numba.set_num_threads(old)


def running_threading_layer() -> str | None:
    """The Numba threading layer launched in this process, or :obj:`None`."""
    try:
        return numba.threading_layer()
    except ValueError:  # no parallel region launched yet
        return None


def prefer_fork_safe_threading_layer() -> None:
    """Selects the ``workqueue`` layer if nothing is launched or configured."""
    if os.environ.get("NUMBA_THREADING_LAYER"):
        return
    if running_threading_layer() is not None:
        return
    if numba.config.THREADING_LAYER == "default":
        numba.config.THREADING_LAYER = "workqueue"
