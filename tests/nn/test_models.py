"""MultiSage and OmniSage models on hand-built loader batches (contract.md)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch_geometric.data import HeteroData

from pyg_multisage.nn import MultiSage, OmniSage

VENUE_ET = ("paper", "walk_via_venue", "paper")
KW_ET = ("paper", "walk_via_keyword", "paper")


def multisage_batch(seeds, num_papers=20, seed=0, keyword=False) -> HeteroData:
    """A batch like the ImportanceNeighborLoader's: seeds first, then their
    walk neighbors; context = local index into batch['venue']."""
    gen = torch.Generator().manual_seed(seed)
    feats = torch.randn(num_papers, 10, generator=torch.Generator().manual_seed(99))
    venue_x = torch.randn(6, 7, generator=torch.Generator().manual_seed(98))
    seeds = torch.as_tensor(seeds)
    others = torch.tensor([i for i in range(num_papers) if i not in seeds.tolist()])
    nbrs = others[torch.randperm(others.numel(), generator=gen)[:5]]
    n_id = torch.cat([seeds, nbrs])
    b = HeteroData()
    b["paper"].x = feats[n_id]
    b["paper"].n_id = n_id
    b["paper"].batch_size = seeds.numel()
    b["paper"].input_id = torch.arange(seeds.numel())
    v_id = torch.tensor([4, 1, 3])
    b["venue"].x = venue_x[v_id]
    b["venue"].n_id = v_id
    src, dst = [], []
    for i in range(seeds.numel()):
        for j in torch.randperm(5, generator=gen)[:3].tolist():
            src.append(seeds.numel() + j)
            dst.append(i)
    b[VENUE_ET].edge_index = torch.tensor([src, dst])
    b[VENUE_ET].edge_weight = torch.rand(len(src), generator=gen) * 5 + 1
    b[VENUE_ET].context = torch.randint(-1, 3, (len(src),), generator=gen)
    if keyword:
        b["keyword"].x = torch.randn(2, 3, generator=gen)
        b[KW_ET].edge_index = torch.tensor([src[:2], dst[:2]])
        b[KW_ET].context = torch.tensor([1, 0])
    return b


def test_multisage_forward_batch():
    torch.manual_seed(0)
    model = MultiSage(10, {"venue": 7}, out_channels=8, hidden_channels=(12,), heads=2)
    batch = multisage_batch([3, 7, 11])
    out = model(batch)
    assert out.shape == (3, 8)
    assert torch.allclose(out.norm(dim=-1), torch.ones(3), atol=1e-6)
    # Equals the layer applied to the Eq. 4 hidden features by hand.
    x = model.target_mlp(batch["paper"].x)
    es = batch[VENUE_ET]
    conv = model.conv.convs["venue"]
    ref = conv(x, batch["venue"].x, es.edge_index, es.context, es.edge_weight)[:3]
    assert torch.allclose(out, F.normalize(ref, dim=-1), atol=1e-6)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    assert "MultiSage(10, 8" in repr(model)


def test_multisage_seed_embedding_independent_of_batch_mates():
    torch.manual_seed(1)
    model = MultiSage(10, {"venue": 7}, out_channels=8, hidden_channels=(12,))
    big = multisage_batch([3, 7, 11])
    out = model(big)
    # Drop seed 11: the others keep their embeddings (single-layer model).
    small = big.clone()
    small["paper"].batch_size = 2
    assert torch.allclose(model(small), out[:2], atol=1e-6)


def test_multisage_three_context_types_and_missing_store():
    torch.manual_seed(2)
    model = MultiSage(
        10, {"venue": 7, "keyword": 3}, out_channels=8, hidden_channels=(), heads=2
    )
    batch = multisage_batch([0, 1], keyword=True)
    out = model(batch)
    assert out.shape == (2, 8) and torch.isfinite(out).all()
    # A batch whose keyword edge type exists but is empty still works ...
    empty = multisage_batch([0, 1])
    empty[KW_ET].edge_index = torch.empty(2, 0, dtype=torch.long)
    empty[KW_ET].context = torch.empty(0, dtype=torch.long)
    assert torch.isfinite(model(empty)).all()
    # ... one without the keyword node type and edge type is misconfigured.
    with pytest.raises(ValueError, match="context type 'keyword' is in neither"):
        model(multisage_batch([0, 1]))
    with pytest.raises(ValueError, match="context_type"):
        model.contextual_embedding(batch["paper"].x, batch["venue"].x[0])
    del batch[KW_ET].context
    with pytest.raises(ValueError, match="no 'context'"):
        model(batch)


def test_multisage_refuses_unknown_types_and_nan_features():
    batch = multisage_batch([0, 1])
    model = MultiSage(10, {"venue": 7}, out_channels=8, hidden_channels=())
    typo = MultiSage(10, {"venu": 7}, out_channels=8, hidden_channels=())
    with pytest.raises(ValueError, match=r"'venu' is in neither.*'venue'"):
        typo(batch)  # used to give the output of a graph-less model
    nope = MultiSage(10, {"venue": 7}, 8, hidden_channels=(), target="nope")
    with pytest.raises(ValueError, match=r"MultiSage: node type 'nope' is not in"):
        nope(batch)
    assert torch.isfinite(model(batch)).all()
    bad = batch.clone()
    bad["paper"].x[4, 2] = float("nan")  # a neighbor row
    with pytest.raises(ValueError, match=r"batch\['paper'\]\.x holds NaN.*first: 4"):
        model(bad)
    bad = batch.clone()
    bad["venue"].x[1, 0] = float("inf")
    with pytest.raises(ValueError, match=r"batch\['venue'\]\.x holds NaN or inf"):
        model(bad)
    with pytest.raises(ValueError, match="NaN"):
        model.embed([bad], progress=False)


def test_multisage_embed_over_loader():
    torch.manual_seed(3)
    model = MultiSage(10, {"venue": 7}, out_channels=8, hidden_channels=(12,))
    loader = [multisage_batch([0, 1, 2], seed=1), multisage_batch([3, 4], seed=2)]
    emb = model.embed(loader, progress=False)
    assert emb.shape == (5, 8)
    assert model.training  # restored
    model.eval()
    with torch.no_grad():
        assert torch.allclose(emb[3:5], model(loader[1]), atol=1e-6)


def test_multisage_contextual_embedding():
    torch.manual_seed(4)
    model = MultiSage(10, {"venue": 7}, out_channels=8, hidden_channels=(12,))
    x, xc = torch.randn(5, 10), torch.randn(7)
    z = model.contextual_embedding(x, xc)
    conv = model.conv.convs["venue"]
    zt = F.relu(conv.lin_t(model.target_mlp(x)))
    zc = F.relu(conv.lin_c(xc))
    assert torch.allclose(z, F.normalize(zt * zc, dim=-1), atol=1e-6)
    per_row = model.contextual_embedding(x, xc.expand(5, 7), normalize=False)
    assert torch.allclose(per_row, zt * zc, atol=1e-6)
    # Different contexts give different rankings spaces.
    z2 = model.contextual_embedding(x, torch.randn(7))
    assert not torch.allclose(z, z2)


PIN = ("pin", "ppr_pin", "pin")
BOARD_PIN = ("board", "ppr_board", "pin")
PIN_BOARD = ("pin", "ppr_pin", "board")


def omnisage_batch(seed=0) -> HeteroData:
    gen = torch.Generator().manual_seed(seed)
    b = HeteroData()
    b["pin"].x = torch.randn(6, 5, generator=gen)
    b["pin"].n_id = torch.tensor([10, 11, 2, 3, 4, 5])
    b["pin"].batch_size = 2
    b["board"].x = torch.randn(3, 4, generator=gen)
    b["board"].n_id = torch.tensor([0, 1, 2])
    b[PIN].edge_index = torch.tensor([[2, 3, 4, 5], [0, 0, 1, 4]])
    b[PIN].edge_weight = torch.tensor([0.5, 0.2, 0.3, 0.9])
    b[BOARD_PIN].edge_index = torch.tensor([[0, 2], [1, 1]])
    b[BOARD_PIN].edge_weight = torch.tensor([0.1, 0.4])
    return b


def make_omnisage():
    torch.manual_seed(5)
    return OmniSage(
        {"pin": 5, "board": 4},
        8,
        {"pin": {PIN: 3, BOARD_PIN: 2}, "board": {PIN_BOARD: 2}},
        hidden_channels=16,
        heads=2,
        mlp_channels=32,
    )


def test_omnisage_forward_and_embed():
    model = make_omnisage()
    batch = omnisage_batch()
    out = model(batch)
    assert out.shape == (2, 8)
    assert torch.allclose(out.norm(dim=-1), torch.ones(2), atol=1e-6)
    # Only edges into seeds are used: edge 3 -> ego 4 (not a seed) is ignored.
    conv = model.embedders["pin"]
    keep = batch[PIN].edge_index[1] < 2
    ref = conv(
        batch.x_dict,
        {PIN: batch[PIN].edge_index[:, keep], BOARD_PIN: batch[BOARD_PIN].edge_index},
        {PIN: batch[PIN].edge_weight[keep], BOARD_PIN: batch[BOARD_PIN].edge_weight},
        num_egos=2,
    )
    assert torch.allclose(out, ref, atol=1e-6)
    other = omnisage_batch(1)
    other["pin"].n_id = torch.tensor([0, 1, 2, 3, 4, 5])
    emb = model.embed([batch, other], progress=False)
    assert emb.shape == (12, 8)
    assert torch.allclose(emb[[10, 11]], model.eval()(batch), atol=1e-6)
    with pytest.raises(KeyError, match="user"):
        model(batch, "user")


def test_omnisage_refuses_missing_edge_types_and_nan_features():
    model = make_omnisage()
    batch = omnisage_batch()
    missing = batch.clone()
    del missing[BOARD_PIN]
    with pytest.raises(ValueError, match=r"lacks the neighbor edge types.*ppr_board"):
        model(missing)
    empty = batch.clone()  # present but empty: legitimate, slots stay empty
    empty[BOARD_PIN].edge_index = torch.empty(2, 0, dtype=torch.long)
    empty[BOARD_PIN].edge_weight = torch.empty(0)
    assert torch.isfinite(model(empty)).all()
    bad = batch.clone()
    bad["board"].x[2, 1] = float("nan")
    with pytest.raises(ValueError, match=r"OmniSage: batch\['board'\]\.x holds NaN"):
        model(bad)


def test_omnisage_has_no_feature_encoders():
    # g_x lives in EntityFeatureTask only (one feature encoder, not two).
    model = make_omnisage()
    assert not any("feature" in name for name, _ in model.named_parameters())
    with pytest.raises(TypeError, match="feature_channels"):
        OmniSage({"pin": 5}, 8, {"pin": {PIN: 3}}, feature_channels={"t": 9})
    assert "entities=['pin', 'board']" in repr(model)
