import json

import pytest
import torch

from pyg_multisage import experiment as ex

SMALL = {"num_targets": 300, "num_contexts": 30, "num_facets": 5, "seed": 0}


def _config(model: str, **kw) -> ex.RunConfig:
    base = dict(
        dataset="synthetic",
        model=model,
        steps=3,
        batch_size=16,
        num_negatives=16,
        num_walks=10,
        num_neighbors=5,
        hidden_channels=16,
        out_channels=8,
        heads=2,
        progress=False,
        synthetic=SMALL,
    )
    base.update(kw)
    return ex.RunConfig(**base)


@pytest.fixture(scope="module")
def task():
    return ex.load_task(_config("text"))


@pytest.mark.parametrize("model", ex.MODELS)
def test_every_model_trains_and_evaluates(task, model):
    result = ex.run(_config(model), task)
    assert set(ex.METRIC_COLUMNS) <= set(result.metrics)
    assert 0.0 <= result.metrics["MRR"] <= 1.0
    emb = result.embeddings
    assert emb.shape == (300, 8)
    assert torch.isfinite(emb).all()
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(300), atol=1e-4, rtol=0)
    assert len(result.history) == 3 and all("loss" in h for h in result.history)


def test_run_is_deterministic_and_batches_start_with_the_seeds(task):
    a = ex.run(_config("multisage"), task)
    b = ex.run(_config("multisage"), task)
    torch.testing.assert_close(a.embeddings, b.embeddings)
    config = _config("multisage")
    t = ex.Task(ex.add_neighbors(task, config), task.target, task.contexts, task.pairs)
    batcher = ex.SeedBatcher(t.data, t.target, ex.model_edge_types(t, config))
    seeds = torch.tensor([5, 3, 5, 7])
    batch = batcher(seeds)
    assert batch[t.target].n_id[:4].tolist() == [5, 3, 5, 7]
    assert batch[t.target].batch_size == 4


@pytest.mark.parametrize("model", ["multisage", "text"])
def test_seed_batcher_on_saved_stores_equals_in_memory(task, tmp_path, model):
    from pyg_multisage.storage import open_stores, save_data

    config = _config(model)
    data = ex.add_neighbors(task, config)
    edge_types = ex.model_edge_types(task, config)
    save_data(data, tmp_path / "saved")
    stores = open_stores(tmp_path / "saved")
    seeds = torch.tensor([5, 3, 5, 7, 299, 0])
    a = ex.SeedBatcher(data, task.target, edge_types)(seeds)
    batcher = ex.SeedBatcher(stores, task.target, edge_types)
    if not edge_types:  # features only: gathered by row, never copied whole
        assert batcher.features is stores[0] and not hasattr(batcher, "x")
    b = batcher(seeds)
    # (The in-memory batch also lists the graph's relations, with no edges:
    # the models read only the importance-neighbor edge types.)
    assert a.node_types == b.node_types
    for et in a.edge_types:
        assert et in edge_types or a[et].edge_index.size(1) == 0
    for t in a.node_types:
        assert torch.equal(a[t].x, b[t].x)
        assert torch.equal(a[t].n_id, b[t].n_id)
    for et in edge_types:
        assert a[et].edge_index.size(1) > 0
        for key in ("edge_index", "edge_weight", "context"):
            if key in a[et]:
                assert torch.equal(a[et][key], b[et][key]), (et, key)
    assert a[task.target].batch_size == b[task.target].batch_size == 6


def test_margin_loss_and_learned_scale(task):
    result = ex.run(_config("pinsage", loss="margin"), task)
    assert result.history[-1]["loss"] >= 0
    fixed = ex.run(_config("text", learn_temperature=False, temperature=7.0), task)
    assert float(fixed.model.scale) == pytest.approx(7.0)


