"""MultiSage Fig. 5: contextual combination × attention, on validation pairs.

MultiSage §3.2 ("Ablation tests", Fig. 5) compares ``trans``, ``concat``,
``mask``, ``mask-diff`` and ``mask-atn`` (the full model). This script trains
every cell of the grid ``combine`` (:obj:`"mask"`, :obj:`"trans"`,
:obj:`"concat"`; Eq. 5) × ``attention`` (``atn``: the three-way attention of
Eq. 6, ``diff``: the difference-based weights of §3.3.1, ``mean``: none) with
the main job (:func:`pyg_multisage.experiment.run`, model ``multisage``, every
context type), each with the same data, neighbors, negatives, loss and a small
step budget, and scores it on the *validation* pairs (``eval_split='val'``;
the test split is never read). Validation MRR is also recorded every
``--eval-every`` steps, the curves of Fig. 5.

Usage::

    python examples/multisage_ablation.py                      # synthetic, ~1 min
    PYG_MULTISAGE_DBLP=/path/to/dblp \\
        python examples/multisage_ablation.py --dataset dblp --steps 200 --threads 1

Each (cell, seed) run is saved under ``--cache`` (JSON, written to a
temporary file and renamed) and reused when its settings match, so an
interrupted grid continues where it stopped. Writes
``benchmarks/results/multisage_ablation_<dataset>.json`` (one entry per cell:
``{"combine", "attention", "metrics": {metric: {"mean", "std"}},
"history": [...], "seconds"}``) and a bar chart + curves PNG next to it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

from pyg_multisage import experiment as ex
from pyg_multisage.run_folder import save_figure

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
#: Short names of the attention variants (the paper's "-atn", "-diff").
ATTENTIONS: dict[str, str | None] = {"atn": "three_way", "diff": "diff", "mean": None}
COMBINES = ("mask", "trans", "concat")
#: Metrics drawn as bars.
BAR_METRICS = ("MRR", "REC@10", "DC*")


def cell_name(combine: str, attention: str) -> str:
    """``mask-atn``, ``trans-mean``, ... (MultiSage Fig. 5's labels)."""
    return f"{combine}-{attention}"


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    tmp.replace(path)


def run_cell(
    config: ex.RunConfig, cache: Path, task_fn
) -> tuple[dict[str, float], list[dict[str, float]], float]:
    """``(metrics, history, seconds)`` of one cell, from :obj:`cache` when a
    finished run with the same settings is there, else trained with
    :func:`pyg_multisage.experiment.run` and cached."""
    att = config.attention or "mean"
    path = cache / f"{config.combine}-{att}-s{config.seed}.json"
    if path.is_file():
        done = json.loads(path.read_text())
        if done["config"] == ex.config_key(config):
            return done["metrics"], done["history"], done["seconds"]
    t0 = time.perf_counter()
    result = ex.run(config, task_fn())
    took = time.perf_counter() - t0
    # Validation rows only (Fig. 5's curves): step, MRR, REC@10.
    history = [
        {
            "step": int(h["step"]),
            "MRR": float(h["eval/MRR"]),
            "REC@10": float(h["eval/REC@10"]),
        }
        for h in result.history
        if h.get("eval/MRR") is not None
    ]
    _write_json(
        path,
        {
            "config": ex.config_key(config),
            "metrics": result.metrics,
            "history": history,
            "seconds": took,
        },
    )
    return result.metrics, history, took


def plot(cells: dict[str, dict], path: Path, title: str) -> None:
    """Bars of :data:`BAR_METRICS` per cell and validation-MRR curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(cells)
    colors = {"mask": "#d62728", "trans": "#1f77b4", "concat": "#2ca02c"}
    n = len(BAR_METRICS) + 1
    fig, axes = plt.subplots(1, n, figsize=(4.0 * n, 3.8))
    for ax, metric in zip(axes, BAR_METRICS, strict=False):
        means = [cells[c]["metrics"][metric]["mean"] for c in names]
        stds = [cells[c]["metrics"][metric]["std"] for c in names]
        ax.bar(
            names,
            means,
            yerr=stds if any(stds) else None,
            capsize=3,
            color=[colors[cells[c]["combine"]] for c in names],
        )
        ax.set_title(f"{metric} (validation)")
        ax.tick_params(axis="x", rotation=60)
    ax = axes[-1]
    for c in names:
        hist = [h for h in cells[c]["history"] if "MRR" in h]
        if hist:
            style = "-" if c.endswith("atn") else "--" if c.endswith("diff") else ":"
            ax.plot(
                [h["step"] for h in hist],
                [h["MRR"] for h in hist],
                style,
                color=colors[cells[c]["combine"]],
                label=c,
            )
    ax.set_title("validation MRR during training (seed 0)")
    ax.set_xlabel("step")
    if ax.get_lines():
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, "no curves (--eval-every 0)", ha="center")
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", choices=("synthetic", "dblp"), default="synthetic")
    ap.add_argument("--combines", nargs="+", choices=COMBINES, default=list(COMBINES))
    ap.add_argument(
        "--attentions", nargs="+", choices=list(ATTENTIONS), default=list(ATTENTIONS)
    )
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--steps", type=int, default=30, help="optimizer steps per cell")
    ap.add_argument("--batch-size", type=int, default=64, help="pairs per step")
    ap.add_argument("--negatives", type=int, default=128, help="random negatives")
    ap.add_argument(
        "--eval-every",
        type=int,
        default=None,
        help="validate every N steps for the curves (default: steps // 3; "
        "0: no curves)",
    )
    ap.add_argument(
        "--eval-pairs", type=int, default=0, help="cap on validation pairs (0: all)"
    )
    ap.add_argument(
        "--synthetic-targets", type=int, default=1000, help="synthetic: targets"
    )
    ap.add_argument("--raw-dir", help="raw DBLP files (default: $PYG_MULTISAGE_DBLP)")
    ap.add_argument("--root", default=None, help="processed dataset folder")
    ap.add_argument("--out", default=str(RESULTS), help="folder of the JSON and PNG")
    ap.add_argument(
        "--cache",
        default=None,
        help="one JSON per (cell, seed), reused when the settings match "
        "(default: runs/multisage_ablation-<dataset>)",
    )
    ap.add_argument("--threads", type=int, default=None, help="torch threads")
    return ap


def main(argv: list[str] | None = None) -> dict:
    ap = build_parser()
    args = ap.parse_args(argv)
    for name in ("steps", "batch_size", "synthetic_targets"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be >= 1")
    raw_dir = args.raw_dir
    if args.dataset == "dblp":
        raw_dir = raw_dir or os.environ.get("PYG_MULTISAGE_DBLP")
        if not raw_dir:
            ap.error("--dataset dblp needs --raw-dir or $PYG_MULTISAGE_DBLP")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.eval_every is not None and args.eval_every < 0:
        ap.error("--eval-every must be >= 0 (0: no curves)")
    if args.eval_every == 0:
        eval_every = None  # no curves: a DBLP validation pass costs ~40 s
    else:
        eval_every = args.eval_every or max(1, args.steps // 3)
    synthetic = (
        {"num_targets": args.synthetic_targets, "num_contexts": 100}
        if args.dataset == "synthetic"
        else {}
    )
    cache = Path(args.cache or ROOT / "runs" / f"multisage_ablation-{args.dataset}")
    cache.mkdir(parents=True, exist_ok=True)
    task = None

    def task_fn() -> ex.Task:
        nonlocal task
        if task is None:
            task = ex.load_task(configs[0])
        return task

    configs = []
    cells: dict[str, dict] = {}
    for combine in args.combines:
        for att in args.attentions:
            runs, histories, seconds = [], [], []
            for seed in args.seeds:
                config = ex.RunConfig(
                    dataset=args.dataset,
                    model="multisage",
                    raw_dir=raw_dir,
                    root=args.root,
                    seed=seed,
                    steps=args.steps,
                    batch_size=args.batch_size,
                    num_negatives=args.negatives,
                    combine=combine,
                    attention=ATTENTIONS[att],
                    eval_every=eval_every,
                    eval_split="val",
                    max_eval_pairs=args.eval_pairs,
                    progress=False,
                    synthetic=synthetic,
                )
                configs.append(config)
                metrics, history, took = run_cell(config, cache, task_fn)
                runs.append(metrics)
                histories.append(history)
                seconds.append(took)
            name = cell_name(combine, att)
            cells[name] = {
                "combine": combine,
                "attention": ATTENTIONS[att],
                "metrics": ex.aggregate(runs),
                "history": histories[0],
                "seconds": statistics.fmean(seconds),
            }
            m = cells[name]["metrics"]
            print(
                f"{name:12s} val MRR {m['MRR']['mean']:.4f}  "
                f"REC@10 {m['REC@10']['mean']:.4f}  ({cells[name]['seconds']:.0f} s)",
                flush=True,
            )
    result = {
        "_meta": {
            "figure": "MultiSage Fig. 5 (ablation of Eq. 5 combine x attention)",
            "dataset": args.dataset,
            "split": "val",
            "model": "multisage (every context type)",
            "steps": args.steps,
            "batch_size": args.batch_size,
            "negatives": args.negatives,
            "eval_every": eval_every,
            "seeds": args.seeds,
            "synthetic": synthetic,
            "threads": torch.get_num_threads(),
        },
        "cells": cells,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"multisage_ablation_{args.dataset}"
    _write_json(out / f"{stem}.json", result)
    try:
        plot(
            cells,
            out / f"{stem}.png",
            f"MultiSage Fig. 5 ablation, {args.dataset} validation pairs, "
            f"{args.steps} steps",
        )
    except ImportError:
        print("matplotlib missing: no plot (pip install 'pyg_multisage[plot]')")
    return result


if __name__ == "__main__":
    try:
        main()
    except (ValueError, FileNotFoundError) as err:
        print(f"multisage_ablation.py: {err}", file=sys.stderr)
        sys.exit(2)
