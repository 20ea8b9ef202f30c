"""Loaders yielding NeighborLoader-style batches of importance neighbors."""

from pyg_multisage.loader.importance import (
    ImportanceLinkLoader,
    ImportanceNeighborLoader,
    attach_edge_attrs,
)

__all__ = ["ImportanceLinkLoader", "ImportanceNeighborLoader", "attach_edge_attrs"]
