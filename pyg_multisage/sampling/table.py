"""The output of every neighbor kernel: one row of importance neighbors per seed."""

from __future__ import annotations

import os
import pickle
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor


@dataclass
class NeighborTable:
    """Importance neighbors of a list of seeds, in CSR form.

    Row ``i`` belongs to ``seeds[i]`` and spans ``ptr[i]:ptr[i + 1]``; it is
    sorted by :obj:`weight` descending, ties by :obj:`neighbor` ascending, and
    never lists the seed itself.

    Attributes:
        seeds (Tensor): ``int64 [S]`` the seed ids, in the caller's order.
        ptr (Tensor): ``int64 [S + 1]`` row offsets.
        neighbor (Tensor): ``int64 [E]`` neighbor ids.
        weight (Tensor): ``float32 [E]`` visit counts or PPR scores.
        context (Tensor, optional): ``int64 [E]`` the dominant context node of
            each (seed, neighbor) pair, ``-1`` when none; :obj:`None` for
            kernels that track no context.
    """

    seeds: Tensor
    ptr: Tensor
    neighbor: Tensor
    weight: Tensor
    context: Tensor | None = None

    @classmethod
    def from_padded(
        cls,
        seeds: np.ndarray,
        count: np.ndarray,
        neighbor: np.ndarray,
        weight: np.ndarray,
        context: np.ndarray | None = None,
    ) -> NeighborTable:
        """Compacts per-seed slots ``[S, k]`` of which the first ``count[i]``
        are used into CSR form."""
        num_seeds = len(seeds)
        ptr = np.zeros(num_seeds + 1, dtype=np.int64)
        np.cumsum(count, out=ptr[1:])
        if neighbor.ndim == 2 and neighbor.shape[1] > 0:
            mask = np.arange(neighbor.shape[1])[None, :] < count[:, None]
            nbr, w = neighbor[mask], weight[mask]
            ctx = None if context is None else context[mask]
        else:
            nbr = np.zeros(0, np.int64)
            w = np.zeros(0, np.float32)
            ctx = None if context is None else np.zeros(0, np.int64)
        return cls(
            seeds=torch.from_numpy(np.ascontiguousarray(seeds, dtype=np.int64)),
            ptr=torch.from_numpy(ptr),
            neighbor=torch.from_numpy(np.ascontiguousarray(nbr, dtype=np.int64)),
            weight=torch.from_numpy(np.ascontiguousarray(w, dtype=np.float32)),
            context=None
            if ctx is None
            else torch.from_numpy(np.ascontiguousarray(ctx, dtype=np.int64)),
        )

    @property
    def num_seeds(self) -> int:
        return self.seeds.numel()

    @property
    def num_edges(self) -> int:
        return self.neighbor.numel()

    def __len__(self) -> int:
        return self.num_seeds

    def degree(self) -> Tensor:
        """Number of neighbors of every seed, ``int64 [S]``."""
        return self.ptr[1:] - self.ptr[:-1]

    def row(self, i: int) -> tuple[Tensor, Tensor, Tensor | None]:
        """``(neighbor, weight, context)`` of the ``i``-th seed."""
        lo, hi = int(self.ptr[i]), int(self.ptr[i + 1])
        ctx = None if self.context is None else self.context[lo:hi]
        return self.neighbor[lo:hi], self.weight[lo:hi], ctx

    def ego(self) -> Tensor:
        """The seed id of every entry, ``int64 [E]``."""
        return torch.repeat_interleave(self.seeds, self.degree())

    def edge_index(self) -> Tensor:
        """Edges in PyG's direction, neighbor → ego: ``[2, E]``."""
        return torch.stack([self.neighbor, self.ego()], dim=0)

    def __repr__(self) -> str:
        ctx = "" if self.context is None else ", context"
        return (
            f"{self.__class__.__name__}(seeds={self.num_seeds}, "
            f"edges={self.num_edges}{ctx})"
        )


#: The ``format`` field of a neighbor-table file (:func:`save_neighbor_tables`).
TABLE_FORMAT = "pyg_multisage.neighbor_tables/1"
_TABLE_FIELDS = ("seeds", "ptr", "neighbor", "weight", "context")


class TableFileError(ValueError):
    """A file that is not a neighbor-table file (missing, not a torch file,
    a training checkpoint, damaged, or holding pickled objects: refused
    unread). The message starts with the file's path."""


def save_neighbor_tables(
    path: str | os.PathLike,
    sampler: str,
    target: str,
    tables: dict[str, NeighborTable],
) -> Path:
    """Writes named tables (the file ``pyg-multisage sample`` writes) as
    plain tensors under ``format = TABLE_FORMAT``, atomically (temporary
    file, then rename), so :func:`load_neighbor_tables` reads them with
    ``torch.load(weights_only=True)``."""
    path = Path(path)
    obj = {
        "format": TABLE_FORMAT,
        "sampler": sampler,
        "target": target,
        "tables": {
            name: {f: getattr(t, f) for f in _TABLE_FIELDS}
            for name, t in tables.items()
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_neighbor_tables(path: str | os.PathLike) -> dict[str, Any]:
    """Reads a file of :func:`save_neighbor_tables` with
    ``torch.load(weights_only=True)``: a file holding pickled objects (code)
    is refused unread. Returns ``{"sampler", "target", "tables"}`` with
    :class:`NeighborTable` values.

    Raises:
        TableFileError: the file is missing, not a torch file, refused, or
            not a table file (e.g. a training checkpoint).
    """
    path = Path(path)
    if not path.is_file():
        raise TableFileError(f"{path}: no such file")
    not_tables = f"{path}: not a table file written by 'pyg-multisage sample'"
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive
        raise TableFileError(f"{not_tables} (not a torch file)")
    try:
        obj = torch.load(path, weights_only=True)
    except pickle.UnpicklingError as err:
        if "weights_only" in str(err) or "global" in str(err).lower():
            raise TableFileError(
                f"{path}: refused to load: it holds pickled objects other than "
                "tensors and plain data (not written by pyg-multisage, or "
                "tampered with)"
            ) from None
        raise TableFileError(f"{not_tables} (not a torch file)") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError):
        raise TableFileError(f"{not_tables} (not a torch file, or truncated)") from None
    if not isinstance(obj, dict) or obj.get("format") != TABLE_FORMAT:
        kind = (
            "it is a training checkpoint"
            if isinstance(obj, dict) and "model" in obj
            else f"holds a {type(obj).__name__} without format {TABLE_FORMAT!r}"
        )
        raise TableFileError(f"{not_tables} ({kind})")
    try:
        tables = {
            name: NeighborTable(**{f: fields[f] for f in _TABLE_FIELDS})
            for name, fields in obj["tables"].items()
        }
        return {"sampler": obj["sampler"], "target": obj["target"], "tables": tables}
    except (KeyError, TypeError, AttributeError) as err:
        raise TableFileError(f"{not_tables} (damaged: {err!r})") from None
