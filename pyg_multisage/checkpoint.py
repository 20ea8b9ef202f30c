"""Checkpoint files: written atomically, read without running code.

:func:`save_checkpoint` writes a dict of tensors and plain Python data with
:func:`torch.save` to a temporary file, ``fsync``-s it and renames it over
the target (a crash mid-save leaves the previous file intact);
:func:`load_checkpoint` reads it back with ``torch.load(weights_only=True)``,
so opening a file someone else made never executes code from it, and every
failure is a :class:`CheckpointError` naming the file. :func:`rng_state` /
:func:`set_rng_state` carry Python's, NumPy's and torch's random states as
such plain data, so a resumed run continues the very same streams.
"""

from __future__ import annotations

import os
import pickle
import random
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "CheckpointError",
    "load_checkpoint",
    "rng_state",
    "save_checkpoint",
    "set_rng_state",
]


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read: missing, truncated, not
    written by :func:`save_checkpoint`, or holding objects other than tensors
    and plain data (refused unread)."""


def save_checkpoint(path: str | os.PathLike, state: Mapping[str, Any]) -> Path:
    """Writes :obj:`state` with :func:`torch.save`, atomically.

    The bytes go to a temporary file in the same folder, are flushed and
    ``fsync``-ed, and the file is then renamed over :obj:`path` with
    :func:`os.replace` (atomic on POSIX and Windows). If anything fails
    before the rename, the temporary file is removed and the previous
    checkpoint at :obj:`path` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(dict(state), f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:  # pragma: no cover - e.g. Windows folders
        pass
    return path


def load_checkpoint(
    path: str | os.PathLike, map_location: Any = "cpu"
) -> dict[str, Any]:
    """Reads a checkpoint written by :func:`save_checkpoint` with
    ``torch.load(weights_only=True)``: tensors and plain Python data only, so
    opening a file someone else made never runs code from it.

    Raises:
        CheckpointError: the file is missing, empty, truncated, not a
            checkpoint, or holds other objects (refused unread).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: the checkpoint file is empty")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        if "weights_only" in str(err) or "global" in str(err).lower():
            raise CheckpointError(
                f"{path}: refused to load: the file holds objects other than "
                "tensors and plain data (it was not written by pyg_multisage, "
                "or was tampered with)"
            ) from None
        raise CheckpointError(f"{path}: not a readable checkpoint ({first})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise CheckpointError(
            f"{path}: not a readable checkpoint (truncated or not written by "
            f"torch.save: {type(err).__name__}: {first})"
        ) from None
    if not isinstance(state, dict):
        raise CheckpointError(
            f"{path}: not a pyg_multisage checkpoint (holds a "
            f"{type(state).__name__}, expected a dict)"
        )
    return state


def rng_state() -> dict[str, Any]:
    """The random states of Python, NumPy and torch (CPU, CUDA) as tensors and
    plain data."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()  # noqa: NPY002
    version, internal, gauss_next = random.getstate()
    state = {  # plain data and tensors: readable with weights_only=True
        "python": [version, list(internal), gauss_next],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restores what :func:`rng_state` returned."""
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    keys = keys.numpy().astype(np.uint32)
    np.random.set_state((kind, keys, pos, has_gauss, gauss))  # noqa: NPY002
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
