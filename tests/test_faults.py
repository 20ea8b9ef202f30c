"""Faults at the command line, through the real command: interrupted and
resumed runs (signals to a ``python -m pyg_multisage.cli`` subprocess), run
folders that collide, outputs that cannot be written, damaged or hostile
files. Every failure is one line naming the flag or file, exit status 2
(130 / 143 for SIGINT / SIGTERM), never a traceback."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from pyg_multisage import __version__
from pyg_multisage import experiment as ex
from pyg_multisage.cli import _names, main

ROOT = Path(__file__).resolve().parents[1]
DATA = ["--synthetic-size", "200"]
TRAIN = [
    "train",
    *DATA,
    "--steps",
    "40",
    "--batch-size",
    "8",
    "--negatives",
    "8",
    "--num-walks",
    "5",
    "--num-neighbors",
    "5",
    "--checkpoint-every",
    "5",
    "--quiet",
]


def _one_line_error(capsys, *needles: str) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err, err
    assert len(err.splitlines()) == 1, err
    for needle in needles:
        assert needle in err, (needle, err)
    return err


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """One tiny uninterrupted run, shared by the tests of this module."""
    out = tmp_path_factory.mktemp("faults") / "run"
    assert main([*TRAIN, "--out", str(out)]) == 0
    return out


def _readonly_dir(tmp_path: Path) -> Path:
    """A folder this process cannot write into (root ignores permission
    bits, so it gets the read-only /sys)."""
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        return ro
    probe = Path("/sys/pyg-multisage-probe")
    try:
        probe.mkdir()
    except OSError:
        return Path("/sys")
    probe.rmdir()
    pytest.skip("no read-only folder available to this (root) process")


# ---------------------------------------------------------------------------
# Interruption and resume (subprocesses: signals)
# ---------------------------------------------------------------------------
def _spawn(argv: list[str]) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONWARNINGS="ignore")
    return subprocess.Popen(
        [sys.executable, "-m", "pyg_multisage.cli", *argv],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _signal_after_checkpoint(
    proc: subprocess.Popen, ckpt: Path, sig: int, after_inode: int | None = None
) -> tuple[int, str]:
    """Sends :obj:`sig` once :obj:`ckpt` exists (and is a new file when
    :obj:`after_inode` is given), then waits for the process."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        if ckpt.exists() and ckpt.stat().st_ino != after_inode:
            proc.send_signal(sig)
            break
        time.sleep(0.02)
    _, err = proc.communicate(timeout=600)
    return proc.returncode, err


def _interrupt_message(err: str, out: Path, signame: str) -> None:
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("pyg-multisage")]
    assert len(lines) == 1, err
    assert f"interrupted by {signame}" in lines[0]
    assert f"{out}.partial" in lines[0]
    assert f"resume with: pyg-multisage train --resume {out}" in lines[0]


def test_killed_training_resumes_to_the_uninterrupted_result(run_dir, tmp_path, capsys):
    out = tmp_path / "run"
    ckpt = ex.partial_dir(out) / "checkpoint.pt"
    # SIGTERM during training: checkpoint, one line, exit 143.
    rc, err = _signal_after_checkpoint(
        _spawn([*TRAIN, "--out", str(out)]), ckpt, signal.SIGTERM
    )
    assert rc == 128 + signal.SIGTERM, err
    _interrupt_message(err, out, "SIGTERM")
    assert not out.exists()
    first = torch.load(ckpt, weights_only=True)["step"]
    assert 5 <= first < 40
    assert json.loads((ex.partial_dir(out) / "config.json").read_text())["steps"] == 40

    # The unfinished run cannot be read as if finished.
    assert main(["evaluate", "--run", str(out)]) == 2
    _one_line_error(capsys, "has not finished", f"--resume {out}")
    # Nor started over by accident.
    assert main([*TRAIN, "--out", str(out)]) == 2
    _one_line_error(capsys, "interrupted run", "--resume")

    # Resumed, then SIGINT once it has written a later checkpoint: exit 130.
    inode = ckpt.stat().st_ino
    rc, err = _signal_after_checkpoint(
        _spawn(["train", "--resume", str(out), "--quiet"]), ckpt, signal.SIGINT, inode
    )
    assert rc == 128 + signal.SIGINT, err
    _interrupt_message(err, out, "SIGINT")
    assert torch.load(ckpt, weights_only=True)["step"] > first

    # Resumed to the end: the very metrics of the uninterrupted run.
    assert main(["train", "--resume", str(out), "--quiet"]) == 0
    assert not ex.partial_dir(out).exists()
    resumed = json.loads((out / "metrics.json").read_text())
    assert resumed == json.loads((run_dir / "metrics.json").read_text())
    a = torch.load(out / "checkpoint.pt", weights_only=True)["model"]
    b = torch.load(run_dir / "checkpoint.pt", weights_only=True)["model"]
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key

    capsys.readouterr()
    assert main(["train", "--resume", str(out)]) == 2
    _one_line_error(capsys, "finished run", "nothing to resume")
    assert main(["train", "--resume", str(out), "--lr", "0.1"]) == 2
    _one_line_error(capsys, "--resume", "--lr")


