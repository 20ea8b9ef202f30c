r"""Random-walk neighbors over a graph split into node-range parts.

A graph too large for one machine's memory is cut by :func:`partition_graph`
into :math:`P` parts: node type :math:`T`'s ids ``[bounds[T][p],
bounds[T][p + 1])`` belong to part :math:`p`, and part :math:`p` stores the
CSR rows of its nodes for every relation (``indptr`` rebased to 0, neighbor
ids global), each array a ``.npy`` file, with one ``manifest.json``.

:class:`PartitionedWalk` then runs MultiSage's contextual walk (Algorithm 2)
or PinSage's visit counts over the parts in *supersteps*
(:mod:`pyg_multisage.sampling.superstep`): one worker per part memory-maps
only its part's rows, moves the walkers standing on its nodes until they step
onto another part's node, and hands them on in one batch per destination;
walks report their visits (PinSage) or their end node and first context
(Algorithm 2) to the seed's owner, which sums the counts, replays the
dominant-context votes in walk order and keeps the top :math:`k`. Workers are
plain objects in this process (``engine='local'``, for tests and one
machine) or Ray actors (``engine='ray'``; messages go from actor to actor
through Ray's object store, the driver only reads a few counters per
superstep). Because every walk draws from its own counter-based stream, the
tables **equal** :func:`~pyg_multisage.sampling.contextual_walk` /
:func:`~pyg_multisage.sampling.pinsage_walk`'s exactly, for any :math:`P`.

Example::

    from pyg_multisage.distributed.partitioned import (
        partition_graph, partitioned_contextual_walk)

    partition_graph(csr, "parts/", num_parts=4)
    table = partitioned_contextual_walk(
        "parts/", seeds, target="paper", context="venue", engine="ray")

A worker that dies mid-run (a killed actor, a lost node) ends the run with a
:class:`PartitionedWalkError` naming its part; nothing is returned or written.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from torch import Tensor

from pyg_multisage._checks import as_index_array, check_float, check_int, check_seed
from pyg_multisage.convention import EdgeType
from pyg_multisage.graph import HeteroCSR
from pyg_multisage.sampling.superstep import (
    advance,
    init_walkers,
    owner_of,
    reduce_contextual,
    sum_visits,
    top_k_rows,
)
from pyg_multisage.sampling.table import NeighborTable, save_neighbor_tables
from pyg_multisage.sampling.walks import _row_cumsum

__all__ = [
    "PartitionManifest",
    "PartitionedWalk",
    "PartitionedWalkError",
    "partition_graph",
    "partitioned_contextual_walk",
    "partitioned_pinsage_walk",
    "precompute_partitioned",
]

MANIFEST = "manifest.json"
FORMAT = "pyg_multisage.partitioned/1"
_ARRAYS = ("indptr", "indices", "weight", "cumw")


class PartitionedWalkError(RuntimeError):
    """A partitioned walk could not finish (a worker died or failed)."""


# -- partitioning ----------------------------------------------------------------------
def _bounds(n: int, num_parts: int) -> list[int]:
    """``num_parts`` contiguous ranges of ``range(n)``, sizes differing by <= 1."""
    return [(p * n) // num_parts for p in range(num_parts + 1)]


@dataclass(frozen=True)
class PartitionManifest:
    """What :func:`partition_graph` wrote: read with :meth:`load`.

    Attributes:
        path (Path): the partition folder.
        num_parts (int): number of parts :math:`P`.
        num_nodes (dict[str, int]): node count per type.
        bounds (dict[str, list[int]]): ``P + 1`` range bounds per node type;
            part ``p`` owns ids ``[bounds[p], bounds[p + 1])``.
        edge_types (list[EdgeType]): the stored relations (``rel<j>`` files).
        weighted (list[bool]): whether relation ``j`` has weights.
        nbytes (list[dict[int, int]]): bytes on disk per part and relation.
    """

    path: Path
    num_parts: int
    num_nodes: dict[str, int]
    bounds: dict[str, list[int]]
    edge_types: list[EdgeType]
    weighted: list[bool]
    nbytes: list[dict[int, int]] = field(default_factory=list)

    @classmethod
    def load(cls, path: str | os.PathLike) -> PartitionManifest:
        """Reads ``path/manifest.json``; raises naming the file when it is
        missing or not a partition manifest."""
        path = Path(path)
        file = path / MANIFEST
        if not file.is_file():
            raise FileNotFoundError(
                f"{file} not found: partition a graph with partition_graph first"
            )
        try:
            meta = json.loads(file.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{file} is not valid JSON ({err})") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ValueError(f"{file} is not a partition manifest ({FORMAT})")
        return cls(
            path=path,
            num_parts=int(meta["num_parts"]),
            num_nodes={k: int(v) for k, v in meta["num_nodes"].items()},
            bounds={k: [int(b) for b in v] for k, v in meta["bounds"].items()},
            edge_types=[tuple(et) for et in meta["edge_types"]],
            weighted=[bool(w) for w in meta["weighted"]],
            nbytes=[{int(j): int(b) for j, b in d.items()} for d in meta["nbytes"]],
        )

    def relation_index(self, src: str, dst: str) -> int:
        """Index ``j`` of the single stored relation ``src -> dst``."""
        for t, name in ((src, "source"), (dst, "destination")):
            if t not in self.num_nodes:
                raise ValueError(
                    f"{name} node type '{t}' is not in the partitioned graph "
                    f"(node types: {sorted(self.num_nodes)})"
                )
        found = [
            j for j, et in enumerate(self.edge_types) if et[0] == src and et[2] == dst
        ]
        if len(found) != 1:
            what = "no relation" if not found else "several relations"
            raise ValueError(
                f"{what} from '{src}' to '{dst}' in the partitioned graph "
                f"(edge types: {self.edge_types}); a walk needs exactly one"
            )
        return found[0]

    def file(self, part: int, j: int, array: str) -> Path:
        return self.path / f"part-{part:04d}" / f"rel{j}.{array}.npy"

    def relation_nbytes(self, j: int, part: int | None = None) -> int:
        """Bytes of relation ``j`` in one part, or in all parts together."""
        parts = range(self.num_parts) if part is None else [part]
        return sum(self.nbytes[p].get(j, 0) for p in parts)


def partition_graph(
    csr: HeteroCSR, out_dir: str | os.PathLike, num_parts: int
) -> PartitionManifest:
    r"""Splits :obj:`csr` into :obj:`num_parts` node-range parts on disk.

    Every node type's ids are cut into :obj:`num_parts` contiguous ranges of
    equal size (:math:`\pm 1`); part :math:`p` receives, for every relation,
    the CSR rows of its source nodes: ``rel<j>.indptr.npy`` (rebased to 0),
    ``rel<j>.indices.npy`` (global ids), and for a weighted relation
    ``rel<j>.weight.npy`` plus the per-row running sums the walks draw from
    (``rel<j>.cumw.npy``). Relations stored in one direction only also get
    their reverse, so that a walk can step both ways. ``manifest.json`` lists
    node counts, bounds, relations and sizes. The folder is written under a
    temporary name and renamed when complete.

    Args:
        csr (HeteroCSR): the graph (in memory or memory-mapped).
        out_dir (str or PathLike): the partition folder; must not exist.
        num_parts (int): number of parts :math:`P \ge 1`.

    Returns:
        :class:`PartitionManifest` of the written folder.
    """
    if not isinstance(csr, HeteroCSR):
        raise TypeError(f"csr must be a HeteroCSR, got {type(csr).__name__}")
    num_parts = check_int(num_parts, "num_parts", 1)
    out = Path(out_dir)
    if out.exists():
        raise FileExistsError(f"out_dir {str(out)!r} exists; choose a new folder")
    for src, _, dst in list(csr.edge_types):
        try:
            csr.relation(dst, src)  # stores the reverse when it is missing
        except ValueError:
            pass  # several relations back: they are all stored already
    edge_types = list(csr.edge_types)
    bounds = {t: _bounds(n, num_parts) for t, n in csr.num_nodes.items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    nbytes: list[dict[int, int]] = [{} for _ in range(num_parts)]
    try:
        for p in range(num_parts):
            folder = tmp / f"part-{p:04d}"
            folder.mkdir()
            for j, et in enumerate(edge_types):
                rel = csr[et]
                lo, hi = bounds[et[0]][p], bounds[et[0]][p + 1]
                e0, e1 = int(rel.indptr[lo]), int(rel.indptr[hi])
                arrays = {
                    "indptr": np.asarray(rel.indptr[lo : hi + 1], np.int64) - e0,
                    "indices": np.asarray(rel.indices[e0:e1], np.int64),
                }
                if rel.weight is not None:
                    w = np.asarray(rel.weight[e0:e1], np.float64)
                    arrays["weight"] = w
                    arrays["cumw"] = _row_cumsum(arrays["indptr"], w)
                for name, arr in arrays.items():
                    np.save(folder / f"rel{j}.{name}.npy", arr)
                nbytes[p][j] = sum(a.nbytes for a in arrays.values())
        meta = {
            "format": FORMAT,
            "num_parts": num_parts,
            "num_nodes": dict(csr.num_nodes),
            "bounds": bounds,
            "edge_types": [list(et) for et in edge_types],
            "weighted": [csr[et].weight is not None for et in edge_types],
            "nbytes": [{str(j): b for j, b in d.items()} for d in nbytes],
        }
        (tmp / MANIFEST).write_text(json.dumps(meta, indent=1))
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return PartitionManifest.load(out)


def _as_manifest(parts: str | os.PathLike | PartitionManifest) -> PartitionManifest:
    if isinstance(parts, PartitionManifest):
        return parts
    if isinstance(parts, (str, os.PathLike)):
        return PartitionManifest.load(parts)
    raise TypeError(
        f"parts must be a partition folder or a PartitionManifest, "
        f"got {type(parts).__name__}"
    )


def _load_rows(
    manifest: PartitionManifest, part: int, j: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(indptr, indices, cumw)`` of relation ``j`` in ``part``, memory-mapped
    read-only (``cumw`` empty when unweighted)."""
    arrays = []
    for name in ("indptr", "indices"):
        file = manifest.file(part, j, name)
        if not file.is_file():
            raise FileNotFoundError(f"partition file {file} is missing")
        arrays.append(np.asarray(np.load(file, mmap_mode="r")))
    if manifest.weighted[j]:
        arrays.append(np.asarray(np.load(manifest.file(part, j, "cumw"), "r")))
    else:
        empty = np.zeros(0, np.float64)
        empty.flags.writeable = False
        arrays.append(empty)
    return arrays[0], arrays[1], arrays[2]


