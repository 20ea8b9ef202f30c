"""Loss and metrics benchmark: chunked vs unchunked sampled softmax; metrics throughput.

1. Sampled softmax (OmniSage Eq. 1) at batch 1,024, 16,384 random negatives
   (plus the 1,024 in-batch ones), d = 256, on CPU, unchunked and chunked
   (Algorithm 1) with several chunk sizes. The embeddings come out of a
   256 -> 256 linear "model" (temperature 0.05), so the one backward pass
   runs through parameters; the model's own backward needs next to nothing
   (the inputs need no gradient), so the peak is the loss's.

   *Peak memory* is measured in a fresh process per variant, in steady
   state (after one full warm-up iteration): the embeddings are built, the
   kernel's peak-RSS mark is reset (``/proc/self/clear_refs``), the step
   runs, and the peak is read back (``VmHWM``) minus the RSS before the
   loss. "loss MB": the loss and its gradients w.r.t. the embeddings
   (``torch.autograd.grad``; what the chunking is about). "+model MB": the
   same plus the backward through the linear model (``loss.backward()``),
   whose GEMM workspace (~54 MB here, identical for all variants) sets a
   floor. glibc's ``MALLOC_MMAP_THRESHOLD_`` is set to 64 KiB in
   the workers so every large tensor is its own mapping, returned to the OS
   when freed: the RSS then follows the live tensors instead of the
   allocator's cache. *Time* is the median of ``--repeat`` forward +
   backward runs, all variants alternated in one process. The *gradient
   difference* is the max abs difference of the model's parameter gradients
   (and of the loss) between each chunked variant and the unchunked loss.

2. :func:`pyg_multisage.metrics.retrieval_metrics` over a pool of
   ``--pool`` rows (default 1M x 256, float32: 1 GB) for ``--queries``
   query-positive pairs whose rows are in the pool; queries per second and
   the peak RSS of that process. Also :func:`recall_at_k` against the same
   rows as random negatives.

Usage: ``python benchmarks/losses.py [--repeat 3] [--pool 1000000]
[--queries 1000] [--threads 2]``. Prints tables and saves
``benchmarks/results/losses.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "losses.json"
B, K, D = 1024, 16384, 256


def _status_kb(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError(key)


def _setup(seed: int = 0):
    import torch

    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = torch.nn.Linear(D, D)
    xq, xp = torch.randn(B, D, generator=gen), torch.randn(B, D, generator=gen)
    xn = torch.randn(K, D, generator=gen)
    pid = torch.randint(0, 10**6, (B,), generator=gen)
    nid = torch.randint(0, 10**6, (K,), generator=gen)
    return model, xq, xp, xn, pid, nid


def _loss(model, xq, xp, xn, pid, nid, chunk):
    import torch.nn.functional as F

    from pyg_multisage.losses import sampled_softmax_loss

    q, p, n = (F.normalize(model(x), dim=1) for x in (xq, xp, xn))
    return (
        q,
        p,
        n,
        lambda: sampled_softmax_loss(
            q,
            p,
            n,
            temperature=20.0,
            chunk_size=chunk,
            positive_ids=pid,
            negative_ids=nid,
        ),
    )


def worker_memory(chunk: int | None, threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    model, xq, xp, xn, pid, nid = _setup()

    def peak_of(through_model: bool) -> float:
        q, p, n, run = _loss(model, xq, xp, xn, pid, nid, chunk)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the peak-RSS mark
        before = _status_kb("VmRSS")
        loss = run()
        if through_model:
            loss.backward()
        else:
            torch.autograd.grad(loss, (q, p, n))
        peak = _status_kb("VmHWM")
        model.zero_grad()
        return (peak - before) / 1024

    peak_of(True)  # steady state: kernels and their workspaces warmed up
    return {"peak_mb": peak_of(False), "peak_with_model_mb": peak_of(True)}


def _spawn(args: list[str]) -> dict:
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, __file__, *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_loss(chunks: list[int | None], repeat: int, threads: int) -> list[dict]:
    import torch

    torch.set_num_threads(threads)
    rows = []
    for chunk in chunks:
        mem = _spawn(["--worker-memory", str(chunk or 0), "--threads", str(threads)])
        rows.append(
            {"variant": "unchunked" if chunk is None else f"chunk={chunk}", **mem}
        )
    # Gradients and times, side by side in this process.
    model, xq, xp, xn, pid, nid = _setup()
    grads, losses, times = {}, {}, {c: [] for c in chunks}
    for r in range(repeat + 1):
        for chunk in chunks:
            model.zero_grad()
            t0 = time.perf_counter()
            _, _, _, run = _loss(model, xq, xp, xn, pid, nid, chunk)
            loss = run()
            loss.backward()
            dt = time.perf_counter() - t0
            if r > 0:  # the first round warms up
                times[chunk].append(dt)
            grads[chunk] = torch.cat([p.grad.flatten() for p in model.parameters()])
            losses[chunk] = float(loss.detach())
    base = rows[0]["peak_mb"]
    base_model = rows[0]["peak_with_model_mb"]
    for row, chunk in zip(rows, chunks, strict=True):
        t = sorted(times[chunk])
        row["time_s"] = t[len(t) // 2]
        row["max_grad_diff"] = float((grads[chunk] - grads[None]).abs().max())
        row["loss_diff"] = abs(losses[chunk] - losses[None])
        row["peak_vs_unchunked"] = row["peak_mb"] / base
        row["peak_with_model_vs_unchunked"] = row["peak_with_model_mb"] / base_model
    return rows


def worker_metrics(pool_size: int, queries: int, threads: int) -> dict:
    import torch

    from pyg_multisage.metrics import recall_at_k, retrieval_metrics

    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(0)
    pool = torch.randn(pool_size, D, generator=gen)
    qi = torch.randint(0, pool_size, (queries,), generator=gen)
    pi = torch.randint(0, pool_size, (queries,), generator=gen)
    pool[pi] = pool[qi] + 0.5 * torch.randn(queries, D, generator=gen)  # related pairs
    rss0 = _status_kb("VmRSS")
    t0 = time.perf_counter()
    m = retrieval_metrics(pool[qi], pool[pi], pool, positive_index=pi, query_index=qi)
    t_ret = time.perf_counter() - t0
    t0 = time.perf_counter()
    rec = recall_at_k(pool[qi], pool[pi], pool, 10)
    t_rec = time.perf_counter() - t0
    return {
        "pool": pool_size,
        "dim": D,
        "queries": queries,
        "retrieval_s": t_ret,
        "retrieval_queries_per_s": queries / t_ret,
        "recall_s": t_rec,
        "recall_queries_per_s": queries / t_rec,
        "pool_mb": pool.numel() * 4 / 2**20,
        "rss_before_mb": rss0 / 1024,
        "peak_rss_mb": _status_kb("VmHWM") / 1024,
        "metrics": m,
        "recall@10": rec,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pool", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--chunks", default="0,256,128,64")
    ap.add_argument("--worker-memory", type=int, default=None)
    ap.add_argument("--worker-metrics", action="store_true")
    args = ap.parse_args()
    if args.worker_memory is not None:
        print(json.dumps(worker_memory(args.worker_memory or None, args.threads)))
        return
    if args.worker_metrics:
        print(json.dumps(worker_metrics(args.pool, args.queries, args.threads)))
        return

    chunks = [int(c) or None for c in args.chunks.split(",")]
    if chunks[0] is not None:
        chunks.insert(0, None)
    rows = bench_loss(chunks, args.repeat, args.threads)
    print(f"\nSampled softmax, B={B}, K={K} (+{B} in-batch), d={D}, CPU")
    head = ("variant", "loss MB", "vs unch.", "+model MB", "vs unch.", "time s")
    print("".join(f"{h:>11}" for h in head) + f"{'max grad diff':>15}")
    for r in rows:
        print(
            f"{r['variant']:>11}{r['peak_mb']:>11.1f}{r['peak_vs_unchunked']:>11.1%}"
            f"{r['peak_with_model_mb']:>11.1f}"
            f"{r['peak_with_model_vs_unchunked']:>11.1%}"
            f"{r['time_s']:>11.3f}{r['max_grad_diff']:>15.2e}"
        )
    met = _spawn(
        [
            "--worker-metrics",
            "--pool",
            str(args.pool),
            "--queries",
            str(args.queries),
            "--threads",
            str(args.threads),
        ]
    )
    print(
        f"\nMetrics, pool {met['pool']:,} x {D} float32 ({met['pool_mb']:.0f} MB), "
        f"{met['queries']} query-positive pairs"
    )
    print(
        f"retrieval_metrics: {met['retrieval_s']:.1f} s "
        f"({met['retrieval_queries_per_s']:.1f} queries/s)"
    )
    print(
        f"recall_at_k:       {met['recall_s']:.1f} s "
        f"({met['recall_queries_per_s']:.1f} queries/s)"
    )
    print(
        f"peak RSS {met['peak_rss_mb']:.0f} MB (RSS before the metrics "
        f"{met['rss_before_mb']:.0f} MB)"
    )
    print("values:", {k: round(v, 4) for k, v in met["metrics"].items()})
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"sampled_softmax": rows, "metrics": met}, indent=2))
    print(f"\nsaved {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
