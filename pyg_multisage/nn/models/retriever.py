"""Wrappers that make any encoder a retrieval model of the main job."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.data import HeteroData


class Retriever(nn.Module):
    r"""An encoder and the learned scale :math:`\lambda` of the sampled
    softmax (OmniSage Eq. 1: :math:`\lambda \, \mathbf{q}^\top \mathbf{v}`),
    CLIP-style: :math:`\lambda = e^{s}`, clamped to ``[1, 100]``.

    Encoders differ in how spread their cosine similarities are (MultiSage's
    sigmoid outputs of Eq. 7 are non-negative, so its cosines live in a
    narrow band); learning :math:`\lambda` lets every model of the comparison
    find its own scale under the same loss, instead of tuning a fixed
    temperature per model. Scale the query embeddings by :attr:`scale`
    before the loss.

    Args:
        encoder (torch.nn.Module): ``batch -> [batch_size, d]``, L2
            normalized.
        temperature (float): Initial :math:`\lambda`.
        learn (bool, optional): Learn :math:`\lambda`; else it stays fixed.
            (default: :obj:`True`)
    """

    def __init__(self, encoder: nn.Module, temperature: float, learn: bool = True):
        super().__init__()
        self.encoder = encoder
        log_t = torch.tensor(float(temperature)).log()
        self.log_scale = nn.Parameter(log_t, requires_grad=learn)

    def forward(self, batch: HeteroData) -> Tensor:
        """The encoder's embeddings of the batch's seeds."""
        return self.encoder(batch)

    @property
    def scale(self) -> Tensor:
        r""":math:`\lambda = e^{s}` clamped to ``[1, 100]``."""
        return self.log_scale.exp().clamp(1.0, 100.0)


class SingleTypeEncoder(nn.Module):
    """Calls a multi-entity model (e.g. :class:`~pyg_multisage.nn.OmniSage`,
    one embedder per entity type) with a fixed node type, so that it reads
    like a single-type encoder ``batch -> [batch_size, d]``.

    Args:
        model (torch.nn.Module): Called as ``model(batch, node_type)``.
        node_type (str): The node type to embed.
    """

    def __init__(self, model: nn.Module, node_type: str):
        super().__init__()
        # Attribute names are part of checkpoints' state-dict keys.
        self.model, self.target = model, node_type

    def forward(self, batch: HeteroData) -> Tensor:
        """:obj:`model(batch, node_type)`."""
        return self.model(batch, self.target)
