import json

import numpy as np
import pytest

from pyg_multisage.cli import build_parser, main

TINY = ["--dataset", "synthetic", "--synthetic-size", "200"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    argv = ["train", *TINY, "--model", "multisage", "--steps", "2", "--batch-size", "8"]
    argv += ["--negatives", "8", "--num-walks", "5", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    return out


def test_train_prints_the_table_and_writes_the_run(run_dir, capsys):
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert {"MRR", "REC@1", "REC@10", "DC+", "DC*", "DE+", "DE*", "INT", "UNI"} <= set(
        metrics
    )
    assert (run_dir / "checkpoint.pt").is_file()


def test_evaluate_embed_related(run_dir, tmp_path, capsys):
    assert main(["evaluate", "--run", str(run_dir), "--split", "val"]) == 0
    assert "MRR" in capsys.readouterr().out
    out = tmp_path / "emb.npy"
    assert main(["embed", "--run", str(run_dir), "--out", str(out)]) == 0
    emb = np.load(out)
    assert emb.shape[0] == 200
    capsys.readouterr()
    assert main(["related", "--run", str(run_dir), "--query", "3", "-k", "4"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 5 and lines[1].startswith("  1.")
    assert (
        main(["related", "--run", str(run_dir), "--query", "3", "--context", "1"]) == 0
    )


def test_sample_saves_and_loads(tmp_path, capsys):
    out = tmp_path / "tables.pt"
    argv = ["sample", *TINY, "--sampler", "walk", "--num-walks", "5", "--out", str(out)]
    assert main(argv) == 0
    assert main(["sample", "--load", str(out)]) == 0
    text = capsys.readouterr().out
    assert "NeighborTable(seeds=200" in text and "context" in text
    out2 = tmp_path / "ppr.pt"
    assert main(["sample", *TINY, "--sampler", "ppr", "--out", str(out2)]) == 0


def test_clear_errors(run_dir, tmp_path, capsys):
    assert main(["related", "--run", str(run_dir), "--query", "100000"]) == 2
    assert "--query must be a item id in [0, 200)" in capsys.readouterr().err
    assert (
        main(["related", "--run", str(run_dir), "--query", "1", "--context", "999"])
        == 2
    )
    assert main(["evaluate", "--run", str(tmp_path / "nothing")]) == 2
    assert "not a training run" in capsys.readouterr().err
    assert main(["embed", "--run", str(run_dir), "--out", str(tmp_path / "e.txt")]) == 2
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--model", "gcn"])
    assert main(["sample", *TINY]) == 2


def test_help_names_every_command(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    text = capsys.readouterr().out
    for cmd in ("train", "embed", "evaluate", "sample", "related"):
        assert cmd in text


def test_train_epochs_keeps_the_best_weights(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", *TINY, "--model", "text", "--epochs", "2", "--batch-size", "64"]
    argv += ["--evals-per-epoch", "2", "--patience", "3", "--feature-skip"]
    argv += ["--temperature", "10", "--out", str(out), "--quiet", "--split", "val"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    training = json.loads((out / "training.json").read_text())
    best = max(training["val_curve"], key=lambda r: r["MRR"])
    assert training["best_step"] == best["step"]
    assert f"best validation MRR {best['MRR']:.4f} at epoch" in printed
    config = json.loads((out / "config.json").read_text())
    assert config["epochs"] == 2 and config["steps"] is None
    assert config["feature_skip"] and config["temperature"] == 10
    # The reported (validation) metrics are those of the best weights.
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["MRR"] == pytest.approx(best["MRR"])


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--steps", "5", "--epochs", "1"], "not allowed with argument"),
        (["--patience", "2"], "--patience: patience needs validations"),
        (["--epochs", "1", "--evals-per-epoch", "0"], "--evals-per-epoch:"),
        (["--hard-negatives", "-1"], "--hard-negatives: hard_negatives must be"),
    ],
)
def test_train_budget_errors(tmp_path, capsys, flags, message):
    argv = ["train", *TINY, "--model", "text", "--out", str(tmp_path / "r"), *flags]
    try:
        code = main(argv)
    except SystemExit as err:  # argparse's own errors
        code = err.code
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1]
