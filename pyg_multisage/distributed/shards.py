"""Parquet folders partitioned by seed range: one file per contiguous range
``[lo, hi)`` of node ids, written by any number of workers, checked when read.

A folder holds ``_manifest.json`` (what the shards are and how many ids they
must cover) and one or more sub-folders of ``part-<lo>-<hi>.parquet`` files
whose schema metadata repeats ``lo`` and ``hi``. The shards of a sub-folder
must tile ``[0, num_ids)`` exactly: a gap or an overlap is an error naming the
files (:func:`check_ranges`). Workers write their shards into the temporary
sibling of :class:`~pyg_multisage._arraydir.AtomicDir`; the folder appears at
its final name only when every range is present, so a failed or killed job
leaves nothing half-written behind.

Needs pyarrow (the ``[parquet]`` extra), imported on first use.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

MANIFEST = "_manifest.json"
_PART = re.compile(r"^part-(\d+)-(\d+)\.parquet$")


def _pa() -> tuple[Any, Any]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ImportError(
            "Parquet tables need pyarrow: pip install 'pyg_multisage[parquet]'"
        ) from None
    return pa, pq


def part_name(lo: int, hi: int) -> str:
    """``part-<lo>-<hi>.parquet`` with 12-digit zero padding (sorts by range)."""
    return f"part-{lo:012d}-{hi:012d}.parquet"


def write_part(
    folder: str | os.PathLike, lo: int, hi: int, columns: Mapping[str, Any]
) -> Path:
    """Writes one shard ``[lo, hi)`` of :obj:`columns` (numpy arrays, or a
    pyarrow array for list columns) into :obj:`folder`: first under a dot
    name, then renamed, so a reader never sees a partial file."""
    pa, pq = _pa()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    table = pa.table(dict(columns))
    meta = {b"lo": str(lo).encode(), b"hi": str(hi).encode()}
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **meta})
    path = folder / part_name(lo, hi)
    tmp = folder / f".{path.name}.tmp-{os.getpid()}"
    pq.write_table(table, tmp)
    os.replace(tmp, path)
    return path


def remove_temporaries(folder: str | os.PathLike) -> int:
    """Deletes the dot-named temporary files :func:`write_part` leaves behind
    when its process dies mid-write (a killed worker whose range was then
    retried by another); returns how many were removed."""
    folder = Path(folder)
    stale = [p for p in folder.glob(".part-*.parquet.tmp-*") if p.is_file()]
    for p in stale:
        p.unlink(missing_ok=True)
    return len(stale)


def check_ranges(folder: str | os.PathLike, num_ids: int) -> list[Path]:
    """The shard files of :obj:`folder` in id order, after checking that
    their ranges tile ``[0, num_ids)`` with no gap and no overlap."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"shard folder {folder} does not exist")
    parts = []
    for p in folder.iterdir():
        if p.name.startswith((".", "_")):
            continue
        m = _PART.match(p.name)
        if m is None:
            raise ValueError(f"{p}: not a shard (expected part-<lo>-<hi>.parquet)")
        lo, hi = int(m.group(1)), int(m.group(2))
        if hi <= lo:
            raise ValueError(f"{p}: empty or reversed range [{lo}, {hi})")
        parts.append((lo, hi, p))
    parts.sort()
    end = 0
    for lo, hi, p in parts:
        if lo > end:
            raise ValueError(
                f"{folder}: ids [{end}, {lo}) are in no shard (gap before {p.name})"
            )
        if lo < end:
            raise ValueError(
                f"{folder}: {p.name} overlaps the shard before it "
                f"(starts at {lo} < {end})"
            )
        end = hi
    if end != num_ids:
        raise ValueError(
            f"{folder}: shards cover ids [0, {end}), the manifest says {num_ids}"
        )
    return [p for _, _, p in parts]


def read_parts(folder: str | os.PathLike, num_ids: int) -> Any:
    """All shards of :obj:`folder` as one pyarrow table, in id order, after
    :func:`check_ranges`; each file's rows must lie in its own range (the
    column :obj:`id_column` is checked by the caller)."""
    pa, pq = _pa()
    files = check_ranges(folder, num_ids)
    tables = []
    for f in files:
        try:
            tables.append(pq.read_table(f))
        except Exception as err:  # pyarrow raises several types
            raise ValueError(f"{f}: not a readable Parquet file ({err})") from None
    return pa.concat_tables(tables) if tables else None


def write_manifest(folder: str | os.PathLike, meta: Mapping[str, Any]) -> None:
    (Path(folder) / MANIFEST).write_text(json.dumps(dict(meta), indent=2))


def read_manifest(folder: str | os.PathLike, kind: str) -> dict[str, Any]:
    """The ``_manifest.json`` of :obj:`folder`, which must be of :obj:`kind`."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{folder} has no {MANIFEST}: not a {kind} folder")
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    if meta.get("format") != kind:
        raise ValueError(f"{path}: format {meta.get('format')!r}, expected {kind!r}")
    return meta


def seed_ranges(num_ids: int, batch_size: int, lo: int = 0) -> list[tuple[int, int]]:
    """``[(lo, hi), ...]`` cutting ``[lo, num_ids)`` into pieces of at most
    :obj:`batch_size` ids."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return [(a, min(a + batch_size, num_ids)) for a in range(lo, num_ids, batch_size)]


def as_int64(col: Any) -> np.ndarray:
    return col.to_numpy().astype(np.int64, copy=False)
