"""Datasets: DBLP (AMiner side of OAG), OGB-MAG adapter, synthetic graphs,
and the retrieval tasks the main job reads from them."""

from pyg_multisage.datasets.dblp import (
    DBLP,
    DBLP_AREAS,
    DBLP_RAW_FILES,
    DBLP_RELEASE,
    download_dblp_raw,
    find_dblp_raw,
    read_dblp_raw,
    same_author_pairs,
    split_pairs,
)
from pyg_multisage.datasets.ogbn_mag import (
    OGBN_MAG_CONTEXTS,
    citation_pairs,
    ogbn_mag,
    to_target_context,
)
from pyg_multisage.datasets.retrieval import (
    RETRIEVAL_TASKS,
    Task,
    dblp_task,
    ogbn_mag_task,
    retrieval_task,
    synthetic_task,
)
from pyg_multisage.datasets.synthetic import (
    SyntheticMultipartite,
    synthetic_multipartite,
)

__all__ = [
    "DBLP",
    "read_dblp_raw",
    "download_dblp_raw",
    "find_dblp_raw",
    "same_author_pairs",
    "split_pairs",
    "citation_pairs",
    "ogbn_mag",
    "to_target_context",
    "OGBN_MAG_CONTEXTS",
    "SyntheticMultipartite",
    "synthetic_multipartite",
    "DBLP_RAW_FILES",
    "DBLP_AREAS",
    "DBLP_RELEASE",
    "Task",
    "RETRIEVAL_TASKS",
    "retrieval_task",
    "synthetic_task",
    "dblp_task",
    "ogbn_mag_task",
]
