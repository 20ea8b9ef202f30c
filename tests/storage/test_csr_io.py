"""HeteroCSR.save / HeteroCSR.load: round trip, kernels on memory maps, and
clear errors for damaged directories."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from graphs import random_bipartite

from pyg_multisage.graph import HeteroCSR
from pyg_multisage.sampling.ppr import ppr_topk
from pyg_multisage.sampling.prune import degree_prune
from pyg_multisage.sampling.walks import contextual_walk, pinsage_walk

PB, BP = ("pin", "in", "board"), ("board", "has", "pin")


def tables_equal(a, b):
    assert torch.equal(a.ptr, b.ptr)
    assert torch.equal(a.neighbor, b.neighbor)
    assert torch.equal(a.weight, b.weight)
    if a.context is None:
        assert b.context is None
    else:
        assert torch.equal(a.context, b.context)


@pytest.fixture
def graph():
    data = random_bipartite(40, 12, 150, seed=3, weighted=True)
    gen = torch.Generator().manual_seed(1)
    data["pin", "likes", "pin"].edge_index = torch.randint(
        0, 40, (2, 70), generator=gen
    )
    return data


def test_round_trip_memmapped(graph, tmp_path):
    csr = HeteroCSR.from_data(graph)
    fp = csr.save(tmp_path / "g")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    loaded = HeteroCSR.load(tmp_path / "g", verify=True)
    assert loaded.fingerprint == fp
    assert loaded.node_types == csr.node_types  # order kept (PPR offsets)
    assert loaded.num_nodes == csr.num_nodes
    assert loaded.edge_types == csr.edge_types
    for et in csr.edge_types:
        a, b = csr[et], loaded[et]
        assert np.array_equal(a.indptr, b.indptr)
        assert np.array_equal(a.indices, b.indices)
        assert b.indices.dtype == np.int32  # 'auto': ids fit in int32
        assert not b.indices.flags.writeable  # read-only memory map
        assert a.num_dst == b.num_dst
        if a.weight is None:
            assert b.weight is None
        else:
            assert np.array_equal(a.weight, b.weight)
    manifest = json.loads((tmp_path / "g" / "manifest.json").read_text())
    assert manifest["meta"]["node_types"] == [["pin", 40], ["board", 12]]
    # Same content, same fingerprint; other content, another one.
    assert HeteroCSR.from_data(graph).save(tmp_path / "g2", index_dtype="int64") != fp
    assert csr.save(tmp_path / "g3") == fp
    eager = HeteroCSR.load(tmp_path / "g2", mmap=False)
    assert eager[PB].indices.dtype == np.int64 and eager[PB].indices.flags.writeable


def test_kernels_on_memmap_equal_in_memory(graph, tmp_path):
    csr = HeteroCSR.from_data(graph)
    csr.save(tmp_path / "g")
    mm = HeteroCSR.load(tmp_path / "g")
    seeds = torch.tensor([0, 5, 5, 17, 39])
    cfg = dict(num_walks=40, walk_length=3, num_neighbors=5, seed=4)
    a = contextual_walk(csr, seeds, target="pin", context="board", **cfg)
    b = contextual_walk(mm, seeds, target="pin", context="board", **cfg)
    tables_equal(a, b)
    assert a.neighbor.numel() > 0 and a.context is not None
    cfg = dict(num_walks=40, num_traversals=3, num_neighbors=5, seed=4)
    a = pinsage_walk(csr, seeds, target="pin", context="board", **cfg)
    b = pinsage_walk(mm, seeds, target="pin", context="board", **cfg)
    tables_equal(a, b)
    rels = [PB, BP, ("pin", "likes", "pin")]
    kw = dict(source_type="pin", relations=rels, top_k={"pin": 4, "board": 3})
    a, b = ppr_topk(csr, seeds, **kw), ppr_topk(mm, seeds, **kw)
    for t in ("pin", "board"):
        tables_equal(a[t], b[t])
    keep_a = degree_prune(csr[PB], d_min=1, alpha=0.5, seed=2)
    keep_b = degree_prune(mm[PB], d_min=1, alpha=0.5, seed=2)
    assert torch.equal(keep_a, keep_b) and not bool(keep_a.all())


def test_walks_use_the_memory_map_in_place(graph, tmp_path):
    """A memory-mapped relation is walked as it is on disk, offsets and
    neighbor ids (no anonymous copy); an in-memory relation through int32
    copies of both."""
    from pyg_multisage.sampling.walks import _walk_arrays

    csr = HeteroCSR.from_data(graph)
    csr.save(tmp_path / "g")
    mm = HeteroCSR.load(tmp_path / "g")
    for src, dst in (("pin", "board"), ("board", "pin")):
        arrays, rel = _walk_arrays(mm, src, dst), mm.relation(src, dst)
        assert np.shares_memory(arrays.indices, rel.indices)
        assert np.shares_memory(arrays.indptr, rel.indptr)
        arrays, rel = _walk_arrays(csr, src, dst), csr.relation(src, dst)
        assert arrays.indptr.dtype == np.int32
        assert not np.shares_memory(arrays.indptr, rel.indptr)


def test_existing_directory_and_bad_arguments(graph, tmp_path):
    csr = HeteroCSR.from_data(graph)
    csr.save(tmp_path / "g")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        csr.save(tmp_path / "g")
    small = HeteroCSR.from_data(random_bipartite(5, 3, 6))
    small.save(tmp_path / "g", overwrite=True)
    assert HeteroCSR.load(tmp_path / "g").num_nodes == {"pin": 5, "board": 3}
    with pytest.raises(ValueError, match="index_dtype"):
        csr.save(tmp_path / "h", index_dtype="int16")
    assert not (tmp_path / "h").exists()
    with pytest.raises(FileNotFoundError, match="not a directory"):
        HeteroCSR.load(tmp_path / "nothing")


def saved(graph, tmp_path):
    path = tmp_path / "g"
    HeteroCSR.from_data(graph).save(path)
    return path


def test_missing_file(graph, tmp_path):
    path = saved(graph, tmp_path)
    (path / "e1.indices.npy").unlink()
    with pytest.raises(ValueError, match=r"e1\.indices\.npy is missing"):
        HeteroCSR.load(path)


def test_truncated_file(graph, tmp_path):
    path = saved(graph, tmp_path)
    f = path / "e0.indices.npy"
    f.write_bytes(f.read_bytes()[:-4])
    with pytest.raises(ValueError, match=r"e0\.indices\.npy is truncated"):
        HeteroCSR.load(path)


def test_file_of_another_graph(graph, tmp_path):
    path = saved(graph, tmp_path)
    np.save(path / "e0.indptr.npy", np.zeros(7, np.int64))
    with pytest.raises(ValueError, match=r"e0\.indptr\.npy holds <i8 \[7\]"):
        HeteroCSR.load(path)


def test_changed_content_found_by_verify(graph, tmp_path):
    path = saved(graph, tmp_path)
    f = path / "e0.indices.npy"
    arr = np.load(f)
    arr[0] = (arr[0] + 1) % 12
    np.save(f, arr)
    HeteroCSR.load(path)  # same dtype and size: only a re-hash can tell
    with pytest.raises(ValueError, match=r"e0\.indices\.npy does not match"):
        HeteroCSR.load(path, verify=True)


def test_manifest_edited_or_foreign(graph, tmp_path):
    path = saved(graph, tmp_path)
    other = tmp_path / "o"
    HeteroCSR.from_data(random_bipartite(40, 12, 150, seed=9)).save(other)
    with pytest.raises(ValueError, match="holds graph"):
        HeteroCSR.load(other, fingerprint=HeteroCSR.load(path).fingerprint)
    m = path / "manifest.json"
    manifest = json.loads(m.read_text())
    manifest["meta"]["node_types"][0][1] = 41
    m.write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="edited after writing"):
        HeteroCSR.load(path)
    m.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        HeteroCSR.load(path)
    m.unlink()
    with pytest.raises(ValueError, match="manifest.json is missing"):
        HeteroCSR.load(path)


def test_from_csr_validates(graph):
    csr = HeteroCSR.from_data(graph)
    c = csr[PB]
    bad = type(c)(c.indptr, c.indices + 12, None, c.num_dst)
    with pytest.raises(ValueError, match="outside"):
        HeteroCSR.from_csr({PB: bad}, csr.num_nodes)
    with pytest.raises(ValueError, match="rows"):
        HeteroCSR.from_csr({PB: c}, {"pin": 3, "board": 12})


# -- the merged PPR graph, saved beside a memory-mapped graph --------------------
PPR = dict(
    source_type="pin",
    relations=[PB, BP, ("pin", "likes", "pin")],
    top_k={"pin": 4, "board": 3},
)


def test_ppr_merged_graph_saved_and_mapped(graph, tmp_path, monkeypatch):
    """On a memory-mapped view ppr_topk writes its merged graph once to
    ``<graph>/derived`` and maps it (read-only file pages); later views of
    the graph map the same folder without rebuilding it."""
    import pyg_multisage.sampling.ppr as ppr_mod

    path = saved(graph, tmp_path)
    seeds = torch.arange(40)
    want = ppr_topk(HeteroCSR.from_data(graph), seeds, **PPR)
    mm = HeteroCSR.load(path)
    assert mm.derived_dir == path / "derived"
    got = ppr_topk(mm, seeds, **PPR)
    for t in PPR["top_k"]:
        tables_equal(want[t], got[t])
    (folder,) = (path / "derived").iterdir()
    assert sorted(p.name for p in folder.iterdir()) == [
        "edges.npy",
        "indptr.npy",
        "manifest.json",
    ]
    rels = tuple(sorted(PPR["relations"]))
    indptr, edges = ppr_mod._merged_graph(mm, rels)
    assert not edges.flags.writeable and isinstance(edges.base, np.memmap)
    HeteroCSR.load(path, verify=True)  # the graph's own manifest is untouched

    def no_build(*args, **kwargs):
        raise AssertionError("rebuilt")

    monkeypatch.setattr(ppr_mod, "_merged_csr", no_build)
    again = ppr_topk(HeteroCSR.load(path), seeds, **PPR)
    for t in PPR["top_k"]:
        tables_equal(want[t], again[t])
    # in memory unless asked: no folder, and the build is needed
    with pytest.raises(AssertionError, match="rebuilt"):
        ppr_topk(HeteroCSR.load(path, mmap=False), seeds, **PPR)


def test_ppr_merged_graph_of_another_graph_or_not_writable(graph, tmp_path):
    path = saved(graph, tmp_path)
    other = tmp_path / "o"
    data = random_bipartite(40, 12, 150, seed=9)
    data["pin", "likes", "pin"].edge_index = graph["pin", "likes", "pin"].edge_index
    HeteroCSR.from_data(data).save(other)
    seeds = torch.arange(10)
    ppr_topk(HeteroCSR.load(other), seeds, **PPR)
    # the other graph's folder copied in: refused, named
    shutil.copytree(other / "derived", path / "derived")
    (folder,) = (path / "derived").iterdir()
    with pytest.raises(ValueError, match=f"{folder.name} holds arrays derived"):
        ppr_topk(HeteroCSR.load(path), seeds, **PPR)
    # a derived_dir that cannot be created: warned, built in memory, same result
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    mm = HeteroCSR.load(path, derived_dir=blocker / "derived")
    with pytest.warns(UserWarning, match="cannot write derived arrays"):
        got = ppr_topk(mm, seeds, **PPR)
    want = ppr_topk(HeteroCSR.from_data(graph), seeds, **PPR)
    for t in PPR["top_k"]:
        tables_equal(want[t], got[t])


def test_interrupted_merged_graph_build_leaves_nothing(graph, tmp_path, monkeypatch):
    import pyg_multisage.sampling.ppr as ppr_mod

    path = saved(graph, tmp_path)
    real = ppr_mod._merged_csr

    def crash(csr, relations, folder=None):
        real(csr, relations, folder)  # files written, manifest not yet
        raise KeyboardInterrupt

    monkeypatch.setattr(ppr_mod, "_merged_csr", crash)
    with pytest.raises(KeyboardInterrupt):
        ppr_topk(HeteroCSR.load(path), torch.arange(3), **PPR)
    assert list((path / "derived").iterdir()) == []
    monkeypatch.setattr(ppr_mod, "_merged_csr", real)
    ppr_topk(HeteroCSR.load(path), torch.arange(3), **PPR)
    assert len(list((path / "derived").iterdir())) == 1


@pytest.mark.parametrize("size", [0, 3, 4, 8, 13])
def test_digest_file_reads_in_chunks(tmp_path, monkeypatch, size):
    """The chunked digest equals hashlib's over the whole file, for files
    shorter than, equal to and several times one (here 4-byte) buffer."""
    import hashlib

    from pyg_multisage import _arraydir

    monkeypatch.setattr(_arraydir, "_CHUNK", 4)
    data = np.random.default_rng(size).bytes(size)
    f = tmp_path / "x.bin"
    f.write_bytes(data)
    want = hashlib.blake2b(data, digest_size=16).hexdigest()
    assert _arraydir.digest_file(f) == want
