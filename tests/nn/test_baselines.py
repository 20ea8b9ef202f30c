"""The baselines of the papers' tables, the retrieval wrappers and the
shared embed path (pyg_multisage.nn.models)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch_geometric.data import HeteroData

from pyg_multisage.nn import (
    GATEncoder,
    HANEncoder,
    PinSageEncoder,
    Retriever,
    SingleTypeEncoder,
    TextEncoder,
    embed,
)

A = ("item", "walk_via_board", "item")
B = ("item", "walk_via_tag", "item")


def batch(seed: int = 0) -> HeteroData:
    """Two seeds (rows 0, 1) and three neighbors; one edge of A ends in a
    non-seed (row 3) and must be ignored."""
    gen = torch.Generator().manual_seed(seed)
    b = HeteroData()
    b["item"].x = torch.randn(5, 6, generator=gen)
    b["item"].n_id = torch.tensor([7, 2, 0, 4, 9])
    b["item"].batch_size = 2
    b[A].edge_index = torch.tensor([[2, 3, 4, 2], [0, 0, 1, 3]])
    b[A].edge_weight = torch.tensor([3.0, 1.0, 2.0, 5.0])
    b[B].edge_index = torch.tensor([[4], [0]])
    b[B].edge_weight = torch.tensor([4.0])
    return b


def only_seed_edges(b: HeteroData) -> HeteroData:
    out = b.clone()
    for et in (A, B):
        keep = out[et].edge_index[1] < 2
        out[et].edge_index = out[et].edge_index[:, keep]
        out[et].edge_weight = out[et].edge_weight[keep]
    return out


def make(name: str):
    torch.manual_seed(0)
    if name == "text":
        return TextEncoder(6, 8, 4, "item")
    if name == "pinsage":
        return PinSageEncoder(6, 8, 4, "item", [A, B])
    if name == "gat":
        return GATEncoder(6, 8, 4, "item", [A, B], heads=2)
    return HANEncoder(6, 8, 4, "item", [A, B], heads=2)


@pytest.mark.parametrize("name", ["text", "pinsage", "gat", "han"])
def test_seed_embeddings_normalized_and_edges_into_non_seeds_ignored(name):
    model = make(name)
    b = batch()
    out = model(b)
    assert out.shape == (2, 4)
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(2))
    torch.testing.assert_close(model(only_seed_edges(b)), out)
    out.sum().backward()
    assert repr(model).startswith(type(model).__name__)


@pytest.mark.parametrize("name", ["pinsage", "gat", "han"])
def test_graph_baselines_read_their_neighbors(name):
    model = make(name)
    b = batch()
    alone = b.clone()
    for et in (A, B):
        alone[et].edge_index = alone[et].edge_index[:, :0]
        alone[et].edge_weight = alone[et].edge_weight[:0]
    assert not torch.allclose(model(b), model(alone))
    missing = b.clone()
    del missing[B]  # an edge type absent from a batch is no error
    assert torch.isfinite(model(missing)).all()


def test_text_encoder_is_the_mlp_of_the_seeds():
    model = make("text")
    b = batch()
    ref = F.normalize(model.mlp(b["item"].x[:2]), dim=-1)
    torch.testing.assert_close(model(b), ref)


def test_pinsage_is_importance_pooling_by_hand():
    model = make("pinsage")
    b = batch()
    x = b["item"].x
    h = model.q(x)
    # Seed 0: neighbors 2 (w=3, via A), 3 (w=1, via A), 4 (w=4, via B).
    n0 = (3 * h[2] + 1 * h[3] + 4 * h[4]) / 8
    n1 = h[4]  # seed 1: neighbor 4 (w=2)
    pooled = torch.stack([n0, n1])
    ref = model.out(torch.cat([model.self_lin(x[:2]), pooled], dim=-1))
    torch.testing.assert_close(model(b), F.normalize(ref, dim=-1))


def test_retriever_scale_and_single_type_encoder():
    calls = []

    class Two(torch.nn.Module):
        def forward(self, b, node_type):
            calls.append(node_type)
            return b[node_type].x[: b[node_type].batch_size]

    enc = SingleTypeEncoder(Two(), "item")
    b = batch()
    torch.testing.assert_close(enc(b), b["item"].x[:2])
    assert calls == ["item"]
    r = Retriever(make("text"), temperature=500.0, learn=False)
    assert float(r.scale) == pytest.approx(100.0)  # clamped to [1, 100]
    assert not r.log_scale.requires_grad
    assert float(Retriever(make("text"), 7.0).scale) == pytest.approx(7.0)


def test_embed_places_rows_by_global_id_and_restores_mode():
    model = make("text")
    b1, b2 = batch(0), batch(1)
    b2["item"].n_id = torch.tensor([3, 5, 0, 1, 2])
    model.train()
    emb = embed(model, [b1, b2], "item", num_nodes=12)
    assert emb.shape == (12, 4) and model.training
    with torch.no_grad():
        torch.testing.assert_close(emb[[7, 2]], model(b1))
        torch.testing.assert_close(emb[[3, 5]], model(b2))
    unseen = [i for i in range(12) if i not in (7, 2, 3, 5)]
    assert (emb[unseen] == 0).all()
    # Rows grow to the largest id seen; a node type can be read per batch.
    grown = embed(model, [b1], lambda _b: "item")
    assert grown.shape == (8, 4)
    # forward= overrides model(batch).
    doubled = embed(model, [b1], "item", forward=lambda b: 2 * model(b))
    torch.testing.assert_close(doubled[[7, 2]], 2 * emb[[7, 2]])
    assert embed(model, [], "item", 3, out_channels=4).shape == (3, 4)
    with pytest.raises(ValueError, match="num_nodes"):
        embed(model, [b1], "item", num_nodes=-1)


@pytest.mark.parametrize("name", ["text", "pinsage", "gat", "han"])
def test_baselines_refuse_nan_features_and_unknown_target(name):
    model = make(name)
    bad = batch()
    bad["item"].x[3, 0] = float("nan")
    with pytest.raises(ValueError, match=r"batch\['item'\]\.x holds NaN.*first: 3"):
        model(bad)
    with pytest.raises(ValueError, match="NaN"):
        embed(model, [bad], "item")
    other = batch()
    other["thing"].x = other["item"].x
    del other["item"]
    with pytest.raises(ValueError, match=r"node type 'item' is not in the batch"):
        model(other)
