"""SyntheticMultipartite: planted facets, determinism, scale."""

from __future__ import annotations

import time

import pytest
import torch

from pyg_multisage.datasets import SyntheticMultipartite, synthetic_multipartite

E = ("item", "in", "board")
R = ("board", "has", "item")


@pytest.fixture(scope="module")
def graph():
    return SyntheticMultipartite(3000, 400, 12, avg_degree=8, noise=0.0, seed=3)[0]


def _on_facet(data, edge_type=E, t="item", c="board"):
    ei = data[edge_type].edge_index
    return (data[t].facets[ei[0]] == data[c].facet[ei[1], None]).any(1)


def test_facet_structure(graph):
    n, c = graph["item"].num_nodes, graph["board"].num_nodes
    facets = graph["item"].facets
    assert facets.shape == (n, 2)
    assert bool((facets[:, 0] < facets[:, 1]).all())  # distinct, sorted
    assert int(facets.min()) >= 0 and int(facets.max()) < 12
    assert torch.equal(graph["item"].y, facets[:, 0])
    assert graph["board"].facet.unique().numel() == 12
    # without noise every edge stays inside one of its target's facets
    assert bool(_on_facet(graph).all())
    ei = graph[E].edge_index
    key = ei[0] * c + ei[1]
    assert bool((key[1:] > key[:-1]).all())  # sorted, no duplicates
    assert int(ei[1].max()) < c
    w = graph[E].edge_weight
    assert bool((w >= 1).all()) and w.sum() > ei.size(1)  # collapsed repeats
    assert torch.equal(graph["item"].degree, torch.bincount(ei[0], minlength=n))
    # reverse edges: same set and weights, sorted by context
    rei = graph[R].edge_index
    assert bool((rei[0][1:] >= rei[0][:-1]).all())
    fwd = dict(zip((ei[0] * c + ei[1]).tolist(), w.tolist(), strict=True))
    bwd = dict(
        zip((rei[1] * c + rei[0]).tolist(), graph[R].edge_weight.tolist(), strict=True)
    )
    assert fwd == bwd
    # heavy-tailed degrees on both sides
    deg = graph["item"].degree.float()
    assert deg.max() > 4 * deg.mean()
    cdeg = torch.bincount(ei[1], minlength=c).float()
    assert cdeg.max() > 4 * cdeg.mean()


def test_pairs_share_a_facet(graph):
    pairs = torch.cat([graph.train_pairs, graph.val_pairs, graph.test_pairs], 1)
    assert pairs.size(1) > 4000
    assert bool((pairs[0] < pairs[1]).all())
    assert torch.unique(pairs[0] * 3000 + pairs[1]).numel() == pairs.size(1)
    f = graph["item"].facets
    share = (f[pairs[0]][:, :, None] == f[pairs[1]][:, None, :]).any(2).any(1)
    assert bool(share.all())
    assert abs(graph.train_pairs.size(1) / pairs.size(1) - 0.8) < 0.03


def test_features_carry_the_facet_signal(graph):
    x = torch.nn.functional.normalize(graph["item"].x, dim=1)
    p = graph.train_pairs
    pos = (x[p[0]] * x[p[1]]).sum(1).mean()
    gen = torch.Generator().manual_seed(0)
    r = torch.randint(0, x.size(0), (2, 5000), generator=gen)
    rand = (x[r[0]] * x[r[1]]).sum(1).mean()
    assert pos > rand + 0.1
    # contexts are closest (on average) to their own facet's items
    xc = torch.nn.functional.normalize(graph["board"].x, dim=1)
    ei = graph[E].edge_index
    linked = (x[ei[0]] * xc[ei[1]]).sum(1).mean()
    assert linked > (x[r[0]] * xc[r[1] % xc.size(0)]).sum(1).mean() + 0.1


def test_noise_edges():
    data = synthetic_multipartite(2000, 300, 30, avg_degree=10, noise=0.3, seed=1)
    w = data[E].edge_weight
    frac = (_on_facet(data).float() * w).sum().item() / w.sum().item()
    # expected on-facet share of the draws: 0.7 + 0.3 * 2 / 30 = 0.72
    assert 0.69 < frac < 0.75


def test_determinism_and_names():
    a = synthetic_multipartite(500, 60, 5, seed=7, target="paper", context="venue")
    b = synthetic_multipartite(500, 60, 5, seed=7, target="paper", context="venue")
    c = synthetic_multipartite(500, 60, 5, seed=8, target="paper", context="venue")
    assert set(a.node_types) == {"paper", "venue"}
    et = ("paper", "in", "venue")
    for key in ["x", "facets"]:
        assert torch.equal(a["paper"][key], b["paper"][key])
    assert torch.equal(a[et].edge_index, b[et].edge_index)
    assert torch.equal(a[et].edge_weight, b[et].edge_weight)
    assert torch.equal(a.test_pairs, b.test_pairs)
    assert not torch.equal(a["paper"].facets, c["paper"].facets)
    ds = SyntheticMultipartite(500, 60, 5, seed=7, target="paper", context="venue")
    assert len(ds) == 1 and torch.equal(ds[0][et].edge_index, a[et].edge_index)
    assert "SyntheticMultipartite(num_targets=500" in repr(ds)


def test_bad_input():
    with pytest.raises(ValueError, match="facets_per_target"):
        synthetic_multipartite(100, 20, 3, facets_per_target=4)
    with pytest.raises(ValueError, match="num_contexts"):
        synthetic_multipartite(100, 2, 3, avg_degree=1)
    with pytest.raises(ValueError, match="noise"):
        synthetic_multipartite(100, 20, 3, noise=1.5)
    with pytest.raises(ValueError, match="exponent"):
        synthetic_multipartite(100, 20, 3, exponent=1.0)
    with pytest.raises(TypeError, match="num_targets"):
        synthetic_multipartite(100.0, 20, 3)
    with pytest.raises(ValueError, match="avg_degree"):
        synthetic_multipartite(100, 20, 3, avg_degree=50)


@pytest.mark.slow
def test_ten_million_edges_time(capsys):
    synthetic_multipartite(1000, 100, 10, seed=0)  # compile / load the kernels
    t0 = time.perf_counter()
    data = synthetic_multipartite(1_000_000, 200_000, 1000, avg_degree=12.5, seed=0)
    elapsed = time.perf_counter() - t0
    num_edges = data[E].edge_index.size(1)
    with capsys.disabled():
        print(f"\nSyntheticMultipartite: {num_edges:,} edges in {elapsed:.2f} s")
    assert num_edges >= 10_000_000


def test_no_pairs_gives_empty_splits():
    data = synthetic_multipartite(num_targets=100, num_contexts=40, num_pairs=0)
    for split in ("train", "val", "test"):
        assert data[f"{split}_pairs"].shape == (2, 0)
