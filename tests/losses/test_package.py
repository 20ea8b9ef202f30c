"""The losses package: its public names, the frozen batch config, the one
logQ helper, and the checks added when the module became a package."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

import pyg_multisage.losses as losses
from pyg_multisage.losses import (
    CountMinSketch,
    SampledSoftmaxConfig,
    SampledSoftmaxLoss,
    candidate_log_q,
    chunked_sampled_softmax,
    max_margin_loss,
    sampled_softmax_loss,
)
from pyg_multisage.tasks import EntityEntityTask, PairSource


def test_public_names_and_one_file_per_objective():
    for name in losses.__all__:
        assert getattr(losses, name) is not None
    homes = {
        "max_margin_loss": "max_margin",
        "MaxMarginLoss": "max_margin",
        "CountMinSketch": "count_min_sketch",
        "sampled_softmax_loss": "sampled_softmax",
        "SampledSoftmaxLoss": "sampled_softmax",
        "candidate_log_q": "sampled_softmax",
        "chunked_sampled_softmax": "chunked_softmax",
        "SampledSoftmaxConfig": "softmax_config",
        "HardNegativeBand": "hard_negatives",
        "HardNegativeCurriculum": "hard_negatives",
        "hard_negative_count": "hard_negatives",
        "margin_loss_with_hard_negatives": "hard_negatives",
        "softmax_loss_with_hard_negatives": "hard_negatives",
    }
    assert set(homes) == set(losses.__all__)
    for name, module in homes.items():
        assert getattr(losses, name).__module__ == f"pyg_multisage.losses.{module}"


def test_config_is_frozen_and_normalized():
    cfg = SampledSoftmaxConfig(
        num_queries=4,
        num_negatives=2,
        temperature=3,
        chunk_size=2,
        positive_ids=torch.tensor([1, 2, 3, 4], dtype=torch.int32),
        negative_ids=[7, 8],
        reduction="mean",
    )
    assert cfg.temperature == 3.0 and isinstance(cfg.temperature, float)
    assert cfg.positive_ids.dtype == torch.int64
    assert cfg.negative_ids.tolist() == [7, 8]
    assert cfg.scale == 0.25 and cfg.has_negatives and cfg.chunked
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.temperature = 2.0
    whole = SampledSoftmaxConfig(4, 0, chunk_size=4, reduction="sum")
    assert whole.scale == 1.0 and not whole.has_negatives and not whole.chunked


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"num_queries": -1}, ValueError, "num_queries"),
        ({"num_negatives": 1.5}, TypeError, "num_negatives"),
        ({"num_negatives": 0, "in_batch_negatives": False}, ValueError, "negatives"),
        ({"temperature": True}, TypeError, "temperature"),
        ({"temperature": math.inf}, ValueError, "temperature"),
        ({"temperature": -1.0}, ValueError, "temperature"),
        ({"chunk_size": 0}, ValueError, "chunk_size"),
        ({"chunk_size": 2.0}, TypeError, "chunk_size"),
        ({"positive_ids": torch.tensor([[1, 2, 3]])}, ValueError, "positive_ids"),
        ({"positive_ids": torch.tensor([0, -1, 2])}, ValueError, "positive_ids"),
        ({"negative_ids": torch.tensor([1])}, ValueError, "negative_ids must have 2"),
        ({"weight": torch.ones(2)}, ValueError, "weight"),
        ({"weight": torch.ones(3, requires_grad=True)}, ValueError, "gradients"),
        ({"reduction": "max"}, ValueError, "reduction"),
    ],
)
def test_config_refuses_bad_fields(kwargs, error, match):
    base = {"num_queries": 3, "num_negatives": 2}
    with pytest.raises(error, match=match):
        SampledSoftmaxConfig(**{**base, **kwargs})


def test_chunked_function_equals_unchunked_and_needs_a_chunk_size():
    gen = torch.Generator().manual_seed(1)
    q, p, n = (torch.randn(m, 5, generator=gen) for m in (7, 7, 4))
    cfg = SampledSoftmaxConfig(7, 4, temperature=2.0, chunk_size=3)
    ref = sampled_softmax_loss(q, p, n, temperature=2.0)
    got = chunked_sampled_softmax(q, p, n, None, cfg)
    assert got.item() == pytest.approx(ref.item(), rel=1e-6)
    with pytest.raises(ValueError, match="chunk_size"):
        chunked_sampled_softmax(q, p, n, None, SampledSoftmaxConfig(7, 4))


def _exact_log_q(stream: np.ndarray, ids: np.ndarray) -> np.ndarray:
    counts = np.bincount(stream, minlength=ids.max() + 1)[ids]
    return np.log(np.maximum(counts, 1) / max(len(stream), 1))


def test_candidate_log_q_against_exact_counts():
    # A sketch this wide has no collisions among these ids: estimates are exact.
    sketch = CountMinSketch(width=2**16, depth=3, seed=5)
    seen: list[int] = []
    batches = [([3, 3, 9], [1, 9]), ([4, 3], [2, 2]), ([9], None)]
    for pos, neg in batches:
        pid = torch.tensor(pos)
        nid = None if neg is None else torch.tensor(neg)
        got = candidate_log_q(sketch, pid, nid)
        seen += pos + (neg or [])
        cand = np.array(pos + (neg or []))
        assert got.dtype == torch.float32 and got.shape == (len(cand),)
        np.testing.assert_allclose(
            got.numpy(), _exact_log_q(np.array(seen), cand), rtol=1e-6
        )
    total = int(sketch.total)
    frozen = candidate_log_q(sketch, torch.tensor([3]), torch.tensor([5]), update=False)
    assert int(sketch.total) == total == len(seen)  # no update without training
    np.testing.assert_allclose(
        frozen.numpy(), _exact_log_q(np.array(seen), np.array([3, 5])), rtol=1e-6
    )
    with pytest.raises(TypeError, match="positive_ids"):
        candidate_log_q(sketch, torch.tensor([1.0]))
    with pytest.raises(ValueError, match="negative_ids"):
        candidate_log_q(sketch, torch.tensor([1]), torch.tensor([-2]))


def test_module_and_task_share_the_log_q_helper():
    """SampledSoftmaxLoss and EntityEntityTask give the loss of Eq. 1 with
    the log_q that candidate_log_q computes on an identical sketch."""
    gen = torch.Generator().manual_seed(2)
    num_pins, d = 12, 4
    table = torch.randn(num_pins, d, generator=gen)
    pairs = torch.tensor([[0, 1, 2, 3], [4, 5, 4, 6]])
    src = PairSource("co", "pin", "pin", pairs)
    task = EntityEntityTask(
        [src], {"pin": num_pins}, num_negatives=3, log_q_correction=True
    )
    task.sketches["pin"] = CountMinSketch(2**12, 3, seed=1)
    batch = task.sample(4, generator=torch.Generator().manual_seed(3))
    q_ids, p_ids = batch.pairs["co"]
    n_ids = batch.negatives["pin"]

    ref_sketch = CountMinSketch(2**12, 3, seed=1)
    module = SampledSoftmaxLoss(sketch=CountMinSketch(2**12, 3, seed=1))
    for _ in range(2):  # the second call sees the counts of the first
        lq = candidate_log_q(ref_sketch, p_ids, n_ids)
        ref = sampled_softmax_loss(
            table[q_ids],
            table[p_ids],
            table[n_ids],
            log_q=lq,
            positive_ids=p_ids,
            negative_ids=n_ids,
        )
        total, _ = task(lambda t, ids: table[ids], batch)
        got = module(
            table[q_ids],
            table[p_ids],
            table[n_ids],
            positive_ids=p_ids,
            negative_ids=n_ids,
        )
        assert total.item() == pytest.approx(ref.item(), rel=1e-6)
        assert got.item() == pytest.approx(ref.item(), rel=1e-6)
    for s in (task.sketches["pin"], module.sketch):
        assert torch.equal(s.table, ref_sketch.table)
    with pytest.raises(ValueError, match="negative_ids"):
        module(table[q_ids], table[p_ids], table[n_ids], positive_ids=p_ids)


def test_margin_and_sketch_arguments_are_checked():
    q = torch.randn(3, 2)
    with pytest.raises(ValueError, match="margin"):
        max_margin_loss(q, q, q, margin=-0.5)
    with pytest.raises(ValueError, match="margin"):
        max_margin_loss(q, q, q, margin=math.nan)
    with pytest.raises(TypeError, match="margin"):
        losses.MaxMarginLoss(margin="0.1")
    with pytest.raises(ValueError, match="seed"):
        CountMinSketch(16, 2, seed=-1)
    with pytest.raises(ValueError, match="eps"):
        CountMinSketch.from_error(eps=1.5, delta=0.1)
    with pytest.raises(ValueError, match="delta"):
        CountMinSketch.from_error(eps=0.1, delta=0.0)
