import re

import numpy as np
import pytest
import torch

from pyg_multisage import experiment as ex
from pyg_multisage.cli import main
from pyg_multisage.distributed import embed_nodes, read_embedding_folder

pytest.importorskip("pyarrow")
TINY = ["--dataset", "synthetic", "--synthetic-size", "200"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "run"
    argv = ["train", *TINY, "--model", "multisage", "--steps", "2", "--batch-size", "8"]
    argv += ["--negatives", "8", "--num-walks", "5", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    _, task, model, batcher = ex.load_run(out)
    emb = ex.embed_all(model, batcher, task.data[task.target].num_nodes)
    return out, emb.numpy()


def test_in_process_embedding_folder_equals_embed_all(run, tmp_path):
    run_dir, want = run
    out = embed_nodes(
        run_dir, tmp_path / "emb", batch_size=64, chunk=25, progress=False
    )
    assert (
        sorted(p.name for p in out.iterdir())[1]
        == "part-000000000000-000000000064.parquet"
    )
    ids, got = read_embedding_folder(out)
    assert np.array_equal(ids, np.arange(200))
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_ray_embedding_equals_embed_all(ray_session, run, tmp_path):
    run_dir, want = run
    out = embed_nodes(
        run_dir,
        tmp_path / "emb",
        batch_size=70,
        ray=True,
        num_workers=2,
        progress=False,
    )
    ids, got = read_embedding_folder(out)
    assert np.array_equal(ids, np.arange(200))
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_index_is_memory_mapped_exact_on_small_sets_and_checks_width(run, tmp_path):
    pytest.importorskip("faiss")
    from pyg_multisage.distributed import ann

    _, emb = run
    path = tmp_path / "e.faiss"
    ann.build_index(emb, path, ef_search=256)
    assert [p.name for p in tmp_path.iterdir()] == ["e.faiss"]  # no temp file left
    index = ann.load_index(path)
    maps = (
        open("/proc/self/maps").read() if ann.os.path.exists("/proc/self/maps") else ""
    )
    if maps:
        assert str(path) in maps
    _, truth = ann.exact_search(emb, emb[:50], 10)
    _, found = ann.search(index, emb[:50], 10)
    assert ann.recall_at_k(found, truth) >= 0.95
    # scores are cosines: the query itself comes first with score 1
    scores, found = ann.search(index, emb[:5], 1)
    assert found[:, 0].tolist() == [0, 1, 2, 3, 4]
    np.testing.assert_allclose(scores[:, 0], 1.0, atol=1e-5)
    with pytest.raises(
        ValueError, match=r"e\.faiss holds \d+-dimensional vectors, but"
    ):
        ann.search(index, emb[:2, :7], 3, source=str(path))
    (tmp_path / "junk.faiss").write_bytes(b"not an index")
    with pytest.raises(ValueError, match="junk.faiss is not a readable faiss index"):
        ann.load_index(tmp_path / "junk.faiss")


def test_cli_index_and_related_with_index(run, tmp_path, capsys):
    pytest.importorskip("faiss")
    run_dir, emb = run
    npy = tmp_path / "e.npy"
    np.save(npy, emb)
    idx = tmp_path / "e.faiss"
    assert main(["index", "--embeddings", str(npy), "--out", str(idx)]) == 0
    base = ["related", "--run", str(run_dir), "--query", "3", "-k", "5"]
    for extra in ([], ["--context", "1"]):
        capsys.readouterr()
        assert main(base + extra) == 0
        exact = capsys.readouterr().out.splitlines()
        assert main(base + extra + ["--index", str(idx), "--candidates", "400"]) == 0
        approx = capsys.readouterr().out.splitlines()
        # the index returns the exact ranking (ids; scores to 3 decimals)
        ids = lambda lines: [
            int(m.group(1))
            for m in map(re.compile(r"^\s*\d+\.\s+\S+\s+(\d+)").match, lines)
            if m
        ]
        assert ids(approx) == ids(exact) and len(ids(exact)) == 5
    # an index of another width: one line, exit code 2
    np.save(npy, emb[:, :16])
    other = tmp_path / "o.faiss"
    assert main(["index", "--embeddings", str(npy), "--out", str(other)]) == 0
    capsys.readouterr()
    assert main(base + ["--index", str(other)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "o.faiss holds 16-dimensional" in err
    assert main(["index", "--embeddings", str(tmp_path / "no.npy"), "--out", "x"]) == 2
    assert "--embeddings" in capsys.readouterr().err


def test_cli_embed_folder_and_precompute(run, tmp_path, capsys):
    run_dir, want = run
    out = tmp_path / "emb"
    assert main(["embed", "--run", str(run_dir), "--out", str(out), "--quiet"]) == 0
    np.testing.assert_allclose(read_embedding_folder(out)[1], want, atol=1e-5)
    assert main(["embed", "--run", str(run_dir), "--out", "x.npy", "--ray"]) == 2
    assert "--ray writes a Parquet folder" in capsys.readouterr().err
    argv = ["precompute", *TINY, "--csr", str(tmp_path / "csr"), "--num-walks", "5"]
    argv += ["--out", str(tmp_path / "t"), "--quiet", "--batch-size", "64"]
    assert main(argv) == 0
    from pyg_multisage.distributed import read_tables

    ((table, ctx),) = read_tables(tmp_path / "t").values()
    assert ctx == "board" and table.num_seeds == 200
    assert main(argv) == 2  # --out exists
    assert "already exists" in capsys.readouterr().err
    assert main([*argv[:-5], "--out", str(tmp_path / "u"), "--workers", "0"]) == 2
    assert "--workers must be >= 1" in capsys.readouterr().err
    assert not (tmp_path / "u").exists()
    torch.manual_seed(0)


def test_exact_search_in_chunks_equals_a_full_sort():
    from pyg_multisage.distributed import ann

    rng = np.random.default_rng(0)
    base = rng.standard_normal((500, 8))
    queries = rng.standard_normal((37, 8))
    unit = base / np.linalg.norm(base, axis=1, keepdims=True)
    cos = (queries / np.linalg.norm(queries, axis=1, keepdims=True)) @ unit.T
    want = np.argsort(-cos, axis=1)[:, :5]
    for chunk_bytes in (4 * 500 * 3, 1 << 28):  # 3 queries per chunk; all at once
        scores, found = ann.exact_search(base, queries, 5, chunk_bytes=chunk_bytes)
        np.testing.assert_array_equal(found, want)
        np.testing.assert_allclose(scores, np.take_along_axis(cos, want, 1), atol=1e-5)
