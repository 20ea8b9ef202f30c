r"""OGB-MAG (the MAG side of OAG) in target--context form.

:func:`ogbn_mag` loads PyG's :class:`~torch_geometric.datasets.OGB_MAG`
(``ogbn-mag`` of the Open Graph Benchmark: 736,389 papers, 1,134,649
authors, 59,965 fields of study, 8,740 institutions; 128-d word2vec paper
features; 349 venue classes; time-based train/val/test split) and
:func:`to_target_context` turns it into the form of this project: papers
are the **targets**, fields of study and authors the **contexts**, each
relation stored in both directions. PyG's loader needs :mod:`pandas`.
"""

from __future__ import annotations

import os

import torch
from torch import Tensor
from torch_geometric.data import HeteroData

__all__ = ["ogbn_mag", "to_target_context", "OGBN_MAG_CONTEXTS"]

#: (context type, paper -> context relation, context -> paper relation)
OGBN_MAG_CONTEXTS: tuple[tuple[str, str, str], ...] = (
    ("field_of_study", "has_topic", "topic_of"),
    ("author", "written_by", "writes"),
)


def _sorted_edges(src: Tensor, dst: Tensor, num_dst: int) -> Tensor:
    """Unique ``[2, E]`` edges sorted by (source, destination)."""
    key = torch.unique(src * num_dst + dst)  # sorted
    return torch.stack([key // num_dst, key % num_dst])


def _mean_features(x: Tensor, index: Tensor, num_nodes: int) -> Tensor:
    """Mean of ``x[index[0]]`` per ``index[1]`` (zeros where none)."""
    out = torch.zeros(num_nodes, x.size(1), dtype=x.dtype)
    out.index_add_(0, index[1], x[index[0]])
    count = torch.bincount(index[1], minlength=num_nodes).clamp_min(1)
    return out / count.unsqueeze(1).to(x.dtype)


def to_target_context(
    data: HeteroData,
    contexts: tuple[str, ...] = ("field_of_study", "author"),
    keep_citations: bool = False,
    context_features: bool = True,
) -> HeteroData:
    r"""Converts an ``ogbn-mag`` :class:`HeteroData` (as built by PyG's
    :class:`~torch_geometric.datasets.OGB_MAG`) to target--context form.

    The result holds ``paper`` (targets: ``x``, ``y`` = venue label,
    ``year``, ``train_mask`` / ``val_mask`` / ``test_mask`` and
    ``num_nodes``), the context types named in :obj:`contexts` among
    ``'field_of_study'`` and ``'author'`` with edges
    ``('paper', 'has_topic', 'field_of_study')`` /
    ``('field_of_study', 'topic_of', 'paper')`` and
    ``('paper', 'written_by', 'author')`` / ``('author', 'writes', 'paper')``
    (deduplicated, sorted by source then destination), and, with
    :obj:`keep_citations`, ``('paper', 'cites', 'paper')``. Institutions are
    dropped. Contexts without features (plain OGB_MAG has none) get, with
    :obj:`context_features`, the mean feature of their papers
    :math:`\mathbf{x}_c = \frac{1}{|N(c)|}\sum_{p \in N(c)} \mathbf{x}_p`
    (zeros for isolated contexts); existing features (e.g. OGB_MAG's
    ``preprocess='metapath2vec'``) are kept.

    Args:
        data (HeteroData): the ``ogbn-mag`` graph.
        contexts (tuple[str], optional): context types to keep.
            (default: :obj:`("field_of_study", "author")`)
        keep_citations (bool, optional): keep paper citations.
            (default: :obj:`False`)
        context_features (bool, optional): fill missing context features.
            (default: :obj:`True`)
    """
    if not isinstance(data, HeteroData):
        raise TypeError(f"data must be a HeteroData, got {type(data).__name__}")
    known = {c for c, _, _ in OGBN_MAG_CONTEXTS}
    for c in contexts:
        if c not in known:
            raise ValueError(f"contexts must be among {sorted(known)}, got {c!r}")
    if "paper" not in data.node_types or "x" not in data["paper"]:
        raise ValueError("data lacks the 'paper' node type with features 'x'")

    out = HeteroData()
    paper = data["paper"]
    num_papers = paper.num_nodes
    for key in ("x", "y", "year", "train_mask", "val_mask", "test_mask"):
        if key in paper:
            out["paper"][key] = paper[key]
    out["paper"].num_nodes = num_papers

    for ctype, fwd, rev in OGBN_MAG_CONTEXTS:
        if ctype not in contexts:
            continue
        if ctype == "field_of_study":
            edge_index = data["paper", "has_topic", "field_of_study"].edge_index
            src, dst = edge_index[0], edge_index[1]
        else:
            edge_index = data["author", "writes", "paper"].edge_index
            src, dst = edge_index[1], edge_index[0]
        num_ctx = data[ctype].num_nodes
        if num_ctx is None:
            raise ValueError(f"data['{ctype}'] has no num_nodes")
        if src.numel() and (int(src.max()) >= num_papers or int(dst.max()) >= num_ctx):
            raise ValueError(f"edges of {ctype!r} point past the node counts")
        pc = _sorted_edges(src, dst, num_ctx)
        out["paper", fwd, ctype].edge_index = pc
        out[ctype, rev, "paper"].edge_index = _sorted_edges(pc[1], pc[0], num_papers)
        out[ctype].num_nodes = num_ctx
        if "x" in data[ctype]:
            out[ctype].x = data[ctype].x
        elif context_features:
            out[ctype].x = _mean_features(paper.x, pc, num_ctx)

    if keep_citations:
        ei = data["paper", "cites", "paper"].edge_index
        out["paper", "cites", "paper"].edge_index = _sorted_edges(
            ei[0], ei[1], num_papers
        )
    return out


def ogbn_mag(
    root: str | os.PathLike,
    contexts: tuple[str, ...] = ("field_of_study", "author"),
    keep_citations: bool = False,
    context_features: bool = True,
    preprocess: str | None = None,
    force_reload: bool = False,
) -> HeteroData:
    r"""Loads ``ogbn-mag`` with PyG's
    :class:`~torch_geometric.datasets.OGB_MAG` (downloading it into
    ``root/mag`` if absent, about 400 MB) and returns
    :func:`to_target_context` of it.

    Args:
        root (str or os.PathLike): OGB_MAG's root folder.
        contexts (tuple[str], optional): see :func:`to_target_context`.
            (default: :obj:`("field_of_study", "author")`)
        keep_citations (bool, optional): see :func:`to_target_context`.
            (default: :obj:`False`)
        context_features (bool, optional): see :func:`to_target_context`.
            (default: :obj:`True`)
        preprocess (str, optional): OGB_MAG's ``preprocess``
            (``'metapath2vec'`` or ``'TransE'`` embeddings for featureless
            types). (default: :obj:`None`)
        force_reload (bool, optional): re-process. (default: :obj:`False`)
    """
    from torch_geometric.datasets import OGB_MAG

    try:
        import pandas  # noqa: F401  (OGB_MAG.process reads CSVs with pandas)
    except ImportError as e:
        raise ImportError("ogbn_mag needs pandas ('pip install pandas')") from e
    dataset = OGB_MAG(str(root), preprocess=preprocess, force_reload=force_reload)
    return to_target_context(dataset[0], contexts, keep_citations, context_features)


def citation_pairs(data: HeteroData) -> dict[str, Tensor]:
    """Citing → cited pairs (self-citations and duplicates dropped), split by
    the citing paper's official mask; removes the citation edges from
    :obj:`data`."""
    cites = ("paper", "cites", "paper")
    if cites not in data.edge_types:
        raise ValueError("the graph lacks ('paper', 'cites', 'paper')")
    ei = data[cites].edge_index
    del data[cites]
    n = data["paper"].num_nodes
    ei = ei[:, ei[0] != ei[1]]
    key = torch.unique(ei[0] * n + ei[1])
    ei = torch.stack([key // n, key % n])
    paper = data["paper"]
    return {
        split: ei[:, paper[f"{split}_mask"][ei[0]]]
        for split in ("train", "val", "test")
    }
