"""Scaling-out benchmark: Ray-sharded precompute and ANN retrieval.

(The memory and memory-map rows of issue 12 live in ``benchmarks/scale.py``,
the loader rows in ``benchmarks/scale_loader.py``; this file measures the Ray
and faiss rows and can be run on its own.)

1. **Precompute.** Contextual walks (MultiSage Alg. 2: 100 walks, length 3,
   restart 0.5, top-10) of every target of ``synthetic_multipartite``
   (``--targets``, default 500,000: about 4M item→board edges) saved as a
   memory-mapped CSR, in ranges of ``--batch-size`` seeds: the in-process
   kernel with one Numba thread (one call per range, no output written), the
   in-process
   :func:`~pyg_multisage.distributed.precompute` (same kernel per range, plus
   Parquet shards), and ``precompute(ray=True)`` on a Ray actor pool of 1 and
   2 workers (one Numba thread each) on a local 2-CPU Ray cluster started
   before timing (its start-up is reported as ``ray_init_seconds``). Same
   seeds, same tables (checked). For each Ray job:

   * ``seconds``: the whole call (Ray Data planning, actor start-up: imports,
     memory-mapping the CSR, loading the kernels from Numba's cache; the
     ranges; the final check and rename);
   * ``steady_seconds``: from the start of the first range to the end of the
     last, from the actors' clocks (the manifest's ``ranges_wall_seconds``):
     the job without its fixed start-up; ``startup_seconds`` is the rest;
   * ``overhead_vs_kernel`` = workers x seconds / kernel - 1 and
     ``steady_overhead_vs_kernel`` = workers x steady_seconds / kernel - 1
     (core-seconds against the kernel's: 0 is perfect, with 2 workers it
     measures the speed-up per core); ``speedup_vs_1_worker`` of the steady
     part;
   * CPU seconds of the ranges in the actors against the kernel's, and
     ``worker_cpu_share`` = CPU seconds / (workers x steady_seconds): the
     share of a core each worker got (below 1: it waited for a core).

   Issue 12 target: steady overhead <= 15% at 1 worker, near-linear speed-up.
   On 2 cores, run it when the machine is otherwise quiet (each row records
   the load average at its start): 3-5 minutes.
2. **ANN.** recall@10 of the faiss HNSW index (inner product over
   L2-normalized vectors; ``--m`` 32, ``--ef-construction`` 64; built with
   all cores) against exact cosine search by brute force (1,000 queries,
   counting ties at the 10th score), and queries/s (one search thread, one
   batch of 1,000 queries) at the smallest efSearch of ``EF_SEARCH``
   (16..4096, steps of 1.5x-2x) that reaches recall 0.95, on (a) DBLP paper
   vectors and (b) ``--random`` random L2-normalized vectors of ``--dim``
   (default 1M x 64: the build took 623 CPU-seconds at efConstruction 64,
   about 6 minutes on 2 idle cores; efConstruction 200 costs about 3x).

Usage::

    python benchmarks/scale_distributed.py --no-ann            # precompute
    python benchmarks/scale_distributed.py --no-precompute     # ANN

Options: ``[--targets 500000] [--batch-size 16384] [--random 1000000]
[--dim 64] [--m 32] [--ef-construction 64] [--dblp DIR | --no-dblp]
[--dblp-emb FILE.npy]``. Prints a table and writes
``benchmarks/results/scale_distributed.json`` (sections ``precompute`` and
``ann``; a run replaces the rows it measures).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from pyg_multisage.datasets import synthetic_multipartite
from pyg_multisage.distributed import TableSpec, ann, precompute, read_tables, shards
from pyg_multisage.graph import HeteroCSR

RESULTS = Path(__file__).resolve().parent / "results" / "scale_distributed.json"


def _load() -> float:
    return os.getloadavg()[0]


def bench_precompute(num_targets: int, batch_size: int, tmp: Path) -> list[dict]:
    """Rows of the precompute table (see the module docstring)."""
    import numba

    from pyg_multisage.distributed._ray import init_ray

    data = synthetic_multipartite(
        num_targets=num_targets, num_contexts=num_targets // 10, seed=0
    )
    csr_dir = tmp / "csr"
    HeteroCSR.from_data(data).save(csr_dir)
    del data
    csr = HeteroCSR.load(csr_dir)
    edges = csr[("item", "in", "board")].num_edges
    spec = TableSpec("walk", "item", ["board"], num_walks=100, num_neighbors=10)
    seeds = torch.arange(num_targets)
    numba.set_num_threads(1)  # the in-process rows: one Numba thread
    spec.compute(csr, seeds[:100], num_threads=1)  # compile
    ranges = shards.seed_ranges(num_targets, batch_size)
    load = _load()
    t, c = time.perf_counter(), time.process_time()
    parts = [spec.compute(csr, seeds[lo:hi], num_threads=1) for lo, hi in ranges]
    kernel, kernel_cpu = time.perf_counter() - t, time.process_time() - c
    et = next(iter(spec.edge_types()))
    want_neighbor = torch.cat([part[et].neighbor for part in parts])
    want_weight = torch.cat([part[et].weight for part in parts])
    del parts
    rows = [
        dict(
            job="kernel, in process, same ranges",
            workers=1,
            seconds=kernel,
            steady_seconds=kernel,
            seeds_per_s=num_targets / kernel,
            cpu_seconds=kernel_cpu,
            seeds_per_cpu_s=num_targets / kernel_cpu,
            load_average=load,
        )
    ]
    load = _load()
    t = time.perf_counter()
    precompute(csr_dir, spec, tmp / "inproc", batch_size=batch_size, progress=False)
    dt = time.perf_counter() - t
    meta = json.loads((tmp / "inproc" / "_manifest.json").read_text())
    rows.append(
        dict(
            job="precompute, in process (+Parquet)",
            workers=1,
            seconds=dt,
            steady_seconds=meta["ranges_wall_seconds"],
            seeds_per_s=num_targets / dt,
            overhead_vs_kernel=dt / kernel - 1,
            steady_overhead_vs_kernel=meta["ranges_wall_seconds"] / kernel - 1,
            cpu_seconds=meta["worker_cpu_seconds"],
            seeds_per_cpu_s=num_targets / meta["worker_cpu_seconds"],
            load_average=load,
        )
    )
    shutil.rmtree(tmp / "inproc")
    # Workers must import this checkout.
    root = str(Path(__file__).resolve().parents[1])
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (root, os.environ.get("PYTHONPATH", "")) if p
    )
    t = time.perf_counter()
    init_ray(num_cpus=2)
    ray_start = time.perf_counter() - t
    steady_one = None
    for workers in (1, 2):
        out = tmp / f"ray{workers}"
        load = _load()
        t = time.perf_counter()
        precompute(
            csr_dir,
            spec,
            out,
            batch_size=batch_size,
            ray=True,
            num_workers=workers,
            # two 1-CPU actors on a 2-CPU local cluster can hang (ray#44687)
            cpus_per_worker=1.0 if workers == 1 else 0.9,
            threads_per_worker=1,
            progress=False,
        )
        dt = time.perf_counter() - t
        meta = json.loads((out / "_manifest.json").read_text())
        steady = meta["ranges_wall_seconds"]
        ((got, _),) = read_tables(out).values()
        assert torch.equal(got.neighbor, want_neighbor), "tables differ"
        assert torch.equal(got.weight, want_weight), "tables differ"
        shutil.rmtree(out)
        steady_one = steady_one or steady
        rows.append(
            dict(
                job="precompute, Ray actor pool",
                workers=workers,
                seconds=dt,
                steady_seconds=steady,
                startup_seconds=dt - steady,
                ray_init_seconds=ray_start if workers == 1 else 0.0,
                seeds_per_s=num_targets / dt,
                steady_seeds_per_s=num_targets / steady,
                overhead_vs_kernel=dt * workers / kernel - 1,
                steady_overhead_vs_kernel=steady * workers / kernel - 1,
                speedup_vs_1_worker=steady_one / steady,
                cpu_seconds=meta["worker_cpu_seconds"],
                seeds_per_cpu_s=num_targets / meta["worker_cpu_seconds"],
                cpu_overhead_vs_kernel=meta["worker_cpu_seconds"] / kernel_cpu - 1,
                # CPU the ranges got per worker while running: below 1, the
                # workers waited for a core (other load), not for Ray
                worker_cpu_share=meta["worker_cpu_seconds"] / (steady * workers),
                load_average=load,
            )
        )
    for r in rows:
        r.update(targets=num_targets, edges=edges, batch_size=batch_size)
    return rows


EF_SEARCH = (16, 32, 64, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096)


def _ann_row(
    name: str,
    base: np.ndarray,
    queries: np.ndarray,
    tmp: Path,
    m: int,
    ef_construction: int,
) -> dict:
    import faiss

    threads = os.cpu_count() or 1
    load = _load()
    t, c = time.perf_counter(), time.process_time()
    ann.build_index(
        base,
        tmp / f"{name}.faiss",
        m=m,
        ef_construction=ef_construction,
        num_threads=threads,
    )
    build, build_cpu = time.perf_counter() - t, time.process_time() - c
    index = ann.load_index(tmp / f"{name}.faiss")
    t = time.perf_counter()
    exact, truth = ann.exact_search(base, queries, 10)
    exact_s = time.perf_counter() - t
    unit = ann.normalize(base)
    qn = ann.normalize(queries)
    faiss.omp_set_num_threads(1)
    sweep = []
    for ef in EF_SEARCH:
        ann.search(index, queries[:10], 10, ef_search=ef)  # warm
        t = time.perf_counter()
        _, found = ann.search(index, queries, 10, ef_search=ef)
        dt = time.perf_counter() - t
        rec = ann.recall_at_k(found, truth)
        # Tie-aware: a found id whose exact cosine reaches the 10th best
        # counts (raw features hold duplicate vectors).
        cos = np.einsum("qd,qkd->qk", qn, unit[np.maximum(found, 0)])
        tie = float(np.mean((cos >= exact[:, -1:] - 1e-5) & (found >= 0)))
        sweep.append(
            dict(
                ef_search=ef,
                recall_at_10=max(rec, tie),
                queries_per_s=len(queries) / dt,
            )
        )
        if sweep[-1]["recall_at_10"] >= 0.95:
            break
    return dict(
        data=name,
        vectors=len(base),
        dim=base.shape[1],
        queries=len(queries),
        m=m,
        ef_construction=ef_construction,
        build_threads=threads,
        build_seconds=build,
        build_cpu_seconds=build_cpu,
        vectors_per_build_s=len(base) / build,
        exact_search_seconds=exact_s,
        threads_search=1,
        **sweep[-1],
        sweep=sweep,
        load_average=load,
    )


def bench_ann(
    num_random: int,
    dim: int,
    dblp: str | None,
    dblp_emb: str | None,
    tmp: Path,
    m: int,
    ef_construction: int,
) -> list[dict]:
    rows = []
    rng = np.random.default_rng(0)
    if dblp_emb:
        vec = np.load(dblp_emb).astype(np.float32)
        name = f"DBLP paper embeddings ({Path(dblp_emb).name})"
    elif dblp:
        from pyg_multisage.datasets.dblp import DBLP

        data = DBLP(str(tmp / "dblp"), raw_dir=dblp)[0]
        vec = data["paper"].x.numpy().astype(np.float32)
        name = "DBLP paper raw features"
    else:
        vec = None
    if vec is not None:
        q = vec[rng.choice(len(vec), min(1000, len(vec)), replace=False)]
        rows.append(_ann_row(name, vec, q, tmp, m, ef_construction))
    if num_random:
        base = rng.standard_normal((num_random, dim), dtype=np.float32)
        base = ann.normalize(base)
        q = ann.normalize(rng.standard_normal((1000, dim), dtype=np.float32))
        rows.append(
            _ann_row(f"random normalized, d={dim}", base, q, tmp, m, ef_construction)
        )
    return rows


def _stamp() -> dict:
    return dict(
        machine=f"{os.cpu_count()} CPUs",
        load_average=list(os.getloadavg()),
        date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    )


def print_precompute(rows: list[dict]) -> None:
    print(f"\nprecompute: contextual walks, {rows[0]['targets']} targets")
    print(
        f"{'job':<36}{'wrk':>4}{'wall s':>8}{'steady s':>9}{'start s':>8}"
        f"{'ovh':>8}{'st.ovh':>8}{'x1w':>6}{'CPU s':>7}{'load':>6}"
    )

    def pct(r: dict, k: str) -> str:
        return "" if r.get(k) is None else f"{r[k]:+.0%}"

    for r in rows:
        x = r.get("speedup_vs_1_worker")
        print(
            f"{r['job']:<36}{r['workers']:>4}{r['seconds']:>8.1f}"
            f"{r['steady_seconds']:>9.1f}{r.get('startup_seconds', 0.0):>8.1f}"
            f"{pct(r, 'overhead_vs_kernel'):>8}{pct(r, 'steady_overhead_vs_kernel'):>8}"
            f"{'' if x is None else f'{x:.2f}':>6}{r['cpu_seconds']:>7.1f}"
            f"{r['load_average']:>6.1f}"
        )


def print_ann(rows: list[dict]) -> None:
    print("\nANN (faiss HNSW, inner product; 1 search thread)")
    print(
        f"{'data':<34}{'n':>9}{'d':>5}{'M':>4}{'efC':>5}{'build s':>9}"
        f"{'ef':>6}{'rec@10':>8}{'q/s':>8}{'load':>6}"
    )
    for r in rows:
        print(
            f"{r['data']:<34}{r['vectors']:>9}{r['dim']:>5}{r['m']:>4}"
            f"{r['ef_construction']:>5}{r['build_seconds']:>9.1f}"
            f"{r['ef_search']:>6}{r['recall_at_10']:>8.3f}"
            f"{r['queries_per_s']:>8.0f}{r['load_average']:>6.1f}"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--targets", type=int, default=500_000)
    p.add_argument("--batch-size", type=int, default=16_384)
    p.add_argument("--random", type=int, default=1_000_000)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--m", type=int, default=32, help="HNSW degree M")
    p.add_argument("--ef-construction", type=int, default=64)
    p.add_argument("--dblp", default=os.environ.get("PYG_MULTISAGE_DBLP"))
    p.add_argument("--no-dblp", action="store_true")
    p.add_argument("--dblp-emb", help=".npy of trained DBLP paper embeddings")
    p.add_argument("--no-precompute", action="store_true")
    p.add_argument("--no-ann", action="store_true")
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="scale_distributed_"))
    try:
        if not args.no_precompute:
            stamp = _stamp()
            rows = bench_precompute(args.targets, args.batch_size, tmp)
            save("precompute", dict(**stamp, load_average_end=_loads(), rows=rows))
            print_precompute(rows)
        if not args.no_ann:
            stamp = _stamp()
            rows = bench_ann(
                args.random,
                args.dim,
                None if args.no_dblp else args.dblp,
                args.dblp_emb,
                tmp,
                args.m,
                args.ef_construction,
            )
            print_ann(rows)
            old = load_results().get("ann", {})
            old = {
                r["data"]: r
                for r in (old.get("rows", []) if isinstance(old, dict) else old)
            }
            old.update({r["data"]: r for r in rows})  # keep rows not re-measured
            save("ann", dict(**stamp, load_average_end=_loads(), rows=[*old.values()]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nsaved {RESULTS}")


def _loads() -> list[float]:
    return list(os.getloadavg())


def load_results() -> dict:
    return json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}


def save(section: str, value: dict) -> None:
    """Replaces one section of the results file (re-read now: another run
    may have written the other section meanwhile), atomically."""
    out = load_results()
    for old in ("machine", "load_average_at_start"):  # earlier format
        out.pop(old, None)
    out[section] = value
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS.with_name(f".{RESULTS.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(out, indent=2))
    os.replace(tmp, RESULTS)


if __name__ == "__main__":
    main()
