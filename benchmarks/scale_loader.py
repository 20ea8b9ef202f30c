"""Loader throughput on memory-mapped stores against in memory (issue 12).

For each graph, the same :class:`~pyg_multisage.loader.ImportanceNeighborLoader`
(batch size 1024, ``num_workers=0``, the same random seeds) reads either the
in-memory :class:`~torch_geometric.data.HeteroData` or the
``(MmapFeatureStore, MmapGraphStore)`` pair that
:func:`~pyg_multisage.storage.open_stores` returns for the folder written by
:func:`~pyg_multisage.storage.save_data` (64 float32 features per node,
memory-mapped like the graph). Two neighbor sources:

* **walk on the fly**: :class:`~pyg_multisage.sampler.ContextualWalkSampler`
  (MultiSage Alg. 2: 100 walks of length 3, restart 0.5, top-10, one Numba
  thread), which on the stores runs the kernel on the memory-mapped CSR;
* **precomputed**: the tables of
  :class:`~pyg_multisage.transforms.ContextualWalkNeighbors` (same settings)
  computed once beforehand and stored with the graph; the
  loader gathers their rows.

Graphs: the standard pin–board graph (``make_pinboard.py`` from
``$PYG_MULTISAGE_PEERS``, default ``../shared/peers``: 468,664 pin–board
edges, both directions stored) and ``synthetic_multipartite`` with
``--targets`` items (500,000: 4.67M item→board edges, 9.34M with the
reverse direction; unweighted, like the pin–board graph). Both fit the
page cache here, so this measures the cost of the indirection, not of the
disk.

Reported: batches/s (best of ``--repeat`` passes of ``--batches`` batches
each, the two modes alternating, the first batch of a pass excluded) and the
ratio memory-mapped / in-memory (issue 12 target: >= 0.8).

Usage: ``python benchmarks/scale_loader.py [--graphs pinboard,synthetic]
[--targets 500000] [--batches 20] [--repeat 3]``. Prints a table and writes
``benchmarks/results/scale_loader.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch_geometric.data import HeteroData

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loaders import pinboard  # noqa: E402  (the standard pin–board graph)

from pyg_multisage.loader import ImportanceNeighborLoader  # noqa: E402
from pyg_multisage.sampler import ContextualWalkSampler  # noqa: E402
from pyg_multisage.storage import open_stores, save_data  # noqa: E402
from pyg_multisage.transforms import ContextualWalkNeighbors  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "scale_loader.json"
WALK = dict(num_walks=100, walk_length=3, restart_prob=0.5, num_neighbors=10, seed=0)
BATCH = 1024
DIM = 64


def synthetic(num_targets: int) -> HeteroData:
    """``synthetic_multipartite`` with its features replaced by 64 random
    float32 columns (as the pin–board graph); pairs, labels and edge weights
    dropped (unweighted walks, as on the pin–board graph)."""
    from pyg_multisage.datasets import synthetic_multipartite

    src = synthetic_multipartite(
        num_targets=num_targets, num_contexts=num_targets // 10, seed=0
    )
    data = HeteroData()
    for t in src.node_types:
        data[t].x = torch.randn(src[t].num_nodes, DIM)
    for et in src.edge_types:
        data[et].edge_index = src[et].edge_index
    return data


GRAPHS = {
    "pinboard": dict(target="pin", context="board"),
    "synthetic": dict(target="item", context="board"),
}


def batches_per_s(loader: ImportanceNeighborLoader, num_batches: int) -> float:
    it = iter(loader)
    next(it)  # first batch excluded
    t = time.perf_counter()
    for _ in range(num_batches):
        next(it)
    return num_batches / (time.perf_counter() - t)


def bench_graph(name: str, data: HeteroData, args, tmp: Path) -> dict:
    g = GRAPHS[name]
    target, context = g["target"], g["context"]
    edges = sum(int(data[et].edge_index.size(1)) for et in data.edge_types)
    t = time.perf_counter()
    pre = ContextualWalkNeighbors(target, context, progress=False, **WALK)(data)
    precompute_s = time.perf_counter() - t
    folder = tmp / name
    t = time.perf_counter()
    save_data(pre, folder)
    save_s = time.perf_counter() - t
    nbytes = sum(f.stat().st_size for f in folder.rglob("*.npy"))
    stores = open_stores(folder)
    gen = torch.Generator().manual_seed(0)
    n = data[target].num_nodes
    count = min(n, BATCH * (args.batches + 1))
    seeds = torch.randperm(n, generator=gen)[:count]
    sources = {"memory": pre, "mmap": stores}

    def loader(kind: str, mode: str) -> ImportanceNeighborLoader:
        src = sources[mode]
        kw = {}
        if kind == "walk on the fly":
            kw["neighbor_sampler"] = ContextualWalkSampler(
                src, target, context, num_threads=1, **WALK
            )
        return ImportanceNeighborLoader(
            src, (target, seeds), batch_size=BATCH, shuffle=False, **kw
        )

    rows = []
    for kind in ("walk on the fly", "precomputed"):
        loaders = {mode: loader(kind, mode) for mode in sources}
        best = {mode: 0.0 for mode in sources}
        load = os.getloadavg()[0]
        for _ in range(args.repeat):
            for mode, ld in loaders.items():
                best[mode] = max(best[mode], batches_per_s(ld, args.batches))
        rows.append(
            dict(
                loader=kind,
                memory_batches_per_s=best["memory"],
                mmap_batches_per_s=best["mmap"],
                mmap_over_memory=best["mmap"] / best["memory"],
                load_average=load,
            )
        )
    shutil.rmtree(folder)
    return dict(
        graph=name,
        nodes={t: int(data[t].num_nodes) for t in data.node_types},
        edges=edges,
        store_bytes=nbytes,
        precompute_seconds=precompute_s,
        save_seconds=save_s,
        batch_size=BATCH,
        batches=args.batches,
        repeat=args.repeat,
        rows=rows,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--graphs", default="pinboard,synthetic")
    ap.add_argument("--targets", type=int, default=500_000)
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    out = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    graphs = out.get("graphs", {})
    tmp = Path(tempfile.mkdtemp(prefix="scale_loader_"))
    try:
        for name in args.graphs.split(","):
            if name not in GRAPHS:
                raise SystemExit(f"--graphs: unknown graph {name!r} ({list(GRAPHS)})")
            data = pinboard() if name == "pinboard" else synthetic(args.targets)
            load = list(os.getloadavg())
            res = bench_graph(name, data, args, tmp)
            res.update(
                load_average_start=load,
                load_average_end=list(os.getloadavg()),
                date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                machine=f"{os.cpu_count()} CPUs",
            )
            # the default synthetic size keeps its key; other sizes get their own
            default = name == "pinboard" or args.targets == 500_000
            key = name if default else f"{name}_{args.targets}"
            graphs[key] = res
            print(f"\n{name}: {res['edges']:,} edges, store {res['store_bytes']:,} B")
            print(f"{'loader':<18}{'memory b/s':>12}{'mmap b/s':>10}{'ratio':>7}")
            for r in res["rows"]:
                print(
                    f"{r['loader']:<18}{r['memory_batches_per_s']:>12.2f}"
                    f"{r['mmap_batches_per_s']:>10.2f}{r['mmap_over_memory']:>7.2f}"
                )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out["graphs"] = graphs
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    tmp_file = RESULTS.with_suffix(".json.tmp")
    tmp_file.write_text(json.dumps(out, indent=2))
    os.replace(tmp_file, RESULTS)
    print(f"\nsaved {RESULTS}")


if __name__ == "__main__":
    main()
