"""Walks over a partitioned graph equal the single-process tables exactly."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pyg_multisage.distributed.partitioned import (
    PartitionedWalk,
    PartitionedWalkError,
    PartitionManifest,
    partition_graph,
    partitioned_contextual_walk,
    partitioned_pinsage_walk,
    precompute_partitioned,
)
from pyg_multisage.graph import HeteroCSR
from pyg_multisage.sampling.superstep import reduce_contextual
from pyg_multisage.sampling.table import load_neighbor_tables
from pyg_multisage.sampling.walks import contextual_walk, pinsage_walk


def random_csr(rng: np.random.Generator, num_t, num_c, p, weighted, both=True):
    mask = rng.random((num_t, num_c)) < p
    t, c = np.nonzero(mask)
    ei = {("t", "in", "c"): torch.from_numpy(np.stack([t, c]))}
    w = {}
    if weighted:
        w[("t", "in", "c")] = torch.from_numpy(rng.random(len(t)) + 0.05)
        w[("t", "in", "c")][::5] = 0.0  # zero-weight edges are never walked
    if both:  # a reverse with its own order and weights
        order = rng.permutation(len(t))
        ei[("c", "has", "t")] = torch.from_numpy(np.stack([c[order], t[order]]))
        if weighted:
            w[("c", "has", "t")] = torch.from_numpy(rng.random(len(t)) + 0.05)
    return HeteroCSR(ei, {"t": num_t, "c": num_c}, w)


def assert_same(got, ref):
    assert got.seeds.tolist() == ref.seeds.tolist()
    assert got.ptr.tolist() == ref.ptr.tolist()
    assert got.neighbor.tolist() == ref.neighbor.tolist()
    assert got.weight.tolist() == ref.weight.tolist()
    assert (got.context is None) == (ref.context is None)
    if ref.context is not None:
        assert got.context.tolist() == ref.context.tolist()


# -- partitioning ----------------------------------------------------------------------
def test_partition_holds_each_nodes_rows_once(tmp_path):
    csr = random_csr(np.random.default_rng(0), 23, 7, 0.3, True, both=False)
    m = partition_graph(csr, tmp_path / "parts", 3)
    assert m.num_parts == 3 and m.bounds["t"] == [0, 7, 15, 23]
    # the missing reverse c -> t was stored so walks can step both ways
    assert {(et[0], et[2]) for et in m.edge_types} == {("t", "c"), ("c", "t")}
    for j, et in enumerate(m.edge_types):
        rel = csr[et]
        b = m.bounds[et[0]]
        indptr = [np.load(m.file(p, j, "indptr")) for p in range(3)]
        indices = [np.load(m.file(p, j, "indices")) for p in range(3)]
        weight = [np.load(m.file(p, j, "weight")) for p in range(3)]
        for p in range(3):
            assert indptr[p][0] == 0
            assert np.diff(indptr[p]).tolist() == rel.degree()[b[p] : b[p + 1]].tolist()
        assert np.concatenate(indices).tolist() == rel.indices.tolist()
        assert np.concatenate(weight).tolist() == rel.weight.tolist()
    meta = json.loads((tmp_path / "parts" / "manifest.json").read_text())
    assert meta["num_nodes"] == {"t": 23, "c": 7}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_partition_bad_input(tmp_path):
    csr = random_csr(np.random.default_rng(0), 5, 2, 0.5, False)
    with pytest.raises(ValueError, match="num_parts"):
        partition_graph(csr, tmp_path / "a", 0)
    with pytest.raises(TypeError, match="csr"):
        partition_graph({"t": 1}, tmp_path / "a", 2)
    (tmp_path / "b").mkdir()
    with pytest.raises(FileExistsError, match="out_dir"):
        partition_graph(csr, tmp_path / "b", 2)
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        PartitionManifest.load(tmp_path / "b")
    (tmp_path / "b" / "manifest.json").write_text("{}")
    with pytest.raises(ValueError, match="not a partition manifest"):
        PartitionManifest.load(tmp_path / "b")
    partition_graph(csr, tmp_path / "c", 2)
    with pytest.raises(ValueError, match="context 'x'"):
        partitioned_contextual_walk(tmp_path / "c", [0], target="t", context="x")
    with pytest.raises(ValueError, match="seeds"):
        partitioned_contextual_walk(tmp_path / "c", [5], target="t", context="c")
    with pytest.raises(ValueError, match="engine"):
        partitioned_pinsage_walk(
            tmp_path / "c", [0], target="t", context="c", engine="spark"
        )


def boyer_moore(contexts):
    """Alg. 2, lines 9-15, in plain Python: the dominant context of a stream."""
    candidate, count = -1, 0
    for c in contexts:
        if c == candidate:
            count += 1
        elif count > 0:
            count -= 1
        else:
            candidate, count = c, 1
    return candidate


def test_vote_replay_is_in_walk_order():
    # Records of one (seed, node) pair arrive out of walk order; the vote
    # runs over the walks' first contexts in walk order.
    contexts = [2, 1, 1, 1, 2, 2, 3]
    walks = np.array([5, 0, 3, 6, 1, 2, 4])
    rec = np.stack(
        [np.zeros(7, np.int64), walks, np.full(7, 9), np.take(contexts, walks)], 1
    )
    out = reduce_contextual(rec)
    ordered = np.asarray(contexts)
    assert boyer_moore(ordered.tolist()) == 3  # not the majority (1 and 2: 3 each)
    assert out.tolist() == [[0, 9, 7, boyer_moore(ordered.tolist())]]


# -- exactness on random graphs (in-process workers, no Ray) ---------------------------
@settings(max_examples=40, deadline=None)
@given(
    num_t=st.integers(1, 30),
    num_c=st.integers(1, 8),
    p=st.floats(0.05, 0.6),
    weighted=st.booleans(),
    both=st.booleans(),
    num_parts=st.integers(1, 4),
    prob=st.sampled_from([0.0, 0.3, 0.7, 1.0]),
    contextual=st.booleans(),
    graph_seed=st.integers(0, 2**16),
    walk_seed=st.integers(0, 2**40),
    batch_walks=st.sampled_from([7, 1000]),
)
def test_partitioned_walks_equal_single_process(
    num_t,
    num_c,
    p,
    weighted,
    both,
    num_parts,
    prob,
    contextual,
    graph_seed,
    walk_seed,
    batch_walks,
):
    rng = np.random.default_rng(graph_seed)
    csr = random_csr(rng, num_t, num_c, p, weighted, both)
    seeds = rng.integers(0, num_t, size=min(num_t, 12))
    kw = dict(target="t", context="c", num_neighbors=4, seed=walk_seed)
    with tempfile.TemporaryDirectory() as tmp:
        parts = partition_graph(csr, Path(tmp) / "parts", num_parts)
        if contextual:
            ref = contextual_walk(
                csr, seeds, num_walks=20, walk_length=3, restart_prob=prob, **kw
            )
            got = partitioned_contextual_walk(
                parts,
                seeds,
                num_walks=20,
                walk_length=3,
                restart_prob=prob,
                batch_walks=batch_walks,
                **kw,
            )
        else:
            ref = pinsage_walk(
                csr, seeds, num_walks=20, num_traversals=3, termination_prob=prob, **kw
            )
            got = partitioned_pinsage_walk(
                parts,
                seeds,
                num_walks=20,
                num_traversals=3,
                termination_prob=prob,
                batch_walks=batch_walks,
                **kw,
            )
    assert_same(got, ref)


def test_walkers_cross_parts_and_bytes_are_counted(tmp_path):
    csr = random_csr(np.random.default_rng(5), 30, 6, 0.3, False)
    parts = partition_graph(csr, tmp_path / "p", 3)
    walk = PartitionedWalk(
        parts,
        target="t",
        context="c",
        contextual=True,
        num_walks=10,
        num_traversals=3,
        prob=0.3,
        num_neighbors=5,
    )
    seen = []
    walk.run(np.arange(30), on_superstep=lambda i, workers: seen.append(i))
    s = walk.stats
    assert s.seeds == 30 and s.walkers_sent > 0 and s.supersteps == max(seen)
    # a walker is 56 bytes, a walk record 32: nothing else travels
    assert s.bytes_sent >= 56 * s.walkers_sent
    assert s.bytes_sent <= 56 * s.walkers_sent + 32 * 300
    mem = walk.memory()
    total = sum(m["mapped"] for m in mem)
    assert total == parts.relation_nbytes(0) + parts.relation_nbytes(1)


# -- DBLP ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dblp_csr(dblp_dir):
    from pyg_multisage.datasets.dblp import read_dblp_raw

    return HeteroCSR.from_data(read_dblp_raw(dblp_dir))


@pytest.mark.parametrize("num_parts", [1, 2, 3])
def test_dblp_tables_equal_single_process(dblp_csr, num_parts, tmp_path):
    parts = partition_graph(dblp_csr, tmp_path / "parts", num_parts)
    n = dblp_csr.num_nodes["paper"]
    seeds = np.random.default_rng(0).choice(n, 300, replace=False)
    for context in ("venue", "term"):
        ref = contextual_walk(
            dblp_csr, seeds, target="paper", context=context, num_walks=50, seed=3
        )
        got = partitioned_contextual_walk(
            parts, seeds, target="paper", context=context, num_walks=50, seed=3
        )
        assert_same(got, ref)
    ref = pinsage_walk(dblp_csr, seeds, target="paper", context="term", seed=3)
    got = partitioned_pinsage_walk(parts, seeds, target="paper", context="term", seed=3)
    assert_same(got, ref)


# -- Ray actors ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    if started:
        ray.shutdown()


@pytest.mark.slow
def test_ray_actors_equal_single_process_and_a_killed_actor_writes_nothing(
    ray_cluster, tmp_path
):
    ray = ray_cluster
    csr = random_csr(np.random.default_rng(2), 40, 9, 0.15, True)
    parts = partition_graph(csr, tmp_path / "parts", 2)
    kw = dict(target="t", num_walks=30, num_neighbors=5, seed=2)
    out = tmp_path / "tables" / "walk.pt"
    precompute_partitioned(parts, out, contexts=["c"], engine="ray", num_cpus=0.5, **kw)
    saved = load_neighbor_tables(out)
    assert saved["sampler"] == "walk" and saved["target"] == "t"
    ref = contextual_walk(csr, np.arange(40), context="c", **kw)
    assert_same(saved["tables"]["c"], ref)

    def kill(i, workers):
        if i == 1:
            ray.kill(workers[1])

    out2 = tmp_path / "tables" / "killed.pt"
    with pytest.raises(PartitionedWalkError, match="part 1 died"):
        precompute_partitioned(
            parts,
            out2,
            contexts=["c"],
            engine="ray",
            num_cpus=0.5,
            on_superstep=kill,
            **kw,
        )
    assert sorted(p.name for p in out2.parent.iterdir()) == ["walk.pt"]


# -- the command ------------------------------------------------------------------
def test_cli_precompute_equals_sample(tmp_path, capsys):
    from pyg_multisage.cli import main

    data = ["--dataset", "synthetic", "--synthetic-size", "200", "--num-walks", "20"]
    a, b = tmp_path / "sample.pt", tmp_path / "parts.pt"
    assert main(["sample", *data, "--out", str(a)]) == 0
    argv = ["precompute", *data, "--partitions", "3", "--engine", "local"]
    assert main([*argv, "--out", str(b), "--parts-dir", str(tmp_path / "p")]) == 0
    ref, got = load_neighbor_tables(a), load_neighbor_tables(b)
    assert ref["tables"].keys() == got["tables"].keys()
    for c in ref["tables"]:
        assert_same(got["tables"][c], ref["tables"][c])
    assert PartitionManifest.load(tmp_path / "p").num_parts == 3
    capsys.readouterr()
    assert main([*argv[:-4], "--partitions", "0", "--out", str(b)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "pyg-multisage precompute: error: --partitions must be >= 1, got 0"
