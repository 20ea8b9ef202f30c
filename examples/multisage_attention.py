"""MultiSage Fig. 6: what the contextual attention (Eq. 6) weighs, per context.

Trains MultiSage (``combine="mask"``, three-way attention, every context type)
with the main job (:func:`pyg_multisage.experiment.run`, validation pairs
only), then reads the attention weights :math:`\\alpha(v, o, u)` of Eq. 6 for a
seeded sample of targets (:meth:`MultiSage.forward` with
``return_attention_weights=True``) and reports, per context type:

* the heat map of :math:`\\alpha` (mean over heads) for the first sampled
  targets, neighbors ordered by their walk visit count (slot 0 = most
  visited);
* the mean :math:`\\alpha` per visit-count rank, next to the visit-count
  prior :math:`w_{vu} / \\sum_u w_{vu}` (the :math:`\\log w` bias alone, what
  an untrained attention gives) and the uniform :math:`1/|\\mathcal{N}_v|`;
* the mean entropy of :math:`\\alpha` against the prior's and the uniform's:
  lower means the learned attention concentrates on fewer neighbors.

The paper's Fig. 6 probes the learned attention network with synthetic
inputs (ego fixed at zero, one neighbor dimension varied) on Pinterest; this
script shows the same network's weights on real neighborhoods instead.

Usage::

    python examples/multisage_attention.py                     # synthetic, < 1 min
    PYG_MULTISAGE_DBLP=/path/to/dblp \\
        python examples/multisage_attention.py --dataset dblp --steps 160

Writes ``benchmarks/results/multisage_attention_<dataset>.json`` and a PNG
next to it (both written to a temporary file and renamed).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from pyg_multisage import convention
from pyg_multisage import experiment as ex
from pyg_multisage.run_folder import save_figure

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    tmp.replace(path)


def _entropy(p: Tensor) -> float:
    return float(-(p * p.clamp_min(1e-30).log()).sum())


def attention_by_context(
    model: torch.nn.Module,
    batcher: ex.SeedBatcher,
    seeds: Tensor,
    edge_types: list,
    num_slots: int,
) -> dict[str, dict[str, Any]]:
    """Attention statistics per context type for the targets :obj:`seeds`.

    Returns, per context type: ``heatmap`` (``[len(seeds), num_slots]``,
    head-mean :math:`\\alpha` of each target's neighbors sorted by visit count
    descending; ``None`` where a target has fewer neighbors), ``mean_by_rank``,
    ``prior_by_rank`` (visit-count share), ``uniform_by_rank``
    (:math:`1/\\deg`), ``count_by_rank`` (targets with that many neighbors),
    ``entropy`` / ``prior_entropy`` / ``uniform_entropy`` (means over targets
    with neighbors), ``heads`` and ``num_edges``.
    """
    batch = batcher(seeds)
    bs = seeds.numel()
    model.eval()
    with torch.no_grad():
        _, att = model(batch, return_attention_weights=True)
    weights = {
        et: (adj, w) for et, adj, w, _ in convention.seed_edges(batch, edge_types, bs)
    }
    out: dict[str, dict[str, Any]] = {}
    for et in edge_types:
        ctx = convention.context_type_from_name(et)
        edge_index, alpha = att[ctx]
        adj, w = weights[et]
        if not torch.equal(adj, edge_index):
            raise RuntimeError(f"{et}: attention edges differ from the batch's edges")
        a = alpha.mean(dim=-1)
        w = torch.ones_like(a) if w is None else w.to(a.dtype)
        heat = [[None] * num_slots for _ in range(bs)]
        sums = torch.zeros(num_slots, dtype=torch.float64)
        prior = torch.zeros(num_slots, dtype=torch.float64)
        uniform = torch.zeros(num_slots, dtype=torch.float64)
        count = torch.zeros(num_slots, dtype=torch.long)
        ent, ent_prior, ent_uniform = [], [], []
        dst = edge_index[1]
        for i in range(bs):
            mask = dst == i
            if not bool(mask.any()):
                continue
            ai, wi = a[mask], w[mask]
            order = torch.argsort(wi, descending=True, stable=True)
            ai, wi = ai[order], wi[order]
            pi = wi / wi.sum()
            deg = ai.numel()
            ent.append(_entropy(ai))
            ent_prior.append(_entropy(pi))
            ent_uniform.append(math.log(deg))
            k = min(deg, num_slots)
            heat[i][:k] = [float(x) for x in ai[:k]]
            sums[:k] += ai[:k].double()
            prior[:k] += pi[:k].double()
            uniform[:k] += 1.0 / deg
            count[:k] += 1
        n = count.clamp_min(1).double()
        mean = lambda xs: sum(xs) / len(xs) if xs else float("nan")
        out[ctx] = {
            "heatmap": heat,
            "mean_by_rank": (sums / n).tolist(),
            "prior_by_rank": (prior / n).tolist(),
            "uniform_by_rank": (uniform / n).tolist(),
            "count_by_rank": count.tolist(),
            "entropy": mean(ent),
            "prior_entropy": mean(ent_prior),
            "uniform_entropy": mean(ent_uniform),
            "heads": int(alpha.size(-1)),
            "num_edges": int(edge_index.size(1)),
        }
    return out


def plot(stats: dict[str, dict], path: Path, title: str, rows: int = 40) -> None:
    """One column per context type: heat map (top) and mean weight per rank
    against the visit-count prior and uniform (bottom)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    ctxs = list(stats)
    fig, axes = plt.subplots(
        2, len(ctxs), figsize=(max(6.5, 4.6 * len(ctxs)), 7.0), squeeze=False
    )
    for j, c in enumerate(ctxs):
        s = stats[c]
        heat = np.array(
            [[np.nan if v is None else v for v in row] for row in s["heatmap"][:rows]],
            dtype=float,
        )
        im = axes[0, j].imshow(heat, aspect="auto", cmap="viridis", vmin=0)
        axes[0, j].set_title(f"context {c!r}: attention per target")
        axes[0, j].set_xlabel("neighbor slot (by walk visit count)")
        axes[0, j].set_ylabel("sampled target")
        fig.colorbar(im, ax=axes[0, j], fraction=0.046)
        ranks = np.arange(len(s["mean_by_rank"]))
        ax = axes[1, j]
        ax.plot(ranks, s["mean_by_rank"], "o-", label="learned attention")
        ax.plot(ranks, s["prior_by_rank"], "s--", label="visit-count prior")
        ax.plot(ranks, s["uniform_by_rank"], ":", label="uniform 1/deg")
        ax.set_xlabel("neighbor rank (by walk visit count)")
        ax.set_ylabel("mean weight")
        ax.set_title(
            f"entropy {s['entropy']:.2f} (prior {s['prior_entropy']:.2f}, "
            f"uniform {s['uniform_entropy']:.2f})",
            fontsize=9,
        )
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", choices=("synthetic", "dblp"), default="synthetic")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=60, help="optimizer steps")
    ap.add_argument("--batch-size", type=int, default=64, help="pairs per step")
    ap.add_argument("--negatives", type=int, default=128, help="random negatives")
    ap.add_argument("--sample", type=int, default=200, help="targets read")
    ap.add_argument(
        "--synthetic-targets", type=int, default=1000, help="synthetic: targets"
    )
    ap.add_argument("--raw-dir", help="raw DBLP files (default: $PYG_MULTISAGE_DBLP)")
    ap.add_argument("--root", default=None, help="processed dataset folder")
    ap.add_argument("--out", default=str(RESULTS), help="folder of the JSON and PNG")
    ap.add_argument("--threads", type=int, default=None, help="torch threads")
    return ap


