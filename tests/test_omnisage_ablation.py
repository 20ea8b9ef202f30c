"""The OmniSage task-combination ablation example runs its code path."""

import json

import pytest
import torch
from example_scripts import load_example


@pytest.fixture(scope="module")
def example():
    return load_example("omnisage_task_ablation")


def test_ablation_writes_every_combination(example, tmp_path):
    threads = torch.get_num_threads()
    try:
        out = example.main(
            [
                "--steps",
                "2",
                "--targets",
                "80",
                "--users",
                "12",
                "--out-dir",
                str(tmp_path),
            ]
        )
    finally:
        torch.set_num_threads(threads)
    saved = json.loads((tmp_path / "omnisage_task_ablation.json").read_text())
    assert saved == json.loads(json.dumps(out))
    assert list(saved["rows"]) == ["EE", "EE+EF", "EE+UE", "EE+EF+UE"]
    assert saved["rows"]["EE"]["weights"] == {"lambda_feat": 0.0, "lambda_seq": 0.0}
    for row in saved["rows"].values():
        assert 0.0 < row["MRR"] <= 1.0 and 0.0 <= row["REC@10"] <= 1.0
    png = (tmp_path / "omnisage_task_ablation.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_ablation_bad_arguments(example, tmp_path, capsys):
    for argv, match in [
        (["--steps", "0"], "--steps must be >= 1"),
        (["--out-dir", str(tmp_path / "missing")], "is not a folder"),
    ]:
        with pytest.raises(SystemExit) as err:
            example.main(argv)
        assert err.value.code == 2
        assert match in capsys.readouterr().err
