"""The text-only baseline of MultiSage Table 2: an MLP on a node's own
features."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import HeteroData

from pyg_multisage._checks import batch_features
from pyg_multisage.nn.mlp import mlp


class TextEncoder(nn.Module):
    r"""The text-only baseline of MultiSage Table 2 ("Text"): a two-layer MLP
    on the target's own (text) features, no graph,

    .. math::
        \mathbf{z}_v = \frac{\mathbf{W}_2 \, \mathrm{ReLU}(\mathbf{W}_1
        \mathbf{x}_v + \mathbf{b}_1) + \mathbf{b}_2}{\lVert \cdot \rVert_2}.

    It reads loader batches of the package's format: the seeds are the first
    ``batch[target].batch_size`` rows of ``batch[target].x``.

    Args:
        in_channels (int): Size of the raw target features.
        hidden_channels (int): Hidden size.
        out_channels (int): Embedding size.
        target (str): Target node type.
    """

    def __init__(
        self, in_channels: int, hidden_channels: int, out_channels: int, target: str
    ):
        super().__init__()
        self.target = target
        self.mlp = mlp([in_channels, hidden_channels, out_channels])

    def reset_parameters(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Linear):
                module.reset_parameters()

    def forward(self, batch: HeteroData) -> Tensor:
        """L2-normalized embeddings ``[batch_size, out_channels]`` of the
        seeds."""
        x = batch_features(batch, self.target, self.__class__.__name__)
        return F.normalize(self.mlp(x[: batch[self.target].batch_size]), dim=-1)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(target={self.target!r}, mlp={self.mlp})"
