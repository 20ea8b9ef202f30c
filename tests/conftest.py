"""Shared fixtures: small graphs and the real DBLP files (never downloaded)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from graphs import random_bipartite
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


@pytest.fixture
def bipartite() -> HeteroData:
    return random_bipartite()
