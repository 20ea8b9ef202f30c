"""Datasets: DBLP (AMiner side of OAG), OGB-MAG adapter, synthetic graphs."""

from pyg_multisage.datasets.dblp import DBLP_AREAS, DBLP_RAW_FILES, read_dblp_raw

__all__ = ["read_dblp_raw", "DBLP_RAW_FILES", "DBLP_AREAS"]
