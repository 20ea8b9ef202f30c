"""Shape suite: the samplers against their peers over graphs of different shapes.

Issue 15: a lead measured on one graph (the pin-board graph, where most pins
have one or two boards) need not hold on power-law graphs or graphs with hubs.
Shapes (item -> context edges):

- ``pin-board``: the standard synthetic graph (``../shared/peers/
  make_pinboard.py``, 468,664 edges);
- ``DBLP paper-venue`` and ``DBLP paper-term``: the real DBLP graph
  (``$PYG_MULTISAGE_DBLP``);
- ``synthetic 0.4M`` / ``5M`` (``50M`` with ``--big``):
  :func:`~pyg_multisage.datasets.synthetic_multipartite` with power-law degrees,
  ``num_contexts = num_targets / 10``, ``avg_degree = 10``;
- ``uniform deg 10``: 50,000 items, each in exactly 10 distinct of 5,000
  contexts (one drawn from each tenth of the context ids);
- ``hub``: the uniform graph plus one context holding 10% of all items.

Kernels, side by side in one run on the same graph: ``pinsage_walk`` and
``contextual_walk`` (settings of ``benchmarks/samplers.py``: 100 walks, 3
traversals, termination / restart 0.5, top 10) against DGL's
``PinSAGESampler`` (its own venv, ``../shared/peers/dgl``; skipped when that is
absent), and ``ppr_topk`` (graph made undirected, one node set, alpha 0.15,
top 50) at eps 1e-4 and 1e-5 against PyG's ``get_ppr``. Reported per row:

- seeds/s (wall, best of ``--repeat``) and seeds per CPU-second (process CPU
  time: other load on a shared machine barely moves it), ``x peer`` by both;
  PPR and ``get_ppr`` run in turn (``--targets`` seeds each), so both sides
  of a ratio see the same machine state, each twice in a row per round: the
  second ("warm") call is timed for the headline ratio, the steady state of
  a PPR run over a whole graph; the first ("cold") call starts on caches the
  other side just evicted, and its ratio is kept as ``x_peer_cold``;
- hops per CPU-second (= per busy core): walks: the expected CSR hops of the
  setting (as in ``samplers.py``); PPR: the pushes' edge traversals the kernel
  counts;
- ``touched``: distinct nodes a walk kernel counts per seed (the kernel run
  once more with ``num_neighbors`` = the most it can touch, so its rows list
  every touched node);
- ``% probe``: hops per CPU-second as a share of the interleaved (16 chains)
  random-read rate of ``benchmarks/probe.py`` at the byte size of the
  kernel's CSR arrays (int32 offsets and ids, both directions);
- PPR: recall of the exact top 50 (power iteration) on a few targets, for
  both methods.

- walks: ``hop/count/topk %``, the shares of the kernel's CPU time in the
  hops, the visit counting (and the reset of the visit table) and the top-k
  selection: the same kernel run with each seed's work stopped after the
  hops, then after the counting (``_WalkConfig.stages``: one integer test per
  stage, the hops themselves unchanged), against the whole run.

Usage: ``python benchmarks/shapes.py [--seeds 10000] [--targets 1000]
[--threads 2] [--repeat 5] [--no-dgl] [--big]``; prints a table, writes
``benchmarks/results/shapes.json`` and ``shapes.png`` (x peer per shape).
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

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import probe as probe_mod  # noqa: E402
import samplers as samplers_mod  # noqa: E402

from pyg_multisage.run_folder import save_figure

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PPR_K = 50


ALPHA = 0.15


# -- graphs as item -> context .npz files -------------------------------------
def _save(path: Path, src, dst, num_items: int, num_ctx: int) -> Path:
    np.savez(
        path,
        src=np.asarray(src, np.int64),
        dst=np.asarray(dst, np.int64),
        num_items=num_items,
        num_contexts=num_ctx,
    )
    return path


def synthetic_graph(path: Path, num_targets: int) -> Path:
    from pyg_multisage.datasets.synthetic import synthetic_multipartite

    data = synthetic_multipartite(
        num_targets=num_targets,
        num_contexts=num_targets // 10,
        avg_degree=10.0,
        num_features=1,
        num_pairs=1,  # (0 fails inside the generator)
    )
    ei = data["item", "in", "board"].edge_index.numpy()
    return _save(path, ei[0], ei[1], num_targets, num_targets // 10)


def uniform_graph(path: Path, hub: bool, n: int = 50_000, c: int = 5_000) -> Path:
    """Every item in 10 distinct contexts, one from each tenth of the ids;
    ``hub``: context 0 also holds 10% of all items."""
    rng = np.random.default_rng(0)
    band = c // 10
    ctx = np.arange(10) * band + rng.integers(0, band, (n, 10))
    src = np.repeat(np.arange(n), 10)
    dst = ctx.reshape(-1)
    if hub:
        members = rng.choice(n, n // 10, replace=False)
        members = members[(ctx[members] != 0).all(axis=1)]
        src = np.concatenate([src, members])
        dst = np.concatenate([dst, np.zeros(len(members), np.int64)])
    return _save(path, src, dst, n, c)


def graph_makers(tmp: Path, big: bool, dblp_dir: str | None) -> dict:
    """Shape name -> a function writing its .npz (called only when run)."""
    from pyg_multisage.datasets.dblp import find_dblp_raw

    def pinboard() -> Path:
        out = tmp / "pinboard.npz"
        maker = str(samplers_mod.PEERS / "make_pinboard.py")
        subprocess.run(
            [sys.executable, maker, str(out)], check=True, capture_output=True
        )
        return out

    makers = {"pin-board": pinboard}
    dblp = find_dblp_raw(dblp_dir)
    if dblp is not None:
        cache: dict[str, Path] = {}

        def dblp_one(name: str) -> Path:
            if not cache:
                cache.update(samplers_mod.dblp_graphs(dblp, tmp))
            return cache[name]

        for name in ("DBLP paper-venue", "DBLP paper-term"):
            makers[name] = lambda name=name: dblp_one(name)
    else:
        print("DBLP raw files not found: DBLP rows skipped", file=sys.stderr)
    sizes = {"synthetic 0.4M": 40_000, "synthetic 5M": 500_000}
    if big:
        sizes["synthetic 50M"] = 5_000_000
    for name, n in sizes.items():
        makers[name] = lambda n=n: synthetic_graph(tmp / f"syn{n}.npz", n)
    makers["uniform deg 10"] = lambda: uniform_graph(tmp / "uni.npz", hub=False)
    makers["hub (10%)"] = lambda: uniform_graph(tmp / "hub.npz", hub=True)
    return makers


# -- measurements ----------------------------------------------------------------
def _best(fn, repeat: int) -> tuple[float, float, object]:
    best_wall = best_cpu = float("inf")
    res = None
    for r in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        res = fn(r)
        best_wall = min(best_wall, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    return best_wall, best_cpu, res


def csr_bytes(num_nodes: int, num_edges: int) -> int:
    """int32 offsets and ids of both directions of a relation."""
    return 4 * (num_nodes + 2) + 2 * 4 * num_edges


def walk_rows(graph: Path, seeds: int, threads: int, repeat: int) -> list[dict]:
    import torch

    from pyg_multisage.graph import HeteroCSR
    from pyg_multisage.sampling.walks import contextual_walk, pinsage_walk

    z = np.load(graph)
    ni, nc = int(z["num_items"]), int(z["num_contexts"])
    ei = torch.from_numpy(np.stack([z["src"], z["dst"]]).astype(np.int64))
    csr = HeteroCSR(
        {("item", "ic", "context"): ei},
        {"item": ni, "context": nc},
        undirected=True,
    )
    rng = np.random.default_rng(0)
    sd = torch.from_numpy(np.sort(rng.choice(ni, min(seeds, ni), replace=False)))
    common = dict(target="item", context="context", num_walks=samplers_mod.WALKS)
    kernels = {
        "pinsage_walk": lambda s, x, k: pinsage_walk(
            csr,
            x,
            num_traversals=samplers_mod.TRAVERSALS,
            termination_prob=samplers_mod.TERMINATION,
            num_neighbors=k,
            seed=s,
            num_threads=threads,
            **common,
        ),
        "contextual_walk": lambda s, x, k: contextual_walk(
            csr,
            x,
            walk_length=samplers_mod.WALK_LENGTH,
            restart_prob=samplers_mod.RESTART,
            num_neighbors=k,
            seed=s,
            num_threads=threads,
            **common,
        ),
    }
    deg = np.bincount(z["src"], minlength=ni)
    active = int((deg[sd.numpy()] > 0).sum())
    rows = []
    for name, run in kernels.items():
        run(0, sd[:64], samplers_mod.TOP_K)  # compile / cache
        wall, cpu, _ = _best(lambda r, f=run: f(r, sd, samplers_mod.TOP_K), repeat)
        if name == "contextual_walk":
            per_walk = samplers_mod.WALK_LENGTH
            most = samplers_mod.WALKS
        else:
            per_walk = sum(
                (1 - samplers_mod.TERMINATION) ** t
                for t in range(samplers_mod.TRAVERSALS)
            )
            most = samplers_mod.WALKS * samplers_mod.TRAVERSALS
        hops = active * samplers_mod.WALKS * 2 * per_walk
        full = run(0, sd, most)
        split = walk_split(csr, sd.numpy(), name, threads, repeat, cpu)
        rows.append(
            dict(
                kernel=name,
                seeds=len(sd),
                seconds=wall,
                seeds_per_s=len(sd) / wall,
                seeds_per_cpu_s=len(sd) / cpu,
                hops_per_cpu_s=hops / cpu,
                hops_per_s_per_core=hops / wall / threads,
                touched_per_seed=full.num_edges / len(sd),
                **split,
            )
        )
    return rows


def walk_split(
    csr, seeds: np.ndarray, name: str, threads: int, repeat: int, cpu_all: float
) -> dict[str, float]:
    """Shares of a walk kernel's CPU time in the hops, the visit counting
    (with the reset of the visit table) and the top-k selection: the kernel
    timed with each seed's work stopped after the hops, after the counting,
    and whole (``cpu_all``, measured by the caller)."""
    from pyg_multisage.sampling import walks

    restart = name == "contextual_walk"
    args = (
        csr,
        seeds.astype(np.int64),
        "item",
        "context",
        samplers_mod.WALKS,
        samplers_mod.WALK_LENGTH if restart else samplers_mod.TRAVERSALS,
        samplers_mod.RESTART if restart else samplers_mod.TERMINATION,
        restart,
        samplers_mod.TOP_K,
        0,
        threads,
    )
    cpu = {}
    for stages in (1, 2):
        walks._run(*args[:1], args[1][:64], *args[2:], stages=stages)  # compile
        fn = lambda r, st=stages: walks._run(*args, stages=st)  # noqa: E731
        cpu[stages] = _best(fn, repeat)[1]
    hops = min(cpu[1], cpu_all)
    counting = min(max(cpu[2] - cpu[1], 0.0), cpu_all - hops)
    return dict(
        split_hops=hops / cpu_all,
        split_counting=counting / cpu_all,
        split_topk=max(cpu_all - hops - counting, 0.0) / cpu_all,
    )


def _dgl_python() -> str | None:
    """The peer venv's interpreter when it imports dgl, else None."""
    dgl = samplers_mod.dgl_python()
    if dgl is None:
        print("DGL peer venv not found: DGL rows skipped", file=sys.stderr)
        return None
    if subprocess.run([dgl, "-c", "import dgl"], capture_output=True).returncode:
        print(f"{dgl} cannot import dgl: DGL rows skipped", file=sys.stderr)
        return None
    return dgl


