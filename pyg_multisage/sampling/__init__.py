"""Numba kernels: contextual walks, PinSage visit counts, forward push, pruning."""

from pyg_multisage.sampling.table import NeighborTable

__all__ = ["NeighborTable"]
