"""Forward+backward time and peak memory of the layers on one batch (CPU).

1,024 egos with 20 importance neighbors each (20,480 distinct neighbor nodes,
a bipartite neighbor -> ego batch as a loader yields it), d = 256, 10 heads,
for MultiSageConv against PyG's GATConv and TransformerConv on the same
neighborhoods, and OmniSageConv on the same neighbors as 20 slots.

Heads are averaged (``concat=False``) in GATConv/TransformerConv, as MultiSage
Eq. 7 averages its heads, so every layer maps 256 -> 256. OmniSageConv needs
its width divisible by the heads: it runs at width 256 with 8 heads and a
1,024 MLP, and at the paper's defaults (768, 12 heads, 3,072).

Timing: the layers are timed round-robin in one process (median of
``--reps``), so the ratios are side by side on a shared CPU. Memory: each
layer runs once more in a fresh subprocess and reports the growth of peak
RSS over the fwd+bwd step.

Usage: ``python benchmarks/layers.py [--reps 5] [--threads N]``; prints a
table and writes ``benchmarks/results/layers.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch_geometric.nn import GATConv, TransformerConv
from tqdm.auto import tqdm

from pyg_multisage.nn import MultiSageConv, OmniSageConv

EGOS, NEIGHBORS, DIM, HEADS, CONTEXTS = 1024, 20, 256, 10, 2048
RESULTS = Path(__file__).resolve().parent / "results" / "layers.json"
ET = ("paper", "nbr", "ego")


def make_inputs(seed: int = 0) -> dict:
    gen = torch.Generator().manual_seed(seed)
    num_src = EGOS * NEIGHBORS
    x_src = torch.randn(num_src, DIM, generator=gen)
    x_dst = torch.randn(EGOS, DIM, generator=gen)
    x_ctx = torch.randn(CONTEXTS, DIM, generator=gen)
    src = torch.arange(num_src)
    dst = torch.arange(EGOS).repeat_interleave(NEIGHBORS)
    context = torch.randint(-1, CONTEXTS, (num_src,), generator=gen)
    weight = torch.rand(num_src, generator=gen) * 10 + 1
    return dict(
        x_src=x_src,
        x_dst=x_dst,
        x_ctx=x_ctx,
        edge_index=torch.stack([src, dst]),
        context=context,
        weight=weight,
    )


def make_layers() -> dict:
    torch.manual_seed(0)
    return {
        "MultiSageConv (mask, three_way)": MultiSageConv(
            DIM, DIM, heads=HEADS, attention_channels=64
        ),
        "MultiSageConv (mask, mean)": MultiSageConv(
            DIM, DIM, heads=HEADS, attention=None
        ),
        "GATConv": GATConv(
            (DIM, DIM), DIM, heads=HEADS, concat=False, add_self_loops=False
        ),
        "TransformerConv": TransformerConv((DIM, DIM), DIM, heads=HEADS, concat=False),
        "OmniSageConv (256, 8 heads, mlp 1024)": OmniSageConv(
            {"paper": DIM, "ego": DIM},
            DIM,
            "ego",
            {("paper", "nbr", "ego"): NEIGHBORS},
            hidden_channels=256,
            heads=8,
            mlp_channels=1024,
        ),
        "OmniSageConv (paper: 768, 12 heads, mlp 3072)": OmniSageConv(
            {"paper": DIM, "ego": DIM},
            DIM,
            "ego",
            {("paper", "nbr", "ego"): NEIGHBORS},
        ),
    }


def step(name: str, layer, inp: dict) -> None:
    if name.startswith("MultiSageConv"):
        out = layer(
            (inp["x_src"], inp["x_dst"]),
            inp["x_ctx"],
            inp["edge_index"],
            inp["context"],
            inp["weight"],
        )
    elif name.startswith("OmniSageConv"):
        out = layer(
            {"paper": inp["x_src"], "ego": inp["x_dst"]},
            {ET: inp["edge_index"]},
            {ET: inp["weight"]},
        )
    else:
        out = layer((inp["x_src"], inp["x_dst"]), inp["edge_index"])
    out.square().sum().backward()
    layer.zero_grad(set_to_none=True)


def _status_mib(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"{field} not in /proc/self/status")


def measure_memory(name: str) -> dict:
    """Run in a fresh process: peak RSS growth of one fwd+bwd step (MiB)."""
    inp = make_inputs()
    layer = make_layers()[name]
    step(name, layer, inp)  # first call allocates caches; measure the second
    before = _status_mib("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak RSS (VmHWM) to the current RSS
    step(name, layer, inp)
    peak = _status_mib("VmHWM")
    return {"peak_rss_growth_mib": round(peak - before, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--memory-of", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_of is not None:
        print(json.dumps(measure_memory(args.memory_of)))
        return

    inp = make_inputs()
    layers = make_layers()
    times = {name: [] for name in layers}
    for _ in range(args.warmup):
        for name, layer in layers.items():
            step(name, layer, inp)
    for _ in tqdm(range(args.reps), desc="fwd+bwd rounds"):
        for name, layer in layers.items():
            t0 = time.perf_counter()
            step(name, layer, inp)
            times[name].append(time.perf_counter() - t0)

    rows = []
    gat = statistics.median(times["GATConv"])
    for name, layer in tqdm(layers.items(), desc="memory"):
        cmd = [sys.executable, __file__, "--memory-of", name]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        mem = json.loads(
            subprocess.check_output(cmd, text=True).strip().splitlines()[-1]
        )
        med = statistics.median(times[name])
        rows.append(
            {
                "layer": name,
                "params": sum(p.numel() for p in layer.parameters()),
                "median_ms": round(1000 * med, 1),
                "min_ms": round(1000 * min(times[name]), 1),
                "vs_gat": round(med / gat, 2),
                **mem,
            }
        )

    header = f"{'layer':48s} {'params':>9s} {'median ms':>10s} {'min ms':>8s} "
    header += f"{'x GAT':>6s} {'peak MiB':>9s}"
    print(
        f"\n{EGOS} egos x {NEIGHBORS} neighbors, d={DIM}, heads={HEADS}, "
        f"CPU threads={torch.get_num_threads()}, reps={args.reps}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['layer']:48s} {r['params']:9d} {r['median_ms']:10.1f} "
            f"{r['min_ms']:8.1f} {r['vs_gat']:6.2f} {r['peak_rss_growth_mib']:9.1f}"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "setup": {
                    "egos": EGOS,
                    "neighbors": NEIGHBORS,
                    "dim": DIM,
                    "heads": HEADS,
                    "contexts": CONTEXTS,
                    "threads": torch.get_num_threads(),
                    "reps": args.reps,
                    "torch": torch.__version__,
                    "machine": platform.processor() or platform.machine(),
                    "memory": "peak RSS growth over one fwd+bwd, fresh process",
                },
                "results": rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"saved {RESULTS}")


if __name__ == "__main__":
    main()
