"""read_dblp_raw on the real DBLP files and on tiny hand-written ones."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pyg_multisage.datasets import DBLP_RAW_FILES, read_dblp_raw


@pytest.fixture(scope="module")
def raw(dblp_dir):
    return read_dblp_raw(dblp_dir)


def test_counts_match_the_readme(raw):
    assert raw["paper"].num_nodes == 14_376
    assert raw["author"].num_nodes == 14_475
    assert raw["venue"].num_nodes == 20
    assert raw["term"].num_nodes == 8_920
    assert raw["paper", "written_by", "author"].edge_index.size(1) == 41_794
    assert raw["paper", "published_in", "venue"].edge_index.size(1) == 14_376
    assert raw["paper", "has_term", "term"].edge_index.size(1) == 114_624
    assert int((raw["paper"].y >= 0).sum()) == 100
    assert int((raw["author"].y >= 0).sum()) == 4_057
    assert bool((raw["venue"].y >= 0).all())


def test_ids_texts_and_reverse_edges(raw, dblp_dir):
    # The first lines of paper.txt / conf.txt, read independently.
    first = (Path(dblp_dir) / "paper.txt").read_bytes().split(b"\n")[0]
    pid, title = first.decode("ascii").split("\t")
    assert int(raw["paper"].raw_id[0]) == int(pid)
    assert raw["paper"].title[0] == title.strip()
    assert len(raw["author"].name) == raw["author"].num_nodes
    assert "SIGMOD" in raw["venue"].name
    # paper.txt is GB18030: the accented title decodes properly.
    assert any("Bézier" in t for t in raw["paper"].title)
    for fwd, rev in [
        (("paper", "written_by", "author"), ("author", "writes", "paper")),
        (("paper", "published_in", "venue"), ("venue", "publishes", "paper")),
        (("paper", "has_term", "term"), ("term", "term_of", "paper")),
    ]:
        a = raw[fwd].edge_index
        b = raw[rev].edge_index
        assert a.dtype == torch.long
        assert set(map(tuple, a.t().tolist())) == set(
            map(tuple, b.flip(0).t().tolist())
        )
        assert int(a[1].max()) < raw[fwd[2]].num_nodes
    # every paper has exactly one venue
    venue_of = raw["paper", "published_in", "venue"].edge_index
    assert torch.equal(venue_of[0], torch.arange(raw["paper"].num_nodes))


def test_tiny_files(tiny_dblp_dir):
    data = read_dblp_raw(tiny_dblp_dir)
    assert data["paper"].raw_id.tolist() == [10, 11, 12, 13, 14, 15]
    assert data["paper"].title[2] == "B\u00e9zier Queries"
    assert data["author"].name == ["Alice", "J\ufffdlio", "Bob", "Carol"]
    assert data["paper"].y.tolist() == [-1, 2, -1, -1, -1, -1]
    assert data["author"].y.tolist() == [-1, 0, -1, -1]
    assert data["venue"].y.tolist() == [1, 0]
    # the duplicate link (10, 5) is removed; edges sorted
    ei = data["paper", "written_by", "author"].edge_index
    assert ei.t().tolist() == [
        [0, 0],
        [1, 0],
        [2, 1],
        [2, 2],
        [3, 0],
        [3, 1],
        [4, 2],
        [5, 3],
    ]
    rev = data["author", "writes", "paper"].edge_index
    assert rev.t().tolist() == [
        [0, 0],
        [0, 1],
        [0, 3],
        [1, 2],
        [1, 3],
        [2, 2],
        [2, 4],
        [3, 5],
    ]
    rev = data["term", "term_of", "paper"].edge_index
    assert rev.t().tolist() == [[0, 0], [0, 3], [1, 0], [1, 4], [2, 2], [2, 3]]


def test_bad_input(tmp_path, make_tiny_dblp):
    with pytest.raises(FileNotFoundError, match="not a folder"):
        read_dblp_raw(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="lacks the DBLP files"):
        read_dblp_raw(tmp_path)
    folder = make_tiny_dblp(tmp_path / "a")
    (folder / "paper_conf.txt").write_text("10\t100\n99\t100\n")
    with pytest.raises(
        ValueError, match=r"paper_conf.txt, line 2: paper id 99 is not in paper.txt"
    ):
        read_dblp_raw(folder)
    folder = make_tiny_dblp(tmp_path / "b")
    (folder / "paper_label.txt").write_text("11\t7\tx\n")
    with pytest.raises(ValueError, match=r"paper_label.txt, line 1: label 7 is not"):
        read_dblp_raw(folder)
    folder = make_tiny_dblp(tmp_path / "c")
    (folder / "conf.txt").write_text("100\tKDD\nx1\tVLDB\n")
    with pytest.raises(ValueError, match=r"conf.txt, line 2: 'x1' is not a non-neg"):
        read_dblp_raw(folder)
    folder = make_tiny_dblp(tmp_path / "d")
    (folder / "paper_term.txt").write_text("10\t1\n10\n")
    with pytest.raises(ValueError, match=r"paper_term.txt, line 2: expected 2 tab"):
        read_dblp_raw(folder)
    assert len(DBLP_RAW_FILES) == 10
