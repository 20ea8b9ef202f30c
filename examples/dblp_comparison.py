"""MultiSage Table 2 on real data: every model on DBLP same-author retrieval.

Models (the paper's comparison, §3.2): text-only, PinSage-style (random-walk
neighbors, no context), GAT, HAN (PyG's ``HANConv`` over the paper–venue–paper
and paper–term–paper metapaths), MultiSage-2 (venue context), MultiSage-3
(venue + term contexts) and OmniSage (PPR neighbors, transformer aggregator).
All get the same features, walk neighbors, training pairs, negatives, loss and
budget (:mod:`pyg_multisage.experiment`).

How the numbers are made, in order:

1. **Sweep** (validation pairs only): for every model, the same small grid of
   learning rates (``--sweep-lr``) and initial softmax temperatures
   (``--sweep-temperature``) is trained on seed ``--sweep-seed`` for a
   fraction ``--sweep-budget`` of the main budget; the cell with the best
   validation MRR is that model's setting.
2. **Training to convergence**: every model trains with its setting for at
   most ``--epochs`` epochs (one epoch: one pass over the training pairs),
   validated ``--evals-per-epoch`` times per epoch, stopped early after
   ``--patience`` validations without a better validation MRR; the best
   weights are restored and reported with their epoch.
3. **Test, once**: the best weights of each (model, seed) are scored once on
   the test pairs against the pool of all papers; the table reports mean ±
   std over ``--seeds``.

Two rows need no training and show what learning adds (MultiSage Table 2's
Textual and Pixie rows, :mod:`pyg_multisage.references`): ``raw features``
(cosine of the input title features) and ``Pixie (walk counts)`` (the pool
ranked by the visit counts of random walks from the query through every
context type; ``--pixie-walks``, ``--pixie-traversals``,
``--pixie-termination``, chosen on the validation pairs).

Usage::

    python examples/dblp_comparison.py [--epochs 4] [--seeds 0 1 2] [--jobs N]
        [--models text pinsage ...] [--raw-dir PATH]

Cost on a 2-core CPU (``docs/comparison.rst``): with the defaults (two runs
at a time) the whole table, all nine rows, 3 seeds and the sweep's 27
two-epoch cells, takes about 80 minutes; ``omnisage`` with its PPR graph is
about a third of it (16× the text MLP per epoch), so leave it out of
``--models`` on a small machine or add it later with ``--update``.

Resumable: each (model, seed, setting) run is a run folder under ``--cache``
(an interrupted run continues from its last checkpoint) and a finished run's
record is reused, so a second call only aggregates. ``--jobs N`` trains N
runs at a time in separate processes. Writes
``benchmarks/results/dblp_comparison.json`` (``{model: {metric: {"mean": ...,
"std": ...}}}`` plus ``_meta``: settings, sweep, best epochs, seconds), a CSV,
a bar chart and the validation learning curves
(``dblp_comparison_curves.png``, one line per model). ``--update`` adds the
rows of ``--models`` to an existing table made with the same shared
settings (budget, batch, negatives, seeds, sweep grid; refused otherwise,
before any training) and keeps its other rows: one model joins a finished
comparison without the others being trained again.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import signal
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import torch
from tqdm.auto import tqdm

from pyg_multisage import experiment as ex
from pyg_multisage.references import pixie_metrics, raw_feature_embeddings
from pyg_multisage.run_folder import save_figure

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
    "omnisage (no graph)": "omnisage-nograph",
    "pinsage (venue only)": "pinsage-2",
}
#: Seconds per epoch relative to ``text`` (the one-epoch sweep cells of the
#: 2-core table, two runs at a time, 1 thread each): the order in which
#: parallel runs start.
RELATIVE_COST = {
    "omnisage": 16.2,
    "multisage-3": 7.4,
    "gat": 6.2,
    "han": 3.8,
    "multisage-2": 3.4,
    "pinsage": 2.2,
    "omnisage (no graph)": 1.9,
    "pinsage (venue only)": 1.8,
    "text": 1.0,
}
#: OmniSage rows' Eq. 6 weight lambda_f of the entity-feature task, chosen on
#: the validation pairs (``docs/comparison.rst``).
LAMBDA_FEAT = 0.1
#: Rows with no training (MultiSage Table 2's Textual and Pixie rows).
REFERENCES = ("raw features", "Pixie (walk counts)")


@dataclass(frozen=True)
class Job:
    """One training run: a sweep cell (scored on validation pairs) or a
    final run (scored once on the test pairs)."""

    kind: str  # "sweep" or "final"
    name: str  # model name of the table
    config: ex.RunConfig
    cache: str

    @property
    def tag(self) -> str:
        c = self.config
        return f"{self.kind}-{self.name}-s{c.seed}-lr{c.lr:g}-t{c.temperature:g}"

    @property
    def record_path(self) -> Path:
        return Path(self.cache) / f"{self.tag}.json"

    def cached(self) -> dict | None:
        """The finished record of this run, if one with the same settings
        exists."""
        if self.record_path.is_file():
            done = json.loads(self.record_path.read_text())
            if done["config"] == ex.config_key(self.config):
                return done
        return None


def model_settings(name: str, args: argparse.Namespace) -> dict:
    """Settings of table row :obj:`name` on top of the shared ones: the
    OmniSage rows' Eq. 6 weight of the entity–feature task
    (``--lambda-feat``)."""
    if MODELS[name].startswith("omnisage"):
        return {"lambda_feat": args.lambda_feat}
    return {}


def run_job(job: Job, threads: int | None = None) -> dict:
    """Trains one job (resuming its run folder if it was interrupted) and
    writes its record: the metrics, validation curve, best epoch and
    seconds."""
    if threads:
        torch.set_num_threads(threads)
    done = job.cached()
    if done is not None:
        return done
    run_dir = Path(job.cache) / "runs" / job.tag
    config = ex.RunConfig(**{**vars(job.config), "output_dir": str(run_dir)})
    partial = ex.partial_dir(run_dir)
    resume = partial.is_dir() and (partial / "config.json").is_file()
    if resume:
        saved = ex.read_config(partial / "config.json")
        resume = ex.config_key(saved) == ex.config_key(config)
    t0 = time.perf_counter()
    result = ex.run(config, resume=resume, overwrite=not resume)
    record = {
        "config": ex.config_key(job.config),
        "metrics": result.metrics,
        "val_curve": result.val_curve,
        "best_epoch": result.best_epoch,
        "best_val": max((r["MRR"] for r in result.val_curve), default=None),
        "stopped_early": result.stopped_early,
        "steps_per_epoch": result.steps_per_epoch,
        "seconds": time.perf_counter() - t0,
    }
    tmp = job.record_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1))
    tmp.replace(job.record_path)
    return record


def stop_with_parent(parent: int, poll: float = 1.0) -> None:
    """Pool initializer: when the comparison's process dies without shutting
    its pool down (``kill``, a lost terminal), the worker interrupts its run
    as SIGTERM does (the current step finishes and is checkpointed, then the
    worker exits) instead of training on as an orphan that a restarted
    comparison would race for the same run folder."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="stop-with-parent", daemon=True).start()