# -- one part's worker -----------------------------------------------------------------
#: A message from one worker to another: ``(walkers, states, records)``.
Message = tuple[np.ndarray, np.ndarray, np.ndarray]


def _split(dest: np.ndarray, num_parts: int, *arrays: np.ndarray) -> list[list]:
    """Groups the rows of ``arrays`` by destination part."""
    order = np.argsort(dest, kind="stable")
    cut = np.searchsorted(dest[order], np.arange(num_parts + 1))
    return [[a[order[cut[p] : cut[p + 1]]] for a in arrays] for p in range(num_parts)]


class PartWorker:
    """The worker of one part: its rows of the two walked relations
    (memory-mapped, nothing else of the graph) and the walk state of the
    seeds it owns. Used in-process or as a Ray actor; see
    :class:`PartitionedWalk`."""

    def __init__(
        self,
        path: str,
        part: int,
        target: str,
        context: str,
        contextual: bool,
        num_walks: int,
        num_traversals: int,
        prob: float,
        num_neighbors: int,
        seed: int,
    ) -> None:
        m = PartitionManifest.load(path)
        self.part = part
        self.num_parts = m.num_parts
        j_tc = m.relation_index(target, context)
        j_ct = m.relation_index(context, target)
        self.rows_tc = _load_rows(m, part, j_tc)
        self.rows_ct = _load_rows(m, part, j_ct)
        self.bounds_t = np.asarray(m.bounds[target], np.int64)
        self.bounds_c = np.asarray(m.bounds[context], np.int64)
        self.mapped_bytes = m.relation_nbytes(j_tc, part) + m.relation_nbytes(
            j_ct, part
        )
        self.contextual = contextual
        self.num_walks = num_walks
        self.num_traversals = num_traversals
        self.prob = prob
        self.k = num_neighbors
        self.seed = seed
        self._seeds = np.zeros(0, np.int64)
        self._records: list[np.ndarray] = []
        self._rss0 = self._rss()

    def _advance(self, walkers: np.ndarray, states: np.ndarray) -> list:
        out_w, out_s, out_d, rec, rec_d = advance(
            walkers,
            states,
            self.bounds_t[self.part],
            self.bounds_c[self.part],
            self.bounds_t,
            self.bounds_c,
            self.part,
            *self.rows_tc,
            *self.rows_ct,
            self.num_traversals,
            self.prob,
            self.contextual,
            not self.contextual,
        )
        walker_groups = _split(out_d, self.num_parts, out_w, out_s)
        rec_groups = _split(rec_d, self.num_parts, rec)
        msgs: list = []
        sent = nbytes = 0
        for p in range(self.num_parts):
            (r,) = rec_groups[p]
            if not self.contextual:
                r = sum_visits(r)
            if p == self.part:
                self._records.append(r)
                msgs.append(None)
                continue
            w, s = walker_groups[p]
            msg = (w, s, r)
            sent += len(w)
            nbytes += w.nbytes + s.nbytes + r.nbytes
            msgs.append(msg if len(w) or len(r) else None)
        return [*msgs, {"walkers": sent, "bytes": nbytes}]

    def _absorb(self, inbox: Sequence[Message | None]) -> tuple[np.ndarray, np.ndarray]:
        ws, ss = [np.zeros((0, 6), np.int64)], [np.zeros(0, np.uint64)]
        for msg in inbox:
            if msg is None:
                continue
            w, s, r = msg
            ws.append(w)
            ss.append(s)
            if len(r):
                self._records.append(r)
        return np.concatenate(ws), np.concatenate(ss)

    def start(self, seeds: np.ndarray) -> list:
        """Creates the walkers of this part's ``seeds`` (sorted, unique, all
        owned here) and runs the first superstep."""
        self._seeds = np.asarray(seeds, np.int64)
        self._records = []
        return self._advance(*init_walkers(self._seeds, self.num_walks, self.seed))

    def step(self, *inbox: Message | None) -> list:
        """One superstep: takes the walkers and records sent here, moves the
        walkers; returns one message per part (``None`` for none) and a
        ``{'walkers', 'bytes'}`` dict of what was sent to other parts."""
        return self._advance(*self._absorb(inbox))

    def finish(self, *inbox: Message | None) -> tuple:
        """Takes the last records and returns the rows of this part's seeds:
        ``(seeds, count, neighbor, weight, context or None)`` padded ``[S, k]``."""
        walkers, _ = self._absorb(inbox)
        if len(walkers):
            raise PartitionedWalkError(
                f"part {self.part} received {len(walkers)} walkers after the end"
            )
        width = 4 if self.contextual else 3
        recs = [r for r in self._records if len(r)] or [np.zeros((0, width), np.int64)]
        records = np.concatenate(recs)
        pairs = reduce_contextual(records) if self.contextual else sum_visits(records)
        self._records = []
        return (self._seeds, *top_k_rows(self._seeds, pairs, self.k))

    @staticmethod
    def cpu_seconds() -> float:
        """CPU time of this worker's process so far (for per-core rates)."""
        return time.process_time()

    @staticmethod
    def _rss() -> int:
        try:
            import psutil
        except ImportError:  # pragma: no cover - psutil comes with ray
            return 0
        return int(psutil.Process().memory_info().rss)

    def memory(self) -> dict[str, int]:
        """``mapped``: bytes of the part's rows; ``rss``: the process's
        resident memory; ``rss_growth``: its growth since the worker was
        made (past the imports: walks, records, touched pages of the part);
        0 when psutil is absent."""
        rss = self._rss()
        return {"mapped": self.mapped_bytes, "rss": rss, "rss_growth": rss - self._rss0}


