"""The examples run end to end on tiny inputs (no network, no downloads)."""

from __future__ import annotations

import gzip
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from example_scripts import EXAMPLES, load_example
from torch_geometric.data import HeteroData


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models run fastest on one thread (the CPU is shared)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ---------------------------------------------------------------------------
# A tiny ogbn-mag folder in OGB's on-disk format (as PyG's OGB_MAG reads it)
# ---------------------------------------------------------------------------
def _gz(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as f:
        f.write("".join(line + "\n" for line in lines))


def write_mag(root: Path, num_papers: int = 120, num_venues: int = 6) -> dict:
    """Writes root/mag/raw (gzipped headerless CSVs, time split by year):
    venue-clustered features, authors, fields and citations."""
    gen = torch.Generator().manual_seed(0)
    num = {"author": 40, "field_of_study": 18, "institution": 3, "paper": num_papers}

    def rint(hi: int) -> int:
        return int(torch.randint(0, hi, (1,), generator=gen))

    venue = torch.randint(0, num_venues, (num_papers,), generator=gen)
    x = torch.randn(num_venues, 8, generator=gen)[venue]
    x = x + 0.5 * torch.randn(num_papers, 8, generator=gen)
    year = torch.randint(2015, 2020, (num_papers,), generator=gen)

    def links(num_ctx: int) -> list[tuple[int, int]]:
        group = num_ctx // num_venues
        rows = []
        for p in range(num_papers):
            for _ in range(1 + rint(3)):
                own = int(venue[p]) * group + rint(group)
                rows.append((p, own if rint(5) else rint(num_ctx)))
        return rows

    edges = {
        ("author", "affiliated_with", "institution"): [(a, a % 3) for a in range(40)],
        ("author", "writes", "paper"): [(a, p) for p, a in links(40)],
        ("paper", "cites", "paper"): [
            (p, int(same[rint(same.numel())]))
            for p in range(num_papers)
            for same in [(venue == venue[p]).nonzero().view(-1)]
            for _ in range(3)
        ],
        ("paper", "has_topic", "field_of_study"): links(18),
    }
    raw = root / "mag" / "raw"
    _gz(
        raw / "node-feat/paper/node-feat.csv.gz",
        [",".join(f"{v:.6f}" for v in r) for r in x.tolist()],
    )
    _gz(raw / "node-feat/paper/node_year.csv.gz", [str(v) for v in year.tolist()])
    _gz(raw / "node-label/paper/node-label.csv.gz", [str(v) for v in venue.tolist()])
    _gz(
        raw / "num-node-dict.csv.gz",
        [",".join(num), ",".join(str(v) for v in num.values())],
    )
    for edge_type, rows in edges.items():
        folder = raw / "relations" / "___".join(edge_type)
        _gz(folder / "edge.csv.gz", [f"{a},{b}" for a, b in rows])
        _gz(folder / "num-edge-list.csv.gz", [str(len(rows))])
    split = {"train": year <= 2017, "valid": year == 2018, "test": year == 2019}
    for name, mask in split.items():
        _gz(
            raw / f"split/time/paper/{name}.csv.gz",
            [str(i) for i in mask.nonzero().view(-1).tolist()],
        )
    return {"venue": venue, "year": year, "cites": edges[("paper", "cites", "paper")]}


@pytest.fixture(scope="module")
def mag_root(tmp_path_factory) -> tuple[Path, dict]:
    pytest.importorskip("pandas")
    root = tmp_path_factory.mktemp("ogb_mag")
    return root, write_mag(root)


def test_ogbn_mag_subsample_and_pairs(mag_root):
    root, truth = mag_root
    ex = load_example("ogbn_mag")
    task = ex.load_mag_task(str(root), max_papers=70, seed=3)
    data = task.data
    paper = data["paper"]
    assert paper.num_nodes == 70 == paper.x.size(0)
    # whole venues except at most one (the last, cut at random)
    kept = torch.bincount(paper.y, minlength=6)
    full = torch.bincount(truth["venue"], minlength=6)
    partial = [v for v in range(6) if 0 < kept[v] < full[v]]
    assert len(partial) <= 1
    # recover original ids through (year, venue, features) is ambiguous; use
    # the unsampled task as the reference instead
    whole = ex.load_mag_task(str(root), max_papers=0)
    assert whole.data["paper"].num_nodes == 120
    assert ("paper", "cites", "paper") not in whole.data.edge_types
    cites = torch.tensor(truth["cites"]).t()
    cites = cites[:, cites[0] != cites[1]]
    expect = {tuple(e) for e in cites.t().tolist()}
    got = torch.cat(list(whole.pairs.values()), 1)
    assert {tuple(e) for e in got.t().tolist()} == expect
    assert got.size(1) == len(expect)  # deduplicated
    year = truth["year"]
    assert (year[whole.pairs["train"][0]] <= 2017).all()
    assert (year[whole.pairs["val"][0]] == 2018).all()
    assert (year[whole.pairs["test"][0]] == 2019).all()
    # sampled contexts are those linked to kept papers, relabeled densely
    for ctype, fwd, _ in ex.OGBN_MAG_CONTEXTS:
        ei = data["paper", fwd, ctype].edge_index
        assert torch.equal(torch.unique(ei[1]), torch.arange(data[ctype].num_nodes))
        assert int(ei[0].max()) < 70


def test_cap_pairs():
    from pyg_multisage import experiment as ex

    pairs = torch.stack([torch.arange(50), torch.arange(50) + 100])
    capped = ex.cap_pairs(pairs, 10, seed=1)
    assert capped.size(1) == 10
    assert torch.equal(capped[1], capped[0] + 100)  # whole pairs
    assert capped[0].tolist() == sorted(set(capped[0].tolist()))  # order kept
    assert torch.equal(capped, ex.cap_pairs(pairs, 10, seed=1))
    assert ex.cap_pairs(pairs, 0) is pairs and ex.cap_pairs(pairs, 60) is pairs


def test_linear_probe_separates():
    ex = load_example("ogbn_mag")
    gen = torch.Generator().manual_seed(0)
    y = torch.arange(90) % 3
    emb = torch.randn(3, 4, generator=gen)[y] * 5 + 0.1 * torch.randn(
        90, 4, generator=gen
    )
    masks = {"train": torch.arange(90) < 60, "test": torch.arange(90) >= 60}
    acc = ex.linear_probe(emb, y + 10, masks)  # labels need not be 0..C-1
    assert acc == {"train": 1.0, "test": 1.0}
    noise = ex.linear_probe(torch.randn(90, 4, generator=gen), y, masks)
    assert noise["test"] < 0.7


def test_ogbn_mag_main(mag_root, tmp_path):
    root, _ = mag_root
    ex = load_example("ogbn_mag")
    out = tmp_path / "out"
    results = ex.main(
        [
            "--root", str(root), "--out", str(out), "--steps", "3",
            "--max-papers", "100", "--models", "multisage", "omnisage",
            "--batch-size", "16", "--num-negatives", "16", "--hidden-channels", "16",
            "--out-channels", "8", "--num-walks", "10", "--num-neighbors", "5",
            "--ppr-top-k", "4", "--eval-pairs", "20", "--no-progress",
        ]
    )  # fmt: skip
    saved = json.loads((out / "results.json").read_text())
    assert saved["metrics"].keys() == {"features", "multisage", "omnisage"}
    assert saved["dataset"]["papers"] == 100
    assert saved["dataset"]["pairs"]["test"] == 20
    assert (out / "ogbn_mag.png").stat().st_size > 1000
    for row in results["metrics"].values():
        for col in ("MRR", "REC@1", "REC@10", "VAL-ACC", "TEST-ACC"):
            assert 0.0 <= row[col] <= 1.0 or (col == "VAL-ACC" and math.isnan(row[col]))
        assert row["REC@1"] <= row["REC@10"]
    for model in ("multisage", "omnisage"):
        assert math.isfinite(saved["runs"][model]["final_loss"])


# ---------------------------------------------------------------------------
# custom_neighbors.py: the IDF transform against a brute-force reference
# ---------------------------------------------------------------------------
def _reference_idf(t2c: list[set[int]], num_ctx: int, s: int, max_deg: int):
    n = len(t2c)
    deg = [sum(c in cs for cs in t2c) for c in range(num_ctx)]
    idf = [math.log(n / d) if d else 0.0 for d in deg]
    rows = {}
    for v in range(n):
        cand = []
        for u in range(n):
            shared = [c for c in t2c[u] & t2c[v] if 2 <= deg[c] <= max_deg]
            if u == v or not shared:
                continue
            w = sum(idf[c] for c in shared)
            best = min(shared, key=lambda c: (-idf[c], c))
            cand.append((-w, u, best))
        cand.sort()
        rows[v] = [(u, -w, c) for w, u, c in cand[:s]]
    return rows


def test_shared_context_idf_matches_reference():
    ex = load_example("custom_neighbors")
    gen = torch.Generator().manual_seed(1)
    n, m = 25, 9
    t2c = [set(torch.randint(0, m, (3,), generator=gen).tolist()) for _ in range(n)]
    ei = torch.tensor([(c, t) for t, cs in enumerate(t2c) for c in sorted(cs)]).t()
    data = HeteroData()
    data["item"].x = torch.randn(n, 4)
    data["board"].x = torch.randn(m, 4)
    data["board", "has", "item"].edge_index = torch.cat([ei, ei], 1)  # duplicates
    transform = ex.SharedContextIDF(
        "item", "board", num_neighbors=4, max_context_degree=8
    )
    assert "max_context_degree=8" in repr(transform)
    data = transform(data)
    store = data["item", "shared_board_idf", "item"]
    assert store.context_type == "board" and store.edge_weight.dtype == torch.float32
    ref = _reference_idf(t2c, m, 4, 8)
    nbr, ego = store.edge_index
    assert ego.tolist() == sorted(ego.tolist())  # grouped by ego
    for v in range(n):
        sel = ego == v
        got = list(
            zip(
                nbr[sel].tolist(),
                store.edge_weight[sel].tolist(),
                store.context[sel].tolist(),
                strict=True,
            )
        )
        assert [(u, c) for u, _, c in got] == [(u, c) for u, _, c in ref[v]]
        assert [w for _, w, _ in got] == pytest.approx(
            [w for _, w, _ in ref[v]], rel=1e-6
        )
    with pytest.raises(ValueError, match="no edge type connects"):
        ex.SharedContextIDF("board", "item")(
            HeteroData(board={"x": torch.ones(1, 1)}, item={"x": torch.ones(1, 1)})
        )


def test_custom_neighbors_main():
    ex = load_example("custom_neighbors")
    metrics = ex.main(
        [
            "--num-targets",
            "400",
            "--num-contexts",
            "40",
            "--steps",
            "3",
            "--batch-size",
            "32",
            "--eval-pairs",
            "100",
        ]
    )
    assert 0.0 <= metrics["REC@1"] <= metrics["REC@10"] <= 1.0
    assert metrics["MRR"] > 0


# ---------------------------------------------------------------------------
# quickstart.py
# ---------------------------------------------------------------------------
def test_quickstart_synthetic():
    ex = load_example("quickstart")
    metrics = ex.main(
        [
            "--synthetic",
            "--steps",
            "3",
            "--batch-size",
            "32",
            "--num-walks",
            "5",
            "--eval-pairs",
            "100",
        ]
    )
    assert 0.0 <= metrics["REC@1"] <= metrics["REC@10"] <= 1.0
    assert metrics["MRR"] > 0


def test_quickstart_dblp(dblp_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("PYG_MULTISAGE_DBLP", str(dblp_dir))
    ex = load_example("quickstart")
    root = str(tmp_path / "dblp")
    metrics = ex.main(
        ["--root", root, "--steps", "2", "--batch-size", "16", "--num-walks", "2",
         "--eval-pairs", "50"]
    )  # fmt: skip
    assert 0.0 <= metrics["REC@1"] <= metrics["REC@10"] <= 1.0
    data, target, contexts = ex.load(root)
    assert (target, contexts) == ("paper", ["venue", "term"])
    assert data["paper"].num_nodes == 14376


def test_main_job_loads_ogbn_mag_with_citation_pairs(mag_root):
    from pyg_multisage import experiment

    root, truth = mag_root
    task = experiment.load_task(
        experiment.RunConfig(dataset="ogbn-mag", root=str(root))
    )
    assert task.target == "paper" and task.contexts == ["field_of_study", "author"]
    assert ("paper", "cites", "paper") not in task.data.edge_types
    got = torch.cat(list(task.pairs.values()), 1)
    cites = torch.tensor(truth["cites"]).t()
    expect = {tuple(e) for e in cites[:, cites[0] != cites[1]].t().tolist()}
    assert {tuple(e) for e in got.t().tolist()} == expect


def test_dblp_comparison_sweeps_trains_and_aggregates(dblp_dir, tmp_path):
    comparison = load_example("dblp_comparison")
    argv = ["--raw-dir", str(dblp_dir), "--root", str(tmp_path / "dblp")]
    argv += ["--models", "text", "pinsage", "--steps", "4", "--eval-every", "2"]
    argv += ["--batch-size", "8", "--negatives", "8", "--out", str(tmp_path / "out")]
    argv += ["--eval-pairs", "50", "--val-pairs", "50", "--sweep-budget", "0.5"]
    argv += ["--sweep-lr", "0.5", "0.003", "--sweep-temperature", "20"]
    argv += ["--cache", str(tmp_path / "cache"), "--name", "cmp", "--jobs", "1"]
    comparison.main([*argv, "--seeds", "1", "--no-aggregate"])
    cache = tmp_path / "cache"
    sweep = sorted(p.name for p in cache.glob("sweep-*.json"))
    assert sweep == sorted(
        f"sweep-{m}-s0-lr{lr}-t20.json"
        for m in ("text", "pinsage")
        for lr in ("0.5", "0.003")
    )
    # The sweep trains on validation only, for half the budget.
    rec = json.loads((cache / "sweep-text-s0-lr0.003-t20.json").read_text())
    assert rec["config"]["eval_split"] == "val" and rec["config"]["steps"] == 2
    finals = list(cache.glob("final-*-s1-*.json"))
    assert len(finals) == 2
    for path in finals:
        rec = json.loads(path.read_text())
        assert rec["config"]["eval_split"] == "test"
        assert rec["config"]["steps"] == 4 and rec["config"]["patience"] == 2
        assert [r["step"] for r in rec["val_curve"]] == [2, 4][: len(rec["val_curve"])]
    argv += ["--pixie-walks", "20"]
    results = comparison.main([*argv, "--seeds", "0", "1"])
    refs = ["raw features", "Pixie (walk counts)"]
    assert list(results) == ["text", "pinsage", *refs]
    mrr = results["text"]["MRR"]
    assert 0 <= mrr["mean"] <= 1 and mrr["std"] >= 0
    saved = json.loads((tmp_path / "out" / "cmp.json").read_text())
    assert saved["pinsage"]["REC@10"] == results["pinsage"]["REC@10"]
    # Each model's setting is the sweep cell with the best validation MRR.
    for name in ("text", "pinsage"):
        chosen = saved["_meta"]["sweep"]["chosen"][name]
        best = max(chosen["grid"], key=lambda c: c["val_MRR"])
        assert chosen["best"] == {"lr": best["lr"], "temperature": 20.0}
        final = json.loads(
            (cache / f"final-{name}-s0-lr{best['lr']:g}-t20.json").read_text()
        )
        assert final["config"]["lr"] == best["lr"]
    assert len(saved["_meta"]["val_curves"]["text"]) == 2
    assert (tmp_path / "out" / "cmp.png").is_file()
    assert (tmp_path / "out" / "cmp_curves.png").is_file()
    rows = (tmp_path / "out" / "cmp.csv").read_text().splitlines()
    assert rows[0].split(",")[:3] == ["model", "MRR", "REC@1"]
    assert [r.split(",")[0] for r in rows[1:]] == ["text", "pinsage", *refs]
    assert rows[-1].split(",")[4] == "N/A"  # DC+: Pixie has no embeddings

    # The references: computed per seed on the run's pairs, cached, and equal
    # to the library functions called directly.
    from pyg_multisage import experiment as ex
    from pyg_multisage.references import pixie_metrics, raw_feature_embeddings

    assert (tmp_path / "cache" / "references-s1.json").is_file()
    task = ex.load_task(
        ex.RunConfig(dataset="dblp", raw_dir=str(dblp_dir), root=str(tmp_path / "dblp"))
    )
    raw, pix = [], []
    for seed in (0, 1):
        pairs = ex.cap_pairs(task.pairs["test"], 50, seed)
        raw.append(ex.evaluate(raw_feature_embeddings(task.data["paper"].x), pairs))
        pix.append(
            pixie_metrics(
                task.data,
                pairs,
                target="paper",
                contexts=["venue", "term"],
                num_walks=20,
                seed=seed,
            )  # fmt: skip
        )
    for got, runs in ((results[refs[0]], raw), (results[refs[1]], pix)):
        assert set(got) == set(runs[0])
        for key, cell in got.items():
            assert cell["mean"] == pytest.approx((runs[0][key] + runs[1][key]) / 2)
    assert saved["Pixie (walk counts)"]["MRR"] == results[refs[1]]["MRR"]

    # --update adds a model to the finished table and keeps the other rows.
    merged = comparison.main(
        [*argv, "--seeds", "0", "1", "--models", "gat", "--update"]
    )
    assert list(merged) == ["text", "pinsage", "gat", *refs]
    again = json.loads((tmp_path / "out" / "cmp.json").read_text())
    for name in ("text", "pinsage"):
        assert again[name] == saved[name]
        for key in ("best_epoch", "val_curves", "seconds_per_run"):
            assert again["_meta"][key][name] == saved["_meta"][key][name]
        assert (
            again["_meta"]["sweep"]["chosen"][name]
            == saved["_meta"]["sweep"]["chosen"][name]
        )
    assert again["gat"] == merged["gat"]
    assert len(again["_meta"]["val_curves"]["gat"]) == 2
    assert again["_meta"]["rows_from_earlier_calls"] == ["text", "pinsage"]
    # Each call is recorded, the earlier ones kept.
    calls = again["_meta"]["protocol_call"]
    assert calls[:-1] == saved["_meta"]["protocol_call"] and len(calls) == 2
    assert calls[-1]["models"] == ["gat"]
    assert calls[-1]["command"].endswith("--models gat --update")
    # Other shared settings: refused before any training or writing.
    before = (tmp_path / "out" / "cmp.json").read_bytes()
    with pytest.raises(SystemExit) as exit_info:
        comparison.main([*argv, "--seeds", "0", "--models", "han", "--update"])
    assert exit_info.value.code == 2
    assert (tmp_path / "out" / "cmp.json").read_bytes() == before
    assert not list(cache.glob("*-han-*"))


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="needs /proc")
def test_dblp_comparison_workers_stop_when_the_comparison_dies(tmp_path):
    """A worker of ``--jobs N`` whose parent is killed mid-run gets SIGTERM
    (the trainer's graceful stop) instead of training on as an orphan."""
    script = tmp_path / "orphan.py"
    script.write_text(
        "import os, sys, time\n"
        f"sys.path.insert(0, {str(EXAMPLES)!r})\n"
        "from concurrent.futures import ProcessPoolExecutor\n"
        "from multiprocessing import get_context\n"
        "import dblp_comparison as dc\n"
        "if __name__ == '__main__':\n"
        "    pool = ProcessPoolExecutor(1, mp_context=get_context('spawn'),\n"
        "        initializer=dc.stop_with_parent, initargs=(os.getpid(), 0.1))\n"
        "    print(pool.submit(os.getpid).result(), flush=True)\n"
        "    pool.submit(time.sleep, 120)\n"
        "    time.sleep(0.5)\n"
        "    os._exit(0)  # dies without shutting the pool down\n"
    )
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    worker = int(out.stdout.split()[0])
    deadline = time.monotonic() + 30
    while _running(worker):
        if time.monotonic() > deadline:
            os.kill(worker, 9)
            raise AssertionError("the orphaned worker kept running")
        time.sleep(0.2)


def _running(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")
