"""Numba kernels: contextual walks, PinSage visit counts, forward push, pruning."""

from pyg_multisage.sampling._threads import prefer_fork_safe_threading_layer
from pyg_multisage.sampling.ppr import check_ppr_args, ppr_topk
from pyg_multisage.sampling.prune import check_prune_args, degree_prune
from pyg_multisage.sampling.table import NeighborTable
from pyg_multisage.sampling.walks import (
    check_contextual_walk_args,
    check_pinsage_walk_args,
    contextual_walk,
    pinsage_walk,
)

# Before any parallel kernel runs: DataLoader workers fork (see _threads).
prefer_fork_safe_threading_layer()

__all__ = [
    "NeighborTable",
    "check_contextual_walk_args",
    "check_pinsage_walk_args",
    "check_ppr_args",
    "check_prune_args",
    "contextual_walk",
    "degree_prune",
    "pinsage_walk",
    "ppr_topk",
]
