"""Sampler benchmark: our walk kernels (and PPR) against the peers, side by side.

Graphs: the standard synthetic pin-board graph (``../shared/peers/
make_pinboard.py``, 468,664 edges) and the real DBLP graph with paper–venue and
paper–term as target–context relations. On each:

- DGL 2.1 ``PinSAGESampler`` (run in its own venv, ``../shared/peers/dgl``),
- :func:`pyg_multisage.sampling.pinsage_walk` with the same setting
  (3 traversals, termination 0.5, 100 walks, top-10),
- :func:`pyg_multisage.sampling.contextual_walk` (100 walks, walk_length 3,
  restart 0.5, top-10, dominant-context tracking: always 3 traversals per walk,
  about 1.7x the hops of the DGL setting),

each timed in a fresh process: wall time and process CPU time (the latter
barely moved by other load on a shared machine), best of ``--repeat`` runs
over ``--seeds`` seeds with ``--threads`` threads, compilation excluded, best
of ``--rounds`` interleaved rounds; peak RSS of that process from
``os.wait4``. Hops are the expected number of CSR hops of the setting (2 per
traversal; PinSage: :math:`\\kappa \\sum_t (1-p)^{t-1}` traversals per seed;
contextual: :math:`\\kappa \\zeta`), counted over seeds with a neighbor.
``overlap@10`` is the mean share of DGL's top-10 (seed itself removed) that
ours also lists, next to the overlap of two of our own runs with different
random seeds: equal values mean the same sampling distribution (where most
counts tie, as on paper–venue with ~700 papers per venue, both are near zero
and mostly reflect tie-breaking: ours by id, DGL's arbitrary).

When ``benchmarks/ppr_bench.py`` exists, its PPR rows (``ppr_topk`` vs PyG's
``get_ppr``) are added to the same table.

Usage: ``python benchmarks/samplers.py [--seeds 10000] [--threads 2]
[--repeat 3] [--rounds 2] [--no-dgl] [--no-ppr] [--dblp DIR]``. Prints a
table and saves ``benchmarks/results/samplers.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from pyg_multisage.datasets.dblp import find_dblp_raw

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _peers import peers_dir  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PEERS = peers_dir()
DGL_SETUP = PEERS / "dgl" / "setup.sh"
DGL_BENCH = PEERS / "dgl" / "pinsage_bench.py"
RESULTS = ROOT / "benchmarks" / "results" / "samplers.json"

WALKS, TRAVERSALS, TERMINATION, TOP_K = 100, 3, 0.5, 10
WALK_LENGTH, RESTART = 3, 0.5


# -- worker: runs inside a fresh process of the project's interpreter -------------
def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _overlap(a: dict[int, set[int]], b: dict[int, set[int]]) -> float:
    shares = [len(a.get(s, set()) & nb) / len(nb) for s, nb in b.items() if nb]
    return float(np.mean(shares)) if shares else float("nan")


def _rows(table) -> dict[int, set[int]]:
    seeds, ptr, nbr = table.seeds.numpy(), table.ptr.numpy(), table.neighbor.numpy()
    return {int(s): set(nbr[ptr[i] : ptr[i + 1]].tolist()) for i, s in enumerate(seeds)}


def worker(spec: dict) -> dict:
    import torch

    from pyg_multisage.graph import HeteroCSR
    from pyg_multisage.sampling.walks import contextual_walk, pinsage_walk

    z = np.load(spec["graph"])
    num_items, num_ctx = int(z["num_items"]), int(z["num_contexts"])
    ei = torch.from_numpy(np.stack([z["src"], z["dst"]]).astype(np.int64))
    csr = HeteroCSR(
        {("item", "ic", "context"): ei},
        {"item": num_items, "context": num_ctx},
        undirected=True,
    )
    seeds = torch.arange(min(spec["seeds"], num_items))
    common = dict(
        target="item",
        context="context",
        num_walks=WALKS,
        num_neighbors=TOP_K,
        num_threads=spec["threads"],
    )
    if spec["sampler"] == "pinsage_walk":
        run = lambda s, x=seeds: pinsage_walk(  # noqa: E731
            csr,
            x,
            num_traversals=TRAVERSALS,
            termination_prob=TERMINATION,
            seed=s,
            **common,
        )
    else:
        run = lambda s, x=seeds: contextual_walk(  # noqa: E731
            csr, x, walk_length=WALK_LENGTH, restart_prob=RESTART, seed=s, **common
        )
    run(0, seeds[:64])  # compile / load the cache; builds the int32 copies
    rss_base = _rss_mb()
    best = best_cpu = float("inf")
    for r in range(spec["repeat"]):
        t0, c0 = time.perf_counter(), time.process_time()
        table = run(r)
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    out = {
        "seconds": best,
        "seeds_per_s": seeds.numel() / best,
        "seeds_per_cpu_s": seeds.numel() / best_cpu,
        "edges": table.num_edges,
        "rss_before_kernel_mb": rss_base,
    }
    if spec.get("compare"):
        cmp = np.load(spec["compare"])
        dgl: dict[int, set[int]] = {}
        for s, n in zip(cmp["seed"].tolist(), cmp["neighbor"].tolist(), strict=True):
            if s != n:
                dgl.setdefault(s, set()).add(n)
        a, b = _rows(run(0)), _rows(run(1))
        out["overlap_dgl"] = _overlap(a, dgl)
        out["overlap_self"] = _overlap(a, b)
    return out


# -- parent -------------------------------------------------------------------------
def run_measured(cmd: list[str], lines: int = 1) -> tuple[list[dict], float]:
    """Runs ``cmd``; returns (its last ``lines`` stdout lines as JSON, its peak
    RSS in MiB)."""
    with tempfile.TemporaryFile() as fout, tempfile.TemporaryFile() as ferr:
        proc = subprocess.Popen(cmd, stdout=fout, stderr=ferr)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        fout.seek(0)
        ferr.seek(0)
        if proc.returncode != 0:
            raise RuntimeError(f"{cmd[:3]} failed:\n{ferr.read().decode()[-3000:]}")
        text = fout.read().decode().strip().splitlines()
    out = [json.loads(x) for x in text[-lines:]]
    return out, usage.ru_maxrss / 1024  # KiB on Linux


# Runs the peer's script unchanged under its own interpreter, additionally
# reading the process CPU time at each of the script's own perf_counter() calls
# (start and end of every timed repetition): its JSON line gains
# ``seeds_per_cpu_s``, a measure that other load on a shared machine barely moves.
_DGL_CPU_WRAPPER = """
import json, runpy, sys, time
script, args = sys.argv[1], sys.argv[2:]
wall, marks = time.perf_counter, []
def perf_counter():
    if sys._getframe(1).f_code.co_filename == script:
        marks.append(time.process_time())
    return wall()