def test_outputs_and_reload(tmp_path, task):
    out = tmp_path / "run"
    result = ex.run(_config("multisage", output_dir=str(out)), task)
    for name in ("checkpoint.pt", "metrics.json", "config.json", "curves.csv"):
        assert (out / name).is_file(), name
    config, task2, model, batcher = ex.load_run(out)
    emb = ex.embed_all(model, batcher, task2.data[task2.target].num_nodes)
    torch.testing.assert_close(emb, result.embeddings)


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"model": "gcn"}, "model must be one of"),
        ({"dataset": "cora"}, "dataset must be one of"),
        ({"loss": "bpr"}, "loss must be"),
        ({"steps": 0}, "steps must be"),
        ({"steps": 5, "epochs": 1.0}, "give steps or epochs, not both"),
        ({"steps": None, "epochs": 0.0}, "epochs must be > 0"),
        ({"patience": 0}, "patience must be >= 1"),
        ({"patience": 2}, "patience needs validations"),
        ({"steps": None, "epochs": 1.0, "evals_per_epoch": 0}, "evals_per_epoch"),
        ({"proj_layers": 0}, "proj_layers must be >= 1"),
    ],
)
def test_bad_config(kw, match):
    with pytest.raises(ValueError, match=match):
        _config(kw.pop("model", "text"), **kw)


def test_format_table_has_every_column():
    row = {c: 0.5 for c in ex.METRIC_COLUMNS}
    text = ex.format_table({"a": row, "b": {c: {"mean": 1, "std": 0} for c in row}})
    head = text.splitlines()[0].split()
    assert head == ["model", *ex.METRIC_COLUMNS]
    assert "1.0000±0.0000" in text


def _two_context_task(task):
    """The synthetic task with a second context type 'tag' (board % 7)."""
    data = task.data.clone()
    data["tag"].x = torch.randn(7, data["board"].x.size(1))
    ei = data["item", "in", "board"].edge_index.clone()
    ei[1] = ei[1] % 7
    ei = torch.unique(ei, dim=1)
    data["item", "in", "tag"].edge_index = ei
    data["tag", "has", "item"].edge_index = ei.flip(0)
    return ex.Task(data, task.target, ["board", "tag"], task.pairs)


def test_registry_rows_write_exactly_the_edge_types_they_read(task):
    two = _two_context_task(task)
    assert ex.MODELS == tuple(ex.REGISTRY)
    for name, spec in ex.REGISTRY.items():
        config = _config(name)
        wanted = ex.model_edge_types(two, config)
        assert wanted == spec.neighbors.edge_types(two)
        data = ex.add_neighbors(two, config)
        written = [et for et in data.edge_types if et not in two.data.edge_types]
        assert sorted(written) == sorted(wanted), name
        assert spec.description
    walk = ("item", "walk_via_board", "item")
    assert ex.model_edge_types(two, _config("text")) == []
    assert ex.model_edge_types(two, _config("multisage-2")) == [walk]
    # The ablation row reads exactly MultiSage-2's neighbors.
    assert ex.model_edge_types(two, _config("pinsage-2")) == [walk]
    encoder = ex.build_model(two, _config("pinsage-2")).encoder
    assert type(encoder).__name__ == "PinSageEncoder"
    assert ex.model_edge_types(two, _config("multisage")) == [
        walk,
        ("item", "walk_via_tag", "item"),
    ]
    ppr = ex.model_edge_types(two, _config("omnisage"))
    assert ppr and all(et[1] == "ppr_ctx" for et in ppr)


def test_walks_through_a_subset_of_contexts_equal_those_of_all(task):
    # MultiSage-2 walks through the first context type only: every context
    # type has its own walks, so its table equals the full run's.
    two = _two_context_task(task)
    config = _config("multisage")
    first = ex.ContextualWalks(num_contexts=1).add(two, config)
    full = ex.ContextualWalks().add(two, config)
    et = ("item", "walk_via_board", "item")
    for key in ("edge_index", "edge_weight", "context"):
        assert torch.equal(first[et][key], full[et][key])


