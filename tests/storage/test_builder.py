"""Streaming CSR builder: equals HeteroCSR built in memory; bad shards give
clear errors and leave nothing behind."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pyg_multisage.graph import HeteroCSR
from pyg_multisage.storage import build_csr_from_shards
from pyg_multisage.storage.builder import iter_shard

IB = ("item", "in", "board")
IT = ("item", "tagged", "tag")
II = ("item", "sim", "item")
NUM = {"item": 50, "board": 9, "tag": 4}


def edges(n_src, n_dst, e, seed):
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(0, n_src, e), rng.integers(0, n_dst, e)])


@pytest.fixture
def shards(tmp_path):
    """Three relations split into shards of uneven sizes, duplicates kept."""
    ib = edges(50, 9, 400, 0)
    it = edges(50, 4, 90, 1).astype(np.int32)
    ii = edges(50, 50, 120, 2)
    out = {IB: [], IT: [], II: []}
    for et, arr, cuts in (
        (IB, ib, [0, 7, 150, 400]),
        (IT, it, [0, 90]),
        (II, ii, [0, 0, 60, 120]),
    ):
        for k, (a, b) in enumerate(zip(cuts[:-1], cuts[1:], strict=True)):
            f = tmp_path / f"{et[1]}_{k}.npy"
            np.save(f, arr[:, a:b])
            out[et].append(f)
    return out, {IB: ib, IT: it, II: ii}


def assert_same(a: HeteroCSR, b: HeteroCSR):
    assert a.node_types == b.node_types and a.num_nodes == b.num_nodes
    assert sorted(a.edge_types) == sorted(b.edge_types)
    for et in a.edge_types:
        assert np.array_equal(a[et].indptr, b[et].indptr), et
        assert np.array_equal(a[et].indices, b[et].indices), et


@pytest.mark.parametrize("chunk", [1, 13, 1 << 20])
def test_equals_in_memory_build(shards, tmp_path, chunk):
    files, arrays = shards
    fp = build_csr_from_shards(
        tmp_path / "g", files, NUM, reverse=True, chunk_size=chunk
    )
    built = HeteroCSR.load(tmp_path / "g", verify=True)
    assert built.fingerprint == fp
    ref = HeteroCSR(arrays, NUM, undirected=False)
    for et in (IB, IT):  # reverse relations as HeteroCSR(undirected=True) adds
        ref._csr[(et[2], f"rev_{et[1]}", et[0])] = ref[et].transpose()
    assert_same(built, ref)
    assert built[IB].indices.dtype == np.int32
    # One direction only, and int64 indices:
    build_csr_from_shards(
        tmp_path / "h", files, NUM, index_dtype="int64", chunk_size=chunk
    )
    assert_same(HeteroCSR.load(tmp_path / "h"), HeteroCSR(arrays, NUM))
    # The undirected reference of HeteroCSR itself, for bipartite relations:
    und = HeteroCSR({IB: arrays[IB]}, NUM, undirected=True)
    build_csr_from_shards(
        tmp_path / "u", {IB: files[IB]}, NUM, reverse=True, chunk_size=chunk
    )
    assert_same(HeteroCSR.load(tmp_path / "u"), und)


def test_saved_and_streamed_directories_agree(shards, tmp_path):
    files, arrays = shards
    fp = build_csr_from_shards(tmp_path / "g", files, NUM)
    assert HeteroCSR(arrays, NUM).save(tmp_path / "s") == fp


def test_parquet_shards(shards, tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    files, arrays = shards
    pfiles = []
    for k, f in enumerate(files[IB]):
        arr = np.load(f)
        p = tmp_path / f"ib_{k}.parquet"
        pq.write_table(pa.table({"src": arr[0], "dst": arr[1].astype(np.int32)}), p)
        pfiles.append(p)
    build_csr_from_shards(
        tmp_path / "g", {IB: pfiles}, NUM, reverse=True, chunk_size=50
    )
    build_csr_from_shards(tmp_path / "n", {IB: files[IB]}, NUM, reverse=True)
    assert_same(HeteroCSR.load(tmp_path / "g"), HeteroCSR.load(tmp_path / "n"))
    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"src": [0, 1], "to": [1, 2]}), bad)
    with pytest.raises(ValueError, match="lacks column 'dst'"):
        build_csr_from_shards(tmp_path / "b", {IB: [bad]}, NUM)
    bad = tmp_path / "bad2.parquet"
    pq.write_table(pa.table({"src": [0.5], "dst": [1]}), bad)
    with pytest.raises(TypeError, match="'src'.*integer"):
        build_csr_from_shards(tmp_path / "b", {IB: [bad]}, NUM)
    assert not (tmp_path / "b").exists()


def test_iter_shard_chunks(tmp_path):
    arr = edges(10, 10, 25, 3)
    np.save(tmp_path / "s.npy", arr)
    parts = list(iter_shard(tmp_path / "s.npy", 10))
    assert [len(s) for s, _ in parts] == [10, 10, 5]
    assert np.array_equal(np.concatenate([s for s, _ in parts]), arr[0])
    assert np.array_equal(np.concatenate([d for _, d in parts]), arr[1])


def leftovers(path):
    return [p.name for p in path.iterdir() if p.name.startswith(".")]


def test_bad_shards(shards, tmp_path):
    files, _ = shards
    out = tmp_path / "g"

    def fails(exc, match, shard_map, num=NUM):
        with pytest.raises(exc, match=match):
            build_csr_from_shards(out, shard_map, num, reverse=True)
        assert not out.exists() and not leftovers(tmp_path)

    fails(FileNotFoundError, r"nope\.npy of \('item'", {IB: [tmp_path / "nope.npy"]})
    np.save(tmp_path / "f.npy", np.zeros((2, 3), np.float32))
    fails(TypeError, r"f\.npy must hold integer ids", {IB: [tmp_path / "f.npy"]})
    np.save(tmp_path / "s.npy", np.zeros((3, 3), np.int64))
    fails(
        ValueError,
        r"s\.npy must have shape \[2, num_edges\]",
        {IB: [tmp_path / "s.npy"]},
    )
    (tmp_path / "t.npy").write_bytes(b"\x93NUMPY garbage")
    fails(ValueError, r"t\.npy is not a valid \.npy", {IB: [tmp_path / "t.npy"]})
    (tmp_path / "e.csv").write_text("0,1\n")
    fails(ValueError, r"e\.csv must be a \.npy", {IB: [tmp_path / "e.csv"]})
    # an id out of range in the last shard, after others were read:
    np.save(tmp_path / "r.npy", np.array([[0, 49], [3, 9]]))
    fails(
        ValueError,
        r"r\.npy of \('item', 'in', 'board'\) holds 'board' id 9, outside \[0, 9\)",
        {IB: [*files[IB], tmp_path / "r.npy"], IT: files[IT]},
    )
    np.save(tmp_path / "n.npy", np.array([[0, -1], [3, 2]]))
    fails(ValueError, r"'item' id -1", {IB: [tmp_path / "n.npy"]})
    fails(ValueError, "edge type", {("item", "x", "user"): files[IB]})
    fails(TypeError, "list of files", {IB: files[IB][0]})
    with pytest.raises(ValueError, match="chunk_size"):
        build_csr_from_shards(out, files, NUM, chunk_size=0)
    with pytest.raises(ValueError, match=r"num_nodes\['item'\]"):
        build_csr_from_shards(out, files, {**NUM, "item": -1})
    build_csr_from_shards(out, files, NUM)
    with pytest.raises(FileExistsError):
        build_csr_from_shards(out, files, NUM)


def test_walks_on_streamed_graph_equal_in_memory(shards, tmp_path):
    from pyg_multisage.sampling.walks import contextual_walk

    files, arrays = shards
    build_csr_from_shards(tmp_path / "g", {IB: files[IB]}, NUM, reverse=True)
    mm = HeteroCSR.load(tmp_path / "g")
    ref = HeteroCSR({IB: arrays[IB]}, NUM, undirected=True)
    seeds = torch.arange(0, 50, 3)
    kw = dict(target="item", context="board", num_walks=20, num_neighbors=5, seed=1)
    a, b = contextual_walk(mm, seeds, **kw), contextual_walk(ref, seeds, **kw)
    assert torch.equal(a.neighbor, b.neighbor) and torch.equal(a.context, b.context)
    assert torch.equal(a.ptr, b.ptr) and a.neighbor.numel() > 0


def test_out_of_core_path_never_imports_pyg(shards, tmp_path):
    """Building, loading (memory-mapped) and walking a saved graph, and the
    precompute module its workers import, load no PyG, so a process of the
    out-of-core path does not carry PyG's ~150 MB (measured:
    ``benchmarks/scale.py``); the memory-mapped walk itself is checked
    against the in-memory one above."""
    import subprocess
    import sys

    graph = tmp_path / "graph"
    build_csr_from_shards(graph, shards[0], NUM, reverse=True)
    code = f"""
import sys
import numpy as np
from pyg_multisage.graph import HeteroCSR
from pyg_multisage.sampling import contextual_walk, ppr_topk
import pyg_multisage.distributed.precompute
from pyg_multisage.storage import build_csr_from_shards
csr = HeteroCSR.load({str(graph)!r}, mmap=True)
t = contextual_walk(csr, np.arange(50), target="item", context="board",
                    num_walks=20, walk_length=2, num_neighbors=3, seed=0)
assert t.ptr.shape[0] == 51 and t.neighbor.numel() > 0
print(sorted(m for m in sys.modules if m.split(".")[0] == "torch_geometric"))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]", proc.stdout
