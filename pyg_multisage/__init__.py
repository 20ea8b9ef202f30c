"""pyg_multisage: MultiSage and OmniSage for PyTorch Geometric.

Subpackages: :mod:`~pyg_multisage.sampling` (Numba kernels),
:mod:`~pyg_multisage.transforms`, :mod:`~pyg_multisage.sampler`,
:mod:`~pyg_multisage.loader`, :mod:`~pyg_multisage.nn`,
:mod:`~pyg_multisage.losses`, :mod:`~pyg_multisage.metrics`,
:mod:`~pyg_multisage.tasks`, :mod:`~pyg_multisage.train`,
:mod:`~pyg_multisage.datasets`, :mod:`~pyg_multisage.experiment` (the main job)
and :mod:`~pyg_multisage.cli`.
"""

from pyg_multisage.graph import HeteroCSR
from pyg_multisage.sampling import (
    NeighborTable,
    contextual_walk,
    degree_prune,
    pinsage_walk,
    ppr_topk,
)

__version__ = "0.1.0"

__all__ = [
    "HeteroCSR",
    "NeighborTable",
    "__version__",
    "contextual_walk",
    "degree_prune",
    "pinsage_walk",
    "ppr_topk",
]
