"""MultiSage Table 2 on real data: every model on DBLP same-author retrieval.

Models (the paper's comparison, §3.2): text-only, PinSage-style (random-walk
neighbors, no context), GAT, HAN (PyG's ``HANConv`` over the paper–venue–paper
and paper–term–paper metapaths), MultiSage-2 (venue context), MultiSage-3
(venue + term contexts) and OmniSage (PPR neighbors, transformer aggregator).
All get the same features, walk neighbors, training pairs, negatives, loss and
budget (:mod:`pyg_multisage.experiment`); each runs with several seeds and the
table reports mean ± std of the MultiSage §3.1 metrics on the *test* pairs
against the pool of all papers. Nothing is tuned on the test split.

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


def _comparable(config: ex.RunConfig) -> dict:
    """The settings a cached run must share to be reused."""
    return {k: v for k, v in vars(config).items() if k not in ("progress", "raw_dir")}


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
            f"{fmt(row[c]['mean'], c)} ± {fmt(row[c]['std'], c)}"
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
        colors = ["#d62728" if m.startswith("multisage") else "#7f7f7f" for m in names]
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
    # Reference point: cosine ranking of the raw title features, no training.
    task = task or ex.load_task(base)
    feats = task.data[task.target].x
    test = ex.cap_pairs(task.pairs["test"], args.eval_pairs, 0)
    raw_features = ex.evaluate(torch.nn.functional.normalize(feats, dim=-1), test)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "steps": args.steps,
        "batch_size": args.batch_size,
        "negatives": args.negatives,
        "seeds": args.seeds,
        "seconds_per_run": {m: statistics.fmean(s) for m, s in seconds.items()},
        "split": "test",
        "raw_features": raw_features,
    }
    (out / f"{args.name}.json").write_text(
        json.dumps({**results, "_meta": meta}, indent=2)
    )
    print(ex.format_table({**results, "(raw features)": raw_features}))
    write_csv(
        {**results, "raw features (no training)": raw_features},
        out / f"{args.name}.csv",
    )
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
