"""Memory-mapped FeatureStore/GraphStore: batches equal the in-memory data's."""

from __future__ import annotations

import warnings

import pytest
import torch
from graphs import random_bipartite
from torch_geometric.sampler import NegativeSampling, NodeSamplerInput

from pyg_multisage.loader import ImportanceLinkLoader, ImportanceNeighborLoader
from pyg_multisage.sampler import ContextualWalkSampler, PPRSampler
from pyg_multisage.storage import (
    MmapFeatureStore,
    MmapGraphStore,
    open_stores,
    save_data,
    save_features,
)
from pyg_multisage.transforms import ContextualWalkNeighbors, PPRNeighbors

SEEDS = torch.tensor([3, 1, 3, 7, 22, 39, 0])
PB, BP = ("pin", "in", "board"), ("board", "has", "pin")
WALK = ("pin", "walk_via_board", "pin")
CFG = dict(num_walks=30, walk_length=3, restart_prob=0.4, num_neighbors=4, seed=9)


@pytest.fixture
def data():
    d = random_bipartite(40, 10, 130, seed=2, weighted=True)
    d["pin"].y = torch.arange(40) % 3
    return d


def assert_same(a, b, edge_types, stored):
    for t in ("pin", "board"):
        assert torch.equal(a[t].n_id, b[t].n_id)
        assert torch.equal(a[t].x, b[t].x)
    for et in edge_types:
        keys = ["edge_index", "edge_weight"] + (["e_id"] if stored else [])
        for key in keys:
            assert torch.equal(a[et][key], b[et][key]), (et, key)
        assert ("context" in a[et]) == ("context" in b[et])
        if "context" in a[et]:
            assert torch.equal(a[et].context, b[et].context)
            assert a[et].context_type == b[et].context_type


def test_on_the_fly_samplers_use_the_memmapped_csr(data, tmp_path, monkeypatch):
    save_data(data, tmp_path / "d")
    fs, gs = open_stores(tmp_path / "d")
    # The kernels must get the CSR view, never a COO edge list:
    monkeypatch.setattr(
        MmapGraphStore, "_get_edge_index", lambda *a: pytest.fail("COO built")
    )
    walk = ContextualWalkSampler((fs, gs), "pin", "board", **CFG)
    assert walk.csr is gs.hetero_csr()
    assert not walk.csr[PB].indices.flags.writeable
    local = ContextualWalkSampler(data, "pin", "board", **CFG)
    a = next(
        iter(
            ImportanceNeighborLoader(
                (fs, gs), ("pin", SEEDS), neighbor_sampler=walk, batch_size=7
            )
        )
    )
    b = next(
        iter(
            ImportanceNeighborLoader(
                data, ("pin", SEEDS), neighbor_sampler=local, batch_size=7
            )
        )
    )
    assert a[WALK].edge_index.size(1) > 0
    assert_same(a, b, walk.edge_types, stored=False)
    assert torch.equal(a["pin"].y, b["pin"].y)

    subsets = {"pb": [PB, BP]}
    top_k = {"pb": {"pin": 3, "board": 2}}
    ppr = PPRSampler((fs, gs), "pin", subsets, top_k, eps=1e-5)
    ref = PPRSampler(data, "pin", subsets, top_k, eps=1e-5)
    a = next(
        iter(
            ImportanceNeighborLoader(
                (fs, gs), ("pin", SEEDS), neighbor_sampler=ppr, batch_size=7
            )
        )
    )
    b = next(
        iter(
            ImportanceNeighborLoader(
                data, ("pin", SEEDS), neighbor_sampler=ref, batch_size=7
            )
        )
    )
    assert_same(a, b, ppr.edge_types, stored=False)


def test_ppr_undirected_on_stores(data, tmp_path):
    one_way = random_bipartite(40, 10, 130, seed=2)
    del one_way[BP]
    save_data(one_way, tmp_path / "d")
    pair = open_stores(tmp_path / "d")
    kw = dict(relation_subsets={"all": [PB, ("board", "rev_in", "pin")]}, top_k=3)
    a = PPRSampler(pair, "pin", undirected=True, **kw)
    b = PPRSampler(one_way, "pin", undirected=True, **kw)
    inp = NodeSamplerInput(None, SEEDS, input_type="pin")
    oa, ob = a.sample_from_nodes(inp), b.sample_from_nodes(inp)
    for et in a.edge_types:
        assert torch.equal(oa.row[et], ob.row[et]) and torch.equal(
            oa.col[et], ob.col[et]
        )


def test_precomputed_tables_through_the_stores(data, tmp_path):
    pre = ContextualWalkNeighbors("pin", "board", **CFG)(data)
    pre = PPRNeighbors("pin", {"pb": [PB, BP]}, {"pb": {"board": 2}})(pre)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # context_type follows from the name
        save_data(pre, tmp_path / "d")
    pair = open_stores(tmp_path / "d", verify=True)
    ets = [WALK, ("board", "ppr_pb", "pin")]
    a = next(iter(ImportanceNeighborLoader(pair, ("pin", SEEDS), batch_size=7)))
    b = next(iter(ImportanceNeighborLoader(pre, ("pin", SEEDS), batch_size=7)))
    assert_same(a, b, ets, stored=True)

    pairs = torch.tensor([[0, 5, 9, 30], [2, 8, 1, 4]])
    kw = dict(edge_label_index=(("pin", "co", "pin"), pairs), batch_size=4)
    neg = NegativeSampling("binary", 1)
    torch.manual_seed(0)
    a = next(iter(ImportanceLinkLoader(pair, neg_sampling=neg, **kw)))
    torch.manual_seed(0)
    b = next(iter(ImportanceLinkLoader(pre, neg_sampling=neg, **kw)))
    assert torch.equal(a["pin"].n_id, b["pin"].n_id)
    assert torch.equal(a["pin"].x, b["pin"].x)
    assert torch.equal(
        a["pin", "co", "pin"].edge_label_index, b["pin", "co", "pin"].edge_label_index
    )
    for key in ("edge_index", "edge_weight", "context", "e_id"):
        assert torch.equal(a[WALK][key], b[WALK][key])