def run_jobs(jobs: list[Job], num_jobs: int, threads: int | None, desc: str):
    """Records of :obj:`jobs` (in order), trained :obj:`num_jobs` at a time
    in separate processes (``1``: in this process), with a progress bar."""
    out: dict[int, dict] = {}
    todo = []
    for i, job in enumerate(jobs):
        done = job.cached()
        if done is not None:
            out[i] = done
        else:
            todo.append(i)
    bar = tqdm(total=len(jobs), initial=len(out), desc=desc)
    if num_jobs <= 1 or len(todo) <= 1:
        for i in todo:
            out[i] = run_job(jobs[i], threads)
            bar.update(1)
    else:
        ctx = get_context("spawn")
        # Longest runs first, so that no long run starts last.
        todo.sort(key=lambda i: -RELATIVE_COST.get(jobs[i].name, 1.0))
        with ProcessPoolExecutor(
            num_jobs,
            mp_context=ctx,
            initializer=stop_with_parent,
            initargs=(os.getpid(),),
        ) as pool:
            futures = {pool.submit(run_job, jobs[i], threads): i for i in todo}
            for future in as_completed(futures):
                out[futures[future]] = future.result()
                bar.update(1)
    bar.close()
    return [out[i] for i in range(len(jobs))]


def sweep(
    base: ex.RunConfig, args: argparse.Namespace, num_jobs: int, threads: int | None
) -> dict[str, dict]:
    """Per model, the grid cell with the best validation MRR (ties: the
    first cell), trained on :obj:`args.sweep_seed` for
    :obj:`args.sweep_budget` of the main budget."""
    scaled = {}
    if base.epochs is not None:
        scaled["epochs"] = base.epochs * args.sweep_budget
    else:
        scaled["steps"] = max(1, math.ceil(base.steps * args.sweep_budget))
    grid = [(lr, t) for lr in args.sweep_lr for t in args.sweep_temperature]
    jobs = [
        Job(
            "sweep",
            name,
            ex.RunConfig(
                **{
                    **vars(base),
                    **scaled,
                    **model_settings(name, args),
                    "model": MODELS[name],
                    "seed": args.sweep_seed,
                    "lr": lr,
                    "temperature": t,
                    "eval_split": "val",
                    "patience": None,
                }
            ),
            args.cache,
        )
        for name in args.models
        for lr, t in grid
    ]
    records = run_jobs(jobs, num_jobs, threads, "sweep (validation)")
    chosen: dict[str, dict] = {}
    for job, rec in zip(jobs, records, strict=True):
        val = rec["best_val"] if rec["best_val"] is not None else rec["metrics"]["MRR"]
        cell = {"lr": job.config.lr, "temperature": job.config.temperature}
        entry = chosen.setdefault(job.name, {"grid": [], "best": None, "val": -1.0})
        entry["grid"].append({**cell, "val_MRR": val})
        if val > entry["val"]:
            entry["best"], entry["val"] = cell, val
    return chosen


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
    save_figure(fig, path)


