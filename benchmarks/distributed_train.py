"""Data-parallel training benchmark: Ray Train with 1 and 2 workers on DBLP.

For each worker count W, :func:`pyg_multisage.distributed.train.train_distributed`
trains MultiSage-3 on DBLP (AMiner; ``$PYG_MULTISAGE_DBLP`` or
``/work/shared/data/dblp``) for ``--steps`` optimizer steps of the *same*
global batch (``--batch-size`` pairs, ``--negatives`` random negatives,
gathered across workers), on CPU with ``gloo``, one Ray CPU per worker. The
walk neighbors are tabulated once by the driver and shared by all runs.

Reported per W: training samples/s (query–positive pairs per second of rank
0's training loop: ``steps * batch_size / train_seconds``; the loop includes
building the model and cutting batches, not Ray's start-up), the wall time of
the whole job (Ray start-up of the worker group, training, the driver's
final embedding and evaluation), and the final **validation** MRR and
REC@10 on all validation pairs. Both runs take the same steps on the same
pairs, so the MRRs must agree to float noise (the loss is the
single-process loss; see ``tests/distributed/test_ddp_training.py``).

This is a short budget (default 100 steps, far from convergence): it
measures throughput and equality, not the model's final quality. On a
machine whose cores are shared with other jobs the per-second numbers are
noisy; the JSON records the load average before each run.

Usage: ``python benchmarks/distributed_train.py [--steps 100]
[--batch-size 128] [--negatives 256]``; writes
``benchmarks/results/distributed_train.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "distributed_train.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--negatives", type=int, default=256)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--model", default="multisage")
    args = parser.parse_args()

    import ray

    from pyg_multisage import experiment as ex
    from pyg_multisage.distributed.train import train_distributed

    raw = os.environ.get("PYG_MULTISAGE_DBLP", "/work/shared/data/dblp")
    os.environ.setdefault("PYTHONPATH", str(ROOT))
    base = ex.RunConfig(
        dataset="dblp",
        raw_dir=raw,
        model=args.model,
        steps=args.steps,
        batch_size=args.batch_size,
        num_negatives=args.negatives,
        eval_split="val",
        progress=False,
    )
    t0 = time.perf_counter()
    task = ex.load_task(base)
    task = ex.Task(
        ex.add_neighbors(task, base), task.target, task.contexts, task.pairs, None
    )
    prep = time.perf_counter() - t0
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for w in args.workers:
            config = replace(base, output_dir=os.path.join(tmp, f"w{w}"))
            load = os.getloadavg()[0]
            start = time.perf_counter()
            result = train_distributed(
                config, workers=w, cpus_per_worker=1.0, task=task, resume=False
            )
            wall = time.perf_counter() - start
            info = result.distributed
            rows.append(
                {
                    "workers": w,
                    "samples_per_s": args.steps
                    * args.batch_size
                    / info["train_seconds"],
                    "train_seconds": info["train_seconds"],
                    "job_seconds": wall,
                    "val_MRR": result.metrics["MRR"],
                    "val_REC@10": result.metrics["REC@10"],
                    "final_loss": result.history[-1]["loss"],
                    "load_average_before": load,
                }
            )
            print(rows[-1], flush=True)
    ray.shutdown()
    out = {
        "dataset": "dblp",
        "model": args.model,
        "steps": args.steps,
        "batch_size": args.batch_size,
        "negatives": args.negatives,
        "cpu_count": os.cpu_count(),
        "neighbor_tabulation_seconds": prep,
        "note": "short budget (far from convergence); 2 CPU cores shared with "
        "other jobs, so rates are noisy",
        "runs": rows,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2))
    head = f"{'workers':>7} {'samples/s':>10} {'train s':>8} {'job s':>7} "
    head += f"{'val MRR':>8} {'val R@10':>9} {'loss':>7}"
    print(head)
    for r in rows:
        print(
            f"{r['workers']:>7} {r['samples_per_s']:>10.1f} "
            f"{r['train_seconds']:>8.1f} {r['job_seconds']:>7.1f} "
            f"{r['val_MRR']:>8.4f} {r['val_REC@10']:>9.4f} {r['final_loss']:>7.4f}"
        )
    print(f"saved {RESULTS}")


if __name__ == "__main__":
    main()
