r"""OmniSage's task-combination ablation (OmniSage §4.2.5, Tables 5–6).

Trains the main job's ``omnisage`` row on the synthetic item–board graph
with user sequences (each user engages with items of one facet) under the
task combinations of the paper's ablation, the weights of Eq. 6 switched on
or off:

* ``EE``: entity–entity alone (:math:`\lambda_f = \lambda_s = 0`);
* ``EE+EF``: plus entity–feature (:math:`\lambda_s = 0`);
* ``EE+UE``: plus user–entity (:math:`\lambda_f = 0`);
* ``EE+EF+UE``: all three (Eq. 6).

Every combination gets the same graph, neighbors, seeds and budget, and is
scored on the *validation* item pairs (MRR, REC@10 against all items). The
results go to ``benchmarks/results/omnisage_task_ablation.json`` and a bar
chart next to it (``.png``); both are written to a temporary name and
renamed. ``python examples/omnisage_task_ablation.py`` runs in about two
minutes on one core; ``--steps`` and ``--targets`` shrink it.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from pyg_multisage import experiment as ex
from pyg_multisage.run_folder import save_figure, write_json

COMBINATIONS: dict[str, dict[str, float]] = {
    "EE": {"lambda_feat": 0.0, "lambda_seq": 0.0},
    "EE+EF": {"lambda_feat": 1.0, "lambda_seq": 0.0},
    "EE+UE": {"lambda_feat": 0.0, "lambda_seq": 1.0},
    "EE+EF+UE": {"lambda_feat": 1.0, "lambda_seq": 1.0},
}
RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def ablation(
    steps: int = 150,
    num_targets: int = 2000,
    num_users: int = 400,
    seeds: Sequence[int] = (0,),
    progress: bool = False,
) -> dict:
    """Val MRR / REC@10 of every task combination, mean over :obj:`seeds`."""
    synthetic = {
        "num_targets": num_targets,
        "num_contexts": max(20, num_targets // 10),
        "num_facets": 10,
        "num_users": num_users,
        "sequence_length": 10,
        "seed": 0,
    }
    task = ex.load_task(ex.RunConfig(synthetic=synthetic))
    rows: dict[str, dict] = {}
    for name, weights in COMBINATIONS.items():
        per_seed = []
        for seed in seeds:
            config = ex.RunConfig(
                dataset="synthetic",
                model="omnisage",
                steps=steps,
                batch_size=64,
                num_negatives=64,
                hidden_channels=32,
                out_channels=32,
                heads=2,
                feature_hidden_channels=64,
                user_batch_size=32,
                ppr_top_k=8,
                eval_split="val",
                seed=seed,
                progress=progress,
                synthetic=synthetic,
                **weights,
            )
            t0 = time.perf_counter()
            result = ex.run(config, task)
            per_seed.append(
                {
                    "MRR": result.metrics["MRR"],
                    "REC@10": result.metrics["REC@10"],
                    "seconds": time.perf_counter() - t0,
                }
            )
        rows[name] = {
            "weights": weights,
            "per_seed": per_seed,
            **{
                k: sum(r[k] for r in per_seed) / len(per_seed)
                for k in ("MRR", "REC@10")
            },
        }
    return {
        "dataset": "synthetic",
        "split": "val",
        "steps": steps,
        "seeds": list(seeds),
        "synthetic": synthetic,
        "rows": rows,
    }


def plot(results: dict, path: Path) -> None:
    """A bar chart of val MRR and REC@10 per task combination."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results["rows"])
    fig, axes = plt.subplots(1, 2, figsize=(8, 3))
    for ax, metric in zip(axes, ("MRR", "REC@10"), strict=True):
        ax.bar(names, [results["rows"][n][metric] for n in names])
        ax.set_title(f"val {metric}")
        ax.tick_params(axis="x", rotation=20)
    fig.suptitle("OmniSage task combinations (synthetic, Eq. 6)")
    fig.tight_layout()
    save_figure(fig, path, dpi=100)


def main(argv: Sequence[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--targets", type=int, default=2000)
    p.add_argument("--users", type=int, default=400)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--out-dir", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    for name in ("steps", "users"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be >= 1")
    if args.targets < 20:
        p.error("--targets must be >= 20")
    if not args.out_dir.is_dir():
        p.error(f"--out-dir {args.out_dir} is not a folder")
    torch.set_num_threads(1)
    results = ablation(args.steps, args.targets, args.users, args.seeds)
    write_json(args.out_dir / "omnisage_task_ablation.json", results)
    plot(results, args.out_dir / "omnisage_task_ablation.png")
    for name, row in results["rows"].items():
        print(f"{name:10s} val MRR {row['MRR']:.4f}  REC@10 {row['REC@10']:.4f}")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
