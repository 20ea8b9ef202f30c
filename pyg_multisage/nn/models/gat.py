"""The GAT baseline (Veličković et al., ICLR 2018) of MultiSage Table 2."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import HeteroData
from torch_geometric.nn import GATConv

from pyg_multisage._checks import batch_features
from pyg_multisage.convention import EdgeType, seed_edges
from pyg_multisage.nn.mlp import mlp


class GATEncoder(nn.Module):
    r"""The GAT baseline of MultiSage Table 2, after the `"Graph Attention
    Networks" <https://arxiv.org/abs/1710.10903>`_ paper (Veličković et al.,
    ICLR 2018): multi-head graph attention (PyG's
    :class:`~torch_geometric.nn.conv.GATConv`) over the importance
    neighbors, all edge types merged into one relation, contexts ignored,
    plus a self term.

    .. math::
        \mathbf{h}_u &= \mathrm{ReLU}(\mathbf{P} \mathbf{x}_u + \mathbf{p})

        \alpha^k_{vu} &= \operatorname{softmax}_{u \in N(v)} \big(
        \mathrm{LeakyReLU}(\mathbf{a}_k^\top [\mathbf{W}_k \mathbf{h}_v
        \,\Vert\, \mathbf{W}_k \mathbf{h}_u]) \big) \quad \text{(Eq. 3)}

        \mathbf{z}_v &= \frac{1}{K} \sum_{k=1}^{K} \sum_{u \in N(v)}
        \alpha^k_{vu} \mathbf{W}_k \mathbf{h}_u + \mathbf{b}
        + \mathbf{W}_s \mathbf{h}_v + \mathbf{b}_s \quad \text{(Eq. 6, head
        average)},

    then :math:`\mathbf{z}_v / \lVert \mathbf{z}_v \rVert_2`. :math:`N(v)`
    are the edges of :obj:`edge_types` into the seeds (no self-loops: the
    self term stands for them).

    Args:
        in_channels (int): Size of the raw target features.
        hidden_channels (int): Hidden size.
        out_channels (int): Embedding size.
        target (str): Target node type.
        edge_types (Sequence[tuple]): Importance-neighbor edge types
            ``(target, rel, target)``.
        heads (int, optional): Attention heads :math:`K`. (default: :obj:`4`)
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        out_channels: int,
        target: str,
        edge_types: Sequence[EdgeType],
        heads: int = 4,
    ):
        super().__init__()
        self.target, self.edge_types = target, [tuple(et) for et in edge_types]
        self.proj = mlp([in_channels, hidden_channels], act_last=True)
        self.conv = GATConv(
            hidden_channels,
            out_channels,
            heads=heads,
            concat=False,
            add_self_loops=False,
        )
        self.self_lin = nn.Linear(hidden_channels, out_channels)

    def reset_parameters(self) -> None:
        self.proj[0].reset_parameters()
        self.conv.reset_parameters()
        self.self_lin.reset_parameters()

    def forward(self, batch: HeteroData) -> Tensor:
        """L2-normalized embeddings ``[batch_size, out_channels]`` of the
        seeds."""
        x = batch_features(batch, self.target, self.__class__.__name__)
        bs = batch[self.target].batch_size
        h = self.proj(x)
        edges = [ei for _, ei, _, _ in seed_edges(batch, self.edge_types, bs)]
        ei = torch.cat(edges, 1) if edges else h.new_zeros(2, 0, dtype=torch.long)
        z = self.conv((h, h[:bs]), ei) + self.self_lin(h[:bs])
        return F.normalize(z, dim=-1)

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(target={self.target!r}, "
            f"edge_types={self.edge_types}, heads={self.conv.heads})"
        )