def dgl_row(dgl: str, graph: Path, seeds: int, threads: int, repeat: int) -> dict:
    # DGL times seeds 0..S-1 (its script); the same count as ours.
    cmd = [dgl, "-c", samplers_mod._DGL_CPU_WRAPPER, str(samplers_mod.DGL_BENCH)]
    cmd += [str(graph), "--seeds", str(seeds), "--threads", str(threads)]
    cmd += ["--repeat", str(repeat)]
    (res, cpu), _ = samplers_mod.run_measured(cmd, lines=2)
    return dict(
        kernel="DGL PinSAGESampler",
        seeds=res["seeds"],
        seconds=res["seconds"],
        seeds_per_s=res["seeds_per_s"],
        seeds_per_cpu_s=res["seeds"] / cpu["cpu_seconds"],
    )


def ppr_rows(
    graph: Path, targets: int, threads: int, repeat: int, error_sample: int
) -> list[dict]:
    import numba
    import ppr_bench
    import torch
    from torch_geometric.utils import coalesce, get_ppr

    from pyg_multisage.graph import HeteroCSR
    from pyg_multisage.sampling.ppr import _ppr_topk

    z = np.load(graph)
    ni, nc = int(z["num_items"]), int(z["num_contexts"])
    n = ni + nc
    edge = torch.from_numpy(np.stack([z["src"], z["dst"] + ni]).astype(np.int64))
    csr = HeteroCSR({("node", "to", "node"): edge}, {"node": n}, undirected=True)
    und = coalesce(torch.cat([edge, edge.flip(0)], 1), num_nodes=n)
    deg = np.bincount(z["src"], minlength=ni)
    rng = np.random.default_rng(0)
    cand = np.flatnonzero(deg > 0)
    tg = np.sort(rng.choice(cand, min(targets, len(cand)), replace=False))
    g = dict(
        csr=csr,
        relations=[("node", "to", "node")],
        source_type="node",
        top_k={"node": PPR_K},
    )
    sample = np.arange(min(error_sample, len(tg)))
    exact = ppr_bench._exact_ppr(und, n, tg[sample]) if len(sample) else None
    numba.set_num_threads(threads)

    def ours(eps):
        return _ppr_topk(
            csr,
            torch.from_numpy(tg),
            source_type="node",
            relations=g["relations"],
            top_k=g["top_k"],
            alpha=ALPHA,
            eps=eps,
            num_threads=threads,
        )

    def peer(eps):
        return get_ppr(
            und, alpha=ALPHA, eps=eps, target=torch.from_numpy(tg), num_nodes=n
        )

    ours(1e-4)
    get_ppr(und, alpha=ALPHA, eps=1e-4, target=torch.from_numpy(tg[:4]), num_nodes=n)
    rows = []
    for eps in (1e-4, 1e-5):
        # In turn, best of `repeat` rounds: both sides see the same machine
        # state. Each side runs twice in a row per round: the first call
        # starts on caches the other side's call just evicted ("cold"), the
        # second on its own data ("warm", the steady state of a PPR run over
        # a whole graph, batch after batch). Warm ratios are the headline,
        # cold ones are kept beside them.
        best = {k: float("inf") for k in ("wo", "co", "wp", "cp", "wo1", "wp1")}
        for _ in range(repeat):
            wo1, _, _ = _best(lambda r, e=eps: ours(e), 1)
            wo, co, (tables, hops) = _best(lambda r, e=eps: ours(e), 1)
            wp1, _, _ = _best(lambda r, e=eps: peer(e), 1)
            wp, cp, (out_ei, w) = _best(lambda r, e=eps: peer(e), 1)
            for k, v in dict(wo=wo, co=co, wp=wp, cp=cp, wo1=wo1, wp1=wp1).items():
                best[k] = min(best[k], v)
        w_o, c_o, w_p, c_p = best["wo"], best["co"], best["wp"], best["cp"]
        err_o = err_p = {}
        if exact is not None:
            err_o = ppr_bench._topk_errors(
                ppr_bench._ours_lists(tables, sample), exact, g, tg[sample]
            )
            err_p = ppr_bench._topk_errors(
                ppr_bench._peer_lists(out_ei, w, g, tg, sample), exact, g, tg[sample]
            )
        h = int(np.asarray(hops).sum())
        rows.append(
            dict(
                kernel=f"ppr_topk {eps:.0e}",
                seeds=len(tg),
                seconds=w_o,
                seeds_per_s=len(tg) / w_o,
                seeds_per_cpu_s=len(tg) / c_o,
                hops_per_cpu_s=h / c_o,
                hops_per_s_per_core=h / w_o / threads,
                hops_per_seed=h / len(tg),
                recall=err_o.get("recall"),
                x_peer=w_p / w_o,
                x_peer_cpu=c_p / c_o,
                x_peer_cold=best["wp1"] / best["wo1"],
                seeds_per_s_cold=len(tg) / best["wo1"],
                peer=dict(
                    kernel=f"get_ppr {eps:.0e}",
                    seeds_per_s=len(tg) / w_p,
                    seeds_per_s_cold=len(tg) / best["wp1"],
                    seeds_per_cpu_s=len(tg) / c_p,
                    recall=err_p.get("recall"),
                ),
            )
        )
    return rows


