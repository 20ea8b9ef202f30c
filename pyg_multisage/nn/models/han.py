"""The HAN baseline (Wang et al., WWW 2019) of MultiSage Table 2."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import HeteroData
from torch_geometric.nn import HANConv

from pyg_multisage._checks import batch_features
from pyg_multisage.convention import EdgeType, seed_edges
from pyg_multisage.nn.mlp import mlp


class HANEncoder(nn.Module):
    r"""The HAN baseline of MultiSage Table 2, after the `"Heterogeneous
    Graph Attention Network" <https://arxiv.org/abs/1903.07293>`_ paper
    (Wang et al., WWW 2019), with PyG's
    :class:`~torch_geometric.nn.conv.HANConv`: node-level attention per
    metapath :math:`\Phi` and semantic attention across metapaths, plus a
    self term. The metapath instances target–context–target are the walk
    neighbors through each context type (one edge type each, e.g.
    paper–venue–paper, paper–term–paper).

    .. math::
        \mathbf{h}_u &= \mathrm{ReLU}(\mathbf{P} \mathbf{x}_u + \mathbf{p}),
        \quad \mathbf{h}'_u = \mathbf{M} \mathbf{h}_u

        \alpha^\Phi_{vu} &= \operatorname{softmax}_{u \in N^\Phi(v)} \big(
        \mathrm{LeakyReLU}(\mathbf{a}_\Phi^\top [\mathbf{h}'_v \,\Vert\,
        \mathbf{h}'_u]) \big), \quad \mathbf{z}^\Phi_v = \mathrm{ReLU}\Big(
        \sum_{u \in N^\Phi(v)} \alpha^\Phi_{vu} \mathbf{h}'_u \Big)
        \quad \text{(Eq. 3–4, per head)}

        \beta_\Phi &= \operatorname{softmax}_\Phi \Big( \frac{1}{|V|}
        \sum_{v} \mathbf{q}^\top \tanh(\mathbf{W} \mathbf{z}^\Phi_v +
        \mathbf{b}) \Big), \quad \mathbf{Z} = \sum_\Phi \beta_\Phi
        \mathbf{Z}^\Phi \quad \text{(Eq. 7–9)}

        \mathbf{z}_v &= \mathbf{Z}_v + \mathbf{W}_s \mathbf{h}_v +
        \mathbf{b}_s,

    then :math:`\mathbf{z}_v / \lVert \mathbf{z}_v \rVert_2`. A batch
    without any metapath edges gets the self term alone.

    Args:
        in_channels (int): Size of the raw target features.
        hidden_channels (int): Hidden size.
        out_channels (int): Embedding size.
        target (str): Target node type.
        edge_types (Sequence[tuple]): One importance-neighbor edge type
            ``(target, rel, target)`` per metapath.
        heads (int, optional): Attention heads of the node-level attention.
            (default: :obj:`4`)
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
        self.conv = HANConv(
            hidden_channels,
            out_channels,
            metadata=([target], self.edge_types),
            heads=heads,
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
        ei_dict = {et: ei for et, ei, _, _ in seed_edges(batch, self.edge_types, bs)}
        for et in self.edge_types:
            ei_dict.setdefault(et, h.new_zeros(2, 0, dtype=torch.long))
        out = self.conv({self.target: h}, ei_dict)[self.target]
        z = self.self_lin(h[:bs])
        if out is not None:
            z = z + out[:bs]
        return F.normalize(z, dim=-1)

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(target={self.target!r}, "
            f"edge_types={self.edge_types}, heads={self.conv.heads})"
        )
