"""Transforms write the contract's edge layout and validate their input."""

from __future__ import annotations

import pytest
import torch
from graphs import random_bipartite
from torch_geometric.data import Data

from pyg_multisage.graph import HeteroCSR
from pyg_multisage.sampling.ppr import ppr_topk
from pyg_multisage.sampling.walks import contextual_walk, pinsage_walk
from pyg_multisage.transforms import (
    ContextualWalkNeighbors,
    DegreePrune,
    PinSageNeighbors,
    PPRNeighbors,
)
from pyg_multisage.transforms import neighbors as neighbors_module


def check_layout(store, num_egos):
    ei, w = store.edge_index, store.edge_weight
    assert ei.dtype == torch.long and w.dtype == torch.float32
    ego = ei[1]
    assert bool((ego[1:] >= ego[:-1]).all())
    same = ego[1:] == ego[:-1]
    assert bool((w[1:][same] <= w[:-1][same]).all())
    assert int(ego.max()) < num_egos


def test_contextual_walk_neighbors(monkeypatch):
    monkeypatch.setattr(neighbors_module, "CHUNK", 7)  # chunking changes nothing
    data = random_bipartite(30, 8, 90, seed=1)
    t = ContextualWalkNeighbors("pin", "board", num_walks=15, num_neighbors=3, seed=2)
    out = t(data)
    et = ("pin", "walk_via_board", "pin")
    assert et not in data.edge_types  # input untouched
    store = out[et]
    check_layout(store, 30)
    assert store.context_type == "board" and store.context.dtype == torch.long
    table = contextual_walk(
        HeteroCSR.from_data(data),
        torch.arange(30),
        target="pin",
        context="board",
        num_walks=15,
        num_neighbors=3,
        seed=2,
    )
    assert torch.equal(store.edge_index, table.edge_index())
    assert torch.equal(store.edge_weight, table.weight)
    assert torch.equal(store.context, table.context)
    assert "num_walks=15" in repr(t)


def test_pinsage_and_ppr_neighbors():
    data = random_bipartite(30, 8, 90, seed=1)
    out = PinSageNeighbors("pin", "board", num_walks=10, num_neighbors=4)(data)
    table = pinsage_walk(
        HeteroCSR.from_data(data),
        torch.arange(30),
        target="pin",
        context="board",
        num_walks=10,
        num_neighbors=4,
    )
    store = out["pin", "pinsage", "pin"]
    check_layout(store, 30)
    assert "context" not in store
    assert torch.equal(store.edge_index, table.edge_index())
    rels = [("pin", "in", "board"), ("board", "has", "pin")]
    t = PPRNeighbors("pin", {"pb": rels}, {"pb": {"pin": 3, "board": 2}})
    out = t(data)
    tables = ppr_topk(
        HeteroCSR.from_data(data),
        torch.arange(30),
        source_type="pin",
        relations=rels,
        top_k={"pin": 3, "board": 2},
    )
    for nt in ("pin", "board"):
        store = out[nt, "ppr_pb", "pin"]
        check_layout(store, 30)
        assert torch.equal(store.edge_index, tables[nt].edge_index())
        assert torch.equal(store.edge_weight, tables[nt].weight)
    assert "ppr_pb" not in repr(data.edge_types) and "alpha=0.15" in repr(t)


def test_validation_names_what_is_missing():
    data = random_bipartite()
    with pytest.raises(ValueError, match="'shelf'"):
        ContextualWalkNeighbors("pin", "shelf")(data)
    data["shelf"].num_nodes = 3
    with pytest.raises(ValueError, match="no edge type connects 'pin' and 'shelf'"):
        ContextualWalkNeighbors("pin", "shelf")(data)
    with pytest.raises(ValueError, match="relation subset 'x'"):
        PPRNeighbors("pin", {"x": [("pin", "likes", "board")]}, {"x": {"pin": 2}})(data)
    with pytest.raises(ValueError, match="one entry per relation subset"):
        PPRNeighbors("pin", {"x": []}, {"y": {"pin": 2}})
    with pytest.raises(TypeError, match="HeteroData"):
        ContextualWalkNeighbors("pin", "board")(Data())
    with pytest.raises(ValueError, match="not in the data"):
        DegreePrune(edge_types=[("pin", "x", "board")])(data)


