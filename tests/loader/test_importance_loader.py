"""Loader behaviour: stock PyG models, DataLoader options, real DBLP."""

from __future__ import annotations

import pytest
import torch
from graphs import random_bipartite
from torch_geometric.nn import HeteroConv, SAGEConv

from pyg_multisage.loader import ImportanceNeighborLoader
from pyg_multisage.transforms import ContextualWalkNeighbors, PPRNeighbors

WALK = ("pin", "walk_via_board", "pin")


def walk_data():
    data = random_bipartite(40, 10, 130, seed=4)
    data["pin"].y = torch.arange(40) % 3
    return ContextualWalkNeighbors("pin", "board", num_walks=20, num_neighbors=4)(data)


def test_stock_hetero_conv_trains_a_step():
    data = walk_data()
    data = PPRNeighbors(
        "pin",
        {"pb": [("pin", "in", "board"), ("board", "has", "pin")]},
        {"pb": {"board": 3}},
    )(data)
    loader = ImportanceNeighborLoader(data, "pin", batch_size=16, shuffle=True)
    batch = next(iter(loader))
    conv = HeteroConv(
        {
            WALK: SAGEConv((-1, -1), 3),
            ("board", "ppr_pb", "pin"): SAGEConv((-1, -1), 3),
        },
        aggr="sum",
    )
    opt = torch.optim.SGD(conv.parameters(), lr=0.1)
    out = conv(batch.x_dict, batch.edge_index_dict)["pin"][: batch["pin"].batch_size]
    loss = torch.nn.functional.cross_entropy(out, batch["pin"].y[: out.size(0)])
    loss.backward()
    before = [p.detach().clone() for p in conv.parameters()]
    opt.step()
    assert torch.isfinite(loss)
    assert any(
        not torch.equal(a, b) for a, b in zip(before, conv.parameters(), strict=True)
    )


def test_dataloader_options_and_workers():
    data = walk_data()
    kw = dict(batch_size=12, drop_last=True)
    serial = list(ImportanceNeighborLoader(data, "pin", **kw))
    assert len(serial) == 3 and all(b["pin"].batch_size == 12 for b in serial)
    workers = ImportanceNeighborLoader(
        data, "pin", num_workers=2, persistent_workers=True, pin_memory=False, **kw
    )
    for _ in range(2):  # persistent workers serve two epochs
        for a, b in zip(serial, workers, strict=True):
            assert torch.equal(a["pin"].n_id, b["pin"].n_id)
            assert torch.equal(a[WALK].edge_index, b[WALK].edge_index)
            assert torch.equal(a[WALK].context, b[WALK].context)
            assert torch.equal(a["board"].x, b["board"].x)
    shuffled = ImportanceNeighborLoader(data, "pin", shuffle=True, batch_size=40)
    batch = next(iter(shuffled))
    assert sorted(batch["pin"].n_id[:40].tolist()) == list(range(40))
    assert torch.equal(batch["pin"].n_id[:40], batch["pin"].input_id)
    torch.manual_seed(0)
    pinned = ImportanceNeighborLoader(data, "pin", batch_size=8, pin_memory=True)
    assert next(iter(pinned))[WALK].edge_weight.dtype == torch.float32


def test_batches_fetched_whole_in_dataloader_order():
    """The loader fetches a batch's positions in one call (no Python call per
    seed) and visits the seeds in exactly the order a DataLoader over
    ``range`` (what PyG's loaders use) gives for the same RNG state."""
    data = walk_data()
    seeds = torch.arange(40).flip(0)[:35]
    loader = ImportanceNeighborLoader(
        data, ("pin", seeds), batch_size=8, shuffle=True, drop_last=False
    )
    torch.manual_seed(3)
    got = [b["pin"].input_id for b in loader]
    torch.manual_seed(3)
    ref = list(torch.utils.data.DataLoader(range(35), batch_size=8, shuffle=True))
    assert [g.tolist() for g in got] == [r.tolist() for r in ref]
    ds = loader.dataset
    assert len(ds) == 35 and ds[34] == 34 and ds[-1] == 34
    assert torch.equal(ds.__getitems__([4, 2]), torch.tensor([4, 2]))
    got = ds.__getitems__(torch.tensor([5, 1], dtype=torch.int32))
    assert got.dtype == torch.long and got.tolist() == [5, 1]
    assert ds.__getitems__([]).dtype == torch.long
    with pytest.raises(IndexError, match="position 35 out of range for 35"):
        ds[35]


def test_user_transforms_applied():
    data = walk_data()
    seen = []
    loader = ImportanceNeighborLoader(
        data,
        "pin",
        batch_size=8,
        transform=lambda b: seen.append(b[WALK].context.min() >= -1) or b,
        transform_sampler_output=lambda o: o,
    )
    next(iter(loader))
    assert seen == [True]
    assert "ImportanceNeighborSampler" in repr(loader)


