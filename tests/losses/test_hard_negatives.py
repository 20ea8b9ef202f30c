"""PinSage's hard-negative curriculum: schedule, band, draws, losses."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pyg_multisage.losses import (
    HardNegativeBand,
    HardNegativeCurriculum,
    hard_negative_count,
    margin_loss_with_hard_negatives,
    max_margin_loss,
    sampled_softmax_loss,
    softmax_loss_with_hard_negatives,
)
from pyg_multisage.sampling import NeighborTable


def _ranking(rows: dict[int, list[int]]) -> NeighborTable:
    """A NeighborTable with the given rows, ranked in list order."""
    seeds = list(rows)
    ptr = np.cumsum([0] + [len(rows[s]) for s in seeds])
    nbr = [n for s in seeds for n in rows[s]]
    w = [float(len(rows[s]) - i) for s in seeds for i in range(len(rows[s]))]
    return NeighborTable(
        seeds=torch.tensor(seeds, dtype=torch.long),
        ptr=torch.tensor(ptr, dtype=torch.long),
        neighbor=torch.tensor(nbr, dtype=torch.long),
        weight=torch.tensor(w, dtype=torch.float32),
    )


def test_schedule_is_pinsage_one_more_per_epoch_capped():
    # Epoch e (1-based) adds e - 1: steps 0..9 none, 10..19 one, ...
    got = [hard_negative_count(s, 10, 3) for s in range(0, 60, 5)]
    assert got == [0, 0, 1, 1, 2, 2, 3, 3, 3, 3, 3, 3]
    assert hard_negative_count(10**6, 10, 0) == 0
    # Faster ramp: one more every 0.1 epoch = every step here.
    assert [hard_negative_count(s, 10, 5, 0.1) for s in range(7)] == [
        0, 1, 2, 3, 4, 5, 5,
    ]  # fmt: skip


@pytest.mark.parametrize(
    "args, match",
    [
        ((-1, 10, 3), "step"),
        ((0, 0, 3), "steps_per_epoch"),
        ((0, 10, -1), "max_count"),
        ((0, 10, 3, 0.0), "epochs_per_negative"),
    ],
)
def test_schedule_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        hard_negative_count(*args)


def test_draws_come_from_the_band_of_their_own_query():
    n = 50
    rows = {q: [(q + 1 + 3 * i) % n for i in range(12)] for q in range(0, n, 2)}
    rows = {q: [v for v in dict.fromkeys(r) if v != q] for q, r in rows.items()}
    band = HardNegativeBand(_ranking(rows), n, (2, 6))
    queries = torch.arange(0, n, 2).repeat(20)
    gen = torch.Generator().manual_seed(0)
    hard = band.sample(queries, 7, gen)
    assert hard.shape == (queries.numel(), 7)
    for q, row in zip(queries.tolist(), hard.tolist(), strict=True):
        allowed = set(rows[q][2:6])  # ranks 2, 3, 4, 5 (0-based)
        assert set(row) <= allowed
    # Uniform over the band: every rank is drawn.
    q0 = hard[queries == 0].flatten().tolist()
    assert set(q0) == set(rows[0][2:6])
    assert band.coverage == pytest.approx(0.5)


def test_short_and_missing_rows_fall_back_to_other_targets():
    rows = {0: [1, 2, 3], 1: [0]}  # row 1 shorter than lo; 2..4 not seeds
    band = HardNegativeBand(_ranking(rows), 5, (1, 10))
    assert band.candidates(0).tolist() == [2, 3]
    assert band.candidates(1).numel() == 0
    gen = torch.Generator().manual_seed(1)
    queries = torch.tensor([1, 3, 4] * 200)
    hard = band.sample(queries, 3, gen)
    for q in (1, 3, 4):
        drawn = set(hard[queries == q].flatten().tolist())
        assert drawn == set(range(5)) - {q}  # uniform over the others


def test_sampling_is_a_pure_function_of_the_generator_state():
    band = HardNegativeBand(_ranking({0: [1, 2, 3, 4, 5, 6]}), 8, (1, 5))
    queries = torch.tensor([0, 0, 3])
    a = band.sample(queries, 4, torch.Generator().manual_seed(7))
    b = band.sample(queries, 4, torch.Generator().manual_seed(7))
    assert torch.equal(a, b)
    gen = torch.Generator().manual_seed(7)
    state = gen.get_state()
    assert band.sample(queries, 0, gen).shape == (3, 0)
    assert torch.equal(gen.get_state(), state)  # count 0 draws nothing


def test_curriculum_counts_and_samples():
    band = HardNegativeBand(_ranking({0: [1, 2, 3]}), 4, (0, 3))
    cur = HardNegativeCurriculum(band, steps_per_epoch=5, max_count=2)
    gen = torch.Generator().manual_seed(0)
    assert cur.sample(torch.tensor([0]), 4, gen).shape == (1, 0)
    assert cur.sample(torch.tensor([0]), 5, gen).shape == (1, 1)
    assert cur.sample(torch.tensor([0]), 99, gen).shape == (1, 2)
    with pytest.raises(ValueError, match="max_count"):
        HardNegativeCurriculum(band, 5, -1)
    with pytest.raises(TypeError, match="HardNegativeBand"):
        HardNegativeCurriculum(object(), 5, 1)


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"band": (5, 5)}, "0 <= lo < hi"),
        ({"band": (-1, 3)}, "0 <= lo < hi"),
        ({"band": (1.0, 3)}, "pair of integers"),
        ({"num_nodes": 1}, "num_nodes"),
        ({"num_nodes": 3}, "neighbor must lie"),
    ],
)
def test_band_bad_input(kw, match):
    args = {"ranking": _ranking({0: [1, 2, 3]}), "num_nodes": 4, "band": (0, 2)}
    args.update(kw)
    with pytest.raises(ValueError, match=match):
        HardNegativeBand(**args)


def test_sample_bad_input():
    band = HardNegativeBand(_ranking({0: [1, 2, 3]}), 4, (0, 2))
    gen = torch.Generator()
    with pytest.raises(ValueError, match="queries must lie"):
        band.sample(torch.tensor([4]), 1, gen)
    with pytest.raises(ValueError, match="count"):
        band.sample(torch.tensor([0]), -1, gen)
    with pytest.raises(ValueError, match="int64"):
        band.sample(torch.tensor([0.0]), 1, gen)


def _emb(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.nn.functional.normalize(torch.randn(*shape, generator=g), dim=-1)


def test_softmax_with_shared_hard_negatives_equals_sampled_softmax():
    """The same hard negatives for every query are shared random negatives:
    the loss must equal sampled_softmax_loss with them appended."""
    b, k, h, d = 6, 5, 3, 8
    q, p, n, hn = (
        _emb(b, d, seed=1),
        _emb(b, d, seed=2),
        _emb(k, d, seed=3),
        _emb(h, d, seed=4),
    )
    pid = torch.tensor([0, 1, 2, 3, 2, 5])
    nid = torch.tensor([10, 1, 11, 12, 13])
    hid = torch.tensor([20, 3, 21])
    got = softmax_loss_with_hard_negatives(
        q * 5, p, n, hn.expand(b, h, d),
        positive_ids=pid, negative_ids=nid, hard_ids=hid.expand(b, h),
    )  # fmt: skip
    want = sampled_softmax_loss(
        q * 5, p, torch.cat([n, hn]),
        positive_ids=pid, negative_ids=torch.cat([nid, hid]),
    )  # fmt: skip
    torch.testing.assert_close(got, want)


def test_softmax_with_hard_negatives_by_hand():
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    p = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    hard = torch.tensor([[[0.0, 1.0]], [[0.0, 1.0]]])
    # Query 0: pos 1, in-batch 1, hard 0. Query 1: pos 0, in-batch 0, hard 1.
    e = torch.tensor(1.0).exp()
    want = (-torch.log(e / (2 * e + 1)) - torch.log(1 / (2 + e))) / 2
    got = softmax_loss_with_hard_negatives(q, p, None, hard)
    torch.testing.assert_close(got, want)
    # The hard negative equal to query 1's positive id is masked.
    masked = softmax_loss_with_hard_negatives(
        q, p, None, hard, positive_ids=torch.tensor([5, 6]),
        hard_ids=torch.tensor([[7], [6]]),
    )  # fmt: skip
    want = (-torch.log(e / (2 * e + 1)) - torch.log(torch.tensor(0.5))) / 2
    torch.testing.assert_close(masked, want)


def test_margin_with_hard_negatives_averages_every_triplet():
    b, k, h, d = 4, 3, 2, 6
    q, p, n, hn = (
        _emb(b, d, seed=5),
        _emb(b, d, seed=6),
        _emb(k, d, seed=7),
        _emb(b, h, d, seed=8),
    )
    got = margin_loss_with_hard_negatives(q, p, n, hn, margin=0.3)
    shared = max_margin_loss(q, p, n, margin=0.3, shared_negatives=True)
    own = max_margin_loss(q, p, hn, margin=0.3)
    torch.testing.assert_close(got, (shared * k + own * h) / (k + h))


def test_losses_bad_shapes():
    q, p = _emb(3, 4), _emb(3, 4, seed=1)
    with pytest.raises(ValueError, match="hard must have shape"):
        softmax_loss_with_hard_negatives(q, p, None, _emb(2, 1, 4))
    with pytest.raises(ValueError, match="hard_ids must have shape"):
        softmax_loss_with_hard_negatives(
            q, p, None, _emb(3, 1, 4), hard_ids=torch.zeros(3, 2, dtype=torch.long)
        )
    with pytest.raises(ValueError, match="hard must have shape"):
        margin_loss_with_hard_negatives(q, p, None, _emb(3, 1, 5))
