"""ppr_topk against PyG's get_ppr (forward push), side by side in one run.

Graphs, both made undirected: the standard pin-board graph
(``../shared/peers/make_pinboard.py``; pins and boards as one node set) and the
real DBLP graph (paper-venue, paper-term, paper-author). Restart probability
0.15, 2,000 random targets (nodes with at least one edge), eps 1e-4 and 1e-5,
2 Numba threads for both. Reported per (graph, eps, method):

- targets/s (wall, best of the repetitions) and targets per CPU-second
  (process CPU time, robust to other load on a shared machine), the speedup
  over get_ppr by both. Both methods get the same repetition rule: at least
  ``repeats`` runs (get_ppr at eps < 1e-4: one, it takes tens of seconds),
  continued while the runs so far add up to less than ``MIN_TOTAL_S`` seconds
  (so a run of a few milliseconds is not judged on three samples of a
  shared machine's noise);
- hops/s per core (edge traversals of the pushes; ours only);
- error against exact PPR (power iteration to 1e-9 on a sample of targets):
  for each node type the top-k nodes each method lists (k = 50, 20 venues),
  mean over targets of the max and of the mean absolute score error, and the
  recall of the exact top-k sets;
- peak RSS while the method ran (``VmHWM``, reset before each method).

Usage: ``python benchmarks/ppr_bench.py [--targets 2000] [--threads 2]``;
prints a table and writes ``benchmarks/results/ppr.json``. Import :func:`run`
to add these rows to another table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numba
import numpy as np
import torch
from torch_geometric.utils import coalesce, get_ppr
from tqdm import tqdm

from pyg_multisage.datasets.dblp import find_dblp_raw
from pyg_multisage.graph import HeteroCSR
from pyg_multisage.sampling.ppr import _offsets, _ppr_topk

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _peers import peers_dir  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ALPHA = 0.15
K_DEFAULT = 50
#: Repeat a measurement until its runs add up to this many seconds (at most
#: MAX_REPEATS runs, at least the requested number).
MIN_TOTAL_S = 0.5
MAX_REPEATS = 40


# -- graphs -------------------------------------------------------------------
def pinboard_graph() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "pinboard.npz"
        subprocess.run(
            [sys.executable, str(peers_dir() / "make_pinboard.py"), str(out)],
            check=True,
            capture_output=True,
        )
        z = np.load(out)
        src, dst = z["src"], z["dst"]
        pins, boards = int(z["num_items"]), int(z["num_contexts"])
    n = pins + boards
    edge = torch.from_numpy(np.stack([src, dst + pins]))
    csr = HeteroCSR({("node", "to", "node"): edge}, {"node": n}, undirected=True)
    return dict(
        name="pin-board",
        csr=csr,
        relations=[("node", "to", "node")],
        source_type="node",
        top_k={"node": K_DEFAULT},
        candidates=np.arange(pins),
    )


def _dblp_dir() -> Path:
    """The raw DBLP folder: ``--dblp`` or ``$PYG_MULTISAGE_DBLP``."""
    return find_dblp_raw(required=True)


def _read_dblp_fallback(raw: Path) -> tuple[dict, dict]:
    def ids(name):
        return np.loadtxt(raw / name, dtype=np.int64, usecols=0, encoding="latin-1")

    def pairs(name):
        return np.loadtxt(raw / name, dtype=np.int64, ndmin=2)

    maps, counts = {}, {}
    for t, f in [
        ("paper", "paper.txt"),
        ("author", "author.txt"),
        ("venue", "conf.txt"),
        ("term", "term.txt"),
    ]:
        raw_ids = ids(f)
        maps[t] = {int(r): i for i, r in enumerate(raw_ids)}
        counts[t] = len(raw_ids)
    eis = {}
    for t, f, rel in [
        ("author", "paper_author.txt", "written_by"),
        ("venue", "paper_conf.txt", "published_in"),
        ("term", "paper_term.txt", "has_term"),
    ]:
        p = pairs(f)
        keep = [(maps["paper"].get(a), maps[t].get(b)) for a, b in p]
        keep = np.array([x for x in keep if None not in x], dtype=np.int64).T
        eis[("paper", rel, t)] = torch.from_numpy(keep)
    return eis, counts


def dblp_graph() -> dict:
    raw = _dblp_dir()
    try:
        from pyg_multisage.datasets.dblp import read_dblp_raw

        data = read_dblp_raw(raw)
        counts = {t: data[t].num_nodes for t in data.node_types}
        eis = {et: data[et].edge_index for et in data.edge_types}
        # keep one direction per node-type pair; undirected=True adds reverses
        eis = {et: ei for et, ei in eis.items() if et[0] == "paper"}
    except ImportError:
        eis, counts = _read_dblp_fallback(raw)
    csr = HeteroCSR(eis, counts, undirected=True)
    top_k = {t: (20 if t == "venue" else K_DEFAULT) for t in counts}
    deg = np.zeros(counts["paper"], dtype=np.int64)
    for et in csr.edge_types:
        if et[0] == "paper":
            deg += csr[et].degree()
    return dict(
        name="DBLP",
        csr=csr,
        relations=csr.edge_types,
        source_type="paper",
        top_k=top_k,
        candidates=np.flatnonzero(deg > 0),
    )


# -- helpers ------------------------------------------------------------------
def _global_edge_index(g: dict) -> tuple[torch.Tensor, int]:
    csr, off = g["csr"], _offsets(g["csr"])
    parts = []
    for src_t, rel, dst_t in g["relations"]:
        c = csr[(src_t, rel, dst_t)]
        row = np.repeat(np.arange(c.num_src), c.degree()) + off[src_t]
        parts.append(np.stack([row, c.indices + off[dst_t]]))
    n = sum(csr.num_nodes.values())
    ei = torch.from_numpy(np.concatenate(parts, axis=1))
    return coalesce(ei, num_nodes=n), n


def _exact_ppr(ei: torch.Tensor, n: int, sources: np.ndarray) -> np.ndarray:
    """Power iteration x <- alpha e_s + (1 - alpha) x P, to (1-alpha)^t < 1e-9."""
    deg = torch.bincount(ei[0], minlength=n).double()
    val = 1.0 / deg[ei[0]]
    pt = torch.sparse_coo_tensor(ei.flip(0), val, (n, n)).coalesce()
    e = torch.zeros(n, len(sources), dtype=torch.float64)
    e[torch.from_numpy(sources), torch.arange(len(sources))] = 1.0
    x = ALPHA * e
    for _ in range(int(np.ceil(np.log(1e-9) / np.log(1 - ALPHA)))):
        x = ALPHA * e + (1 - ALPHA) * (pt @ x)
    return x.numpy().T


def _reset_peak_rss() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _peak_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _topk_errors(lists: list[dict], exact: np.ndarray, g: dict, sample) -> dict:
    """lists[i][t] = (local ids, scores); error against the exact rows."""
    csr, off = g["csr"], _offsets(g["csr"])
    max_err, mean_err, recall = [], [], []
    for i, s in enumerate(sample):
        gs = off[g["source_type"]] + s
        for t, k in g["top_k"].items():
            lo, n_t = off[t], csr.num_nodes[t]
            ids, scores = lists[i][t]
            ex = exact[i, lo : lo + n_t].copy()
            if t == g["source_type"]:
                ex[s] = -1.0
            k_eff = min(k, int((ex > 0).sum()))
            if k_eff == 0:
                continue
            best = set(np.argsort(-ex, kind="stable")[:k_eff].tolist())
            err = np.abs(scores - ex[ids]) if len(ids) else np.zeros(1)
            max_err.append(err.max())
            mean_err.append(err.mean())
            recall.append(len(best & set(ids.tolist())) / k_eff)
        del gs
    return dict(
        max_abs_err=float(np.mean(max_err)),
        mean_abs_err=float(np.mean(mean_err)),
        recall=float(np.mean(recall)),
    )


def _ours(g, targets, eps, threads):
    t0, c0 = time.perf_counter(), time.process_time()
    tables, hops = _ppr_topk(
        g["csr"],
        torch.from_numpy(targets),
        source_type=g["source_type"],
        relations=g["relations"],
        top_k=g["top_k"],
        alpha=ALPHA,
        eps=eps,
        num_threads=threads,
    )
    return time.perf_counter() - t0, time.process_time() - c0, tables, int(hops.sum())


def _ours_lists(tables, rows):
    out = []
    for i in rows:
        out.append(
            {
                t: (tab.row(i)[0].numpy(), tab.row(i)[1].numpy())
                for t, tab in tables.items()
            }
        )
    return out


def _peer(ei, n, targets, eps):
    t0, c0 = time.perf_counter(), time.process_time()
    out_ei, w = get_ppr(
        ei, alpha=ALPHA, eps=eps, target=torch.from_numpy(targets), num_nodes=n
    )
    return time.perf_counter() - t0, time.process_time() - c0, out_ei, w


def _peer_lists(out_ei, w, g, targets, rows):
    csr, off = g["csr"], _offsets(g["csr"])
    order = torch.argsort(out_ei[0], stable=True)
    src, col, w = out_ei[0][order].numpy(), out_ei[1][order].numpy(), w[order].numpy()
    gsrc = np.asarray(targets) + off[g["source_type"]]
    out = []
    for i in rows:
        lo_i, hi_i = (
            np.searchsorted(src, gsrc[i]),
            np.searchsorted(src, gsrc[i], "right"),
        )
        c, s = col[lo_i:hi_i], w[lo_i:hi_i]
        row = {}
        for t, k in g["top_k"].items():
            lo, hi = off[t], off[t] + csr.num_nodes[t]
            m = (c >= lo) & (c < hi) & (c != gsrc[i]) & (s > 0)
            ids, sc = c[m] - lo, s[m]
            sel = np.lexsort((ids, -sc))[:k]
            row[t] = (ids[sel], sc[sel].astype(np.float64))
        out.append(row)
    return out


def _repeat(min_reps: int, fn, *args) -> list:
    """Runs ``fn(*args)`` (returning ``(wall, cpu, ...)``) at least
    ``min_reps`` times, and more while the walls sum below
    :data:`MIN_TOTAL_S`."""
    out = [fn(*args)]
    while len(out) < min_reps or (
        sum(x[0] for x in out) < MIN_TOTAL_S and len(out) < MAX_REPEATS
    ):
        out.append(fn(*args))
    return out


# -- the benchmark ----------------------------------------------------------------
def run(
    num_threads: int = 2,
    num_targets: int = 2000,
    eps_list: tuple[float, ...] = (1e-4, 1e-5),
    graphs: tuple[str, ...] = ("pin-board", "DBLP"),
    error_sample: int = 20,
    repeats: int = 3,
    seed: int = 0,
) -> list[dict]:
    """Measures ppr_topk and get_ppr side by side; returns one row per
    (graph, eps, method)."""
    makers = {"pin-board": pinboard_graph, "DBLP": dblp_graph}
    rows = []
    old_threads = numba.get_num_threads()
    numba.set_num_threads(num_threads)
    try:
        for name in graphs:
            g = makers[name]()
            rng = np.random.default_rng(seed)
            cand = g["candidates"]
            targets = rng.choice(cand, min(num_targets, len(cand)), replace=False)
            sample_rows = np.arange(min(error_sample, len(targets)))
            ei, n = _global_edge_index(g)
            off = _offsets(g["csr"])
            exact = _exact_ppr(ei, n, targets[sample_rows] + off[g["source_type"]])
            # warm up both (compilation)
            _ours(g, targets[:16], 1e-4, num_threads)
            _peer(ei, n, targets[:4], 1e-4)
            for eps in tqdm(eps_list, desc=f"ppr {name}"):
                _reset_peak_rss()
                ours = _repeat(repeats, _ours, g, targets, eps, num_threads)
                rss_ours = _peak_rss_mb()
                _reset_peak_rss()
                peer_reps = 1 if eps < 1e-4 else repeats
                peer = _repeat(peer_reps, _peer, ei, n, targets, eps)
                rss_peer = _peak_rss_mb()
                wall_o = min(x[0] for x in ours)
                cpu_o = min(x[1] for x in ours)
                wall_p = min(x[0] for x in peer)
                cpu_p = min(x[1] for x in peer)
                tables, hops = ours[0][2], ours[0][3]
                err_o = _topk_errors(
                    _ours_lists(tables, sample_rows), exact, g, targets[sample_rows]
                )
                out_ei, w = peer[0][2], peer[0][3]
                err_p = _topk_errors(
                    _peer_lists(out_ei, w, g, targets, sample_rows),
                    exact,
                    g,
                    targets[sample_rows],
                )
                base = dict(
                    graph=name,
                    eps=eps,
                    alpha=ALPHA,
                    targets=len(targets),
                    threads=num_threads,
                )
                rows.append(
                    dict(
                        base,
                        method="ppr_topk",
                        targets_per_s=len(targets) / wall_o,
                        targets_per_cpu_s=len(targets) / cpu_o,
                        speedup_wall=wall_p / wall_o,
                        speedup_cpu=cpu_p / cpu_o,
                        hops_per_s_per_core=hops / wall_o / num_threads,
                        hops_per_target=hops / len(targets),
                        peak_rss_mb=rss_ours,
                        **err_o,
                    )
                )
                # ours at eps / 2: the error side of "equal or smaller error"
                half = _repeat(repeats, _ours, g, targets, eps / 2, num_threads)
                wall_h = min(x[0] for x in half)
                cpu_h = min(x[1] for x in half)
                err_h = _topk_errors(
                    _ours_lists(half[0][2], sample_rows),
                    exact,
                    g,
                    targets[sample_rows],
                )
                rows.append(
                    dict(
                        base,
                        method="ppr_topk(eps/2)",
                        targets_per_s=len(targets) / wall_h,
                        targets_per_cpu_s=len(targets) / cpu_h,
                        speedup_wall=wall_p / wall_h,
                        speedup_cpu=cpu_p / cpu_h,
                        hops_per_s_per_core=half[0][3] / wall_h / num_threads,
                        hops_per_target=half[0][3] / len(targets),
                        peak_rss_mb=None,
                        **err_h,
                    )
                )
                rows.append(
                    dict(
                        base,
                        method="get_ppr",
                        targets_per_s=len(targets) / wall_p,
                        targets_per_cpu_s=len(targets) / cpu_p,
                        speedup_wall=1.0,
                        speedup_cpu=1.0,
                        hops_per_s_per_core=None,
                        hops_per_target=None,
                        peak_rss_mb=rss_peer,
                        **err_p,
                    )
                )
    finally:
        numba.set_num_threads(old_threads)
    return rows


def format_table(rows: list[dict]) -> str:
    head = (
        f"{'graph':<10}{'eps':>7} {'method':<16}{'tgt/s':>9}{'tgt/cpu-s':>10}"
        f"{'x wall':>8}{'x cpu':>7}{'Mhops/s/c':>10}{'maxerr':>10}"
        f"{'meanerr':>10}{'recall':>7}{'RSS MB':>8}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        hps = r["hops_per_s_per_core"]
        rss = "-" if r["peak_rss_mb"] is None else f"{r['peak_rss_mb']:.0f}"
        lines.append(
            f"{r['graph']:<10}{r['eps']:>7.0e} {r['method']:<16}"
            f"{r['targets_per_s']:>9.0f}{r['targets_per_cpu_s']:>10.0f}"
            f"{r['speedup_wall']:>8.1f}{r['speedup_cpu']:>7.1f}"
            f"{'-' if hps is None else f'{hps / 1e6:.1f}':>10}"
            f"{r['max_abs_err']:>10.2e}{r['mean_abs_err']:>10.2e}"
            f"{r['recall']:>7.3f}"
            f"{rss:>8}"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--graphs", nargs="+", default=["pin-board", "DBLP"])
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "ppr.json"))
    ap.add_argument("--dblp", help="raw DBLP folder (default: $PYG_MULTISAGE_DBLP)")
    a = ap.parse_args()
    if a.dblp:
        os.environ["PYG_MULTISAGE_DBLP"] = a.dblp
    rows = run(
        num_threads=a.threads,
        num_targets=a.targets,
        repeats=a.repeats,
        graphs=tuple(a.graphs),
    )
    print(format_table(rows))
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(rows, indent=2))
    print(f"saved {a.out}")


if __name__ == "__main__":
    main()
