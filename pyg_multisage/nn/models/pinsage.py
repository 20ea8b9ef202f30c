"""The PinSage-style baseline (Ying et al., KDD 2018) of MultiSage Table 2."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import HeteroData
from torch_geometric.utils import scatter

from pyg_multisage._checks import batch_features
from pyg_multisage.convention import EdgeType, seed_edges
from pyg_multisage.nn.mlp import mlp


class PinSageEncoder(nn.Module):
    r"""The PinSage-style baseline of MultiSage Table 2, after the
    `"Graph Convolutional Neural Networks for Web-Scale Recommender Systems"
    <https://doi.org/10.1145/3219819.3219890>`_ paper (Ying et al., KDD 2018):
    one CONVOLVE step (Alg. 1) with importance pooling over random-walk
    neighbors, contexts ignored.

    .. math::
        \mathbf{h}_u &= \mathrm{ReLU}(\mathbf{Q} \mathbf{x}_u + \mathbf{q})

        \mathbf{n}_v &= \frac{\sum_{u \in N(v)} \alpha_{uv} \mathbf{h}_u}
        {\sum_{u \in N(v)} \alpha_{uv}}
        \quad \text{(importance pooling, } \alpha_{uv} \text{ = visit count)}

        \mathbf{z}_v &= \mathbf{G} \, \mathrm{ReLU}\big(\mathbf{W} \,
        [\mathrm{ReLU}(\mathbf{S} \mathbf{x}_v + \mathbf{s}) \,\Vert\,
        \mathbf{n}_v] + \mathbf{w}\big) + \mathbf{g},
        \qquad \mathbf{z}_v \leftarrow \mathbf{z}_v / \lVert \mathbf{z}_v
        \rVert_2

    (the concatenation with the node's own representation, the dense layer
    and the normalization of Alg. 1, lines 2–3, then a final linear layer as
    in Alg. 2's :math:`G`). The neighbors :math:`N(v)` are the edges of
    :obj:`edge_types` into the seeds (``edge_weight`` = :math:`\alpha_{uv}`,
    all ones when absent); with several edge types (e.g. walks through each
    context type) their pools are merged.

    Args:
        in_channels (int): Size of the raw target features.
        hidden_channels (int): Hidden size.
        out_channels (int): Embedding size.
        target (str): Target node type.
        edge_types (Sequence[tuple]): Importance-neighbor edge types
            ``(target, rel, target)`` to pool over.
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        out_channels: int,
        target: str,
        edge_types: Sequence[EdgeType],
    ):
        super().__init__()
        self.target, self.edge_types = target, [tuple(et) for et in edge_types]
        self.q = mlp([in_channels, hidden_channels], act_last=True)
        self.self_lin = mlp([in_channels, hidden_channels], act_last=True)
        self.out = mlp([2 * hidden_channels, hidden_channels, out_channels])

    def reset_parameters(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Linear):
                module.reset_parameters()

    def forward(self, batch: HeteroData) -> Tensor:
        """L2-normalized embeddings ``[batch_size, out_channels]`` of the
        seeds."""
        x = batch_features(batch, self.target, self.__class__.__name__)
        store = batch[self.target]
        bs = store.batch_size
        h = self.q(x)
        agg = h.new_zeros(bs, h.size(1))
        total = h.new_zeros(bs, 1)
        for _, ei, w, _ in seed_edges(batch, self.edge_types, bs):
            w = torch.ones(ei.size(1), device=h.device) if w is None else w
            agg = agg + scatter(h[ei[0]] * w[:, None], ei[1], 0, bs, reduce="sum")
            total = total + scatter(w[:, None], ei[1], 0, bs, reduce="sum")
        agg = agg / total.clamp(min=1e-12)
        z = self.out(torch.cat([self.self_lin(store.x[:bs]), agg], dim=-1))
        return F.normalize(z, dim=-1)

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(target={self.target!r}, "
            f"edge_types={self.edge_types})"
        )
