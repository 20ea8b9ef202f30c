"""Shared fixtures: small graphs and the real DBLP files (never downloaded).

The real DBLP files are read only from ``$PYG_MULTISAGE_DBLP`` (the Makefile
exports it). When the variable is unset, the test suite, not the package,
falls back to ``../shared/data/dblp`` next to the project root and exports
that for the session, so subprocesses see it too; tests needing the data
skip when neither holds the files.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from graphs import random_bipartite
from torch_geometric.data import HeteroData

from pyg_multisage.datasets.dblp import find_dblp_raw

ROOT = Path(__file__).resolve().parents[1]
_DEV_DBLP = ROOT.parent / "shared" / "data" / "dblp"

if not os.environ.get("PYG_MULTISAGE_DBLP") and _DEV_DBLP.is_dir():
    os.environ["PYG_MULTISAGE_DBLP"] = str(_DEV_DBLP)


@pytest.fixture(scope="session")
def dblp_dir() -> Path:
    path = find_dblp_raw()
    if path is None:
        pytest.skip("DBLP raw files not found: set PYG_MULTISAGE_DBLP")
    return path


@pytest.fixture
def bipartite() -> HeteroData:
    return random_bipartite()
