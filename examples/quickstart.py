"""Quick start: MultiSage on DBLP papers in ~60 lines.

DBLP raw files come from ``$PYG_MULTISAGE_DBLP`` or ``../shared/data/dblp``
(see ``pyg_multisage.datasets.DBLP`` for the download); without them a
synthetic item--board graph stands in. ``python examples/quickstart.py``
"""

import argparse
import os
from pathlib import Path

import torch

from pyg_multisage.datasets import DBLP, synthetic_multipartite
from pyg_multisage.loader import ImportanceNeighborLoader
from pyg_multisage.losses import sampled_softmax_loss
from pyg_multisage.metrics import retrieval_metrics
from pyg_multisage.nn.models import MultiSage
from pyg_multisage.transforms import ContextualWalkNeighbors


def load(root: str, force_synthetic: bool = False):
    """(data, target, contexts): DBLP papers with venue/term contexts, or synthetic."""
    raw = Path(
        os.environ.get(
            "PYG_MULTISAGE_DBLP", Path(__file__).parents[2] / "shared/data/dblp"
        )
    )
    if not force_synthetic and (raw / "paper_conf.txt").is_file():
        data = DBLP(root, raw_dir=raw)[0]
        return data, "paper", ["venue", "term"]
    return (
        synthetic_multipartite(num_targets=3000, num_contexts=300, seed=0),
        "item",
        ["board"],
    )


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument(
        "--root", default="data/dblp", help="folder for DBLP's processed file"
    )
    p.add_argument("--synthetic", action="store_true", help="skip DBLP")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=128, help="pairs per step")
    p.add_argument("--num-walks", type=int, default=100)
    p.add_argument("--eval-pairs", type=int, default=2000, help="test pairs scored")
    args = p.parse_args(argv)
    torch.manual_seed(0)

    # 1. Data, and MultiSage's contextual neighbors (Alg. 2) written as edges.
    data, target, contexts = load(args.root, args.synthetic)
    data = ContextualWalkNeighbors(
        target, contexts, num_walks=args.num_walks, num_neighbors=20
    )(data)
    for store in data.node_stores:  # titles/names are lists; batches slice tensors
        for key in [k for k, v in store.items() if isinstance(v, list)]:
            del store[key]

    # 2. Model: one contextual convolution per context type (MultiSage-3 on DBLP).
    model = MultiSage(
        data[target].num_features,
        {c: data[c].num_features for c in contexts},
        out_channels=64,
        hidden_channels=(128,),
        target=target,
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)

    # 3. Train: each batch holds B (query, positive) pairs as seeds q0, p0, q1, p1, ...;
    #    the other pairs' positives are the negatives (sampled softmax, OmniSage Eq. 1).
    def pair_batches(pairs):
        while True:  # epochs over the shuffled training pairs
            seeds = pairs[:, torch.randperm(pairs.size(1))].t().reshape(-1)
            yield from ImportanceNeighborLoader(
                data,
                input_nodes=(target, seeds),
                batch_size=2 * args.batch_size,
                drop_last=True,
            )

    for step, batch in zip(
        range(args.steps), pair_batches(data.train_pairs), strict=False
    ):
        z = model(batch)
        loss = sampled_softmax_loss(
            z[0::2],
            z[1::2],
            temperature=10.0,
            positive_ids=batch[target].n_id[1 : 2 * args.batch_size : 2],
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 50 == 0 or step == args.steps - 1:
            print(f"step {step:4d}  loss {loss.item():.4f}")

    # 4. Embed every target and rank the held-out pairs' positives (MultiSage §3.1).
    model.eval()
    with torch.no_grad():
        emb = model.embed(
            ImportanceNeighborLoader(data, input_nodes=target, batch_size=1024)
        )
    test = data.test_pairs[:, : args.eval_pairs]
    metrics = retrieval_metrics(
        emb[test[0]], emb[test[1]], emb, query_index=test[0], positive_index=test[1]
    )
    print("  ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
    return metrics


if __name__ == "__main__":
    main()
