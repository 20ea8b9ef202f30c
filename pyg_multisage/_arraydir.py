"""A directory of ``.npy`` arrays described by a JSON manifest, written
atomically and checked when read.

This is the on-disk format under :meth:`pyg_multisage.graph.HeteroCSR.save`
and the memory-mapped stores of :mod:`pyg_multisage.storage`. A directory
holds one ``<name>.npy`` per array and ``manifest.json``::

    {"format": "<kind>", "version": 1, "meta": {...},
     "arrays": {"<name>": {"file": "<name>.npy", "dtype": "<i4",
                           "shape": [E], "blake2b": "<hex digest of the file>"}},
     "fingerprint": "<hex>"}

``fingerprint`` is a digest of ``format``, ``meta`` and every array's entry
(digest included): two directories share it exactly when they hold the same
data. Writers fill a temporary sibling directory (:class:`AtomicDir`) and
rename it into place only when everything is written, so a failed or
interrupted write leaves nothing at the destination. Readers
(:func:`read_array_dir`) check the manifest against every file (present,
header dtype and shape, exact size) and name the offending file; with
``verify=True`` they also re-hash the files.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "MANIFEST",
    "AtomicDir",
    "ArrayDirError",
    "digest_file",
    "fingerprint_of",
    "open_npy",
    "read_array_dir",
    "read_manifest",
    "reload_page_cache",
    "write_manifest",
]

MANIFEST = "manifest.json"
VERSION = 1
_CHUNK = 1 << 22  # bytes hashed per read, into one reused buffer


class ArrayDirError(ValueError):
    """A saved array directory is missing, truncated or inconsistent."""


def digest_file(path: str | os.PathLike) -> str:
    """BLAKE2b (16-byte) hex digest of a file's bytes, read in chunks into
    one reused 4 MB buffer (the file is not mapped, and reading allocates
    nothing per chunk: hashing a graph adds 4 MB to the process's RSS)."""
    h = hashlib.blake2b(digest_size=16)
    buf = bytearray(_CHUNK)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


def fingerprint_of(kind: str, meta: Mapping[str, Any], arrays: Mapping) -> str:
    """The fingerprint of a manifest's content (see the module docstring)."""
    body = json.dumps(
        {"format": kind, "meta": meta, "arrays": arrays},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.blake2b(body.encode(), digest_size=16).hexdigest()


def open_npy(path: str | os.PathLike, dtype: np.dtype | type, shape: tuple) -> Any:
    """A new ``.npy`` file of :obj:`dtype` and :obj:`shape`, memory-mapped
    for writing (filled in chunks by streaming writers)."""
    return np.lib.format.open_memmap(
        os.fspath(path), mode="w+", dtype=np.dtype(dtype), shape=tuple(shape)
    )


def reload_page_cache(path: str | os.PathLike) -> None:
    """Writes :obj:`path`'s dirty pages to disk and drops them from the page
    cache (Linux; elsewhere nothing happens), so the next read brings the
    file back through readahead.

    A file filled by scattered writes through a memory map (the streaming
    CSR builder's ``indices``) sits in the page cache as single 4 KB pages;
    read back sequentially it comes in large folios, which the kernel maps
    with 2 MB entries (measured on ext4, Linux 6.18): random reads of a
    memory-mapped graph then miss the TLB as rarely as an in-memory array
    backed by transparent huge pages (``benchmarks/scale.py`` reports the
    mapped share as ``FilePmdMapped``). :func:`write_manifest`'s digest is
    that sequential read."""
    if not hasattr(os, "posix_fadvise"):
        return
    fd = os.open(os.fspath(path), os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


class AtomicDir:
    """A temporary sibling of :obj:`dest` that becomes :obj:`dest` on
    :meth:`commit`; used as a context manager, an exception (or a missing
    commit) removes the temporary directory and leaves :obj:`dest` as it was.

    Args:
        dest (str or Path): the final directory.
        overwrite (bool): replace an existing :obj:`dest`; otherwise an
            existing one raises :class:`FileExistsError`. (default: :obj:`False`)
    """

    def __init__(self, dest: str | os.PathLike, overwrite: bool = False) -> None:
        self.dest = Path(dest)
        if self.dest.exists() and not overwrite:
            raise FileExistsError(
                f"{self.dest} already exists; pass overwrite=True to replace it"
            )
        self.overwrite = overwrite
        self.dest.parent.mkdir(parents=True, exist_ok=True)
        self.path = self.dest.parent / f".{self.dest.name}.tmp-{uuid.uuid4().hex[:8]}"
        self.path.mkdir()
        self._done = False

    def __enter__(self) -> AtomicDir:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self._done:
            shutil.rmtree(self.path, ignore_errors=True)

    def commit(self) -> Path:
        """Renames the temporary directory to :obj:`dest` (replacing it when
        :obj:`overwrite` was set) and returns :obj:`dest`."""
        old = None
        if self.dest.exists():
            if not self.overwrite:
                raise FileExistsError(f"{self.dest} appeared while writing")
            old = self.dest.parent / f".{self.dest.name}.old-{uuid.uuid4().hex[:8]}"
            os.rename(self.dest, old)
        os.rename(self.path, self.dest)
        self._done = True
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return self.dest


def _header(path: Path) -> tuple[np.dtype, tuple[int, ...], int]:
    """``(dtype, shape, data offset)`` from a ``.npy`` header."""
    with open(path, "rb") as f:
        try:
            major, _ = np.lib.format.read_magic(f)
            if major == 1:
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        except ValueError as err:
            raise ArrayDirError(f"{path} is not a valid .npy file ({err})") from None
        if fortran and len(shape) > 1:
            raise ArrayDirError(f"{path} is stored in Fortran order")
        return dtype, tuple(shape), f.tell()


def write_manifest(
    path: str | os.PathLike,
    kind: str,
    meta: Mapping[str, Any],
    names: Iterable[str],
) -> str:
    """Describes the arrays ``<name>.npy`` already written in :obj:`path`
    (dtype and shape from their headers, digest of their bytes), writes
    ``manifest.json`` there and returns the fingerprint."""
    path = Path(path)
    arrays = {}
    for name in names:
        file = path / f"{name}.npy"
        dtype, shape, _ = _header(file)
        arrays[name] = {
            "file": file.name,
            "dtype": dtype.str,
            "shape": list(shape),
            "blake2b": digest_file(file),
        }
    meta = json.loads(json.dumps(meta))  # plain JSON types, as read back
    fp = fingerprint_of(kind, meta, arrays)
    manifest = {
        "format": kind,
        "version": VERSION,
        "meta": meta,
        "arrays": arrays,
        "fingerprint": fp,
    }
    tmp = path / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=1))
    os.replace(tmp, path / MANIFEST)
    return fp


def read_manifest(path: str | os.PathLike, kind: str) -> dict[str, Any]:
    """The manifest of :obj:`path`, checked for its format and fingerprint."""
    path = Path(path)
    file = path / MANIFEST
    if not path.is_dir():
        raise FileNotFoundError(f"{path} is not a directory (expected a saved {kind})")
    if not file.is_file():
        raise ArrayDirError(f"{file} is missing: {path} is not a saved {kind}")
    try:
        manifest = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ArrayDirError(f"{file} is not valid JSON ({err})") from None
    keys = ("format", "version", "meta", "arrays", "fingerprint")
    if not isinstance(manifest, dict) or any(k not in manifest for k in keys):
        raise ArrayDirError(f"{file} lacks one of the keys {list(keys)}")
    if manifest["format"] != kind:
        raise ArrayDirError(
            f"{file} describes a '{manifest['format']}', expected a '{kind}'"
        )
    if manifest["version"] != VERSION:
        raise ArrayDirError(
            f"{file} has format version {manifest['version']}; this version of "
            f"pyg_multisage reads version {VERSION}"
        )
    fp = fingerprint_of(kind, manifest["meta"], manifest["arrays"])
    if fp != manifest["fingerprint"]:
        raise ArrayDirError(
            f"{file} was edited after writing: its content does not match its "
            f"fingerprint"
        )
    return manifest


def read_array_dir(
    path: str | os.PathLike,
    kind: str,
    mmap: bool = True,
    verify: bool = False,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Reads a directory written with :func:`write_manifest`.

    Every array of the manifest must exist with the manifest's dtype and
    shape and exactly its size; otherwise an :class:`ArrayDirError` names the
    file. With :obj:`mmap` the arrays are read-only memory maps (plain
    :class:`numpy.ndarray` views of them), else loaded into memory. With
    :obj:`verify` every file is re-hashed against the manifest (reads all
    bytes). Returns ``(manifest, arrays)``.
    """
    path = Path(path)
    manifest = read_manifest(path, kind)
    arrays: dict[str, np.ndarray] = {}
    for name, entry in manifest["arrays"].items():
        file = path / entry["file"]
        if not file.is_file():
            raise ArrayDirError(f"{file} is missing (listed in {path / MANIFEST})")
        dtype, shape, offset = _header(file)
        want_dtype, want_shape = np.dtype(entry["dtype"]), tuple(entry["shape"])
        if dtype != want_dtype or shape != want_shape:
            raise ArrayDirError(
                f"{file} holds {dtype.str} {list(shape)}, but the manifest says "
                f"{want_dtype.str} {list(want_shape)}: it belongs to another graph "
                f"or was overwritten"
            )
        size = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        actual = file.stat().st_size
        if actual != size:
            what = "truncated" if actual < size else "longer than its header says"
            raise ArrayDirError(
                f"{file} is {what}: {actual} bytes, expected {size} for "
                f"{dtype.str} {list(shape)}"
            )
        if verify and digest_file(file) != entry["blake2b"]:
            raise ArrayDirError(
                f"{file} does not match the digest in {path / MANIFEST}: its "
                f"content changed after writing"
            )
        if mmap:
            if size == offset:  # numpy cannot map an empty array
                arr = np.empty(shape, dtype)
                arr.setflags(write=False)
            else:
                arr = np.load(file, mmap_mode="r").view(np.ndarray)
        else:
            arr = np.load(file)
        arrays[name] = arr
    return manifest, arrays
