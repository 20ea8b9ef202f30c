"""Batch inference: the embedding of every target node of a trained run,
sharded over id ranges, written as Parquet ``(id, embedding)``.

MultiSage §3.3 and OmniSage §4 embed every node offline and serve the
vectors from a nearest-neighbor index (:mod:`.ann`). :func:`embed_nodes`
rebuilds the run with :func:`~pyg_multisage.experiment.load_run` in each
worker (a Ray Data ``map_batches`` actor, or this process), embeds its id
ranges with the run's model and its neighbor sampler exactly as
:func:`~pyg_multisage.experiment.embed_all` does, and writes one Parquet shard
per range; the folder appears only when every range is written.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pyg_multisage._arraydir import AtomicDir
from pyg_multisage.distributed import shards

FORMAT = "pyg_multisage.embeddings"


class _EmbedWorker:
    """Loads the run once; writes the embeddings of every id range handed
    to it as a Parquet shard ``(id int64, embedding list<float32>)``."""

    def __init__(self, run_dir: str, folder: str, chunk: int, num_threads: int | None):
        from pyg_multisage.experiment import load_run

        if num_threads:
            torch.set_num_threads(num_threads)
        _, task, self.model, self.batcher = load_run(run_dir)
        self.num_nodes = task.data[task.target].num_nodes
        self.target = task.target
        self.folder = Path(folder)
        self.chunk = chunk

    @torch.no_grad()
    def embed(self, lo: int, hi: int) -> np.ndarray:
        parts = [
            self.model(self.batcher(torch.arange(a, min(a + self.chunk, hi))))
            for a in range(lo, hi, self.chunk)
        ]
        return torch.cat(parts).numpy().astype(np.float32, copy=False)

    def write(self, lo: int, hi: int) -> int:
        import pyarrow as pa

        emb = self.embed(lo, hi)
        d = emb.shape[1]
        vectors = pa.FixedSizeListArray.from_arrays(pa.array(emb.reshape(-1)), d)
        shards.write_part(
            self.folder,
            lo,
            hi,
            {"id": np.arange(lo, hi, dtype=np.int64), "embedding": vectors},
        )
        return d

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        dims = [
            self.write(int(lo), int(hi))
            for lo, hi in zip(batch["lo"], batch["hi"], strict=True)
        ]
        return {"lo": batch["lo"], "hi": batch["hi"], "dim": np.asarray(dims)}


def embed_nodes(
    run_dir: str | os.PathLike,
    out: str | os.PathLike,
    *,
    batch_size: int = 8192,
    chunk: int = 1024,
    ray: bool = False,
    num_workers: int = 2,
    cpus_per_worker: float = 0.5,
    threads_per_worker: int = 1,
    address: str | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Embeds every target node of the run in :obj:`run_dir` into the
    Parquet folder :obj:`out` (``_manifest.json`` and ``part-<lo>-<hi>``
    shards of :obj:`batch_size` ids; read it back with
    :func:`read_embedding_folder`).

    Args:
        run_dir (str): a run folder written by ``pyg-multisage train``.
        out (str): the folder to create; on a cluster, a path every node
            can write.
        batch_size (int): ids per shard. chunk (int): ids per forward pass.
        ray (bool): run on a Ray actor pool of :obj:`num_workers` actors
            (each reserving :obj:`cpus_per_worker` CPUs and running
            :obj:`threads_per_worker` torch threads) at :obj:`address`
            (default: a local cluster); otherwise in this process.
        overwrite (bool): replace an existing :obj:`out`.
        progress (bool): show a progress bar.
    """
    if batch_size < 1 or chunk < 1:
        raise ValueError(
            f"batch_size and chunk must be >= 1, got {batch_size}, {chunk}"
        )
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file():
        raise FileNotFoundError(f"{run_dir} holds no config.json: not a training run")
    with AtomicDir(out, overwrite=overwrite) as tmp:
        folder = str(tmp.path.resolve())
        if ray:
            from pyg_multisage.distributed._ray import init_ray, run_ranges

            # The id count comes from the run's graph; one local load is
            # cheap next to the job, and fails early on a broken run.
            local = _EmbedWorker(str(run_dir), folder, chunk, None)
            num_nodes, target = local.num_nodes, local.target
            del local
            init_ray(address)
            rows = run_ranges(
                _EmbedWorker,
                dict(
                    run_dir=str(run_dir.resolve()),
                    folder=folder,
                    chunk=chunk,
                    num_threads=threads_per_worker,
                ),
                shards.seed_ranges(num_nodes, batch_size),
                num_workers=num_workers,
                cpus_per_worker=cpus_per_worker,
                progress=progress,
                desc="embed",
            )
            dims = {int(r["dim"]) for r in rows}
        else:
            from tqdm.auto import tqdm

            worker = _EmbedWorker(str(run_dir), folder, chunk, None)
            num_nodes, target = worker.num_nodes, worker.target
            dims = {
                worker.write(lo, hi)
                for lo, hi in tqdm(
                    shards.seed_ranges(num_nodes, batch_size),
                    desc="embed",
                    disable=not progress,
                )
            }
        if len(dims) > 1:
            raise RuntimeError(f"workers returned embeddings of widths {sorted(dims)}")
        shards.check_ranges(tmp.path, num_nodes)
        shards.write_manifest(
            tmp.path,
            {
                "format": FORMAT,
                "run": str(run_dir.resolve()),
                "node_type": target,
                "num_nodes": num_nodes,
                "dim": dims.pop() if dims else 0,
            },
        )
        return tmp.commit()


def read_embedding_folder(folder: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """``(ids int64 [N], vectors float32 [N, d])`` of a folder written by
    :func:`embed_nodes`, after checking that the shards tile ``[0, N)``
    and that every row has the manifest's width."""
    meta = shards.read_manifest(folder, FORMAT)
    n, d = int(meta["num_nodes"]), int(meta["dim"])
    table = shards.read_parts(folder, n)
    ids = shards.as_int64(table.column("id"))
    if not np.array_equal(ids, np.arange(n)):
        raise ValueError(f"{folder}: shard ids do not run 0..{n - 1} in order")
    col: Any = table.column("embedding").combine_chunks()
    values = col.flatten().to_numpy(zero_copy_only=False)
    if values.size != n * d:
        raise ValueError(f"{folder}: rows are not {d} wide as the manifest says")
    return ids, values.reshape(n, d).astype(np.float32, copy=False)
