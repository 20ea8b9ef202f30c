"""ImportanceNeighborSampler / loaders against subgraphs built by hand."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Data, HeteroData
from torch_geometric.sampler import NegativeSampling, NodeSamplerInput
from torch_geometric.testing import MyFeatureStore, MyGraphStore

from pyg_multisage.loader import ImportanceLinkLoader, ImportanceNeighborLoader
from pyg_multisage.sampler import ImportanceNeighborSampler

WALK = ("paper", "walk_via_venue", "paper")
PPR = ("venue", "ppr_pv", "paper")


def stored_graph(seed: int = 0) -> HeteroData:
    """Random importance edges written by hand, deliberately unsorted, with
    paper 0 having no neighbors."""
    gen = torch.Generator().manual_seed(seed)
    n_p, n_v = 25, 6
    data = HeteroData()
    data["paper"].x = torch.randn(n_p, 4, generator=gen)
    data["paper"].y = torch.randint(0, 3, (n_p,), generator=gen)
    data["venue"].x = torch.randn(n_v, 4, generator=gen)
    data["paper", "in", "venue"].edge_index = torch.stack(
        [torch.arange(n_p), torch.arange(n_p) % n_v]
    )
    e = 90
    ego = torch.randint(1, n_p, (e,), generator=gen)
    nbr = torch.randint(0, n_p, (e,), generator=gen)
    data[WALK].edge_index = torch.stack([nbr, ego])
    data[WALK].edge_weight = torch.randint(1, 6, (e,), generator=gen).float()
    ctx = torch.randint(-1, n_v, (e,), generator=gen)
    data[WALK].context = ctx
    data[WALK].context_type = "venue"
    e2 = 40
    data[PPR].edge_index = torch.stack(
        [
            torch.randint(0, n_v, (e2,), generator=gen),
            torch.randint(1, n_p, (e2,), generator=gen),
        ]
    )
    data[PPR].edge_weight = torch.rand(e2, generator=gen)
    return data


def expected_rows(data, et, seeds, k=None):
    """Per seed position, the hand-picked stored edges: top-k by weight
    (stable on stored order) as (neighbor, weight, context, edge id)."""
    ei = data[et].edge_index
    out = []
    for pos, s in enumerate(seeds.tolist()):
        ids = (ei[1] == s).nonzero().view(-1)
        w = data[et].edge_weight[ids]
        ids = ids[torch.sort(w, descending=True, stable=True)[1]][:k]
        ctx = data[et].context[ids] if "context" in data[et] else None
        for j, i in enumerate(ids.tolist()):
            out.append(
                (
                    pos,
                    int(ei[0, i]),
                    float(data[et].edge_weight[i]),
                    None if ctx is None else int(ctx[j]),
                    i,
                )
            )
    return out


def batch_rows(batch, et, src_type):
    b = batch[et]
    n_src = batch[src_type].n_id
    ctx_nid = batch[b.context_type].n_id if "context" in b else None
    out = []
    for j in range(b.edge_index.size(1)):
        c = None
        if ctx_nid is not None:
            c = int(b.context[j])
            c = -1 if c < 0 else int(ctx_nid[c])
        out.append(
            (
                int(b.edge_index[1, j]),
                int(n_src[b.edge_index[0, j]]),
                float(b.edge_weight[j]),
                c,
                int(b.e_id[j]),
            )
        )
    return out


@pytest.mark.parametrize("k", [None, 2])
def test_batch_equals_hand_built_subgraph(k):
    data = stored_graph()
    seeds = torch.tensor([5, 0, 7, 5, 12, 3])  # duplicate and neighbor-less seeds
    loader = ImportanceNeighborLoader(
        data, ("paper", seeds), num_neighbors=k, batch_size=len(seeds)
    )
    batch = next(iter(loader))
    p = batch["paper"]
    assert p.batch_size == len(seeds)
    assert torch.equal(p.n_id[: len(seeds)], seeds)
    assert torch.equal(p.input_id, torch.arange(len(seeds)))
    assert torch.equal(p.x, data["paper"].x[p.n_id])
    assert torch.equal(p.y, data["paper"].y[p.n_id])
    assert torch.equal(batch["venue"].x, data["venue"].x[batch["venue"].n_id])
    # node lists hold each non-seed node once
    assert p.n_id[len(seeds) :].unique().numel() == p.n_id.numel() - len(seeds)
    assert batch["venue"].n_id.unique().numel() == batch["venue"].n_id.numel()
    for et, src in [(WALK, "paper"), (PPR, "venue")]:
        got = batch_rows(batch, et, src)
        assert sorted(got, key=repr) == sorted(
            expected_rows(data, et, seeds, k), key=repr
        )
        # ego-grouped and weight-descending, as stored order is not
        col, w = batch[et].edge_index[1], batch[et].edge_weight
        assert bool((col[1:] >= col[:-1]).all())
        same = col[1:] == col[:-1]
        assert bool((w[1:][same] <= w[:-1][same]).all())
    # exactly the referenced context and neighbor venues are present
    ctx = batch[WALK].context
    referenced = set(batch["venue"].n_id[ctx[ctx >= 0]].tolist())
    referenced |= set(batch["venue"].n_id[batch[PPR].edge_index[0]].tolist())
    assert referenced == set(batch["venue"].n_id.tolist())
    assert batch[WALK].context_type == "venue"
    # seed 0 (no neighbors) and duplicate 5 get the same rows per occurrence
    rows = batch_rows(batch, WALK, "paper")
    assert not [r for r in rows if r[0] == 1]
    assert sorted(r[1:] for r in rows if r[0] == 0) == sorted(
        r[1:] for r in rows if r[0] == 3
    )


def test_edge_types_narrow_and_errors():
    data = stored_graph()
    loader = ImportanceNeighborLoader(
        data, ("paper", torch.tensor([4])), edge_types=[WALK], batch_size=1
    )
    batch = next(iter(loader))
    assert batch[PPR].edge_index.size(1) == 0
    assert batch[WALK].edge_index.size(1) > 0
    with pytest.raises(ValueError, match="not in the data"):
        ImportanceNeighborLoader(data, "paper", edge_types=[("paper", "x", "paper")])
    with pytest.raises(ValueError, match="no importance-neighbor edge type ends"):
        ImportanceNeighborLoader(data, "venue", batch_size=2)
    with pytest.raises(ValueError, match="'author' is not in the data"):
        ImportanceNeighborLoader(data, ("author", torch.tensor([0])))
    with pytest.raises(ValueError, match="num_neighbors must be >= 1 or None"):
        ImportanceNeighborSampler(data, num_neighbors=0)
    sampler = ImportanceNeighborSampler(data)
    with pytest.raises(ValueError, match="outside"):
        sampler.sample_from_nodes(
            NodeSamplerInput(None, torch.tensor([99]), input_type="paper")
        )
    plain = HeteroData()
    plain["a"].num_nodes = 3
    plain["a", "to", "a"].edge_index = torch.tensor([[0], [1]])
    with pytest.raises(ValueError, match="no importance-neighbor edge type"):
        ImportanceNeighborSampler(plain)
    bad = stored_graph()
    own = ("paper", "coengaged", "paper")  # a user's edge type, no context_type
    bad[own].edge_index = bad[WALK].edge_index
    bad[own].context = bad[WALK].context
    with pytest.raises(ValueError, match="context_type"):
        ImportanceNeighborSampler(bad, edge_types=[own])
    assert ImportanceNeighborSampler(
        bad, edge_types=[own], context_types={own: "venue"}
    ).context_type == {own: "venue"}
    bad[WALK].context_type = "venue"
    bad[WALK].context[0] = 6
    with pytest.raises(ValueError, match="context of"):
        ImportanceNeighborSampler(bad)


def test_homogeneous_data():
    gen = torch.Generator().manual_seed(1)
    ei = torch.randint(0, 10, (2, 30), generator=gen)
    data = Data(x=torch.randn(10, 3), edge_index=ei, edge_weight=torch.rand(30))
    seeds = torch.tensor([2, 9, 2])
    batch = next(
        iter(ImportanceNeighborLoader(data, seeds, num_neighbors=3, batch_size=3))
    )
    assert torch.equal(batch.n_id[:3], seeds) and batch.batch_size == 3
    assert torch.equal(batch.x, data.x[batch.n_id])
    got = sorted(
        (int(c), int(batch.n_id[r]), float(w), int(e))
        for (r, c), w, e in zip(
            batch.edge_index.t().tolist(), batch.edge_weight, batch.e_id, strict=True
        )
    )
    want = []
    for pos, s in enumerate(seeds.tolist()):
        ids = (ei[1] == s).nonzero().view(-1)
        ids = ids[torch.sort(data.edge_weight[ids], descending=True, stable=True)[1]]
        want += [(pos, int(ei[0, i]), float(data.edge_weight[i]), i) for i in ids[:3]]
    assert got == sorted(want)


@pytest.mark.parametrize("mode", [None, "binary", "triplet"])
def test_link_loader_negative_sampling(mode):
    data = stored_graph()
    pairs = torch.tensor([[1, 2, 3, 4], [5, 6, 7, 8]])
    neg = None if mode is None else NegativeSampling(mode, 1)
    loader = ImportanceLinkLoader(
        data, (WALK, pairs), neg_sampling=neg, batch_size=4, edge_types=[WALK]
    )
    batch = next(iter(loader))
    n_id = batch["paper"].n_id
    # every seed of the link batch has its stored neighbors
    for s in batch["paper"].n_id[: batch["paper"].num_sampled_nodes[0]].tolist():
        deg = int((data[WALK].edge_index[1] == s).sum())
        local = (n_id == s).nonzero()[0, 0]
        assert int((batch[WALK].edge_index[1] == local).sum()) == deg
    if mode == "triplet":
        assert torch.equal(n_id[batch["paper"].src_index], pairs[0])
        assert torch.equal(n_id[batch["paper"].dst_pos_index], pairs[1])
        assert batch["paper"].dst_neg_index.numel() == 4
    else:
        eli = batch[WALK].edge_label_index
        assert torch.equal(n_id[eli[:, :4]], pairs)
        if mode == "binary":
            assert eli.size(1) == 8
            assert torch.equal(
                batch[WALK].edge_label, torch.tensor([1.0] * 4 + [0] * 4)
            )


def test_link_loader_refuses_pairs_of_the_wrong_shape():
    data = stored_graph()
    triple = torch.tensor([[1, 2], [5, 6], [7, 8]])
    with pytest.raises(ValueError, match=r"edge_label_index must have shape \[2, "):
        ImportanceLinkLoader(data, (WALK, triple), batch_size=2, edge_types=[WALK])
    with pytest.raises(ValueError, match=r"got \[4\]"):
        ImportanceLinkLoader(
            data, (WALK, torch.arange(4)), batch_size=2, edge_types=[WALK]
        )


def test_feature_and_graph_store_pair():
    data = stored_graph()
    fs, gs = MyFeatureStore(), MyGraphStore()
    for t in data.node_types:
        fs.put_tensor(data[t].x, group_name=t, attr_name="x", index=None)
    for et in data.edge_types:
        gs.put_edge_index(
            data[et].edge_index,
            edge_type=et,
            layout="coo",
            size=(data[et[0]].num_nodes, data[et[2]].num_nodes),
        )
    for et in (WALK, PPR):
        fs.put_tensor(
            data[et].edge_weight, group_name=et, attr_name="edge_weight", index=None
        )
    fs.put_tensor(data[WALK].context, group_name=WALK, attr_name="context", index=None)
    seeds = torch.tensor([5, 7, 12])
    remote = next(
        iter(ImportanceNeighborLoader((fs, gs), ("paper", seeds), batch_size=3))
    )
    local = next(iter(ImportanceNeighborLoader(data, ("paper", seeds), batch_size=3)))
    for t in ("paper", "venue"):
        assert torch.equal(remote[t].n_id, local[t].n_id)
        assert torch.equal(remote[t].x, local[t].x)
    for et in (WALK, PPR):
        for key in ("edge_index", "edge_weight", "e_id"):
            assert torch.equal(remote[et][key], local[et][key])
    assert torch.equal(remote[WALK].context, local[WALK].context)
    assert remote[WALK].context_type == "venue"
