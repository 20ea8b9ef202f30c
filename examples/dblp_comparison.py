"""MultiSage Table 2 on real data: every model on DBLP same-author retrieval.

Models (the paper's comparison, §3.2): text-only, PinSage-style (random-walk
neighbors, no context), GAT, HAN (PyG's ``HANConv`` over the paper–venue–paper
and paper–term–paper metapaths), MultiSage-2 (venue context), MultiSage-3
(venue + term contexts) and OmniSage (PPR neighbors, transformer aggregator).
All get the same features, walk neighbors, training pairs, negatives, loss and
budget (:mod:`pyg_multisage.experiment`); each runs with several seeds and the
table reports mean ± std of the MultiSage §3.1 metrics on the *test* pairs
against the pool of all papers. Nothing is tuned on the test split.

Two rows need no training and show what learning adds (MultiSage Table 2's
Textual and Pixie rows, :mod:`pyg_multisage.references`): ``raw features``
(cosine of the input title features) and ``Pixie (walk counts)`` (the pool
ranked by the visit counts of random walks from the query through every
context type; ``--pixie-walks``, ``--pixie-traversals``,
``--pixie-termination``, chosen on the validation pairs). Both are computed
once per seed on the seed's evaluation pairs and cached like the runs.

Usage::

    python examples/dblp_comparison.py [--steps 300] [--seeds 0 1 2]
        [--models text pinsage ...] [--raw-dir PATH]

Each (model, seed) run is saved under ``--cache``, so seeds can run in
parallel processes (``--seeds 1 --no-aggregate``) and a last call with all
seeds aggregates. Writes ``benchmarks/results/dblp_comparison.json``
(``{model: {metric: {"mean": ..., "std": ...}}}``) and a bar chart
``benchmarks/results/dblp_comparison.png``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from pyg_multisage import experiment as ex
from pyg_multisage.references import pixie_metrics, raw_feature_embeddings

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
#: Model names of the JSON and the table -> the main job's model names.
MODELS = {
    "text": "text",
    "pinsage": "pinsage",
    "gat": "gat",
    "han": "han",
    "multisage-2": "multisage-2",
    "multisage-3": "multisage",
    "omnisage": "omnisage",
}
#: Rows with no training (MultiSage Table 2's Textual and Pixie rows).
REFERENCES = ("raw features", "Pixie (walk counts)")


def _comparable(config: ex.RunConfig) -> dict:
    """The settings a cached run must share to be reused."""
    return {k: v for k, v in vars(config).items() if k not in ("progress", "raw_dir")}


def reference_rows(
    task: ex.Task, config: ex.RunConfig, pixie: dict, cache: Path
) -> dict[str, dict[str, float]]:
    """The non-learned rows for one seed, on the pairs a model run with this
    config scores (:func:`pyg_multisage.experiment.cap_pairs` of the
    evaluation split with the run's seed): cosine ranking of the raw title
    features, and Pixie's ranking by the visit counts of random walks from
    the query through every context type
    (:func:`pyg_multisage.references.pixie_metrics`, walks seeded with the
    run's seed). Cached under :obj:`cache` like the model runs."""
    key = {
        "eval_split": config.eval_split,
        "max_eval_pairs": config.max_eval_pairs,
        "seed": config.seed,
        "pixie": pixie,
        "dataset": config.dataset,
    }
    path = cache / f"references-s{config.seed}.json"
    if path.is_file():
        done = json.loads(path.read_text())
        if done["config"] == key:
            return done["metrics"]
    pairs = ex.cap_pairs(
        task.pairs[config.eval_split], config.max_eval_pairs, config.seed
    )
    rows = {
        "raw features": ex.evaluate(
            raw_feature_embeddings(task.data[task.target].x), pairs
        ),
        "Pixie (walk counts)": pixie_metrics(
            task.data,
            pairs,
            target=task.target,
            contexts=task.contexts,
            seed=config.seed,
            **pixie,
        ),
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"config": key, "metrics": rows}, indent=1))
    tmp.replace(path)
    return rows


