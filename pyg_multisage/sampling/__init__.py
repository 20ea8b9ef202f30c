"""Numba kernels: contextual walks, PinSage visit counts, forward push, pruning."""

from pyg_multisage.sampling.ppr import ppr_topk
from pyg_multisage.sampling.prune import degree_prune
from pyg_multisage.sampling.table import NeighborTable
from pyg_multisage.sampling.walks import contextual_walk, pinsage_walk

__all__ = [
    "NeighborTable",
    "contextual_walk",
    "degree_prune",
    "pinsage_walk",
    "ppr_topk",
]
