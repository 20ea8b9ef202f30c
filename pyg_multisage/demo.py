"""The demo behind ``make demo``: ``python -m pyg_multisage.demo``.

1. The main job on an embedded default that needs no download: DBLP
   same-author paper retrieval when the raw DBLP files are found
   (``--dblp`` or ``$PYG_MULTISAGE_DBLP``), else the synthetic
   planted-facet graph. It trains a PinSage-style baseline and MultiSage,
   evaluates both on held-out pairs and prints MultiSage Table 2's columns
   (see :mod:`pyg_multisage.experiment`); run folders go to ``runs/demo-*``.
2. On DBLP, a look at the sampler: MultiSage's contextualized random walk (Algorithm 2,
:func:`~pyg_multisage.sampling.walks.contextual_walk`) over every paper of the
DBLP four-area graph, once with venues and once with terms as the context
type, and prints a few papers with their top neighbors (titles), visit counts
and the dominant context of each pair (venue or term names).

The raw DBLP files are read from ``--dblp``, else from
``$PYG_MULTISAGE_DBLP`` (``make demo`` sets it to ``../shared/data/dblp``
next to the project root when that folder exists).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from pyg_multisage.datasets.dblp import find_dblp_raw


def _short(text: str, width: int = 70) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def main_job(raw: Path | None, steps: int, models: list[str], seed: int = 0) -> None:
    """Trains and evaluates :obj:`models` on DBLP (or synthetic) and prints
    the Table 2 columns."""
    from pyg_multisage import experiment as ex

    dataset = "dblp" if raw is not None else "synthetic"
    base = ex.RunConfig(dataset=dataset, raw_dir=str(raw) if raw else None, seed=seed)
    print(f"== main job: {dataset}, models {models}, {steps} steps each ==")
    task = ex.load_task(base)
    rows = {}
    for model in models:
        config = ex.RunConfig(
            **{**vars(base), "model": model, "steps": steps},
        )
        config.output_dir = f"runs/demo-{dataset}-{model}"
        t0 = time.perf_counter()
        result = ex.run(config, task)
        rows[model] = result.metrics
        print(
            f"{model}: {time.perf_counter() - t0:.0f} s, run folder {config.output_dir}"
        )
    print(f"\n{dataset}: test pairs ranked against all {task.target}s")
    print(ex.format_table(rows))
    print(random_reference(task, base))
    if len(rows) >= 2:
        first, last = list(rows)[0], list(rows)[-1]
        ratio = rows[last]["MRR"] / max(rows[first]["MRR"], 1e-12)
        print(f"\nMRR {last} / {first} = {ratio:.2f}")


def random_reference(task, config) -> str:
    """One line with the expected MRR and REC@K of a random ranking of the
    same pool and pairs (:func:`~pyg_multisage.metrics.random_ranking_metrics`),
    so the table's numbers can be read against chance."""
    from pyg_multisage import experiment as ex
    from pyg_multisage.metrics import random_ranking_metrics

    pairs = ex.cap_pairs(
        task.pairs[config.eval_split], config.max_eval_pairs, config.seed
    )
    num_nodes = int(task.data[task.target].num_nodes)
    # The pool is every target minus the query's and the positive's rows.
    competitors = num_nodes - 1 - (pairs[0] != pairs[1]).long()
    ref = random_ranking_metrics(competitors)
    cells = ", ".join(f"{k} {v:.4f}" for k, v in ref.items())
    return f"random ranking of the same {num_nodes:,} {task.target}s: {cells}"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--dblp", help="folder of the raw DBLP files (default: $PYG_MULTISAGE_DBLP)"
    )
    ap.add_argument("--synthetic", action="store_true", help="ignore DBLP")
    ap.add_argument("--steps", type=int, default=150, help="training steps per model")
    ap.add_argument(
        "--models", nargs="+", default=["pinsage", "multisage"], help="models to train"
    )
    ap.add_argument("--papers", type=int, default=2, help="papers to show")
    ap.add_argument("--top", type=int, default=5, help="neighbors per paper")
    ap.add_argument("--walks", type=int, default=200, help="walks per paper")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    raw = None
    if not args.synthetic:
        try:
            raw = find_dblp_raw(args.dblp, required=True)
        except FileNotFoundError as err:
            print(f"{err}\nfalling back to the synthetic graph")
    main_job(raw, args.steps, args.models, args.seed)
    if raw is not None:
        show_walks(raw, args)


def show_walks(raw: Path, args: argparse.Namespace) -> None:
    """Prints a few papers with their contextual-walk neighbors."""
    print("\n== the sampler: MultiSage Algorithm 2 on DBLP ==")

    from pyg_multisage.datasets.dblp import read_dblp_raw
    from pyg_multisage.graph import HeteroCSR
    from pyg_multisage.sampling.walks import contextual_walk

    t0 = time.perf_counter()
    data = read_dblp_raw(raw)
    csr = HeteroCSR.from_data(data)
    num_papers = data["paper"].num_nodes
    print(f"DBLP from {raw}: {csr}  ({time.perf_counter() - t0:.1f} s)")

    t0 = time.perf_counter()
    tables = contextual_walk(
        csr,
        torch.arange(num_papers),
        target="paper",
        context=["venue", "term"],
        num_walks=args.walks,
        walk_length=3,
        restart_prob=0.5,
        num_neighbors=args.top,
        seed=args.seed,
    )
    dt = time.perf_counter() - t0
    print(
        f"contextual_walk (Algorithm 2): {num_papers:,} papers x 2 context types "
        f"x {args.walks} walks in {dt:.2f} s (compilation included)\n"
    )

    titles = data["paper"].title
    names = {"venue": data["venue"].name, "term": data["term"].name}
    pv = csr.relation("paper", "venue")
    terms_per_paper = csr.relation("paper", "term").degree()
    # A few papers with several terms, picked reproducibly.
    candidates = np.flatnonzero(terms_per_paper >= 4)
    rng = np.random.default_rng(args.seed)
    shown = rng.choice(candidates, min(args.papers, len(candidates)), replace=False)
    for p in sorted(shown.tolist()):
        venue = names["venue"][int(pv.indices[pv.indptr[p]])]
        print(f"paper {p} [{venue}]: {_short(titles[p])}")
        for ctype in ("venue", "term"):
            nbr, cnt, ctx = tables[ctype].row(p)
            print(f"  top neighbors via {ctype}  (visits, dominant {ctype}):")
            for u, n, c in zip(nbr.tolist(), cnt.tolist(), ctx.tolist(), strict=True):
                print(f"    {int(n):4d}  {names[ctype][c]:<14.14} {_short(titles[u])}")
        print()


if __name__ == "__main__":
    main()
