r"""MultiSage and OmniSage on OGB-MAG (the MAG side of the Open Academic Graph).

Papers are the **targets**, fields of study and authors the **contexts**
(:func:`pyg_multisage.datasets.ogbn_mag`, an adapter over PyG's
:class:`~torch_geometric.datasets.OGB_MAG`). Two evaluations:

* **Citation retrieval** (MultiSage §3.1 metrics, Table 2 columns): the
  query–positive pairs are citations, *citing paper → cited paper*. The
  citation edges are taken out of the graph (the models see only
  paper–field and paper–author edges), so a pair is never an edge the
  sampler walks. Pairs follow OGB's official time split through the
  **citing** paper: train pairs are cited by papers of ``train_mask``
  (≤ 2017), val pairs by ``val_mask`` (2018), test pairs by ``test_mask``
  (2019). Every test query is thus a paper published after all training
  queries, ranked against the pool of all (sampled) papers.
* **Venue classification**: a linear probe (multinomial logistic
  regression, L-BFGS) on the frozen embeddings, fit on ``train_mask`` papers,
  accuracy on the official val and test papers.

A ``features`` row gives both evaluations on the raw 128-d word2vec paper
features, as a reference.

Usage (PyG downloads OGB-MAG, about 400 MB, into ``--root`` on first use)::

    python examples/ogbn_mag.py --root data/ogb_mag --max-papers 20000 \
        --steps 300 --eval-pairs 5000 --models multisage omnisage \
        --out runs/ogbn_mag

``--max-papers`` subsamples for CPU runs: the papers of whole venues, in a
seeded random order of venues, until the budget is reached (the last venue
cut at random), so citations and shared authors stay dense inside the
sample; contexts not touching a kept paper are dropped. ``0`` keeps all
736,389 papers. Training reuses the main job's pieces
(:func:`pyg_multisage.experiment.run` on a :class:`~pyg_multisage.experiment.Task`
built here): the same importance neighbors, batches, sampled softmax and
budget as ``pyg-multisage train``.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch_geometric.data import HeteroData
from tqdm.auto import tqdm

from pyg_multisage.datasets.ogbn_mag import (
    OGBN_MAG_CONTEXTS,
    citation_pairs,
    ogbn_mag,
)
from pyg_multisage.experiment import (
    METRIC_COLUMNS,
    MODELS,
    RunConfig,
    Task,
    cap_pairs,
    evaluate,
    format_table,
    run,
)
from pyg_multisage.run_folder import save_figure

CONTEXTS = [c for c, _, _ in OGBN_MAG_CONTEXTS]  # field_of_study, author
PROBE_COLUMNS = ("VAL-ACC", "TEST-ACC")


def subsample_by_venue(data: HeteroData, max_papers: int, seed: int = 0) -> HeteroData:
    """Keeps at most :obj:`max_papers` papers: those of whole venues in a
    seeded random order of venues (the last venue cut at random), then only
    the contexts linked to a kept paper. Ids are relabeled, order kept."""
    num_papers = data["paper"].num_nodes
    if max_papers <= 0 or max_papers >= num_papers:
        return data
    gen = torch.Generator().manual_seed(seed)
    y = data["paper"].y.view(-1)
    venue_rank = torch.randperm(int(y.max()) + 1, generator=gen).to(torch.float64)
    key = venue_rank[y] + torch.rand(num_papers, generator=gen, dtype=torch.float64)
    keep = torch.argsort(key)[:max_papers].sort().values
    sub = data.subgraph({"paper": keep})
    touched = {}
    for ctype, fwd, _ in OGBN_MAG_CONTEXTS:
        if ctype in sub.node_types:
            touched[ctype] = torch.unique(sub["paper", fwd, ctype].edge_index[1])
    sub = sub.subgraph(touched)
    for ctype, idx in touched.items():
        sub[ctype].num_nodes = idx.numel()
    sub["paper"].num_nodes = keep.numel()
    return sub


def load_mag_task(root: str, max_papers: int = 0, seed: int = 0) -> Task:
    """OGB-MAG in target–context form with citation pairs, as a
    :class:`~pyg_multisage.experiment.Task`."""
    data = ogbn_mag(root, contexts=tuple(CONTEXTS), keep_citations=True)
    data = subsample_by_venue(data, max_papers, seed)
    pairs = citation_pairs(data)
    return Task(data, "paper", list(CONTEXTS), pairs)


def linear_probe(
    emb: Tensor,
    y: Tensor,
    masks: dict[str, Tensor],
    max_iter: int = 100,
    weight_decay: float = 1e-4,
) -> dict[str, float]:
    """Accuracy of a multinomial logistic regression fit by L-BFGS on the
    frozen, train-standardized :obj:`emb` of ``masks['train']``, on every
    mask."""
    x = emb.detach().float()
    train = masks["train"]
    mean, std = x[train].mean(0), x[train].std(0).clamp_min(1e-6)
    x = (x - mean) / std
    classes, y = torch.unique(y, return_inverse=True)
    torch.manual_seed(0)
    lin = torch.nn.Linear(x.size(1), classes.numel())
    opt = torch.optim.LBFGS(
        lin.parameters(), max_iter=max_iter, line_search_fn="strong_wolfe"
    )

    def closure() -> Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(lin(x[train]), y[train])
        loss = loss + weight_decay * lin.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        pred = lin(x).argmax(-1)
    return {
        name: float((pred[m] == y[m]).float().mean()) if m.any() else float("nan")
        for name, m in masks.items()
    }


def _probe(task: Task, emb: Tensor) -> dict[str, float]:
    paper = task.data["paper"]
    masks = {s: paper[f"{s}_mask"] for s in ("train", "val", "test")}
    acc = linear_probe(emb, paper.y.view(-1), masks)
    return {"VAL-ACC": acc["val"], "TEST-ACC": acc["test"], "TRAIN-ACC": acc["train"]}


def save_plot(rows: dict[str, dict[str, float]], path: Path) -> None:
    """Grouped bars of MRR, REC@10 and test accuracy per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = ["MRR", "REC@10", "TEST-ACC"]
    fig, ax = plt.subplots(figsize=(1.8 + 1.6 * len(rows), 3.6))
    width = 0.8 / len(metrics)
    for i, m in enumerate(metrics):
        xs = [j + (i - (len(metrics) - 1) / 2) * width for j in range(len(rows))]
        ax.bar(xs, [r[m] for r in rows.values()], width, label=m)
    ax.set_xticks(range(len(rows)), list(rows))
    ax.set_ylabel("score")
    ax.set_title("OGB-MAG: citation retrieval and venue probe")
    ax.legend(frameon=False)
    fig.tight_layout()
    save_figure(fig, path)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Train MultiSage and OmniSage on OGB-MAG; evaluate citation "
        "retrieval and a venue linear probe.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--root", required=True, help="PyG OGB_MAG folder (downloaded there if absent)"
    )
    p.add_argument(
        "--out", default="runs/ogbn_mag", help="folder of results.json and the PNG"
    )
    p.add_argument(
        "--models", nargs="+", default=["multisage", "omnisage"], choices=MODELS
    )
    p.add_argument(
        "--max-papers", type=int, default=20000, help="subsample (0: all papers)"
    )
    p.add_argument("--steps", type=int, default=300)
    p.add_argument(
        "--eval-pairs", type=int, default=5000, help="val/test pairs scored (0: all)"
    )
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--num-negatives", type=int, default=256)
    p.add_argument("--hidden-channels", type=int, default=256)
    p.add_argument("--out-channels", type=int, default=128)
    p.add_argument("--num-walks", type=int, default=50)
    p.add_argument("--num-neighbors", type=int, default=20)
    p.add_argument("--ppr-top-k", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    progress = not args.no_progress
    t0 = time.perf_counter()
    base = load_mag_task(args.root, args.max_papers, args.seed)
    for split in ("val", "test"):
        base.pairs[split] = cap_pairs(base.pairs[split], args.eval_pairs, args.seed)
    data = base.data
    info = {
        "papers": int(data["paper"].num_nodes),
        **{c: int(data[c].num_nodes) for c in base.contexts},
        "venues": int(torch.unique(data["paper"].y).numel()),
        "pairs": {s: int(p.size(1)) for s, p in base.pairs.items()},  # as scored
        "load_seconds": round(time.perf_counter() - t0, 2),
    }
    print(f"OGB-MAG task: {info}")
    if base.pairs["train"].size(1) == 0:
        raise ValueError("no training citation pairs in the sample; raise --max-papers")

    rows: dict[str, dict[str, float]] = {}
    emb = data["paper"].x
    rows["features"] = {**evaluate(emb, base.pairs["test"]), **_probe(base, emb)}
    runs = {}
    for model in tqdm(args.models, desc="models", disable=not progress):
        config = RunConfig(
            dataset="ogbn-mag",
            model=model,
            root=args.root,
            seed=args.seed,
            steps=args.steps,
            batch_size=args.batch_size,
            num_negatives=args.num_negatives,
            hidden_channels=args.hidden_channels,
            out_channels=args.out_channels,
            num_walks=args.num_walks,
            num_neighbors=args.num_neighbors,
            ppr_top_k=args.ppr_top_k,
            progress=progress,
        )
        # A shallow copy per model: each run writes its own neighbor edges.
        task = Task(copy.copy(base.data), base.target, base.contexts, base.pairs)
        t1 = time.perf_counter()
        result = run(config, task)
        seconds = time.perf_counter() - t1
        rows[model] = {**result.metrics, **_probe(task, result.embeddings)}
        runs[model] = {
            "seconds": round(seconds, 2),
            "final_loss": _last_loss(result.history),
        }

    columns = (*METRIC_COLUMNS, *PROBE_COLUMNS)
    print(format_table(rows, columns))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {"dataset": info, "args": vars(args), "runs": runs, "metrics": rows}
    (out / "results.json").write_text(json.dumps(_no_nan(results), indent=2))
    save_plot(rows, out / "ogbn_mag.png")
    print(f"wrote {out / 'results.json'} and {out / 'ogbn_mag.png'}")
    return results


def _no_nan(obj: Any) -> Any:
    """NaN (e.g. accuracy on an empty split) as JSON null."""
    if isinstance(obj, dict):
        return {k: _no_nan(v) for k, v in obj.items()}
    if isinstance(obj, float) and obj != obj:
        return None
    return obj


def _last_loss(history: list[dict[str, float]]) -> float | None:
    for entry in reversed(history):
        if "loss" in entry:
            return float(entry["loss"])
    return None


if __name__ == "__main__":
    main()
