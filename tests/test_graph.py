import numpy as np
import pytest
import torch
from torch_geometric.data import Data, HeteroData

from pyg_multisage.graph import DEFAULT_EDGE_TYPE, HeteroCSR


def _dense(csr):
    out = np.zeros((csr.num_src, csr.num_dst), dtype=np.int64)
    for v in range(csr.num_src):
        for u in csr.indices[csr.indptr[v] : csr.indptr[v + 1]]:
            out[v, u] += 1
    return out


def test_csr_matches_edge_index(bipartite):
    g = HeteroCSR.from_data(bipartite)
    ei = bipartite["pin", "in", "board"].edge_index
    dense = np.zeros((30, 12), dtype=np.int64)
    np.add.at(dense, (ei[0].numpy(), ei[1].numpy()), 1)
    csr = g["pin", "in", "board"]
    assert csr.indptr.dtype == np.int64 and csr.indices.dtype == np.int64
    np.testing.assert_array_equal(_dense(csr), dense)
    assert g.num_nodes == {"pin": 30, "board": 12}


def test_undirected_adds_reverse_and_stays_within_twice_the_memory():
    data = HeteroData()
    data["a"].num_nodes = 5
    data["b"].num_nodes = 3
    ei = torch.tensor([[0, 1, 4, 4], [0, 2, 1, 2]])
    data["a", "r", "b"].edge_index = ei
    g = HeteroCSR.from_data(data, undirected=True)
    rev = g["b", "rev_r", "a"]
    np.testing.assert_array_equal(_dense(rev), _dense(g["a", "r", "b"]).T)
    assert sorted(g.edge_types) == [("a", "r", "b"), ("b", "rev_r", "a")]
    nbytes = sum(g[et].indptr.nbytes + g[et].indices.nbytes for et in g.edge_types)
    assert nbytes <= 2 * ei.numpy().nbytes + 8 * (5 + 3 + 2)


def test_homogeneous_undirected_symmetrizes():
    data = Data(edge_index=torch.tensor([[0, 1, 1], [1, 2, 2]]), num_nodes=4)
    g = HeteroCSR.from_data(data, undirected=True)
    d = _dense(g[DEFAULT_EDGE_TYPE])
    np.testing.assert_array_equal(d, d.T)
    assert d.sum() == 4  # duplicates coalesced


def test_weights_follow_their_edges():
    data = HeteroData()
    data["a"].num_nodes = 3
    data["b"].num_nodes = 2
    data["a", "r", "b"].edge_index = torch.tensor([[2, 0, 2], [0, 1, 1]])
    data["a", "r", "b"].edge_weight = torch.tensor([0.5, 1.0, 2.0])
    csr = HeteroCSR.from_data(data)["a", "r", "b"]
    np.testing.assert_array_equal(csr.indptr, [0, 1, 1, 3])
    np.testing.assert_array_equal(csr.indices, [1, 0, 1])
    np.testing.assert_allclose(csr.weight, [1.0, 0.5, 2.0])


def test_relation_transposes_on_demand(bipartite):
    g = HeteroCSR(
        {("pin", "in", "board"): bipartite["pin", "in", "board"].edge_index},
        {"pin": 30, "board": 12},
    )
    back = g.relation("board", "pin")
    np.testing.assert_array_equal(_dense(back), _dense(g["pin", "in", "board"]).T)


@pytest.mark.parametrize(
    "edge_index, match",
    [
        (torch.tensor([[0, 5], [0, 1]]), r"source id 5, outside \[0, 5\)"),
        (torch.tensor([[0, -1], [0, 1]]), r"source id -1, outside"),
        (torch.tensor([[0, 1], [0, 3]]), r"target id 3, outside \[0, 3\)"),
        (torch.tensor([0, 1, 2]), "shape"),
        (torch.tensor([[0.0], [1.0]]), "integer node ids"),
        ([[0, 1], [0, 1.5]], "integer node ids"),
    ],
)
def test_bad_edge_index(edge_index, match):
    with pytest.raises((ValueError, TypeError), match=match):
        HeteroCSR({("a", "r", "b"): edge_index}, {"a": 5, "b": 3})


def test_unknown_types_are_named(bipartite):
    with pytest.raises(ValueError, match="'user'"):
        HeteroCSR({("user", "r", "b"): torch.zeros(2, 0, dtype=torch.long)}, {"b": 1})
    g = HeteroCSR.from_data(bipartite)
    with pytest.raises(ValueError, match="'user'"):
        g.check_node_type("user")
    with pytest.raises(ValueError, match="not in the graph"):
        g.check_edge_type(("pin", "likes", "board"))


def test_importance_edges_are_not_structure(bipartite):
    from pyg_multisage.transforms import ContextualWalkNeighbors, PPRNeighbors

    data = PPRNeighbors(
        "pin",
        {"ib": [("pin", "in", "board"), ("board", "has", "pin")]},
        {"ib": {"pin": 3, "board": 2}},
    )(bipartite)
    assert ("board", "ppr_ib", "pin") in data.edge_types
    g = HeteroCSR.from_data(data)
    assert ("board", "ppr_ib", "pin") not in g
    assert g.relation("board", "pin") is g["board", "has", "pin"]
    assert ("board", "ppr_ib", "pin") in HeteroCSR.from_data(
        data, include_importance=True
    )
    # Walks on data that already holds PPR edges find the one structural relation.
    out = ContextualWalkNeighbors("pin", "board", num_walks=5, num_neighbors=3)(data)
    assert ("pin", "walk_via_board", "pin") in out.edge_types
