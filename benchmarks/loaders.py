"""Throughput of the importance-neighbor loaders and the kernel/assembly split.

For DBLP (papers through venues; PPR over paper–author–paper) and the standard
pin–board graph (pins through boards), at batch size 1024:

* ImportanceNeighborLoader over precomputed edges (ContextualWalkNeighbors /
  PPRNeighbors run once beforehand),
* the on-the-fly ContextualWalkSampler and PPRSampler,

each with num_workers 0 and 2: batches/s and seeds/s; and, measured in
process, the time split between the "kernel" (the sampler's neighbor step:
the Numba kernel on the fly, the gather of stored rows when precomputed) and
PyG batch assembly (re-indexing + PyG's filtering: feature slicing, edge
attributes, local context). Prints a table and saves
benchmarks/results/loaders.json.

Usage: python benchmarks/loaders.py [--batches 8] [--batch-size 1024]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch_geometric.data import HeteroData
from tqdm.auto import tqdm

from pyg_multisage.loader import ImportanceNeighborLoader
from pyg_multisage.sampler import ContextualWalkSampler, PPRSampler
from pyg_multisage.sampler.utils import assemble
from pyg_multisage.transforms import ContextualWalkNeighbors, PPRNeighbors

ROOT = Path(__file__).resolve().parents[1]
DIM = 64


def dblp() -> HeteroData:
    from pyg_multisage.datasets.dblp import find_dblp_raw, read_dblp_raw

    data = read_dblp_raw(find_dblp_raw(required=True))
    for t in data.node_types:
        for key in list(data[t].keys()):
            if key != "num_nodes":
                del data[t][key]
        data[t].x = torch.randn(data[t].num_nodes, DIM)
    return data


def pinboard() -> HeteroData:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pinboard.npz"
        subprocess.run(
            [sys.executable, str(ROOT.parent / "shared/peers/make_pinboard.py"), path],
            check=True,
            capture_output=True,
        )
        z = np.load(path)
        src, dst = torch.from_numpy(z["src"]), torch.from_numpy(z["dst"])
        n_pin, n_board = int(z["num_items"]), int(z["num_contexts"])
    data = HeteroData()
    data["pin"].x = torch.randn(n_pin, DIM)
    data["board"].x = torch.randn(n_board, DIM)
    data["pin", "in", "board"].edge_index = torch.stack([src, dst])
    data["board", "has", "pin"].edge_index = torch.stack([dst, src])
    return data


GRAPHS = {
    "dblp": dict(
        load=dblp,
        target="paper",
        context="venue",
        ppr={"pap": [("paper", "written_by", "author"), ("author", "writes", "paper")]},
        top_k={"pap": {"paper": 10, "author": 5}},
    ),
    "pinboard": dict(
        load=pinboard,
        target="pin",
        context="board",
        ppr={"pbp": [("pin", "in", "board"), ("board", "has", "pin")]},
        top_k={"pbp": {"pin": 10, "board": 5}},
    ),
}
WALK = dict(num_walks=100, walk_length=3, restart_prob=0.5, num_neighbors=10, seed=0)


def split(loader: ImportanceNeighborLoader, batches: list[torch.Tensor]) -> dict:
    """In-process time split (median per batch) of kernel (neighbor step)
    and assembly."""
    sampler = loader.node_sampler
    kernel, assembly = [], []
    for idx in batches:
        inp = loader.input_data[idx]
        t0 = time.perf_counter()
        gathered = sampler._gather(inp.input_type, inp.node)
        t1 = time.perf_counter()
        out = assemble({inp.input_type: inp.node}, gathered)
        out.metadata = (inp.input_id, None)
        loader.filter_fn(out)
        t2 = time.perf_counter()
        kernel.append(t1 - t0)
        assembly.append(t2 - t1)
    # medians: the CPU is shared, so single batches see preemption spikes
    k, a = float(np.median(kernel)), float(np.median(assembly))
    return dict(kernel_ms=1e3 * k, assembly_ms=1e3 * a, assembly_share=a / (k + a))


def throughput(loader: ImportanceNeighborLoader, num_batches: int) -> dict:
    it = iter(loader)
    next(it)  # worker start-up and first batch excluded
    t0 = time.perf_counter()
    seeds = 0
    for _ in range(num_batches):
        seeds += next(it)[loader.input_data.input_type].batch_size
    dt = time.perf_counter() - t0
    return dict(batches_per_s=num_batches / dt, seeds_per_s=seeds / dt)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--graphs", default="dblp,pinboard")
    ap.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="intra-op threads of the main process (workers use 1, as PyTorch sets)",
    )
    args = ap.parse_args()
    torch.set_num_threads(args.torch_threads)
    torch.manual_seed(0)
    rows = []
    for name in args.graphs.split(","):
        g = GRAPHS[name]
        data = g["load"]()
        target = g["target"]
        t0 = time.perf_counter()
        pre = ContextualWalkNeighbors(target, g["context"], **WALK)(data)
        pre = PPRNeighbors(target, g["ppr"], g["top_k"])(pre)
        precompute_s = time.perf_counter() - t0
        samplers = {
            "precomputed": None,
            "walk on the fly": ContextualWalkSampler(
                data, target, g["context"], **WALK
            ),
            "ppr on the fly": PPRSampler(data, target, g["ppr"], g["top_k"]),
        }
        perm = torch.randperm(data[target].num_nodes)
        need = (args.batches + 1) * args.batch_size
        seeds = perm[:need]
        for label, sampler in tqdm(samplers.items(), desc=name):
            src = pre if sampler is None else data
            for workers in (0, 2):
                loader = ImportanceNeighborLoader(
                    src,
                    (target, seeds),
                    neighbor_sampler=sampler,
                    batch_size=args.batch_size,
                    num_workers=workers,
                )
                row = dict(graph=name, sampler=label, num_workers=workers)
                row.update(throughput(loader, args.batches))
                if workers == 0:
                    idx = [
                        torch.arange(i * args.batch_size, (i + 1) * args.batch_size)
                        for i in range(args.batches)
                    ]
                    row.update(split(loader, idx))
                if sampler is None:
                    row["precompute_s"] = precompute_s
                rows.append(row)
    header = (
        f"{'graph':9} {'sampler':16} {'wk':>2} {'batch/s':>8} {'seeds/s':>9} "
        f"{'kernel ms':>9} {'assem ms':>8} {'assem %':>7}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        extra = ""
        if "kernel_ms" in r:
            extra = (
                f" {r['kernel_ms']:9.1f} {r['assembly_ms']:8.1f} "
                f"{100 * r['assembly_share']:6.1f}%"
            )
        print(
            f"{r['graph']:9} {r['sampler']:16} {r['num_workers']:>2} "
            f"{r['batches_per_s']:8.2f} {r['seeds_per_s']:9.0f}{extra}"
        )
    out = ROOT / "benchmarks" / "results" / "loaders.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = dict(
        batch_size=args.batch_size,
        batches=args.batches,
        walk=WALK,
        dim=DIM,
        torch_threads=args.torch_threads,
    )
    out.write_text(json.dumps(dict(config=meta, rows=rows), indent=1))
    print(f"saved {out}")


if __name__ == "__main__":
    main()
