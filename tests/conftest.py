"""Shared fixtures: small graphs and the real DBLP files (never downloaded)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from torch_geometric.data import HeteroData

ROOT = Path(__file__).resolve().parents[1]


def dblp_raw_dir() -> Path | None:
    """``$PYG_MULTISAGE_DBLP`` or ``../shared/data/dblp`` from the project root."""
    env = os.environ.get("PYG_MULTISAGE_DBLP")
    candidates = [Path(env)] if env else []
    candidates.append(ROOT.parent / "shared" / "data" / "dblp")
    for path in candidates:
        if (path / "paper_conf.txt").is_file():
            return path
    return None


@pytest.fixture(scope="session")
def dblp_dir() -> Path:
    path = dblp_raw_dir()
    if path is None:
        pytest.skip("DBLP raw files not found ($PYG_MULTISAGE_DBLP)")
    return path


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


@pytest.fixture
def bipartite() -> HeteroData:
    return random_bipartite()
