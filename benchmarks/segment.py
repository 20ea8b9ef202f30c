"""Aggregation over ego-grouped (CSR-sorted) edges: torch_scatter vs torch.

MultiSageConv reduces per-edge values over the neighbors of each ego twice:
the attention softmax (Eq. 6, a max and a sum over ``[E, heads]`` logits) and
the weighted sum of Eq. 7 (``[E, 2F]`` messages). The loaders yield the edges
grouped by ego, so both can run as segment reductions over a row pointer
instead of scatters over an index. This script times, forward + backward:

* sum of ``[E, 2F]`` messages: torch's ``index_add_`` (what PyG's ``scatter``
  runs for sums), torch's ``scatter_reduce``, torch's own
  ``torch._segment_reduce`` and ``torch_scatter.segment_csr``;
* the softmax of ``[E, heads]`` logits: PyG's ``softmax`` over the index
  (``scatter_reduce`` max + ``index_add_`` sum) and over the row pointer
  (``segment_csr`` when torch_scatter is present);
* the whole ``MultiSageConv`` forward + backward with both backends of
  ``pyg_multisage.nn.conv._segment`` (batch layouts only).

Layouts: a loader batch of 1,024 egos with 10 and 25 neighbors each and a
full-graph pass (14,376 egos x 10, the DBLP paper count), d = 128 (so 2F =
256), 10 heads. Methods run round-robin in one process, median of ``--reps``
after a warm-up, so the ratios are side by side; wall and process-CPU time
(one thread), ratios on CPU time. Prints a table and writes
``benchmarks/results/segment.json``.

Usage: ``python benchmarks/segment.py [--reps 30] [--threads 1]``
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch
from torch_geometric.utils import softmax

from pyg_multisage.nn import MultiSageConv
from pyg_multisage.nn.conv import _segment

RESULTS = Path(__file__).resolve().parent / "results" / "segment.json"
LAYOUTS = {"batch 1024x10": (1024, 10), "batch 1024x25": (1024, 25)}
LAYOUTS["full 14376x10"] = (14376, 10)
DIM, HEADS = 128, 10


def _timed(fn, reps: int) -> tuple[float, float]:
    """Median wall and process-CPU seconds per call (one thread: CPU time
    is what other jobs on a shared machine barely move)."""
    fn()  # warm-up
    wall, cpu = [], []
    for _ in range(reps):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu)


def cases(egos: int, nbrs: int, gen: torch.Generator) -> dict:
    num_edges = egos * nbrs
    # Uneven degrees (1 .. 2*nbrs - 1), grouped by ego as the loaders yield.
    deg = torch.randint(1, 2 * nbrs, (egos,), generator=gen)
    deg = (deg * num_edges / deg.sum()).long().clamp_min(1)
    index = torch.arange(egos).repeat_interleave(deg)
    ptr = torch.cat([torch.zeros(1, dtype=torch.long), deg.cumsum(0)])
    e = index.numel()
    msg = torch.randn(e, 2 * DIM, generator=gen, requires_grad=True)
    logit = torch.randn(e, HEADS, generator=gen, requires_grad=True)
    g_msg = torch.randn(egos, 2 * DIM, generator=gen)
    g_logit = torch.randn(e, HEADS, generator=gen)

    def sum_index_add():
        out = msg.new_zeros(egos, 2 * DIM).index_add_(0, index, msg)
        out.backward(g_msg)

    def sum_scatter_reduce():
        idx = index.view(-1, 1).expand_as(msg)
        out = msg.new_zeros(egos, 2 * DIM).scatter_reduce(
            0, idx, msg, "sum", include_self=True
        )
        out.backward(g_msg)

    def sum_torch_segment():
        out = torch._segment_reduce(msg, "sum", offsets=ptr, initial=0.0)
        out.backward(g_msg)

    def softmax_index():
        softmax(logit, index, num_nodes=egos, dim=0).backward(g_logit)

    def softmax_ptr():
        softmax(logit, None, ptr, num_nodes=egos, dim=0).backward(g_logit)

    fns = {
        ("sum [E,2F]", "index_add_"): sum_index_add,
        ("sum [E,2F]", "scatter_reduce"): sum_scatter_reduce,
        ("sum [E,2F]", "torch._segment_reduce"): sum_torch_segment,
        ("softmax [E,H]", "index (scatter)"): softmax_index,
        ("softmax [E,H]", "ptr (segment)"): softmax_ptr,
    }
    if _segment.torch_scatter is not None:
        segment_csr = _segment.torch_scatter.segment_csr

        def sum_segment_csr():
            segment_csr(msg, ptr, reduce="sum").backward(g_msg)

        fns[("sum [E,2F]", "torch_scatter.segment_csr")] = sum_segment_csr

    if egos > 2048:  # the full-graph layout times the reductions only
        return fns
    # The whole layer, bipartite as a loader batch: neighbors -> egos.
    conv = MultiSageConv(DIM, DIM, heads=HEADS, context_channels=DIM)
    x_src = torch.randn(e, DIM, generator=gen)
    x_dst = torch.randn(egos, DIM, generator=gen)
    x_ctx = torch.randn(64, DIM, generator=gen)
    ei = torch.stack([torch.arange(e), index])
    ctx = torch.randint(-1, 64, (e,), generator=gen)
    w = torch.rand(e, generator=gen) + 0.5

    def layer(backend):
        def run():
            with _segment.use_backend(backend):
                conv((x_src, x_dst), x_ctx, ei, ctx, w).sum().backward()

        return run

    fns[("MultiSageConv fwd+bwd", "scatter")] = layer("scatter")
    if _segment.torch_scatter is not None:
        fns[("MultiSageConv fwd+bwd", "segment_csr")] = layer("segment_csr")
    return fns


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    rows = []
    for layout, (egos, nbrs) in LAYOUTS.items():
        print(f"{layout} ...", flush=True)
        fns = cases(egos, nbrs, gen)
        times = {k: [] for k in fns}
        for _ in range(3):  # round-robin rounds
            for k, fn in fns.items():
                times[k].append(_timed(fn, max(1, args.reps // 3)))
        base: dict[str, float] = {}
        for (op, method), ts in times.items():
            wall = statistics.median(t[0] for t in ts)
            cpu = statistics.median(t[1] for t in ts)
            base.setdefault(op, cpu)  # the first method of each op is the base
            rows.append(
                dict(
                    layout=layout,
                    op=op,
                    method=method,
                    wall_ms=1e3 * wall,
                    cpu_ms=1e3 * cpu,
                    speedup_cpu=base[op] / cpu,
                )
            )
    header = (
        f"{'layout':14} {'op':22} {'method':26} {'wall ms':>9} {'CPU ms':>9} "
        f"{'x base':>7}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['layout']:14} {r['op']:22} {r['method']:26} "
            f"{r['wall_ms']:9.3f} {r['cpu_ms']:9.3f} {r['speedup_cpu']:7.2f}"
        )
    meta = dict(
        dim=DIM,
        heads=HEADS,
        reps=args.reps,
        threads=args.threads,
        torch=torch.__version__,
        torch_scatter=getattr(_segment.torch_scatter, "__version__", None),
        machine=platform.machine(),
        note="fwd+bwd medians; 'x base' = CPU time of the op's first method "
        "/ this one's",
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(dict(config=meta, rows=rows), indent=1))
    tmp.replace(RESULTS)
    print(f"saved {RESULTS}")


if __name__ == "__main__":
    main()
