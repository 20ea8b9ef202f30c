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


def _write_tiny(root: Path) -> None:
    files = {
        "paper.txt": "10\tGraph Mining.\n11\tDeep Nets\n12\tB\u00e9zier Queries\n",
        "author.txt": "5\tAlice\n6\tJ\x00\x00lio\n",
        "conf.txt": "100\tKDD\n101\tVLDB\n",
        "term.txt": "1\tgraph\n2\tmining\n3\tqueries\n",
        "paper_author.txt": "10\t5\n11\t5\n12\t6\n10\t5\n",
        "paper_conf.txt": "10\t100\n11\t100\n12\t101\n",
        "paper_term.txt": "10\t1\n10\t2\n12\t3\n",
        "paper_label.txt": "11\t2\tDeep Nets\n",
        "author_label.txt": "6\t0\tJulio\n",
        "conf_label.txt": "101\t0\tVLDB\t\n100\t1\tKDD\t",
    }
    for name, text in files.items():
        enc = "gb18030" if name == "paper.txt" else "latin-1"
        (root / name).write_bytes(text.encode(enc))


def test_tiny_files(tmp_path):
    _write_tiny(tmp_path)
    data = read_dblp_raw(tmp_path)
    assert data["paper"].raw_id.tolist() == [10, 11, 12]
    assert data["paper"].title[2] == "B\u00e9zier Queries"
    assert data["author"].name == ["Alice", "J\ufffdlio"]
    assert data["paper"].y.tolist() == [-1, 2, -1]
    assert data["author"].y.tolist() == [-1, 0]
    assert data["venue"].y.tolist() == [1, 0]
    # duplicate link (10, 5) removed
    ei = data["paper", "written_by", "author"].edge_index
    assert ei.tolist() == [[0, 1, 2], [0, 0, 1]]
    assert data["author", "writes", "paper"].edge_index.tolist() == [
        [0, 0, 1],
        [0, 1, 2],
    ]
    assert data["term", "term_of", "paper"].edge_index.tolist() == [
        [0, 1, 2],
        [0, 0, 2],
    ]


def test_bad_input(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a folder"):
        read_dblp_raw(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="lacks the DBLP files"):
        read_dblp_raw(tmp_path)
    _write_tiny(tmp_path)
    (tmp_path / "paper_conf.txt").write_text("10\t100\n99\t100\n")
    with pytest.raises(ValueError, match="paper_conf.txt: 1 ids not found"):
        read_dblp_raw(tmp_path)
    _write_tiny(tmp_path)
    (tmp_path / "paper_label.txt").write_text("11\t7\tx\n")
    with pytest.raises(ValueError, match="labels must lie in 0..3"):
        read_dblp_raw(tmp_path)
    assert len(DBLP_RAW_FILES) == 10
