"""Interoperability with PyG's NeighborLoader: one stock HeteroConv model
trains on its batches and on ours, for the same seeds."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from test_importance_loader import WALK, walk_data
from torch_geometric.loader import NeighborLoader
from torch_geometric.nn import HeteroConv, SAGEConv
from torch_geometric.typing import WITH_PYG_LIB

from pyg_multisage.loader import ImportanceNeighborLoader

if not WITH_PYG_LIB:  # NeighborLoader samples with pyg-lib or torch_sparse
    pytest.importorskip("torch_sparse")

HAS = ("board", "has", "pin")


def make_model() -> HeteroConv:
    torch.manual_seed(0)
    return HeteroConv({et: SAGEConv((8, 8), 3) for et in (HAS, WALK)}, aggr="sum")


def seed_logits(model, x_dict, edge_index_dict, n: int) -> torch.Tensor:
    return model(x_dict, edge_index_dict)["pin"][:n]


def train_step(model, batch, seeds) -> tuple[float, float]:
    """One SGD step on the batch; the loss on that batch before and after."""
    n = int(batch["pin"].batch_size)
    assert torch.equal(batch["pin"].n_id[:n], seeds)
    y = batch["pin"].y[:n]
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    logits = seed_logits(model, batch.x_dict, batch.edge_index_dict, n)
    loss = F.cross_entropy(logits, y)
    opt.zero_grad()
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    opt.step()
    with torch.no_grad():
        after = F.cross_entropy(
            seed_logits(model, batch.x_dict, batch.edge_index_dict, n), y
        )
    return float(loss), float(after)


def test_one_hetero_conv_trains_on_neighbor_loader_and_ours():
    data = walk_data()
    seeds = torch.tensor([3, 17, 0, 25, 8, 39, 12, 30])
    # Fan-out above every degree: NeighborLoader returns whole neighborhoods.
    peer = NeighborLoader(
        data, num_neighbors=[100], input_nodes=("pin", seeds), batch_size=8
    )
    ours = ImportanceNeighborLoader(data, ("pin", seeds), batch_size=8)
    b_peer, b_ours = next(iter(peer)), next(iter(ours))

    model = make_model()
    with torch.no_grad():
        full = seed_logits(model, data.x_dict, data.edge_index_dict, 40)[seeds]
        # NeighborLoader's batch holds every edge into the seeds: the seeds'
        # outputs equal the full-graph ones.
        out_peer = seed_logits(model, b_peer.x_dict, b_peer.edge_index_dict, 8)
        assert torch.allclose(out_peer, full, atol=1e-5)
        # Ours holds the walk neighbors only: equal to the full graph
        # restricted to the walk edge type.
        empty = torch.empty(2, 0, dtype=torch.long)
        walk_only = {HAS: empty, WALK: data[WALK].edge_index}
        full_walk = seed_logits(model, data.x_dict, walk_only, 40)[seeds]
        out_ours = seed_logits(model, b_ours.x_dict, b_ours.edge_index_dict, 8)
        assert torch.allclose(out_ours, full_walk, atol=1e-5)

    for batch in (b_peer, b_ours):
        before, after = train_step(model, batch, seeds)
        assert torch.isfinite(torch.tensor(before))
        assert after < before  # a small step descends on its own batch
