"""Graph builders shared by several test folders (import as ``graphs``)."""

from __future__ import annotations

import torch
from torch_geometric.data import HeteroData


def random_bipartite(
    num_targets: int = 30,
    num_contexts: int = 12,
    num_edges: int = 90,
    seed: int = 0,
    weighted: bool = False,
) -> HeteroData:
    """A small random target–context graph with both directions stored."""
    gen = torch.Generator().manual_seed(seed)
    src = torch.randint(0, num_targets, (num_edges,), generator=gen)
    dst = torch.randint(0, num_contexts, (num_edges,), generator=gen)
    key = torch.unique(src * num_contexts + dst)
    src, dst = key // num_contexts, key % num_contexts
    data = HeteroData()
    data["pin"].x = torch.randn(num_targets, 8, generator=gen)
    data["board"].x = torch.randn(num_contexts, 8, generator=gen)
    data["pin", "in", "board"].edge_index = torch.stack([src, dst])
    data["board", "has", "pin"].edge_index = torch.stack([dst, src])
    if weighted:
        w = torch.rand(src.numel(), generator=gen) + 0.1
        data["pin", "in", "board"].edge_weight = w
        data["board", "has", "pin"].edge_weight = w
    return data
