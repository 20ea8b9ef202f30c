"""Streaming CSR builder: the saved :class:`~pyg_multisage.graph.HeteroCSR`
of a graph larger than memory, from edge files read in chunks."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numba
import numpy as np

from pyg_multisage._arraydir import (
    AtomicDir,
    open_npy,
    reload_page_cache,
    write_manifest,
)
from pyg_multisage.convention import EdgeType
from pyg_multisage.graph import CSR_FORMAT, csr_meta

__all__ = ["build_csr_from_shards", "iter_shard"]

#: Edges read per chunk by default (16 bytes each as two int64 columns: 16 MiB
#: a chunk, small beside the per-node degree arrays of a large graph).
DEFAULT_CHUNK = 1 << 20


@numba.njit(cache=True)
def _count(ids, deg):
    for i in range(ids.shape[0]):
        deg[ids[i]] += 1


@numba.njit(cache=True)
def _fill(src, dst, cursor, indices):
    """Appends ``dst[i]`` to row ``src[i]`` in input order."""
    for i in range(src.shape[0]):
        s = src[i]
        indices[cursor[s]] = dst[i]
        cursor[s] += 1


@numba.njit(cache=True, parallel=True)
def _sort_rows(indptr, indices):
    for v in numba.prange(indptr.shape[0] - 1):
        indices[indptr[v] : indptr[v + 1]].sort()


def _check_shard(path: Path, et: EdgeType) -> None:
    """Opens a shard's header (not its data): exists, right format."""
    if not path.is_file():
        raise FileNotFoundError(f"edge shard {path} of {et} does not exist")
    if path.suffix == ".npy":
        try:
            arr = np.load(path, mmap_mode="r")
        except ValueError as err:
            raise ValueError(f"edge shard {path} is not a valid .npy ({err})") from None
        if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"edge shard {path} must hold integer ids, got {arr.dtype}")
        if arr.ndim != 2 or arr.shape[0] != 2:
            raise ValueError(
                f"edge shard {path} must have shape [2, num_edges], got "
                f"{list(arr.shape)}"
            )
    elif path.suffix == ".parquet":
        pq = _parquet()
        schema = pq.ParquetFile(path).schema_arrow
        for col in ("src", "dst"):
            if col not in schema.names:
                raise ValueError(
                    f"edge shard {path} lacks column '{col}' (has {schema.names})"
                )
            if not str(schema.field(col).type).startswith(("int", "uint")):
                raise TypeError(
                    f"column '{col}' of edge shard {path} must hold integer ids, "
                    f"got {schema.field(col).type}"
                )
    else:
        raise ValueError(
            f"edge shard {path} must be a .npy ([2, E] integers) or a .parquet "
            f"(columns src, dst) file"
        )


def _parquet():
    try:
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(
            "Parquet edge shards need pyarrow: pip install 'pyg_multisage[parquet]'"
        ) from None
    return pq


