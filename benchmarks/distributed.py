"""Partitioned walks: seeds/s, bytes sent per seed and memory per worker.

A synthetic target–context graph (``--targets`` targets, ``--contexts``
contexts, ``--edges`` target–context edges with skewed context popularity,
both directions stored, so the CSR holds twice ``--edges`` entries) is cut
into P = 1, 2, 4 node-range parts (:func:`partition_graph`). On each:

- ``local``: the P workers in this process, one after the other
  (:class:`PartitionedWalk` with ``engine='local'``): the algorithm's own
  cost, CPU seconds of this process;
- ``ray``: one Ray actor per part on a local Ray with the machine's cores
  (``num_cpus`` per actor = cores / P, at most 1); CPU seconds summed over
  the actors' processes (the driver only routes object refs).

Rows: MultiSage contextual walks (Alg. 2; 100 walks, walk_length 3, restart
0.5, top-10) and PinSage visit counts (100 walks, 3 traversals, termination
0.5, top-10, local only), over ``--seeds`` random seeds, after one warm-up
run (compilation, page faults) on a few seeds. ``seeds/s`` is wall-clock;
``seeds/cpu-s`` divides by the CPU seconds of the workers: the per-core
rate, which a shared machine's load barely moves. ``bytes/seed`` counts
walker states and visit records sent between parts. ``part share`` is the
largest part's bytes of the two walked relations over the whole relations'
bytes (what one worker maps instead of the graph); ``rss growth`` is the
largest growth of a Ray actor's resident memory during the runs (past its
imports). The single-process kernels (1 thread) give the reference rate, and
every partitioned table is checked equal to theirs.

Usage: ``python benchmarks/distributed.py [--edges 4000000] [--seeds 20000]
[--no-ray] [--out FILE]``. Prints a table and saves
``benchmarks/results/distributed.json`` (or ``--out``). The 100M-edge row of
the docs: ``--targets 10000000 --contexts 1000000 --edges 100000000
--out benchmarks/results/distributed_100m.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from pyg_multisage.distributed.partitioned import PartitionedWalk, partition_graph
from pyg_multisage.graph import HeteroCSR
from pyg_multisage.sampling.walks import contextual_walk, pinsage_walk

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "distributed.json"
WALKS, LENGTH, PROB, TOP_K = 100, 3, 0.5, 10


def synthetic_graph(num_t: int, num_c: int, num_edges: int, seed: int) -> HeteroCSR:
    rng = np.random.default_rng(seed)
    t = rng.integers(0, num_t, num_edges)
    c = np.minimum((num_c * rng.random(num_edges) ** 2).astype(np.int64), num_c - 1)
    ei = torch.from_numpy(np.stack([t, c]))
    return HeteroCSR(
        {("t", "in", "c"): ei, ("c", "has", "t"): ei.flip(0)},
        {"t": num_t, "c": num_c},
    )


def same(a, b) -> bool:
    ok = a.ptr.equal(b.ptr) and a.neighbor.equal(b.neighbor)
    ok = ok and a.weight.equal(b.weight)
    if a.context is not None:
        ok = ok and a.context.equal(b.context)
    return bool(ok)


def timed(fn):
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w0, time.process_time() - c0


def run_partitioned(parts, seeds, contextual, engine, ref, cores):
    P = parts.num_parts
    walk = PartitionedWalk(
        parts,
        target="t",
        context="c",
        contextual=contextual,
        num_walks=WALKS,
        num_traversals=LENGTH,
        prob=PROB,
        num_neighbors=TOP_K,
        seed=0,
        engine=engine,
        num_cpus=min(1.0, cores / P),
    )
    try:
        walk.run(seeds[:64])  # warm-up: compilation, first page faults
        if engine == "ray":
            import ray

            cpu0 = sum(ray.get([w.cpu_seconds.remote() for w in walk.workers]))
            table, wall, _ = timed(lambda: walk.run(seeds))
            cpu = sum(ray.get([w.cpu_seconds.remote() for w in walk.workers])) - cpu0
        else:
            table, wall, cpu = timed(lambda: walk.run(seeds))
        mem = walk.memory()
        stats = walk.stats
    finally:
        walk.close()
    total = parts.relation_nbytes(0) + parts.relation_nbytes(1)
    return {
        "sampler": "contextual" if contextual else "pinsage",
        "engine": engine,
        "parts": P,
        "seeds": len(seeds),
        "wall_s": wall,
        "cpu_s": cpu,
        "seeds_per_s": len(seeds) / wall,
        "seeds_per_cpu_s": len(seeds) / cpu,
        "bytes_per_seed": stats.bytes_sent / len(seeds),
        "walkers_sent_per_seed": stats.walkers_sent / len(seeds),
        "supersteps": stats.supersteps,
        "part_share": max(m["mapped"] for m in mem) / total,
        "rss_growth_mb": max(m["rss_growth"] for m in mem) / 2**20
        if engine == "ray"
        else None,
        "equal_to_single_process": same(table, ref),
    }


def fmt(rows: list[dict]) -> str:
    head = (
        f"{'sampler':<11}{'engine':<8}{'P':>3}{'seeds/s':>10}{'seeds/cpu-s':>13}"
        f"{'bytes/seed':>12}{'part share':>12}{'rss growth':>12}{'equal':>7}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        rss = "" if r["rss_growth_mb"] is None else f"{r['rss_growth_mb']:.0f} MB"
        share = "" if r["part_share"] is None else f"{r['part_share']:.2f}"
        lines.append(
            f"{r['sampler']:<11}{r['engine']:<8}{r['parts']:>3}"
            f"{r['seeds_per_s']:>10.0f}{r['seeds_per_cpu_s']:>13.0f}"
            f"{r['bytes_per_seed']:>12.0f}{share:>12}{rss:>12}"
            f"{str(r['equal_to_single_process']):>7}"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--targets", type=int, default=1_000_000)
    ap.add_argument("--contexts", type=int, default=100_000)
    ap.add_argument("--edges", type=int, default=4_000_000)
    ap.add_argument("--seeds", type=int, default=20_000)
    ap.add_argument("--parts", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--no-ray", action="store_true")
    ap.add_argument("--out", type=Path, default=RESULTS, help="JSON file to write")
    args = ap.parse_args()
    cores = len(os.sched_getaffinity(0))
    csr, build_s, _ = timed(
        lambda: synthetic_graph(args.targets, args.contexts, args.edges, 0)
    )
    seeds = np.random.default_rng(1).choice(args.targets, args.seeds, replace=False)
    kw = dict(target="t", context="c", num_neighbors=TOP_K, seed=0, num_threads=1)
    refs, rows = {}, []
    for contextual in (True, False):
        fn = (
            (lambda s: contextual_walk(csr, s, num_walks=WALKS, **kw))
            if contextual
            else (lambda s: pinsage_walk(csr, s, num_walks=WALKS, **kw))
        )
        fn(seeds[:64])
        table, wall, cpu = timed(lambda fn=fn: fn(seeds))
        refs[contextual] = table
        rows.append(
            {
                "sampler": "contextual" if contextual else "pinsage",
                "engine": "single",
                "parts": 1,
                "seeds": len(seeds),
                "wall_s": wall,
                "cpu_s": cpu,
                "seeds_per_s": len(seeds) / wall,
                "seeds_per_cpu_s": len(seeds) / cpu,
                "bytes_per_seed": 0.0,
                "walkers_sent_per_seed": 0.0,
                "supersteps": 0,
                "part_share": None,
                "rss_growth_mb": None,
                "equal_to_single_process": True,
            }
        )
    if not args.no_ray:
        import ray

        ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False)
    with tempfile.TemporaryDirectory() as tmp:
        for P in args.parts:
            parts, part_s, _ = timed(
                lambda P=P: partition_graph(csr, Path(tmp) / f"p{P}", P)
            )
            print(f"P={P}: partitioned in {part_s:.1f} s", flush=True)
            for contextual in (True, False):
                ref = refs[contextual]
                r = run_partitioned(parts, seeds, contextual, "local", ref, cores)
                rows.append(r)
                print(fmt([r]).splitlines()[-1], flush=True)
            if not args.no_ray:
                r = run_partitioned(parts, seeds, True, "ray", refs[True], cores)
                rows.append(r)
                print(fmt([r]).splitlines()[-1], flush=True)
    graph = {
        "targets": args.targets,
        "contexts": args.contexts,
        "tc_edges": args.edges,
        "csr_entries": 2 * args.edges,
        "csr_bytes": sum(
            csr[et].indptr.nbytes + csr[et].indices.nbytes for et in csr.edge_types
        ),
        "build_s": build_s,
    }
    print(f"\ngraph: {graph}, {cores} cores\n")
    print(fmt(rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"graph": graph, "cores": cores, "rows": rows}, indent=1) + "\n"
    )
    print(f"\nsaved {args.out}")


if __name__ == "__main__":
    main()
