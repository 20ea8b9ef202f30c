"""The OmniSage transformer aggregator (OmniSage, KDD 2025, §3.2, A.3.1)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.typing import EdgeType

from pyg_multisage._checks import check_edge_index
from pyg_multisage.nn.conv.multisage_conv import read_adjacency
from pyg_multisage.nn.mlp import encode_rows, mlp


def _key(edge_type: EdgeType) -> str:
    return "__".join(edge_type)


def order_slots(
    edge_index: Tensor,
    edge_weight: Tensor | None,
    num_egos: int,
    num_slots: int,
) -> tuple[Tensor, Tensor, Tensor]:
    r"""Assign neighbor slots by importance (OmniSage §3.2:
    :math:`s(u, v_1) \geq s(u, v_2) \geq \dots`).

    Edges are grouped by ego (``edge_index[1]``) and ranked by
    :obj:`edge_weight` descending, ties by edge order (all equal without
    weights); only the first :obj:`num_slots` of each ego get a slot.

    Returns:
        ``(edge_id, ego, rank)`` of the kept edges, ``rank < num_slots``.
    """
    num_edges = edge_index.size(1)
    dst = edge_index[1]
    if edge_weight is None:
        perm = torch.arange(num_edges, device=dst.device)
    else:
        perm = torch.argsort(-edge_weight, stable=True)
    perm = perm[torch.argsort(dst[perm], stable=True)]
    ego = dst[perm]
    count = torch.bincount(ego, minlength=num_egos)
    start = torch.cumsum(count, 0) - count
    rank = torch.arange(num_edges, device=dst.device) - start[ego]
    keep = rank < num_slots
    return perm[keep], ego[keep], rank[keep]


class OmniSageConv(torch.nn.Module):
    r"""The OmniSage embedder :math:`f_t` of one entity type from the
    `"OmniSage: Large Scale, Multi-Entity Heterogeneous Graph Representation
    Learning" <https://doi.org/10.1145/3711896.3737253>`_ paper (§3.2,
    A.3.1).

    For an ego :math:`u` of type :obj:`ego_type`, the neighbors of every
    neighbor edge type (one relation subset and node type, e.g. the
    ``('board', 'ppr_pin_board', 'pin')`` edges written by
    :class:`PPRNeighbors`) are ordered by importance score,
    :math:`s(u, v_1) \geq s(u, v_2) \geq \dots`, and fill at most
    :obj:`num_slots[edge_type]` slots. The token sequence is

    .. math::
        [\mathtt{CLS} + g_{t}(\mathbf{x}_u),\;
        g_{t}(\mathbf{x}_u) + \mathbf{e}_{self},\;
        \dots,\; g_{t_v}(\mathbf{x}_{v_i}) + \mathbf{W}_s \log(1 + s_i)
        + \mathbf{e}_{r, i},\; \dots]

    with per-node-type MLP projections :math:`g_t`, the learned score feature
    :math:`\mathbf{W}_s \log(1 + s)`, and a learned slot embedding
    :math:`\mathbf{e}_{r,i}` per edge type :math:`r` and rank :math:`i` (the
    order of the sequence, which a transformer would otherwise ignore).
    Empty slots are padding-masked. The sequence runs through
    :class:`torch.nn.TransformerEncoder` (no causal mask), and the CLS
    output goes through an MLP head and L2 normalization:
    :math:`f_t(u) = \mathrm{MLP}(\mathbf{h}_{\mathtt{CLS}}) /
    \lVert\cdot\rVert_2`.

    Args:
        in_channels (dict[str, int]): Node type → feature size, for
            :obj:`ego_type` and every neighbor type.
        out_channels (int): Size of the embedding.
        ego_type (str): The entity type :math:`t` this embedder embeds.
        num_slots (dict[tuple[str, str, str], int]): Neighbor edge type
            (``(neighbor_type, relation, ego_type)``) → number of slots.
        hidden_channels (int, optional): Transformer width.
            (default: :obj:`768`)
        heads (int, optional): Attention heads. (default: :obj:`12`)
        num_layers (int, optional): Transformer layers. (default: :obj:`1`)
        mlp_channels (int, optional): Transformer feed-forward size.
            (default: :obj:`3072`)
        dropout (float, optional): Transformer dropout. (default: :obj:`0.0`)
        normalize (bool, optional): L2-normalize the output.
            (default: :obj:`True`)
        proj_layers (int, optional): Linear layers of the token projections
            :math:`g_t` (ReLU between). (default: :obj:`1`)
        head_layers (int, optional): Linear layers of the head.
            (default: :obj:`1`)
        ego_cls (bool, optional): Start the CLS token from the ego's
            projection, :math:`\mathtt{CLS} = \mathbf{c} + g_t(\mathbf{x}_u)`,
            instead of the constant :math:`\mathbf{c}` alone. With a
            constant CLS, the CLS output at initialization carries the ego
            only through one attention average, and deeper ReLU projections
            and head push every embedding into one direction (mean cosine
            0.95 between random synthetic targets): the sampled softmax
            starts at the loss of uniform scores and does not leave it. The
            defaults (linear projections and head, ego in the CLS token) are
            the ones that learned in that diagnosis (``docs/comparison.rst``).
            (default: :obj:`True`)
        update_gate (bool, optional): Scale the last layer's attention
            update of the CLS token by a learned per-channel gate
            :math:`\boldsymbol{\gamma}`, initialized at zero (as ReZero
            does for whole layers):
            :math:`\mathbf{h} = \mathtt{CLS} + \boldsymbol{\gamma} \odot
            \mathrm{Attn}(\cdot)`, then the feed-forward block. At
            initialization the embedding is then the ego's own
            :math:`\mathbf{c} + g_t(\mathbf{x}_u)` through the feed-forward
            block, and the neighbors enter as fast as the gate learns to open,
            instead of many neighbor tokens outweighing the ego's own token
            from the first step (``docs/omnisage.rst``). Not in the paper.
            (default: :obj:`False`)
        metadata (tuple, optional): The graph's ``(node_types, edge_types)``
            (``data.metadata()``); when given, every edge type of
            :obj:`num_slots` must be one of its edge types, so a misspelled
            edge type fails here instead of leaving its slots empty.
            (default: :obj:`None`)
    """

    def __init__(
        self,
        in_channels: Mapping[str, int],
        out_channels: int,
        ego_type: str,
        num_slots: Mapping[EdgeType, int],
        hidden_channels: int = 768,
        heads: int = 12,
        num_layers: int = 1,
        mlp_channels: int = 3072,
        dropout: float = 0.0,
        normalize: bool = True,
        metadata: tuple[Sequence[str], Sequence[EdgeType]] | None = None,
        proj_layers: int = 1,
        head_layers: int = 1,
        ego_cls: bool = True,
        update_gate: bool = False,
    ):
        super().__init__()
        if ego_type not in in_channels:
            raise ValueError(f"'in_channels' lacks the ego type {ego_type!r}")
        if metadata is not None:
            known = [tuple(et) for et in metadata[1]]
            for et in num_slots:
                if tuple(et) not in known:
                    raise ValueError(
                        f"num_slots names edge type {tuple(et)}, which the "
                        f"graph's metadata lacks (edge types: {known})"
                    )
        for et, k in num_slots.items():
            if len(et) != 3 or et[2] != ego_type:
                raise ValueError(
                    f"neighbor edge type {et} must point to the ego type "
                    f"{ego_type!r} (neighbor -> ego)"
                )
            if et[0] not in in_channels:
                raise ValueError(f"'in_channels' lacks the neighbor type {et[0]!r}")
            if int(k) < 1:
                raise ValueError(f"'num_slots[{et}]' must be >= 1 (got {k})")
        if proj_layers < 1 or head_layers < 1:
            raise ValueError(
                f"'proj_layers' and 'head_layers' must be >= 1 (got "
                f"{proj_layers}, {head_layers})"
            )
        if hidden_channels % heads != 0:
            raise ValueError(
                f"'hidden_channels' ({hidden_channels}) must be divisible by "
                f"'heads' ({heads})"
            )
        self.in_channels = dict(in_channels)
        self.out_channels = out_channels
        self.ego_type = ego_type
        self.num_slots = {tuple(et): int(k) for et, k in num_slots.items()}
        self.hidden_channels = hidden_channels
        self.heads = heads
        self.num_layers = num_layers
        self.mlp_channels = mlp_channels
        self.normalize = normalize
        self.ego_cls = ego_cls

        used = {ego_type} | {et[0] for et in self.num_slots}
        self.proj = torch.nn.ModuleDict(
            {
                t: mlp([self.in_channels[t]] + [hidden_channels] * proj_layers)
                for t in sorted(used)
            }
        )
        self.cls = torch.nn.Parameter(torch.empty(hidden_channels))
        self.self_emb = torch.nn.Parameter(torch.empty(hidden_channels))
        self.score = torch.nn.Linear(1, hidden_channels)
        self.slot_emb = torch.nn.ModuleDict(
            {
                _key(et): torch.nn.Embedding(k, hidden_channels)
                for et, k in self.num_slots.items()
            }
        )
        layer = torch.nn.TransformerEncoderLayer(
            hidden_channels,
            heads,
            mlp_channels,
            dropout=dropout,
            activation="relu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = torch.nn.TransformerEncoder(
            layer, num_layers, enable_nested_tensor=False
        )
        self.head = mlp([hidden_channels] * head_layers + [out_channels])
        # A parameter only when used, so checkpoints without it still load.
        self.update_gate = (
            torch.nn.Parameter(torch.empty(hidden_channels)) if update_gate else None
        )
        self.reset_parameters()

    @property
    def seq_len(self) -> int:
        """Sequence length: CLS, self and all neighbor slots."""
        return 2 + sum(self.num_slots.values())

    def reset_parameters(self):
        torch.nn.init.normal_(self.cls, std=0.02)
        torch.nn.init.normal_(self.self_emb, std=0.02)
        if self.update_gate is not None:
            torch.nn.init.zeros_(self.update_gate)
        for module in self.modules():
            if module is self:
                continue
            if isinstance(module, torch.nn.Embedding):
                torch.nn.init.normal_(module.weight, std=0.02)
            elif isinstance(module, torch.nn.Linear):
                module.reset_parameters()
        for layer in self.encoder.layers:
            layer.self_attn._reset_parameters()
            layer.norm1.reset_parameters()
            layer.norm2.reset_parameters()

    def tokens(
        self,
        x_dict: Mapping[str, Tensor],
        edge_index_dict: Mapping[EdgeType, Tensor],
        edge_weight_dict: Mapping[EdgeType, Tensor] | None = None,
        num_egos: int | None = None,
    ) -> tuple[Tensor, Tensor]:
        """The input sequence ``[num_egos, seq_len, hidden]`` and its padding
        mask ``[num_egos, seq_len]`` (:obj:`True` = empty slot)."""
        x_ego = self._features(x_dict, self.ego_type)
        if num_egos is None:
            num_egos = x_ego.size(0)
        if not 0 <= num_egos <= x_ego.size(0):
            raise ValueError(
                f"'num_egos' must lie in [0, {x_ego.size(0)}] (got {num_egos})"
            )
        H, L = self.hidden_channels, self.seq_len
        seq = x_ego.new_zeros(num_egos, L, H)
        mask = torch.ones(num_egos, L, dtype=torch.bool, device=x_ego.device)
        mask[:, :2] = False
        ego = self.proj[self.ego_type](x_ego[:num_egos])
        seq[:, 0] = self.cls + ego if self.ego_cls else self.cls
        seq[:, 1] = ego + self.self_emb

        missing = [et for et in self.num_slots if et not in edge_index_dict]
        if missing:
            raise ValueError(
                f"edge_index_dict lacks the edge types {missing} of num_slots "
                f"(it has {list(edge_index_dict)}); pass an empty [2, 0] "
                f"edge_index for an edge type without neighbors"
            )
        offset = 2
        for et, k in self.num_slots.items():
            edge_index = edge_index_dict[et]
            x_src = self._features(x_dict, et[0])
            weight = None if edge_weight_dict is None else edge_weight_dict.get(et)
            edge_index, weight = self._read_edges(et, edge_index, weight, x_src)
            self._check_edges(et, edge_index, weight, x_src.size(0), num_egos)
            eid, ego, rank = order_slots(edge_index, weight, num_egos, k)
            w = (
                x_src.new_ones(eid.numel())
                if weight is None
                else weight[eid].to(x_src.dtype)
            )
            token = (
                # Each distinct neighbor projected once (they repeat across egos).
                encode_rows(self.proj[et[0]], x_src, edge_index[0, eid])
                + self.score(torch.log1p(w).unsqueeze(-1))
                + self.slot_emb[_key(et)](rank)
            )
            seq = seq.index_put((ego, offset + rank), token)
            mask = mask.index_put(
                (ego, offset + rank), torch.zeros_like(rank, dtype=torch.bool)
            )
            offset += k
        return seq, mask

    def forward(
        self,
        x_dict: Mapping[str, Tensor],
        edge_index_dict: Mapping[EdgeType, Tensor],
        edge_weight_dict: Mapping[EdgeType, Tensor] | None = None,
        num_egos: int | None = None,
    ) -> Tensor:
        r"""Runs the forward pass of the module.

        Args:
            x_dict (dict[str, torch.Tensor]): Node type → features.
            edge_index_dict (dict[tuple, torch.Tensor]): Neighbor edge type →
                ``[2, E]`` edges neighbor → ego (local indices), or a sparse
                ``adj_t`` ``[num_egos, num_neighbors]`` (a
                :class:`torch_sparse.SparseTensor`, or a coalesced COO / CSR
                :obj:`torch.sparse` tensor) read in row-major order. Edge
                types not in :obj:`num_slots` are ignored; every edge type of
                :obj:`num_slots` must be present (an empty one leaves its
                slots empty; a missing one is an error, as it is usually a
                misspelled edge type).
            edge_weight_dict (dict[tuple, torch.Tensor], optional): Edge type →
                non-negative importance scores ``[E]`` (in row-major order
                for a sparse adjacency). A ``SparseTensor`` with values
                carries the scores as its values instead; giving both is an
                error. Ties in the score keep the edge order.
                (default: :obj:`None`)
            num_egos (int, optional): Embed the first :obj:`num_egos` nodes of
                :obj:`ego_type` (e.g. a batch's seeds); all by default.

        Returns:
            ``[num_egos, out_channels]`` embeddings.
        """
        seq, mask = self.tokens(x_dict, edge_index_dict, edge_weight_dict, num_egos)
        h = self.head(self.cls_output(seq, mask))
        if self.normalize:
            h = F.normalize(h, p=2.0, dim=-1)
        return h

    def cls_output(self, seq: Tensor, mask: Tensor) -> Tensor:
        r"""The CLS row of ``self.encoder(seq, src_key_padding_mask=mask)``,
        ``[num_egos, hidden]``, computed as the encoder would but with the
        last layer evaluated for the CLS query alone.

        Only :math:`\mathbf{h}_{\mathtt{CLS}}` reaches the head, and in the
        last layer it depends on the other tokens only through their keys
        and values. So that layer projects keys and values for every token
        but runs the query projection, attention output, feed-forward block
        and both residuals for one token instead of ``seq_len``: about a
        quarter of a full layer's work on DBLP's 32-token sequences. Earlier
        layers (``num_layers > 1``) run in full. Results equal the full
        encoder's to float rounding, forward and backward (tested),
        including dropout's place (not its random draws). With
        :obj:`update_gate`, that layer's attention update is scaled by the
        gate (the encoder alone has no gate).
        """
        layers = self.encoder.layers
        for layer in layers[:-1]:
            seq = layer(seq, src_key_padding_mask=mask)
        layer = layers[-1]
        attn = layer.self_attn
        heads, hidden = attn.num_heads, attn.embed_dim
        b, length = seq.shape[:2]
        h = layer.norm1(seq)
        w, bias = attn.in_proj_weight, attn.in_proj_bias
        q = F.linear(h[:, :1], w[:hidden], bias[:hidden])
        kv = F.linear(h, w[hidden:], bias[hidden:])
        k, v = kv.split(hidden, dim=-1)

        def split_heads(t: Tensor) -> Tensor:
            return t.view(b, t.size(1), heads, hidden // heads).transpose(1, 2)

        drop = attn.dropout if self.training else 0.0
        ctx = F.scaled_dot_product_attention(
            split_heads(q),
            split_heads(k),
            split_heads(v),
            attn_mask=~mask.view(b, 1, 1, length),
            dropout_p=drop,
        )
        ctx = ctx.transpose(1, 2).reshape(b, hidden)
        update = layer.dropout1(attn.out_proj(ctx))
        if self.update_gate is not None:
            update = self.update_gate * update
        x = seq[:, 0] + update
        ff = layer.linear2(
            layer.dropout(layer.activation(layer.linear1(layer.norm2(x))))
        )
        return x + layer.dropout2(ff)

    def _features(self, x_dict: Mapping[str, Tensor], node_type: str) -> Tensor:
        if node_type not in x_dict:
            raise KeyError(f"'x_dict' lacks node type {node_type!r}")
        x = x_dict[node_type]
        if not isinstance(x, Tensor) or not x.is_floating_point() or x.dim() != 2:
            raise TypeError(f"'x_dict[{node_type!r}]' must be a 2-D float tensor")
        if x.size(-1) != self.in_channels[node_type]:
            raise ValueError(
                f"'x_dict[{node_type!r}]' has {x.size(-1)} features but "
                f"in_channels[{node_type!r}]={self.in_channels[node_type]}"
            )
        return x

    @staticmethod
    def _read_edges(et, adj, weight, x_src) -> tuple[Tensor, Tensor | None]:
        """A ``[2, E]`` edge_index from any adjacency format (a sparse
        ``adj_t`` is read row-major, its row count taken as is), and the
        edge weights, from a ``SparseTensor``'s values if it has any."""
        if isinstance(adj, Tensor) and adj.layout == torch.strided:
            return adj, weight
        shape = adj.sizes() if hasattr(adj, "sizes") else adj.shape
        edge_index, _, value = read_adjacency(adj, x_src.size(0), int(shape[0]))
        if value is not None:
            if weight is not None:
                raise ValueError(
                    f"edge weights of {et} given twice: as the values of its "
                    "SparseTensor adjacency and in 'edge_weight_dict'"
                )
            weight = value
        return edge_index, weight

    @staticmethod
    def _check_edges(et, edge_index, weight, num_src: int, num_egos: int) -> None:
        if not isinstance(edge_index, Tensor):
            raise TypeError(
                f"edge_index of {et} must be a tensor, got {type(edge_index).__name__}"
            )
        check_edge_index(edge_index, f"edge_index of {et}", int64=True)
        if weight is not None:
            if not weight.is_floating_point() or weight.shape != (edge_index.size(1),):
                raise ValueError(
                    f"edge_weight of {et} must be a float tensor of shape "
                    f"[{edge_index.size(1)}]"
                )
            if bool((weight < 0).any()):
                raise ValueError(f"edge_weight of {et} must be non-negative")
        check_edge_index(
            edge_index,
            f"edge_index of {et}",
            num_src,
            num_egos,
            roles=("neighbor", "ego"),
            size_names=(f"the rows of x_dict['{et[0]}']", "num_egos"),
        )

    def __repr__(self) -> str:
        slots: dict[str, int] = {_key(et): k for et, k in self.num_slots.items()}
        return (
            f"{self.__class__.__name__}(ego_type={self.ego_type!r}, "
            f"out_channels={self.out_channels}, slots={slots}, "
            f"hidden={self.hidden_channels}, heads={self.heads}, "
            f"layers={self.num_layers}, mlp={self.mlp_channels})"
        )
