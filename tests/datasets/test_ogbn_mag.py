"""The OGB-MAG adapter on a tiny ogbn-mag folder in the real on-disk format."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
import torch

from pyg_multisage.datasets import ogbn_mag, to_target_context

pytest.importorskip("pandas")

NUM = {"author": 5, "field_of_study": 4, "institution": 2, "paper": 6}
EDGES = {
    ("author", "affiliated_with", "institution"): [[0, 0], [1, 1], [4, 1]],
    ("author", "writes", "paper"): [[0, 0], [0, 1], [1, 1], [2, 3], [3, 3], [0, 5]],
    ("paper", "cites", "paper"): [[1, 0], [2, 0], [5, 3]],
    ("paper", "has_topic", "field_of_study"): [[0, 0], [0, 2], [1, 2], [3, 1], [5, 2]],
}
SPLIT = {"train": [0, 1, 2], "valid": [3], "test": [4, 5]}


def _gz(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as f:
        f.write("".join(line + "\n" for line in lines))


def write_tiny_ogbn_mag(root: Path) -> torch.Tensor:
    """Writes root/mag/raw as OGB ships it (gzipped headerless CSVs)."""
    raw = root / "mag" / "raw"
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(NUM["paper"], 8, generator=gen)
    _gz(
        raw / "node-feat/paper/node-feat.csv.gz",
        [",".join(f"{v:.6f}" for v in r) for r in x.tolist()],
    )
    _gz(raw / "node-feat/paper/node_year.csv.gz", [str(2010 + i) for i in range(6)])
    _gz(raw / "node-label/paper/node-label.csv.gz", ["3", "1", "3", "0", "2", "1"])
    _gz(
        raw / "num-node-dict.csv.gz",
        [",".join(NUM), ",".join(str(v) for v in NUM.values())],
    )
    for edge_type, edges in EDGES.items():
        folder = raw / "relations" / "___".join(edge_type)
        _gz(folder / "edge.csv.gz", [f"{a},{b}" for a, b in edges])
        _gz(folder / "num-edge-list.csv.gz", [str(len(edges))])
    for name, idx in SPLIT.items():
        _gz(raw / f"split/time/paper/{name}.csv.gz", [str(i) for i in idx])
    return torch.tensor([[round(v, 6) for v in r] for r in x.tolist()])


def test_tiny_ogbn_mag(tmp_path):
    x = write_tiny_ogbn_mag(tmp_path)
    data = ogbn_mag(tmp_path)  # PyG's OGB_MAG.process on the files, no network
    assert set(data.node_types) == {"paper", "field_of_study", "author"}
    assert torch.allclose(data["paper"].x, x, atol=1e-6)
    assert data["paper"].y.tolist() == [3, 1, 3, 0, 2, 1]
    assert data["paper"].year.tolist() == list(range(2010, 2016))
    assert data["paper"].train_mask.tolist() == [True] * 3 + [False] * 3
    assert data["paper"].test_mask.nonzero().view(-1).tolist() == [4, 5]
    assert data["author"].num_nodes == 5 and data["field_of_study"].num_nodes == 4
    pf = data["paper", "has_topic", "field_of_study"].edge_index
    assert pf.t().tolist() == [[0, 0], [0, 2], [1, 2], [3, 1], [5, 2]]
    fp = data["field_of_study", "topic_of", "paper"].edge_index
    assert fp.t().tolist() == [[0, 0], [1, 3], [2, 0], [2, 1], [2, 5]]
    pa = data["paper", "written_by", "author"].edge_index
    assert pa.t().tolist() == [[0, 0], [1, 0], [1, 1], [3, 2], [3, 3], [5, 0]]
    ap = data["author", "writes", "paper"].edge_index
    assert ap.t().tolist() == [[0, 0], [0, 1], [0, 5], [1, 1], [2, 3], [3, 3]]
    assert ("paper", "cites", "paper") not in data.edge_types
    # context features: mean of their papers' features, zeros when isolated
    fx = data["field_of_study"].x
    assert torch.allclose(fx[2], x[[0, 1, 5]].mean(0), atol=1e-6)
    assert torch.allclose(fx[1], x[3], atol=1e-6)
    assert torch.equal(data["author"].x[4], torch.zeros(8))


def test_adapter_options(tmp_path):
    write_tiny_ogbn_mag(tmp_path)
    from torch_geometric.datasets import OGB_MAG

    raw = OGB_MAG(str(tmp_path))[0]
    data = to_target_context(
        raw, contexts=("field_of_study",), keep_citations=True, context_features=False
    )
    assert set(data.node_types) == {"paper", "field_of_study"}
    assert "x" not in data["field_of_study"]
    assert data["paper", "cites", "paper"].edge_index.t().tolist() == [
        [1, 0],
        [2, 0],
        [5, 3],
    ]
    # existing context features are kept
    raw["author"].x = torch.ones(5, 3)
    assert torch.equal(to_target_context(raw)["author"].x, torch.ones(5, 3))
    with pytest.raises(ValueError, match="contexts must be among"):
        to_target_context(raw, contexts=("institution",))
    with pytest.raises(TypeError, match="HeteroData"):
        to_target_context(raw.to_homogeneous())
    raw["paper", "has_topic", "field_of_study"].edge_index = torch.tensor([[0], [9]])
    with pytest.raises(ValueError, match="point past"):
        to_target_context(raw)
