"""The DBLP InMemoryDataset and the same-author retrieval task."""

from __future__ import annotations

import itertools

import pytest
import torch

import pyg_multisage.datasets.dblp as dblp_module
from pyg_multisage.datasets import (
    DBLP,
    read_dblp_raw,
    same_author_pairs,
    split_pairs,
)
from pyg_multisage.text import HashedTokenizer


@pytest.fixture(scope="module")
def dblp(dblp_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("dblp_root")
    return DBLP(str(root), raw_dir=dblp_dir)


def _reference_pairs(edge_index, lo, hi):
    papers_of: dict[int, list[int]] = {}
    for p, a in edge_index.t().tolist():
        papers_of.setdefault(a, []).append(p)
    out = set()
    for papers in papers_of.values():
        if lo <= len(papers) <= hi:
            out.update(itertools.combinations(sorted(papers), 2))
    return sorted(out)


def test_same_author_task_matches_readme(dblp, dblp_dir):
    data = dblp[0]
    pairs = torch.cat([data.train_pairs, data.val_pairs, data.test_pairs], 1)
    assert pairs.size(1) == 133_245
    assert pairs.unique().numel() == 13_620
    assert bool((pairs[0] < pairs[1]).all())
    assert torch.unique(pairs[0] * 100_000 + pairs[1]).numel() == pairs.size(1)
    venue = data["paper", "published_in", "venue"].edge_index[1]
    share = (venue[pairs[0]] == venue[pairs[1]]).double().mean().item()
    assert round(share, 2) == 0.27
    # against a plain-Python reference on the raw links
    raw = read_dblp_raw(dblp_dir)
    ref = _reference_pairs(raw["paper", "written_by", "author"].edge_index, 2, 50)
    got = sorted(map(tuple, pairs.t().tolist()))
    assert got == ref


def test_authors_held_out_and_features(dblp, dblp_dir):
    data = dblp[0]
    assert set(data.node_types) == {"paper", "venue", "term"}
    assert all("author" not in et for et in data.edge_types)
    assert len(data.edge_types) == 4
    n = data["paper"].num_nodes
    assert n == 14_376
    assert data["paper"].x.shape == (n, 512)
    titles = data["paper"].title
    assert len(titles) == n
    expected = HashedTokenizer(512, 2, (3, 5)).bag(titles[:50])
    assert torch.allclose(data["paper"].x[:50], expected)
    assert torch.allclose(data["paper"].x.norm(dim=1), torch.ones(n), atol=1e-5)
    assert torch.equal(data["venue"].x, torch.eye(20))
    assert data["term"].x.shape == (8_920, 512)
    # y = the area of the paper's venue; the manual labels agree mostly
    venue = data["paper", "published_in", "venue"].edge_index
    assert torch.equal(data["paper"].y[venue[0]], data["venue"].y[venue[1]])
    manual = data["paper"].y_manual
    assert int((manual >= 0).sum()) == 100
    assert (manual[manual >= 0] == data["paper"].y[manual >= 0]).float().mean() > 0.5
    ratios = [
        data[k].size(1) / 133_245 for k in ("train_pairs", "val_pairs", "test_pairs")
    ]
    assert abs(ratios[0] - 0.8) < 0.01 and abs(ratios[1] - 0.1) < 0.01


def test_same_author_pairs_reference():
    gen = torch.Generator().manual_seed(3)
    p = torch.randint(0, 40, (300,), generator=gen)
    a = torch.randint(0, 25, (300,), generator=gen)
    key = torch.unique(p * 25 + a)
    ei = torch.stack([key // 25, key % 25])
    for lo, hi in [(2, 50), (2, 12), (5, 9), (3, 3)]:
        got = same_author_pairs(ei, 25, lo, hi)
        assert sorted(map(tuple, got.t().tolist())) == _reference_pairs(ei, lo, hi)
    assert same_author_pairs(ei, 25, 60, 70).shape == (2, 0)
    with pytest.raises(ValueError, match="min_papers"):
        same_author_pairs(ei, 25, 1, 5)
    with pytest.raises(ValueError, match="max_papers"):
        same_author_pairs(ei, 25, 5, 4)
    with pytest.raises(ValueError, match=r"shape \[2, E\]"):
        same_author_pairs(ei[0], 25)


def test_split_pairs_deterministic():
    pairs = torch.stack([torch.arange(5000), torch.arange(5000) + 7])
    a = split_pairs(pairs, (0.6, 0.2, 0.2), seed=4)
    b = split_pairs(pairs, (0.6, 0.2, 0.2), seed=4)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert sum(x.size(1) for x in a) == 5000
    assert abs(a[0].size(1) / 5000 - 0.6) < 0.03
    # a pair's split depends on the pair only, not on the others or their order
    perm = torch.randperm(5000, generator=torch.Generator().manual_seed(0))
    c = split_pairs(pairs[:, perm][:, :2000], (0.6, 0.2, 0.2), seed=4)
    for whole, part in zip(a, c, strict=True):
        w = set(map(tuple, whole.t().tolist()))
        assert set(map(tuple, part.t().tolist())) <= w
    d = split_pairs(pairs, (0.6, 0.2, 0.2), seed=5)
    assert not torch.equal(a[0], d[0])
    with pytest.raises(ValueError, match="sum to 1"):
        split_pairs(pairs, (0.6, 0.2, 0.3))
    with pytest.raises(ValueError, match="three"):
        split_pairs(pairs, (0.5, 0.5))
    with pytest.raises(ValueError, match="seed"):
        split_pairs(pairs, seed=-1)


def test_tiny_dataset_and_raw_dir_resolution(tmp_path, tiny_dblp_dir, monkeypatch):
    monkeypatch.delenv("PYG_MULTISAGE_DBLP", raising=False)
    ds = DBLP(str(tmp_path / "r1"), raw_dir=tiny_dblp_dir, num_features=32)
    data = ds[0]
    assert ds.raw_dir == str(tiny_dblp_dir)
    pairs = torch.cat([data.train_pairs, data.val_pairs, data.test_pairs], 1)
    assert sorted(map(tuple, pairs.t().tolist())) == [
        (0, 1),
        (0, 3),
        (1, 3),
        (2, 3),
        (2, 4),
    ]
    assert data["paper"].x.shape == (6, 32)
    assert data["paper"].y.tolist() == [1, 1, 0, 0, 1, 0]
    assert not (tmp_path / "r1" / "raw").exists()  # read in place, not copied
    # processed once: a second construction does not read the raw files
    monkeypatch.setattr(dblp_module, "_read_raw", None)
    ds2 = DBLP(str(tmp_path / "r1"), raw_dir=tiny_dblp_dir, num_features=32)
    assert torch.equal(ds2[0].train_pairs, data.train_pairs)
    monkeypatch.undo()
    # $PYG_MULTISAGE_DBLP is used when no raw_dir is given
    monkeypatch.setenv("PYG_MULTISAGE_DBLP", str(tiny_dblp_dir))
    assert DBLP(str(tmp_path / "r2"), num_features=8).raw_dir == str(tiny_dblp_dir)
    # a bad raw_dir is reported
    with pytest.raises(FileNotFoundError, match="lacks the DBLP files"):
        DBLP(str(tmp_path / "r3"), raw_dir=tmp_path)


def test_find_dblp_raw_order_and_errors(tiny_dblp_dir, tmp_path, monkeypatch):
    from pyg_multisage.datasets.dblp import find_dblp_raw

    monkeypatch.setenv("PYG_MULTISAGE_DBLP", str(tiny_dblp_dir))
    assert find_dblp_raw() == tiny_dblp_dir
    assert find_dblp_raw(tiny_dblp_dir) == tiny_dblp_dir
    assert find_dblp_raw(tmp_path) == tiny_dblp_dir  # an empty folder is skipped
    monkeypatch.setenv("PYG_MULTISAGE_DBLP", str(tmp_path))
    monkeypatch.setattr(
        "pyg_multisage.datasets.dblp.dblp_raw_candidates", lambda path=None: [tmp_path]
    )
    assert find_dblp_raw() is None
    with pytest.raises(FileNotFoundError, match="PYG_MULTISAGE_DBLP"):
        find_dblp_raw(required=True)