def test_tables_gathered_from_the_maps_without_an_index_copy(data, tmp_path):
    """Tables saved grouped by ego in importance order (as the transforms
    write them) are gathered straight from the memory maps; a table saved in
    another order is indexed in memory; both give the in-memory batches."""
    import numpy as np

    from pyg_multisage.sampler import ImportanceNeighborSampler

    pre = ContextualWalkNeighbors("pin", "board", **CFG)(data)
    shuffled = pre.clone()
    perm = torch.randperm(
        pre[WALK].num_edges, generator=torch.Generator().manual_seed(0)
    )
    for key in ("edge_index", "edge_weight", "context"):
        value = pre[WALK][key]
        shuffled[WALK][key] = value[:, perm] if key == "edge_index" else value[perm]
    for name, source in (("ordered", pre), ("shuffled", shuffled)):
        save_data(source, tmp_path / name)
        features, graph = open_stores(tmp_path / name)
        sampler = ImportanceNeighborSampler((features, graph))
        index = sampler.index[WALK]
        table = graph.ego_table(WALK)
        if name == "ordered":
            assert table is not None and index.mapped and index.edge_id is None
            ptr, neighbor = table
            assert np.shares_memory(index.ptr.numpy(), ptr)
            assert np.shares_memory(index.neighbor.numpy(), neighbor)
            assert np.shares_memory(
                index.context.numpy(), features.mapped(WALK, "context")
            )
            assert index.share_memory_() is index  # maps are shared already
        else:
            assert table is None and not index.mapped
        a = next(iter(ImportanceNeighborLoader((features, graph), ("pin", SEEDS))))
        b = next(iter(ImportanceNeighborLoader(source, ("pin", SEEDS))))
        assert_same(a, b, [WALK], stored=True)


def test_feature_store_reads_rows_and_is_read_only(data, tmp_path):
    save_features(
        tmp_path / "f", {("pin", "x"): data["pin"].x, (PB, "w"): torch.arange(5)}
    )
    fs = MmapFeatureStore(tmp_path / "f")
    idx = torch.tensor([4, 0, 4])
    assert torch.equal(fs.get_tensor("pin", "x", index=idx), data["pin"].x[idx])
    one_d = fs.get_tensor(group_name=PB, attr_name="w", index=torch.tensor([3, 1]))
    assert torch.equal(one_d, torch.tensor([3, 1]))
    sliced = fs.get_tensor("pin", "x", index=slice(2, 5))
    assert torch.equal(sliced, data["pin"].x[2:5])
    with pytest.raises(IndexError):
        fs.get_tensor("pin", "x", index=torch.tensor([40]))
    assert torch.equal(
        fs.get_tensor(group_name=PB, attr_name="w", index=None), torch.arange(5)
    )
    assert fs.get_tensor_size(group_name="pin", attr_name="x") == (40, 8)
    with pytest.raises(KeyError):
        fs.get_tensor("pin", "nothing", index=None)
    with pytest.raises(TypeError, match="read-only"):
        fs.put_tensor(torch.zeros(3), group_name="pin", attr_name="z", index=None)
    with pytest.raises(TypeError, match="numeric"):
        save_features(tmp_path / "g", {("pin", "t"): ["a", "b"]})
    assert not (tmp_path / "g").exists()


def test_save_data_warns_and_rejects(data, tmp_path):
    data["pin"].title = [f"p{i}" for i in range(40)]
    with pytest.warns(UserWarning, match=r"pin\.title"):
        save_data(data, tmp_path / "d")
    with pytest.raises(FileExistsError):
        save_data(data, tmp_path / "d")
    with pytest.raises(TypeError, match="HeteroData"):
        save_data(object(), tmp_path / "e")
    with pytest.raises(FileNotFoundError):
        open_stores(tmp_path / "missing")


def test_ego_order_ptr():
    import numpy as np

    from pyg_multisage.storage import ego_order_ptr

    ego = np.array([0, 0, 2, 2, 2, 3])
    w = np.array([5.0, 5.0, 3.0, 2.0, 2.0, 1.0])
    assert ego_order_ptr(ego, w, 5).tolist() == [0, 2, 2, 5, 6, 6]
    assert ego_order_ptr(ego, None, 4).tolist() == [0, 2, 2, 5, 6]
    assert ego_order_ptr(ego[::-1].copy(), None, 4) is None  # egos descending
    w_up = w.copy()
    w_up[3] = 4.0  # weight rises within ego 2
    assert ego_order_ptr(ego, w_up, 4) is None
    assert ego_order_ptr(np.zeros(0, np.int64), None, 3).tolist() == [0, 0, 0, 0]