def test_degree_prune_keeps_reverse_edges_consistent():
    data = random_bipartite(30, 4, 100, seed=3)  # boards of high degree
    data["pin", "in", "board"].edge_attr = torch.arange(
        data["pin", "in", "board"].num_edges
    ).float()
    gen = torch.Generator().manual_seed(0)
    cites = torch.randint(0, 30, (2, 80), generator=gen)
    cites = torch.cat([cites, cites.flip(0)], 1)
    data["pin", "cites", "pin"].edge_index = cites
    t = DegreePrune(alpha=0.3, d_min=2, seed=1)
    out = t(data)
    fwd = out["pin", "in", "board"].edge_index
    rev = out["board", "has", "pin"].edge_index
    assert 0 < fwd.size(1) < data["pin", "in", "board"].num_edges
    assert set(map(tuple, fwd.t().tolist())) == set(
        map(tuple, rev.flip(0).t().tolist())
    )
    kept = out["pin", "in", "board"].edge_attr.long()  # attributes follow
    assert torch.equal(data["pin", "in", "board"].edge_index[:, kept], fwd)
    pairs = set(map(tuple, out["pin", "cites", "pin"].edge_index.t().tolist()))
    assert all((v, u) in pairs for u, v in pairs)
    assert out["pin", "cites", "pin"].num_edges < cites.size(1)
    assert data["pin", "in", "board"].num_edges == data["board", "has", "pin"].num_edges
    again = DegreePrune(alpha=0.3, d_min=2, seed=1)(data)
    assert torch.equal(again["pin", "in", "board"].edge_index, fwd)
    assert "d_min=2" in repr(t)


PB = [("pin", "in", "board")]


