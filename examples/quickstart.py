"""Quick start: MultiSage on DBLP (or a synthetic graph when DBLP is absent).

DBLP's raw files are read from --raw-dir or $PYG_MULTISAGE_DBLP.
Run: python examples/quickstart.py [--steps 200] [--raw-dir PATH]
"""

import argparse
from itertools import islice

import torch

from pyg_multisage.datasets import DBLP, synthetic_multipartite
from pyg_multisage.datasets.dblp import find_dblp_raw
from pyg_multisage.loader import ImportanceNeighborLoader
from pyg_multisage.losses import sampled_softmax_loss
from pyg_multisage.metrics import retrieval_metrics
from pyg_multisage.nn.models import MultiSage
from pyg_multisage.transforms import ContextualWalkNeighbors


def load(root, synthetic=False, raw_dir=None):
    """(graph, target type, context types)."""
    raw_dir = None if synthetic else find_dblp_raw(raw_dir)
    if raw_dir is None:
        print("using the synthetic item-board graph (DBLP not requested or absent)")
        return synthetic_multipartite(3000, 300, seed=0), "item", ["board"]
    data = DBLP(root, raw_dir=raw_dir)[0]
    return data, "paper", ["venue", "term"]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--root", default="data/dblp", help="DBLP processed folder")
    p.add_argument("--raw-dir", help="raw DBLP files (default: $PYG_MULTISAGE_DBLP)")
    p.add_argument("--synthetic", action="store_true")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=128, help="pairs per step")
    p.add_argument("--num-walks", type=int, default=100)
    p.add_argument("--lr", type=float, default=5e-3)
    p.add_argument("--temperature", type=float, default=30.0, help="softmax scale")
    p.add_argument("--eval-pairs", type=int, default=2000)
    args = p.parse_args(argv)
    torch.manual_seed(0)

    # 1. Contextual random walks (MultiSage Alg. 2) write neighbor edges.
    data, target, contexts = load(args.root, args.synthetic, args.raw_dir)
    walks = ContextualWalkNeighbors(target, contexts, num_walks=args.num_walks)
    data = walks(data)

    # 2. MultiSage: one contextual convolution per context type.
    ctx_dims = {c: data[c].num_features for c in contexts}
    model = MultiSage(
        data[target].num_features,
        ctx_dims,
        64,
        (128,),
        target=target,
        target_relu=False,
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)

    # 3. Batches of B training pairs as seeds q0, p0, q1, p1, ...; sampled
    #    softmax (OmniSage Eq. 1) with the other pairs' positives as negatives.
    def batches(pairs):
        while True:  # epochs over shuffled pairs
            seeds = pairs[:, torch.randperm(pairs.size(1))].t().reshape(-1)
            loader_kw = dict(batch_size=2 * args.batch_size, drop_last=True)
            yield from ImportanceNeighborLoader(data, (target, seeds), **loader_kw)

    for step, batch in enumerate(islice(batches(data.train_pairs), args.steps)):
        z = model(batch)
        ids = batch[target].n_id[: batch[target].batch_size]
        loss = sampled_softmax_loss(
            z[0::2], z[1::2], temperature=args.temperature, positive_ids=ids[1::2]
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 50 == 0 or step == args.steps - 1:
            print(f"step {step:4d}  loss {loss.item():.4f}")

    # 4. Embed all targets; rank held-out pairs (MultiSage §3.1 metrics).
    emb = model.embed(ImportanceNeighborLoader(data, target, batch_size=1024))
    q, pos = data.test_pairs[:, : args.eval_pairs]
    metrics = retrieval_metrics(
        emb[q], emb[pos], emb, query_index=q, positive_index=pos
    )
    print("  ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
    return metrics


if __name__ == "__main__":
    main()