def aggregate(runs: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Mean and (sample) standard deviation of each metric over seeds."""
    out = {}
    for key in runs[0]:
        values = [r[key] for r in runs]
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        out[key] = {"mean": statistics.fmean(values), "std": std}
    return out


def write_csv(results: dict, path: Path) -> None:
    """The table as CSV (``mean ± std`` cells), included by the docs page."""
    fmt = lambda v, c: ("{:.2f}" if c in ("INT", "UNI") else "{:.4f}").format(v)
    lines = [",".join(["model", *ex.METRIC_COLUMNS])]
    for name, row in results.items():
        cells = [
            "N/A"
            if c not in row
            else f"{fmt(row[c]['mean'], c)} ± {fmt(row[c]['std'], c)}"
            if isinstance(row[c], dict)
            else fmt(row[c], c)
            for c in ex.METRIC_COLUMNS
        ]
        lines.append(",".join([name, *cells]))
    path.write_text("\n".join(lines) + "\n")


def plot(results: dict, path: Path, metrics=("MRR", "REC@10", "JAC")) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.6))
    for ax, metric in zip(axes, metrics, strict=True):
        means = [results[m][metric]["mean"] for m in names]
        stds = [results[m][metric]["std"] for m in names]
        colors = [
            "#d62728"
            if m.startswith("multisage")
            else "#1f77b4"
            if m in REFERENCES
            else "#7f7f7f"
            for m in names
        ]
        ax.bar(names, means, yerr=stds, color=colors, capsize=3)
        ax.set_title(metric)
        ax.tick_params(axis="x", rotation=45)
    fig.suptitle("DBLP same-author paper retrieval (test pairs, mean ± std)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--negatives", type=int, default=256)
    ap.add_argument("--raw-dir", help="raw DBLP files (default: $PYG_MULTISAGE_DBLP)")
    ap.add_argument("--root", default=None, help="processed dataset folder")
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument("--name", default="dblp_comparison")
    ap.add_argument(
        "--cache",
        default=str(ROOT / "runs" / "dblp_comparison"),
        help="one metrics file per (model, seed); finished runs are reused, so "
        "seeds can run in parallel processes and a last call aggregates",
    )
    ap.add_argument("--threads", type=int, default=None, help="torch threads")
    ap.add_argument(
        "--eval-pairs", type=int, default=0, help="cap on test pairs scored (0: all)"
    )
    ap.add_argument(
        "--pixie-walks",
        type=int,
        default=3000,
        help="Pixie reference: walks per query and context type (chosen on the "
        "validation pairs among 100, 1000, 3000, 10000 by MRR per CPU time)",
    )
    ap.add_argument(
        "--pixie-traversals", type=int, default=3, help="Pixie: traversals per walk"
    )
    ap.add_argument(
        "--pixie-termination",
        type=float,
        default=0.5,
        help="Pixie: termination probability after a traversal",
    )
    ap.add_argument("--no-aggregate", action="store_true", help="only run")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    base = ex.RunConfig(
        dataset="dblp",
        raw_dir=args.raw_dir,
        root=args.root,
        steps=args.steps,
        batch_size=args.batch_size,
        num_negatives=args.negatives,
        max_eval_pairs=args.eval_pairs,
        progress=False,
    )
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    per_model: dict[str, list[dict[str, float]]] = {m: [] for m in args.models}
    seconds: dict[str, list[float]] = {m: [] for m in args.models}
    jobs = [(m, s) for s in args.seeds for m in args.models]
    task = None
    for name, seed in tqdm(jobs, desc="dblp comparison"):
        path = cache / f"{name}-s{seed}.json"
        config = ex.RunConfig(**{**vars(base), "model": MODELS[name], "seed": seed})
        if path.is_file():
            done = json.loads(path.read_text())
            if done["config"] == _comparable(config):
                per_model[name].append(done["metrics"])
                seconds[name].append(done["seconds"])
                continue
        task = task or ex.load_task(base)
        t0 = time.perf_counter()
        result = ex.run(config, task)
        took = time.perf_counter() - t0
        record = {"config": _comparable(config), "metrics": result.metrics}
        path.write_text(json.dumps({**record, "seconds": took}, indent=1))
        seconds[name].append(took)
        per_model[name].append(result.metrics)
    if args.no_aggregate:
        return {}

    results = {m: aggregate(runs) for m, runs in per_model.items()}
    # Non-learned references, once per seed on the same evaluation pairs.
    pixie = {
        "num_walks": args.pixie_walks,
        "num_traversals": args.pixie_traversals,
        "termination_prob": args.pixie_termination,
    }
    task = task or ex.load_task(base)
    refs = [
        reference_rows(task, ex.RunConfig(**{**vars(base), "seed": s}), pixie, cache)
        for s in args.seeds
    ]
    for name in REFERENCES:
        results[name] = aggregate([r[name] for r in refs])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "steps": args.steps,
        "batch_size": args.batch_size,
        "negatives": args.negatives,
        "seeds": args.seeds,
        "seconds_per_run": {m: statistics.fmean(s) for m, s in seconds.items()},
        "split": base.eval_split,
        "references": {
            "raw features": "cosine of the L2-normalized input features",
            "Pixie (walk counts)": {"walks_per_context": pixie, "seed": "run seed"},
        },
    }
    (out / f"{args.name}.json").write_text(
        json.dumps({**results, "_meta": meta}, indent=2)
    )
    nan = {"mean": float("nan"), "std": float("nan")}
    print(
        ex.format_table(
            {
                m: {c: r.get(c, nan) for c in ex.METRIC_COLUMNS}
                for m, r in results.items()
            }
        )
    )
    write_csv(results, out / f"{args.name}.csv")
    try:
        plot(results, out / f"{args.name}.png")
        docs_static = ROOT / "docs" / "_static"
        if docs_static.is_dir() and out.resolve() == RESULTS.resolve():
            plot(results, docs_static / f"{args.name}.png")
    except ImportError:
        print("matplotlib missing: no plot (pip install 'pyg_multisage[plot]')")
    if "pinsage" in results and "multisage-3" in results:
        ratio = (
            results["multisage-3"]["MRR"]["mean"] / results["pinsage"]["MRR"]["mean"]
        )
        print(f"\nMultiSage-3 MRR / PinSage-style MRR = {ratio:.3f} (target >= 1.10)")
    return results


if __name__ == "__main__":
    main()
