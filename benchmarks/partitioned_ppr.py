"""What a forward push (PPR) over a node-range-partitioned graph would cost.

Not an implementation: an *instrumented* push in this script measures the
communication a partitioned push would need, on graphs cut into P = 2, 4
parts by :func:`~pyg_multisage.distributed.partitioned.partition_graph`'s
rule (every node type's ids in P contiguous ranges of equal size).

A partitioned push proceeds in *rounds*: in each round every part pushes the
nodes it owns whose residual is above the threshold (:math:`r(v) \\ge
\\epsilon\\, d(v)`), and sends the residual increments that land on another
part's nodes to their owners, which add them before the next round. That is
the synchronous (Jacobi) order of the push; the single-process kernel pushes
in FIFO order, which touches about the same nodes. The script runs the
Jacobi push seed by seed on the merged out-CSR the kernel walks
(``sampling.ppr._merged_csr``) and counts, per seed:

- ``pushes``, ``edges``: pushes and edge traversals (the kernel's own edge
  traversals for the same seeds, ``kernel edges``, for reference);
- ``remote share``: the share of edge traversals whose residual lands on
  another part's node;
- ``messages``: residual records sent, after each part sums the increments
  it sends to one node in one round (16 bytes each: an ``int64`` node id, an
  ``int32`` seed slot, a ``float32`` residual);
- ``rounds``: rounds until no residual is above the threshold (supersteps;
  a batch of seeds needs the maximum over its seeds);
- ``top-k gather``: each part sends the seed's owner its best :math:`k_t`
  scored nodes of every type (12 bytes each: id and ``float32`` score);
- ``bytes/seed`` = 16 x messages + gather.

Each push's mass balance (scores + residuals = 1) is checked. Graphs: DBLP
(MultiSage/OmniSage's task: paper seeds, every paper-author/term/venue
relation, the experiment's ``ppr_alpha = 0.15``, ``ppr_eps = 1e-4``, top 20
papers and 5 of each context type), and the synthetic target-context graph of
``benchmarks/distributed.py`` (1M targets, 100k contexts, 4M edges both ways;
top 20 targets, 5 contexts). Compare with the partitioned walks' bytes/seed
in ``benchmarks/results/distributed.json``.

Usage: ``python benchmarks/partitioned_ppr.py [--seeds 2000] [--no-dblp]``.
Prints a table and saves ``benchmarks/results/partitioned_ppr.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numba
import numpy as np

from pyg_multisage.distributed.partitioned import _bounds
from pyg_multisage.graph import HeteroCSR
from pyg_multisage.sampling.ppr import _merged_csr, _offsets, _ppr_topk

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "partitioned_ppr.json"
MESSAGE_BYTES = 16  # int64 node, int32 seed slot, float32 residual
GATHER_BYTES = 12  # int64 node, float32 score
ALPHA, EPS = 0.15, 1e-4


@numba.njit(cache=True)
def _jacobi_push(
    s,
    indptr,
    heads,
    owner,
    num_parts,
    node_slot,
    slot_k,
    alpha,
    eps,
    r,
    p,
    queued,
    stamp,
    clock,
    touched,
    front,
    nxt,
    snap,
    counts,
):
    """Round-synchronous push from global node ``s``; returns ``(pushes,
    edges, remote edges, messages, rounds, gather records, mass error,
    clock)``. ``r``, ``p`` and ``queued`` must be zero on entry and are
    reset on exit; ``stamp`` (``[n * P]``) dedups the records one part
    sends to one node in one round (``clock`` makes each round distinct)."""
    r[s] = 1.0
    touched[0] = s
    nt = 1
    front[0] = s
    nf = 1
    queued[s] = 1
    pushes = edges = remote = msgs = rounds = 0
    while nf > 0:
        rounds += 1
        clock += 1
        for i in range(nf):
            v = front[i]
            snap[i] = r[v]
            r[v] = 0.0
            queued[v] = 0
        nn = 0
        for i in range(nf):
            v = front[i]
            rv = snap[i]
            start, end = indptr[v], indptr[v + 1]
            d = end - start
            pushes += 1
            if d == 0:
                p[v] += rv
                continue
            p[v] += alpha * rv
            share = (1.0 - alpha) * rv / d
            ov = owner[v]
            for e in range(start, end):
                w = heads[e]
                edges += 1
                if owner[w] != ov:
                    remote += 1
                    key = w * num_parts + ov
                    if stamp[key] != clock:
                        stamp[key] = clock
                        msgs += 1
                if r[w] == 0.0 and p[w] == 0.0:
                    touched[nt] = w
                    nt += 1
                dw = indptr[w + 1] - indptr[w]
                if dw == 0:  # a sink keeps the walk until it restarts
                    p[w] += share
                    continue
                r[w] += share
                if queued[w] == 0 and r[w] >= eps * dw:
                    queued[w] = 1
                    nxt[nn] = w
                    nn += 1
        for i in range(nn):
            front[i] = nxt[i]
        nf = nn
    # Top-k gather: each part sends min(scored of type t there, k_t) records.
    mass = 0.0
    counts[:] = 0
    for i in range(nt):
        v = touched[i]
        mass += p[v] + r[v]
        sl = node_slot[v]
        if p[v] > 0.0 and sl >= 0 and v != s:
            counts[owner[v], sl] += 1
        r[v] = 0.0
        p[v] = 0.0
    gather = 0
    for q in range(num_parts):
        if q == owner[s]:
            continue
        for sl in range(slot_k.shape[0]):
            gather += min(counts[q, sl], slot_k[sl])
    return pushes, edges, remote, msgs, rounds, gather, abs(mass - 1.0), clock


def measure(
    csr: HeteroCSR,
    seeds: np.ndarray,
    source_type: str,
    relations: list,
    top_k: dict[str, int],
    parts: list[int],
) -> list[dict]:
    """One row per P: the per-seed counts of :func:`_jacobi_push`."""
    rels = tuple(sorted(tuple(et) for et in relations))
    indptr, edges = _merged_csr(csr, rels)
    indptr = indptr.astype(np.int64)
    heads = edges[:, 0].astype(np.int64)
    off = _offsets(csr)
    n = len(indptr) - 1
    types = list(top_k)
    node_slot = np.full(n, -1, np.int64)
    for j, t in enumerate(types):
        node_slot[off[t] : off[t] + csr.num_nodes[t]] = j
    slot_k = np.asarray([top_k[t] for t in types], np.int64)
    gseeds = seeds.astype(np.int64) + off[source_type]

    # The kernel's own edge traversals (FIFO order) for the same seeds, and
    # its rate on one thread after a warm-up (compilation, merged CSR).
    def kernel(s: np.ndarray) -> np.ndarray:
        return _ppr_topk(
            csr,
            s,
            source_type=source_type,
            relations=rels,
            top_k=top_k,
            alpha=ALPHA,
            eps=EPS,
            num_threads=1,
        )[1]

    kernel(seeds[:8])
    t0 = time.process_time()
    hops = kernel(seeds)
    kernel_cpu = time.process_time() - t0

    rows = []
    for P in parts:
        owner = np.empty(n, np.int64)
        for t in csr.node_types:
            b = _bounds(csr.num_nodes[t], P)
            for q in range(P):
                owner[off[t] + b[q] : off[t] + b[q + 1]] = q
        # The largest part's share of the merged CSR's rows (what it maps).
        row_edges = np.diff(indptr)
        part_edges = np.bincount(owner, weights=row_edges, minlength=P)
        r = np.zeros(n)
        p = np.zeros(n)
        queued = np.zeros(n, np.int8)
        stamp = np.zeros(n * P, np.int64)
        touched = np.empty(n + 1, np.int64)
        front = np.empty(n, np.int64)
        nxt = np.empty(n, np.int64)
        snap = np.empty(n)
        counts = np.zeros((P, len(types)), np.int64)
        stats = np.zeros((len(seeds), 7))
        clock = 0
        for i, s in enumerate(gseeds):
            *vals, clock = _jacobi_push(
                s, indptr, heads, owner, P, node_slot, slot_k, ALPHA, EPS,
                r, p, queued, stamp, clock, touched, front, nxt, snap, counts,
            )  # fmt: skip
            stats[i] = vals
        if stats[:, 6].max() > 1e-6:
            raise AssertionError(f"mass not conserved: {stats[:, 6].max()}")
        pushes, edges_, remote, msgs, rounds, gather = stats[:, :6].T
        bytes_ = MESSAGE_BYTES * msgs + GATHER_BYTES * gather
        rows.append(
            {
                "parts": P,
                "seeds": len(seeds),
                "pushes_per_seed": float(pushes.mean()),
                "edges_per_seed": float(edges_.mean()),
                "kernel_edges_per_seed": float(hops.mean()),
                "remote_share": float(remote.sum() / max(edges_.sum(), 1)),
                "messages_per_seed": float(msgs.mean()),
                "gather_records_per_seed": float(gather.mean()),
                "bytes_per_seed": float(bytes_.mean()),
                "bytes_per_seed_p90": float(np.quantile(bytes_, 0.9)),
                "rounds_mean": float(rounds.mean()),
                "rounds_p90": float(np.quantile(rounds, 0.9)),
                "rounds_max": int(rounds.max()),
                "largest_part_share": float(part_edges.max() / row_edges.sum()),
                "kernel_seeds_per_cpu_s": len(seeds) / kernel_cpu,
            }
        )
    return rows


def dblp_graph() -> tuple[HeteroCSR, str, list, dict[str, int], int]:
    from pyg_multisage import experiment as ex

    raw = os.environ.get("PYG_MULTISAGE_DBLP", "/work/shared/data/dblp")
    config = ex.RunConfig(dataset="dblp", raw_dir=raw, model="omnisage")
    task = ex.load_task(config)
    data, target, contexts = task.data, task.target, task.contexts
    # The relations the main job's PPR source walks (experiment.PPR.add).
    rels = [
        et
        for et in data.edge_types
        if target in (et[0], et[2]) and {et[0], et[2]} & set(contexts)
    ]
    top_k = ex.PPR().top_k(task, config)
    csr = HeteroCSR.from_data(data, edge_types=rels)
    return csr, target, rels, top_k, data[target].num_nodes


def synthetic() -> tuple[HeteroCSR, str, list, dict[str, int], int]:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from distributed import synthetic_graph

    csr = synthetic_graph(1_000_000, 100_000, 4_000_000, 0)
    rels = [("t", "in", "c"), ("c", "has", "t")]
    return csr, "t", rels, {"t": 20, "c": 5}, 1_000_000


def fmt(rows: list[dict]) -> str:
    head = (
        f"{'graph':<10}{'P':>3}{'pushes':>9}{'edges':>10}{'kernel e.':>10}"
        f"{'remote':>8}{'msgs':>8}{'gather':>8}{'bytes/seed':>12}"
        f"{'rounds':>8}{'p90':>5}{'max':>5}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['graph']:<10}{r['parts']:>3}{r['pushes_per_seed']:>9.0f}"
            f"{r['edges_per_seed']:>10.0f}{r['kernel_edges_per_seed']:>10.0f}"
            f"{r['remote_share']:>8.2f}{r['messages_per_seed']:>8.0f}"
            f"{r['gather_records_per_seed']:>8.0f}{r['bytes_per_seed']:>12.0f}"
            f"{r['rounds_mean']:>8.1f}{r['rounds_p90']:>5.0f}{r['rounds_max']:>5d}"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=2000)
    ap.add_argument("--parts", type=int, nargs="+", default=[2, 4])
    ap.add_argument("--no-dblp", action="store_true")
    args = ap.parse_args()
    graphs = {"synthetic": synthetic}
    if not args.no_dblp:
        graphs = {"dblp": dblp_graph, **graphs}
    rows, info = [], {}
    for name, build in graphs.items():
        t0 = time.perf_counter()
        csr, target, rels, top_k, num = build()
        seeds = np.random.default_rng(1).choice(num, min(args.seeds, num), False)
        info[name] = {
            "num_nodes": sum(csr.num_nodes.values()),
            "csr_entries": int(sum(csr[et].num_edges for et in rels)),
            "relations": [list(et) for et in rels],
            "top_k": top_k,
        }
        for row in measure(csr, seeds, target, rels, top_k, args.parts):
            rows.append({"graph": name, **row})
            print(fmt(rows[-1:]).splitlines()[-1], flush=True)
        info[name]["seconds"] = time.perf_counter() - t0
    walks = json.loads((RESULTS.parent / "distributed.json").read_text())
    walk_bytes = {
        f"{r['sampler']} P={r['parts']}": r["bytes_per_seed"]
        for r in walks["rows"]
        if r["engine"] == "local" and r["parts"] > 1
    }
    print()
    print(fmt(rows))
    print(f"partitioned walks, bytes/seed (distributed.json): {walk_bytes}")
    out = {
        "alpha": ALPHA,
        "eps": EPS,
        "message_bytes": MESSAGE_BYTES,
        "gather_bytes": GATHER_BYTES,
        "load_average": os.getloadavg(),
        "graphs": info,
        "rows": rows,
        "walk_bytes_per_seed": walk_bytes,
    }
    tmp = RESULTS.with_name(f".{RESULTS.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(out, indent=1) + "\n")
    os.replace(tmp, RESULTS)
    print(f"saved {RESULTS}")


if __name__ == "__main__":
    main()
