"""The MultiSage convolution (MultiSage, KDD 2020, §2.2 and Appendix A, Alg. 1)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Parameter
from torch_geometric.nn.conv import MessagePassing
from torch_geometric.nn.dense.linear import Linear
from torch_geometric.nn.inits import glorot
from torch_geometric.typing import WITH_TORCH_SPARSE, SparseTensor

from pyg_multisage._checks import check_edge_index
from pyg_multisage.nn.conv import _segment

COMBINES = ("mask", "trans", "concat")
ATTENTIONS = ("three_way", "diff", None)


def _is_compiling() -> bool:
    return torch.compiler.is_compiling()


def to_edge_index(edge_index, num_src: int, num_dst: int) -> Tensor:
    r"""Turn any accepted adjacency format into a plain ``[2, E]`` tensor
    (row 0 = neighbor / source, row 1 = ego / target).

    * a ``[2, E]`` integer tensor or PyG :class:`~torch_geometric.EdgeIndex`
      is used as is (edge order kept);
    * a :obj:`torch.sparse` COO (must be coalesced) or CSR adjacency, or a
      :class:`torch_sparse.SparseTensor`, is read as the *transposed*
      adjacency ``adj_t`` of shape ``[num_egos, num_neighbors]`` (PyG's
      convention), and its edges come out in row-major order: grouped by
      ego, neighbors ascending. Per-edge inputs such as ``context_index`` and
      ``edge_weight`` must then be given in that order.
    """
    return read_adjacency(edge_index, num_src, num_dst)[0]


def read_adjacency(
    edge_index, num_src: int, num_dst: int
) -> tuple[Tensor, Tensor | None, Tensor | None]:
    r"""Like :func:`to_edge_index`, and also returns what a sparse adjacency
    knows beyond its edges: ``(edge_index, ptr, value)`` with ``ptr`` the
    row pointer ``[num_dst + 1]`` of a CSR or ``SparseTensor`` adjacency
    (else :obj:`None`) and ``value`` the ``SparseTensor``'s values (else
    :obj:`None`; a :obj:`torch.sparse` tensor's values are not read).

    A ``SparseTensor``'s values, when it has any, are the edge weights
    ``[E]`` in row-major order, as PyG's
    :class:`~torch_geometric.transforms.ToSparseTensor` leaves them
    (``attr="edge_weight"``); they must be a 1-D floating point tensor.
    """
    if isinstance(edge_index, Tensor) and edge_index.layout == torch.sparse_coo:
        if not edge_index.is_coalesced():
            raise ValueError(
                "'edge_index' is an uncoalesced sparse COO tensor; call "
                ".coalesce() first so that the edge order (which "
                "'context_index' follows) is defined"
            )
        _check_adj_shape(edge_index.shape, num_src, num_dst)
        row, col = edge_index.indices()
        return torch.stack([col, row], dim=0), None, None
    if isinstance(edge_index, Tensor) and edge_index.layout == torch.sparse_csr:
        _check_adj_shape(edge_index.shape, num_src, num_dst)
        crow = edge_index.crow_indices()
        col = edge_index.col_indices()
        row = torch.repeat_interleave(
            torch.arange(crow.numel() - 1, device=crow.device), crow.diff()
        )
        return torch.stack([col, row], dim=0), crow, None
    if WITH_TORCH_SPARSE and isinstance(edge_index, SparseTensor):
        _check_adj_shape(edge_index.sizes(), num_src, num_dst)
        row, col, value = edge_index.coo()
        if value is not None and (value.dim() != 1 or not value.is_floating_point()):
            raise TypeError(
                "the values of a SparseTensor 'edge_index' are the edge "
                "weights and must be a 1-D floating point tensor (got "
                f"{value.dtype} of shape {list(value.shape)}); keep other "
                "per-edge data (e.g. 'context_index') as separate tensors in "
                "the adjacency's row-major order"
            )
        ptr = edge_index.storage.rowptr()
        return torch.stack([col, row], dim=0), ptr, value
    if not isinstance(edge_index, Tensor):
        raise TypeError(
            f"'edge_index' must be a [2, E] tensor, an EdgeIndex or a sparse "
            f"adjacency (got {type(edge_index).__name__})"
        )
    if hasattr(edge_index, "as_tensor"):  # torch_geometric.EdgeIndex
        edge_index = edge_index.as_tensor()
    check_edge_index(edge_index, "edge_index", int64=True)
    return edge_index, None, None


def _check_adj_shape(shape, num_src: int, num_dst: int) -> None:
    if int(shape[0]) != num_dst or int(shape[1]) != num_src:
        raise ValueError(
            f"sparse adjacency must have shape [num_egos={num_dst}, "
            f"num_neighbors={num_src}] (got {list(shape)})"
        )


class MultiSageConv(MessagePassing):
    r"""The MultiSage convolution from the `"MultiSage: Empowering GCN with
    Contextualized Multi-Embeddings on Web-Scale Multipartite Networks"
    <https://doi.org/10.1145/3394486.3403293>`_ paper (§2.2, Appendix A,
    Algorithm 1).

    Every edge :math:`(u \rightarrow v)` (neighbor :math:`u`, ego :math:`v`)
    carries the dominant context node :math:`o \sim (v, u)` found by the
    contextualized random walk. Target and context features are first
    projected to a common size (the last layer of Eq. 4),

    .. math::
        \mathbf{z}_t = \mathrm{ReLU}(\mathbf{W}_t \mathbf{x}_t + \mathbf{b}_t),
        \qquad
        \mathbf{z}_c = \mathrm{ReLU}(\mathbf{W}_c \mathbf{x}_c + \mathbf{b}_c),

    then contextualized (Eq. 5) with :obj:`combine` = :obj:`"mask"`
    (:math:`\mathbf{z}_{t|c} = \mathbf{z}_t \otimes \mathbf{z}_c`),
    :obj:`"trans"` (:math:`\mathbf{z}_t \oplus \mathbf{z}_c`) or
    :obj:`"concat"`
    (:math:`\mathrm{ReLU}(\mathbf{W}_p [\mathbf{z}_t \,\Vert\, \mathbf{z}_c]
    + \mathbf{b}_p)`). The three-way contextual attention of Eq. 6, for each
    head :math:`d`, is

    .. math::
        \alpha^{(d)}(v, o, u) = \mathrm{softmax}_{u \in \mathcal{N}_v}\Big(
        \mathbf{a}^{(d)\top} \tau\big(\mathbf{W}^{(d)}_{at} \mathbf{z}_t(v) +
        \mathbf{W}^{(d)}_{ac} \mathbf{z}_c(o) +
        \mathbf{W}^{(d)}_{at} \mathbf{z}_t(u)\big) + \log w_{vu} \Big),

    with :math:`\tau` the LeakyReLU and :math:`w_{vu}` the optional edge
    weight. Eq. 7 averages the heads and aggregates the contextualized ego
    and neighbor embeddings,

    .. math::
        \mathbf{z}_{\mathcal{N}_v}(x) = \sigma\Big(\frac{1}{D}\sum_{d=1}^{D}
        \sum_{u \in \mathcal{N}_v} \alpha^{(d)}(v, o, u)\,
        \mathbf{z}_{t|c}(x, o)\Big), \quad x \in \{v, u\},

    and Algorithm 1 (lines 5–6) returns
    :math:`\mathbf{h}_v = \mathbf{z}_{\mathcal{N}_v}(v) +
    \mathbf{z}_{\mathcal{N}_v}(u)`, optionally L2-normalized.

    **Shared or separate target weights.** Eq. 4 embeds every target node,
    ego and neighbor alike, with the same :math:`\mathbf{W}_t`
    (:obj:`share_weights=True`, the paper). The ego and neighbor halves of
    :math:`\mathbf{h}_v` are then added with equal weight, and no parameter
    can make the neighbors count less than the ego without shrinking the ego
    too. With :obj:`share_weights=False` the neighbors get their own last
    layer, :math:`\mathbf{z}_t(u) = \mathbf{W}_n \mathbf{x}_u +
    \mathbf{b}_n` (in Eq. 5–7 wherever :math:`u` appears), as GraphSAGE's
    and PinSage's separate self and neighbor weights and GAT's self term
    have it (PyG's :class:`~torch_geometric.nn.conv.GATv2Conv` calls the
    same choice :obj:`share_weights`). ``docs/comparison.rst`` measures
    both on DBLP.

    **Reading of Eq. 6 and Appendix B.** Appendix B gives the attention
    network on OAG as an FNN :math:`384 \to 64 \to 1` over 128-dimensional
    embeddings: its input is the concatenation
    :math:`[\mathbf{z}_t(v) \Vert \mathbf{z}_c(o) \Vert \mathbf{z}_t(u)]`
    (:math:`3 \times 128 = 384`), its first layer is the block matrix
    :math:`[\mathbf{W}_{at} \,|\, \mathbf{W}_{ac} \,|\, \mathbf{W}_{at}]`
    (:math:`\mathbf{W}_{at}` shared by ego and neighbor, as Eq. 6 states), so
    it equals the sum of the three projections above, followed by
    :math:`\tau` and the output layer :math:`\mathbf{a}` (:math:`64 \to 1`).
    Applying :math:`\tau` after :math:`\mathbf{a}` instead, as Eq. 6 is
    typeset, would make the score a sum of three independent per-node
    scalars (GAT's static attention) and leave the 64-wide hidden layer of
    Appendix B without purpose, so we follow Appendix B.
    :obj:`attention_channels` is that hidden width (64 on OAG, 128 on
    Pinterest).

    **Conventions.**

    * :obj:`context_index[e] = -1` means edge :math:`e` has no context. Then
      :math:`\mathbf{z}_{t|c} = \mathbf{z}_t` for :obj:`"mask"` (a mask of
      ones) and :obj:`"trans"` (adds zero), and the context embedding is the
      zero vector for :obj:`"concat"` and inside the attention.
    * :obj:`edge_weight` (non-negative, e.g. walk visit counts) enters as a
      :math:`\log w` bias of the attention logits, so
      :math:`\alpha \propto w \exp(\cdot)`; with :obj:`attention=None` this is
      the :math:`w`-weighted mean. Zero weights are clamped to
      :math:`10^{-12}`.
    * An ego without neighbors is treated as having a single self-loop
      without context: :math:`\mathbf{h}_v = 2\sigma(\mathbf{z}_{t|c}(v))`
      before normalization. Outputs are never NaN.
    * :obj:`attention="diff"` (the "mask-diff" variant of §3.3.1) uses the
      logits :math:`-\lVert \mathbf{z}_{t|c}(v, o) - \mathbf{z}_{t|c}(u, o)
      \rVert_2` (less weight to more different neighbors), identical for all
      heads; :obj:`attention=None` is the (weighted) mean.

    Args:
        in_channels (int or tuple): Size of each target feature, or a tuple
            ``(source, target)`` for bipartite batches where neighbors and
            egos come from different matrices of the same target type (both
            sizes must agree).
        out_channels (int): Size :math:`F` of :math:`\mathbf{z}_t`,
            :math:`\mathbf{z}_c` and of the output.
        heads (int, optional): Number of attention heads :math:`D`.
            (default: :obj:`1`)
        combine (str, optional): Contextual combination of Eq. 5:
            :obj:`"mask"`, :obj:`"trans"` or :obj:`"concat"`.
            (default: :obj:`"mask"`)
        attention (str or None, optional): :obj:`"three_way"` (Eq. 6),
            :obj:`"diff"` or :obj:`None` (mean). (default: :obj:`"three_way"`)
        normalize (bool, optional): L2-normalize the output (Alg. 1, line 6).
            (default: :obj:`True`)
        context_channels (int, optional): Size of each context feature;
            :obj:`None` means :obj:`in_channels`. (default: :obj:`None`)
        attention_channels (int, optional): Hidden width of the attention
            network (Appendix B). (default: :obj:`64`)
        negative_slope (float, optional): LeakyReLU slope of :math:`\tau`.
            (default: :obj:`0.2`)
        dropout (float, optional): Dropout on the attention weights during
            training. (default: :obj:`0.0`)
        target_relu (bool, optional): Apply Eq. 4's :math:`\mathrm{ReLU}` to
            the last target layer. With it, :math:`\mathbf{z}_t` and
            :math:`\mathbf{z}_c` are non-negative, so are the contextualized
            embeddings, Eq. 7's sigmoids lie in :math:`[0.5, 1)` and every
            pair of outputs has a cosine of at least about 0.8: the
            embedding space collapses into a narrow cone (the paper's own
            Table 2 reports DC* = 0.71 on OAG, which such outputs cannot
            reach). :obj:`False` keeps the last target layer linear: the
            context mask (ReLU on :math:`\mathbf{z}_c`) still zeroes
            dimensions, but masked embeddings are signed and the sigmoids
            use their whole range. (default: :obj:`True`, the literal
            equations)
        act (str, optional): :math:`\sigma` of Eq. 7: :obj:`"sigmoid"` (the
            paper) or :obj:`"tanh"`, the zero-centred sigmoid
            (:math:`\tanh(x) = 2\,\mathrm{sigmoid}(2x) - 1`). Sigmoid outputs
            share a common positive offset, which keeps every pair of
            embeddings at a high cosine; :obj:`"tanh"` removes it.
            (default: :obj:`"sigmoid"`)
        bias (bool, optional): Biases in :math:`\mathbf{W}_t`,
            :math:`\mathbf{W}_c` and :math:`\mathbf{W}_p`.
            (default: :obj:`True`)
        share_weights (bool, optional): Embed neighbors with the egos'
            :math:`\mathbf{W}_t` (Eq. 4, the paper); :obj:`False` gives them
            their own :math:`\mathbf{W}_n` (see above).
            (default: :obj:`True`)
        **kwargs (optional): Additional arguments of
            :class:`torch_geometric.nn.conv.MessagePassing`.

    Shapes:
        - **input:** target features :math:`(|\mathcal{V}|, F_{in})` or
          :math:`((|\mathcal{V}_s|, F_{in}), (|\mathcal{V}_t|, F_{in}))`,
          context features :math:`(|\mathcal{C}|, F_{c})`, edge indices
          :math:`(2, |\mathcal{E}|)` or a sparse adjacency
          :math:`(|\mathcal{V}_t|, |\mathcal{V}_s|)`, context indices
          :math:`(|\mathcal{E}|)`, edge weights :math:`(|\mathcal{E}|)`
          *(optional)*
        - **output:** :math:`(|\mathcal{V}_t|, F)`, or
          :math:`((|\mathcal{V}_t|, F), ((2, |\mathcal{E}|),
          (|\mathcal{E}|, D)))` with :obj:`return_attention_weights=True`.
    """

    def __init__(
        self,
        in_channels: int | tuple[int, int],
        out_channels: int,
        heads: int = 1,
        combine: str = "mask",
        attention: str | None = "three_way",
        normalize: bool = True,
        context_channels: int | None = None,
        attention_channels: int = 64,
        negative_slope: float = 0.2,
        dropout: float = 0.0,
        bias: bool = True,
        target_relu: bool = True,
        act: str = "sigmoid",
        share_weights: bool = True,
        **kwargs,
    ):
        kwargs.setdefault("aggr", "add")
        super().__init__(node_dim=0, **kwargs)
        if isinstance(in_channels, (tuple, list)):
            if in_channels[0] != in_channels[1]:
                raise ValueError(
                    "'in_channels' of source and target must agree (both are "
                    f"target nodes), got {tuple(in_channels)}"
                )
            in_channels = in_channels[0]
        if combine not in COMBINES:
            raise ValueError(f"'combine' must be one of {COMBINES} (got {combine!r})")
        if attention not in ATTENTIONS:
            raise ValueError(
                f"'attention' must be one of {ATTENTIONS} (got {attention!r})"
            )
        if heads < 1 or out_channels < 1 or attention_channels < 1:
            raise ValueError(
                "'heads', 'out_channels' and 'attention_channels' must be >= 1"
            )
        self.in_channels = int(in_channels)
        self.out_channels = out_channels
        self.heads = heads
        self.combine = combine
        self.attention = attention
        self.normalize = normalize
        self.context_channels = (
            self.in_channels if context_channels is None else context_channels
        )
        self.attention_channels = attention_channels
        self.negative_slope = negative_slope
        self.dropout = dropout
        self.target_relu = target_relu
        if act not in ("sigmoid", "tanh"):
            raise ValueError(f"'act' must be 'sigmoid' or 'tanh' (got {act!r})")
        self.act = act
        self._act = torch.sigmoid if act == "sigmoid" else torch.tanh

        # Last layer of Eq. 4 for targets (egos; also neighbors when shared)
        # and contexts.
        self.share_weights = share_weights
        self.lin_t = Linear(self.in_channels, out_channels, bias=bias)
        if share_weights:
            self.register_parameter("lin_n", None)
        else:
            self.lin_n = Linear(self.in_channels, out_channels, bias=bias)
        self.lin_c = Linear(self.context_channels, out_channels, bias=bias)
        if combine == "concat":
            self.lin_p = Linear(2 * out_channels, out_channels, bias=bias)
        else:
            self.register_parameter("lin_p", None)
        if attention == "three_way":
            hc = heads * attention_channels
            self.lin_at = Linear(out_channels, hc, bias=False)
            self.lin_ac = Linear(out_channels, hc, bias=False)
            self.att = Parameter(torch.empty(1, heads, attention_channels))
        else:
            self.register_parameter("lin_at", None)
            self.register_parameter("lin_ac", None)
            self.register_parameter("att", None)
        self.reset_parameters()

    def reset_parameters(self):
        super().reset_parameters()
        self.lin_t.reset_parameters()
        if self.lin_n is not None:
            self.lin_n.reset_parameters()
        self.lin_c.reset_parameters()
        if self.lin_p is not None:
            self.lin_p.reset_parameters()
        if self.lin_at is not None:
            self.lin_at.reset_parameters()
            self.lin_ac.reset_parameters()
            glorot(self.att)

    # Eq. 4 (last layer) ------------------------------------------------------
    def target_embedding(self, x: Tensor) -> Tensor:
        r""":math:`\mathbf{z}_t = \mathrm{ReLU}(\mathbf{W}_t\mathbf{x}_t +
        \mathbf{b}_t)` (Eq. 4, last layer)."""
        z = self.lin_t(x)
        return F.relu(z) if self.target_relu else z

    def neighbor_embedding(self, x: Tensor) -> Tensor:
        r""":math:`\mathbf{z}_t(u)` of neighbors: :meth:`target_embedding`
        with shared weights, else :math:`\mathbf{W}_n \mathbf{x}_u +
        \mathbf{b}_n` (ReLU as :obj:`target_relu`)."""
        if self.lin_n is None:
            return self.target_embedding(x)
        z = self.lin_n(x)
        return F.relu(z) if self.target_relu else z

    def context_embedding(self, x_context: Tensor) -> Tensor:
        r""":math:`\mathbf{z}_c = \mathrm{ReLU}(\mathbf{W}_c\mathbf{x}_c +
        \mathbf{b}_c)` (Eq. 4, last layer)."""
        return F.relu(self.lin_c(x_context))

    def contextualize(self, z: Tensor, z_context: Tensor) -> Tensor:
        r"""Eq. 5: :math:`\mathbf{z}_{t|c}` for matching rows of target and
        context embeddings (a "missing" context must already be the neutral
        element: ones for :obj:`"mask"`, zeros otherwise)."""
        if self.combine == "mask":
            return z * z_context
        if self.combine == "trans":
            return z + z_context
        return F.relu(self.lin_p(torch.cat([z, z_context], dim=-1)))

    def neutral_context(self, z_context: Tensor, has_context: Tensor) -> Tensor:
        """Replace the rows without context by the neutral element of
        :meth:`contextualize` (ones for mask, zeros otherwise)."""
        fill = 1.0 if self.combine == "mask" else 0.0
        return torch.where(
            has_context.unsqueeze(-1), z_context, torch.full_like(z_context, fill)
        )

    # -------------------------------------------------------------------------
    def forward(
        self,
        x: Tensor | tuple[Tensor, Tensor],
        x_context: Tensor,
        edge_index,
        context_index: Tensor,
        edge_weight: Tensor | None = None,
        return_attention_weights: bool | None = None,
    ):
        r"""Runs the forward pass of the module.

        Args:
            x (torch.Tensor or (torch.Tensor, torch.Tensor)): Target node
                features, or a ``(source, target)`` pair.
            x_context (torch.Tensor): Context node features.
            edge_index (torch.Tensor, EdgeIndex or sparse adjacency): Edges
                neighbor → ego, or the sparse ``adj_t``
                ``[num_egos, num_neighbors]`` (COO coalesced, CSR, or
                :class:`torch_sparse.SparseTensor`) whose row-major edge
                order (grouped by ego, neighbors ascending) the per-edge
                inputs follow — the order in which PyG's
                :class:`~torch_geometric.transforms.ToSparseTensor` leaves
                every edge attribute, e.g. a batch's ``context``.
            context_index (torch.Tensor): int64 ``[E]`` index into
                :obj:`x_context` per edge, ``-1`` for none.
            edge_weight (torch.Tensor, optional): Non-negative ``[E]`` edge
                weights. A ``SparseTensor`` with values carries them as its
                values instead (as ``ToSparseTensor(attr="edge_weight")``
                writes them); giving both is an error.
                (default: :obj:`None`)
            return_attention_weights (bool, optional): If :obj:`True`, also
                return ``(edge_index, alpha)`` with ``alpha`` of shape
                ``[E, heads]`` — for a ``SparseTensor`` input, as PyG's
                attention layers do, the adjacency with ``alpha`` as its
                values. (default: :obj:`None`)
        """
        x_src, x_dst = (x, x) if isinstance(x, Tensor) else x
        for name, t in (("x", x_src), ("x", x_dst), ("x_context", x_context)):
            if not isinstance(t, Tensor) or not t.is_floating_point() or t.dim() != 2:
                raise TypeError(f"'{name}' must be a 2-D floating point tensor")
        if x_src.size(-1) != self.in_channels or x_dst.size(-1) != self.in_channels:
            raise ValueError(
                f"'x' has {x_src.size(-1)}/{x_dst.size(-1)} features but "
                f"in_channels={self.in_channels}"
            )
        if x_context.size(-1) != self.context_channels:
            raise ValueError(
                f"'x_context' has {x_context.size(-1)} features but "
                f"context_channels={self.context_channels}"
            )
        num_src, num_dst = x_src.size(0), x_dst.size(0)
        adj = edge_index
        edge_index, ptr, value = read_adjacency(adj, num_src, num_dst)
        num_edges = edge_index.size(1)
        src, dst = edge_index[0], edge_index[1]
        context_index = self._check_context(context_index, num_edges, x_context)
        if value is not None:
            if edge_weight is not None:
                raise ValueError(
                    "edge weights given twice: as the values of the "
                    "SparseTensor 'edge_index' and as 'edge_weight'; pass one"
                )
            edge_weight = value
        if edge_weight is not None:
            edge_weight = self._check_weight(edge_weight, num_edges)
        if not _is_compiling():
            check_edge_index(
                edge_index,
                "edge_index",
                num_src,
                num_dst,
                roles=("neighbor", "ego"),
                size_names=("rows of x_src", "rows of x_dst"),
            )
        # Row pointer of ego-grouped edges for segment reductions, or None.
        ptr = _segment.ego_pointer(dst, num_dst, ptr)

        z_src = self.neighbor_embedding(x_src)
        if x_dst is x_src and self.share_weights:
            z_dst = z_src
        else:
            z_dst = self.target_embedding(x_dst)
        zc = self.context_embedding(x_context)

        has_ctx = context_index >= 0
        ctx = context_index.clamp(min=0)
        if x_context.size(0) > 0:
            zc_e = zc[ctx]
        else:  # no context nodes at all: every edge is "no context"
            zc_e = zc.new_zeros(num_edges, self.out_channels)
        zc_e = self.neutral_context(zc_e, has_ctx)

        # Eq. 6: attention logits [E, heads].
        if self.attention == "three_way":
            H, A = self.heads, self.attention_channels
            p_src = self.lin_at(z_src).view(-1, H, A)
            p_dst = p_src if z_dst is z_src else self.lin_at(z_dst).view(-1, H, A)
            if x_context.size(0) > 0:
                p_ctx = self.lin_ac(zc).view(-1, H, A)[ctx]
                p_ctx = p_ctx * has_ctx.view(-1, 1, 1).to(p_ctx.dtype)
            else:
                p_ctx = p_src.new_zeros(num_edges, H, A)
            hidden = F.leaky_relu(p_dst[dst] + p_ctx + p_src[src], self.negative_slope)
            logits = (hidden * self.att).sum(dim=-1)
        elif self.attention == "diff":
            diff = self.contextualize(z_dst[dst], zc_e) - self.contextualize(
                z_src[src], zc_e
            )
            dist = diff.pow(2).sum(-1).clamp_min(1e-12).sqrt()
            logits = (-dist).unsqueeze(-1).expand(-1, self.heads)
        else:
            logits = z_src.new_zeros(num_edges, self.heads)
        if edge_weight is not None:
            logits = logits + edge_weight.clamp_min(1e-12).log().unsqueeze(-1)
        alpha = _segment.edge_softmax(logits, dst, ptr, num_dst)
        alpha_drop = F.dropout(alpha, p=self.dropout, training=self.training)

        # Eq. 7: head-averaged weighted sums for x = v and x = u.
        out = self.propagate(
            edge_index,
            z=(z_src, z_dst),
            zc=zc_e,
            alpha=alpha_drop.mean(dim=-1),
            size=(num_src, num_dst),
        )
        z_v, z_u = out.split(self.out_channels, dim=-1)
        h = self._act(z_v) + self._act(z_u)

        # Egos without neighbors: one self-loop without context.
        isolated = (_segment.degree(dst, ptr, num_dst) == 0).unsqueeze(-1)
        empty = self.neutral_context(
            z_dst.new_zeros(z_dst.shape), z_dst.new_zeros(num_dst, dtype=torch.bool)
        )
        h_isolated = 2 * self._act(self.contextualize(z_dst, empty))
        h = torch.where(isolated, h_isolated, h)

        if self.normalize:
            h = F.normalize(h, p=2.0, dim=-1)
        if return_attention_weights:
            if WITH_TORCH_SPARSE and isinstance(adj, SparseTensor):
                # As PyG's attention layers: the adjacency with alpha as values.
                return h, adj.set_value(alpha, layout="coo")
            return h, (edge_index, alpha)
        return h

    def message(self, z_i: Tensor, z_j: Tensor, zc: Tensor, alpha: Tensor) -> Tensor:
        ego = self.contextualize(z_i, zc)
        nbr = self.contextualize(z_j, zc)
        return torch.cat([ego, nbr], dim=-1) * alpha.unsqueeze(-1)

    def aggregate(
        self,
        inputs: Tensor,
        index: Tensor,
        dim_size: int | None = None,
    ) -> Tensor:
        """Eq. 7's sum over the neighbors of each ego (torch's
        ``index_add_``, measured faster than ``segment_csr`` on CPU)."""
        if self.aggr != "add":  # a user-chosen aggregation
            return super().aggregate(inputs, index, dim_size=dim_size)
        return _segment.sum_by_ego(inputs, index, int(dim_size))

    def _check_context(self, context_index, num_edges: int, x_context) -> Tensor:
        if not isinstance(context_index, Tensor):
            raise TypeError("'context_index' must be a tensor")
        if context_index.dtype != torch.long:
            raise TypeError(
                f"'context_index' must be int64 (got {context_index.dtype})"
            )
        if context_index.dim() != 1 or context_index.numel() != num_edges:
            raise ValueError(
                f"'context_index' must have shape [{num_edges}] (one per edge), "
                f"got {list(context_index.shape)}"
            )
        if not _is_compiling() and num_edges > 0:
            lo, hi = int(context_index.min()), int(context_index.max())
            if lo < -1 or hi >= x_context.size(0):
                raise ValueError(
                    f"'context_index' values must lie in [-1, {x_context.size(0)}) "
                    f"(-1 = no context), got range [{lo}, {hi}]"
                )
        return context_index

    def _check_weight(self, edge_weight, num_edges: int) -> Tensor:
        if not isinstance(edge_weight, Tensor) or not edge_weight.is_floating_point():
            raise TypeError("'edge_weight' must be a floating point tensor")
        if edge_weight.dim() != 1 or edge_weight.numel() != num_edges:
            raise ValueError(
                f"'edge_weight' must have shape [{num_edges}], "
                f"got {list(edge_weight.shape)}"
            )
        if not _is_compiling() and num_edges > 0 and bool((edge_weight < 0).any()):
            raise ValueError("'edge_weight' must be non-negative")
        return edge_weight

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, "
            f"heads={self.heads}, combine={self.combine!r}, "
            f"attention={self.attention!r}, share_weights={self.share_weights})"
        )
