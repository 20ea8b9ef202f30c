r"""OmniSage's contrastive tasks (§3.3) and their weighted objective (Eq. 6).

Every task reuses :func:`~pyg_multisage.losses.sampled_softmax_loss`
(OmniSage Eq. 1). Tasks do not know the model: they receive embeddings, or an
``embed(node_type, ids) -> Tensor`` callable that runs the model, so any
embedder (an :class:`~torch.nn.Module`, a lookup table, MultiSage or
OmniSage) can be trained with them.

* :class:`EntityEntityTask` — Eq. 2: query–positive pairs from several
  weighted sources (graph neighborhoods, user-supplied engagement pairs),
  random negatives of the positive's type.
* :class:`EntityFeatureTask` — Eq. 3: per-feature-type MLP encoders
  :math:`g_x` contrasted with the node embedding.
* :class:`UserEntityTask` — Eq. 4–5: a causal transformer over a user's
  sequence of entity embeddings, next-action and future-action losses.
* :class:`MultiTaskObjective` — Eq. 6.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from pyg_multisage.losses import (
    CountMinSketch,
    candidate_log_q,
    sampled_softmax_loss,
)
from pyg_multisage.nn.mlp import encode_rows, mlp

__all__ = [
    "EntityEntityBatch",
    "EntityEntityTask",
    "EntityFeatureTask",
    "MultiTaskObjective",
    "PairSource",
    "UserEntityTask",
]

EmbedFn = Callable[[str, Tensor], Tensor]


# ---------------------------------------------------------------------------
# Entity–entity (Eq. 2)
# ---------------------------------------------------------------------------


@dataclass
class PairSource:
    r"""One data source :math:`\mathcal{D}^{(i)}_{\text{pair}}` of Eq. 2.

    Args:
        name (str): Name of the source (used in logged losses).
        query_type (str): Node type :math:`t_q` of the queries.
        positive_type (str): Node type :math:`t_p` of the positives (and of
            the negatives drawn for this source).
        pairs (torch.Tensor): ``int64`` :math:`[2, M]`: row 0 query ids,
            row 1 positive ids.
        weight (float, optional): The source's weight :math:`w_i`.
            (default: :obj:`1.0`)
        probability (torch.Tensor, optional): Non-negative sampling weights
            of the :math:`M` pairs (e.g. visit counts or engagement counts);
            uniform when :obj:`None`. (default: :obj:`None`)
    """

    name: str
    query_type: str
    positive_type: str
    pairs: Tensor
    weight: float = 1.0
    probability: Tensor | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.pairs, Tensor):
            self.pairs = torch.as_tensor(self.pairs)
        if self.pairs.is_floating_point() or self.pairs.dtype == torch.bool:
            raise TypeError(f"pairs of source {self.name!r} must hold integer ids")
        if self.pairs.dim() != 2 or self.pairs.shape[0] != 2:
            raise ValueError(
                f"pairs of source {self.name!r} must have shape [2, M], "
                f"got {list(self.pairs.shape)}"
            )
        if self.pairs.shape[1] == 0:
            raise ValueError(f"source {self.name!r} holds no pairs")
        self.pairs = self.pairs.to(torch.int64)
        if int(self.pairs.min()) < 0:
            raise ValueError(f"pairs of source {self.name!r} hold a negative id")
        if self.weight < 0:
            raise ValueError(f"weight of source {self.name!r} must be >= 0")
        if self.probability is not None:
            p = torch.as_tensor(self.probability, dtype=torch.float64)
            if p.shape != (self.pairs.shape[1],) or bool((p < 0).any()) or p.sum() <= 0:
                raise ValueError(
                    f"probability of source {self.name!r} must be [M] non-negative "
                    "weights with a positive sum"
                )
            self.probability = p

    @classmethod
    def from_edge_index(
        cls,
        name: str,
        edge_index: Tensor,
        *,
        query_type: str,
        positive_type: str,
        weight: float = 1.0,
        edge_weight: Tensor | None = None,
    ) -> PairSource:
        r"""Pairs from an importance-neighbor edge type (graph neighborhoods).

        Follows the package's flow: ``edge_index[0]`` is the neighbor
        (positive), ``edge_index[1]`` the ego (query). :obj:`edge_weight`
        (visit counts, PPR scores), when given, weights the sampling.
        """
        edge_index = torch.as_tensor(edge_index)
        if edge_index.dim() != 2 or edge_index.shape[0] != 2:
            raise ValueError(
                f"edge_index must have shape [2, E], got {list(edge_index.shape)}"
            )
        return cls(
            name,
            query_type,
            positive_type,
            torch.stack([edge_index[1], edge_index[0]]),
            weight,
            edge_weight,
        )

    def sample(
        self, batch_size: int, generator: torch.Generator | None = None
    ) -> Tensor:
        """``[2, batch_size]`` pairs drawn with replacement."""
        m = self.pairs.shape[1]
        if self.probability is None:
            idx = torch.randint(0, m, (batch_size,), generator=generator)
        else:
            idx = torch.multinomial(
                self.probability, batch_size, replacement=True, generator=generator
            )
        return self.pairs[:, idx]


@dataclass
class EntityEntityBatch:
    """A sampled batch of :class:`EntityEntityTask`: pairs per source and
    random negatives per node type."""

    pairs: dict[str, Tensor]
    negatives: dict[str, Tensor]


class EntityEntityTask(nn.Module):
    r"""The entity–entity task of OmniSage §3.3.1, Eq. 2.

    .. math::
        L_{\text{pair}} = \sum_i \mathbb{E}_{(q, p, N) \sim
        \mathcal{D}^{(i)}_{\text{pair}}} \big[ w_i \, L(f_{t_q}(q),
        f_{t_p}(p), f_{t_p}(N)) \big]

    Each batch draws :obj:`batch_size` pairs from every source and
    :obj:`num_negatives` uniform random negatives per positive node type
    (shared by the sources with that type). Each source's loss uses the
    in-batch positives of the same source plus the random negatives;
    duplicates of a positive among them are masked by id. With
    :obj:`log_q_correction`, one :class:`CountMinSketch` per positive type
    tracks how often every node appears as a candidate and corrects the
    scores (OmniSage §3.3).

    Args:
        sources (Sequence[PairSource]): The data sources.
        num_nodes (Mapping[str, int]): Number of nodes of each node type
            (bounds the ids; the range of random negatives).
        num_negatives (int, optional): Random negatives per positive type
            and batch. (default: :obj:`256`)
        temperature (float, optional): :math:`\lambda` of Eq. 1.
            (default: :obj:`1.0`)
        chunk_size (int, optional): Chunked loss (Algorithm 1).
            (default: :obj:`None`)
        log_q_correction (bool, optional): Apply the logQ correction.
            (default: :obj:`False`)
        sketch_width (int, optional): Width of each sketch.
            (default: :obj:`2 ** 18`)
        sketch_depth (int, optional): Depth of each sketch.
            (default: :obj:`4`)
    """

    def __init__(
        self,
        sources: Sequence[PairSource],
        num_nodes: Mapping[str, int],
        num_negatives: int = 256,
        temperature: float = 1.0,
        chunk_size: int | None = None,
        log_q_correction: bool = False,
        sketch_width: int = 2**18,
        sketch_depth: int = 4,
    ) -> None:
        super().__init__()
        if len(sources) == 0:
            raise ValueError("sources must not be empty")
        names = [s.name for s in sources]
        if len(set(names)) != len(names):
            raise ValueError(f"source names must be unique, got {names}")
        for s in sources:
            for t in (s.query_type, s.positive_type):
                if t not in num_nodes:
                    raise ValueError(f"num_nodes has no entry for node type {t!r}")
            if int(s.pairs[0].max()) >= num_nodes[s.query_type]:
                raise ValueError(f"source {s.name!r} holds a query id >= num_nodes")
            if int(s.pairs[1].max()) >= num_nodes[s.positive_type]:
                raise ValueError(f"source {s.name!r} holds a positive id >= num_nodes")
        if num_negatives < 0:
            raise ValueError(f"num_negatives must be >= 0, got {num_negatives}")
        self.sources = list(sources)
        self.num_nodes = dict(num_nodes)
        self.num_negatives = int(num_negatives)
        self.temperature = float(temperature)
        self.chunk_size = chunk_size
        self.positive_types = sorted({s.positive_type for s in sources})
        self.sketches = nn.ModuleDict()
        if log_q_correction:
            for t in self.positive_types:
                self.sketches[t] = CountMinSketch(sketch_width, sketch_depth)

    def sample(
        self, batch_size: int, generator: torch.Generator | None = None
    ) -> EntityEntityBatch:
        """Draws one batch: pairs of every source, negatives of every type."""
        pairs = {s.name: s.sample(batch_size, generator) for s in self.sources}
        negatives = {
            t: torch.randint(
                0, self.num_nodes[t], (self.num_negatives,), generator=generator
            )
            for t in self.positive_types
        }
        return EntityEntityBatch(pairs, negatives)

    def forward(self, embed: EmbedFn, batch: EntityEntityBatch) -> tuple[Tensor, dict]:
        r"""Returns :math:`L_{\text{pair}}` and the loss of every source
        (keys ``pair/<name>``, unweighted).

        :obj:`embed` is called once per node type, on the unique ids of the
        batch of that type.
        """
        needed: dict[str, list[Tensor]] = {}
        for s in self.sources:
            q, p = batch.pairs[s.name]
            needed.setdefault(s.query_type, []).append(q)
            needed.setdefault(s.positive_type, []).append(p)
        for t, n in batch.negatives.items():
            needed.setdefault(t, []).append(n)
        emb, where = {}, {}
        for t, parts in needed.items():
            ids = torch.cat(parts)
            uniq, inv = torch.unique(ids, return_inverse=True)
            emb[t] = embed(t, uniq)
            if emb[t].dim() != 2 or emb[t].shape[0] != uniq.numel():
                raise ValueError(
                    f"embed({t!r}, ids) must return [len(ids), d], "
                    f"got {list(emb[t].shape)}"
                )
            offsets = torch.tensor([0] + [len(x) for x in parts]).cumsum(0)
            where[t] = [inv[offsets[i] : offsets[i + 1]] for i in range(len(parts))]
        taken = {t: 0 for t in needed}

        def take(t: str) -> Tensor:
            i = where[t][taken[t]]
            taken[t] += 1
            return emb[t][i.to(emb[t].device)]

        losses: dict[str, Tensor] = {}
        query_pos = [(take(s.query_type), take(s.positive_type)) for s in self.sources]
        for s, (qe, pe) in zip(self.sources, query_pos, strict=True):
            t = s.positive_type
            neg_ids = batch.negatives.get(t)
            neg = (
                emb[t][where[t][-1].to(emb[t].device)] if neg_ids is not None else None
            )
            if neg is not None and neg.shape[0] == 0:
                neg, neg_ids = None, None
            pos_ids = batch.pairs[s.name][1]
            log_q = None
            if t in self.sketches:
                log_q = candidate_log_q(
                    self.sketches[t],
                    pos_ids,
                    neg_ids,
                    update=self.training,
                    device=qe.device,
                )
            losses[f"pair/{s.name}"] = sampled_softmax_loss(
                qe,
                pe,
                neg,
                temperature=self.temperature,
                log_q=log_q,
                chunk_size=self.chunk_size,
                positive_ids=pos_ids,
                negative_ids=neg_ids,
            )
        total = sum(s.weight * losses[f"pair/{s.name}"] for s in self.sources)
        return total, {k: v.detach() for k, v in losses.items()}

    def __repr__(self) -> str:
        src = ", ".join(
            f"{s.name}: {s.query_type}->{s.positive_type} (w={s.weight})"
            for s in self.sources
        )
        return (
            f"{self.__class__.__name__}([{src}], num_negatives={self.num_negatives}, "
            f"temperature={self.temperature}, "
            f"log_q_correction={len(self.sketches) > 0})"
        )


# ---------------------------------------------------------------------------
# Entity–feature (Eq. 3)
# ---------------------------------------------------------------------------


class EntityFeatureTask(nn.Module):
    r"""The entity–feature task of OmniSage §3.3.2, Eq. 3.

    .. math::
        L_{\text{feat}} = \mathbb{E}_{(u, N)} \Big[ \frac{1}{|\mathcal{X}_u|}
        \sum_{x \in \mathcal{X}_u} L(g_x(u), f_{t_u}(u), f_{t_u}(N)) \Big]

    One MLP encoder :math:`g_x` per feature type (A.3.2: ReLU, no
    normalization). Rows of a feature type may belong to the node itself or
    to its sampled neighbors (``owner`` maps each row to the node whose
    embedding is its positive); each node's loss is the mean over all its
    rows, and the task loss the mean over nodes with at least one row —
    exactly Eq. 3 when every node has one row per available feature type.
    The negatives of a row are the other nodes of the batch, each once
    however many rows it owns, plus the optional random negatives; a
    candidate with the id of the row's own node is masked.

    Args:
        feature_channels (Mapping[str, int]): Input width of each feature
            type :math:`x`.
        out_channels (int): Embedding width :math:`d`.
        hidden_channels (int, optional): Hidden width of the encoders.
            (default: :obj:`1024`)
        num_layers (int, optional): Linear layers per encoder.
            (default: :obj:`4`)
        temperature (float, optional): :math:`\lambda` of Eq. 1.
            (default: :obj:`1.0`)
        chunk_size (int, optional): Chunked loss (Algorithm 1).
            (default: :obj:`None`)
    """

    def __init__(
        self,
        feature_channels: Mapping[str, int],
        out_channels: int,
        hidden_channels: int = 1024,
        num_layers: int = 4,
        temperature: float = 1.0,
        chunk_size: int | None = None,
    ) -> None:
        super().__init__()
        if len(feature_channels) == 0:
            raise ValueError("feature_channels must not be empty")
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.feature_channels = dict(feature_channels)
        self.out_channels = int(out_channels)
        self.hidden_channels = int(hidden_channels)
        self.num_layers = int(num_layers)
        self.temperature = float(temperature)
        self.chunk_size = chunk_size
        self.encoders = nn.ModuleDict(
            {
                x: mlp([c] + [hidden_channels] * (num_layers - 1) + [out_channels])
                for x, c in feature_channels.items()
            }
        )

    def reset_parameters(self) -> None:
        for mod in self.modules():
            if isinstance(mod, nn.Linear):
                mod.reset_parameters()

    def forward(
        self,
        features: Mapping[str, Tensor],
        node_emb: Tensor,
        negatives: Tensor | None = None,
        *,
        owner: Mapping[str, Tensor] | None = None,
        node_ids: Tensor | None = None,
        negative_ids: Tensor | None = None,
        index: Mapping[str, Tensor] | None = None,
    ) -> tuple[Tensor, dict]:
        r"""Returns :math:`L_{\text{feat}}` and each feature type's share
        (keys ``feat/<x>``; they sum to the total).

        Args:
            features (Mapping[str, torch.Tensor]): Raw features per type,
                ``[M_x, C_x]``; types a batch lacks are simply left out.
            node_emb (torch.Tensor): Embeddings :math:`f_{t_u}(u)` of the
                batch's nodes :math:`[U, d]`.
            negatives (torch.Tensor, optional): Random negatives
                :math:`f_{t_u}(N)` :math:`[K, d]`.
            owner (Mapping[str, torch.Tensor], optional): Row of
                :obj:`node_emb` each feature row belongs to; default: row
                :math:`i` belongs to node :math:`i`.
            node_ids (torch.Tensor, optional): Ids of the :math:`U` nodes
                (default: their rows), for masking duplicates.
            negative_ids (torch.Tensor, optional): Ids of the negatives.
            index (Mapping[str, torch.Tensor], optional): Per feature type,
                the row of :obj:`features[x]` each feature row reads: then
                :obj:`features[x]` may hold each node once (e.g. a loader
                batch's ``batch[x].x``) and :math:`g_x` encodes every node
                that some row reads once, however many rows read it (the
                loss equals the one with the rows written out). Types
                without an index read :obj:`features[x]` row by row.
        """
        u = node_emb.shape[0]
        rows_of: dict[str, Tensor] = {}
        index = dict(index or {})
        unknown = [x for x in index if x not in features]
        if unknown:
            raise ValueError(f"index names feature types {unknown} not in features")
        for x, feat in features.items():
            if x not in self.encoders:
                raise ValueError(f"unknown feature type {x!r}")
            if feat.dim() != 2 or feat.shape[1] != self.feature_channels[x]:
                raise ValueError(
                    f"features[{x!r}] must have shape [M, {self.feature_channels[x]}], "
                    f"got {list(feat.shape)}"
                )
            num_rows = feat.shape[0]
            if x in index:
                idx = torch.as_tensor(index[x])
                if idx.dim() != 1 or idx.is_floating_point():
                    raise ValueError(f"index[{x!r}] must be a 1-D integer tensor")
                if idx.numel() and (idx.min() < 0 or idx.max() >= num_rows):
                    raise ValueError(
                        f"index[{x!r}] must point to rows of features[{x!r}] "
                        f"(0..{num_rows - 1})"
                    )
                num_rows = idx.numel()
            o = owner[x] if owner is not None and x in owner else None
            if o is None:
                if num_rows > u:
                    raise ValueError(f"features[{x!r}] has more rows than node_emb")
                o = torch.arange(num_rows)
            o = torch.as_tensor(o, dtype=torch.int64).to(node_emb.device)
            if o.shape != (num_rows,) or (o.numel() and (o.min() < 0 or o.max() >= u)):
                raise ValueError(f"owner[{x!r}] must map each row to a row of node_emb")
            rows_of[x] = o
        if not rows_of:
            raise ValueError("features must hold at least one feature type")
        count = torch.zeros(u, device=node_emb.device)
        for o in rows_of.values():
            count.index_add_(0, o, torch.ones_like(o, dtype=count.dtype))
        num_nodes = int((count > 0).sum())
        ids = (
            node_ids
            if node_ids is not None
            else torch.arange(u, device=node_emb.device)
        )
        if negative_ids is not None and node_ids is None:
            raise ValueError("negative_ids needs node_ids")
        # The candidates of every row: each node of the batch once, then the
        # random negatives; the row's own node (and any candidate with its
        # id) is masked from them and scored as the positive instead.
        candidates, candidate_ids = node_emb, ids
        if negatives is not None and negatives.shape[0] > 0:
            if negative_ids is None:  # distinct ids that match no node
                first = int(ids.max()) + 1 if ids.numel() else 0
                negative_ids = torch.arange(
                    first, first + negatives.shape[0], device=ids.device
                )
            candidates = torch.cat([node_emb, negatives])
            candidate_ids = torch.cat([ids, negative_ids.to(ids.device)])
        parts: dict[str, Tensor] = {}
        for x, o in rows_of.items():
            if o.numel() == 0:
                continue
            feat = features[x].to(node_emb.dtype)
            if x in index:
                # Each node read by some row encoded once, then gathered.
                idx = torch.as_tensor(index[x]).to(feat.device)
                query = encode_rows(self.encoders[x], feat, idx)
            else:
                query = self.encoders[x](feat)
            loss = sampled_softmax_loss(
                query,
                node_emb[o],
                candidates,
                temperature=self.temperature,
                chunk_size=self.chunk_size,
                in_batch_negatives=False,
                positive_ids=ids[o.to(ids.device)],
                negative_ids=candidate_ids,
                weight=1.0 / count[o],
                reduction="sum",
            )
            parts[f"feat/{x}"] = loss / num_nodes
        total = sum(parts.values())
        return total, {k: v.detach() for k, v in parts.items()}

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.feature_channels}, "
            f"out_channels={self.out_channels}, "
            f"hidden_channels={self.hidden_channels}, num_layers={self.num_layers})"
        )


# ---------------------------------------------------------------------------
# User–entity (Eq. 4–5)
# ---------------------------------------------------------------------------


class UserEntityTask(nn.Module):
    r"""The user–entity task of OmniSage §3.3.3, Eq. 4–5.

    A causal transformer :math:`T` (A.3.2: pre-norm, GELU, learned
    positions) reads a user's sequence of entity embeddings
    :math:`P_t = f_{t_u}(u_t)` and outputs user embeddings
    :math:`U_t = T([P_1, \dots, P_t])`. Gradients flow through :math:`P`
    into the embedders.

    .. math::
        L_{\text{next}} = \sum_{t} L(U_t, P_{t+1}, f_u(N)), \qquad
        L_{\text{fut}} = \sum_{t} L(U_t, P_{t'}, f_u(N))

    Sequences are right-padded (``mask`` is a valid prefix); padded
    positions are neither queries nor positives. Negatives are the
    positives of the whole batch (in-batch) plus optional random negatives,
    duplicates masked by id. Each loss is averaged over its valid
    positions (Eq. 4–5 sum over :math:`t`; the mean keeps
    :math:`\lambda_s` independent of the sequence length and equals the sum
    up to the constant :math:`1 / \#\text{positions}`).

    Args:
        in_channels (int): Entity embedding width :math:`d`.
        max_length (int): :math:`t_{\max}`.
        hidden_channels (int, optional): Transformer width.
            (default: :obj:`512`)
        num_layers (int, optional): Transformer layers. (default: :obj:`4`)
        heads (int, optional): Attention heads. (default: :obj:`4`)
        dropout (float, optional): Dropout. (default: :obj:`0.0`)
        temperature (float, optional): :math:`\lambda` of Eq. 1.
            (default: :obj:`1.0`)
        chunk_size (int, optional): Chunked loss (Algorithm 1).
            (default: :obj:`None`)
    """

    def __init__(
        self,
        in_channels: int,
        max_length: int,
        hidden_channels: int = 512,
        num_layers: int = 4,
        heads: int = 4,
        dropout: float = 0.0,
        temperature: float = 1.0,
        chunk_size: int | None = None,
    ) -> None:
        super().__init__()
        if max_length < 2:
            raise ValueError(f"max_length must be >= 2, got {max_length}")
        self.in_channels = int(in_channels)
        self.max_length = int(max_length)
        self.hidden_channels = int(hidden_channels)
        self.num_layers = int(num_layers)
        self.heads = int(heads)
        self.temperature = float(temperature)
        self.chunk_size = chunk_size
        self.lin_in = nn.Linear(in_channels, hidden_channels)
        self.pos_emb = nn.Embedding(max_length, hidden_channels)
        layer = nn.TransformerEncoderLayer(
            hidden_channels,
            heads,
            4 * hidden_channels,
            dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.transformer = nn.TransformerEncoder(
            layer,
            num_layers,
            norm=nn.LayerNorm(hidden_channels),
            enable_nested_tensor=False,
        )
        self.lin_out = nn.Linear(hidden_channels, in_channels)

    def user_embeddings(self, seq: Tensor) -> Tensor:
        r"""The user embeddings :math:`U_t` :math:`[B, T, d]` of the
        sequences :math:`[B, T, d]` (position :math:`t` sees :math:`\le t`)."""
        if seq.dim() != 3 or seq.shape[2] != self.in_channels:
            raise ValueError(
                f"seq must have shape [B, T, {self.in_channels}], got {list(seq.shape)}"
            )
        t = seq.shape[1]
        if t > self.max_length:
            raise ValueError(
                f"sequences are longer ({t}) than max_length={self.max_length}"
            )
        h = self.lin_in(seq) + self.pos_emb.weight[:t]
        causal = nn.Transformer.generate_square_subsequent_mask(t, device=seq.device)
        h = self.transformer(h, mask=causal.to(h.dtype), is_causal=True)
        return self.lin_out(h)

    def forward(
        self,
        seq: Tensor,
        mask: Tensor,
        *,
        seq_ids: Tensor | None = None,
        future: Tensor | None = None,
        future_ids: Tensor | None = None,
        negatives: Tensor | None = None,
        negative_ids: Tensor | None = None,
    ) -> tuple[Tensor, dict]:
        r"""Returns :math:`L_{\text{next}} + L_{\text{fut}}` and both parts
        (keys ``next``, ``future``).

        Args:
            seq (torch.Tensor): Entity embeddings :math:`P` :math:`[B, T, d]`.
            mask (torch.Tensor): ``bool`` :math:`[B, T]`, :obj:`True` at
                valid positions (a prefix of each row).
            seq_ids (torch.Tensor, optional): Entity ids :math:`[B, T]`, for
                masking duplicates.
            future (torch.Tensor, optional): Future positive
                :math:`P_{t'}` per user :math:`[B, d]`; no future loss when
                :obj:`None`.
            future_ids (torch.Tensor, optional): Ids of the future positives.
            negatives (torch.Tensor, optional): Random negatives
                :math:`[K, d]`.
            negative_ids (torch.Tensor, optional): Their ids (needs the
                positives' ids).
        """
        b, t = seq.shape[0], seq.shape[1]
        if mask.shape != (b, t) or mask.dtype != torch.bool:
            raise ValueError(f"mask must be a bool tensor of shape [{b}, {t}]")
        if t > 1 and bool((mask[:, 1:] & ~mask[:, :-1]).any()):
            raise ValueError("mask must be right-padded: valid positions form a prefix")
        if seq_ids is not None and seq_ids.shape != (b, t):
            raise ValueError(f"seq_ids must have shape [{b}, {t}]")
        u = self.user_embeddings(seq)
        parts: dict[str, Tensor] = {}
        # Next action (Eq. 4): U_t -> P_{t+1} where both are valid.
        nxt = mask[:, :-1] & mask[:, 1:]
        if bool(nxt.any()):
            ids = seq_ids[:, 1:][nxt] if seq_ids is not None else None
            parts["next"] = sampled_softmax_loss(
                u[:, :-1][nxt],
                seq[:, 1:][nxt],
                negatives,
                temperature=self.temperature,
                chunk_size=self.chunk_size,
                positive_ids=ids,
                negative_ids=negative_ids if ids is not None else None,
            )
        # Future action (Eq. 5): every valid U_t -> the user's P_{t'}.
        if future is not None:
            if future.shape != (b, seq.shape[2]):
                raise ValueError(f"future must have shape [{b}, {seq.shape[2]}]")
            user = torch.arange(b, device=seq.device).unsqueeze(1).expand(b, t)[mask]
            if future_ids is not None:
                ids, neg_ids = future_ids.to(seq.device)[user], negative_ids
            else:  # the user's own future, repeated over t, is no negative
                ids, neg_ids = user, None
            parts["future"] = sampled_softmax_loss(
                u[mask],
                future[user],
                negatives,
                temperature=self.temperature,
                chunk_size=self.chunk_size,
                positive_ids=ids,
                negative_ids=neg_ids,
            )
        if not parts:
            raise ValueError("the batch has no valid next-action pair and no future")
        total = sum(parts.values())
        return total, {k: v.detach() for k, v in parts.items()}

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.in_channels}, "
            f"max_length={self.max_length}, "
            f"hidden_channels={self.hidden_channels}, num_layers={self.num_layers}, "
            f"heads={self.heads})"
        )


# ---------------------------------------------------------------------------
# Overall objective (Eq. 6)
# ---------------------------------------------------------------------------


class MultiTaskObjective(nn.Module):
    r"""The overall OmniSage objective, Eq. 6.

    .. math::
        L_\Theta = \lambda_p L_{\text{pair}} + \lambda_f L_{\text{feat}}
        + \lambda_s \big[ L_{\text{next}} + L_{\text{fut}} \big]

    Terms left out of a call (:obj:`None`) are skipped, so a batch may carry
    any subset of the tasks.

    Args:
        lambda_p (float, optional): Weight of the entity–entity task.
            (default: :obj:`1.0`)
        lambda_f (float, optional): Weight of the entity–feature task.
            (default: :obj:`1.0`)
        lambda_s (float, optional): Weight of the user–entity task.
            (default: :obj:`1.0`)
    """

    def __init__(
        self, lambda_p: float = 1.0, lambda_f: float = 1.0, lambda_s: float = 1.0
    ):
        super().__init__()
        for name, v in (
            ("lambda_p", lambda_p),
            ("lambda_f", lambda_f),
            ("lambda_s", lambda_s),
        ):
            if v < 0:
                raise ValueError(f"{name} must be >= 0, got {v}")
        self.lambda_p, self.lambda_f, self.lambda_s = (
            float(lambda_p),
            float(lambda_f),
            float(lambda_s),
        )

    def forward(
        self,
        pair: Tensor | None = None,
        feat: Tensor | None = None,
        next: Tensor | None = None,  # noqa: A002 - the paper's name
        future: Tensor | None = None,
    ) -> tuple[Tensor, dict]:
        """Returns :math:`L_\\Theta` and the unweighted terms given."""
        terms = {"pair": pair, "feat": feat, "next": next, "future": future}
        weights = {
            "pair": self.lambda_p,
            "feat": self.lambda_f,
            "next": self.lambda_s,
            "future": self.lambda_s,
        }
        given = {k: v for k, v in terms.items() if v is not None}
        if not given:
            raise ValueError("at least one task loss must be given")
        total = sum(weights[k] * v for k, v in given.items())
        return total, {k: v.detach() for k, v in given.items()}

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(lambda_p={self.lambda_p}, "
            f"lambda_f={self.lambda_f}, lambda_s={self.lambda_s})"
        )
