r"""Importance-neighbor tables of every target, sharded over seed ranges.

MultiSage (§3.2, Alg. 2) and OmniSage (§3.1.1, §3.4) precompute the
importance neighbors of every node offline; at Pinterest scale this is a
batch job over a cluster. Here a :class:`TableSpec` says *what* to compute
(contextual walks, PinSage visit counts or PPR, with their settings); the
work is cut into seed ranges ``[lo, hi)`` and

* :func:`precompute` runs them in this process, or
* :func:`precompute` with ``ray=True`` runs them on a Ray Data
  ``map_batches`` actor pool, every actor memory-mapping the CSR saved by
  :meth:`~pyg_multisage.graph.HeteroCSR.save` (processes on one machine
  share its pages through the page cache).

Both write the same folder: per importance edge type, Parquet shards
``part-<lo>-<hi>.parquet`` with columns ``ego``, ``neighbor``, ``weight``
(and ``context`` for contextual walks), rows grouped by ego in seed order,
each ego's neighbors weight descending (see :mod:`.shards`). Because the
random stream of a walk is a pure function of ``(seed, source, walk)`` and
forward push is deterministic, the tables are **identical** for any number of
workers and any range size. :func:`attach_tables` writes them into a
:class:`~torch_geometric.data.HeteroData` with
:func:`~pyg_multisage.convention.write_table`, exactly as the transforms of
:mod:`pyg_multisage.transforms` do.

A failed or killed job leaves no folder behind: shards go to a temporary
sibling, renamed into place only when every range is written. Ray retries
the calls of a restarted actor; a shard is written under its final name by
an atomic rename, so a retried range simply rewrites the same file.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from pyg_multisage._arraydir import AtomicDir
from pyg_multisage.convention import (
    EdgeType,
    pinsage_edge_type,
    ppr_edge_type,
    walk_edge_type,
    write_table,
)
from pyg_multisage.distributed import shards
from pyg_multisage.graph import HeteroCSR
from pyg_multisage.sampling import (
    NeighborTable,
    contextual_walk,
    pinsage_walk,
    ppr_topk,
)

if TYPE_CHECKING:  # a precompute worker needs no PyG (~150 MB per process)
    from torch_geometric.data import HeteroData

FORMAT = "pyg_multisage.neighbor_tables"
#: Seeds a Ray actor is handed per call, at least (when there are enough
#: ranges for 4 calls per worker): each call costs Ray Data about 70 ms
#: outside the kernel (measured on 2 cores), so it should carry over a second
#: of walking.
MIN_SEEDS_PER_CALL = 16_384
SAMPLERS = ("walk", "pinsage", "ppr")


@dataclass
class TableSpec:
    """What to precompute: one neighbor source and its settings.

    Args:
        sampler (str): ``'walk'`` (MultiSage's contextual walks, Alg. 2: one
            ``walk_via_<c>`` table per context type), ``'pinsage'`` (visit
            counts: one ``pinsage`` table through :obj:`contexts[0]`) or
            ``'ppr'`` (OmniSage §3.1.1: one ``ppr_<name>`` table per node
            type of :obj:`top_k`).
        target (str): the node type whose neighbors are tabulated (the seeds).
        contexts (list[str]): context node types (walk, pinsage).
        num_walks, walk_length, restart_prob, num_neighbors, seed: walk
            settings (for ``pinsage``: walks, traversals, termination
            probability, kept neighbors, seed).
        relation_subsets (dict[str, list[EdgeType]]): PPR relation subsets.
        top_k (dict[str, dict[str, int]]): PPR :math:`k_t` per subset and
            node type.
        alpha, eps: PPR restart probability and push threshold.
    """

    sampler: str
    target: str
    contexts: list[str] = field(default_factory=list)
    num_walks: int = 100
    walk_length: int = 3
    restart_prob: float = 0.5
    num_neighbors: int = 10
    seed: int = 0
    relation_subsets: dict[str, list[EdgeType]] = field(default_factory=dict)
    top_k: dict[str, dict[str, int]] = field(default_factory=dict)
    alpha: float = 0.15
    eps: float = 1e-4

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {self.sampler!r}")
        self.contexts = list(self.contexts)
        self.relation_subsets = {
            str(k): [tuple(et) for et in v] for k, v in self.relation_subsets.items()
        }
        self.top_k = {
            str(k): {str(t): int(n) for t, n in v.items()}
            for k, v in self.top_k.items()
        }
        if self.sampler in ("walk", "pinsage") and not self.contexts:
            raise ValueError(
                f"sampler {self.sampler!r} needs at least one context type"
            )
        if self.sampler == "ppr":
            if not self.relation_subsets or set(self.top_k) != set(
                self.relation_subsets
            ):
                raise ValueError(
                    "sampler 'ppr' needs relation_subsets and a top_k entry for "
                    f"each (got {list(self.relation_subsets)} and {list(self.top_k)})"
                )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> TableSpec:
        return cls(**obj)

    def edge_types(self) -> dict[EdgeType, str | None]:
        """Every edge type the spec writes, with its context type (or None)."""
        if self.sampler == "walk":
            return {walk_edge_type(self.target, c): c for c in self.contexts}
        if self.sampler == "pinsage":
            return {pinsage_edge_type(self.target): None}
        return {
            ppr_edge_type(t, name, self.target): None
            for name in self.relation_subsets
            for t in self.top_k[name]
        }

    def compute(
        self,
        csr: HeteroCSR,
        seeds: torch.Tensor | np.ndarray,
        num_threads: int | None = None,
    ) -> dict[EdgeType, NeighborTable]:
        """The tables of :obj:`seeds`, keyed by edge type (the kernel call
        the transforms make, on any CSR that holds the needed relations)."""
        walk = dict(
            num_walks=self.num_walks, num_neighbors=self.num_neighbors, seed=self.seed
        )
        if self.sampler == "walk":
            tables = contextual_walk(
                csr,
                seeds,
                target=self.target,
                context=self.contexts,
                walk_length=self.walk_length,
                restart_prob=self.restart_prob,
                num_threads=num_threads,
                **walk,
            )
            return {walk_edge_type(self.target, c): tables[c] for c in self.contexts}
        if self.sampler == "pinsage":
            table = pinsage_walk(
                csr,
                seeds,
                target=self.target,
                context=self.contexts[0],
                num_traversals=self.walk_length,
                termination_prob=self.restart_prob,
                num_threads=num_threads,
                **walk,
            )
            return {pinsage_edge_type(self.target): table}
        out = {}
        for name, rels in self.relation_subsets.items():
            tables = ppr_topk(
                csr,
                seeds,
                source_type=self.target,
                relations=rels,
                top_k=self.top_k[name],
                alpha=self.alpha,
                eps=self.eps,
                num_threads=num_threads,
            )
            for t, table in tables.items():
                out[ppr_edge_type(t, name, self.target)] = table
        return out


def _dir_name(edge_type: EdgeType) -> str:
    return "__".join(edge_type)


def _write_range(
    csr: HeteroCSR,
    spec: TableSpec,
    folder: Path,
    lo: int,
    hi: int,
    num_threads: int | None,
) -> int:
    seeds = torch.arange(lo, hi)
    edges = 0
    for et, table in spec.compute(csr, seeds, num_threads).items():
        cols = {
            "ego": table.ego().numpy(),
            "neighbor": table.neighbor.numpy(),
            "weight": table.weight.numpy(),
        }
        if table.context is not None:
            cols["context"] = table.context.numpy()
        shards.write_part(folder / _dir_name(et), lo, hi, cols)
        edges += table.num_edges
    return edges


class _PrecomputeWorker:
    """A Ray actor: memory-maps the saved CSR once and runs the kernels on one
    seed (compiling them, or loading them from Numba's cache), so that its
    start-up cost is paid before the first range; then writes the shards of
    every seed range it is handed."""

    def __init__(
        self, csr_dir: str, fingerprint: str, spec: dict, folder: str, num_threads: int
    ) -> None:
        self.csr = HeteroCSR.load(csr_dir, mmap=True, fingerprint=fingerprint)
        self.spec = TableSpec.from_json(spec)
        self.folder = Path(folder)
        self.num_threads = num_threads
        if self.csr.num_nodes.get(self.spec.target, 0) > 0:
            self.spec.compute(self.csr, torch.arange(1), num_threads)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        start, cpu = time.time(), time.process_time()
        edges = [
            _write_range(
                self.csr, self.spec, self.folder, int(lo), int(hi), self.num_threads
            )
            for lo, hi in zip(batch["lo"], batch["hi"], strict=True)
        ]
        n = len(edges)
        return {
            "lo": batch["lo"],
            "hi": batch["hi"],
            "edges": np.asarray(edges, np.int64),
            "cpu_s": np.full(n, (time.process_time() - cpu) / n),
            "start": np.full(n, start),
            "end": np.full(n, time.time()),
        }


def precompute(
    csr_dir: str | os.PathLike,
    spec: TableSpec,
    out: str | os.PathLike,
    *,
    batch_size: int = 4096,
    ray: bool = False,
    num_workers: int = 2,
    cpus_per_worker: float = 0.5,
    threads_per_worker: int = 1,
    address: str | None = None,
    overwrite: bool = False,
    progress: bool = True,
    max_retries: int = 3,
) -> Path:
    """Tabulates the importance neighbors of every :obj:`spec.target` node of
    the CSR saved in :obj:`csr_dir` into the Parquet folder :obj:`out`.

    Args:
        csr_dir (str): a directory written by :meth:`HeteroCSR.save` holding
            the relations the sampler walks (for PPR over ``rev_``
            relations: saved from an ``undirected=True`` view).
        spec (TableSpec): what to compute.
        out (str): the folder to create (must not exist unless
            :obj:`overwrite`); on a cluster, a path every node can write.
        batch_size (int): seeds per range (one Parquet shard per range and
            edge type). (default: :obj:`4096`) A Ray actor is handed several
            consecutive ranges per call when they are small
            (``MIN_SEEDS_PER_CALL`` seeds, keeping 4 calls per worker).
        ray (bool): run on a Ray actor pool instead of this process.
        num_workers (int): actors in the pool. (default: :obj:`2`)
        cpus_per_worker (float): CPUs Ray reserves per actor (``<= 0.5`` on
            a local 2-CPU cluster, see ray#44687). (default: :obj:`0.5`)
        threads_per_worker (int): Numba threads per actor. (default: :obj:`1`)
        address (str, optional): a running Ray cluster (``ray://host:10001``
            or ``auto``); default: start a local one.
        overwrite (bool): replace an existing :obj:`out`.
        progress (bool): show a progress bar.
        max_retries (int): restarts of a Ray actor that dies, each retrying
            its pending ranges (a range that raises is not retried).
            (default: :obj:`3`)

    Returns:
        Path: :obj:`out`. Its manifest records ``num_edges``,
        ``worker_cpu_seconds`` (CPU time of the ranges, all workers) and
        ``ranges_wall_seconds`` (wall time from the start of the first range
        to the end of the last: the job without Ray's and the actors'
        start-up).
    """
    csr = HeteroCSR.load(csr_dir, mmap=True)
    num_seeds = csr.num_nodes.get(spec.target)
    if num_seeds is None:
        raise ValueError(
            f"{csr_dir}: the saved graph has no node type {spec.target!r} "
            f"(has {csr.node_types})"
        )
    ranges = shards.seed_ranges(num_seeds, batch_size)
    with AtomicDir(out, overwrite=overwrite) as tmp:
        if ray:
            from pyg_multisage.distributed._ray import init_ray, run_ranges

            if spec.sampler == "ppr" and num_seeds:
                # the merged graph of each relation subset: built once here,
                # saved beside the graph (HeteroCSR.derived), mapped by every actor
                spec.compute(csr, torch.arange(1), 1)
            init_ray(address)
            kwargs = dict(
                csr_dir=str(Path(csr_dir).resolve()),
                fingerprint=csr.fingerprint,
                spec=spec.to_json(),
                folder=str(tmp.path.resolve()),
                num_threads=threads_per_worker,
            )
            rows = run_ranges(
                _PrecomputeWorker,
                kwargs,
                ranges,
                num_workers=num_workers,
                cpus_per_worker=cpus_per_worker,
                progress=progress,
                desc="precompute",
                max_retries=max_retries,
                ranges_per_call=max(
                    1,
                    min(
                        -(-MIN_SEEDS_PER_CALL // batch_size),
                        len(ranges) // (4 * num_workers),
                    ),
                ),
            )
            edges = sum(int(r["edges"]) for r in rows)
            cpu_s = sum(float(r["cpu_s"]) for r in rows)
            wall_s = 0.0
            if rows:
                wall_s = max(float(r["end"]) for r in rows) - min(
                    float(r["start"]) for r in rows
                )
        else:
            from tqdm.auto import tqdm

            edges, cpu, wall = 0, time.process_time(), time.perf_counter()
            for lo, hi in tqdm(ranges, desc="precompute", disable=not progress):
                edges += _write_range(csr, spec, tmp.path, lo, hi, None)
            cpu_s = time.process_time() - cpu
            wall_s = time.perf_counter() - wall
        types = spec.edge_types()
        for et in types:
            if num_seeds:
                # a killed actor's partial file (its range was retried)
                shards.remove_temporaries(tmp.path / _dir_name(et))
                shards.check_ranges(tmp.path / _dir_name(et), num_seeds)
        shards.write_manifest(
            tmp.path,
            {
                "format": FORMAT,
                "graph": csr.fingerprint,
                "num_seeds": num_seeds,
                "num_edges": edges,
                "worker_cpu_seconds": cpu_s,
                "ranges_wall_seconds": wall_s,
                "spec": spec.to_json(),
                "tables": [
                    {"edge_type": list(et), "dir": _dir_name(et), "context_type": c}
                    for et, c in types.items()
                ],
            },
        )
        return tmp.commit()


def read_tables(
    folder: str | os.PathLike,
) -> dict[EdgeType, tuple[NeighborTable, str | None]]:
    """The tables of a folder written by :func:`precompute`, keyed by edge
    type, with their context type. Shards must tile ``[0, num_seeds)`` (a
    gap or overlap raises, naming the files) and each shard's egos must lie
    in its range."""
    folder = Path(folder)
    meta = shards.read_manifest(folder, FORMAT)
    n = int(meta["num_seeds"])
    out = {}
    for entry in meta["tables"]:
        et = tuple(entry["edge_type"])
        sub = folder / entry["dir"]
        table = shards.read_parts(sub, n)
        ego = shards.as_int64(table.column("ego"))
        if len(ego) and ((np.diff(ego) < 0).any() or ego[0] < 0 or ego[-1] >= n):
            raise ValueError(
                f"{sub}: egos are not grouped in seed order within [0, {n})"
            )
        ptr = np.zeros(n + 1, np.int64)
        np.cumsum(np.bincount(ego, minlength=n), out=ptr[1:])
        ctx = None
        if "context" in table.column_names:
            ctx = torch.from_numpy(shards.as_int64(table.column("context")).copy())
        out[et] = (
            NeighborTable(
                seeds=torch.arange(n),
                ptr=torch.from_numpy(ptr),
                neighbor=torch.from_numpy(
                    shards.as_int64(table.column("neighbor")).copy()
                ),
                weight=torch.from_numpy(
                    table.column("weight").to_numpy().astype(np.float32)
                ),
                context=ctx,
            ),
            entry["context_type"],
        )
    return out


def attach_tables(data: HeteroData, folder: str | os.PathLike) -> HeteroData:
    """Writes the tables of :obj:`folder` into :obj:`data` as importance edge
    types (:func:`~pyg_multisage.convention.write_table`), the edges the
    matching transform would have written; returns :obj:`data`."""
    tables = read_tables(folder)
    meta = shards.read_manifest(folder, FORMAT)
    target = meta["spec"]["target"]
    if target not in data.node_types or data[target].num_nodes != meta["num_seeds"]:
        have = data[target].num_nodes if target in data.node_types else None
        raise ValueError(
            f"{folder}: tables of {meta['num_seeds']} '{target}' nodes, the "
            f"graph has {have}"
        )
    for et, (table, ctx) in tables.items():
        write_table(data, et, table, ctx)
    return data