# -- the driver ------------------------------------------------------------------------
@dataclass
class WalkStats:
    """Counters of :meth:`PartitionedWalk.run`: ``supersteps`` (summed over
    seed batches), ``walkers_sent`` and ``bytes_sent`` between parts (walker
    states plus visit records), and ``seeds``."""

    supersteps: int = 0
    walkers_sent: int = 0
    bytes_sent: int = 0
    seeds: int = 0


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ImportError(
            "engine='ray' needs Ray: pip install 'pyg_multisage[ray]'"
        ) from None
    return ray


class PartitionedWalk:
    r"""Contextual walks (MultiSage Algorithm 2) or PinSage visit counts over
    a partitioned graph, one worker per part, in supersteps.

    Args:
        parts (str, PathLike or PartitionManifest): a folder written by
            :func:`partition_graph`.
        target (str): the target node type.
        context (str): the context node type.
        contextual (bool): :obj:`True`: Algorithm 2 (restart with
            :obj:`prob`, count the end node, vote its first context);
            :obj:`False`: PinSage (terminate with :obj:`prob`, count every
            target reached).
        num_walks, num_traversals, prob, num_neighbors, seed: as in
            :func:`~pyg_multisage.sampling.contextual_walk` /
            :func:`~pyg_multisage.sampling.pinsage_walk`.
        engine (str, optional): ``'local'`` (workers in this process) or
            ``'ray'`` (one Ray actor per part; starts a local Ray when none
            is running). (default: :obj:`'local'`)
        batch_walks (int, optional): walks in flight per batch of seeds;
            bounds the memory of walker states (56 bytes each).
            (default: :obj:`2**20`)
        num_cpus (float, optional): CPUs each Ray actor reserves.
            (default: :obj:`1.0`)

    After :meth:`run`, :attr:`stats` holds a :class:`WalkStats`. Call
    :meth:`close` (or use ``with``) to end the actors.
    """

    def __init__(
        self,
        parts: str | os.PathLike | PartitionManifest,
        *,
        target: str,
        context: str,
        contextual: bool,
        num_walks: int,
        num_traversals: int,
        prob: float,
        num_neighbors: int,
        seed: int = 0,
        engine: str = "local",
        batch_walks: int = 2**20,
        num_cpus: float = 1.0,
    ) -> None:
        self.manifest = _as_manifest(parts)
        for t, name in ((target, "target"), (context, "context")):
            if not isinstance(t, str):
                raise TypeError(f"{name} must be a node type (str), got {t!r}")
            if t not in self.manifest.num_nodes:
                raise ValueError(
                    f"{name} '{t}' is not in the partitioned graph "
                    f"(node types: {sorted(self.manifest.num_nodes)})"
                )
        self.manifest.relation_index(target, context)
        self.manifest.relation_index(context, target)
        if engine not in ("local", "ray"):
            raise ValueError(f"engine must be 'local' or 'ray', got {engine!r}")
        self.target = target
        self.engine = engine
        self.num_walks = check_int(num_walks, "num_walks", 1)
        self.batch_walks = check_int(batch_walks, "batch_walks", 1)
        num_cpus = check_float(num_cpus, "num_cpus", 0.0, float("inf"))
        args = (
            str(self.manifest.path),
            target,
            context,
            bool(contextual),
            self.num_walks,
            check_int(num_traversals, "num_traversals", 1),
            check_float(prob, "prob"),
            check_int(num_neighbors, "num_neighbors", 1),
            check_seed(seed),
        )
        self.k = args[7]
        self.contextual = bool(contextual)
        self.stats = WalkStats()
        P = self.manifest.num_parts
        if engine == "local":
            self.workers: list = [PartWorker(args[0], p, *args[1:]) for p in range(P)]
        else:
            ray = _import_ray()
            if not ray.is_initialized():
                ray.init(include_dashboard=False, log_to_driver=False)
            actor = ray.remote(num_cpus=num_cpus, max_restarts=0)(PartWorker)
            self.workers = [actor.remote(args[0], p, *args[1:]) for p in range(P)]

    # -- engine-specific calls ---------------------------------------------------------
    def _call(self, method: str, inboxes: list[list], num_returns: int) -> list:
        """Calls ``method`` on every worker with its inbox; returns the
        outputs per worker (for Ray, :obj:`num_returns` object refs each)."""
        if self.engine == "local":
            return [getattr(w, method)(*inboxes[p]) for p, w in enumerate(self.workers)]
        return [
            getattr(w, method).options(num_returns=num_returns).remote(*inboxes[p])
            for p, w in enumerate(self.workers)
        ]

    def _get(self, refs: list, what: str) -> list:
        if self.engine == "local":
            return refs
        ray = _import_ray()
        out = []
        for p, ref in enumerate(refs):
            try:
                out.append(ray.get(ref))
            except ray.exceptions.RayActorError as err:
                raise PartitionedWalkError(
                    f"the worker of part {p} died during {what}; the walk is "
                    f"abandoned and nothing was returned ({type(err).__name__})"
                ) from err
            except ray.exceptions.RayError as err:
                raise PartitionedWalkError(
                    f"the worker of part {p} failed during {what}: {err}"
                ) from err
        return out

    def memory(self) -> list[dict[str, int]]:
        """Per worker: bytes of its memory-mapped part and its process RSS."""
        if self.engine == "local":
            return [w.memory() for w in self.workers]
        return self._get([w.memory.remote() for w in self.workers], "memory()")

    # -- the run -----------------------------------------------------------------------
    def run(
        self,
        seeds: Tensor | np.ndarray | Sequence[int],
        on_superstep: Callable[[int, list], None] | None = None,
    ) -> NeighborTable:
        """The table of :obj:`seeds` (any order, repeats allowed), equal to
        the single-process kernel's. :obj:`on_superstep` is called as
        ``on_superstep(i, workers)`` before superstep ``i`` of every batch
        (for progress, or to test failures)."""
        m = self.manifest
        seed_ids = as_index_array(seeds, "seeds", m.num_nodes[self.target])
        unique = np.unique(seed_ids)
        owner = owner_of(np.asarray(m.bounds[self.target], np.int64), unique)
        S, k, P = len(unique), self.k, m.num_parts
        cnt = np.zeros(S, np.int64)
        nbr = np.zeros((S, k), np.int64)
        w = np.zeros((S, k), np.float32)
        ctx = np.full((S, k), -1, np.int64) if self.contextual else None
        per_batch = max(1, self.batch_walks // self.num_walks)
        stats = WalkStats(seeds=len(seed_ids))
        for b0 in range(0, S, per_batch):
            batch, bown = unique[b0 : b0 + per_batch], owner[b0 : b0 + per_batch]
            inboxes = [[batch[bown == p]] for p in range(P)]
            outs = self._call("start", inboxes, P + 1)
            i = 0
            while True:
                msgs = self._superstep_messages(outs, i, stats)
                i += 1
                if msgs is None:
                    break
                if on_superstep is not None:
                    on_superstep(i, self.workers)
                outs = self._call("step", msgs, P + 1)
            stats.supersteps += i
            if on_superstep is not None:
                on_superstep(i, self.workers)
            final = self._call("finish", self._last_inboxes, 1)
            for seeds_p, c, n_, w_, x_ in self._get(final, "the final reduction"):
                rows = np.searchsorted(unique, seeds_p)
                cnt[rows], nbr[rows], w[rows] = c, n_, w_
                if ctx is not None:
                    ctx[rows] = x_
        self.stats = stats
        idx = np.searchsorted(unique, seed_ids)
        return NeighborTable.from_padded(
            seed_ids, cnt[idx], nbr[idx], w[idx], None if ctx is None else ctx[idx]
        )

    def _superstep_messages(self, outs: list, i: int, stats: WalkStats):
        """Routes the outputs of superstep ``i``: the inboxes of the next
        step, or :obj:`None` when no walker is left (the last records wait
        in :attr:`_last_inboxes` for :meth:`PartWorker.finish`)."""
        P = self.manifest.num_parts
        if self.engine == "local":
            counters = [o[P] for o in outs]
        else:
            counters = self._get([o[P] for o in outs], f"superstep {i}")
        inboxes = [[outs[q][p] for q in range(P)] for p in range(P)]
        walkers = sum(c["walkers"] for c in counters)
        stats.walkers_sent += walkers
        stats.bytes_sent += sum(c["bytes"] for c in counters)
        if walkers == 0:
            self._last_inboxes = inboxes
            return None
        return inboxes

    def close(self) -> None:
        """Ends the Ray actors (nothing to do for local workers)."""
        if self.engine == "ray":
            ray = _import_ray()
            for w in self.workers:
                ray.kill(w)
        self.workers = []

    def __enter__(self) -> PartitionedWalk:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def partitioned_contextual_walk(
    parts: str | os.PathLike | PartitionManifest,
    seeds: Tensor | np.ndarray | Sequence[int],
    *,
    target: str,
    context: str,
    num_walks: int = 100,
    walk_length: int = 3,
    restart_prob: float = 0.5,
    num_neighbors: int = 10,
    seed: int = 0,
    engine: str = "local",
    **kwargs,
) -> NeighborTable:
    """:func:`~pyg_multisage.sampling.contextual_walk` (MultiSage Algorithm 2)
    over a partitioned graph: the same table, computed by one worker per
    part. Extra keyword arguments go to :class:`PartitionedWalk`."""
    with PartitionedWalk(
        parts,
        target=target,
        context=context,
        contextual=True,
        num_walks=num_walks,
        num_traversals=walk_length,
        prob=restart_prob,
        num_neighbors=num_neighbors,
        seed=seed,
        engine=engine,
        **kwargs,
    ) as walk:
        return walk.run(seeds)


def partitioned_pinsage_walk(
    parts: str | os.PathLike | PartitionManifest,
    seeds: Tensor | np.ndarray | Sequence[int],
    *,
    target: str,
    context: str,
    num_walks: int = 100,
    num_traversals: int = 3,
    termination_prob: float = 0.5,
    num_neighbors: int = 10,
    seed: int = 0,
    engine: str = "local",
    **kwargs,
) -> NeighborTable:
    """:func:`~pyg_multisage.sampling.pinsage_walk` over a partitioned graph:
    the same table, computed by one worker per part."""
    with PartitionedWalk(
        parts,
        target=target,
        context=context,
        contextual=False,
        num_walks=num_walks,
        num_traversals=num_traversals,
        prob=termination_prob,
        num_neighbors=num_neighbors,
        seed=seed,
        engine=engine,
        **kwargs,
    ) as walk:
        return walk.run(seeds)


def precompute_partitioned(
    parts: str | os.PathLike | PartitionManifest,
    out: str | os.PathLike,
    *,
    target: str,
    contexts: Sequence[str],
    sampler: str = "walk",
    seeds: Tensor | np.ndarray | Sequence[int] | None = None,
    num_walks: int = 100,
    num_traversals: int = 3,
    prob: float = 0.5,
    num_neighbors: int = 10,
    seed: int = 0,
    engine: str = "ray",
    on_superstep: Callable[[int, list], None] | None = None,
    **kwargs,
) -> dict[str, NeighborTable]:
    """Tables of every context type over a partitioned graph, saved to
    :obj:`out` by
    :func:`~pyg_multisage.sampling.table.save_neighbor_tables` (the file
    ``pyg-multisage sample`` writes; read it with ``load_neighbor_tables``).
    The file appears only when every table is complete: it is written under
    a temporary name and renamed; a failed run
    (:class:`PartitionedWalkError`) leaves nothing.

    :obj:`sampler` is ``'walk'`` (Algorithm 2, :obj:`prob` = restart
    probability) or ``'pinsage'`` (:obj:`prob` = termination probability);
    :obj:`seeds` defaults to every target node.
    """

    if sampler not in ("walk", "pinsage"):
        raise ValueError(f"sampler must be 'walk' or 'pinsage', got {sampler!r}")
    if isinstance(contexts, str) or not contexts:
        raise TypeError(
            f"contexts must be a non-empty list of node types, got {contexts!r}"
        )
    manifest = _as_manifest(parts)
    if target not in manifest.num_nodes:
        raise ValueError(
            f"target '{target}' is not in the partitioned graph "
            f"(node types: {sorted(manifest.num_nodes)})"
        )
    if seeds is None:
        seeds = np.arange(manifest.num_nodes[target])
    out = Path(out)
    tables = {}
    for c in contexts:
        with PartitionedWalk(
            manifest,
            target=target,
            context=c,
            contextual=sampler == "walk",
            num_walks=num_walks,
            num_traversals=num_traversals,
            prob=prob,
            num_neighbors=num_neighbors,
            seed=seed,
            engine=engine,
            **kwargs,
        ) as walk:
            tables[c] = walk.run(seeds, on_superstep)
    save_neighbor_tables(out, sampler, target, tables)  # atomic
    return tables
