"""Non-learned references: raw features and Pixie's visit-count ranking."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch_geometric.data import HeteroData

from pyg_multisage.graph import HeteroCSR
from pyg_multisage.metrics import retrieval_metrics
from pyg_multisage.references import (
    pixie_metrics,
    pixie_visit_counts,
    raw_feature_embeddings,
    visit_count_ranks,
)
from pyg_multisage.sampling import NeighborTable, pinsage_walk


def forced_graph() -> HeteroCSR:
    """Six papers, two venues, two terms; zero weights force every hop.

    venue V0 = {0, 1, 2} always leads to paper 2, V1 = {3, 4, 5} to paper 3.
    term t0 = {0, 3, 5} always leads to paper 5, t1 = {1, 2, 4, 5} to paper
    1; paper 5 always steps into t1. With no termination and 3 traversals,
    the walks from v visit (one traversal each, the seed not counted):

    ====  ===========  ===========  ========================
    v     via venue    via term     summed counts (per walk)
    ====  ===========  ===========  ========================
    0     2, 2, 2      5, 1, 1      {2: 3, 1: 2, 5: 1}
    1     2, 2, 2      (1, 1, 1)    {2: 3}
    2     (2, 2, 2)    1, 1, 1      {1: 3}
    3     (3, 3, 3)    5, 1, 1      {1: 2, 5: 1}
    4     3, 3, 3      1, 1, 1      {1: 3, 3: 3}
    5     3, 3, 3      (1, 1, 1)    {1: 3, 3: 3}
    ====  ===========  ===========  ========================
    """
    pv = torch.tensor([[0, 1, 2, 3, 4, 5], [0, 0, 0, 1, 1, 1]])
    pt = torch.tensor([[0, 3, 5, 1, 2, 4, 5], [0, 0, 0, 1, 1, 1, 1]])
    pt_w = torch.tensor([1.0, 1, 0, 1, 1, 1, 1])  # paper 5 -> t1 only
    vp_w = torch.tensor([0.0, 0, 1, 1, 0, 0])  # V0 -> 2, V1 -> 3
    tp_w = torch.tensor([0.0, 0, 1, 1, 0, 0, 0])  # t0 -> 5, t1 -> 1
    return HeteroCSR(
        {
            ("paper", "in", "venue"): pv,
            ("venue", "has", "paper"): pv.flip(0),
            ("paper", "about", "term"): pt,
            ("term", "of", "paper"): pt.flip(0),
        },
        {"paper": 6, "venue": 2, "term": 2},
        {
            ("paper", "in", "venue"): torch.ones(6),
            ("venue", "has", "paper"): vp_w,
            ("paper", "about", "term"): pt_w,
            ("term", "of", "paper"): tp_w,
        },
    )


WALK = dict(
    target="paper", contexts=["venue", "term"], num_traversals=3, termination_prob=0.0
)
EXPECTED = {
    0: {2: 3, 1: 2, 5: 1},
    1: {2: 3},
    2: {1: 3},
    3: {1: 2, 5: 1},
    4: {1: 3, 3: 3},
    5: {1: 3, 3: 3},
}
# (query, positive) -> hand-computed pessimistic rank among the 6 papers:
# 1 + #{j not in {q, p} : s_j >= s_p}; an unvisited positive ties with every
# other unvisited paper at 0.
RANKS = {
    (0, 2): 1,  # 2 has the top count
    (0, 1): 2,  # 2 (3) beats 1 (2)
    (0, 5): 3,  # 2 and 1 beat 5
    (0, 3): 5,  # unvisited: 1, 2, 4, 5 all rank above
    (4, 3): 2,  # 1 ties with 3 at 3 and ranks above it
    (4, 1): 2,  # 3 ties with 1
    (3, 5): 2,  # 1 (2) beats 5 (1)
    (2, 4): 5,  # unvisited: 0, 1, 3, 5
}


def rows_of(table: NeighborTable) -> list[list[tuple[int, int]]]:
    out = []
    for i in range(table.num_seeds):
        lo, hi = int(table.ptr[i]), int(table.ptr[i + 1])
        nbr = table.neighbor[lo:hi].tolist()
        out.append(list(zip(nbr, map(int, table.weight[lo:hi].tolist()), strict=True)))
    return out


@pytest.mark.parametrize("num_walks", [1, 5])
def test_visit_counts_on_the_forced_graph(num_walks):
    table = pixie_visit_counts(forced_graph(), range(6), num_walks=num_walks, **WALK)
    for v, row in enumerate(rows_of(table)):
        want = sorted(
            ((u, c * num_walks) for u, c in EXPECTED[v].items()),
            key=lambda uc: (-uc[1], uc[0]),
        )
        assert row == want, v
    assert table.seeds.tolist() == list(range(6))


def test_hand_computed_ranks_and_metrics():
    pairs = torch.tensor(list(RANKS)).t()
    table = pixie_visit_counts(forced_graph(), pairs[0], num_walks=2, **WALK)
    ranks = visit_count_ranks(table, pairs[1], pairs[0], 6)
    assert ranks.tolist() == list(RANKS.values())

    r = list(RANKS.values())
    m1 = pixie_metrics(
        forced_graph(), pairs, num_walks=2, ks=(1, 2, 3), mrr_scale=1,
        topk_overlap_k=2, **WALK,
    )  # fmt: skip
    assert m1["MRR"] == pytest.approx(sum(1 / x for x in r) / 8)
    assert m1["REC@1"] == pytest.approx(1 / 8)
    assert m1["REC@2"] == pytest.approx(5 / 8)
    assert m1["REC@3"] == pytest.approx(6 / 8)
    # Top-2 by counts, ties and the unvisited (count 0) to the lower id, a
    # node never retrieving itself: T(0)={2,1}, T(1)={2,0}, T(2)={1,0},
    # T(3)={1,5}, T(4)={1,3}, T(5)={1,3}; every pair but (4, 1) shares one.
    assert m1["INT"] == pytest.approx(7 / 8)
    assert m1["UNI"] == pytest.approx(4 - 7 / 8)
    assert m1["JAC"] == pytest.approx(7 / 24)
    assert not {"DC+", "DC*", "DE+", "DE*"} & set(m1)
    chunked = pixie_metrics(
        forced_graph(), pairs, num_walks=2, ks=(1, 2, 3), mrr_scale=1,
        topk_overlap_k=2, chunk_size=1, **WALK,
    )  # fmt: skip
    assert chunked == m1

    m2 = pixie_metrics(forced_graph(), pairs, num_walks=2, mrr_scale=2, **WALK)
    assert m2["MRR"] == pytest.approx(sum(1 / math.ceil(x / 2) for x in r) / 8)
    assert m2["REC@10"] == 1.0


def test_ranks_follow_retrieval_metrics_on_one_query():
    """The same scores as cosines: a pool of unit vectors at angles ordered
    like the counts gives retrieval_metrics the same pessimistic ranks."""
    table = pixie_visit_counts(forced_graph(), [0], num_walks=1, **WALK)
    counts = torch.zeros(6)
    counts[table.neighbor] = table.weight
    angle = (3.0 - counts) * 0.3  # count 3 -> angle 0, count 0 -> 0.9
    pool = torch.stack([angle.cos(), angle.sin()], 1)
    query = torch.tensor([[1.0, 0.0]])
    pool[0] = torch.tensor([-1.0, 0.0])  # the query's own row (excluded)
    for p in range(1, 6):
        ours = visit_count_ranks(table, torch.tensor([p]), torch.tensor([0]), 6)
        ref = retrieval_metrics(
            query, pool[p : p + 1], pool, positive_index=torch.tensor([p]),
            query_index=torch.tensor([0]), ks=(1, 2, 3, 4, 5), mrr_scale=1,
        )  # fmt: skip
        assert 1.0 / int(ours) == pytest.approx(ref["MRR"]), p


def dense_ranks(table: NeighborTable, pos, qry, n: int) -> list[int]:
    """Brute force over the whole pool."""
    out = []
    for i, (p, q) in enumerate(zip(pos, qry, strict=True)):
        s = np.zeros(n)
        lo, hi = int(table.ptr[i]), int(table.ptr[i + 1])
        s[table.neighbor[lo:hi].numpy()] = table.weight[lo:hi].numpy()
        out.append(1 + sum(1 for j in range(n) if j not in (p, q) and s[j] >= s[p]))
    return out


def random_data(seed: int = 0) -> HeteroData:
    gen = torch.Generator().manual_seed(seed)
    data = HeteroData()
    data["paper"].num_nodes = 40
    data["venue"].num_nodes = 6
    data["term"].num_nodes = 15
    for c, m in (("venue", 40), ("term", 90)):
        src = torch.randint(0, 40, (m,), generator=gen)
        dst = torch.randint(0, data[c].num_nodes, (m,), generator=gen)
        data["paper", "in", c].edge_index = torch.stack([src, dst])
        data[c, "rev_in", "paper"].edge_index = torch.stack([dst, src])
    return data


def test_counts_are_the_sum_of_the_kernels_tables_and_ranks_brute_force():
    data = random_data()
    csr = HeteroCSR.from_data(data)
    seeds = torch.arange(40)
    kw = dict(num_walks=30, num_traversals=3, termination_prob=0.5, seed=7)
    table = pixie_visit_counts(
        data, seeds, target="paper", contexts=["venue", "term"], **kw
    )
    want = np.zeros((40, 40))
    for c in ("venue", "term"):
        t = pinsage_walk(csr, seeds, target="paper", context=c, num_neighbors=90, **kw)
        for i, row in enumerate(rows_of(t)):
            for u, w in row:
                want[i, u] += w
    got = np.zeros((40, 40))
    for i, row in enumerate(rows_of(table)):
        weights = [w for _, w in row]
        assert weights == sorted(weights, reverse=True)
        for u, w in row:
            got[i, u] = w
    np.testing.assert_array_equal(got, want)
    pos = torch.randint(0, 40, (40,), generator=torch.Generator().manual_seed(1))
    ranks = visit_count_ranks(table, pos, seeds, 40)
    assert ranks.tolist() == dense_ranks(table, pos.tolist(), seeds.tolist(), 40)
    # pixie_metrics walks each distinct query once; duplicates rank alike.
    pairs = torch.stack([torch.tensor([3, 3, 5]), torch.tensor([7, 7, 9])])
    m = pixie_metrics(data, pairs, target="paper", contexts=["venue", "term"], **kw)
    m1 = pixie_metrics(
        data, pairs[:, :1], target="paper", contexts=["venue", "term"], **kw
    )
    m2 = pixie_metrics(
        data, pairs[:, 2:], target="paper", contexts=["venue", "term"], **kw
    )
    assert m["MRR"] == pytest.approx((2 * m1["MRR"] + m2["MRR"]) / 3)
    assert m["INT"] == pytest.approx((2 * m1["INT"] + m2["INT"]) / 3)


def test_raw_feature_embeddings():
    x = torch.tensor([[3.0, 4.0], [0.0, 0.0], [1.0, 0.0]])
    emb = raw_feature_embeddings(x)
    assert torch.allclose(emb, torch.tensor([[0.6, 0.8], [0.0, 0.0], [1.0, 0.0]]))
    with pytest.raises(ValueError, match="x holds non-finite"):
        raw_feature_embeddings(torch.tensor([[1.0, float("nan")]]))
    with pytest.raises((TypeError, ValueError), match="x"):
        raw_feature_embeddings(torch.ones(3))


def test_bad_input():
    g = forced_graph()
    ok = torch.tensor([[0], [1]])
    with pytest.raises(ValueError, match=r"pairs must be a \[2, P\]"):
        pixie_metrics(g, torch.tensor([0, 1]), target="paper", contexts="venue")
    with pytest.raises(ValueError, match="at least one"):
        pixie_metrics(
            g, torch.zeros(2, 0, dtype=torch.long), target="paper", contexts="venue"
        )
    with pytest.raises(ValueError, match=r"pairs\[1\].*outside"):
        pixie_metrics(g, torch.tensor([[0], [6]]), target="paper", contexts="venue")
    with pytest.raises(ValueError, match="twice"):
        pixie_metrics(g, ok, target="paper", contexts=["venue", "venue"])
    with pytest.raises(TypeError, match="contexts"):
        pixie_metrics(g, ok, target="paper", contexts=[])
    with pytest.raises(ValueError, match="author"):
        pixie_metrics(g, ok, target="paper", contexts="author")
    with pytest.raises(ValueError, match="num_walks"):
        pixie_metrics(g, ok, target="paper", contexts="venue", num_walks=0)
    with pytest.raises(ValueError, match="termination_prob"):
        pixie_metrics(g, ok, target="paper", contexts="venue", termination_prob=1.5)
    with pytest.raises(ValueError, match="2\\*\\*24"):
        pixie_visit_counts(
            g, [0], target="paper", contexts="venue", num_walks=2**23, num_traversals=3
        )
    with pytest.raises(ValueError, match="mrr_scale"):
        pixie_metrics(g, ok, target="paper", contexts="venue", mrr_scale=0)
    with pytest.raises(TypeError, match="graph"):
        pixie_metrics({}, ok, target="paper", contexts="venue")
    table = pixie_visit_counts(g, [0, 1], target="paper", contexts="venue")
    with pytest.raises(ValueError, match="one id per table row"):
        visit_count_ranks(table, torch.tensor([1]), torch.tensor([0]), 6)
