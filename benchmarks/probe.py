"""Memory-latency probe: random reads per second per core at a working-set size.

The walk and PPR kernels are bound by dependent random reads into the CSR
arrays. This probe measures the machine's limit for such reads, so that a
kernel's hops per second per core can be stated as a share of it (issue 15):

- ``dependent``: one pointer chain over a random cyclic permutation of
  ``n`` ``int32`` slots (Sattolo's algorithm: a single cycle through all of
  them, so the hardware prefetcher cannot guess the next address and every
  read waits for the one before);
- ``interleaved``: ``K`` independent chains over the same permutation advanced
  in lockstep, one read per chain per step (``K = 16``, as the walk kernels'
  lanes), so up to ``K`` misses are in flight at once.

The array holds ``nbytes // 4`` slots: pass the byte size of a graph's CSR
arrays to probe "the same working-set size". Each measurement runs on one
thread; the rate is reads per CPU-second of that thread (``time.thread_time``,
which other load on a shared machine barely moves) and, beside it, reads per
wall second. Best of ``repeat`` runs.

Usage: ``python benchmarks/probe.py [--mb 4 40 400] [--reads 20000000]``;
prints a table and writes ``benchmarks/results/probe.json``. Import
:func:`probe` to probe one size from another benchmark.
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

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "probe.json"
#: Independent chains of the interleaved probe (the walk kernels' LANES).
K = 16


@numba.njit(cache=True)
def _sattolo(n, seed):
    """A random cyclic permutation of ``0..n-1`` (one cycle through all)."""
    np.random.seed(seed)  # noqa: NPY002 (Numba's RNG)
    p = np.arange(n).astype(np.int32)
    for i in range(n - 1, 0, -1):
        j = np.random.randint(0, i)  # noqa: NPY002 (j < i: Sattolo, one cycle)
        p[i], p[j] = p[j], p[i]
    return p


@numba.njit(cache=True)
def _chase_dependent(perm, reads):
    x = np.int64(0)
    for _ in range(reads):
        x = perm[x]
    return x


@numba.njit(cache=True)
def _chase_interleaved(perm, reads, k):
    n = perm.shape[0]
    cur = np.empty(k, np.int64)
    x = np.int64(0)
    step = max(n // k, 1)
    for j in range(k):  # k points spread along the one cycle
        cur[j] = (j * step) % n
    for _ in range(reads // k):
        for j in range(k):
            cur[j] = perm[cur[j]]
    for j in range(k):
        x += cur[j]
    return x


def probe(nbytes: int, reads: int = 20_000_000, k: int = K, repeat: int = 3) -> dict:
    """Random-read rates (reads/s per core) at a working set of ``nbytes``.

    Returns ``dict(mb, slots, dependent_per_cpu_s, interleaved_per_cpu_s,
    dependent_per_s, interleaved_per_s, k)``.
    """
    n = max(int(nbytes) // 4, 1024)
    perm = _sattolo(n, 0)
    _chase_dependent(perm, 1000)
    _chase_interleaved(perm, 1000, k)
    out = dict(mb=n * 4 / 2**20, slots=n, k=k, reads=reads)
    for name, fn, args in [
        ("dependent", _chase_dependent, (perm, reads)),
        ("interleaved", _chase_interleaved, (perm, reads, k)),
    ]:
        fn(*args)  # touch all pages once
        best_wall = best_cpu = float("inf")
        for _ in range(repeat):
            t0, c0 = time.perf_counter(), time.thread_time()
            fn(*args)
            best_cpu = min(best_cpu, time.thread_time() - c0)
            best_wall = min(best_wall, time.perf_counter() - t0)
        done = reads if name == "dependent" else (reads // k) * k
        out[f"{name}_per_cpu_s"] = done / best_cpu
        out[f"{name}_per_s"] = done / best_wall
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mb", type=float, nargs="+", default=[4, 40, 400])
    ap.add_argument("--reads", type=int, default=20_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args()
    if args.reads < K or any(m <= 0 for m in args.mb):
        print(f"--reads must be >= {K} and --mb > 0", file=sys.stderr)
        sys.exit(2)
    rows = [
        probe(int(m * 2**20), args.reads, repeat=args.repeat) for m in sorted(args.mb)
    ]
    head = (
        f"{'MB':>8} {'dep M/cpu-s':>12} {'K=16 M/cpu-s':>13} "
        f"{'dep M/s':>8} {'K=16 M/s':>9}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r['mb']:>8.1f} {r['dependent_per_cpu_s'] / 1e6:>12.1f} "
            f"{r['interleaved_per_cpu_s'] / 1e6:>13.1f} "
            f"{r['dependent_per_s'] / 1e6:>8.1f} {r['interleaved_per_s'] / 1e6:>9.1f}"
        )
    result = dict(
        note="one thread; rates per CPU-second of that thread (thread_time) and "
        "per wall second; best of repeat; shared, loaded machine",
        machine=dict(cpus=os.cpu_count(), load=os.getloadavg()),
        rows=rows,
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(out)
    print(f"saved {out}")


if __name__ == "__main__":
    main()
