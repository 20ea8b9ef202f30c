import copy
import importlib
import os
import signal
from pathlib import Path

import pytest
import torch

from pyg_multisage.distributed import TableSpec, attach_tables, precompute, read_tables
from pyg_multisage.transforms import (
    ContextualWalkNeighbors,
    PinSageNeighbors,
    PPRNeighbors,
)

pytest.importorskip("pyarrow")

WALK = TableSpec("walk", "item", ["board"], num_walks=20, num_neighbors=5, seed=3)
PINSAGE = TableSpec("pinsage", "item", ["board"], num_walks=20, num_neighbors=5)
RELS = [("item", "in", "board"), ("board", "has", "item")]
PPR = TableSpec(
    "ppr",
    "item",
    relation_subsets={"ctx": RELS},
    top_k={"ctx": {"item": 6, "board": 3}},
)


def reference(graph, spec):
    """The transform that writes the same edge types, in one process."""
    data = copy.copy(graph)
    if spec.sampler == "walk":
        t = ContextualWalkNeighbors(
            "item", ["board"], num_walks=20, num_neighbors=5, seed=3, progress=False
        )
    elif spec.sampler == "pinsage":
        t = PinSageNeighbors("item", "board", num_walks=20, num_neighbors=5)
    else:
        t = PPRNeighbors("item", {"ctx": RELS}, {"ctx": {"item": 6, "board": 3}})
    return t(data)


def assert_same_edges(got, want, spec):
    for et in spec.edge_types():
        for key in ("edge_index", "edge_weight", "context", "context_type"):
            a, b = want[et].get(key), got[et].get(key)
            assert (a is None) == (b is None), (et, key)
            if isinstance(a, torch.Tensor):
                assert torch.equal(a, b), (et, key)
            else:
                assert a == b


@pytest.mark.parametrize("spec", [WALK, PINSAGE, PPR], ids=lambda s: s.sampler)
def test_in_process_tables_equal_the_transform(graph, csr_dirs, tmp_path, spec):
    out = precompute(csr_dirs[0], spec, tmp_path / "t", batch_size=70, progress=False)
    got = attach_tables(copy.copy(graph), out)
    assert_same_edges(got, reference(graph, spec), spec)


def test_shard_gaps_overlaps_and_foreign_graph_are_errors(graph, csr_dirs, tmp_path):
    out = precompute(csr_dirs[0], WALK, tmp_path / "t", batch_size=100, progress=False)
    sub = out / "item__walk_via_board__item"
    parts = sorted(sub.iterdir())
    assert [p.name for p in parts][0] == "part-000000000000-000000000100.parquet"
    gap = parts[1].rename(tmp_path / parts[1].name)
    with pytest.raises(ValueError, match=r"ids \[100, 200\) are in no shard"):
        read_tables(out)
    gap.rename(parts[1])
    (sub / "part-000000000150-000000000200.parquet").write_bytes(parts[1].read_bytes())
    with pytest.raises(ValueError, match="overlaps the shard before it"):
        read_tables(out)
    (sub / "part-000000000150-000000000200.parquet").unlink()
    read_tables(out)  # whole again
    small = copy.copy(graph)
    small["item"].x = small["item"].x[:10]
    with pytest.raises(
        ValueError, match="tables of 300 'item' nodes, the graph has 10"
    ):
        attach_tables(small, out)
    with pytest.raises(FileExistsError, match="already exists"):
        precompute(csr_dirs[0], WALK, out, progress=False)


def test_bad_input_leaves_nothing_behind(csr_dirs, tmp_path):
    spec = TableSpec("walk", "paper", ["venue"])
    with pytest.raises(ValueError, match="no node type 'paper'"):
        precompute(csr_dirs[0], spec, tmp_path / "t", progress=False)
    bad = TableSpec("walk", "item", ["nowhere"])
    with pytest.raises(ValueError):
        precompute(csr_dirs[0], bad, tmp_path / "t", progress=False)
    assert list(tmp_path.iterdir()) == []  # no folder, no temporary sibling
    with pytest.raises(ValueError, match="sampler must be one of"):
        TableSpec("dfs", "item", ["board"])


