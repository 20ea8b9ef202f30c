r"""Approximate nearest-neighbor retrieval over saved embeddings (faiss HNSW).

Recommendations at Pinterest scale are served by nearest-neighbor search over
the embeddings of every target (MultiSage §3.3, OmniSage §4): this module
builds a `faiss <https://github.com/facebookresearch/faiss>`_ HNSW index with
the inner-product metric over **L2-normalized** vectors, so the score of a
candidate is its cosine similarity to the query, the same score the exact
``related`` command ranks by.

Needs the optional extra ``[ann]`` (``pip install 'pyg_multisage[ann]'``);
reading Parquet embeddings needs ``[parquet]``. Neither is imported before a
function here is called.

Typical use::

    ids, vectors = read_embeddings("paper_emb.parquet")
    build_index(vectors, "paper.faiss", ids=ids)
    index = load_index("paper.faiss")            # memory-mapped
    scores, found = search(index, vectors[:5], k=10)
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

#: Name of the vector column in embedding Parquet files (``embed`` writes it).
VECTOR_COLUMN = "embedding"
#: Name of the id column in embedding Parquet files.
ID_COLUMN = "id"


def _faiss() -> Any:
    try:
        import faiss
    except ImportError:
        raise ImportError(
            "nearest-neighbor indexes need faiss: pip install 'pyg_multisage[ann]'"
        ) from None
    return faiss


def read_embeddings(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Reads embeddings written by ``pyg-multisage embed``.

    Args:
        path (str): a ``.npy`` matrix ``[N, d]`` (ids ``0..N-1``), a
            ``.parquet`` file, a folder written by
            :func:`~pyg_multisage.distributed.embed_nodes`, or a folder of
            Parquet files with columns
            ``id`` (int64) and ``embedding`` (list of float).

    Returns:
        ``(ids int64 [N], vectors float32 [N, d])``, rows sorted by id.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"embedding file {path} does not exist")
    if path.suffix == ".npy":
        vectors = np.load(path, mmap_mode="r")
        if vectors.ndim != 2:
            raise ValueError(f"{path}: expected a [N, d] matrix, got {vectors.shape}")
        return np.arange(len(vectors), dtype=np.int64), np.asarray(
            vectors, dtype=np.float32
        )
    if path.is_dir() and (path / "_manifest.json").is_file():
        from pyg_multisage.distributed.inference import read_embedding_folder

        return read_embedding_folder(path)
    if path.suffix != ".parquet" and not path.is_dir():
        raise ValueError(f"{path}: embeddings must be .npy, .parquet or a folder")
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ImportError(
            "reading Parquet needs pyarrow: pip install 'pyg_multisage[parquet]'"
        ) from None
    table = pq.read_table(path)
    for col in (ID_COLUMN, VECTOR_COLUMN):
        if col not in table.column_names:
            raise ValueError(
                f"{path}: no '{col}' column (has {table.column_names}); "
                "expected the output of 'pyg-multisage embed'"
            )
    ids = table.column(ID_COLUMN).to_numpy().astype(np.int64, copy=False)
    flat = table.column(VECTOR_COLUMN).combine_chunks()
    values = flat.flatten().to_numpy(zero_copy_only=False)
    if len(ids) == 0:
        raise ValueError(f"{path}: holds no embeddings")
    if len(values) % len(ids):
        raise ValueError(f"{path}: embedding rows have different widths")
    vectors = values.reshape(len(ids), -1).astype(np.float32, copy=False)
    lengths = np.diff(flat.offsets.to_numpy())
    if (lengths != vectors.shape[1]).any():
        raise ValueError(f"{path}: embedding rows have different widths")
    order = np.argsort(ids, kind="stable")
    ids, vectors = ids[order], vectors[order]
    if len(ids) > 1 and (np.diff(ids) == 0).any():
        raise ValueError(f"{path}: duplicate ids")
    return ids, vectors


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero), float32, C order."""
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norm, 1e-12)


