"""MultiSage on more than one context type (MultiSage-3, §3.2 of the paper)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

from pyg_multisage.nn.conv.multisage_conv import MultiSageConv

AGGRS = ("sum", "mean")


class MultiContextConv(torch.nn.Module):
    r"""One :class:`MultiSageConv` per context type, each with its own
    parameters, combined into one embedding — MultiSage-3 of the
    `MultiSage <https://doi.org/10.1145/3394486.3403293>`_ paper, which
    computes "two sets of context embeddings for each paper based on both the
    neighboring venues and keywords, which have the same neural architecture
    (Eq. 4–7) but different sets of learnable parameters".

    .. math::
        \mathbf{h}_v = \mathrm{norm}\Big(\bigoplus_{k \in \mathcal{K}}
        \mathbf{h}^{(k)}_v\Big),

    where :math:`\mathbf{h}^{(k)}_v` is the (L2-normalized) output of
    Algorithm 1 over the neighbors and contexts of context type :math:`k`
    and :math:`\bigoplus` is the sum or the mean. The paper does not spell
    out the combination; summing full per-context embeddings (each already
    normalized, so every context type weighs the same) is our reading.

    Args:
        in_channels (int or tuple): Size of each target feature (see
            :class:`MultiSageConv`).
        out_channels (int): Size of the output.
        context_channels (dict[str, int]): Context type → size of its
            features; one :class:`MultiSageConv` is made for each.
        aggr (str, optional): :obj:`"sum"` or :obj:`"mean"`.
            (default: :obj:`"sum"`)
        normalize (bool, optional): L2-normalize the combined output.
            (default: :obj:`True`)
        **kwargs (optional): Further arguments of :class:`MultiSageConv`
            (:obj:`heads`, :obj:`combine`, :obj:`attention`, ...).
    """

    def __init__(
        self,
        in_channels: int | tuple[int, int],
        out_channels: int,
        context_channels: Mapping[str, int],
        aggr: str = "sum",
        normalize: bool = True,
        **kwargs,
    ):
        super().__init__()
        if aggr not in AGGRS:
            raise ValueError(f"'aggr' must be one of {AGGRS} (got {aggr!r})")
        if len(context_channels) == 0:
            raise ValueError("'context_channels' needs at least one context type")
        kwargs.pop("normalize", None)
        self.out_channels = out_channels
        self.aggr = aggr
        self.normalize = normalize
        self.context_types = list(context_channels)
        self.convs = torch.nn.ModuleDict(
            {
                ctx: MultiSageConv(
                    in_channels,
                    out_channels,
                    context_channels=channels,
                    normalize=True,
                    **kwargs,
                )
                for ctx, channels in context_channels.items()
            }
        )

    def reset_parameters(self):
        for conv in self.convs.values():
            conv.reset_parameters()

    def forward(
        self,
        x: Tensor | tuple[Tensor, Tensor],
        x_context_dict: Mapping[str, Tensor],
        edge_index_dict: Mapping[str, Tensor],
        context_index_dict: Mapping[str, Tensor],
        edge_weight_dict: Mapping[str, Tensor] | None = None,
        return_attention_weights: bool | None = None,
    ):
        r"""Runs the forward pass of the module.

        Args:
            x (torch.Tensor or (torch.Tensor, torch.Tensor)): Target features.
            x_context_dict (dict[str, torch.Tensor]): Context type → features.
            edge_index_dict (dict[str, torch.Tensor]): Context type → its
                neighbor → ego edges.
            context_index_dict (dict[str, torch.Tensor]): Context type → context
                index per edge (``-1`` = none).
            edge_weight_dict (dict[str, torch.Tensor], optional): Context type →
                edge weights. (default: :obj:`None`)
            return_attention_weights (bool, optional): Also return a dict
                context type → ``(edge_index, alpha)``. (default: :obj:`None`)
        """
        missing = [k for k in self.context_types if k not in edge_index_dict]
        if missing:
            raise KeyError(f"'edge_index_dict' lacks context types {missing}")
        outs = []
        attention: dict[str, tuple[Tensor, Tensor]] = {}
        for ctx, conv in self.convs.items():
            weight = None if edge_weight_dict is None else edge_weight_dict.get(ctx)
            res = conv(
                x,
                x_context_dict[ctx],
                edge_index_dict[ctx],
                context_index_dict[ctx],
                edge_weight=weight,
                return_attention_weights=return_attention_weights,
            )
            if return_attention_weights:
                res, attention[ctx] = res
            outs.append(res)
        h = torch.stack(outs, dim=0)
        h = h.sum(dim=0) if self.aggr == "sum" else h.mean(dim=0)
        if self.normalize:
            h = F.normalize(h, p=2.0, dim=-1)
        if return_attention_weights:
            return h, attention
        return h

    def __repr__(self) -> str:
        conv = next(iter(self.convs.values()))
        return (
            f"{self.__class__.__name__}({conv.in_channels}, {self.out_channels}, "
            f"contexts={self.context_types}, aggr={self.aggr!r})"
        )