# -- report ------------------------------------------------------------------------
def format_table(rows: list[dict]) -> str:
    head = (
        f"{'shape':<18}{'kernel':<20}{'seeds/s':>9}{'x peer':>7}{'x cold':>7}"
        f"{'seeds/cpu-s':>12}"
        f"{'x cpu':>6}{'Mhop/cpu-s':>11}{'% probe':>8}{'touched':>8}{'recall':>12}"
        f"{'hop/count/topk %':>18}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:

        def f(key, fmt, scale=1.0, r=r):
            v = r.get(key)
            return "-" if v is None else format(v * scale, fmt)

        rec = "-"
        if r.get("recall") is not None:
            pr = r["peer"].get("recall")
            rec = f"{r['recall']:.2f}/{pr:.2f}" if pr is not None else "-"
        lines.append(
            f"{r['shape']:<18}{r['kernel'][:19]:<20}{f('seeds_per_s', '.0f'):>9}"
            f"{f('x_peer', '.1f'):>7}{f('x_peer_cold', '.1f'):>7}"
            f"{f('seeds_per_cpu_s', '.0f'):>12}"
            f"{f('x_peer_cpu', '.1f'):>6}{f('hops_per_cpu_s', '.1f', 1e-6):>11}"
            f"{f('share_of_probe', '.0%'):>8}{f('touched_per_seed', '.0f'):>8}"
            f"{rec:>12}{split_cell(r):>18}"
        )
    return "\n".join(lines)


def split_cell(r: dict) -> str:
    """``hops/counting/top-k`` percentages of a walk row, else ``-``."""
    if "split_hops" not in r:
        return "-"
    keys = ("split_hops", "split_counting", "split_topk")
    return "/".join(f"{100 * r[k]:.0f}" for k in keys)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shapes = list(dict.fromkeys(r["shape"] for r in rows))
    kernels = [
        "pinsage_walk",
        "contextual_walk",
        "ppr_topk 1e-04",
        "ppr_topk 1e-05",
    ]
    fig, ax = plt.subplots(figsize=(11, 4.5))
    width = 0.8 / len(kernels)
    for j, k in enumerate(kernels):
        ys = []
        for s in shapes:
            hit = [r for r in rows if r["shape"] == s and r["kernel"] == k]
            ys.append(hit[0].get("x_peer_cpu") or 0.0 if hit else 0.0)
        ax.bar(np.arange(len(shapes)) + (j - 1.5) * width, ys, width, label=k)
    for y, ls in [(5, "--"), (15, ":"), (30, "-.")]:
        ax.axhline(y, color="grey", lw=0.8, ls=ls)
    ax.set_xticks(np.arange(len(shapes)), shapes, rotation=20, ha="right")
    ax.set_ylabel("x peer (CPU time; DGL / get_ppr)")
    ax.set_yscale("log")
    ax.set_title("Samplers vs peers per graph shape (targets: 5x DGL, 15x/30x get_ppr)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def save(args, rows: list[dict], probes: dict) -> None:
    """Writes the JSON and the PNG (after every shape: a crash keeps the rest)."""
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    result = dict(
        setting=dict(
            seeds=args.seeds,
            ppr_targets=args.targets,
            threads=args.threads,
            repeat=args.repeat,
            walks=samplers_mod.WALKS,
            traversals=samplers_mod.TRAVERSALS,
            termination=samplers_mod.TERMINATION,
            walk_length=samplers_mod.WALK_LENGTH,
            restart=samplers_mod.RESTART,
            top_k=samplers_mod.TOP_K,
            ppr=dict(alpha=ALPHA, top_k=PPR_K),
            dgl=any(r["kernel"].startswith("DGL") for r in rows),
        ),
        machine=dict(cpus=os.cpu_count(), load=os.getloadavg()),
        note="load average at the end in machine.load; on a shared machine "
        "compare the ratios and the CPU-time rates",
        probes=list(probes.values()),
        rows=rows,
    )
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(out)
    plot(rows, out.with_suffix(".png"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=10_000)
    ap.add_argument(
        "--targets",
        type=int,
        default=1000,
        help="PPR seeds (200 made runs of ppr_topk of 20-40 ms: too short "
        "against this machine's drifts)",
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--repeat",
        type=int,
        default=5,
        help="best of this many runs per kernel (PPR: rounds of ours and "
        "get_ppr in turn); 2 left the ratios to the machine's drifts",
    )
    ap.add_argument("--error-sample", type=int, default=5)
    ap.add_argument("--probe-reads", type=int, default=4_000_000)
    ap.add_argument("--big", action="store_true", help="add the 50M-edge graph")
    ap.add_argument("--no-dgl", action="store_true")
    ap.add_argument("--no-ppr", action="store_true")
    ap.add_argument("--only", nargs="+", default=None, help="shape names to run")
    ap.add_argument("--dblp", default=None)
    ap.add_argument("--out", default=str(RESULTS / "shapes.json"))
    args = ap.parse_args()
    for name in ("seeds", "targets", "threads", "repeat", "probe_reads"):
        if getattr(args, name) < 1:
            print(f"--{name.replace('_', '-')} must be >= 1", file=sys.stderr)
            sys.exit(2)
    rows: list[dict] = []
    probes: dict[int, dict] = {}
    with tempfile.TemporaryDirectory() as tmpdir:
        makers = graph_makers(Path(tmpdir), args.big, args.dblp)
        unknown = set(args.only or []) - set(makers)
        if unknown:
            print(f"--only: unknown shapes {sorted(unknown)}", file=sys.stderr)
            sys.exit(2)
        # cheap and telling shapes first; the 5M (and 50M) graphs last
        first = ["pin-board", "synthetic 0.4M", "hub (10%)", "uniform deg 10"]
        order = [m for m in first if m in makers] + [
            m for m in makers if m not in first
        ]
        for shape in order:
            make = makers[shape]
            if args.only and shape not in args.only:
                continue
            graph = make()
            z = np.load(graph)
            ne, nn = len(z["src"]), int(z["num_items"]) + int(z["num_contexts"])
            nbytes = csr_bytes(nn, ne)
            mb_key = int(nbytes // 2**20)
            if mb_key not in probes:
                probes[mb_key] = probe_mod.probe(nbytes, args.probe_reads, repeat=2)
            limit = probes[mb_key]["interleaved_per_cpu_s"]
            print(f"{shape}: {ne} edges, CSR {nbytes / 2**20:.0f} MB", file=sys.stderr)
            base = dict(shape=shape, edges=ne, csr_mb=nbytes / 2**20)
            dgl = None if args.no_dgl else _dgl_python()  # (re)checked per shape
            peer = None
            if dgl:
                peer = dgl_row(dgl, graph, args.seeds, args.threads, args.repeat)
            if peer:
                rows.append(dict(base, **peer))
            for r in walk_rows(graph, args.seeds, args.threads, args.repeat):
                if peer:
                    r["x_peer"] = r["seeds_per_s"] / peer["seeds_per_s"]
                    r["x_peer_cpu"] = r["seeds_per_cpu_s"] / peer["seeds_per_cpu_s"]
                r["share_of_probe"] = r["hops_per_cpu_s"] / limit
                rows.append(dict(base, **r))
            if not args.no_ppr:
                for r in ppr_rows(
                    graph, args.targets, args.threads, args.repeat, args.error_sample
                ):
                    r["share_of_probe"] = r["hops_per_cpu_s"] / limit
                    rows.append(dict(base, **r))
            print(
                format_table([r for r in rows if r["shape"] == shape]), file=sys.stderr
            )
            save(args, rows, probes)  # after every shape: a crash keeps the rest
    print(format_table(rows))
    out = Path(args.out)
    print(f"saved {out} and {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
