"""Numba kernels: contextual walks, PinSage visit counts, forward push, pruning."""

from pyg_multisage.sampling.ppr import ppr_topk
from pyg_multisage.sampling.prune import degree_prune
from pyg_multisage.sampling.table import NeighborTable

__all__ = ["NeighborTable", "degree_prune", "ppr_topk"]
