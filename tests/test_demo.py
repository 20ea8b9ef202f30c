"""The demo prints a random-ranking reference next to the models' metrics."""

from __future__ import annotations

import re

import pytest
import torch

from pyg_multisage import demo
from pyg_multisage import experiment as ex
from pyg_multisage.metrics import random_ranking_metrics

SMALL = {"num_targets": 300, "num_contexts": 30, "num_facets": 5, "seed": 0}


@pytest.fixture(scope="module")
def task_and_config():
    config = ex.RunConfig(dataset="synthetic", synthetic=SMALL, progress=False)
    return ex.load_task(config), config


def _numbers(line: str) -> dict[str, float]:
    return {k: float(v) for k, v in re.findall(r"(MRR|REC@\d+) ([0-9.]+)", line)}


def test_reference_is_what_random_embeddings_score(task_and_config):
    task, config = task_and_config
    line = demo.random_reference(task, config)
    assert "random ranking of the same 300" in line
    ref = _numbers(line)
    assert set(ref) == {"MRR", "REC@1", "REC@10"}
    pairs = task.pairs[config.eval_split]
    assert bool((pairs[0] != pairs[1]).all())
    exact = random_ranking_metrics(300 - 2)
    for key, value in ref.items():
        assert value == pytest.approx(exact[key], abs=5e-5)
    # Independent check: random embeddings of the pool score the reference
    # in expectation (mean over draws; 6 standard errors).
    runs, got = 30, []
    for seed in range(runs):
        emb = torch.randn(300, 16, generator=torch.Generator().manual_seed(seed))
        got.append(ex.evaluate(emb, pairs)["MRR"])
    mean = sum(got) / runs
    std = (sum((g - mean) ** 2 for g in got) / (runs - 1)) ** 0.5
    assert abs(mean - exact["MRR"]) < 6 * std / runs**0.5 + 1e-3, (mean, exact)


def test_main_job_prints_the_reference_under_the_table(
    task_and_config, monkeypatch, capsys
):
    task, _ = task_and_config
    fake = {c: 0.5 for c in ex.METRIC_COLUMNS}

    class Result:
        metrics = fake

    monkeypatch.setattr(ex, "load_task", lambda config: task)
    monkeypatch.setattr(ex, "run", lambda config, task: Result())
    demo.main_job(None, steps=1, models=["text"])
    out = capsys.readouterr().out.splitlines()
    table_end = max(i for i, s in enumerate(out) if s.strip().startswith("text"))
    line = out[table_end + 1]
    assert line.startswith("random ranking of the same 300")
    assert _numbers(line)["MRR"] == pytest.approx(
        random_ranking_metrics(298)["MRR"], abs=5e-5
    )