def test_divergence_is_one_line_and_exit_2(tmp_path, capsys):
    out = tmp_path / "run"
    argv = [*TRAIN[:3], "--steps", "30", *TRAIN[5:], "--lr", "1e6"]
    assert main([*argv, "--out", str(out)]) == 2
    _one_line_error(capsys, "training diverged", "lower the learning rate")


# ---------------------------------------------------------------------------
# Run folders
# ---------------------------------------------------------------------------
def test_existing_run_folder_is_refused_then_replaced_whole(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text("{}")
    (out / "metrics_val.json").write_text('{"MRR": 0.99}')  # a stale file
    quick = [*TRAIN[:3], "--steps", "2", *TRAIN[5:], "--out", str(out)]
    assert main(quick) == 2
    _one_line_error(capsys, str(out), "not empty", "--overwrite")
    assert main([*quick, "--overwrite"]) == 0
    assert (out / "metrics.json").is_file()
    assert not (out / "metrics_val.json").exists()
    assert not ex.partial_dir(out).exists()
    # A non-empty folder that is not a run is never deleted.
    other = tmp_path / "photos"
    other.mkdir()
    (other / "cat.jpg").write_bytes(b"x")
    capsys.readouterr()
    assert main([*quick[:-1], str(other), "--overwrite"]) == 2
    _one_line_error(capsys, "not a run folder")
    assert (other / "cat.jpg").is_file()


def test_force_reload_checks_the_run_folder_before_reprocessing(
    tmp_path, capsys, monkeypatch
):
    import pyg_multisage.datasets.dblp as dblp

    def boom(*a, **k):
        raise AssertionError("DBLP re-processed before --out was checked")

    monkeypatch.setattr(dblp, "DBLP", boom)
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text("{}")
    argv = ["train", "--dataset", "dblp", "--root", str(tmp_path / "d")]
    argv += ["--raw-dir", str(tmp_path), "--force-reload"]
    assert main([*argv, "--out", str(out)]) == 2
    _one_line_error(capsys, str(out), "not empty", "--overwrite")
    ro = _readonly_dir(tmp_path)
    assert main([*argv, "--out", str(ro / "run")]) == 2
    _one_line_error(capsys, "cannot create the run folder")
    # Checked only: nothing was created or removed.
    assert not ex.partial_dir(ro / "run").exists()
    assert (out / "config.json").is_file()


def _no_work(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("work started before the output was checked")

    # both where the CLI reads them and where run() reads load_task
    monkeypatch.setattr(ex, "load_task", boom)
    monkeypatch.setattr(ex.job, "load_task", boom)
    monkeypatch.setattr(ex, "load_run", boom)


def test_output_paths_are_checked_before_any_work(tmp_path, capsys, monkeypatch):
    _no_work(monkeypatch)
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    ro = _readonly_dir(tmp_path)
    a_dir = tmp_path / "dir.npy"
    a_dir.mkdir()
    cases = [
        ([*TRAIN, "--out", str(a_file / "run")], [str(a_file), "is a file"]),
        ([*TRAIN, "--out", str(ro / "run")], ["cannot create the run folder"]),
        (["sample", *DATA, "--out", str(ro / "t.pt")], ["--out", str(ro)]),
        (["sample", *DATA, "--out", str(a_file / "t.pt")], ["--out", "is a file"]),
        (["embed", "--run", "x", "--out", str(ro / "e.npy")], ["--out", str(ro)]),
        (["embed", "--run", "x", "--out", str(a_dir)], ["--out", "is a folder"]),
    ]
    for argv, needles in cases:
        assert main(argv) == 2, argv
        _one_line_error(capsys, *needles)


def test_parquet_without_pyarrow_fails_first(tmp_path, capsys, monkeypatch):
    _no_work(monkeypatch)
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    assert main(["embed", "--run", "x", "--out", str(tmp_path / "e.parquet")]) == 2
    _one_line_error(capsys, "--out", "needs pyarrow", "pyg_multisage[parquet]")


# ---------------------------------------------------------------------------
# Damaged and hostile files
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("damage", ["truncated", "garbled", "empty"])
def test_damaged_checkpoint_is_one_line(run_dir, tmp_path, capsys, damage):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    ckpt = run / "checkpoint.pt"
    raw = ckpt.read_bytes()
    if damage == "truncated":
        ckpt.write_bytes(raw[: len(raw) // 2])
    elif damage == "garbled":
        ckpt.write_bytes(raw[:64] + bytes(255 - b for b in raw[64:]))
    else:
        ckpt.write_bytes(b"")
    for argv in (
        ["evaluate", "--run", str(run)],
        ["embed", "--run", str(run), "--out", str(tmp_path / "e.npy")],
        ["related", "--run", str(run), "--query", "1"],
    ):
        assert main(argv) == 2, argv
        _one_line_error(capsys, str(ckpt))
    assert not (tmp_path / "e.npy").exists()


class _Payload:
    def __reduce__(self):
        return (os.system, ("touch pwned-by-table",))


def test_sample_load_refuses_what_is_not_a_table_file(run_dir, tmp_path, capsys):
    text = tmp_path / "notes.txt"
    text.write_text("12 34\n56 78\n")
    evil = tmp_path / "evil.pt"
    torch.save({"format": "x", "tables": _Payload()}, evil)
    cases = [
        (run_dir / "checkpoint.pt", "training checkpoint"),
        (text, "not a torch file"),
        (evil, "refused to load"),
        (tmp_path / "missing.pt", "no such file"),
    ]
    for path, needle in cases:
        assert main(["sample", "--load", str(path)]) == 2
        _one_line_error(capsys, f"--load {path}", needle)
    assert not (ROOT / "pwned-by-table").exists()
    assert not Path("pwned-by-table").exists()


def test_flag_errors(run_dir, tmp_path, capsys):
    run = str(run_dir)
    tables = tmp_path / "t.pt"
    cases = [
        ([*TRAIN, "--negatives", "-1", "--out", str(tmp_path / "r")], ["--negatives"]),
        (["sample", "--out", str(tables), "--load", str(tables)], ["--out", "--load"]),
        (["related", "--run", run, "--query", "1", "-k", "100000"], ["-k", "199"]),
        (["related", "--run", run, "--query", "1", "--context-type", "board"],
         ["--context-type needs --context"]),
    ]  # fmt: skip
    for sampler in ("walk", "pinsage", "ppr"):
        argv = ["sample", *DATA, "--sampler", sampler, "--num-neighbors", "0"]
        cases.append(([*argv, "--out", str(tables)], ["--num-neighbors must be >= 1"]))
    for argv, needles in cases:
        assert main(argv) == 2, argv
        _one_line_error(capsys, *needles)
    assert not (tmp_path / "r").exists() and not (tmp_path / "r.partial").exists()
    assert not tables.exists()


# ---------------------------------------------------------------------------
# What users expect
# ---------------------------------------------------------------------------
def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"pyg-multisage {__version__}"


def test_tables_round_trip_with_weights_only(tmp_path, capsys):
    out = tmp_path / "ppr.pt"
    argv = ["sample", *DATA, "--sampler", "ppr", "--num-neighbors", "3"]
    assert main([*argv, "--alpha", "0.3", "--eps", "1e-3", "--out", str(out)]) == 0
    obj = torch.load(out, weights_only=True)  # plain tensors only
    assert obj["sampler"] == "ppr" and obj["tables"]
    assert main(["sample", "--load", str(out)]) == 0
    assert "ppr neighbors of 'item'" in capsys.readouterr().out
    assert main([*argv, "--alpha", "1.5", "--out", str(out)]) == 2
    _one_line_error(capsys, "--alpha")


def test_context_names_come_from_the_dataset():
    from torch_geometric.data import HeteroData

    data = HeteroData()
    data["venue"].x = torch.zeros(2, 1)
    data["venue"].name = ["KDD", "VLDB"]
    data["term"].x = torch.zeros(3, 1)
    assert _names(data["venue"]) == ["KDD", "VLDB"]
    assert _names(data["term"]) is None


def test_save_figure_is_atomic_and_closes(tmp_path, monkeypatch):
    plt = pytest.importorskip("matplotlib.pyplot")
    from pyg_multisage.run_folder import save_figure

    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    save_figure(fig, tmp_path / "a.png", dpi=50)
    assert (tmp_path / "a.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not plt.fignum_exists(fig.number)
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]

    # A write that fails leaves the old file untouched and no temporary.
    fig2, _ = plt.subplots()

    def broken(path, **kw):
        open(path, "wb").write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(fig2, "savefig", broken)
    with pytest.raises(OSError, match="disk full"):
        save_figure(fig2, tmp_path / "a.png")
    assert (tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]
