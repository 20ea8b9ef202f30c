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
    "same_author_pairs",
    "split_pairs",
    "DBLP_RAW_FILES",
    "DBLP_AREAS",
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


def _complete(folder: Path | None) -> bool:
    return folder is not None and all((folder / f).is_file() for f in DBLP_RAW_FILES)


def dblp_raw_candidates(path: str | os.PathLike | None = None) -> list[Path]:
    """Where raw DBLP files are looked for, in order: :obj:`path`,
    ``$PYG_MULTISAGE_DBLP``, and ``../shared/data/dblp`` next to a development
    checkout of this project."""
    found = [Path(p) for p in (path, os.environ.get("PYG_MULTISAGE_DBLP")) if p]
    found.append(Path(__file__).resolve().parents[3] / "shared" / "data" / "dblp")
    return found


def find_dblp_raw(
    path: str | os.PathLike | None = None, required: bool = False
) -> Path | None:
    """The first of :func:`dblp_raw_candidates` that holds every raw DBLP
    file; :obj:`None` (or, with :obj:`required`, a :class:`FileNotFoundError`
    naming the folders tried) when none does."""
    tried = dblp_raw_candidates(path)
    for folder in tried:
        if _complete(folder):
            return folder
    if required:
        raise FileNotFoundError(
            "DBLP raw files (paper_conf.txt, paper_term.txt, ...) not found in "
            + ", ".join(str(p) for p in tried)
            + "; set PYG_MULTISAGE_DBLP to the folder that holds them"
        )
    return None


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

    The raw files are read from, in this order: :obj:`raw_dir`;
    ``root/raw`` if it holds them all; ``$PYG_MULTISAGE_DBLP``; otherwise
    they are downloaded into ``root/raw`` from the MAGNN repository
    (``cynricfu/MAGNN``, commit ``b8557f5``, ``data/raw/DBLP/``). They are
    read in place, never copied. Their license allows academic and
    educational use only.

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
        force_reload (bool, optional): re-process. (default: :obj:`False`)
    """

    url = (
        "https://raw.githubusercontent.com/cynricfu/MAGNN/{commit}/data/raw/DBLP/{name}"
    )
    commit = "b8557f5"

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
    ) -> None:
        self.num_text_features = check_int(num_features, "num_features", 1)
        self.split = tuple(float(r) for r in split)
        self.seed = check_seed(seed)
        self.min_papers = check_int(min_papers, "min_papers", 2)
        self.max_papers = check_int(max_papers, "max_papers", self.min_papers)
        self._raw_dir = self._resolve_raw_dir(root, raw_dir)
        super().__init__(root, transform, pre_transform, force_reload=force_reload)
        self.load(self.processed_paths[0], data_cls=HeteroData)

    @staticmethod
    def _resolve_raw_dir(root: str, raw_dir: str | os.PathLike | None) -> Path:
        if raw_dir is not None:
            path = Path(raw_dir)
            if not _complete(path):
                missing = [f for f in DBLP_RAW_FILES if not (path / f).is_file()]
                raise FileNotFoundError(
                    f"raw_dir {str(path)!r} lacks the DBLP files {missing}"
                )
            return path
        local = Path(root) / "raw"
        if _complete(local):
            return local
        env = os.environ.get("PYG_MULTISAGE_DBLP")
        if env and _complete(Path(env)):
            return Path(env)
        return local

    @property
    def raw_dir(self) -> str:
        return str(self._raw_dir)

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

    def download(self) -> None:
        for name in DBLP_RAW_FILES:
            download_url(
                self.url.format(commit=self.commit, name=name),
                self.raw_dir,
                log=self.log,
            )

    def process(self) -> None:
        raw = read_dblp_raw(self.raw_dir)
        tok = HashedTokenizer(self.num_text_features, word_ngrams=2, char_ngrams=(3, 5))
        data = HeteroData()

        paper = data["paper"]
        paper.x = tok.bag(raw["paper"].title)
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
        term.x = tok.bag(raw["term"].name)
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
        self.save([data], self.processed_paths[0])

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(num_features={self.num_text_features})"