def test_ray_sharded_tables_identical_to_one_process(
    ray_session, graph, csr_dirs, tmp_path
):
    """Two actors over 7 ranges, every sampler, against the transforms."""
    for spec in (WALK, PPR):
        out = precompute(
            csr_dirs[0],
            spec,
            tmp_path / spec.sampler,
            batch_size=45,
            ray=True,
            num_workers=2,
            progress=False,
        )
        assert (
            len(list((out / "__".join(next(iter(spec.edge_types())))).iterdir())) == 7
        )
        got = attach_tables(copy.copy(graph), out)
        assert_same_edges(got, reference(graph, spec), spec)
    # PPR's merged graph: saved once beside the graph, mapped by both actors
    (merged,) = (Path(csr_dirs[0]) / "derived").iterdir()
    assert (merged / "manifest.json").is_file()


def test_ray_worker_failure_fails_the_job_and_writes_nothing(
    ray_session, csr_dirs, tmp_path
):
    bad = TableSpec("walk", "item", ["nowhere"])
    with pytest.raises(RuntimeError, match="Ray job _PrecomputeWorker failed"):
        precompute(
            csr_dirs[0],
            bad,
            tmp_path / "t",
            batch_size=100,
            ray=True,
            num_workers=1,
            progress=False,
        )
    assert list(tmp_path.iterdir()) == []


def _killing_worker(kill_at: int, marker):
    """A precompute actor class that dies by SIGKILL when handed the range
    starting at :obj:`kill_at`, after leaving a partial shard file behind (as
    a process killed mid-write does): once if :obj:`marker` (a path) is
    given, every time if it is None. Defined in a function so that Ray ships
    it by value."""
    base = importlib.import_module("pyg_multisage.distributed.precompute")

    class KilledWorker(base._PrecomputeWorker):
        def __call__(self, batch):
            los, his = [int(x) for x in batch["lo"]], [int(x) for x in batch["hi"]]
            if kill_at in los and (marker is None or not os.path.exists(marker)):
                if marker is not None:
                    open(marker, "w").close()
                sub = self.folder / base._dir_name(next(iter(self.spec.edge_types())))
                sub.mkdir(parents=True, exist_ok=True)
                hi = his[los.index(kill_at)]
                name = f".part-{kill_at:012d}-{hi:012d}.parquet"
                (sub / f"{name}.tmp-{os.getpid()}").write_bytes(b"PAR1 partial")
                os.kill(os.getpid(), signal.SIGKILL)
            return super().__call__(batch)

    return base, KilledWorker


def test_killed_actor_is_restarted_and_its_range_retried(
    ray_session, graph, csr_dirs, tmp_path, monkeypatch
):
    """An actor killed mid-run (SIGKILL on its 4th of 10 ranges): Ray
    restarts it, the range is retried, the tables equal the transform's and
    the killed write leaves no file behind."""
    marker = tmp_path / "killed"
    base, worker = _killing_worker(90, str(marker))
    monkeypatch.setattr(base, "_PrecomputeWorker", worker)
    out = precompute(
        csr_dirs[0],
        WALK,
        tmp_path / "t",
        batch_size=30,
        ray=True,
        num_workers=1,
        progress=False,
    )
    assert marker.exists()  # the actor was killed
    sub = out / "__".join(next(iter(WALK.edge_types())))
    assert len(list(sub.iterdir())) == 10  # no partial file left
    got = attach_tables(copy.copy(graph), out)
    assert_same_edges(got, reference(graph, WALK), WALK)


def test_actor_killed_every_time_fails_the_job_and_writes_nothing(
    ray_session, csr_dirs, tmp_path, monkeypatch
):
    base, worker = _killing_worker(90, None)
    monkeypatch.setattr(base, "_PrecomputeWorker", worker)
    with pytest.raises(RuntimeError, match="Ray job KilledWorker failed"):
        precompute(
            csr_dirs[0],
            WALK,
            tmp_path / "t",
            batch_size=30,
            ray=True,
            num_workers=1,
            progress=False,
            max_retries=1,
        )
    assert list(tmp_path.iterdir()) == []