time.perf_counter = perf_counter
sys.argv = [script] + args
runpy.run_path(script, run_name="__main__")
cpu = min(b - a for a, b in zip(marks[0::2], marks[1::2]))
seeds = int(args[args.index("--seeds") + 1]) if "--seeds" in args else 10000
print(json.dumps({"cpu_seconds": cpu, "seeds_cpu": seeds}))
"""


def dgl_python() -> str | None:
    default = Path.home() / ".cache" / "pyg-multisage-peers" / "dgl" / "bin" / "python"
    if default.is_file():
        return str(default)
    if DGL_SETUP.is_file():
        res = subprocess.run(
            ["bash", str(DGL_SETUP)], capture_output=True, text=True, check=False
        )
        venv = res.stdout.strip().splitlines()[-1] if res.stdout.strip() else ""
        if (Path(venv) / "bin" / "python").is_file():
            return str(Path(venv) / "bin" / "python")
    return None


def dblp_graphs(raw_dir: Path, tmp: Path) -> dict[str, Path]:
    """paper–venue and paper–term as item–context .npz files."""
    try:
        from pyg_multisage.datasets.dblp import read_dblp_raw
    except ImportError:  # the reader is not there: parse the two files here
        read_dblp_raw = None
    out = {}
    if read_dblp_raw is not None:
        data = read_dblp_raw(raw_dir)
        pairs = {
            "venue": data["paper", "published_in", "venue"].edge_index,
            "term": data["paper", "has_term", "term"].edge_index,
        }
        num_items = data["paper"].num_nodes
        for name, ei in pairs.items():
            path = tmp / f"dblp_paper_{name}.npz"
            np.savez(
                path,
                src=ei[0].numpy(),
                dst=ei[1].numpy(),
                num_items=num_items,
                num_contexts=data[name].num_nodes,
            )
            out[f"DBLP paper-{name}"] = path
        return out
    papers = np.loadtxt(raw_dir / "paper_conf.txt", dtype=np.int64, ndmin=2)
    pid = {p: i for i, p in enumerate(np.unique(papers[:, 0]).tolist())}
    for name, fname in [("venue", "paper_conf.txt"), ("term", "paper_term.txt")]:
        e = np.loadtxt(raw_dir / fname, dtype=np.int64, ndmin=2)
        e = e[np.isin(e[:, 0], list(pid))]
        ctx, dst = np.unique(e[:, 1], return_inverse=True)
        src = np.asarray([pid[p] for p in e[:, 0].tolist()])
        path = tmp / f"dblp_paper_{name}.npz"
        np.savez(path, src=src, dst=dst, num_items=len(pid), num_contexts=len(ctx))
        out[f"DBLP paper-{name}"] = path
    return out


def expected_hops(graph: Path, seeds: int, sampler: str) -> float:
    z = np.load(graph)
    deg = np.bincount(z["src"], minlength=int(z["num_items"]))
    active = int((deg[: min(seeds, len(deg))] > 0).sum())
    if sampler == "contextual_walk":
        per_walk = WALK_LENGTH
    else:
        per_walk = sum((1 - TERMINATION) ** t for t in range(TRAVERSALS))
    return active * WALKS * 2 * per_walk


def ppr_module(args):
    """Helper B's ``benchmarks/ppr_bench.py`` (``run(...) -> rows`` and
    ``format_table(rows)``), when it is there."""
    path = ROOT / "benchmarks" / "ppr_bench.py"
    if args.no_ppr or not path.is_file():
        return None
    import importlib.util

    spec = importlib.util.spec_from_file_location("ppr_bench", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod if callable(getattr(mod, "run", None)) else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=10_000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--dblp", default=None)
    ap.add_argument("--no-dgl", action="store_true")
    ap.add_argument("--no-ppr", action="store_true")
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return

    from tqdm import tqdm

    dgl = None if args.no_dgl else dgl_python()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        graphs = {"pin-board": tmp / "pinboard.npz"}
        subprocess.run(
            [sys.executable, str(PEERS / "make_pinboard.py"), str(graphs["pin-board"])],
            check=True,
            capture_output=True,
        )
        dblp = find_dblp_raw(args.dblp)
        if dblp is not None:
            graphs.update(dblp_graphs(dblp, tmp))
        else:
            print("DBLP raw files not found: DBLP rows skipped", file=sys.stderr)

        samplers = (["dgl"] if dgl else []) + ["pinsage_walk", "contextual_walk"]
        # Interleaved rounds: every (graph, sampler) runs once per round, the
        # peer next to ours, and keeps its best; this evens out the load that
        # other processes put on a shared machine.
        jobs = [(g, s) for _ in range(args.rounds) for g in graphs for s in samplers]
        best: dict[tuple[str, str], dict] = {}
        for gname, sampler in tqdm(jobs, desc="samplers", unit="run"):
            graph = graphs[gname]
            dgl_out = tmp / f"{graph.stem}_dgl_out.npz"
            if sampler == "dgl":
                cmd = [dgl, "-c", _DGL_CPU_WRAPPER, str(DGL_BENCH), str(graph)]
                cmd += ["--seeds", str(args.seeds), "--threads", str(args.threads)]
                cmd += ["--repeat", str(args.repeat), "--out", str(dgl_out)]
                (res, cpu), rss = run_measured(cmd, lines=2)
                res["seeds_per_cpu_s"] = res["seeds"] / cpu["cpu_seconds"]
                res["sampler"] = res.pop("peer")
            else:
                spec = dict(
                    graph=str(graph),
                    sampler=sampler,
                    seeds=args.seeds,
                    threads=args.threads,
                    repeat=args.repeat,
                    compare=str(dgl_out) if dgl_out.is_file() else None,
                )
                cmd = [sys.executable, __file__, "--worker", json.dumps(spec)]
                (res,), rss = run_measured(cmd)
                res["sampler"] = sampler
            hops = expected_hops(
                graph, args.seeds, "pinsage_walk" if sampler == "dgl" else sampler
            )
            res.update(
                graph=gname,
                threads=args.threads,
                peak_rss_mb=rss,
                mhops_per_s_per_core=hops / res["seconds"] / args.threads / 1e6,
            )
            old = best.get((gname, sampler))
            if old is None:
                best[gname, sampler] = res
            else:  # best wall time and best CPU time over the rounds
                cpu = max(old["seeds_per_cpu_s"], res["seeds_per_cpu_s"])
                if res["seeds_per_s"] > old["seeds_per_s"]:
                    best[gname, sampler] = res
                best[gname, sampler]["seeds_per_cpu_s"] = cpu
        rows = list(best.values())
        for r in rows:
            peer = best.get((r["graph"], "dgl"))
            r["x_dgl"] = r["seeds_per_s"] / peer["seeds_per_s"] if peer else None
            r["x_dgl_cpu"] = (
                r["seeds_per_cpu_s"] / peer["seeds_per_cpu_s"] if peer else None
            )
    ppr = ppr_module(args)
    ppr_rows = ppr.run(num_threads=args.threads) if ppr is not None else []

    head = (
        f"{'graph':<17} {'sampler':<24} {'seeds/s':>8} {'x DGL':>6} "
        f"{'seeds/cpu-s':>11} {'x DGL':>6} {'Mhop/s/core':>11} {'RSS MB':>6} "
        f"{'overlap@10 DGL/self':>19}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        x = f"{r['x_dgl']:.2f}" if r.get("x_dgl") else "-"
        xc = f"{r['x_dgl_cpu']:.2f}" if r.get("x_dgl_cpu") else "-"
        ov = (
            f"{r['overlap_dgl']:.3f}/{r['overlap_self']:.3f}"
            if "overlap_dgl" in r
            else "-"
        )
        print(
            f"{r['graph']:<17} {r['sampler'][:24]:<24} {r['seeds_per_s']:>8.0f} "
            f"{x:>6} {r['seeds_per_cpu_s']:>11.0f} {xc:>6} "
            f"{r['mhops_per_s_per_core']:>11.1f} {r['peak_rss_mb']:>6.0f} {ov:>19}"
        )
    if ppr_rows:
        print("\nppr_topk vs torch_geometric.utils.get_ppr (benchmarks/ppr_bench.py)")
        fmt = getattr(ppr, "format_table", None)
        print(fmt(ppr_rows) if callable(fmt) else json.dumps(ppr_rows, indent=1))
    result = {
        "setting": dict(
            seeds=args.seeds,
            threads=args.threads,
            repeat=args.repeat,
            walks=WALKS,
            pinsage=dict(traversals=TRAVERSALS, termination=TERMINATION),
            contextual=dict(walk_length=WALK_LENGTH, restart=RESTART),
            top_k=TOP_K,
        ),
        "machine": dict(cpus=os.cpu_count(), python=sys.version.split()[0]),
        "parent_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rows": rows,
        "ppr_rows": ppr_rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
