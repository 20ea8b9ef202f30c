"""Scale benchmark: memory of the out-of-core pipeline and memory-mapped vs
in-memory sampler throughput.

Two measurements, each step in a fresh process watched from outside:

1. **Pipeline memory** on a synthetic item→board graph of ``--edges`` edges
   (power-law-ish degrees on both sides; 10 edges per item, 100 per board on
   average; duplicates kept), written as ``.npy`` shards of 5M edges by a
   separate generator process (not counted). One process then runs
   :func:`~pyg_multisage.storage.build_csr_from_shards` (both directions) →
   :meth:`HeteroCSR.load <pyg_multisage.graph.HeteroCSR.load>` (memory-mapped)
   → :func:`contextual_walk` and :func:`pinsage_walk` on ``--seeds`` random
   items. Reported: the process's peak RSS (``VmHWM``, file-backed pages of
   the maps included) per edge, and its peak anonymous RSS (``RssAnon``,
   polled every 20 ms by the parent) as a share of the saved graph's bytes,
   both whole and above the process's RssAnon once its imports are done
   and every kernel is compiled on a 300-edge graph (interpreter, torch,
   numba, JIT code: a fixed cost of about 190 MB whatever the graph; the
   out-of-core path imports no torch_geometric).
2. **Throughput**, memory-mapped vs in-memory (``load(mmap=False)``), seeds/s
   of ``pinsage_walk``, ``contextual_walk`` and ``ppr_topk`` (best of
   ``--repeat``, compilation excluded; per wall second and per CPU-second of
   the process, which other load on a shared machine moves less; the table's
   rates come from one process that loads both views and times them in turn,
   best of ``2 x --repeat`` each, the separate processes' rates are kept in
   the JSON as ``rates_separate``), on the
   standard pin–board graph (``../shared/peers/make_pinboard.py``, 468,664
   edges) and on the large
   graph (PPR there only with ``--ppr-large``: the in-memory view builds its
   merged CSR in anonymous memory, 8 bytes per directed edge).
3. **PPR memory** on the memory-mapped large graph (fresh process, both
   directions, top-10 items): the first call saves the merged CSR beside the
   graph (:meth:`HeteroCSR.derived <pyg_multisage.graph.HeteroCSR.derived>`,
   timed), then ``--seeds`` seeds are pushed on its memory map; peak RssAnon
   above the imports as a share of the saved graph's bytes. Then, in another
   process, ``ppr_topk``'s seeds/s with dense and with hash-table scratch
   (``scratch=``), timed in turn, at eps 1e-4 and 1e-5 (a fifth of the
   seeds), on the pin–board graph too.

Kernel settings as ``benchmarks/samplers.py``: 100 walks, 3 traversals,
termination/restart 0.5, top-10; PPR alpha 0.15, eps 1e-4, top-10 pins.

Usage: ``python benchmarks/scale.py [--edges 50e6 100e6] [--seeds 10000]
[--threads 2] [--repeat 3] [--work DIR] [--no-large] [--ppr-large]``.
Prints a table and writes ``benchmarks/results/scale.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _peers import peers_dir  # noqa: E402

PEERS = peers_dir()
RESULTS = ROOT / "benchmarks" / "results" / "scale.json"
SHARD = 5_000_000
CFG_WALK = dict(num_walks=100, num_neighbors=10, seed=0)
MODES = ("mmap", "memory")


# -- child steps --------------------------------------------------------------------
def _status() -> dict[str, int]:
    """Memory of this process (bytes): peak and current RSS, anonymous and
    file-backed RSS, and how much of each is mapped with 2 MB entries
    (``AnonHugePages``, ``FilePmdMapped``: fewer TLB misses)."""
    out = {}
    for name, keys in (
        ("status", ("VmHWM", "VmRSS", "RssAnon", "RssFile")),
        ("smaps_rollup", ("AnonHugePages", "FilePmdMapped")),
    ):
        path = Path("/proc/self") / name
        for line in path.read_text().splitlines() if path.exists() else []:
            k, _, v = line.partition(":")
            if k in keys:
                out[k] = int(v.split()[0]) * 1024
    return out


def child_generate(spec: dict) -> dict:
    """Item→board shards, power-law-ish on both sides, ids scattered by a
    multiplicative hash so popular nodes are not neighbors in memory."""
    e, work = int(spec["edges"]), Path(spec["work"])
    n_items, n_boards = e // 10, e // 100
    rng = np.random.default_rng(0)
    files = []
    for k, a in enumerate(range(0, e, SHARD)):
        m = min(SHARD, e - a)
        item = (n_items * rng.random(m) ** 2).astype(np.int64)
        board = (n_boards * rng.random(m) ** 3).astype(np.int64)
        item = (item * 2_654_435_761) % n_items
        board = (board * 2_654_435_761) % n_boards
        f = work / f"shard_{k:04d}.npy"
        np.save(f, np.stack([item, board]).astype(np.int32))
        files.append(str(f))
    return {
        "files": files,
        "num_nodes": {"item": n_items, "board": n_boards},
        "end": _status(),
    }


def _warm_up(work: Path) -> dict[str, int]:
    """Imports and compiles everything the steps run (streaming build, walks
    and PPR, memory-mapped and in memory) on a 300-edge graph; returns the
    process status after it: the fixed cost, whatever the graph."""
    from pyg_multisage.graph import HeteroCSR
    from pyg_multisage.sampling.ppr import ppr_topk
    from pyg_multisage.storage import build_csr_from_shards

    rng = np.random.default_rng(0)
    tiny = Path(tempfile.mkdtemp(prefix="warm-", dir=work))
    edges = np.stack([rng.integers(0, 50, 300), rng.integers(0, 9, 300)])
    np.save(tiny / "s.npy", edges)
    shards = {("item", "in", "board"): [tiny / "s.npy"]}
    build_csr_from_shards(tiny / "g", shards, {"item": 50, "board": 9}, reverse=True)
    for mmap in (True, False):
        csr = HeteroCSR.load(tiny / "g", mmap=mmap)
        _rates(csr, "item", "board", np.arange(50), 1, True)
        for scratch in ("dense", "hash"):  # large graphs take the hash tables
            ppr_topk(
                csr,
                np.arange(50),
                source_type="item",
                relations=csr.edge_types,
                top_k={"item": 10},
                scratch=scratch,
            )
    shutil.rmtree(tiny)
    return _status()


def _seeds(n: int, count: int) -> np.ndarray:
    return np.random.default_rng(1).integers(0, n, count)


def _rates(csr, target, context, seeds, repeat, ppr: bool) -> dict[str, float]:
    from pyg_multisage.sampling.ppr import ppr_topk
    from pyg_multisage.sampling.walks import contextual_walk, pinsage_walk

    rels = [et for et in csr.edge_types]
    runs = {
        "pinsage_walk": lambda s: pinsage_walk(
            csr,
            s,
            target=target,
            context=context,
            num_traversals=3,
            termination_prob=0.5,
            **CFG_WALK,
        ),
        "contextual_walk": lambda s: contextual_walk(
            csr,
            s,
            target=target,
            context=context,
            walk_length=3,
            restart_prob=0.5,
            **CFG_WALK,
        ),
    }
    if ppr:
        runs["ppr_topk"] = lambda s: ppr_topk(
            csr, s, source_type=target, relations=rels, top_k={target: 10}
        )
    out = {}
    for name, run in runs.items():
        run(seeds[:64])  # compile, build derived arrays
        best = best_cpu = float("inf")
        for _ in range(repeat):
            t, c = time.perf_counter(), time.process_time()
            run(seeds)
            best = min(best, time.perf_counter() - t)
            best_cpu = min(best_cpu, time.process_time() - c)
        out[name] = len(seeds) / best
        out[f"{name} per cpu-s"] = len(seeds) / best_cpu
    return out


def child_pipeline(spec: dict) -> dict:
    from pyg_multisage.graph import HeteroCSR
    from pyg_multisage.storage import build_csr_from_shards

    # interpreter, torch, numba, compiled kernels: fixed cost
    imported = _warm_up(Path(spec["work"]))
    graph = Path(spec["work"]) / "graph"
    shards = {("item", "in", "board"): spec["files"]}
    t = time.perf_counter()
    build_csr_from_shards(graph, shards, spec["num_nodes"], reverse=True)
    build_s = time.perf_counter() - t
    after_build = _status()
    csr = HeteroCSR.load(graph)
    seeds = _seeds(spec["num_nodes"]["item"], spec["seeds"])
    rates = _rates(csr, "item", "board", seeds, spec["repeat"], False)
    nbytes = sum(f.stat().st_size for f in graph.glob("*.npy"))
    return {
        "build_s": build_s,
        "imported": imported,
        "after_build": after_build,
        "end": _status(),
        "graph_bytes": nbytes,
        "rates": rates,
    }


def child_ppr(spec: dict) -> dict:
    """``ppr_topk`` over both directions of the memory-mapped large graph, in
    a fresh process: the first call saves the merged graph of the relations
    beside the graph (``HeteroCSR.derived``, timed as ``merge_s``), later
    calls map it; the parent watches the process's RssAnon throughout."""
    from pyg_multisage.graph import HeteroCSR
    from pyg_multisage.sampling.ppr import ppr_topk

    imported = _warm_up(Path(spec["graph"]).parent)
    csr = HeteroCSR.load(spec["graph"])
    seeds = _seeds(csr.num_nodes["item"], spec["seeds"])

    def run(s):
        return ppr_topk(
            csr, s, source_type="item", relations=csr.edge_types, top_k={"item": 10}
        )

    t = time.perf_counter()
    run(seeds[:1])
    merge_s = time.perf_counter() - t
    after_merge = _status()
    best = best_cpu = float("inf")
    for _ in range(spec["repeat"]):
        t, c = time.perf_counter(), time.process_time()
        run(seeds)
        best = min(best, time.perf_counter() - t)
        best_cpu = min(best_cpu, time.process_time() - c)
    derived = Path(spec["graph"]) / "derived"
    return {
        "merge_s": merge_s,
        "merged_bytes": sum(f.stat().st_size for f in derived.rglob("*.npy")),
        "imported": imported,
        "after_merge": after_merge,
        "end": _status(),
        "rates": {
            "ppr_topk": len(seeds) / best,
            "ppr_topk per cpu-s": len(seeds) / best_cpu,
        },
    }