def iter_shard(
    path: str | os.PathLike, chunk_size: int = DEFAULT_CHUNK
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(src, dst)`` ``int64`` chunks of at most :obj:`chunk_size` edges of one
    shard: a ``.npy`` integer array ``[2, E]`` (memory-mapped, read in column
    ranges) or a ``.parquet`` file with integer columns ``src`` and ``dst``."""
    path = Path(path)
    if path.suffix == ".npy":
        arr = np.load(path, mmap_mode="r")
        for a in range(0, arr.shape[1], chunk_size):
            part = np.asarray(arr[:, a : a + chunk_size], dtype=np.int64)
            yield part[0], part[1]
        del arr
    else:
        pq = _parquet()
        pf = pq.ParquetFile(path)
        for batch in pf.iter_batches(batch_size=chunk_size, columns=["src", "dst"]):
            src = batch.column("src")
            dst = batch.column("dst")
            if src.null_count or dst.null_count:
                raise ValueError(f"edge shard {path} holds null ids")
            yield (
                src.to_numpy().astype(np.int64, copy=False),
                dst.to_numpy().astype(np.int64, copy=False),
            )


def build_csr_from_shards(
    path: str | os.PathLike,
    shards: Mapping[EdgeType, Sequence[str | os.PathLike]],
    num_nodes: Mapping[str, int],
    *,
    reverse: bool = False,
    index_dtype: str = "auto",
    chunk_size: int = DEFAULT_CHUNK,
    overwrite: bool = False,
) -> str:
    r"""Writes the CSR of a graph given as edge files, streaming, to the
    directory :obj:`path` (the layout of :meth:`HeteroCSR.save
    <pyg_multisage.graph.HeteroCSR.save>`; load it with
    :meth:`HeteroCSR.load <pyg_multisage.graph.HeteroCSR.load>`); returns the
    graph's fingerprint.

    Two passes over the shards, :obj:`chunk_size` edges at a time: the first
    checks every id against :obj:`num_nodes` and counts degrees, the second
    writes every edge into its row of a memory-mapped ``indices`` file. No
    step holds more than one chunk of edges plus one ``int64`` degree array
    per relation (reused as the fill cursors; offsets go straight to their
    memory-mapped file), so graphs larger than memory build in bounded
    anonymous memory: about 8 bytes per node of every relation's source
    type. Rows keep the
    order of the edges in the shards (shards in the order given): the result
    equals ``HeteroCSR(edge_index_dict, num_nodes)`` of the concatenated
    edges. Everything is written under a temporary name and renamed when
    complete: a bad shard leaves nothing behind.

    Args:
        path (str or Path): the directory to create.
        shards (Dict[Tuple[str, str, str], List[str or Path]]): per edge type
            ``(src, rel, dst)`` its edge files: ``.npy`` integer arrays
            ``[2, E]`` (row 0 source ids, row 1 destination ids) or
            ``.parquet`` files with integer columns ``src`` and ``dst``
            (needs the ``[parquet]`` extra).
        num_nodes (Dict[str, int]): number of nodes of every node type (in
            the order node types are to be stored).
        reverse (bool, optional): also write the reverse relation
            ``(dst, 'rev_' + rel, src)`` of every relation between two
            different node types that has no reverse among :obj:`shards`,
            rows sorted by source id, equal to
            ``HeteroCSR(..., undirected=True)``; walks need both directions.
            (default: :obj:`False`)
        index_dtype (str, optional): ``'auto'`` (``int32`` indices when the
            ids fit) or ``'int64'``. (default: ``'auto'``)
        chunk_size (int, optional): edges read at a time.
            (default: :obj:`1048576`)
        overwrite (bool, optional): replace an existing directory.
            (default: :obj:`False`)
    """
    if index_dtype not in ("auto", "int64"):
        raise ValueError(f"index_dtype must be 'auto' or 'int64', got {index_dtype!r}")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int):
        raise TypeError(f"chunk_size must be an int, got {chunk_size!r}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}")
    counts: dict[str, int] = {}
    for t, n in num_nodes.items():
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"num_nodes['{t}'] must be a non-negative int, got {n!r}")
        counts[t] = int(n)
    rels: dict[EdgeType, list[Path]] = {}
    for et, files in shards.items():
        et = tuple(et)
        if len(et) != 3 or any(t not in counts for t in (et[0], et[2])):
            raise ValueError(
                f"shards: edge type {et} must be (src, rel, dst) over the node "
                f"types of num_nodes {list(counts)}"
            )
        if isinstance(files, (str, os.PathLike)):
            raise TypeError(f"shards[{et}] must be a list of files, not one path")
        rels[et] = [Path(f) for f in files]
        for f in rels[et]:
            _check_shard(f, et)

    # Pass 1: validate ids, count degrees of both endpoints.
    deg_src: dict[EdgeType, np.ndarray] = {}
    deg_dst: dict[EdgeType, np.ndarray] = {}
    pairs = {(et[0], et[2]) for et in rels}
    rev_of = {
        et: (et[2], f"rev_{et[1]}", et[0])
        for et in rels
        if reverse and et[0] != et[2] and (et[2], et[0]) not in pairs
    }
    for et, files in rels.items():
        n_src, n_dst = counts[et[0]], counts[et[2]]
        ds = np.zeros(n_src, np.int64)
        dd = np.zeros(n_dst, np.int64) if et in rev_of else None
        for f in files:
            for src, dst in iter_shard(f, chunk_size):
                if len(src) == 0:
                    continue
                for ids, n, what in ((src, n_src, et[0]), (dst, n_dst, et[2])):
                    lo, hi = int(ids.min()), int(ids.max())
                    if lo < 0 or hi >= n:
                        bad = lo if lo < 0 else hi
                        raise ValueError(
                            f"edge shard {f} of {et} holds '{what}' id {bad}, "
                            f"outside [0, {n}) (num_nodes['{what}'])"
                        )
                _count(src, ds)
                if dd is not None:
                    _count(dst, dd)
        deg_src[et] = ds
        if dd is not None:
            deg_dst[rev_of[et]] = dd

    # Pass 2: fill memory-mapped indices, in input order per row.
    order = []
    for et in rels:
        order.append(et)
        if et in rev_of:
            order.append(rev_of[et])
    with AtomicDir(path, overwrite=overwrite) as tmp:
        names, relations = [], []
        for i, et in enumerate(order):
            # Offsets go to their file directly, the degree array becomes
            # the cursors: no anonymous copy of either.
            deg = deg_src.pop(et) if et in deg_src else deg_dst.pop(et)
            n_dst = counts[et[2]]
            indptr_file = open_npy(
                tmp.path / f"e{i}.indptr.npy", np.int64, (len(deg) + 1,)
            )
            indptr = indptr_file.view(np.ndarray)
            indptr[0] = 0
            np.cumsum(deg, out=indptr[1:])
            num_edges = int(indptr[-1])
            small = index_dtype == "auto" and n_dst < 2**31 - 1
            indices = open_npy(
                tmp.path / f"e{i}.indices.npy",
                np.int32 if small else np.int64,
                (num_edges,),
            )
            view = indices.view(np.ndarray)
            cursor = None
            if num_edges:
                cursor = deg  # the degrees become the fill cursors
                np.copyto(cursor, indptr[:-1])
                is_rev = et not in rels
                fwd = next(k for k, v in rev_of.items() if v == et) if is_rev else et
                for f in rels[fwd]:
                    for src, dst in iter_shard(f, chunk_size):
                        if is_rev:
                            _fill(dst, src.astype(view.dtype), cursor, view)
                        else:
                            _fill(src, dst.astype(view.dtype), cursor, view)
                if not np.array_equal(cursor, indptr[1:]):
                    raise RuntimeError(
                        f"edge shards of {fwd} changed between the two passes"
                    )
                if is_rev:
                    _sort_rows(indptr, view)
            indices.flush()
            indptr_file.flush()
            del view, indices, indptr, indptr_file, deg, cursor
            # scattered writes left 4 KB pages: the digest re-reads the file
            # in large folios (memory-mapped random reads at in-memory speed)
            reload_page_cache(tmp.path / f"e{i}.indices.npy")
            names += [f"e{i}.indptr", f"e{i}.indices"]
            relations.append((et, num_edges, False))
        meta = csr_meta(counts, relations)
        fp = write_manifest(tmp.path, CSR_FORMAT, meta, names)
        tmp.commit()
    return fp
