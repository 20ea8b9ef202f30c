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

:obj:`DBLP_RELEASE` pins the size, SHA-256 and line count of each file of that
release: downloads are verified against it, and a folder whose node files
(``paper.txt``, ``author.txt``, ``conf.txt``, ``term.txt``) are the release's
must also have the release's line counts in every other file.

The data may be used for academic and educational purposes only and must not be
redistributed, so this project reads it from a path and never ships it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numba
import numpy as np
import torch
from torch_geometric.data import HeteroData, InMemoryDataset, download_url

from pyg_multisage._checks import check_float, check_int, check_seed
from pyg_multisage.sampling.rng import stream, uniform
from pyg_multisage.text import HashedTokenizer

__all__ = [
    "DBLP",
    "read_dblp_raw",
    "download_dblp_raw",
    "find_dblp_raw",
    "same_author_pairs",
    "split_pairs",
    "DBLP_RAW_FILES",
    "DBLP_AREAS",
    "DBLP_RELEASE",
    "DBLP_URL",
]

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

#: The MAGNN commit whose ``data/raw/DBLP/`` holds the release.
DBLP_COMMIT = "b8557f58ae04a7fe3e7a9fde64ea87c81b331efe"

#: Where :func:`download_dblp_raw` fetches each file (``{name}``) from.
DBLP_URL = (
    "https://raw.githubusercontent.com/cynricfu/MAGNN/"
    + DBLP_COMMIT
    + "/data/raw/DBLP/{name}"
)

#: The release at :obj:`DBLP_URL`: file -> (bytes, SHA-256, lines). Measured on
#: a copy whose git blob ids equal those of the MAGNN commit's tree.
DBLP_RELEASE: dict[str, tuple[int, str, int]] = {
    "paper.txt": (
        985_502,
        "61081bcd7fc02db8cd8544cddd20155d3da6145dc3d07f03b5cecb343328ab27",
        14_376,
    ),
    "author.txt": (
        308_290,
        "b296f121c15238692071f11913b10612b84ec67d99fea9c7b946670e521f39cd",
        14_475,
    ),
    "conf.txt": (
        198,
        "7919a4189af47982dcae4d7cd1c9b04ba52e82eca389e2578fd28468b0237ef6",
        20,
    ),
    "term.txt": (
        123_233,
        "63f9eb972db4c2cae6a9cd0b746f58e5012db87c72f0a25fd5de1b7d8d8eb2e7",
        8_920,
    ),
    "paper_author.txt": (
        547_418,
        "8d5e93dd298b4ab5ac9e800405599a0ccad250f16028efe78b3e7e1ac16fde74",
        41_794,
    ),
    "paper_conf.txt": (
        165_336,
        "43dfb296928f09d71b1e938fa34b952e1c7e280dd06d2b1e3ef8c5d5762beb86",
        14_376,
    ),
    "paper_term.txt": (
        1_236_012,
        "e8f22b835c51b9cd85f4ee7c8158db06f644dcae95660e9e822f69cd1df0ee18",
        114_624,
    ),
    "paper_label.txt": (
        6_756,
        "96c11232ba7a0e39c33760e0ff9fd2680905db348faa037a70dd0fdefa3c6185",
        100,
    ),
    "author_label.txt": (
        94_905,
        "0930fc9116caccc64e6a07a54164dfc9d2e21c9ed6e620f464a2b687b6e88281",
        4_057,
    ),
    "conf_label.txt": (
        258,
        "2469c12deb6e3e1b6fe0f715f500618493fee13c0dd2784ff077a183e10d0d78",
        20,
    ),
}

#: Label meaning of ``y`` (``-1`` = unlabeled).
DBLP_AREAS: tuple[str, ...] = (
    "Database",
    "Data Mining",
    "Artificial Intelligence",
    "Information Retrieval",
)

#: The environment variable naming a folder of raw files.
ENV_VAR = "PYG_MULTISAGE_DBLP"

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
_NODE_FILES = tuple(fname for _, fname, _, _ in _NODES)
_NUL_RUN = re.compile("\x00+")
_LABELS = (
    ("paper", "paper_label.txt"),
    ("author", "author_label.txt"),
    ("venue", "conf_label.txt"),
)
_MAX_ID_DIGITS = 18  # every such id fits in int64
_PAIR_LINES = re.compile(
    r"(?:[0-9]{1,18}\t[0-9]{1,18}\n)*[0-9]{1,18}\t[0-9]{1,18}", re.ASCII
)


# --------------------------------------------------------------------------
# Reading and validating the raw files.
# --------------------------------------------------------------------------


def _file_entry(blob: bytes) -> dict[str, int | str]:
    return {"size": len(blob), "sha256": hashlib.sha256(blob).hexdigest()}


