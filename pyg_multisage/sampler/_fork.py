"""Keeping Numba's parallel kernels usable in forked DataLoader workers.

Numba picks its threading layer at the first parallel launch of a process,
preferring ``tbb``, then ``omp``, then ``workqueue``. The GNU OpenMP runtime is
not fork-safe: once a parent process has launched an OpenMP parallel region, a
forked child that launches one again is terminated (``"fork() called from a
process already using GNU OpenMP"``). PyTorch's ``DataLoader`` forks its
workers, and the on-the-fly samplers run parallel kernels in them, so the
package selects the fork-safe ``workqueue`` layer, unless the user chose a
layer (``NUMBA_THREADING_LAYER``) or a layer is already running.
"""

from __future__ import annotations

import os

import numba
import torch

FORK_SAFE_LAYERS = ("workqueue", "tbb")


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


def check_fork_safe_worker() -> None:
    """Raises a clear error, instead of being killed, when a forked DataLoader
    worker is about to launch an OpenMP parallel region inherited from its
    parent."""
    if torch.utils.data.get_worker_info() is None:
        return
    layer = running_threading_layer()
    if layer is not None and layer not in FORK_SAFE_LAYERS:
        raise RuntimeError(
            f"the parent process launched Numba's '{layer}' threading layer "
            f"before forking DataLoader workers; that layer cannot run in a "
            f"forked child. Set NUMBA_THREADING_LAYER=workqueue (or import "
            f"pyg_multisage.sampler before running any kernel), or pass "
            f"multiprocessing_context='forkserver' to the loader"
        )


prefer_fork_safe_threading_layer()