def test_dblp_with_workers(dblp_dir):
    from pyg_multisage.datasets.dblp import read_dblp_raw

    data = read_dblp_raw(dblp_dir)
    for t in data.node_types:  # keep tensors only; add features
        for key in list(data[t].keys()):
            if key not in ("num_nodes", "y"):
                del data[t][key]
        data[t].x = torch.randn(data[t].num_nodes, 4)
    data = ContextualWalkNeighbors(
        "paper", "venue", num_walks=10, num_neighbors=5, progress=False
    )(data)
    seeds = torch.arange(0, data["paper"].num_nodes, 97)
    kw = dict(batch_size=64)
    serial = list(ImportanceNeighborLoader(data, ("paper", seeds), **kw))
    parallel = list(
        ImportanceNeighborLoader(data, ("paper", seeds), num_workers=2, **kw)
    )
    et = ("paper", "walk_via_venue", "paper")
    assert len(serial) == len(parallel) > 1
    for a, b in zip(serial, parallel, strict=True):
        assert torch.equal(a["paper"].n_id, b["paper"].n_id)
        assert torch.equal(a[et].edge_index, b[et].edge_index)
        assert torch.equal(a[et].context, b[et].context)
        ctx = a[et].context
        venues = a["venue"].n_id[ctx[ctx >= 0]]
        stored = data[et].context[a[et].e_id]
        assert torch.equal(venues, stored[stored >= 0])


def test_list_attributes_are_sliced_like_tensors():
    from pyg_multisage.transforms import ContextualWalkNeighbors

    data = random_bipartite()
    data["pin"].title = [f"pin {i}" for i in range(data["pin"].num_nodes)]
    data = ContextualWalkNeighbors("pin", "board", num_walks=10, num_neighbors=3)(data)
    loader = ImportanceNeighborLoader(data, input_nodes="pin", batch_size=7)
    batch = next(iter(loader))
    assert batch["pin"].title == [f"pin {i}" for i in batch["pin"].n_id.tolist()]
    assert len(data["pin"].title) == data["pin"].num_nodes  # input untouched


def test_carried_edge_attrs_left_to_the_sampler_output():
    """edge_weight and context come from the sampler output, not from PyG's
    filtering (the loader hands PyG a copy without them); other stored edge
    attributes are still sliced by edge id, the data keeps its attributes,
    and an importance edge type not sampled in a batch gets empty ones of the
    stored dtype, as PyG's filtering gives."""
    from torch_geometric.data import HeteroData

    gen = torch.Generator().manual_seed(3)
    data = HeteroData()
    data["a"].x = torch.randn(20, 2, generator=gen)
    data["b"].x = torch.randn(15, 2, generator=gen)
    data["c"].x = torch.randn(5, 2, generator=gen)
    walk, ppr = ("a", "walk_via_c", "a"), ("a", "ppr_x", "b")
    data[walk].edge_index = torch.randint(0, 20, (2, 80), generator=gen)
    data[walk].edge_weight = torch.rand(80, generator=gen, dtype=torch.float64)
    data[walk].context = torch.randint(-1, 5, (80,), generator=gen)
    data[walk].context_type = "c"
    data[walk].extra = torch.randn(80, 3, generator=gen)
    data[ppr].edge_index = torch.stack(
        [
            torch.randint(0, 20, (60,), generator=gen),
            torch.randint(0, 15, (60,), generator=gen),
        ]
    )
    data[ppr].edge_weight = torch.rand(60, generator=gen)

    batch = next(iter(ImportanceNeighborLoader(data, "a", batch_size=7)))
    store = batch[walk]
    assert torch.equal(store.extra, data[walk].extra[store.e_id])
    # the sampler's float32 weight of each gathered stored edge
    assert store.edge_weight.dtype == torch.float32
    assert torch.equal(store.edge_weight, data[walk].edge_weight[store.e_id].float())
    ctx = data[walk].context[store.e_id]
    local = torch.where(store.context >= 0, batch["c"].n_id[store.context], -1)
    assert torch.equal(local, ctx)
    assert "edge_weight" in data[walk] and "context" in data[walk]

    other = next(iter(ImportanceNeighborLoader(data, "b", batch_size=7)))
    empty = other[walk]
    assert empty.edge_index.shape == (2, 0)
    assert empty.edge_weight.shape == (0,)
    assert empty.edge_weight.dtype == torch.float64
    assert empty.context.shape == (0,) and empty.context.dtype == torch.long
    assert empty.extra.shape == (0, 3)
