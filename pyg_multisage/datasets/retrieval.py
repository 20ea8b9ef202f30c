"""Retrieval tasks: a dataset's graph, its target and context node types, and
its query–positive pairs, ready for the main job
(:mod:`pyg_multisage.experiment`).

One loader per dataset (:func:`synthetic_task`, :func:`dblp_task`,
:func:`ogbn_mag_task`), and :data:`RETRIEVAL_TASKS` naming them for
:func:`retrieval_task`. A new dataset is one function returning a
:class:`Task` and one entry of :data:`RETRIEVAL_TASKS`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import Tensor
from torch_geometric.data import HeteroData

__all__ = [
    "Task",
    "RETRIEVAL_TASKS",
    "retrieval_task",
    "synthetic_task",
    "dblp_task",
    "ogbn_mag_task",
]

SPLITS = ("train", "val", "test")


@dataclass
class Task:
    """A retrieval task: a graph whose ``target`` nodes are embedded, the
    ``contexts`` node types between them, and query–positive pairs.

    Args:
        data (HeteroData): The graph; ``data[target].x`` holds the targets'
            features.
        target (str): The node type that is embedded and retrieved.
        contexts (list[str]): Context node types, in order (MultiSage-2 uses
            the first).
        pairs (dict[str, Tensor]): ``'train'``, ``'val'``, ``'test'`` →
            ``[2, P]`` (query, positive) target ids.
        names (list[str], optional): A display name per target (titles).
        user_sequences (Tensor, optional): ``[U, L]`` target ids each user
            engaged with, in time order, right-padded with ``-1``
            (OmniSage's user–entity task, Eq. 4–5); :obj:`None` when the
            dataset has no users.
    """

    data: HeteroData
    target: str
    contexts: list[str]
    pairs: dict[str, Tensor]
    names: list[str] | None = None
    user_sequences: Tensor | None = None

    def replace_data(self, data: HeteroData) -> Task:
        """The same task on another graph (e.g. with neighbor edges added)."""
        return Task(
            data,
            self.target,
            self.contexts,
            self.pairs,
            self.names,
            self.user_sequences,
        )


def _pairs(data: HeteroData, dataset: str) -> dict[str, Tensor]:
    pairs = {}
    for split in SPLITS:
        key = f"{split}_pairs"
        if key not in data:
            raise ValueError(f"dataset {dataset!r} has no {key}")
        pairs[split] = data[key]
    return pairs


def synthetic_task(**kwargs: Any) -> Task:
    """A planted multipartite graph
    (:func:`~pyg_multisage.datasets.synthetic_multipartite`): targets
    ``item``, one context type ``board`` (or those named in
    :obj:`kwargs`). Defaults: 5,000 targets, 500 contexts, seed 0; any
    argument of :func:`~pyg_multisage.datasets.synthetic_multipartite`
    overrides them."""
    from pyg_multisage.datasets.synthetic import synthetic_multipartite

    args: dict[str, Any] = {"num_targets": 5000, "num_contexts": 500, "seed": 0}
    args.update(kwargs)
    data = synthetic_multipartite(**args)
    target = args.get("target", "item")
    contexts = [args.get("context", "board")]
    seqs = data.user_sequences if "user_sequences" in data else None
    return Task(data, target, contexts, _pairs(data, "synthetic"), None, seqs)


def dblp_task(root: str | None = None, raw_dir: str | None = None) -> Task:
    """DBLP (:class:`~pyg_multisage.datasets.DBLP`): papers are targets,
    venues and terms the contexts (MultiSage-3 on the AMiner side of OAG),
    same-author pairs. :obj:`raw_dir` defaults to the raw files
    :func:`~pyg_multisage.datasets.dblp.find_dblp_raw` finds, :obj:`root` to
    ``~/.cache/pyg_multisage/dblp``."""
    from pyg_multisage.datasets.dblp import DBLP, find_dblp_raw

    raw_dir = raw_dir or find_dblp_raw()
    root = root or os.path.join(
        os.path.expanduser("~"), ".cache", "pyg_multisage", "dblp"
    )
    data = DBLP(root, raw_dir=raw_dir)[0]
    names = list(data["paper"].title)
    return Task(data, "paper", ["venue", "term"], _pairs(data, "dblp"), names)


def ogbn_mag_task(root: str | None = None, raw_dir: str | None = None) -> Task:
    """OGB-MAG (:func:`~pyg_multisage.datasets.ogbn_mag`) from :obj:`root`,
    the folder of PyG's ``OGB_MAG``: papers are targets, fields of study and
    authors the contexts. Retrieval pairs are citing → cited paper, split by
    the citing paper's official (time) split; the citations leave the
    graph. :obj:`raw_dir` is unused (no raw files of ours)."""
    from pyg_multisage.datasets.ogbn_mag import citation_pairs, ogbn_mag

    if root is None:
        raise ValueError("ogbn-mag needs --root, the folder of PyG's OGB_MAG")
    data = ogbn_mag(root, keep_citations=True)
    for split, pairs in citation_pairs(data).items():
        data[f"{split}_pairs"] = pairs
    return Task(data, "paper", ["field_of_study", "author"], _pairs(data, "ogbn-mag"))


#: Dataset name → loader ``(root, raw_dir) -> Task`` (the synthetic one takes
#: the generator's arguments instead).
RETRIEVAL_TASKS: dict[str, Callable[..., Task]] = {
    "synthetic": synthetic_task,
    "dblp": dblp_task,
    "ogbn-mag": ogbn_mag_task,
}


def retrieval_task(
    dataset: str,
    root: str | None = None,
    raw_dir: str | None = None,
    synthetic: dict[str, Any] | None = None,
) -> Task:
    """Loads the retrieval task of :obj:`dataset` (one of :data:`RETRIEVAL_TASKS`).

    Args:
        dataset (str): ``synthetic``, ``dblp`` or ``ogbn-mag``.
        root (str, optional): Dataset folder (processed files go there).
        raw_dir (str, optional): Folder of raw files read in place (DBLP).
        synthetic (dict, optional): Arguments of the synthetic generator.
    """
    if dataset not in RETRIEVAL_TASKS:
        raise ValueError(
            f"dataset must be one of {tuple(RETRIEVAL_TASKS)}, got {dataset!r}"
        )
    if dataset == "synthetic":
        return synthetic_task(**(synthetic or {}))
    return RETRIEVAL_TASKS[dataset](root=root, raw_dir=raw_dir)
