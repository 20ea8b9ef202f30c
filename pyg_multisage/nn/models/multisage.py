"""The MultiSage model (MultiSage, KDD 2020, §2.2, Fig. 4, Alg. 1)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import HeteroData

from pyg_multisage._checks import batch_features
from pyg_multisage.convention import EdgeType, seed_edges, walk_edge_type
from pyg_multisage.nn.conv.multi_context_conv import MultiContextConv
from pyg_multisage.nn.mlp import mlp
from pyg_multisage.nn.models.embedding import embed, loader_num_nodes


def feature_mlp(in_channels: int, hidden_channels: Sequence[int]) -> torch.nn.Module:
    """``Linear → ReLU`` blocks (the first K − 1 layers of Eq. 4); identity
    when :obj:`hidden_channels` is empty."""
    return mlp([in_channels, *hidden_channels], act_last=True)


class MultiSage(torch.nn.Module):
    r"""The MultiSage model of the `"MultiSage: Empowering GCN with
    Contextualized Multi-Embeddings on Web-Scale Multipartite Networks"
    <https://doi.org/10.1145/3394486.3403293>`_ paper (Fig. 4).

    Raw target and context features pass the feature networks of Eq. 4
    (:math:`\mathrm{ReLU}` layers; the last layer of each sits inside the
    convolution), then one single-layer MultiSage convolution per context
    type over the importance neighbors of the contextualized random walk
    (Alg. 1), combined as in MultiSage-3 (:class:`MultiContextConv`). With
    one context type this is MultiSage-2.

    Appendix B's OAG setting is ``in_channels=300, hidden_channels=(256,),
    out_channels=128, context_channels={'venue': 300}, heads=10,
    attention_channels=64``.

    It reads loader batches in the package's format: seeds are the first
    ``batch[target].batch_size`` rows of ``batch[target].x``; for each
    context type ``c`` the edge type ``edge_types[c]`` (default
    ``(target, f'walk_via_{c}', target)``) holds ``edge_index`` (neighbor →
    ego), ``context`` (local index into ``batch[c]``, ``-1`` = none) and
    optionally ``edge_weight`` — or, after PyG's
    :class:`~torch_geometric.transforms.ToSparseTensor`, a
    :class:`torch_sparse.SparseTensor` ``adj_t`` (edge weights as its values)
    with ``context`` in its row-major order, as that transform leaves it. A
    batch that lacks the target type, that has neither the node type nor the
    walk edge type of a context type (a misspelled context type; an empty
    edge type is fine), or whose features hold NaN or infinite values raises
    a :class:`ValueError` naming it.

    Args:
        in_channels (int): Size of the raw target features.
        context_channels (dict[str, int]): Context type → raw feature size.
        out_channels (int, optional): Embedding size :math:`F`.
            (default: :obj:`128`)
        hidden_channels (Sequence[int], optional): Hidden sizes of the target
            network of Eq. 4 before its last layer. (default: :obj:`(256,)`)
        context_hidden_channels (Sequence[int], optional): Hidden sizes of
            the context networks. (default: :obj:`()`)
        target (str, optional): Target node type. (default: :obj:`"paper"`)
        edge_types (dict[str, tuple], optional): Context type → walk edge
            type. (default: :obj:`None`)
        aggr (str, optional): Combination of context types, :obj:`"sum"` or
            :obj:`"mean"`. (default: :obj:`"sum"`)
        **kwargs (optional): Arguments of :class:`MultiSageConv`
            (:obj:`heads`, :obj:`combine`, :obj:`attention`,
            :obj:`attention_channels`, ...).
    """

    def __init__(
        self,
        in_channels: int,
        context_channels: Mapping[str, int],
        out_channels: int = 128,
        hidden_channels: Sequence[int] = (256,),
        context_hidden_channels: Sequence[int] = (),
        target: str = "paper",
        edge_types: Mapping[str, EdgeType] | None = None,
        aggr: str = "sum",
        **kwargs,
    ):
        super().__init__()
        if not isinstance(context_channels, Mapping) or not context_channels:
            raise ValueError(
                "'context_channels' must map context types to feature sizes, "
                "e.g. {'venue': 300}"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.target = target
        self.context_types = list(context_channels)
        self.edge_types: dict[str, EdgeType] = {
            c: walk_edge_type(target, c) for c in self.context_types
        }
        if edge_types is not None:
            self.edge_types.update({c: tuple(et) for c, et in edge_types.items()})
        hidden = list(hidden_channels)
        ctx_hidden = list(context_hidden_channels)
        self.target_mlp = feature_mlp(in_channels, hidden)
        self.context_mlp = torch.nn.ModuleDict(
            {c: feature_mlp(ch, ctx_hidden) for c, ch in context_channels.items()}
        )
        last = hidden[-1] if hidden else in_channels
        self.conv = MultiContextConv(
            last,
            out_channels,
            {
                c: (ctx_hidden[-1] if ctx_hidden else ch)
                for c, ch in context_channels.items()
            },
            aggr=aggr,
            **kwargs,
        )

    def reset_parameters(self):
        for module in self.modules():
            if isinstance(module, torch.nn.Linear):
                module.reset_parameters()
        self.conv.reset_parameters()

    def forward(self, batch: HeteroData, return_attention_weights: bool = False):
        """Embeddings ``[batch_size, out_channels]`` of the batch's seeds.

        With :obj:`return_attention_weights=True` (as PyG's
        :class:`~torch_geometric.nn.conv.GATConv`), returns
        ``(embeddings, {context_type: (edge_index, alpha)})``: per context
        type, the edges into the seeds in batch-local ids (row 0 neighbor,
        row 1 seed) and their attention weights ``alpha`` ``[E, heads]`` of
        Eq. 6 (each seed's weights sum to one per head;
        ``examples/multisage_attention.py`` draws them, MultiSage Fig. 6)."""
        x_all = batch_features(batch, self.target, "MultiSage")
        store = batch[self.target]
        batch_size = int(getattr(store, "batch_size", x_all.size(0)))
        for c in self.context_types:
            et = self.edge_types[c]
            if c not in batch.node_types and et not in batch.edge_types:
                raise ValueError(
                    f"MultiSage: context type {c!r} is in neither the batch's "
                    f"node types {batch.node_types} nor, as the walk edge type "
                    f"{et}, its edge types {batch.edge_types}; check "
                    f"context_channels / edge_types"
                )
        x = self.target_mlp(x_all)
        x_pair = (x, x[:batch_size])
        # Single-layer model: only edges into the seeds matter.
        seeded = {
            et: (edge_index, weight, context)
            for et, edge_index, weight, context in seed_edges(
                batch, self.edge_types.values(), batch_size
            )
        }
        xc, ei, ci, ew = {}, {}, {}, {}
        for c in self.context_types:
            et = self.edge_types[c]
            if c in batch.node_types and "x" in batch[c]:
                xc[c] = self.context_mlp[c](batch_features(batch, c, "MultiSage"))
            else:
                xc[c] = self.context_mlp[c](x.new_zeros(0, self._ctx_in(c)))
            if et in seeded:
                ei[c], weight, ci[c] = seeded[et]
                if ci[c] is None:
                    raise ValueError(
                        f"batch[{et}] has no 'context' (the per-edge index into "
                        f"batch[{c!r}]); was it written by ContextualWalkNeighbors?"
                    )
                if weight is not None:
                    ew[c] = weight
            else:
                ei[c] = torch.empty(2, 0, dtype=torch.long, device=x.device)
                ci[c] = torch.empty(0, dtype=torch.long, device=x.device)
        return self.conv(
            x_pair,
            xc,
            ei,
            ci,
            ew or None,
            return_attention_weights=return_attention_weights or None,
        )

    def _ctx_in(self, context_type: str) -> int:
        mlp = self.context_mlp[context_type]
        if isinstance(mlp, torch.nn.Identity):
            return self.conv.convs[context_type].context_channels
        return mlp[0].in_features

    @torch.no_grad()
    def embed(
        self,
        loader,
        device: torch.device | None = None,
        progress: bool = True,
    ) -> Tensor:
        """Embed every seed of :obj:`loader` (e.g. all targets), with a
        progress bar. Returns ``[num_targets, out_channels]`` indexed by
        global node id (``batch[target].n_id``); rows never seen are zero
        (:func:`~pyg_multisage.nn.models.embed`)."""
        return embed(
            self,
            loader,
            self.target,
            loader_num_nodes(loader, self.target),
            out_channels=self.out_channels,
            device=device,
            progress=progress,
            desc="MultiSage.embed",
        )

    @torch.no_grad()
    def contextual_embedding(
        self,
        x_target: Tensor,
        x_context: Tensor,
        context_type: str | None = None,
        normalize: bool = True,
    ) -> Tensor:
        r"""The context-masked base embedding
        :math:`\mathbf{z}_{t|c} = \mathbf{z}_t \otimes \mathbf{z}_c` (Eq. 5,
        with the layer's :obj:`combine`) used for contextualized
        recommendation (§3.3, Fig. 7): apply the same context to the query
        and the candidates, then rank by inner product.

        Args:
            x_target (torch.Tensor): Raw target features ``[N, in_channels]``.
            x_context (torch.Tensor): Raw features of one context ``[C]`` or
                ``[1, C]`` (broadcast) or one per target ``[N, C]``.
            context_type (str, optional): Which context type's layer to use;
                required with several. (default: :obj:`None`)
            normalize (bool, optional): L2-normalize. (default: :obj:`True`)
        """
        if context_type is None:
            if len(self.context_types) != 1:
                raise ValueError(
                    f"'context_type' is required (one of {self.context_types})"
                )
            context_type = self.context_types[0]
        if context_type not in self.context_mlp:
            raise KeyError(f"unknown context type {context_type!r}")
        conv = self.conv.convs[context_type]
        if x_context.dim() == 1:
            x_context = x_context.unsqueeze(0)
        z_t = conv.target_embedding(self.target_mlp(x_target))
        z_c = conv.context_embedding(self.context_mlp[context_type](x_context))
        z = conv.contextualize(z_t, z_c.expand_as(z_t))
        return F.normalize(z, p=2.0, dim=-1) if normalize else z

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, "
            f"target={self.target!r}, contexts={self.context_types})"
        )
