"""Damaged, stale and untrusted DBLP input: raw files, the processed cache,
downloads (issue 11, data and data-security parts).

Damage is done to copies in ``tmp_path``; the network is never touched
(``download_url`` is monkeypatched in every test that could reach it).
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import shutil
import urllib.error
from pathlib import Path

import pytest
import torch

import pyg_multisage.datasets.dblp as dblp_module
from pyg_multisage.datasets import DBLP, DBLP_RAW_FILES, read_dblp_raw
from pyg_multisage.datasets.dblp import (
    DBLP_RELEASE,
    DBLP_URL,
    download_dblp_raw,
    find_dblp_raw,
)

VENUE = ("paper", "published_in", "venue")


def _copy(src: Path, dst: Path) -> Path:
    """A writable copy of a raw folder (copyfile: the source is read-only)."""
    dst.mkdir(parents=True)
    for name in DBLP_RAW_FILES:
        shutil.copyfile(src / name, dst / name)
    return dst


@pytest.fixture
def real_copy(dblp_dir, tmp_path) -> Path:
    return _copy(dblp_dir, tmp_path / "dblp_copy")


@pytest.fixture
def no_env(monkeypatch):
    monkeypatch.delenv("PYG_MULTISAGE_DBLP", raising=False)


@pytest.fixture
def offline(monkeypatch):
    """Every download fails as it does without a network; calls are kept."""
    calls = []

    def fail(url, folder, log=True):
        calls.append(url)
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(dblp_module, "download_url", fail)
    return calls


@pytest.fixture
def cheap_features(monkeypatch):
    """Hashing 23,000 texts takes most of DBLP's processing time; the graph
    tests below do not look at features, so a stand-in keeps them fast."""
    monkeypatch.setattr(
        DBLP,
        "_text_features",
        lambda self, texts: torch.zeros(len(texts), self.num_text_features),
    )


@pytest.fixture
def count_process(monkeypatch):
    calls = []
    original = DBLP.process

    def counted(self):
        calls.append(self.raw_dir)
        original(self)

    monkeypatch.setattr(DBLP, "process", counted)
    return calls


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().split(b"\n")


# ---------------------------------------------------------------------------
# Damaged raw files: one clear error naming the file and the line.
# ---------------------------------------------------------------------------
TINY_DAMAGE = [
    # (file, new content, expected message)
    ("paper_author.txt", "", r"paper_author.txt is empty"),
    ("paper_term.txt", "10\t1\n10\t2\n12\t", r"paper_term.txt, line 3: .* no newline"),
    ("paper_term.txt", "10\t1\n1", r"paper_term.txt, line 2: the last line '1' has no"),
    ("paper_term.txt", "10\t1\t5\n", r"paper_term.txt, line 1: expected 2 .*got 3"),
    ("paper_term.txt", "10\t1\n13\n", r"paper_term.txt, line 2: expected 2 .*got 1"),
    ("paper_term.txt", "10\t1\n\n12\t3\n", r"paper_term.txt, line 2: empty line"),
    ("paper_term.txt", "10\tx\n", r"paper_term.txt, line 1: 'x' is not a non-neg"),
    ("paper_term.txt", "10\t1\n-3\t1\n", r"paper_term.txt, line 2: '-3' is not"),
    ("paper_term.txt", "10\t1.5\n", r"line 1: '1.5' is not a non-negative"),
    ("paper_term.txt", "10\t 1\n", r"line 1: ' 1' is not a non-negative"),
    ("paper_term.txt", "1" * 19 + "\t1\n", r"line 1: '1{19}' is not a non-negative"),
    ("paper_term.txt", "10\t1\n10\t9\n", r"paper_term.txt, line 2: term id 9 is not"),
    ("paper_author.txt", "10\t5\n77\t5\n", r"line 2: paper id 77 is not in paper.txt"),
    (
        "paper_conf.txt",
        "10\t100\n11\t100\n12\t101\n13\t101\n14\t100\n",
        r"paper_conf.txt: 1 papers have no venue, the first is paper 15 \(line 6 of",
    ),
    (
        "paper_conf.txt",
        "10\t100\n11\t100\n12\t101\n13\t101\n14\t100\n15\t101\n10\t100\n11\t101\n",
        r"paper_conf.txt, line 8: paper 11 gets a second venue 101 \(line 2 gives 100",
    ),
    ("paper.txt", "10\tA\n11\tB\n10\tC\n", r"paper.txt, line 3: id 10 repeats line 1"),
    ("paper.txt", "10\tA\n11\n", r"paper.txt, line 2: expected 'id<TAB>text'"),
    ("term.txt", "1\tgraph\n2\t \n3\tq\n", r"term.txt, line 2: no text after the id"),
    (
        "conf_label.txt",
        "101\t0\n101\t1\n",
        r"line 2: id 101 is labeled again \(also on line 1",
    ),
    ("conf_label.txt", "101\t4\tVLDB\n", r"conf_label.txt, line 1: label 4 is not in"),
    ("conf_label.txt", "101\n", r"line 1: expected at least 2 tab-separated"),
]


@pytest.mark.parametrize(("name", "text", "message"), TINY_DAMAGE)
def test_damaged_raw_file_names_file_and_line(
    tmp_path, make_tiny_dblp, name, text, message
):
    folder = make_tiny_dblp(tmp_path / "raw")
    read_dblp_raw(folder)  # the undamaged folder reads
    (folder / name).write_bytes(text.encode("latin-1"))
    with pytest.raises(ValueError, match=message) as err:
        read_dblp_raw(folder)
    assert str(folder / name) in str(err.value)
    assert "\n" not in str(err.value)


def test_empty_paper_author_through_dblp(tmp_path, make_tiny_dblp, no_env):
    """Was: "random_ expects 'from' to be less than 'to'" from the split."""
    folder = make_tiny_dblp(tmp_path / "raw")
    (folder / "paper_author.txt").write_bytes(b"")
    with pytest.raises(ValueError, match=r"paper_author.txt is empty"):
        DBLP(str(tmp_path / "root"), raw_dir=folder, num_features=8)
    assert not list((tmp_path / "root").rglob("*.pt"))


def test_real_release_recognised(dblp_dir):
    """The shared copy is the pinned release file by file; its conf_label.txt
    lacks the final newline, which is accepted for the release's own file."""
    for name in DBLP_RAW_FILES:
        blob = (dblp_dir / name).read_bytes()
        size, sha256, lines = DBLP_RELEASE[name]
        assert len(blob) == size
        assert hashlib.sha256(blob).hexdigest() == sha256
        assert blob.count(b"\n") + (not blob.endswith(b"\n")) == lines
    assert not (dblp_dir / "conf_label.txt").read_bytes().endswith(b"\n")


