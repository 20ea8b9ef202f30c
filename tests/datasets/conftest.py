"""A tiny DBLP raw folder in the real on-disk format (written, not copied)."""

from __future__ import annotations

from pathlib import Path

import pytest

TINY_DBLP = {
    # paper.txt of the real data is GB18030; author.txt has NUL-damaged names
    "paper.txt": "10\tGraph Mining.\n11\tDeep Nets\n12\tB\u00e9zier Queries\n"
    "13\tGraph Queries\n14\tMining Nets\n15\tSolo Work\n",
    "author.txt": "5\tAlice\n6\tJ\x00\x00lio\n7\tBob\n8\tCarol\n",
    "conf.txt": "100\tKDD\n101\tVLDB\n",
    "term.txt": "1\tgraph\n2\tmining\n3\tqueries\n",
    "paper_author.txt": "10\t5\n11\t5\n12\t6\n10\t5\n13\t6\n13\t5\n14\t7\n12\t7\n"
    "15\t8\n",
    "paper_conf.txt": "10\t100\n11\t100\n12\t101\n13\t101\n14\t100\n15\t101\n",
    "paper_term.txt": "10\t1\n10\t2\n12\t3\n13\t1\n13\t3\n14\t2\n",
    "paper_label.txt": "11\t2\tDeep Nets\n",
    "author_label.txt": "6\t0\tJulio\n",
    "conf_label.txt": "101\t0\tVLDB\t\n100\t1\tKDD\t\n",
}


def write_tiny_dblp(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in TINY_DBLP.items():
        enc = "gb18030" if name == "paper.txt" else "latin-1"
        (folder / name).write_bytes(text.encode(enc))
    return folder


@pytest.fixture
def tiny_dblp_dir(tmp_path) -> Path:
    return write_tiny_dblp(tmp_path / "tiny_dblp")


@pytest.fixture
def make_tiny_dblp():
    """The writer itself, for tests that damage a fresh copy."""
    return write_tiny_dblp