def _is_release(name: str, entry: dict[str, int | str]) -> bool:
    size, sha256, _ = DBLP_RELEASE[name]
    return entry["size"] == size and entry["sha256"] == sha256


def _missing_files(folder: Path) -> list[str]:
    return [f for f in DBLP_RAW_FILES if not (folder / f).is_file()]


def _read_blobs(raw_dir: Path) -> dict[str, bytes]:
    """The bytes of every raw file; the manifest and the graph are both made
    from these very bytes, so a file changing meanwhile cannot split them."""
    if not raw_dir.is_dir():
        raise FileNotFoundError(f"raw_dir {str(raw_dir)!r} is not a folder")
    missing = _missing_files(raw_dir)
    if missing:
        raise FileNotFoundError(
            f"raw_dir {str(raw_dir)!r} lacks the DBLP files {missing}"
        )
    return {name: (raw_dir / name).read_bytes() for name in DBLP_RAW_FILES}


def _decode(raw: bytes, encodings: tuple[str, ...]) -> str:
    """Decode with the first encoding that fits; ``latin-1`` never fails."""
    for encoding in encodings:
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1")


def _lines(
    path: Path, blob: bytes, encodings: tuple[str, ...], known: bool
) -> list[str]:
    """The lines of a raw file; an empty file, an empty line or a last line
    without its newline (a file cut short) is an error, except that a file
    equal to the release's (:obj:`known`) may lack the final newline, as the
    release's ``conf_label.txt`` does."""
    if not blob:
        raise ValueError(f"{path} is empty")
    text = _decode(blob, encodings)
    # Accented letters of the distributed ``author.txt`` were lost to runs of
    # NUL bytes (``J\0\0lio``); mark each run with U+FFFD.
    text = _NUL_RUN.sub("\ufffd", text).replace("\r\n", "\n")
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    elif not known:
        raise ValueError(
            f"{path}, line {len(lines)}: the last line {lines[-1][:40]!r} has no "
            "newline, so the file looks cut short (add the newline if the line "
            "is complete)"
        )
    for i, line in enumerate(lines, 1):
        if not line.strip():
            raise ValueError(f"{path}, line {i}: empty line")
    return lines


def _id(field: str, path: Path, line: int) -> int:
    if not (field.isascii() and field.isdigit() and len(field) <= _MAX_ID_DIGITS):
        raise ValueError(
            f"{path}, line {line}: {field[:40]!r} is not a non-negative integer "
            f"of at most {_MAX_ID_DIGITS} digits"
        )
    return int(field)


def _parse_names(path: Path, lines: list[str]) -> tuple[np.ndarray, list[str]]:
    """``id \\t text`` lines -> (int64 raw ids, stripped texts)."""
    ids = np.empty(len(lines), dtype=np.int64)
    names: list[str] = []
    seen: dict[int, int] = {}
    for i, line in enumerate(lines, 1):
        head, sep, rest = line.partition("\t")
        if not sep:
            raise ValueError(
                f"{path}, line {i}: expected 'id<TAB>text', got {line[:40]!r}"
            )
        node_id = _id(head, path, i)
        if node_id in seen:
            raise ValueError(
                f"{path}, line {i}: id {node_id} repeats line {seen[node_id]}"
            )
        if not rest.strip():
            raise ValueError(f"{path}, line {i}: no text after the id {node_id}")
        seen[node_id] = i
        ids[i - 1] = node_id
        names.append(rest.strip())
    return ids, names


def _parse_pairs(path: Path, lines: list[str], exact: bool) -> np.ndarray:
    """The first two integer fields of each line (``[N, 2]`` int64); with
    :obj:`exact` a line must have exactly two fields, else at least two."""
    if exact:
        # Fast path for well-formed link files; the loop below finds the line
        # of any damage.
        text = "\n".join(lines)
        if _PAIR_LINES.fullmatch(text):
            return np.array(text.split(), dtype=np.int64).reshape(-1, 2)
    out = np.empty((len(lines), 2), dtype=np.int64)
    for i, line in enumerate(lines, 1):
        parts = line.split("\t")
        if len(parts) != 2 if exact else len(parts) < 2:
            want = "2" if exact else "at least 2"
            raise ValueError(
                f"{path}, line {i}: expected {want} tab-separated fields, "
                f"got {len(parts)} in {line[:40]!r}"
            )
        out[i - 1, 0] = _id(parts[0], path, i)
        out[i - 1, 1] = _id(parts[1], path, i)
    return out