@pytest.mark.parametrize(
    "make, exc, match",
    [
        (
            lambda: ContextualWalkNeighbors("pin", "board", num_walks=0),
            ValueError,
            "num_walks must be >= 1",
        ),
        (
            lambda: ContextualWalkNeighbors("pin", "board", walk_length=1.5),
            TypeError,
            "walk_length must be an int",
        ),
        (
            lambda: ContextualWalkNeighbors("pin", "board", restart_prob=2.0),
            ValueError,
            "restart_prob",
        ),
        (
            lambda: ContextualWalkNeighbors("pin", "board", num_neighbors=0),
            ValueError,
            "num_neighbors",
        ),
        (lambda: ContextualWalkNeighbors("pin", "board", seed=-1), ValueError, "seed"),
        (
            lambda: PPRNeighbors("pin", {"x": PB}, {"x": {"pin": 0}}),
            ValueError,
            r"top_k\['pin'\] must be >= 1, got 0",
        ),
        (lambda: ContextualWalkNeighbors("pin", []), TypeError, "context"),
        (
            lambda: ContextualWalkNeighbors("pin", ["board", "board"]),
            ValueError,
            "twice",
        ),
        (lambda: ContextualWalkNeighbors(3, "board"), TypeError, "target"),
        (
            lambda: ContextualWalkNeighbors("pin", "board", num_threads=0),
            ValueError,
            "num_threads",
        ),
        (
            lambda: PinSageNeighbors("pin", "board", num_traversals=0),
            ValueError,
            "num_traversals",
        ),
        (
            lambda: PinSageNeighbors("pin", "board", termination_prob=-0.1),
            ValueError,
            "termination_prob",
        ),
        (lambda: PinSageNeighbors("pin", ["board"]), TypeError, "context"),
        (
            lambda: PinSageNeighbors("pin", "board", num_walks="3"),
            TypeError,
            "num_walks",
        ),
        (
            lambda: PPRNeighbors("pin", {"x": PB}, {"x": {"pin": -1}}),
            ValueError,
            r"top_k\['pin'\]",
        ),
        (
            lambda: PPRNeighbors("pin", {"x": PB}, {"x": {"pin": 2}}, alpha=0.0),
            ValueError,
            "alpha",
        ),
        (
            lambda: PPRNeighbors("pin", {"x": PB}, {"x": {"pin": 2}}, eps=0.0),
            ValueError,
            "eps",
        ),
        (
            lambda: PPRNeighbors("pin", {"x": []}, {"x": {"pin": 2}}),
            ValueError,
            "relations",
        ),
        (
            lambda: PPRNeighbors("pin", {"x": PB[0]}, {"x": {"pin": 2}}),
            TypeError,
            "relations",
        ),
        (
            lambda: PPRNeighbors("pin", {"x": [("pin", "in")]}, {"x": {"pin": 2}}),
            TypeError,
            "relations entry",
        ),
        (lambda: DegreePrune(d_min=5, d_max=2), ValueError, "d_max"),
        (lambda: DegreePrune(alpha=1.5), ValueError, "alpha"),
        (lambda: DegreePrune(edge_types=PB[0]), TypeError, "edge_types"),
    ],
)
def test_bad_arguments_raise_at_construction(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


def _star(order, num_pins=1000):
    """One board linked to num_pins pins, both directions stored, the edge
    types inserted in the given order."""
    from torch_geometric.data import HeteroData

    data = HeteroData()
    data["pin"].num_nodes = num_pins
    data["board"].num_nodes = 1
    pins = torch.arange(num_pins)
    board = torch.zeros(num_pins, dtype=torch.long)
    for et in order:
        if et[0] == "pin":
            data[et].edge_index = torch.stack([pins, board])
        else:
            data[et].edge_index = torch.stack([board, pins])
    return data


def test_degree_prune_does_not_depend_on_edge_type_order():
    pb, bp = ("pin", "in", "board"), ("board", "rev_in", "pin")
    kept = []
    for seed in range(20):
        t = DegreePrune(alpha=0.86, d_min=10, d_max=10000, seed=seed)
        a, b = t(_star([pb, bp])), t(_star([bp, pb]))
        for et in (pb, bp):  # the same edges whatever the order
            assert torch.equal(a[et].edge_index, b[et].edge_index)
        assert torch.equal(a[pb].edge_index, a[bp].edge_index.flip(0))
        kept.append(a[pb].num_edges)
        # listing one side only prunes both alike
        one = DegreePrune(alpha=0.86, d_min=10, seed=seed, edge_types=[pb])
        c = one(_star([pb, bp]))
        assert torch.equal(c[bp].edge_index, a[bp].edge_index)
    # The board keeps each edge with p = 1000**0.86 / 1000 (pins, of degree
    # 1 <= d_min, keep theirs): Binomial(1000, p) per seed, mean d**alpha.
    expect = 1000**0.86
    p = expect / 1000
    sigma = (1000 * p * (1 - p) / len(kept)) ** 0.5
    mean = sum(kept) / len(kept)
    assert abs(mean - expect) < 5 * sigma, (mean, expect)
    assert all(k < 1000 for k in kept)


def test_degree_prune_two_hubs_and_both():
    """Edge (u, v) survives iff both endpoints keep it: two complete sides
    of 60 nodes each (degree 60 both sides) keep p**2 of the edges."""
    from torch_geometric.data import HeteroData

    n, alpha, d_min = 60, 0.5, 2
    src = torch.arange(n).repeat_interleave(n)
    dst = torch.arange(n).repeat(n)
    p = n**alpha / n
    total = 0
    runs = 10
    for seed in range(runs):
        data = HeteroData()
        data["a"].num_nodes = n
        data["b"].num_nodes = n
        data["a", "to", "b"].edge_index = torch.stack([src, dst])
        data["b", "rev_to", "a"].edge_index = torch.stack([dst, src])
        out = DegreePrune(alpha=alpha, d_min=d_min, seed=seed)(data)
        total += out["a", "to", "b"].num_edges
    mean, expect = total / runs, n * n * p * p
    sigma = (n * n * p * p * (1 - p * p) / runs) ** 0.5
    assert abs(mean - expect) < 6 * sigma, (mean, expect)


def test_chunks_follow_the_run_size():
    chunk = neighbors_module.chunk_size
    big = neighbors_module.CHUNK
    assert chunk(10**8) == big  # big runs: unchanged calls
    assert chunk(100_000) == 2000  # about PROGRESS_STEPS updates
    assert chunk(5_000) == neighbors_module.MIN_CHUNK
    assert chunk(0) >= 1


def test_progress_moves_per_chunk_and_results_do_not_change(monkeypatch):
    data = random_bipartite(30, 8, 90, seed=1)
    t = ContextualWalkNeighbors("pin", "board", num_walks=15, num_neighbors=3, seed=2)
    whole = t(data)
    sizes = []
    inner = neighbors_module.contextual_walk

    def spy(csr, seeds, **kw):
        sizes.append(seeds.numel())
        return inner(csr, seeds, **kw)

    updates = []
    real_tqdm = neighbors_module.tqdm

    class Bar(real_tqdm):
        def update(self, n=1):
            updates.append(n)
            return super().update(n)

    monkeypatch.setattr(neighbors_module, "contextual_walk", spy)
    monkeypatch.setattr(neighbors_module, "tqdm", Bar)
    monkeypatch.setattr(neighbors_module, "MIN_CHUNK", 2)
    monkeypatch.setattr(neighbors_module, "PROGRESS_STEPS", 5)
    out = t(data)
    assert sizes == [6] * 5 and updates == [6] * 5
    et = ("pin", "walk_via_board", "pin")
    for key in ("edge_index", "edge_weight", "context"):
        assert torch.equal(out[et][key], whole[et][key])
