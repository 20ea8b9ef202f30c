"""Raising a clear error in forked DataLoader workers whose parent already runs
a fork-unsafe Numba threading layer (see :mod:`pyg_multisage.sampling._threads`)."""

from __future__ import annotations

import torch

from pyg_multisage.sampling._threads import running_threading_layer

FORK_SAFE_LAYERS = ("workqueue", "tbb")


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
