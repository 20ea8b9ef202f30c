"""On-the-fly samplers give exactly the batches of precompute-then-gather."""

from __future__ import annotations

import pytest
import torch
from graphs import random_bipartite
from torch_geometric.data import Data

from pyg_multisage.graph import HeteroCSR
from pyg_multisage.loader import ImportanceNeighborLoader
from pyg_multisage.sampler import ContextualWalkSampler, PPRSampler
from pyg_multisage.sampling.ppr import ppr_topk
from pyg_multisage.transforms import ContextualWalkNeighbors, PPRNeighbors


def tag_graph():
    data = random_bipartite(40, 10, 130, seed=2, weighted=True)
    gen = torch.Generator().manual_seed(5)
    data["tag"].x = torch.randn(5, 8, generator=gen)
    src = torch.randint(0, 40, (60,), generator=gen)
    dst = torch.randint(0, 5, (60,), generator=gen)
    data["pin", "tagged", "tag"].edge_index = torch.stack([src, dst])
    data["tag", "tags", "pin"].edge_index = torch.stack([dst, src])
    return data


def assert_same_batch(a, b, edge_types):
    for t in ("pin", "board", "tag"):
        if t in a.node_types or t in b.node_types:
            assert torch.equal(a[t].n_id, b[t].n_id)
            assert torch.equal(a[t].x, b[t].x)
    for et in edge_types:
        for key in ("edge_index", "edge_weight"):
            assert torch.equal(a[et][key], b[et][key]), (et, key)
        assert ("context" in a[et]) == ("context" in b[et])
        if "context" in a[et]:
            assert torch.equal(a[et].context, b[et].context)
            assert a[et].context_type == b[et].context_type
        assert "e_id" not in a[et]  # on-the-fly edges are not stored edges


SEEDS = torch.tensor([3, 1, 3, 7, 22, 39, 0])


def test_walk_on_the_fly_equals_precomputed():
    data = tag_graph()
    cfg = dict(num_walks=30, walk_length=3, restart_prob=0.4, num_neighbors=4, seed=9)
    sampler = ContextualWalkSampler(data, "pin", ["board", "tag"], **cfg)
    fly = ImportanceNeighborLoader(
        data, ("pin", SEEDS), neighbor_sampler=sampler, batch_size=7
    )
    pre = ContextualWalkNeighbors("pin", ["board", "tag"], **cfg)(data)
    gather = ImportanceNeighborLoader(pre, ("pin", SEEDS), batch_size=7)
    a, b = next(iter(fly)), next(iter(gather))
    assert a["pin", "walk_via_board", "pin"].edge_index.size(1) > 0
    assert_same_batch(a, b, sampler.edge_types)
    assert "walk_via_board" in repr(sampler.edge_types) and "seed=9" in repr(sampler)


def test_ppr_on_the_fly_equals_precomputed():
    data = tag_graph()
    subsets = {
        "pb": [("pin", "in", "board"), ("board", "has", "pin")],
        "pt": [("pin", "tagged", "tag"), ("tag", "tags", "pin")],
    }
    top_k = {"pb": {"pin": 3, "board": 2}, "pt": {"tag": 2}}
    sampler = PPRSampler(data, "pin", subsets, top_k, eps=1e-5)
    fly = ImportanceNeighborLoader(
        data, ("pin", SEEDS), neighbor_sampler=sampler, batch_size=7
    )
    pre = PPRNeighbors("pin", subsets, top_k, eps=1e-5)(data)
    b = next(iter(ImportanceNeighborLoader(pre, ("pin", SEEDS), batch_size=7)))
    a = next(iter(fly))
    assert_same_batch(a, b, sampler.edge_types)


def test_ppr_homogeneous():
    gen = torch.Generator().manual_seed(3)
    ei = torch.randint(0, 20, (2, 60), generator=gen)
    data = Data(x=torch.randn(20, 2), edge_index=ei)
    seeds = SEEDS % 20
    sampler = PPRSampler(data, top_k=4)
    batch = next(
        iter(
            ImportanceNeighborLoader(
                data, seeds, neighbor_sampler=sampler, batch_size=7
            )
        )
    )
    table = ppr_topk(
        HeteroCSR.from_data(data),
        seeds,
        source_type="node",
        relations=[("node", "to", "node")],
        top_k={"node": 4},
    )["node"]
    assert torch.equal(batch.n_id[:7], seeds)
    assert torch.equal(batch.n_id[batch.edge_index[0]], table.neighbor)
    assert torch.equal(
        batch.edge_index[1], torch.repeat_interleave(torch.arange(7), table.degree())
    )
    assert torch.equal(batch.edge_weight, table.weight)


def test_errors():
    data = tag_graph()
    with pytest.raises(ValueError, match="'shelf'"):
        ContextualWalkSampler(data, "pin", "shelf")
    with pytest.raises(ValueError, match="no importance-neighbor edge type ends"):
        ImportanceNeighborLoader(
            data, "board", neighbor_sampler=ContextualWalkSampler(data, "pin", "board")
        )
    with pytest.raises(ValueError, match="top_k"):
        PPRSampler(data, "pin", {"a": [("pin", "in", "board")]}, {"b": {"pin": 1}})
    with pytest.raises(ValueError):
        PPRSampler(data, "pin", {"a": [("pin", "nope", "board")]}, {"a": {"pin": 1}})


def test_workers_after_parent_ran_kernels():
    """Forked workers run the kernels although the parent already did."""
    data = tag_graph()
    sampler = ContextualWalkSampler(data, "pin", "board", num_walks=20, num_neighbors=3)
    seeds = torch.arange(40)
    serial = list(
        ImportanceNeighborLoader(
            data, ("pin", seeds), neighbor_sampler=sampler, batch_size=10
        )
    )
    parallel = list(
        ImportanceNeighborLoader(
            data,
            ("pin", seeds),
            neighbor_sampler=sampler,
            batch_size=10,
            num_workers=2,
            persistent_workers=True,
        )
    )
    assert len(serial) == len(parallel) == 4
    for a, b in zip(serial, parallel, strict=True):
        assert_same_batch(a, b, sampler.edge_types)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(num_walks=0), ValueError, "num_walks"),
        (dict(restart_prob=1.5), ValueError, "restart_prob"),
        (dict(num_neighbors=2.0), TypeError, "num_neighbors"),
        (dict(seed=-2), ValueError, "seed"),
        (dict(num_threads=0), ValueError, "num_threads"),
    ],
)
def test_walk_sampler_checks_arguments_at_construction(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        ContextualWalkSampler(tag_graph(), "pin", "board", **kwargs)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(alpha=0.0), ValueError, "alpha"),
        (dict(eps=1e-20), ValueError, "eps"),
        (dict(top_k=-1), ValueError, "top_k"),
        (dict(top_k=0), ValueError, r"top_k\['pin'\] must be >= 1, got 0"),
        (dict(top_k={"all": {"pin": 0}}), ValueError, "must be >= 1, got 0"),
        (dict(num_threads=0), ValueError, "num_threads"),
        (dict(relation_subsets={"a": [("pin", "in")]}), TypeError, "relations"),
    ],
)
def test_ppr_sampler_checks_arguments_at_construction(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        PPRSampler(tag_graph(), "pin", **kwargs)
