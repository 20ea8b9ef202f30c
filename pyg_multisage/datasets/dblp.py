"""The DBLP four-area graph (Ji et al., ECML-PKDD 2010), AMiner side of OAG.

The raw files are the ones distributed with the MAGNN code base
(``data/raw/DBLP/`` of ``cynricfu/MAGNN``, commit ``b8557f5``):

========================  ===========================================
file                      format
========================  ===========================================
``paper.txt``             ``id \\t title``
``author.txt``            ``id \\t name`` (**latin-1**, not UTF-8)
``conf.txt``              ``id \\t name``
``term.txt``              ``id \\t word``
``paper_author.txt``      ``paper_id \\t author_id``
``paper_conf.txt``        ``paper_id \\t conf_id``
``paper_term.txt``        ``paper_id \\t term_id``
``*_label.txt``           ``id \\t label [\\t name]`` (0 DB, 1 DM, 2 AI, 3 IR)
========================  ===========================================

The data may be used for academic and educational purposes only and must not be
redistributed, so this project reads it from a path and never ships it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import torch
from torch_geometric.data import HeteroData

__all__ = ["read_dblp_raw", "DBLP_RAW_FILES", "DBLP_AREAS"]

#: The raw file names the reader needs.
DBLP_RAW_FILES: tuple[str, ...] = (
    "paper.txt",
    "author.txt",
    "conf.txt",
    "term.txt",
    "paper_author.txt",
    "paper_conf.txt",
    "paper_term.txt",
    "paper_label.txt",
    "author_label.txt",
    "conf_label.txt",
)

#: Label meaning of ``y`` (``-1`` = unlabeled).
DBLP_AREAS: tuple[str, ...] = (
    "Database",
    "Data Mining",
    "Artificial Intelligence",
    "Information Retrieval",
)

# (file, source node type, relation, destination node type, reverse relation)
_LINKS = (
    ("paper_author.txt", "paper", "written_by", "author", "writes"),
    ("paper_conf.txt", "paper", "published_in", "venue", "publishes"),
    ("paper_term.txt", "paper", "has_term", "term", "term_of"),
)
# Encodings tried in order: the distributed ``paper.txt`` is GB18030 (e.g.
# ``B\xa8\xa6zier``), ``author.txt`` is documented as latin-1.
_NODES = (
    ("paper", "paper.txt", ("utf-8", "gb18030", "latin-1"), "title"),
    ("author", "author.txt", ("utf-8", "latin-1"), "name"),
    ("venue", "conf.txt", ("utf-8", "latin-1"), "name"),
    ("term", "term.txt", ("utf-8", "latin-1"), "name"),
)
_NUL_RUN = re.compile("\x00+")
_LABELS = (
    ("paper", "paper_label.txt"),
    ("author", "author_label.txt"),
    ("venue", "conf_label.txt"),
)


def _decode(raw: bytes, encodings: tuple[str, ...]) -> str:
    """Decode with the first encoding that fits; ``latin-1`` never fails."""
    for encoding in encodings:
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1")


def _read_lines(path: Path, encodings: tuple[str, ...]) -> list[str]:
    text = _decode(path.read_bytes(), encodings)
    # Accented letters of the distributed ``author.txt`` were lost to runs of
    # NUL bytes (``J\0\0lio``); mark each run with U+FFFD.
    text = _NUL_RUN.sub("\ufffd", text)
    lines = text.replace("\r\n", "\n").split("\n")
    return [line for line in lines if line.strip()]


def _read_names(path: Path, encodings: tuple[str, ...]) -> tuple[np.ndarray, list[str]]:
    """``id \\t text`` lines -> (int64 raw ids, stripped texts)."""
    lines = _read_lines(path, encodings)
    ids = np.empty(len(lines), dtype=np.int64)
    names: list[str] = []
    for i, line in enumerate(lines):
        head, sep, rest = line.partition("\t")
        if not sep:
            raise ValueError(f"{path.name}, line {i + 1}: expected 'id<TAB>text'")
        try:
            ids[i] = int(head)
        except ValueError:
            raise ValueError(
                f"{path.name}, line {i + 1}: id {head!r} is not an integer"
            ) from None
        names.append(rest.strip())
    if np.unique(ids).size != ids.size:
        raise ValueError(f"{path.name}: duplicate ids")
    return ids, names


def _read_int_columns(path: Path, num_cols: int) -> np.ndarray:
    """The first ``num_cols`` integer columns of a tab separated file."""
    lines = _read_lines(path, ("utf-8", "latin-1"))
    if num_cols == 2:
        # Fast path: the link files are exactly two integer columns.
        try:
            flat = np.array(" ".join(lines).split(), dtype=np.int64)
        except ValueError:
            flat = None
        if flat is not None and flat.size == 2 * len(lines):
            return flat.reshape(-1, 2)
    out = np.empty((len(lines), num_cols), dtype=np.int64)
    for i, line in enumerate(lines):
        parts = line.split("\t")
        if len(parts) < num_cols:
            raise ValueError(f"{path.name}, line {i + 1}: expected {num_cols} columns")
        try:
            out[i] = [int(p) for p in parts[:num_cols]]
        except ValueError:
            raise ValueError(
                f"{path.name}, line {i + 1}: expected integers, got {line!r}"
            ) from None
    return out


def _lookup(raw_ids: np.ndarray, query: np.ndarray, what: str) -> np.ndarray:
    """Contiguous index of each ``query`` raw id in ``raw_ids`` (file order)."""
    order = np.argsort(raw_ids, kind="stable")
    sorted_ids = raw_ids[order]
    pos = np.searchsorted(sorted_ids, query)
    pos = np.minimum(pos, max(sorted_ids.size - 1, 0))
    bad = sorted_ids.size == 0 or not bool(np.all(sorted_ids[pos] == query))
    if bad:
        missing = query[sorted_ids[pos] != query] if sorted_ids.size else query
        raise ValueError(
            f"{what}: {missing.size} ids not found in the node file "
            f"(first: {int(missing[0])})"
        )
    return order[pos]


def read_dblp_raw(raw_dir: str | os.PathLike) -> HeteroData:
    r"""Parse the raw DBLP four-area files into a :class:`HeteroData`.

    Node types ``paper``, ``author``, ``venue`` and ``term`` get contiguous
    ids in file order; every store keeps the original ids as ``raw_id``
    (int64) and the text as a python list (``title`` for papers, ``name``
    for the others), and ``y`` holds the research area (see
    :obj:`DBLP_AREAS`) where a label file gives one and ``-1`` elsewhere
    (terms have no labels).  Edge types are
    ``('paper', 'written_by', 'author')``,
    ``('paper', 'published_in', 'venue')`` and
    ``('paper', 'has_term', 'term')`` plus their reverses
    ``('author', 'writes', 'paper')``, ``('venue', 'publishes', 'paper')``
    and ``('term', 'term_of', 'paper')``, with duplicate links removed and
    edges sorted by (source, destination).

    Args:
        raw_dir (str or os.PathLike): the folder holding the raw files
            (:obj:`DBLP_RAW_FILES`).

    Returns:
        HeteroData: the full graph (no features; see :class:`DBLP`).
    """
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise FileNotFoundError(f"raw_dir {str(raw_dir)!r} is not a folder")
    missing = [f for f in DBLP_RAW_FILES if not (raw_dir / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"raw_dir {str(raw_dir)!r} lacks the DBLP files {missing}"
        )

    data = HeteroData()
    raw_ids: dict[str, np.ndarray] = {}
    for node_type, fname, encodings, attr in _NODES:
        ids, names = _read_names(raw_dir / fname, encodings)
        raw_ids[node_type] = ids
        store = data[node_type]
        store.num_nodes = int(ids.size)
        store.raw_id = torch.from_numpy(ids)
        store[attr] = names

    for node_type, fname in _LABELS:
        rows = _read_int_columns(raw_dir / fname, 2)
        index = _lookup(raw_ids[node_type], rows[:, 0], fname)
        y = np.full(raw_ids[node_type].size, -1, dtype=np.int64)
        if rows.size and (rows[:, 1].min() < 0 or rows[:, 1].max() >= 4):
            raise ValueError(f"{fname}: labels must lie in 0..3")
        y[index] = rows[:, 1]
        data[node_type].y = torch.from_numpy(y)

    for fname, src_type, rel, dst_type, rev in _LINKS:
        rows = _read_int_columns(raw_dir / fname, 2)
        src = _lookup(raw_ids[src_type], rows[:, 0], fname)
        dst = _lookup(raw_ids[dst_type], rows[:, 1], fname)
        num_dst = raw_ids[dst_type].size
        key = np.unique(src.astype(np.int64) * num_dst + dst)
        src, dst = key // num_dst, key % num_dst
        data[src_type, rel, dst_type].edge_index = torch.from_numpy(
            np.stack([src, dst])
        )
        rkey = np.sort(dst * raw_ids[src_type].size + src)
        rsrc, rdst = rkey // raw_ids[src_type].size, rkey % raw_ids[src_type].size
        data[dst_type, rev, src_type].edge_index = torch.from_numpy(
            np.stack([rsrc, rdst])
        )
    return data
