r"""Your own importance neighbors: the extension protocol (docs/extending.rst).

Any transform that writes an edge type of the package's shape is a
first-class neighbor source for
:class:`~pyg_multisage.loader.ImportanceNeighborLoader`,
:class:`~pyg_multisage.nn.models.MultiSage` and
:class:`~pyg_multisage.nn.conv.MultiSageConv`. The shape:

* an edge type ``(target, '<name>', target)`` whose ``edge_index`` row 0 is
  the **neighbor** and row 1 the **ego**, edges grouped by ego and sorted by
  ``edge_weight`` descending within an ego (the loader's ``num_neighbors``
  keeps the first ones);
* ``edge_weight``: float32 ``[E]``, the importance;
* optionally ``context``: int64 ``[E]``, the id of the dominant context node
  in the node store named by the edge store's ``context_type`` (a str),
  ``-1`` for none. With it the edges feed MultiSage's contextual masking
  (Eq. 5) and attention (Eq. 6--7); without it they feed OmniSage or any
  PyG model that reads ``edge_weight``.

The transform below, :class:`SharedContextIDF`, is such a source: two
targets are neighbors when they share a context (items saved to the same
board, papers sharing a term), weighted by inverse document frequency, so
a niche board counts more than a hub:

.. math::
    w(u \to v) = \sum_{c \in C(u) \cap C(v)} \log \frac{N}{|T(c)|},
    \qquad \mathrm{ctx}(u \to v) = \operatorname*{arg\,max}_{c \in C(u)
    \cap C(v)} \log \frac{N}{|T(c)|}

with :math:`N` targets, :math:`T(c)` the targets of context :math:`c` and
:math:`C(u)` the contexts of :math:`u`; the top :obj:`num_neighbors` per ego
are kept (weight descending, neighbor id ascending on ties), the dominant
context is the shared context of highest IDF (lowest id on ties). Contexts
with more than :obj:`max_context_degree` targets are skipped (their IDF is
the lowest and their pairs the most numerous). Swap in co-engagement counts
(OmniSage's engagement data) by changing how the pairs are produced; the
writing part stays the same.

The script trains MultiSage on these edges instead of the contextual walks
of Algorithm 2, on the synthetic item--board graph (no data needed):
``python examples/custom_neighbors.py --steps 100``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from itertools import islice

import torch
from torch import Tensor
from torch_geometric.data import HeteroData
from torch_geometric.transforms import BaseTransform

from pyg_multisage.datasets import synthetic_multipartite
from pyg_multisage.loader import ImportanceNeighborLoader
from pyg_multisage.losses import sampled_softmax_loss
from pyg_multisage.metrics import retrieval_metrics
from pyg_multisage.nn.models import MultiSage


def _first_per_group(sorted_keys: Tensor) -> Tensor:
    """Mask of the first position of every run of equal keys."""
    first = torch.ones_like(sorted_keys, dtype=torch.bool)
    first[1:] = sorted_keys[1:] != sorted_keys[:-1]
    return first


class SharedContextIDF(BaseTransform):
    r"""Writes ``(target, name, target)`` importance-neighbor edges between
    targets sharing a context, weighted by the summed IDF of the shared
    contexts, with the dominant (highest-IDF) shared context:

    .. math::
        w(u \to v) = \sum_{c \in C(u) \cap C(v)} \log \frac{N}{|T(c)|}

    Args:
        target (str): Target node type (items, papers).
        context (str): Context node type (boards, terms).
        num_neighbors (int, optional): Neighbors kept per ego.
            (default: :obj:`20`)
        max_context_degree (int, optional): Contexts with more targets are
            skipped. (default: :obj:`500`)
        name (str, optional): Relation name of the written edge type.
            (default: :obj:`"shared_<context>_idf"`)
    """

    def __init__(
        self,
        target: str,
        context: str,
        num_neighbors: int = 20,
        max_context_degree: int = 500,
        name: str | None = None,
    ) -> None:
        if num_neighbors < 1:
            raise ValueError(f"num_neighbors must be >= 1, got {num_neighbors}")
        if max_context_degree < 2:
            raise ValueError(
                f"max_context_degree must be >= 2, got {max_context_degree}"
            )
        self.target, self.context = target, context
        self.num_neighbors = num_neighbors
        self.max_context_degree = max_context_degree
        self.name = name or f"shared_{context}_idf"

    @property
    def edge_type(self) -> tuple[str, str, str]:
        return (self.target, self.name, self.target)

    def _membership(self, data: HeteroData) -> tuple[Tensor, Tensor]:
        """(target ids, context ids) of every distinct target–context link."""
        for (src, _, dst), store in data.edge_items():
            if (src, dst) == (self.target, self.context):
                t, c = store.edge_index
                break
            if (src, dst) == (self.context, self.target):
                c, t = store.edge_index
                break
        else:
            raise ValueError(
                f"no edge type connects '{self.target}' and '{self.context}' "
                f"(edge types: {data.edge_types})"
            )
        num_t = data[self.target].num_nodes
        key = torch.unique(c * num_t + t)  # sorted by context, then target
        return key % num_t, key // num_t

    def forward(self, data: HeteroData) -> HeteroData:
        for t in (self.target, self.context):
            if t not in data.node_types:
                raise ValueError(f"node type '{t}' is not in the data")
        num_t = data[self.target].num_nodes
        num_c = data[self.context].num_nodes
        t, c = self._membership(data)
        deg = torch.bincount(c, minlength=num_c)
        idf = torch.log(num_t / deg.clamp_min(1).double())
        ok = (deg[c] >= 2) & (deg[c] <= self.max_context_degree)
        t, c = t[ok], c[ok]
        ptr = torch.zeros(num_c + 1, dtype=torch.long)
        ptr[1:] = torch.cumsum(torch.bincount(c, minlength=num_c), 0)

        # Every ordered pair (u, v), u != v, of targets of each context.
        count = deg[c]
        u = torch.repeat_interleave(t, count)
        cc = torch.repeat_interleave(c, count)
        start = torch.repeat_interleave(torch.cumsum(count, 0) - count, count)
        v = t[ptr[cc] + torch.arange(u.numel()) - start]
        keep = u != v
        u, v, cc = u[keep], v[keep], cc[keep]
        w = idf[cc]

        # Per (ego v, neighbor u): summed IDF and the highest-IDF context.
        order = torch.argsort(cc, stable=True)
        order = order[torch.argsort(-w[order], stable=True)]
        pair = v * num_t + u
        order = order[torch.argsort(pair[order], stable=True)]
        pair, cc = pair[order], cc[order]
        keys, inverse = torch.unique_consecutive(pair, return_inverse=True)
        weight = torch.zeros(keys.numel(), dtype=torch.float64)
        weight.index_add_(0, inverse, w[order])
        ctx = cc[_first_per_group(pair)]
        ego, nbr = keys // num_t, keys % num_t

        # Top-s per ego: ego asc, weight desc, neighbor asc.
        order = torch.argsort(nbr, stable=True)
        order = order[torch.argsort(-weight[order], stable=True)]
        order = order[torch.argsort(ego[order], stable=True)]
        ego, nbr, weight, ctx = ego[order], nbr[order], weight[order], ctx[order]
        first = torch.nonzero(_first_per_group(ego)).view(-1)
        sizes = torch.diff(first, append=torch.tensor([ego.numel()]))
        rank = torch.arange(ego.numel()) - torch.repeat_interleave(first, sizes)
        top = rank < self.num_neighbors

        store = data[self.edge_type]
        store.edge_index = torch.stack([nbr[top], ego[top]])
        store.edge_weight = weight[top].to(torch.float32)
        store.context = ctx[top].to(torch.long)
        store.context_type = self.context
        return data

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(target='{self.target}', "
            f"context='{self.context}', num_neighbors={self.num_neighbors}, "
            f"max_context_degree={self.max_context_degree}, name='{self.name}')"
        )


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    p = argparse.ArgumentParser(description="MultiSage on custom IDF neighbors.")
    p.add_argument("--num-targets", type=int, default=3000)
    p.add_argument("--num-contexts", type=int, default=300)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--num-neighbors", type=int, default=20)
    p.add_argument("--eval-pairs", type=int, default=2000)
    args = p.parse_args(argv)
    torch.manual_seed(0)

    data = synthetic_multipartite(
        num_targets=args.num_targets, num_contexts=args.num_contexts, seed=0
    )
    transform = SharedContextIDF("item", "board", num_neighbors=args.num_neighbors)
    data = transform(data)
    et = transform.edge_type
    print(f"{transform}: {data[et].num_edges} edges of type {et}")

    # Fed unchanged to the package: the loader finds the edge type, the
    # model reads it in place of ('item', 'walk_via_board', 'item').
    model = MultiSage(
        data["item"].num_features,
        {"board": data["board"].num_features},
        out_channels=64,
        hidden_channels=(128,),
        target="item",
        edge_types={"board": et},
        target_relu=False,  # signed embeddings: no collapse into a narrow cone
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)

    def batches(pairs: Tensor):
        """Epochs over shuffled training pairs; a batch's seeds are
        q0, p0, q1, p1, ... (B pairs)."""
        while True:
            seeds = pairs[:, torch.randperm(pairs.size(1))].t().reshape(-1)
            yield from ImportanceNeighborLoader(
                data,
                ("item", seeds),
                edge_types=[et],
                batch_size=2 * args.batch_size,
                drop_last=True,
            )

    for step, batch in enumerate(islice(batches(data.train_pairs), args.steps)):
        z = model(batch)
        ids = batch["item"].n_id[: batch["item"].batch_size]
        loss = sampled_softmax_loss(
            z[0::2], z[1::2], temperature=10.0, positive_ids=ids[1::2]
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 25 == 0 or step == args.steps - 1:
            print(f"step {step:4d}  loss {loss.item():.4f}")

    loader = ImportanceNeighborLoader(data, "item", edge_types=[et], batch_size=1024)
    emb = model.embed(loader, progress=False)
    test = data.test_pairs[:, : args.eval_pairs]
    metrics = retrieval_metrics(
        emb[test[0]], emb[test[1]], emb, query_index=test[0], positive_index=test[1]
    )
    print("  ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
    return metrics


if __name__ == "__main__":
    main()