def build_index(
    vectors: np.ndarray,
    path: str | os.PathLike,
    ids: np.ndarray | None = None,
    m: int = 32,
    ef_construction: int = 200,
    ef_search: int = 128,
    num_threads: int | None = None,
) -> Any:
    """Builds an HNSW inner-product index of the L2-normalized :obj:`vectors`
    and writes it to :obj:`path` atomically (a temporary file in the same
    folder, then a rename).

    Args:
        vectors (np.ndarray): ``[N, d]`` embeddings.
        path (str): the index file.
        ids (np.ndarray, optional): ``int64 [N]`` id of every row; the search
            returns these (default: the row numbers).
        m (int): HNSW graph degree :math:`M`. (default: :obj:`32`)
        ef_construction (int): candidate list size while building.
            (default: :obj:`200`)
        ef_search (int): candidate list size at query time, stored in the
            index (raise it for recall, lower it for speed).
            (default: :obj:`128`)
        num_threads (int, optional): faiss OpenMP threads. (default: faiss's)

    Returns:
        the faiss index (in memory).
    """
    faiss = _faiss()
    vectors = np.asarray(vectors)
    if vectors.ndim != 2 or len(vectors) == 0:
        raise ValueError(
            f"vectors must be a non-empty [N, d] matrix, got {vectors.shape}"
        )
    if ids is None:
        ids = np.arange(len(vectors), dtype=np.int64)
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    if ids.shape != (len(vectors),):
        raise ValueError(f"ids must have shape [{len(vectors)}], got {ids.shape}")
    for name, v in (("m", m), ("ef_construction", ef_construction)):
        if v < 2:
            raise ValueError(f"{name} must be >= 2, got {v}")
    if num_threads is not None:
        faiss.omp_set_num_threads(num_threads)
    hnsw = faiss.IndexHNSWFlat(vectors.shape[1], m, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = ef_construction
    hnsw.hnsw.efSearch = ef_search
    index = faiss.IndexIDMap2(hnsw)
    index.add_with_ids(normalize(vectors), ids)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        faiss.write_index(index, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return index


def load_index(path: str | os.PathLike, mmap: bool = True) -> Any:
    """Reads an index written by :func:`build_index`.

    With :obj:`mmap` the stored vectors (the flat codes, the bulk of an HNSW
    index: ``4 d`` bytes per vector against about ``8 m`` for the graph
    links) stay in the file and are paged in on demand (faiss's
    ``IO_FLAG_MMAP_IFC``; plain ``IO_FLAG_MMAP`` maps only inverted lists
    and is included for them), so several processes share one copy through
    the page cache.
    """
    faiss = _faiss()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"index file {path} does not exist")
    flags = 0
    if mmap:
        flags = faiss.IO_FLAG_MMAP | faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY
    try:
        return faiss.read_index(str(path), flags)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[-1] if str(err).strip() else ""
        raise ValueError(f"{path} is not a readable faiss index ({first})") from None


def search(
    index: Any,
    queries: np.ndarray,
    k: int,
    ef_search: int | None = None,
    source: str = "the index",
) -> tuple[np.ndarray, np.ndarray]:
    """The :obj:`k` nearest ids of every L2-normalized query by inner product.

    Args:
        index: a faiss index from :func:`build_index` / :func:`load_index`.
        queries (np.ndarray): ``[Q, d]`` (normalized here).
        k (int): neighbors per query.
        ef_search (int, optional): HNSW candidate list size for this search.
        source (str): how errors name the index (e.g. its file).

    Returns:
        ``(scores float32 [Q, k], ids int64 [Q, k])``; ``-1`` ids pad rows
        when the index holds fewer than :obj:`k` vectors.
    """
    faiss = _faiss()
    queries = np.atleast_2d(np.asarray(queries))
    check_width(index, queries.shape[1], source)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    params = None
    if ef_search is not None:
        params = faiss.SearchParametersHNSW()
        params.efSearch = max(int(ef_search), k)
    scores, ids = index.search(normalize(queries), k, params=params)
    return scores, ids


def check_width(index: Any, width: int, source: str = "the index") -> None:
    """Raises a :class:`ValueError` naming :obj:`source` when the vectors to
    search or add are not :obj:`index.d` wide."""
    if int(width) != int(index.d):
        raise ValueError(
            f"{source} holds {index.d}-dimensional vectors, but the embeddings "
            f"are {width}-dimensional: rebuild the index from these embeddings"
        )


def exact_search(
    vectors: np.ndarray, queries: np.ndarray, k: int, chunk_bytes: int = 1 << 28
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-:obj:`k` by cosine (brute force; the reference for recall).

    Queries are scored in chunks whose score matrix stays under
    :obj:`chunk_bytes` (default 256 MiB), so 1,000 queries against millions of
    vectors need no ``[Q, N]`` matrix in memory."""
    base, q = normalize(vectors), normalize(np.atleast_2d(queries))
    k = min(k, len(base))
    rows = max(1, chunk_bytes // (4 * max(1, len(base))))
    scores_out, ids_out = [], []
    for a in range(0, len(q), rows):
        scores = q[a : a + rows] @ base.T
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        part = np.take_along_axis(scores, top, axis=1)
        order = np.argsort(-part, axis=1, kind="stable")
        scores_out.append(np.take_along_axis(part, order, 1))
        ids_out.append(np.take_along_axis(top, order, 1))
    if not scores_out:
        return np.zeros((0, k), np.float32), np.zeros((0, k), np.int64)
    return np.concatenate(scores_out), np.concatenate(ids_out)


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of the true top-k ids found by the approximate search."""
    k = truth.shape[1]
    hits = [
        len(set(f[:k].tolist()) & set(t.tolist()))
        for f, t in zip(found, truth, strict=True)
    ]
    return float(np.mean(hits)) / k
