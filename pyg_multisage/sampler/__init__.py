"""PyG samplers (:class:`torch_geometric.sampler.BaseSampler` subclasses) over
importance neighbors: precomputed (:class:`ImportanceNeighborSampler`) and on
the fly."""

from pyg_multisage.sampler.importance import ImportanceNeighborSampler
from pyg_multisage.sampler.on_the_fly import ContextualWalkSampler, PPRSampler
from pyg_multisage.sampler.utils import (
    ImportanceHeteroSamplerOutput,
    ImportanceSamplerOutput,
)

__all__ = [
    "ContextualWalkSampler",
    "PPRSampler",
    "ImportanceHeteroSamplerOutput",
    "ImportanceNeighborSampler",
    "ImportanceSamplerOutput",
]
