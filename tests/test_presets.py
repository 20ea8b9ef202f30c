"""Presets (pyg_multisage/presets.py): RunConfig.from_preset and
``pyg-multisage train --preset``."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from pyg_multisage import cli
from pyg_multisage import experiment as ex
from pyg_multisage.presets import PRESETS, preset_overrides

FIELDS = {f.name for f in dataclasses.fields(ex.RunConfig)}
MULTISAGE_FAMILY = ("text", "pinsage", "gat", "han", "multisage", "multisage-2")


def test_every_preset_sets_existing_fields_for_every_model():
    for name, table in PRESETS.items():
        for model in ex.REGISTRY:
            overrides = preset_overrides(name, model)
            assert set(overrides) <= FIELDS, (name, model)
            config = ex.RunConfig.from_preset(name, model=model)
            for key, value in overrides.items():
                assert getattr(config, key) == value, (name, model, key)
        assert "*" in table


def test_default_preset_is_the_documented_defaults():
    for model in ex.REGISTRY:
        assert ex.RunConfig.from_preset("default", model=model) == ex.RunConfig(
            model=model
        )


def test_paper_preset_quotes_multisage_appendix_b():
    # MultiSage App. B (OAG): 300 -> 256 -> 128, 10 heads, batch 256, Adam
    # lr 0.0001, zeta = 10, s = 20, restart 0.1; Eq. 3 max-margin loss.
    for model in MULTISAGE_FAMILY:
        c = ex.RunConfig.from_preset("paper", model=model)
        assert (c.hidden_channels, c.out_channels) == (256, 128)
        assert (c.batch_size, c.lr, c.weight_decay) == (256, 1e-4, 0.0)
        assert (c.walk_length, c.num_neighbors, c.restart_prob) == (10, 20, 0.1)
        assert c.loss == "margin"
    for model in ("multisage", "multisage-2"):
        c = ex.RunConfig.from_preset("paper", model=model)
        assert c.heads == 10
        assert (c.target_relu, c.act) == (True, "sigmoid")
    # The baselines keep their own heads (HANConv: heads must divide 256).
    assert ex.RunConfig.from_preset("paper", model="han").heads == 4


def test_paper_preset_quotes_omnisage_a3():
    c = ex.RunConfig.from_preset("paper", model="omnisage")
    assert (c.lr, c.heads, c.loss, c.num_negatives) == (0.005, 12, "softmax", 1000)
    assert c.hidden_channels % c.heads == 0
    # Nothing of MultiSage's settings leaks into OmniSage's.
    assert c.batch_size == ex.RunConfig.batch_size
    assert c.walk_length == ex.RunConfig.walk_length


def test_explicit_settings_win_and_bad_names_fail():
    c = ex.RunConfig.from_preset("paper", model="multisage", lr=0.01, batch_size=128)
    assert (c.lr, c.batch_size, c.heads) == (0.01, 128, 10)
    with pytest.raises(ValueError, match="preset must be one of"):
        ex.RunConfig.from_preset("papers")
    with pytest.raises(ValueError, match="batch_size"):
        ex.RunConfig.from_preset("paper", batch_size=0)


class _Captured(Exception):
    pass


@pytest.fixture
def captured(monkeypatch):
    """Stops ``train`` at ex.run and returns the RunConfig it was given."""

    def fake_run(config, *args, **kwargs):
        raise _Captured(config)

    monkeypatch.setattr(ex, "run", fake_run)

    def call(*argv: str) -> ex.RunConfig:
        with pytest.raises(_Captured) as err:
            cli.main(["train", "--quiet", *argv])
        return err.value.args[0]

    return call


def test_cli_preset_applies_and_explicit_flags_win(captured, tmp_path):
    out = str(tmp_path / "run")
    c = captured("--preset", "paper", "--out", out, "--steps", "7")
    assert (c.batch_size, c.lr, c.heads, c.steps) == (256, 1e-4, 10, 7)
    assert c.loss == "margin"
    # A flag given with the value of its default still wins over the preset.
    c = captured("--preset", "paper", "--out", out, "--batch-size", "128")
    assert (c.batch_size, c.lr) == (128, 1e-4)
    c = captured("--preset", "paper", "--out", out, "--lr=0.02", "--loss", "softmax")
    assert (c.lr, c.loss, c.num_neighbors) == (0.02, "softmax", 20)
    c = captured("--preset", "paper", "--model", "omnisage", "--out", out)
    assert (c.lr, c.heads, c.num_negatives) == (0.005, 12, 1000)
    # Without --preset the flags' defaults are the RunConfig defaults.
    c = captured("--out", out)
    assert c == ex.RunConfig(output_dir=out, progress=False, synthetic=c.synthetic)


def test_cli_unknown_preset_one_line_exit_2(tmp_path, capsys):
    code = cli.main(["train", "--preset", "fast", "--out", str(tmp_path / "r")])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert "--preset" in err and "'fast'" in err and "paper" in err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("model", ["han", "multisage"])
def test_paper_preset_trains(model):
    # The paper's settings build and train (HAN keeps heads that divide 256;
    # MultiSage: 10 heads, literal ReLU + sigmoid, margin loss, long walks).
    torch.set_num_threads(1)
    config = ex.RunConfig.from_preset(
        "paper",
        model=model,
        steps=2,
        num_walks=50,
        progress=False,
        eval_split="val",
        synthetic={"num_targets": 200, "num_contexts": 20},
    )
    result = ex.run(config)
    assert 0 < result.metrics["MRR"] <= 1
    assert result.embeddings.shape[1] == 128