def _lookup(
    raw_ids: np.ndarray, query: np.ndarray, path: Path, what: str, node_file: str
) -> np.ndarray:
    """Contiguous index (file order) of each ``query`` raw id; an id missing
    from :obj:`node_file` is an error naming the first line holding one."""
    order = np.argsort(raw_ids, kind="stable")
    sorted_ids = raw_ids[order]
    pos = np.minimum(np.searchsorted(sorted_ids, query), sorted_ids.size - 1)
    bad = sorted_ids[pos] != query
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{path}, line {k + 1}: {what} id {int(query[k])} is not in "
            f"{node_file} ({int(bad.sum())} such lines)"
        )
    return order[pos]


def _first_repeat(index: np.ndarray) -> tuple[int, int] | None:
    """(an earlier line, the later line), 0-based, of the first value of
    :obj:`index` that occurs twice (by the later line), or :obj:`None`."""
    order = np.argsort(index, kind="stable")
    same = np.flatnonzero(index[order][1:] == index[order][:-1])
    if same.size == 0:
        return None
    later = order[same + 1]
    j = int(np.argmin(later))
    return int(order[same[j]]), int(later[j])


def _read_raw(raw_dir: Path) -> tuple[HeteroData, dict[str, dict[str, int | str]]]:
    """:func:`read_dblp_raw` plus the manifest (size and SHA-256 of each file)
    of the bytes it parsed."""
    blobs = _read_blobs(raw_dir)
    manifest = {name: _file_entry(blob) for name, blob in blobs.items()}
    encodings = {fname: enc for _, fname, enc, _ in _NODES}
    lines = {
        name: _lines(
            raw_dir / name,
            blob,
            encodings.get(name, ("utf-8", "latin-1")),
            _is_release(name, manifest[name]),
        )
        for name, blob in blobs.items()
    }

    data = HeteroData()
    raw_ids: dict[str, np.ndarray] = {}
    node_file: dict[str, str] = {}
    for node_type, fname, _, attr in _NODES:
        ids, names = _parse_names(raw_dir / fname, lines[fname])
        raw_ids[node_type], node_file[node_type] = ids, fname
        store = data[node_type]
        store.num_nodes = int(ids.size)
        store.raw_id = torch.from_numpy(ids)
        store[attr] = names

    for node_type, fname in _LABELS:
        path = raw_dir / fname
        rows = _parse_pairs(path, lines[fname], exact=False)
        index = _lookup(
            raw_ids[node_type], rows[:, 0], path, node_type, node_file[node_type]
        )
        bad = np.flatnonzero(rows[:, 1] > 3)
        if bad.size:
            raise ValueError(
                f"{path}, line {int(bad[0]) + 1}: label {int(rows[bad[0], 1])} is "
                "not in 0..3"
            )
        repeat = _first_repeat(index)
        if repeat is not None:
            raise ValueError(
                f"{path}, line {repeat[1] + 1}: id {int(rows[repeat[1], 0])} is "
                f"labeled again (also on line {repeat[0] + 1})"
            )
        y = np.full(raw_ids[node_type].size, -1, dtype=np.int64)
        y[index] = rows[:, 1]
        data[node_type].y = torch.from_numpy(y)

    for fname, src_type, rel, dst_type, rev in _LINKS:
        path = raw_dir / fname
        rows = _parse_pairs(path, lines[fname], exact=True)
        src = _lookup(
            raw_ids[src_type], rows[:, 0], path, src_type, node_file[src_type]
        )
        dst = _lookup(
            raw_ids[dst_type], rows[:, 1], path, dst_type, node_file[dst_type]
        )
        num_src, num_dst = raw_ids[src_type].size, raw_ids[dst_type].size
        key = np.unique(src.astype(np.int64) * num_dst + dst)
        if fname == "paper_conf.txt":
            _check_one_venue(path, key // num_dst, rows, src, dst, raw_ids["paper"])
        src, dst = key // num_dst, key % num_dst
        data[src_type, rel, dst_type].edge_index = torch.from_numpy(
            np.stack([src, dst])
        )
        rkey = np.sort(dst * num_src + src)
        data[dst_type, rev, src_type].edge_index = torch.from_numpy(
            np.stack([rkey // num_src, rkey % num_src])
        )

    if all(_is_release(f, manifest[f]) for f in _NODE_FILES):
        # The node files are the release's: so must the line counts be.
        for name in DBLP_RAW_FILES:
            expected, got = DBLP_RELEASE[name][2], len(lines[name])
            if got != expected:
                raise ValueError(
                    f"{raw_dir / name} has {got:,} lines where the DBLP release "
                    f"has {expected:,} (this folder's {', '.join(_NODE_FILES)} "
                    "are the release's): the file looks cut or damaged"
                )
    return data, manifest


def _check_one_venue(
    path: Path,
    paper: np.ndarray,
    rows: np.ndarray,
    line_paper: np.ndarray,
    line_venue: np.ndarray,
    paper_ids: np.ndarray,
) -> None:
    """Every paper has exactly one venue. :obj:`paper`: the paper of each
    distinct link; ``line_*``: the link of each line; :obj:`paper_ids`: the
    raw ids of ``paper.txt`` in file order."""
    repeat = _first_repeat(paper)
    if repeat is not None:
        lines = np.flatnonzero(line_paper == paper[repeat[1]])
        first = int(lines[0])
        second = int(lines[np.flatnonzero(line_venue[lines] != line_venue[first])[0]])
        raise ValueError(
            f"{path}, line {second + 1}: paper {int(rows[second, 0])} gets a second "
            f"venue {int(rows[second, 1])} (line {first + 1} gives "
            f"{int(rows[first, 1])}); each paper has exactly one venue"
        )
    missing = np.flatnonzero(np.bincount(paper, minlength=paper_ids.size) == 0)
    if missing.size:
        p = int(missing[0])
        raise ValueError(
            f"{path}: {missing.size:,} papers have no venue, the first is paper "
            f"{int(paper_ids[p])} (line {p + 1} of paper.txt); each paper has "
            "exactly one venue"
        )


def read_dblp_raw(raw_dir: str | os.PathLike) -> HeteroData:
    r"""Parse and check the raw DBLP four-area files into a :class:`HeteroData`.

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
    and ``('term', 'term_of', 'paper')``, with repeated lines of a link file
    counted once and edges sorted by (source, destination).

    Damaged files fail with a :class:`ValueError` naming the file and line:
    an empty file or line, a last line without its newline (a file cut
    short; only a file equal to the release's may lack it), a wrong number
    of fields, an id that is not a non-negative integer, an id missing from
    its node file, a repeated node id or label, a label outside 0..3, a
    paper with no venue or two. When ``paper.txt``, ``author.txt``,
    ``conf.txt`` and ``term.txt`` are the release's (:obj:`DBLP_RELEASE`),
    every file must also have the release's line count, which catches a
    link file cut at a line boundary. Other content is checked for
    structure only.

    Args:
        raw_dir (str or os.PathLike): the folder holding the raw files
            (:obj:`DBLP_RAW_FILES`).

    Returns:
        HeteroData: the full graph (no features; see :class:`DBLP`).
    """
    return _read_raw(Path(raw_dir))[0]


# --------------------------------------------------------------------------
# The same-author retrieval task.
# --------------------------------------------------------------------------


def same_author_pairs(
    paper_author: np.ndarray | torch.Tensor,
    num_authors: int,
    min_papers: int = 2,
    max_papers: int = 50,
) -> torch.Tensor:
    r"""Unordered pairs of distinct papers sharing an author.

    Only authors with between :obj:`min_papers` and :obj:`max_papers` papers
    (inclusive) contribute; a pair shared by several authors appears once.

    Args:
        paper_author (torch.Tensor or numpy.ndarray): ``[2, E]`` (paper,
            author) links, without duplicates.
        num_authors (int): number of authors.
        min_papers (int, optional): fewest papers of a contributing author.
            (default: :obj:`2`)
        max_papers (int, optional): most papers of a contributing author.
            (default: :obj:`50`)

    Returns:
        torch.Tensor: ``[2, P]`` int64 pairs with ``pairs[0] < pairs[1]``,
        sorted lexicographically.
    """
    pa = np.asarray(paper_author, dtype=np.int64)
    if pa.ndim != 2 or pa.shape[0] != 2:
        raise ValueError(f"paper_author must have shape [2, E], got {list(pa.shape)}")
    min_papers = check_int(min_papers, "min_papers", 2)
    max_papers = check_int(max_papers, "max_papers", min_papers)
    order = np.lexsort((pa[0], pa[1]))
    paper, author = pa[0, order], pa[1, order]
    deg = np.bincount(author, minlength=num_authors)
    ptr = np.zeros(num_authors + 1, dtype=np.int64)
    np.cumsum(deg, out=ptr[1:])
    keep = (deg >= min_papers) & (deg <= max_papers)
    num_papers = int(pa[0].max()) + 1 if pa.size else 1
    keys = []
    for k in range(min_papers, max_papers + 1):
        authors = np.flatnonzero(keep & (deg == k))
        if authors.size == 0:
            continue
        block = paper[ptr[authors][:, None] + np.arange(k)]  # [A, k], sorted rows
        i, j = np.triu_indices(k, 1)
        keys.append((block[:, i] * num_papers + block[:, j]).ravel())
    if not keys:
        return torch.empty(2, 0, dtype=torch.long)
    key = np.unique(np.concatenate(keys))
    return torch.from_numpy(np.stack([key // num_papers, key % num_papers]))


@numba.njit(cache=True)
def _pair_uniform(a, b, seed):
    out = np.empty(a.size, dtype=np.float64)
    for i in range(a.size):
        out[i] = uniform(stream(seed, a[i], b[i]))
    return out


def split_pairs(
    pairs: torch.Tensor,
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Deterministic train/val/test split of ``[2, P]`` pairs.

    Each pair :math:`(a, b)` goes to a split by its own hash
    :math:`u = \mathrm{uniform}(\mathrm{stream}(\text{seed}, a, b))` (the
    project's counter-based SplitMix64): train if :math:`u < r_0`, val if
    :math:`u < r_0 + r_1`, test otherwise. The split of a pair thus depends
    only on the pair and the seed, not on the other pairs or their order.

    Args:
        pairs (torch.Tensor): ``[2, P]`` non-negative ids.
        ratios ((float, float, float), optional): expected train, val and
            test fractions (summing to 1). (default: :obj:`(0.8, 0.1, 0.1)`)
        seed (int, optional): the split seed. (default: :obj:`0`)
    """
    if len(ratios) != 3:
        raise ValueError(f"ratios must have three entries, got {ratios}")
    r = [check_float(x, f"ratios[{i}]") for i, x in enumerate(ratios)]
    if abs(sum(r) - 1.0) > 1e-6:
        raise ValueError(f"ratios must sum to 1, got {sum(r)}")
    seed = check_seed(seed)
    if pairs.dim() != 2 or pairs.size(0) != 2:
        raise ValueError(f"pairs must have shape [2, P], got {list(pairs.shape)}")
    p = pairs.numpy().astype(np.int64)
    if p.size and p.min() < 0:
        raise ValueError("pairs must hold non-negative ids")
    u = torch.from_numpy(_pair_uniform(p[0].copy(), p[1].copy(), seed))
    train = u < r[0]
    val = (u >= r[0]) & (u < r[0] + r[1])
    test = ~(train | val)
    return pairs[:, train], pairs[:, val], pairs[:, test]


# --------------------------------------------------------------------------
# Where the raw files come from: a named folder or the verified download.
# --------------------------------------------------------------------------


def dblp_raw_candidates(path: str | os.PathLike | None = None) -> list[Path]:
    """Where raw DBLP files are looked for, in order: :obj:`path`, then
    ``$PYG_MULTISAGE_DBLP``. Nothing else: the package reads only what the
    user names."""
    return [Path(p).expanduser() for p in (path, os.environ.get(ENV_VAR)) if p]


def find_dblp_raw(
    path: str | os.PathLike | None = None, required: bool = False
) -> Path | None:
    """The first of :func:`dblp_raw_candidates` that holds every raw DBLP
    file; :obj:`None` (or, with :obj:`required`, a :class:`FileNotFoundError`
    naming the folders tried) when none does."""
    tried = dblp_raw_candidates(path)
    for folder in tried:
        if folder.is_dir() and not _missing_files(folder):
            return folder
    if required:
        where = ", ".join(str(p) for p in tried) or "no folder named"
        raise FileNotFoundError(
            f"DBLP raw files (paper.txt, paper_conf.txt, ...) not found ({where}); "
            f"set {ENV_VAR} to the folder that holds them"
        )
    return None


def _write_atomic(path: Path, blob: bytes) -> None:
    """Write :obj:`blob` to a temporary file next to :obj:`path`, then rename
    it over :obj:`path`: readers see the old file or the new one, never half."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def download_dblp_raw(folder: str | os.PathLike, log: bool = True) -> Path:
    r"""Download the raw files of the release pinned by :obj:`DBLP_RELEASE`
    (:obj:`DBLP_URL`) into :obj:`folder`, verified.

    Each file goes to a temporary folder inside :obj:`folder` first; its
    size and SHA-256 must equal the pinned ones, else it is deleted and a
    :class:`ValueError` says so. Only verified files are moved into place.
    Files already in :obj:`folder` are kept when they are the release's and
    refused otherwise. A failing connection raises :class:`ConnectionError`
    naming the URL.

    Args:
        folder (str or os.PathLike): where the files go (created if needed).
        log (bool, optional): print each download. (default: :obj:`True`)

    Returns:
        pathlib.Path: :obj:`folder`, holding every file of
        :obj:`DBLP_RAW_FILES`.
    """
    folder = Path(folder).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    for name in DBLP_RAW_FILES:
        path = folder / name
        if path.is_file() and not _is_release(name, _file_entry(path.read_bytes())):
            raise ValueError(
                f"{path} is not the DBLP release's {name} (size or SHA-256 differ); "
                "move it away before downloading, or pass its folder as raw_dir"
            )
    tmp = Path(tempfile.mkdtemp(prefix=".download-", dir=folder))
    try:
        for name in DBLP_RAW_FILES:
            if (folder / name).is_file():
                continue
            url = DBLP_URL.format(name=name)
            try:
                got = Path(download_url(url, str(tmp), log=log))
            except OSError as err:
                reason = " ".join(str(err).split())
                raise ConnectionError(f"downloading {url} failed: {reason}") from None
            entry = _file_entry(got.read_bytes())
            if not _is_release(name, entry):
                got.unlink()
                size, sha256, _ = DBLP_RELEASE[name]
                raise ValueError(
                    f"the download of {url} ({entry['size']:,} bytes, SHA-256 "
                    f"{entry['sha256']}) is not the pinned {name} ({size:,} bytes, "
                    f"SHA-256 {sha256}); refused and deleted it"
                )
            os.replace(got, folder / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _repr(obj: object) -> str:
    """A repr without memory addresses, to compare pre-transforms."""
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(obj))


#: Bumped whenever :meth:`DBLP.process` changes what it writes.
_CACHE_FORMAT = 1


class DBLP(InMemoryDataset):
    r"""The DBLP four-area graph (Ji et al., ECML-PKDD 2010) with the
    *same-author paper retrieval* task, in target--context form.

    Papers are the **targets**; venues (20) and terms (8,920 title keywords)
    are the **contexts** (MultiSage's multipartite setting, venue + term for
    MultiSage-3). Authors are **held out** of the graph: they define the
    ground truth, the unordered pairs of distinct papers sharing an author
    who has between :obj:`min_papers` and :obj:`max_papers` papers (133,245
    pairs covering 13,620 papers with the defaults; 27% of them share a
    venue). The pairs are split into :obj:`data.train_pairs`,
    :obj:`data.val_pairs` and :obj:`data.test_pairs` (``[2, P]`` paper ids,
    ``a < b``) by :func:`split_pairs` (each pair's own hash decides, ratios
    :obj:`split`); the retrieval candidate pool is **all** papers.

    The returned :class:`~torch_geometric.data.HeteroData` holds

    * ``paper``: ``x`` = hashed title :math:`n`-grams (word 1--2-grams and
      character 3--5-grams, :class:`~pyg_multisage.text.HashedTokenizer`
      with :obj:`num_features` buckets) as an L2-normalised bag-of-buckets
      ``float32 [14376, num_features]`` (term frequencies, not TF-IDF);
      ``y`` = research area of the paper's venue (0 DB, 1 DM, 2 AI, 3 IR;
      every paper); ``y_manual`` = the 100 hand labels of
      ``paper_label.txt`` (``-1`` elsewhere); ``title`` (list) and
      ``raw_id``;
    * ``venue``: ``x`` = one-hot identity ``[20, 20]``, ``y`` (area),
      ``name``, ``raw_id``;
    * ``term``: ``x`` = hashed :math:`n`-grams of the term, same tokenizer
      as titles ``[8920, num_features]``, ``name``, ``raw_id``;
    * edges ``('paper', 'published_in', 'venue')``,
      ``('paper', 'has_term', 'term')`` and their reverses
      ``('venue', 'publishes', 'paper')``, ``('term', 'term_of', 'paper')``.

    **Raw files** are read in place (never copied) from the first folder
    named: :obj:`raw_dir`; ``root/raw`` if it holds them all;
    ``$PYG_MULTISAGE_DBLP``. A named folder that lacks files is an error.
    They are checked as :func:`read_dblp_raw` describes. When no folder is
    named and no valid processed file exists, the release is downloaded into
    ``root/raw`` and verified (:func:`download_dblp_raw`); offline, that
    fails with a :class:`FileNotFoundError` saying to set
    ``$PYG_MULTISAGE_DBLP`` or pass :obj:`raw_dir`. Their license allows
    academic and educational use only.

    **The processed file** in ``root/processed`` (one per setting) comes
    with a JSON manifest: the raw folder, the size and SHA-256 of every raw
    file, of the processed file itself and the pre-transform. It is rebuilt
    when any of these differs from what is named now (another folder,
    changed or damaged files), when it is missing or damaged, or with
    :obj:`force_reload`; with no raw folder named, a valid processed file is
    used as is. Both files are written to a temporary name and renamed, and
    read with ``torch.load(weights_only=True)``.

    Args:
        root (str): folder of the processed file (and of downloaded raw
            files).
        raw_dir (str, optional): folder already holding the raw files.
            (default: :obj:`None`)
        num_features (int, optional): hash buckets of the text features.
            (default: :obj:`512`)
        split ((float, float, float), optional): train/val/test ratios of
            the pairs. (default: :obj:`(0.8, 0.1, 0.1)`)
        seed (int, optional): split seed. (default: :obj:`0`)
        min_papers (int, optional): fewest papers of an author defining
            pairs. (default: :obj:`2`)
        max_papers (int, optional): most papers of an author defining pairs.
            (default: :obj:`50`)
        transform (callable, optional): applied on every access.
            (default: :obj:`None`)
        pre_transform (callable, optional): applied before saving.
            (default: :obj:`None`)
        force_reload (bool, optional): re-process even if the processed
            file is valid. (default: :obj:`False`)
        log (bool, optional): print why it processes or downloads.
            (default: :obj:`True`)
    """

    url = DBLP_URL
    commit = DBLP_COMMIT

    def __init__(
        self,
        root: str,
        raw_dir: str | os.PathLike | None = None,
        num_features: int = 512,
        split: tuple[float, float, float] = (0.8, 0.1, 0.1),
        seed: int = 0,
        min_papers: int = 2,
        max_papers: int = 50,
        transform: Callable | None = None,
        pre_transform: Callable | None = None,
        force_reload: bool = False,
        log: bool = True,
    ) -> None:
        self.num_text_features = check_int(num_features, "num_features", 1)
        self.split = tuple(float(r) for r in split)
        self.seed = check_seed(seed)
        self.min_papers = check_int(min_papers, "min_papers", 2)
        self.max_papers = check_int(max_papers, "max_papers", self.min_papers)
        super().__init__(
            root, transform, pre_transform, log=log, force_reload=force_reload
        )
        self._raw = self._resolve_raw_dir(Path(self.root), raw_dir)
        reason = "force_reload=True" if self.force_reload else self._load_cache()
        if reason is None:
            return
        if self._raw is None:
            self._raw = self._download_raw(reason)
        self._say(f"processing the DBLP files of {self._raw} ({reason})")
        self.process()
        reason = self._load_cache(check_raw=False)
        if reason is not None:  # pragma: no cover - written just above
            raise RuntimeError(f"{self.processed_paths[0]}: {reason}")

    # PyG decides by file existence alone; DBLP decides itself, by content.
    @property
    def has_download(self) -> bool:
        return False

    @property
    def has_process(self) -> bool:
        return False

    @staticmethod
    def _resolve_raw_dir(root: Path, raw_dir: str | os.PathLike | None) -> Path | None:
        """The raw folder named by the user, or :obj:`None`."""
        if raw_dir is None and not _missing_files(root / "raw"):
            return root / "raw"
        if raw_dir is not None:
            value, what = raw_dir, "raw_dir"
        else:
            value, what = os.environ.get(ENV_VAR) or None, f"${ENV_VAR}"
        if value is None:
            return None
        path = Path(value).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(f"{what} {str(path)!r} is not a folder")
        missing = _missing_files(path)
        if missing:
            raise FileNotFoundError(
                f"{what} {str(path)!r} lacks the DBLP files {missing}"
            )
        return path

    def _say(self, message: str) -> None:
        if self.log and "PYTEST_CURRENT_TEST" not in os.environ:
            print(message, file=sys.stderr)

    @property
    def raw_dir(self) -> str:
        """The folder the raw files are read from (``root/raw`` when none is
        named: where they would be downloaded)."""
        raw = getattr(self, "_raw", None)
        return str(raw if raw is not None else Path(self.root) / "raw")

    @property
    def raw_file_names(self) -> list[str]:
        return list(DBLP_RAW_FILES)

    @property
    def processed_file_names(self) -> str:
        split = "-".join(f"{r:g}" for r in self.split)
        return (
            f"dblp_f{self.num_text_features}_split{split}_seed{self.seed}"
            f"_authors{self.min_papers}-{self.max_papers}.pt"
        )

    @property
    def manifest_path(self) -> str:
        """The JSON manifest saved next to the processed file."""
        return str(Path(self.processed_paths[0]).with_suffix(".json"))

    def _load_cache(self, check_raw: bool = True) -> str | None:
        """Loads the processed file if its manifest matches what is named
        now; otherwise returns why not."""
        processed, manifest_path = (
            Path(self.processed_paths[0]),
            Path(self.manifest_path),
        )
        if not processed.is_file() or not manifest_path.is_file():
            return "no processed file yet"
        try:
            manifest = json.loads(manifest_path.read_text())
        except (OSError, ValueError):
            return f"{manifest_path.name} is unreadable"
        if not isinstance(manifest, dict) or manifest.get("format") != _CACHE_FORMAT:
            return "the processed file has an older format"
        if manifest.get("pre_transform") != _repr(self.pre_transform):
            return "pre_transform changed"
        if self._raw is not None and check_raw:
            if manifest.get("raw_dir") != str(self._raw.resolve()):
                return f"the raw folder changed from {manifest.get('raw_dir')}"
            recorded = manifest.get("raw_files")
            recorded = recorded if isinstance(recorded, dict) else {}
            current = {n: _file_entry(b) for n, b in _read_blobs(self._raw).items()}
            changed = [n for n in DBLP_RAW_FILES if recorded.get(n) != current[n]]
            if changed:
                return f"raw files changed: {', '.join(changed)}"
        blob = processed.read_bytes()
        if manifest.get("processed") != _file_entry(blob):
            return f"{processed.name} does not match its manifest (damaged?)"
        try:
            stored = torch.load(io.BytesIO(blob), weights_only=True)
            data = HeteroData.from_dict(stored)
        except Exception as err:  # noqa: BLE001 - any unreadable file is stale
            return f"{processed.name} is unreadable ({type(err).__name__})"
        self.data, self.slices = data, None
        return None

    def _download_raw(self, reason: str) -> Path:
        folder = Path(self.root) / "raw"
        self._say(f"downloading the DBLP release into {folder} ({reason})")
        try:
            return download_dblp_raw(folder, log=self.log)
        except ConnectionError as err:
            raise FileNotFoundError(
                f"DBLP has no raw files named and no valid processed file in "
                f"{self.processed_dir}, and {err}; set {ENV_VAR} or pass raw_dir "
                "to the folder of the raw files (paper.txt, paper_conf.txt, ...)"
            ) from None

    def download(self) -> None:
        """Downloads the pinned release into ``root/raw``, verified
        (:func:`download_dblp_raw`)."""
        download_dblp_raw(Path(self.root) / "raw", log=self.log)

    def _text_features(self, texts: list[str]) -> torch.Tensor:
        """Hashed word 1--2-gram and character 3--5-gram bags of
        :obj:`texts`, ``[len(texts), num_features]``."""
        tok = HashedTokenizer(self.num_text_features, word_ngrams=2, char_ngrams=(3, 5))
        return tok.bag(texts)

    def process(self) -> None:
        """Reads and checks the raw files, builds the graph and the task, and
        writes the processed file and its manifest atomically."""
        if self._raw is None:
            raise FileNotFoundError(
                f"no DBLP raw folder named; set {ENV_VAR} or pass raw_dir"
            )
        raw, raw_files = _read_raw(self._raw)
        data = HeteroData()

        paper = data["paper"]
        paper.x = self._text_features(raw["paper"].title)
        venue_of = raw["paper", "published_in", "venue"].edge_index
        y = torch.full((raw["paper"].num_nodes,), -1, dtype=torch.long)
        y[venue_of[0]] = raw["venue"].y[venue_of[1]]
        paper.y = y
        paper.y_manual = raw["paper"].y
        paper.title = raw["paper"].title
        paper.raw_id = raw["paper"].raw_id

        venue = data["venue"]
        venue.x = torch.eye(raw["venue"].num_nodes)
        venue.y = raw["venue"].y
        venue.name = raw["venue"].name
        venue.raw_id = raw["venue"].raw_id

        term = data["term"]
        term.x = self._text_features(raw["term"].name)
        term.name = raw["term"].name
        term.raw_id = raw["term"].raw_id

        for edge_type in [
            ("paper", "published_in", "venue"),
            ("venue", "publishes", "paper"),
            ("paper", "has_term", "term"),
            ("term", "term_of", "paper"),
        ]:
            data[edge_type].edge_index = raw[edge_type].edge_index

        pairs = same_author_pairs(
            raw["paper", "written_by", "author"].edge_index,
            raw["author"].num_nodes,
            self.min_papers,
            self.max_papers,
        )
        data.train_pairs, data.val_pairs, data.test_pairs = split_pairs(
            pairs, self.split, self.seed
        )
        if self.pre_transform is not None:
            data = self.pre_transform(data)

        buffer = io.BytesIO()
        torch.save(data.to_dict(), buffer)
        blob = buffer.getvalue()
        manifest = {
            "format": _CACHE_FORMAT,
            "raw_dir": str(self._raw.resolve()),
            "raw_files": raw_files,
            "processed": _file_entry(blob),
            "pre_transform": _repr(self.pre_transform),
        }
        processed = Path(self.processed_paths[0])
        processed.parent.mkdir(parents=True, exist_ok=True)
        # The processed file first: a crash between the two leaves a manifest
        # that does not match it, so the next load rebuilds.
        _write_atomic(processed, blob)
        _write_atomic(Path(self.manifest_path), json.dumps(manifest, indent=1).encode())

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(num_features={self.num_text_features})"