def test_real_paper_conf_cut_to_7000_lines(real_copy):
    """Issue 11: 7,376 papers were left without a venue, silently."""
    path = real_copy / "paper_conf.txt"
    path.write_bytes(b"\n".join(_lines(path)[:7000]) + b"\n")
    with pytest.raises(ValueError, match=r"paper_conf.txt: 7,376 papers have no venue"):
        read_dblp_raw(real_copy)


def test_real_paper_term_cut_mid_line(real_copy):
    """Issue 11: 58,521 of 114,624 links loaded, the partial last line too."""
    path = real_copy / "paper_term.txt"
    blob = path.read_bytes()
    cut = blob[: len(blob) // 2]
    assert not cut.endswith(b"\n")
    path.write_bytes(cut)
    line = cut.count(b"\n") + 1
    assert line == 58_521
    with pytest.raises(ValueError, match=rf"paper_term.txt, line {line}: the last"):
        read_dblp_raw(real_copy)


def test_real_paper_term_cut_at_line_boundary(real_copy):
    """Structurally valid, caught by the release's line count."""
    path = real_copy / "paper_term.txt"
    path.write_bytes(b"\n".join(_lines(path)[:58_520]) + b"\n")
    with pytest.raises(
        ValueError,
        match=r"paper_term.txt has 58,520 lines where the DBLP release has 114,624",
    ):
        read_dblp_raw(real_copy)


def test_real_edited_conf_label_needs_its_newline(real_copy):
    """Only the release's own conf_label.txt may lack the final newline."""
    path = real_copy / "conf_label.txt"
    blob = path.read_bytes()
    path.write_bytes(blob.replace(b"4096\t3\t", b"4096\t1\t"))
    with pytest.raises(ValueError, match=r"conf_label.txt, line 20: the last line"):
        read_dblp_raw(real_copy)
    path.write_bytes(blob.replace(b"4096\t3\t", b"4096\t1\t") + b"\n")
    assert int(read_dblp_raw(real_copy)["venue"].y[-1]) == 1


def test_other_content_is_checked_for_structure_only(tmp_path, make_tiny_dblp):
    """Without the release's node files, line counts are free."""
    folder = make_tiny_dblp(tmp_path / "raw")
    (folder / "paper_term.txt").write_text("10\t1\n")
    assert read_dblp_raw(folder)["paper", "has_term", "term"].edge_index.size(1) == 1


# ---------------------------------------------------------------------------
# The processed cache is keyed on the raw folder and its content.
# ---------------------------------------------------------------------------
def _venue_of_first_paper(ds: DBLP) -> int:
    ei = ds[0][VENUE].edge_index
    return int(ei[1, ei[0] == 0])


def test_cache_follows_raw_content(tmp_path, make_tiny_dblp, no_env, count_process):
    raw = make_tiny_dblp(tmp_path / "raw")
    root = str(tmp_path / "root")
    ds = DBLP(root, raw_dir=raw, num_features=8)
    assert _venue_of_first_paper(ds) == 0 and len(count_process) == 1
    manifest = json.loads(Path(ds.manifest_path).read_text())
    assert manifest["raw_dir"] == str(raw.resolve())
    assert manifest["raw_files"]["paper_conf.txt"] == {
        "size": (raw / "paper_conf.txt").stat().st_size,
        "sha256": hashlib.sha256((raw / "paper_conf.txt").read_bytes()).hexdigest(),
    }
    DBLP(root, raw_dir=raw, num_features=8)
    assert len(count_process) == 1  # unchanged: not processed again
    # paper 10 moves to venue 101: same size, same line count
    text = (raw / "paper_conf.txt").read_text().replace("10\t100", "10\t101")
    (raw / "paper_conf.txt").write_text(text)
    ds = DBLP(root, raw_dir=raw, num_features=8)
    assert len(count_process) == 2 and _venue_of_first_paper(ds) == 1
    # the same content in another folder: another key
    other = shutil.copytree(raw, tmp_path / "other")
    DBLP(root, raw_dir=other, num_features=8)
    assert len(count_process) == 3
    # force_reload rebuilds a valid cache
    DBLP(root, raw_dir=other, num_features=8, force_reload=True)
    assert len(count_process) == 4
    # another pre_transform: rebuilt, not only warned about
    DBLP(root, raw_dir=other, num_features=8, pre_transform=lambda d: d)
    assert len(count_process) == 5
    leftovers = [p.name for p in Path(root, "processed").iterdir()]
    assert not [n for n in leftovers if n.endswith(".tmp")], leftovers


def test_damaged_raw_keeps_the_old_cache(tmp_path, make_tiny_dblp, no_env, offline):
    raw = make_tiny_dblp(tmp_path / "raw")
    root = tmp_path / "root"
    ds = DBLP(str(root), raw_dir=raw, num_features=8)
    before = {p.name: p.read_bytes() for p in (root / "processed").iterdir()}
    (raw / "paper_term.txt").write_bytes(b"10\t1\n10\t")
    with pytest.raises(ValueError, match="paper_term.txt, line 2"):
        DBLP(str(root), raw_dir=raw, num_features=8)
    after = {p.name: p.read_bytes() for p in (root / "processed").iterdir()}
    assert after == before
    # with no raw folder named, the (still valid) cache is used as is
    again = DBLP(str(root), num_features=8)
    assert torch.equal(again[0].train_pairs, ds[0].train_pairs)
    assert offline == []


def test_real_copy_damaged_then_fixed(
    real_copy, dblp_dir, tmp_path, no_env, cheap_features, count_process
):
    """Issue 11's case on copies of the real files: a damaged folder no
    longer yields a graph; once fixed, the fixed graph is the one used."""
    root = str(tmp_path / "root")
    good = (real_copy / "paper_conf.txt").read_bytes()
    lines = good.split(b"\n")
    (real_copy / "paper_conf.txt").write_bytes(b"\n".join(lines[:7000]) + b"\n")
    with pytest.raises(ValueError, match="paper_conf.txt: 7,376 papers have no venue"):
        DBLP(root, raw_dir=real_copy)
    # a valid edit (the first paper moves to another venue) is processed ...
    pid, venue = lines[0].split(b"\t")
    venues = [v.split(b"\t")[0] for v in _lines(real_copy / "conf.txt") if v]
    moved = next(v for v in venues if v != venue)
    (real_copy / "paper_conf.txt").write_bytes(
        b"\n".join([pid + b"\t" + moved, *lines[1:]])
    )
    edited = DBLP(root, raw_dir=real_copy)[0]
    # ... and the fixed files replace it: no stale graph
    (real_copy / "paper_conf.txt").write_bytes(good)
    fixed = DBLP(root, raw_dir=real_copy)[0]
    assert len(count_process) == 3  # the damaged try, the edit, the fix
    truth = read_dblp_raw(dblp_dir)[VENUE].edge_index
    assert fixed[VENUE].edge_index.size(1) == 14_376
    assert torch.equal(fixed[VENUE].edge_index, truth)
    assert not torch.equal(edited[VENUE].edge_index, truth)


# ---------------------------------------------------------------------------
# Only processed files present; offline; untrusted processed files.
# ---------------------------------------------------------------------------
def test_processed_only_does_not_download(tmp_path, make_tiny_dblp, no_env, offline):
    raw = make_tiny_dblp(tmp_path / "raw")
    root = str(tmp_path / "root")
    ds = DBLP(root, raw_dir=raw, num_features=8)
    shutil.rmtree(raw)
    again = DBLP(root, num_features=8)
    assert offline == []
    assert torch.equal(again[0].test_pairs, ds[0].test_pairs)
    assert again[0]["paper"].title == ds[0]["paper"].title


def test_offline_error_is_one_sentence(tmp_path, no_env, offline):
    with pytest.raises(FileNotFoundError) as err:
        DBLP(str(tmp_path / "root"), num_features=8)
    msg = str(err.value)
    assert "PYG_MULTISAGE_DBLP" in msg and "raw_dir" in msg
    assert "Temporary failure in name resolution" in msg
    assert "\n" not in msg
    assert err.value.__cause__ is None and err.value.__suppress_context__
    assert len(offline) == 1
    assert offline[0] == DBLP_URL.format(name=DBLP_RAW_FILES[0])
    # nothing half-downloaded stays behind
    assert list((tmp_path / "root" / "raw").iterdir()) == []


def test_named_folder_lacking_files_is_an_error(tmp_path, monkeypatch, offline):
    monkeypatch.setenv("PYG_MULTISAGE_DBLP", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"\$PYG_MULTISAGE_DBLP .* lacks"):
        DBLP(str(tmp_path / "root"), num_features=8)
    monkeypatch.setenv("PYG_MULTISAGE_DBLP", str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match=r"PYG_MULTISAGE_DBLP .* not a folder"):
        DBLP(str(tmp_path / "root"), num_features=8)
    with pytest.raises(FileNotFoundError, match=r"raw_dir .* lacks the DBLP files"):
        DBLP(str(tmp_path / "root"), raw_dir=tmp_path, num_features=8)
    assert offline == []


class _Payload:
    """Unpickling this runs ``Path.touch(marker)``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _plant(ds: DBLP, blob: bytes) -> None:
    """Replace the processed file by :obj:`blob`, with a matching manifest."""
    Path(ds.processed_paths[0]).write_bytes(blob)
    manifest = json.loads(Path(ds.manifest_path).read_text())
    manifest["processed"] = {
        "size": len(blob),
        "sha256": hashlib.sha256(blob).hexdigest(),
    }
    Path(ds.manifest_path).write_text(json.dumps(manifest))


def test_processed_file_with_a_payload_is_never_run(
    tmp_path, make_tiny_dblp, no_env, offline, count_process
):
    raw = make_tiny_dblp(tmp_path / "raw")
    root = str(tmp_path / "root")
    ds = DBLP(root, raw_dir=raw, num_features=8)
    marker = tmp_path / "pwned"
    buffer = io.BytesIO()
    torch.save({"x": _Payload(marker)}, buffer)  # a torch file carrying it
    _plant(ds, buffer.getvalue())
    rebuilt = DBLP(root, raw_dir=raw, num_features=8)  # refused, rebuilt
    assert not marker.exists()
    assert len(count_process) == 2
    assert torch.equal(rebuilt[0].train_pairs, ds[0].train_pairs)
    # with no raw folder to rebuild from: a clear error, still not run
    _plant(ds, pickle.dumps(_Payload(marker)))
    with pytest.raises(FileNotFoundError, match="PYG_MULTISAGE_DBLP"):
        DBLP(root, num_features=8)
    assert not marker.exists()


def test_damaged_processed_file_is_rebuilt(tmp_path, make_tiny_dblp, no_env):
    raw = make_tiny_dblp(tmp_path / "raw")
    root = str(tmp_path / "root")
    ds = DBLP(root, raw_dir=raw, num_features=8)
    path = Path(ds.processed_paths[0])
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])
    again = DBLP(root, raw_dir=raw, num_features=8)
    assert path.read_bytes() == good
    assert torch.equal(again[0].val_pairs, ds[0].val_pairs)
    Path(ds.manifest_path).write_text("{not json")
    DBLP(root, raw_dir=raw, num_features=8)
    assert json.loads(Path(ds.manifest_path).read_text())["format"] == 1


# ---------------------------------------------------------------------------
# Downloads are verified against the pinned release.
# ---------------------------------------------------------------------------
def _serve(monkeypatch, source: dict[str, bytes]) -> list[str]:
    urls = []

    def fake_download(url, folder, log=True):
        urls.append(url)
        name = url.rsplit("/", 1)[1]
        path = Path(folder) / name
        path.write_bytes(source[name])
        return str(path)

    monkeypatch.setattr(dblp_module, "download_url", fake_download)
    return urls


def test_download_verified(dblp_dir, tmp_path, monkeypatch):
    source = {n: (dblp_dir / n).read_bytes() for n in DBLP_RAW_FILES}
    urls = _serve(monkeypatch, source)
    folder = download_dblp_raw(tmp_path / "raw", log=False)
    assert sorted(p.name for p in folder.iterdir()) == sorted(DBLP_RAW_FILES)
    assert all((folder / n).read_bytes() == source[n] for n in DBLP_RAW_FILES)
    prefix = (
        "https://raw.githubusercontent.com/cynricfu/MAGNN/"
        "b8557f58ae04a7fe3e7a9fde64ea87c81b331efe/data/raw/DBLP/"
    )
    assert urls == [prefix + n for n in DBLP_RAW_FILES]
    # a second call finds everything in place
    download_dblp_raw(folder, log=False)
    assert len(urls) == len(DBLP_RAW_FILES)


def test_download_wrong_bytes_refused_and_deleted(
    dblp_dir, tmp_path, monkeypatch, make_tiny_dblp
):
    source = {n: (dblp_dir / n).read_bytes() for n in DBLP_RAW_FILES}
    source["paper_term.txt"] = source["paper_term.txt"][:-1] + b"7"  # same size
    _serve(monkeypatch, source)
    folder = tmp_path / "raw"
    with pytest.raises(ValueError, match=r"paper_term.txt .*refused and deleted") as e:
        download_dblp_raw(folder, log=False)
    assert DBLP_RELEASE["paper_term.txt"][1] in str(e.value)
    names = sorted(p.name for p in folder.iterdir())
    # the files verified before it stay; the bad one and the temp folder go
    assert names == sorted(DBLP_RAW_FILES[:6])
    # a non-release file already in the folder is refused, not overwritten
    tiny = make_tiny_dblp(tmp_path / "tiny")
    shutil.copyfile(tiny / "paper.txt", folder / "paper.txt")
    with pytest.raises(ValueError, match=r"paper.txt is not the DBLP release's"):
        download_dblp_raw(folder, log=False)
    assert (folder / "paper.txt").read_bytes() == (tiny / "paper.txt").read_bytes()


def test_dblp_downloads_into_root_raw(
    dblp_dir, tmp_path, monkeypatch, no_env, cheap_features
):
    urls = _serve(monkeypatch, {n: (dblp_dir / n).read_bytes() for n in DBLP_RAW_FILES})
    root = tmp_path / "root"
    ds = DBLP(str(root))
    assert ds.raw_dir == str(root / "raw")
    assert len(urls) == len(DBLP_RAW_FILES)
    assert ds[0][VENUE].edge_index.size(1) == 14_376
    # later: root/raw is named, nothing downloads again
    DBLP(str(root))
    assert len(urls) == len(DBLP_RAW_FILES)


def test_find_dblp_raw_reads_only_what_is_named(tmp_path, monkeypatch, dblp_dir):
    """No development-only fallback: without a path and without the
    variable, nothing is found, wherever the package lies."""
    monkeypatch.delenv("PYG_MULTISAGE_DBLP", raising=False)
    assert find_dblp_raw() is None
    assert dblp_module.dblp_raw_candidates() == []
    with pytest.raises(FileNotFoundError, match="set PYG_MULTISAGE_DBLP"):
        find_dblp_raw(required=True)
    assert find_dblp_raw(dblp_dir) == dblp_dir
    source = Path(dblp_module.__file__).read_text()
    assert '"shared"' not in source and "parents[" not in source


# ---------------------------------------------------------------------------
# The command line: --force-reload and data errors as one line, exit 2.
# ---------------------------------------------------------------------------
def test_cli_force_reload(tmp_path, make_tiny_dblp, no_env, count_process, capsys):
    from pyg_multisage.cli import main

    raw = make_tiny_dblp(tmp_path / "raw")
    argv = ["sample", "--dataset", "dblp", "--root", str(tmp_path / "root")]
    argv += ["--raw-dir", str(raw), "--num-walks", "2", "--num-neighbors", "2"]
    assert main([*argv, "--out", str(tmp_path / "a.pt")]) == 0
    assert len(count_process) == 1
    assert main([*argv, "--out", str(tmp_path / "b.pt")]) == 0
    assert len(count_process) == 1  # the cache is valid
    assert main([*argv, "--out", str(tmp_path / "c.pt"), "--force-reload"]) == 0
    assert len(count_process) == 2  # rebuilt once, then loaded
    capsys.readouterr()
    # damaged raw files: one line naming the file and line, exit status 2
    (raw / "paper_term.txt").write_bytes(b"10\t1\n10\t")
    assert main([*argv, "--out", str(tmp_path / "d.pt")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "paper_term.txt, line 2:" in err[0]
    # --force-reload is for the cached dataset only
    synthetic = ["sample", "--dataset", "synthetic", "--force-reload"]
    assert main([*synthetic, "--out", "x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "pyg-multisage sample: error: --force-reload applies to --dataset dblp only"
    ]


def test_cli_offline_is_one_line(tmp_path, no_env, offline, capsys):
    from pyg_multisage.cli import main

    argv = ["sample", "--dataset", "dblp", "--root", str(tmp_path / "root")]
    assert main([*argv, "--out", str(tmp_path / "a.pt")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "PYG_MULTISAGE_DBLP" in err[0], err