def plot_curves(records: dict[str, list[dict]], path: Path) -> None:
    """Validation MRR against epochs, one line per model (mean over seeds
    at each validation; a seed that stopped early drops out)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for name, recs in records.items():
        points: dict[float, list[float]] = {}
        for rec in recs:
            for row in rec["val_curve"]:
                points.setdefault(round(row["epoch"], 4), []).append(row["MRR"])
        if not points:
            continue
        xs = sorted(points)
        ax.plot(xs, [statistics.fmean(points[x]) for x in xs], marker="o", label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation MRR")
    ax.set_title("DBLP learning curves (validation pairs, mean over seeds)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    budget = ap.add_mutually_exclusive_group()
    budget.add_argument(
        "--epochs", type=float, default=None, help="maximum epochs (default: 4)"
    )
    budget.add_argument("--steps", type=int, default=None, help="maximum steps")
    ap.add_argument("--evals-per-epoch", type=int, default=2)
    ap.add_argument(
        "--eval-every", type=int, default=None, help="validate every so many steps"
    )
    ap.add_argument(
        "--patience", type=int, default=2, help="validations without improvement"
    )
    ap.add_argument("--batch-size", type=int, default=512)
    ap.add_argument("--negatives", type=int, default=256)
    ap.add_argument(
        "--feature-skip",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="every model gets the learned linear skip from the raw features "
        "(RunConfig.feature_skip; chosen on validation, docs/comparison.rst)",
    )
    ap.add_argument(
        "--hard-negatives",
        type=int,
        default=0,
        help="PinSage's hard-negative curriculum, at most so many per query",
    )
    ap.add_argument(
        "--sweep-lr",
        nargs="+",
        type=float,
        default=[3e-3, 6e-3, 1.2e-2],
        help="learning rates of the sweep (default: 0.003 0.006 0.012)",
    )
    ap.add_argument(
        "--sweep-temperature",
        nargs="+",
        type=float,
        default=[10.0],
        help="initial softmax temperatures of the sweep (default: 10; 20 lost "
        "every one-epoch cell but text's by more than it won, "
        "docs/comparison.rst)",
    )
    ap.add_argument(
        "--sweep-budget",
        type=float,
        default=0.5,
        help="fraction of the main budget each sweep cell trains (default: "
        "two epochs of the 4; shorter cells favour the fastest-starting rate "
        "and hid OmniSage's, docs/comparison.rst)",
    )
    ap.add_argument("--sweep-seed", type=int, default=0)
    ap.add_argument("--raw-dir", help="raw DBLP files (default: $PYG_MULTISAGE_DBLP)")
    ap.add_argument("--root", default=None, help="processed dataset folder")
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument("--name", default="dblp_comparison")
    ap.add_argument(
        "--cache",
        default=str(ROOT / "runs" / "dblp_comparison"),
        help="one run folder and record per (model, seed, setting); finished "
        "runs are reused and interrupted ones resumed",
    )
    ap.add_argument(
        "--jobs",
        type=int,
        default=min(4, os.cpu_count() or 1),
        help="runs trained at a time, one process each (default: the CPU "
        "count, at most 4)",
    )
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads per run (default: CPU count / jobs)",
    )
    ap.add_argument(
        "--eval-pairs", type=int, default=0, help="cap on test pairs scored (0: all)"
    )
    ap.add_argument(
        "--val-pairs",
        type=int,
        default=0,
        help="cap on validation pairs scored at each validation (0: all)",
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
    ap.add_argument(
        "--lambda-feat",
        type=float,
        default=LAMBDA_FEAT,
        help="OmniSage rows: Eq. 6's weight of the entity-feature task (chosen "
        "on the validation pairs, docs/comparison.rst)",
    )
    ap.add_argument("--no-aggregate", action="store_true", help="only run")
    ap.add_argument(
        "--update",
        action="store_true",
        help="keep the rows of models not in --models from the existing "
        "<out>/<name>.json (made with the same shared settings) and add or "
        "replace those of --models",
    )
    args = ap.parse_args(argv)
    for name in ("jobs", "batch_size", "patience", "evals_per_epoch"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be >= 1")
    if not args.lambda_feat >= 0:
        ap.error("--lambda-feat must be >= 0")
    if not 0 < args.sweep_budget <= 1:
        ap.error("--sweep-budget must be in (0, 1]")
    if args.epochs is None and args.steps is None:
        args.epochs = 4.0
    threads = args.threads or max(1, (os.cpu_count() or 1) // args.jobs)
    torch.set_num_threads(threads)

    base = ex.RunConfig(
        dataset="dblp",
        raw_dir=args.raw_dir,
        root=args.root,
        steps=args.steps,
        epochs=args.epochs,
        evals_per_epoch=args.evals_per_epoch,
        eval_every=args.eval_every,
        patience=args.patience,
        batch_size=args.batch_size,
        num_negatives=args.negatives,
        feature_skip=args.feature_skip,
        hard_negatives=args.hard_negatives,
        max_eval_pairs=args.eval_pairs,
        max_val_pairs=args.val_pairs,
        progress=False,
    )
    if base.epochs is None and base.eval_every is None:
        ap.error("--steps needs --eval-every (the validation interval)")
    Path(args.cache).mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    earlier = Path(args.out) / f"{args.name}.json"
    earlier = earlier if args.update and earlier.is_file() else None
    if earlier is not None:  # refused before any work
        differ = settings_differ(earlier, shared_settings(args, base.eval_split))
        if differ:
            ap.error(
                f"--update: {earlier} was made with other settings "
                f"({', '.join(differ)}); run without --update or with its settings"
            )
    task = ex.load_task(base)  # processes the raw files once, before any worker

    chosen = sweep(base, args, args.jobs, threads)
    finals = [
        Job(
            "final",
            name,
            ex.RunConfig(
                **{
                    **vars(base),
                    **model_settings(name, args),
                    "model": MODELS[name],
                    "seed": seed,
                    **chosen[name]["best"],
                }
            ),
            args.cache,
        )
        for seed in args.seeds
        for name in args.models
    ]
    records = run_jobs(finals, args.jobs, threads, "dblp comparison (test once)")
    if args.no_aggregate:
        return {}
    per_model: dict[str, list[dict]] = {m: [] for m in args.models}
    for job, rec in zip(finals, records, strict=True):
        per_model[job.name].append(rec)
    results = {
        m: ex.aggregate([r["metrics"] for r in recs]) for m, recs in per_model.items()
    }
    # Non-learned references, once per seed on the same evaluation pairs.
    pixie = {
        "num_walks": args.pixie_walks,
        "num_traversals": args.pixie_traversals,
        "termination_prob": args.pixie_termination,
    }
    refs = [
        reference_rows(
            task, ex.RunConfig(**{**vars(base), "seed": s}), pixie, Path(args.cache)
        )
        for s in args.seeds
    ]
    for name in REFERENCES:
        results[name] = ex.aggregate([r[name] for r in refs])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    seconds = {m: [r["seconds"] for r in recs] for m, recs in per_model.items()}
    shared = shared_settings(args, base.eval_split)
    meta = {
        **shared,
        "sweep": {**shared["sweep"], "chosen": chosen},
        "best_epoch": {
            m: [r["best_epoch"] for r in recs] for m, recs in per_model.items()
        },
        "stopped_early": {
            m: [r["stopped_early"] for r in recs] for m, recs in per_model.items()
        },
        "val_curves": {
            m: [r["val_curve"] for r in recs] for m, recs in per_model.items()
        },
        "seconds_per_run": {m: statistics.fmean(s) for m, s in seconds.items()},
        "wall_seconds_this_call": time.perf_counter() - t_start,
        "jobs": args.jobs,
        "threads_per_job": threads,
        "references": {
            "raw features": "cosine of the L2-normalized input features",
            "Pixie (walk counts)": {"walks_per_context": pixie, "seed": "run seed"},
        },
    }
    meta["protocol_call"] = [
        {
            "command": "python examples/dblp_comparison.py "
            + shlex.join(sys.argv[1:] if argv is None else argv),
            "code": code_version(),
            "models": list(args.models),
            "wall_seconds": meta["wall_seconds_this_call"],
        }
    ]
    curves = per_model
    if earlier is not None:
        results, meta = merge_earlier(earlier, results, meta, args.models)
        curves = {
            m: [{"val_curve": c} for c in meta["val_curves"][m]]
            for m in meta["val_curves"]
        }
    tmp = out / f"{args.name}.json.tmp"
    tmp.write_text(json.dumps({**results, "_meta": meta}, indent=2))
    tmp.replace(out / f"{args.name}.json")
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
        plot_curves(curves, out / f"{args.name}_curves.png")
        docs_static = ROOT / "docs" / "_static"
        if docs_static.is_dir() and out.resolve() == RESULTS.resolve():
            plot(results, docs_static / f"{args.name}.png")
            plot_curves(curves, docs_static / f"{args.name}_curves.png")
    except ImportError:
        print("matplotlib missing: no plot (pip install 'pyg_multisage[plot]')")
    print_targets(results)
    return results


#: ``_meta`` entries holding one value per model.
PER_MODEL = ("best_epoch", "stopped_early", "val_curves", "seconds_per_run")


def shared_settings(args: argparse.Namespace, split: str) -> dict:
    """The ``_meta`` settings that every row of one table shares: budget,
    validation and stopping, batch, negatives, options, seeds, evaluation
    split and the sweep grid."""
    return {
        "budget": {"epochs": args.epochs, "steps": args.steps},
        "evals_per_epoch": args.evals_per_epoch,
        "patience": args.patience,
        "batch_size": args.batch_size,
        "negatives": args.negatives,
        "feature_skip": args.feature_skip,
        "hard_negatives": args.hard_negatives,
        "lambda_feat (omnisage rows)": args.lambda_feat,
        "seeds": args.seeds,
        "split": split,
        "sweep": {
            "lr": args.sweep_lr,
            "temperature": args.sweep_temperature,
            "budget_fraction": args.sweep_budget,
            "seed": args.sweep_seed,
        },
    }


def settings_differ(path: Path, shared: dict) -> list[str]:
    """The names of the :func:`shared_settings` in which the table at
    :obj:`path` differs from :obj:`shared` (``sweep <key>`` for the grid)."""
    old = json.loads(path.read_text()).get("_meta", {})
    differ = [k for k in shared if k != "sweep" and old.get(k) != shared[k]]
    old_sweep = old.get("sweep", {})
    return differ + [
        f"sweep {k}" for k, v in shared["sweep"].items() if old_sweep.get(k) != v
    ]


def merge_earlier(
    path: Path, results: dict, meta: dict, models: list[str]
) -> tuple[dict, dict]:
    """``(results, meta)`` with the rows of an earlier table at :obj:`path`
    for the models not in :obj:`models` kept (with their sweep cells,
    curves, best epochs and seconds) and those of :obj:`models` taken from
    this call: a model added to a finished comparison without training the
    others again. The caller checks first that the earlier table shares
    the :func:`shared_settings` (:func:`settings_differ`)."""
    earlier = json.loads(path.read_text())
    old = earlier["_meta"]
    kept = [m for m in MODELS if m in earlier and m not in models]
    order = [m for m in MODELS if m in kept or m in results]
    merged = {m: earlier[m] if m in kept else results[m] for m in order}
    merged.update({m: results[m] for m in REFERENCES})
    meta = {**meta, "sweep": {**meta["sweep"]}}
    meta["sweep"]["chosen"] = {
        m: (old["sweep"]["chosen"] if m in kept else meta["sweep"]["chosen"])[m]
        for m in order
    }
    for key in PER_MODEL:
        meta[key] = {m: (old[key] if m in kept else meta[key])[m] for m in order}
    meta["rows_from_earlier_calls"] = kept
    # The calls that made the table, oldest first (each row was read once).
    meta["protocol_call"] = [*old.get("protocol_call", []), *meta["protocol_call"]]
    return merged, meta


def code_version() -> str | None:
    """The git commit of this checkout (``+changes`` when tracked files
    differ from it), or :obj:`None` outside a git checkout."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    try:
        head = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+changes" if dirty else "")


def print_targets(results: dict) -> None:
    """The issue's targets as ratios of mean MRR (where the rows exist)."""
    mrr = {m: r["MRR"]["mean"] for m, r in results.items()}
    raw = mrr.get("raw features")
    lines = []
    if raw:
        for m in MODELS:
            if m in mrr:
                lines.append(f"{m} MRR / raw features = {mrr[m] / raw:.2f}")
    baselines = [mrr[m] for m in ("text", "pinsage", "gat", "han") if m in mrr]
    if baselines and "multisage-3" in mrr:
        ratio = mrr["multisage-3"] / max(baselines)
        lines.append(f"multisage-3 MRR / best baseline = {ratio:.2f}")
    for a, b in (
        ("multisage-2", "pinsage"),
        ("omnisage", "pinsage"),
        ("omnisage", "omnisage (no graph)"),
    ):
        if a in mrr and b in mrr:
            lines.append(f"{a} MRR / {b} MRR = {mrr[a] / mrr[b]:.2f}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
