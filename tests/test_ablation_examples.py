"""MultiSage Fig. 5 / Fig. 6 scripts (examples/multisage_ablation.py,
examples/multisage_attention.py) on tiny budgets, and the attention weights
MultiSage returns."""

from __future__ import annotations

import json
import math

import pytest
import torch
from example_scripts import load_example

from pyg_multisage import convention
from pyg_multisage import experiment as ex

TINY = ["--synthetic-targets", "300", "--batch-size", "16", "--negatives", "16"]


@pytest.fixture(autouse=True)
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_multisage_forward_returns_attention_weights():
    cfg = ex.RunConfig(
        steps=1, synthetic={"num_targets": 200, "num_contexts": 20}, progress=False
    )
    task = ex.load_task(cfg)
    task = task.replace_data(ex.add_neighbors(task, cfg))
    model = ex.build_model(task, cfg).encoder.eval()
    ets = ex.model_edge_types(task, cfg)
    batch = ex.SeedBatcher(task.data, task.target, ets)(torch.arange(30))
    with torch.no_grad():
        plain = model(batch)
        emb, att = model(batch, return_attention_weights=True)
    torch.testing.assert_close(emb, plain)
    assert set(att) == set(task.contexts)
    for ctx, (edge_index, alpha) in att.items():
        assert alpha.shape == (edge_index.size(1), cfg.heads)
        assert int(edge_index[1].max()) < 30  # edges into the seeds only
        # Eq. 6's softmax: each seed's weights sum to one per head.
        sums = torch.zeros(30, cfg.heads).index_add_(0, edge_index[1], alpha)
        has = torch.bincount(edge_index[1], minlength=30) > 0
        torch.testing.assert_close(sums[has], torch.ones_like(sums[has]))
        # Same edges as the batch's, in the same order.
        (et,) = [e for e in ets if convention.context_type_from_name(e) == ctx]
        ((_, adj, _, _),) = convention.seed_edges(batch, [et], 30)
        assert torch.equal(adj, edge_index)


def test_fig5_ablation_writes_cells_and_reuses_cache(tmp_path, monkeypatch):
    mod = load_example("multisage_ablation")
    argv = [
        "--steps",
        "3",
        "--eval-every",
        "3",
        "--combines",
        "mask",
        "trans",
        "--attentions",
        "atn",
        "mean",
        *TINY,
        "--out",
        str(tmp_path / "out"),
        "--cache",
        str(tmp_path / "cache"),
    ]
    result = mod.main(argv)
    out = tmp_path / "out"
    data = json.loads((out / "multisage_ablation_synthetic.json").read_text())
    assert data == json.loads(json.dumps(result))
    assert (tmp_path / "out" / "multisage_ablation_synthetic.png").stat().st_size > 0
    assert data["_meta"]["split"] == "val"
    cells = data["cells"]
    assert list(cells) == ["mask-atn", "mask-mean", "trans-atn", "trans-mean"]
    assert cells["trans-mean"]["combine"] == "trans"
    assert cells["trans-mean"]["attention"] is None
    assert cells["mask-atn"]["attention"] == "three_way"
    for cell in cells.values():
        for col in ex.METRIC_COLUMNS:
            assert col in cell["metrics"]
        assert 0 < cell["metrics"]["MRR"]["mean"] <= 1
        assert cell["metrics"]["MRR"]["std"] == 0  # one seed
        assert [h["step"] for h in cell["history"]] == [3]
        # The last validation of training is the reported validation score.
        assert cell["history"][-1]["MRR"] == pytest.approx(
            cell["metrics"]["MRR"]["mean"]
        )
    assert len(list((tmp_path / "cache").glob("*.json"))) == 4

    # One cell against an independent run of the main job with its settings.
    config = ex.RunConfig(
        model="multisage",
        steps=3,
        batch_size=16,
        num_negatives=16,
        combine="trans",
        attention=None,
        eval_every=3,
        eval_split="val",
        progress=False,
        synthetic={"num_targets": 300, "num_contexts": 100},
    )
    direct = ex.run(config).metrics
    assert cells["trans-mean"]["metrics"]["MRR"]["mean"] == pytest.approx(direct["MRR"])

    # A second call reads every cell from the cache; changed settings retrain.
    def no_training(*args, **kwargs):
        raise AssertionError("a cached cell was retrained")

    monkeypatch.setattr(ex, "run", no_training)
    again = mod.main(argv)
    assert again["cells"] == result["cells"]
    with pytest.raises(AssertionError, match="retrained"):
        mod.main([*argv, "--negatives", "8"])


def test_fig5_ablation_bad_input(tmp_path, monkeypatch, capsys):
    mod = load_example("multisage_ablation")
    with pytest.raises(SystemExit) as err:
        mod.main(["--steps", "0", "--out", str(tmp_path)])
    assert err.value.code == 2
    assert "--steps" in capsys.readouterr().err
    monkeypatch.delenv("PYG_MULTISAGE_DBLP", raising=False)
    with pytest.raises(SystemExit) as err:
        mod.main(["--dataset", "dblp", "--out", str(tmp_path)])
    assert err.value.code == 2
    assert "PYG_MULTISAGE_DBLP" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        mod.main(["--combines", "sum"])


def test_fig6_attention_per_context(tmp_path):
    mod = load_example("multisage_attention")
    out = mod.main(
        ["--steps", "3", "--sample", "25", *TINY, "--out", str(tmp_path / "out")]
    )
    data = json.loads(
        (tmp_path / "out" / "multisage_attention_synthetic.json").read_text()
    )
    assert data == json.loads(json.dumps(out))
    assert (tmp_path / "out" / "multisage_attention_synthetic.png").stat().st_size > 0
    meta = data["_meta"]
    assert meta["sample"] == 25 and len(meta["targets"]) == 25
    assert set(data["contexts"]) == {"board"}
    s = data["contexts"]["board"]
    slots = meta["num_neighbors"]
    assert len(s["heatmap"]) == 25 and all(len(r) == slots for r in s["heatmap"])
    full_rows = 0
    for row in s["heatmap"]:
        vals = [v for v in row if v is not None]
        if vals:  # every neighbor is shown (at most num_neighbors): sums to 1
            full_rows += 1
            assert sum(vals) == pytest.approx(1.0, abs=1e-5)
            assert all(v is None for v in row[len(vals) :])
    assert full_rows == s["count_by_rank"][0] > 0
    # Targets with at least r + 1 neighbors never increase with r.
    counts = s["count_by_rank"]
    assert all(a >= b for a, b in zip(counts, counts[1:], strict=False))
    # Shares per rank: each target's shares sum to one.
    for key in ("mean_by_rank", "prior_by_rank", "uniform_by_rank"):
        total = sum(v * c for v, c in zip(s[key], counts, strict=True))
        assert total == pytest.approx(full_rows, rel=1e-5)
    # Entropy of a distribution over d items is at most log d (uniform).
    assert s["entropy"] <= s["uniform_entropy"] + 1e-6
    assert s["prior_entropy"] <= s["uniform_entropy"] + 1e-6
    assert 0 <= s["entropy"] <= math.log(slots) + 1e-6