def test_a_row_added_at_run_time_trains(task):
    class MeanOfSelf(torch.nn.Module):
        def __init__(self, in_channels, out_channels, target):
            super().__init__()
            self.target = target
            self.lin = torch.nn.Linear(in_channels, out_channels)

        def forward(self, batch):
            store = batch[self.target]
            return torch.nn.functional.normalize(self.lin(store.x[: store.batch_size]))

    seen = []

    def build(task, cfg, edge_types):
        seen.append(edge_types)
        return MeanOfSelf(ex.channels(task, cfg)[0], cfg.out_channels, task.target)

    ex.REGISTRY["mine"] = ex.ModelSpec(ex.NoNeighbors(), build, "a linear map")
    try:
        result = ex.run(_config("mine"), task)
    finally:
        del ex.REGISTRY["mine"]
    assert seen == [[]]
    assert result.embeddings.shape == (300, 8)
    assert isinstance(result.model.encoder, MeanOfSelf)
    with pytest.raises(ValueError, match="model must be one of"):
        _config("mine")


def test_epoch_budget_validates_per_epoch_and_restores_the_best(tmp_path, task):
    out = tmp_path / "run"
    cfg = _config(
        "multisage",
        steps=None,
        epochs=3,
        evals_per_epoch=2,
        batch_size=64,
        lr=0.05,
        output_dir=str(out),
        eval_split="val",
    )
    result = ex.run(cfg, task)
    per_epoch = -(-task.pairs["train"].size(1) // cfg.batch_size)
    assert result.steps_per_epoch == per_epoch
    every = per_epoch // 2
    curve = result.val_curve
    steps = [r["step"] for r in curve]
    assert steps[:-1] == list(range(every, every * len(steps), every))
    assert steps[-1] in (every * len(steps), 3 * per_epoch)
    assert all(r["epoch"] == r["step"] / per_epoch for r in curve)
    best = max(curve, key=lambda r: r["MRR"])
    assert result.best_step == best["step"]
    assert result.best_epoch == best["step"] / per_epoch
    # The reported weights are the best ones: the final validation score of
    # the returned model is the best of the curve, and so is a reload's.
    assert result.metrics["MRR"] == pytest.approx(best["MRR"])
    _, task2, model, batcher = ex.load_run(out)
    emb = ex.embed_all(model, batcher, task2.data[task2.target].num_nodes)
    torch.testing.assert_close(emb, result.embeddings)
    saved = json.loads((out / "training.json").read_text())
    assert saved["best_step"] == best["step"] and saved["val_curve"] == curve


def test_patience_stops_after_validations_without_improvement(task):
    # A learning rate this large stops improving at once: the run stops
    # `patience` validations after its best one, before the budget.
    cfg = _config("text", steps=None, epochs=20, evals_per_epoch=1, patience=2, lr=5.0)
    result = ex.run(cfg, task)
    mrr = [r["MRR"] for r in result.val_curve]
    best = mrr.index(max(mrr))
    assert result.stopped_early
    assert len(mrr) == best + 1 + 2
    assert result.val_curve[-1]["step"] < 20 * result.steps_per_epoch


@pytest.mark.parametrize("model", ["text", "pinsage", "multisage", "omnisage"])
def test_feature_skip_trains_every_model(task, model):
    result = ex.run(_config(model, feature_skip=True), task)
    assert hasattr(result.model, "feature_skip")
    torch.testing.assert_close(
        result.embeddings.norm(dim=-1), torch.ones(300), atol=1e-4, rtol=0
    )


def test_feature_skip_adds_a_linear_map_of_the_raw_features(task):
    config = _config("pinsage", feature_skip=True)
    t = task.replace_data(ex.add_neighbors(task, config))
    model = ex.build_model(t, config)
    plain = ex.build_model(t, _config("pinsage"))
    assert "feature_skip.lin.weight" in model.state_dict()
    assert not any("feature_skip" in k for k in plain.state_dict())
    batcher = ex.SeedBatcher(t.data, t.target, ex.model_edge_types(t, config))
    batch = batcher(torch.tensor([0, 4, 9]))
    z = model.encoder(batch)
    x = t.data[t.target].x[[0, 4, 9]]
    w = model.feature_skip.lin.weight
    want = torch.nn.functional.normalize(
        z + torch.nn.functional.normalize(x, dim=-1) @ w.t(), dim=-1
    )
    torch.testing.assert_close(model(batch), want)
    # JL initialization: E||W x||^2 = ||x||^2 = 1 (8 dims: mean over rows).
    xa = torch.nn.functional.normalize(t.data[t.target].x, dim=-1)
    sq = (xa @ w.t()).pow(2).sum(-1).mean()
    assert abs(float(sq) - 1.0) < 0.3


def test_hard_negatives_come_from_the_query_band_and_repeat(task):
    from pyg_multisage.references import pixie_visit_counts

    config = _config(
        "text",
        hard_negatives=3,
        hard_negative_band=(2, 8),
        hard_negative_epochs=0.5,
        hard_negative_walks=50,
    )
    spe = ex.steps_per_epoch(task, config)
    assert spe == -(-task.pairs["train"].size(1) // 16)
    model = ex.build_model(task, config)
    batcher = ex.SeedBatcher(task.data, task.target, [])
    data, step_fn = ex.make_step(model, batcher, task, config)
    n = task.data[task.target].num_nodes
    ranking = pixie_visit_counts(
        task.data, torch.arange(n), target=task.target,
        contexts=list(task.contexts), num_walks=50, seed=0,
    )  # fmt: skip
    assert data(0)[1].numel() == 2 * 16 + 16  # first epoch: none
    for step, count in [(-(-spe // 2), 1), (spe, 2), (10 * spe, 3)]:
        batch, ids = data(step)
        assert ids.numel() == 2 * 16 + 16 + 16 * count
        hard = ids[48:].view(16, count)
        for q, row in zip(ids[:16].tolist(), hard.tolist(), strict=True):
            lo, hi = ranking.ptr[q].item(), ranking.ptr[q + 1].item()
            band = ranking.neighbor[lo:hi][2:8].tolist()
            if band:
                assert set(row) <= set(band)
        assert torch.equal(ids, data(step)[1])  # a pure function of the step
        loss = step_fn((batch, ids))
        assert torch.isfinite(loss)
    # A fresh step function (as after a resume) gives the same batches.
    data2, _ = ex.make_step(model, batcher, task, config)
    assert torch.equal(data2(spe)[1], data(spe)[1])
    # Off: the batches are those of a run without the curriculum.
    data0, _ = ex.make_step(model, batcher, task, _config("text"))
    assert torch.equal(data0(spe)[1], data(spe)[1][:48])


def test_hard_negatives_train_with_both_losses(task):
    for loss in ("softmax", "margin"):
        cfg = _config("pinsage", loss=loss, hard_negatives=2, hard_negative_epochs=0.01)
        result = ex.run(cfg, task)
        assert all(torch.isfinite(torch.tensor(h["loss"])) for h in result.history)


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"hard_negatives": -1}, "hard_negatives must be"),
        ({"hard_negative_band": (5, 5)}, "hard_negative_band"),
        ({"hard_negative_band": (1,)}, "hard_negative_band"),
        ({"hard_negative_epochs": 0}, "hard_negative_epochs"),
        ({"hard_negative_walks": 0}, "hard_negative_walks"),
    ],
)
def test_bad_hard_negative_config(kw, match):
    with pytest.raises(ValueError, match=match):
        _config("text", **kw)


def test_config_key_survives_a_json_round_trip(tmp_path):
    # A saved key must equal the key of the same settings (tuples are
    # lists in JSON), and differ when a setting that decides the result does.
    cfg = _config("text", hard_negative_band=(10, 20), output_dir=str(tmp_path))
    saved = json.loads(json.dumps(ex.config_key(cfg)))
    assert saved == ex.config_key(cfg)
    assert saved == ex.config_key(_config("text", hard_negative_band=(10, 20)))
    assert saved != ex.config_key(_config("text", hard_negative_band=(10, 30)))
    assert "output_dir" not in saved and "progress" not in saved


def test_aggregate_mean_and_sample_std():
    runs = [{"MRR": 0.1, "REC@1": 0.0}, {"MRR": 0.3, "REC@1": 0.0}]
    got = ex.aggregate(runs)
    assert got["MRR"]["mean"] == pytest.approx(0.2)
    assert got["MRR"]["std"] == pytest.approx(0.1414213562)  # sqrt(0.02)
    assert ex.aggregate(runs[:1])["MRR"] == {"mean": 0.1, "std": 0.0}


@pytest.mark.parametrize("layers", [1, 2])
def test_omnisage_rows_take_proj_layers(layers, task):
    """The OmniSage rows build their token projections g_t with
    ``RunConfig.proj_layers`` linear layers (ReLU between)."""
    model = ex.build_model(task, _config("omnisage", proj_layers=layers))
    convs = [m for m in model.modules() if type(m).__name__ == "OmniSageConv"]
    assert convs
    for conv in convs:
        for proj in conv.proj.values():
            linears = [m for m in proj.modules() if isinstance(m, torch.nn.Linear)]
            assert len(linears) == layers


def test_omnisage_row_gates_the_update_and_the_no_graph_row_does_not(task):
    """``RunConfig.update_gate`` gives the OmniSage row's embedder its
    zero-initialized gate; the no-graph row (no neighbor slots) never has
    one."""
    gated = ex.build_model(task, _config("omnisage"))
    plain = ex.build_model(task, _config("omnisage", update_gate=False))
    nograph = ex.build_model(task, _config("omnisage-nograph", update_gate=True))

    def gates(model):
        return [n for n, _ in model.named_parameters() if n.endswith("update_gate")]

    assert len(gates(gated)) == 1
    assert gates(plain) == [] and gates(nograph) == []


def test_run_saved_before_proj_layers_reloads_as_trained(tmp_path, task):
    """A run folder whose config.json predates ``proj_layers`` and
    ``update_gate`` (linear token projections, no gate: the behaviour then)
    rebuilds with one layer, no gate and its weights, though today's
    defaults are two layers and a gate."""
    out = tmp_path / "run"
    cfg = _config("omnisage", output_dir=str(out), proj_layers=1, update_gate=False)
    result = ex.run(cfg, task)
    cfg_file = out / "config.json"
    saved = json.loads(cfg_file.read_text())
    del saved["proj_layers"], saved["update_gate"]
    cfg_file.write_text(json.dumps(saved))
    assert ex.RunConfig().proj_layers == 2 and ex.RunConfig().update_gate
    config, task2, model, batcher = ex.load_run(out)
    assert config.proj_layers == 1 and not config.update_gate
    emb = ex.embed_all(model, batcher, task2.data[task2.target].num_nodes)
    torch.testing.assert_close(emb, result.embeddings)


def test_multisage_rows_embed_neighbors_with_their_own_weights(tmp_path, task):
    """``RunConfig.share_weights`` reaches every MultiSage convolution: the
    main job's rows give neighbors their own last layer (``lin_n``), the
    paper preset shares ``W_t``, and a run folder saved before the field
    existed rebuilds shared, as it trained."""
    from pyg_multisage.nn import MultiSageConv

    def convs(model):
        return [m for m in model.modules() if isinstance(m, MultiSageConv)]

    for name in ("multisage", "multisage-2"):
        own = convs(ex.build_model(task, _config(name)))
        assert own and all(c.lin_n is not None for c in own)
        shared = convs(ex.build_model(task, _config(name, share_weights=True)))
        assert shared and all(c.lin_n is None for c in shared)
    paper = ex.RunConfig.from_preset("paper", model="multisage")
    assert paper.share_weights
    out = tmp_path / "run"
    result = ex.run(
        _config("multisage-2", output_dir=str(out), share_weights=True), task
    )
    cfg_file = out / "config.json"
    saved = json.loads(cfg_file.read_text())
    del saved["share_weights"]
    cfg_file.write_text(json.dumps(saved))
    config, task2, model, batcher = ex.load_run(out)
    assert config.share_weights and all(c.lin_n is None for c in convs(model))
    emb = ex.embed_all(model, batcher, task2.data[task2.target].num_nodes)
    torch.testing.assert_close(emb, result.embeddings)


def test_read_config_names_the_file(tmp_path):
    bad = tmp_path / "config.json"
    bad.write_text(json.dumps({"model": "text", "no_such_setting": 1}))
    with pytest.raises(ValueError, match="config.json: not a run configuration"):
        ex.read_config(bad)
    bad.write_text("{")
    with pytest.raises(ValueError, match="config.json: not a run configuration"):
        ex.read_config(bad)
