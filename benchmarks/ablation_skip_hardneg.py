"""Ablations of the feature skip path and of PinSage's hard-negative
curriculum on DBLP *validation* pairs (never test), at a short equal budget.

Each variant is a set of :class:`~pyg_multisage.experiment.RunConfig`
overrides; every (model, variant) run is cached as one JSON under
``--cache`` (finished runs are reused), and the table goes to
``benchmarks/results/ablation_skip_hardneg.json`` (written to a temporary
file and renamed). One torch thread, as the shared machine asks.

    PYG_MULTISAGE_DBLP=/path/to/dblp python benchmarks/ablation_skip_hardneg.py \
        --models text pinsage multisage --variants base skip
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from pyg_multisage import experiment as ex
from pyg_multisage.references import raw_feature_embeddings

VARIANTS: dict[str, dict] = {
    "base": {},
    "skip": {"feature_skip": True},
    # PinSage's curriculum, compressed to the short budget: one more hard
    # negative every 0.1 epoch (PinSage: every epoch), at most 6.
    "hard": {"hard_negatives": 6, "hard_negative_epochs": 0.1},
    "skip+hard": {
        "feature_skip": True,
        "hard_negatives": 6,
        "hard_negative_epochs": 0.1,
    },
}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models", nargs="+", default=["text", "pinsage", "multisage"])
    ap.add_argument("--variants", nargs="+", default=["base", "skip"])
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", default="/tmp/pyg_multisage_ablation")
    ap.add_argument("--root", default="/tmp/pyg_multisage_dblp_root")
    ap.add_argument("--out", default="benchmarks/results/ablation_skip_hardneg.json")
    args = ap.parse_args(argv)
    for v in args.variants:
        if v not in VARIANTS:
            ap.error(f"--variants: unknown variant {v!r} (one of {tuple(VARIANTS)})")
    raw_dir = os.environ.get("PYG_MULTISAGE_DBLP")
    if not raw_dir:
        ap.error("set PYG_MULTISAGE_DBLP to the DBLP folder")
    torch.set_num_threads(1)
    base = ex.RunConfig(
        dataset="dblp",
        raw_dir=raw_dir,
        root=args.root,
        steps=args.steps,
        batch_size=args.batch_size,
        seed=args.seed,
        eval_split="val",
        progress=False,
    )
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    task = ex.load_task(base)
    keys = ("MRR", "REC@1", "REC@10")
    raw = ex.evaluate(
        raw_feature_embeddings(task.data[task.target].x), task.pairs["val"]
    )
    rows: dict[str, dict] = {"raw features": {k: raw[k] for k in keys}}
    for model in args.models:
        for variant in args.variants:
            config = ex.RunConfig(**{**vars(base), "model": model, **VARIANTS[variant]})
            path = (
                cache
                / f"{model}-{variant}-{args.steps}-{args.batch_size}-s{args.seed}.json"
            )
            if path.is_file():
                record = json.loads(path.read_text())
            else:
                t0 = time.perf_counter()
                result = ex.run(config, task)
                record = {
                    "metrics": {k: result.metrics[k] for k in keys},
                    "seconds": time.perf_counter() - t0,
                    "overrides": VARIANTS[variant],
                }
                tmp = path.with_suffix(".tmp")
                tmp.write_text(json.dumps(record, indent=1))
                tmp.replace(path)
            rows[f"{model} {variant}"] = {
                **record["metrics"],
                "seconds": record["seconds"],
            }
            print(model, variant, record["metrics"], flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "split": "val",
        "steps": args.steps,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "variants": {v: VARIANTS[v] for v in args.variants},
        "rows": rows,
    }
    if out.is_file():
        old = json.loads(out.read_text())
        if {k: old.get(k) for k in ("split", "steps", "batch_size", "seed")} == {
            k: doc[k] for k in ("split", "steps", "batch_size", "seed")
        }:
            doc["rows"] = {**old["rows"], **rows}
            doc["variants"] = {**old.get("variants", {}), **doc["variants"]}
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1))
    tmp.replace(out)
    for name, r in doc["rows"].items():
        print(f"{name:22s} " + "  ".join(f"{k} {r[k]:.4f}" for k in keys))


if __name__ == "__main__":
    main()
