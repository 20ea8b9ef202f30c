"""Memory of data-parallel training workers: an in-memory copy of the graph
per worker against one memory-mapped copy shared by the workers.

:func:`~pyg_multisage.distributed.train.train_distributed` trains
MultiSage-3 with 2 Ray Train workers on one machine, twice: with
``mmap=False`` (the graph, its walk-neighbor tables and features travel
through Ray's object store and each worker unpickles a private copy) and
with ``mmap=True`` (the driver saves them once with
:func:`~pyg_multisage.storage.save_data`; each worker opens the files
memory-mapped and gathers its batches from the maps). Both runs take the same
steps and must end with the same loss.

Per worker, from ``/proc/<pid>/status`` (read by a step hook at the start of
the last step, so after the previous steps' batches): ``RssAnon`` (private
memory; a worker's own copy of the graph lands here) and ``RssFile`` (pages
of mapped files it touched: shared through the page cache, one copy per
machine whatever the number of workers), each as growth over the worker's
memory before it fetched the task (after Ray's and torch's imports). The
graph's size is the bytes of the task's tensors (``graph MB``).

Graphs: DBLP (AMiner; ``$PYG_MULTISAGE_DBLP`` or ``/work/shared/data/dblp``)
and the synthetic task with ``--targets`` targets. Ray runs with 2 CPUs and
0.5 CPU per worker (two 1-CPU workers on a 2-CPU cluster can hang,
ray-project/ray#44687).

Usage: ``python benchmarks/distributed_train_memory.py [--steps 5]
[--targets 200000] [--no-dblp]``. Prints a table and saves
``benchmarks/results/distributed_train_memory.json``.
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
RESULTS = ROOT / "benchmarks" / "results" / "distributed_train_memory.json"
MB = 2**20


def graph_bytes(data) -> int:
    """Bytes of every tensor of a HeteroData (features, edges, tables)."""
    import torch

    total = 0
    for store in data.stores:
        for value in store.values():
            if isinstance(value, torch.Tensor):
                total += value.numel() * value.element_size()
    return total


def make_hook(folder: str):
    """A step hook writing each rank's memory to ``folder/rank<r>.json``
    (pickled by value into the workers)."""

    def hook(rank: int, step: int) -> None:
        from pyg_multisage.distributed.train import process_memory

        path = Path(folder) / f"rank{rank}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"step": step, "memory": process_memory()}))
        os.replace(tmp, path)

    return hook


def run(name: str, config, task, mmap: bool, steps: int) -> dict:
    from pyg_multisage.distributed.train import train_distributed

    with tempfile.TemporaryDirectory() as tmp:
        seen = Path(tmp) / "memory"
        seen.mkdir()
        load = os.getloadavg()[0]
        start = time.perf_counter()
        result = train_distributed(
            replace(config, output_dir=str(Path(tmp) / "run")),
            workers=2,
            cpus_per_worker=0.5,
            task=task,
            resume=False,
            mmap=mmap,
            step_hook=make_hook(str(seen)),
        )
        wall = time.perf_counter() - start
        info = result.distributed
        base = info["memory_start"]
        ranks = []
        for r in (0, 1):
            last = json.loads((seen / f"rank{r}.json").read_text())
            mem = last["memory"]
            ranks.append(
                {
                    "rank": r,
                    "at_step": last["step"],
                    "rss_anon_mb": mem["rss_anon"] / MB,
                    "rss_file_mb": mem["rss_file"] / MB,
                    "hwm_mb": mem["hwm"] / MB,
                }
            )
    return {
        "graph": name,
        "mmap": mmap,
        "steps": steps,
        "job_seconds": wall,
        "train_seconds": info["train_seconds"],
        "final_loss": result.history[-1]["loss"],
        "rank0_before_task_mb": {
            "rss_anon": base["rss_anon"] / MB,
            "rss_file": base["rss_file"] / MB,
        },
        "rank0_anon_growth_mb": (info["memory_end"]["rss_anon"] - base["rss_anon"])
        / MB,
        "rank0_file_growth_mb": (info["memory_end"]["rss_file"] - base["rss_file"])
        / MB,
        "workers": ranks,
        "load_average_before": load,
    }


def fmt(rows: list[dict]) -> str:
    head = (
        f"{'graph':<10}{'graph MB':>9}{'mode':>8}{'anon MB w0/w1':>16}"
        f"{'file MB w0/w1':>16}{'anon growth w0':>16}{'loss':>9}{'job s':>7}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        w0, w1 = r["workers"]
        lines.append(
            f"{r['graph']:<10}{r['graph_mb']:>9.1f}"
            f"{'mmap' if r['mmap'] else 'memory':>8}"
            f"{w0['rss_anon_mb']:>8.0f}/{w1['rss_anon_mb']:<7.0f}"
            f"{w0['rss_file_mb']:>8.0f}/{w1['rss_file_mb']:<7.0f}"
            f"{r['rank0_anon_growth_mb']:>16.1f}{r['final_loss']:>9.4f}"
            f"{r['job_seconds']:>7.0f}"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--targets", type=int, default=200_000)
    ap.add_argument("--no-dblp", action="store_true")
    args = ap.parse_args()
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p
    )
    import ray

    from pyg_multisage import experiment as ex

    common = dict(
        model="multisage",
        steps=args.steps,
        batch_size=args.batch_size,
        num_negatives=256,
        warmup_steps=1,
        eval_split="val",
        max_eval_pairs=1000,
        progress=False,
    )
    configs = {
        "synthetic": ex.RunConfig(
            dataset="synthetic",
            synthetic={
                "num_targets": args.targets,
                "num_contexts": max(100, args.targets // 10),
            },
            **common,
        )
    }
    if not args.no_dblp:
        raw = os.environ.get("PYG_MULTISAGE_DBLP", "/work/shared/data/dblp")
        configs = {
            "dblp": ex.RunConfig(dataset="dblp", raw_dir=raw, **common),
            **configs,
        }
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    rows = []
    try:
        for name, config in configs.items():
            t0 = time.perf_counter()
            task = ex.load_task(config)
            task = ex.Task(
                ex.add_neighbors(task, config),
                task.target,
                task.contexts,
                task.pairs,
                None,
            )
            prep = time.perf_counter() - t0
            size = graph_bytes(task.data) / MB
            for mmap in (False, True):
                row = run(name, config, task, mmap, args.steps)
                row.update(graph_mb=size, neighbor_seconds=prep)
                rows.append(row)
                print(fmt([row]).splitlines()[-1], flush=True)
    finally:
        ray.shutdown()
    print()
    print(fmt(rows))
    out = {"cpu_count": os.cpu_count(), "workers": 2, "rows": rows}
    tmp = RESULTS.with_name(f".{RESULTS.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(out, indent=1) + "\n")
    os.replace(tmp, RESULTS)
    print(f"saved {RESULTS}")


if __name__ == "__main__":
    main()
