"""Shared fixtures: small graphs and the real DBLP files (never downloaded)."""

from __future__ import annotations

from pathlib import Path

import pytest
from graphs import random_bipartite
from torch_geometric.data import HeteroData

from pyg_multisage.datasets.dblp import find_dblp_raw

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def dblp_dir() -> Path:
    path = find_dblp_raw()
    if path is None:
        pytest.skip("DBLP raw files not found ($PYG_MULTISAGE_DBLP)")
    return path


@pytest.fixture
def bipartite() -> HeteroData:
    return random_bipartite()