def main(argv: list[str] | None = None) -> dict:
    ap = build_parser()
    args = ap.parse_args(argv)
    for name in ("steps", "batch_size", "sample", "synthetic_targets"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be >= 1")
    raw_dir = args.raw_dir
    if args.dataset == "dblp":
        raw_dir = raw_dir or os.environ.get("PYG_MULTISAGE_DBLP")
        if not raw_dir:
            ap.error("--dataset dblp needs --raw-dir or $PYG_MULTISAGE_DBLP")
    if args.threads:
        torch.set_num_threads(args.threads)
    synthetic = (
        {"num_targets": args.synthetic_targets, "num_contexts": 100}
        if args.dataset == "synthetic"
        else {}
    )
    config = ex.RunConfig(
        dataset=args.dataset,
        model="multisage",
        raw_dir=raw_dir,
        root=args.root,
        seed=args.seed,
        steps=args.steps,
        batch_size=args.batch_size,
        num_negatives=args.negatives,
        combine="mask",
        attention="three_way",
        eval_split="val",
        progress=False,
        synthetic=synthetic,
    )
    task = ex.load_task(config)
    result = ex.run(config, task)
    # The same neighbor tables the run trained on (seeded by config.seed).
    task = task.replace_data(ex.add_neighbors(task, config))
    edge_types = ex.model_edge_types(task, config)
    batcher = ex.SeedBatcher(task.data, task.target, edge_types)
    num_nodes = task.data[task.target].num_nodes
    gen = torch.Generator().manual_seed(args.seed)
    sample = min(args.sample, num_nodes)
    seeds = torch.randperm(num_nodes, generator=gen)[:sample].sort().values
    encoder = result.model.encoder
    stats = attention_by_context(
        encoder, batcher, seeds, edge_types, num_slots=config.num_neighbors
    )
    out = {
        "_meta": {
            "figure": "MultiSage Fig. 6 (attention weights of Eq. 6 per context)",
            "dataset": args.dataset,
            "steps": args.steps,
            "seed": args.seed,
            "sample": sample,
            "targets": seeds.tolist(),
            "num_neighbors": config.num_neighbors,
            "val_metrics": {k: result.metrics[k] for k in ("MRR", "REC@10")},
        },
        "contexts": stats,
    }
    folder = Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"multisage_attention_{args.dataset}"
    _write_json(folder / f"{stem}.json", out)
    for c, s in stats.items():
        top = s["mean_by_rank"][0]
        print(
            f"{c}: mean weight of the most-visited neighbor {top:.3f} "
            f"(prior {s['prior_by_rank'][0]:.3f}, uniform "
            f"{s['uniform_by_rank'][0]:.3f}); entropy {s['entropy']:.3f} "
            f"(prior {s['prior_entropy']:.3f}, uniform {s['uniform_entropy']:.3f})"
        )
    try:
        plot(
            stats,
            folder / f"{stem}.png",
            f"MultiSage Fig. 6: attention per context ({args.dataset}, "
            f"{args.steps} steps, {sample} targets)",
        )
    except ImportError:
        print("matplotlib missing: no plot (pip install 'pyg_multisage[plot]')")
    return out


if __name__ == "__main__":
    try:
        main()
    except (ValueError, FileNotFoundError) as err:
        print(f"multisage_attention.py: {err}", file=sys.stderr)
        sys.exit(2)
