"""Wrappers that make any encoder a retrieval model of the main job."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import HeteroData

from pyg_multisage._checks import batch_features


class FeatureSkip(nn.Module):
    r"""An output-level skip path from a node's raw features: a learned,
    bias-free linear map of the L2-normalized raw features added to an
    encoder's embedding before the final normalization,

    .. math::
        \mathbf{z}'_v = \frac{\mathbf{z}_v + \mathbf{W}_{skip} \,
        \hat{\mathbf{x}}_v}{\lVert \cdot \rVert_2},
        \qquad \hat{\mathbf{x}}_v = \mathbf{x}_v / \lVert \mathbf{x}_v
        \rVert_2,

    the same for every model, so that a trained model keeps the direction of
    what its own features know. It plays the role of PinSage's concatenation
    of the node's own representation (Ying et al., KDD 2018, Alg. 1 line 2)
    and of MultiSage's ego term :math:`\mathbf{z}_{\mathcal{N}_v}(v)`
    (Alg. 1 line 5), but from the *raw* features, after every layer: a
    linear skip into a sum is the residual connection of He et al. (CVPR
    2016). :math:`\mathbf{W}_{skip}` starts as a Johnson–Lindenstrauss
    random projection (entries :math:`\mathcal{N}(0, 1/d)`), which keeps
    norms and cosines of :math:`\hat{\mathbf{x}}` approximately, so at the
    start the skip alone ranks like the raw features' cosine.

    Args:
        in_channels (int): Size of the raw target features.
        out_channels (int): Embedding size :math:`d`.
        target (str): The node type whose seeds are embedded (the first
            ``batch[target].batch_size`` rows of ``batch[target].x``).
    """

    def __init__(self, in_channels: int, out_channels: int, target: str):
        super().__init__()
        if in_channels < 1 or out_channels < 1:
            raise ValueError(
                f"in_channels and out_channels must be >= 1, got "
                f"{in_channels} and {out_channels}"
            )
        self.target = target
        self.lin = nn.Linear(in_channels, out_channels, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.lin.weight, std=self.lin.out_features**-0.5)

    def forward(self, z: Tensor, batch: HeteroData) -> Tensor:
        """``normalize(z + W x̂)`` for the seeds of :obj:`batch`; :obj:`z` is
        the encoder's ``[batch_size, d]`` output."""
        x = batch_features(batch, self.target, self.__class__.__name__)
        x = x[: z.size(0)]
        if x.size(-1) != self.lin.in_features:
            raise ValueError(
                f"FeatureSkip: batch[{self.target!r}].x has {x.size(-1)} "
                f"features, expected {self.lin.in_features}"
            )
        return F.normalize(z + self.lin(F.normalize(x.float(), dim=-1)), dim=-1)


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
        feature_skip (FeatureSkip, optional): An output-level skip path from
            the raw features (the main job's ``feature_skip`` flag).
            (default: :obj:`None`)
    """

    def __init__(
        self,
        encoder: nn.Module,
        temperature: float,
        learn: bool = True,
        feature_skip: FeatureSkip | None = None,
    ):
        super().__init__()
        self.encoder = encoder
        log_t = torch.tensor(float(temperature)).log()
        self.log_scale = nn.Parameter(log_t, requires_grad=learn)
        # Registered only when used: checkpoints without it keep their keys.
        if feature_skip is not None:
            self.feature_skip = feature_skip

    def forward(self, batch: HeteroData) -> Tensor:
        """The encoder's embeddings of the batch's seeds (through the
        feature skip when there is one)."""
        z = self.encoder(batch)
        skip = getattr(self, "feature_skip", None)
        return z if skip is None else skip(z, batch)

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