def child_ppr_scratch(spec: dict) -> dict:
    """Seeds/s of ``ppr_topk`` with dense and with hash-table scratch on the
    memory-mapped graph, timed in turn (best of ``repeat`` each), at eps
    1e-4 (all seeds) and 1e-5 (a fifth of them)."""
    from pyg_multisage.graph import HeteroCSR
    from pyg_multisage.sampling.ppr import ppr_topk

    _warm_up(Path(spec["graph"]).parent)
    csr = HeteroCSR.load(spec["graph"])
    target = spec["target"]
    seeds = _seeds(csr.num_nodes[target], spec["seeds"])
    out = {}
    for eps, count in ((1e-4, len(seeds)), (1e-5, max(1, len(seeds) // 5))):
        kw = dict(
            source_type=target,
            relations=csr.edge_types,
            top_k={target: 10},
            eps=eps,
        )
        best = {}
        for scratch in ("dense", "hash"):
            ppr_topk(csr, seeds[:8], scratch=scratch, **kw)
        for _ in range(spec["repeat"]):
            for scratch in ("dense", "hash"):
                t = time.perf_counter()
                ppr_topk(csr, seeds[:count], scratch=scratch, **kw)
                dt = time.perf_counter() - t
                best[scratch] = min(best.get(scratch, float("inf")), dt)
        out[f"{eps:.0e}"] = {k: count / v for k, v in best.items()}
    return {"num_nodes": sum(csr.num_nodes.values()), "rates": out, "end": _status()}


def child_alternate(spec: dict) -> dict:
    """Both views of one saved graph in one process, each kernel timed on
    them in turn (mmap, memory, mmap, ...), ``repeat`` times each: the ratio
    then sees the same machine state on both sides."""
    from pyg_multisage.graph import HeteroCSR

    _warm_up(Path(spec["graph"]).parent)
    views = {m: HeteroCSR.load(spec["graph"], mmap=m == "mmap") for m in MODES}
    n = views["mmap"].num_nodes[spec["target"]]
    seeds = _seeds(n, spec["seeds"])
    out: dict[str, dict[str, float]] = {m: {} for m in MODES}
    for _ in range(spec["repeat"]):
        for m in MODES:
            r = _rates(views[m], spec["target"], spec["context"], seeds, 1, spec["ppr"])
            for k, v in r.items():
                out[m][k] = max(out[m].get(k, 0.0), v)
    return {"rates": out, "end": _status()}


def child_rates(spec: dict) -> dict:
    from pyg_multisage.graph import HeteroCSR

    imported = _warm_up(Path(spec["graph"]).parent)
    csr = HeteroCSR.load(spec["graph"], mmap=spec["mmap"])
    n = csr.num_nodes[spec["target"]]
    seeds = _seeds(n, spec["seeds"])
    rates = _rates(
        csr, spec["target"], spec["context"], seeds, spec["repeat"], spec["ppr"]
    )
    return {"rates": rates, "imported": imported, "end": _status()}


# -- parent ---------------------------------------------------------------------------
def run_child(step: str, spec: dict, threads: int) -> dict:
    """Runs one step in a fresh process, polling its RssAnon every 20 ms."""
    env = dict(os.environ, NUMBA_NUM_THREADS=str(threads), OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child", step, json.dumps(spec)],
        stdout=subprocess.PIPE,
        env=env,
    )
    peak_anon = 0
    status = Path(f"/proc/{proc.pid}/status")
    while proc.poll() is None:
        try:
            for line in status.read_text().splitlines():
                if line.startswith("RssAnon:"):
                    peak_anon = max(peak_anon, int(line.split()[1]) * 1024)
        except (FileNotFoundError, ProcessLookupError):
            break
        time.sleep(0.02)
    out, _ = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"step {step} failed with exit code {proc.returncode}")
    result = json.loads(out.decode().strip().splitlines()[-1])
    result["peak_anon"] = max(peak_anon, result["end"]["RssAnon"])
    return result


def pinboard(work: Path) -> tuple[Path, int]:
    from pyg_multisage.graph import HeteroCSR

    spec = importlib.util.spec_from_file_location("mp", PEERS / "make_pinboard.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    src, dst = mod.make()
    csr = HeteroCSR(
        {("pin", "in", "board"): np.stack([src, dst])},
        {"pin": 100_000, "board": 50_000},
        undirected=True,
    )
    path = work / "pinboard"
    csr.save(path)
    return path, len(src)


def compare(
    graph: Path, target: str, context: str, args, ppr: bool, ppr_alone: bool = False
) -> dict:
    """Seeds/s of each kernel on both views; :obj:`ppr_alone`: the processes
    whose RssAnon is reported run the walks only (PPR's own memory is the
    ``ppr`` step's), PPR joins the alternating throughput run."""
    out = {}
    for mode in ("mmap", "memory"):
        spec = dict(
            graph=str(graph),
            mmap=mode == "mmap",
            target=target,
            context=context,
            seeds=args.seeds,
            repeat=args.repeat,
            ppr=ppr and not ppr_alone,
        )
        out[mode] = run_child("rates", spec, args.threads)
    # The throughput ratio from one process timing both views in turn.
    spec["repeat"] = 2 * args.repeat
    spec["ppr"] = ppr
    both = run_child("alternate", spec, args.threads)
    for mode in MODES:
        out[mode]["rates_separate"] = out[mode]["rates"]
        out[mode]["rates"] = both["rates"][mode]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--edges", type=float, nargs="*", default=[50e6, 100e6])
    ap.add_argument("--seeds", type=int, default=10_000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--no-large", action="store_true")
    ap.add_argument("--ppr-large", action="store_true")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        step, spec = args.child
        fn = {
            "generate": child_generate,
            "pipeline": child_pipeline,
            "rates": child_rates,
            "alternate": child_alternate,
            "ppr": child_ppr,
            "ppr_scratch": child_ppr_scratch,
        }[step]
        print(json.dumps(fn(json.loads(spec))))
        return

    work = Path(tempfile.mkdtemp(prefix="scale-", dir=args.work))
    results = {"threads": args.threads, "seeds": args.seeds, "large": []}
    try:
        path, e = pinboard(work)
        r = compare(path, "pin", "board", args, ppr=True)
        results["pinboard"] = {"edges": e, **r}
        sc = dict(graph=str(path), target="pin", seeds=args.seeds, repeat=args.repeat)
        results["pinboard"]["ppr_scratch"] = run_child("ppr_scratch", sc, args.threads)
        if not args.no_large:
            for edges in args.edges:
                e = int(edges)
                gen = run_child("generate", {"edges": e, "work": str(work)}, 1)
                spec = dict(
                    work=str(work),
                    seeds=args.seeds,
                    repeat=args.repeat,
                    files=gen["files"],
                    num_nodes=gen["num_nodes"],
                )
                pipe = run_child("pipeline", spec, args.threads)
                for f in gen["files"]:
                    os.remove(f)
                ppr_spec = dict(graph=str(work / "graph"), seeds=args.seeds)
                ppr = run_child("ppr", dict(ppr_spec, repeat=args.repeat), args.threads)
                ppr_spec.update(target="item", repeat=args.repeat)
                ppr["scratch"] = run_child("ppr_scratch", ppr_spec, args.threads)
                mem = compare(
                    work / "graph", "item", "board", args, args.ppr_large, True
                )
                results["large"].append(
                    {"edges": e, "pipeline": pipe, "ppr_mmap": ppr, **mem}
                )
                shutil.rmtree(work / "graph")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1))
    print(table(results))


def table(res: dict) -> str:
    rows = [
        "## Pipeline memory (build -> saved CSR -> walks on the memory map)",
        "| edges | build s | peak RSS B/edge | peak RssAnon B/edge | "
        "RssAnon / graph bytes | above imports / graph bytes |",
        "|---|---|---|---|---|---|",
    ]
    for r in res["large"]:
        p, e = r["pipeline"], r["edges"]
        grown = p["peak_anon"] - p["imported"]["RssAnon"]
        rows.append(
            f"| {e / 1e6:.0f}M | {p['build_s']:.1f} | "
            f"{p['end']['VmHWM'] / e:.1f} | {p['peak_anon'] / e:.1f} | "
            f"{p['peak_anon'] / p['graph_bytes']:.0%} | "
            f"{grown / p['graph_bytes']:.0%} |"
        )
    rows += [
        "",
        "## Walks on the graph: peak RssAnon above the imports / graph bytes",
        "| edges | mmap | in memory |",
        "|---|---|---|",
    ]
    for r in res["large"]:
        g = r["pipeline"]["graph_bytes"]
        share = [
            (r[m]["peak_anon"] - r[m]["imported"]["RssAnon"]) / g
            for m in ("mmap", "memory")
        ]
        rows.append(f"| {r['edges'] / 1e6:.0f}M | {share[0]:.0%} | {share[1]:.0%} |")
    rows += [
        "",
        "## PPR on the memory-mapped graph (merged graph saved beside it)",
        "| edges | merge s | merged MB | seeds/s | peak RssAnon / graph bytes | "
        "above imports / graph bytes |",
        "|---|---|---|---|---|---|",
    ]
    for r in res["large"]:
        p = r.get("ppr_mmap")
        if p is None:
            continue
        g = r["pipeline"]["graph_bytes"]
        grown = p["peak_anon"] - p["imported"]["RssAnon"]
        rows.append(
            f"| {r['edges'] / 1e6:.0f}M | {p['merge_s']:.1f} | "
            f"{p['merged_bytes'] / 2**20:,.0f} | {p['rates']['ppr_topk']:,.0f} | "
            f"{p['peak_anon'] / g:.0%} | {grown / g:.0%} |"
        )
    rows += [
        "",
        "## ppr_topk seeds/s by scratch layout (memory-mapped graph)",
        "| graph | nodes | eps | dense | hash | hash / dense |",
        "|---|---|---|---|---|---|",
    ]
    scratch = [("pin-board", (res.get("pinboard") or {}).get("ppr_scratch"))]
    scratch += [
        (f"synthetic {r['edges'] / 1e6:.0f}M", r.get("ppr_mmap", {}).get("scratch"))
        for r in res["large"]
    ]
    for name, sc in scratch:
        for eps, v in (sc or {}).get("rates", {}).items():
            rows.append(
                f"| {name} | {sc['num_nodes']:,} | {eps} | {v['dense']:,.0f} | "
                f"{v['hash']:,.0f} | {v['hash'] / v['dense']:.2f} |"
            )
    rows += [
        "",
        "## Seeds/s, memory-mapped vs in-memory",
        "| graph | kernel | mmap | memory | ratio |",
        "|---|---|---|---|---|",
    ]
    graphs = [("pin-board", res.get("pinboard"))]
    graphs += [(f"synthetic {r['edges'] / 1e6:.0f}M", r) for r in res["large"]]
    for name, r in graphs:
        if r is None:
            continue
        for k, v in r["mmap"]["rates"].items():
            m = r["memory"]["rates"][k]
            rows.append(f"| {name} | {k} | {v:,.0f} | {m:,.0f} | {v / m:.2f} |")
    rows += [
        "",
        "## Mapped with 2 MB entries (the mmap view's file pages, the in-memory"
        " view's anonymous ones; end of the rates process)",
        "| graph | run | FilePmdMapped MB | AnonHugePages MB |",
        "|---|---|---|---|",
    ]
    for name, r in graphs:
        for m in ("mmap", "memory") if r is not None else ():
            end = r[m].get("end", {})
            if "FilePmdMapped" in end:
                rows.append(
                    f"| {name} | {m} | {end['FilePmdMapped'] / 2**20:,.0f} | "
                    f"{end['AnonHugePages'] / 2**20:,.0f} |"
                )
    return "\n".join(rows)


if __name__ == "__main__":
    main()
