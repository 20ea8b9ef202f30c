"""Retrieval tasks of the main job (pyg_multisage.datasets.retrieval)."""

from __future__ import annotations

import pytest
import torch

from pyg_multisage.datasets import (
    RETRIEVAL_TASKS,
    Task,
    retrieval_task,
    synthetic_multipartite,
    synthetic_task,
)


def test_synthetic_task_matches_the_generator():
    args = {"num_targets": 200, "num_contexts": 20, "seed": 3}
    task = retrieval_task("synthetic", synthetic=args)
    data = synthetic_multipartite(**args)
    assert isinstance(task, Task)
    assert (task.target, task.contexts, task.names) == ("item", ["board"], None)
    for split in ("train", "val", "test"):
        assert torch.equal(task.pairs[split], data[f"{split}_pairs"])
    renamed = synthetic_task(**args, target="pin", context="board2")
    assert (renamed.target, renamed.contexts) == ("pin", ["board2"])
    other = task.replace_data(data)
    assert other.data is data and other.pairs is task.pairs


def test_known_datasets_and_bad_input():
    assert set(RETRIEVAL_TASKS) == {"synthetic", "dblp", "ogbn-mag"}
    with pytest.raises(ValueError, match="dataset must be one of"):
        retrieval_task("cora")
    with pytest.raises(ValueError, match="ogbn-mag needs --root"):
        retrieval_task("ogbn-mag")
