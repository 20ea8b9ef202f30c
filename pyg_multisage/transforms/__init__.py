"""Transforms that write importance-neighbor edge types into a ``HeteroData``
(neighbor -> ego, ``edge_weight``, ``context`` + ``context_type``) and prune
graphs."""

from pyg_multisage.transforms.neighbors import (
    ContextualWalkNeighbors,
    PinSageNeighbors,
    PPRNeighbors,
)
from pyg_multisage.transforms.prune import DegreePrune

__all__ = [
    "ContextualWalkNeighbors",
    "DegreePrune",
    "PPRNeighbors",
    "PinSageNeighbors",
]
