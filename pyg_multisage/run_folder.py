"""Run folders that are never half-written.

A run of the main job writes into ``<output_dir>.partial`` and is renamed to
``output_dir`` only once complete (:func:`check_output_dir`, :func:`finish`);
an interrupted run waits in its ``.partial`` folder to be resumed. Output
folders are checked before any work starts, and a non-empty folder is
replaced only when asked (and only when it is a run folder).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

__all__ = [
    "PARTIAL_SUFFIX",
    "RunFolderError",
    "check_output_dir",
    "finish",
    "partial_dir",
    "write_json",
    "save_figure",
]


#: A run is written into ``<output_dir>.partial`` and renamed to
#: ``output_dir`` once complete; an interrupted run stays there to be resumed.
PARTIAL_SUFFIX = ".partial"


class RunFolderError(ValueError):
    """A run folder that cannot be used as asked: not empty, not writable,
    under a regular file, or nothing to resume. Raised before any work."""


def partial_dir(output_dir: str | os.PathLike) -> Path:
    """The sibling folder ``<output_dir>.partial`` a run is written into
    until it is complete (and where an interrupted run waits to be
    resumed)."""
    out = Path(output_dir)
    return out.with_name(out.name + PARTIAL_SUFFIX)


def _is_run_folder(path: Path) -> bool:
    return (path / "config.json").is_file() or (path / "checkpoint.pt").is_file()


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def check_output_dir(
    output_dir: str | os.PathLike,
    *,
    resume: bool = False,
    overwrite: bool = False,
    create: bool = True,
) -> Path:
    """Checks a run folder before any work is done and returns the folder
    the run writes into, ``<output_dir>.partial`` (created empty, or the
    interrupted run's folder when :obj:`resume`). With ``create=False`` the
    folder is only checked (nothing is created or removed), e.g. before
    slow preparatory work such as re-processing a dataset.

    A non-empty :obj:`output_dir` (or a leftover ``.partial`` folder) is
    refused unless :obj:`overwrite`, and then only when it is a run folder
    (it holds ``config.json`` or ``checkpoint.pt``): the old run is deleted
    when the new one is complete, so none of its files survive into it.

    Raises:
        RunFolderError: the folder is not usable (with the reason).
    """
    final = Path(output_dir)
    partial = partial_dir(final)
    if final.exists() and not final.is_dir():
        raise RunFolderError(f"{final} exists and is not a folder")
    if resume:
        if (partial / "config.json").is_file():
            return partial
        if (final / "metrics.json").is_file():
            raise RunFolderError(f"{final} is a finished run: nothing to resume")
        raise RunFolderError(
            f"{final}: no interrupted run to resume ({partial} missing)"
        )
    if final.is_dir() and any(final.iterdir()):
        if not overwrite:
            raise RunFolderError(
                f"{final} is not empty (an earlier run?); choose another folder "
                "or overwrite it (--overwrite)"
            )
        if not _is_run_folder(final):
            raise RunFolderError(
                f"{final} is not empty and not a run folder (no config.json or "
                "checkpoint.pt): refusing to overwrite it"
            )
    if partial.exists() or partial.is_symlink():
        if not overwrite:
            raise RunFolderError(
                f"{partial} holds an interrupted run; resume it (--resume "
                f"{final}) or start over (--overwrite)"
            )
        if create:
            _remove(partial)
    # The nearest existing ancestor must be a writable folder.
    parent = partial.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise RunFolderError(
            f"cannot create the run folder {final}: {parent} is a file, not a folder"
        )
    if not create:
        try:  # a folder made and removed again: the same test as mkdir
            os.rmdir(tempfile.mkdtemp(prefix=".write-test-", dir=parent))
        except OSError as err:
            raise RunFolderError(
                f"cannot create the run folder {final}: {err.strerror or err}"
            ) from None
        return partial
    try:
        partial.mkdir(parents=True)
        probe = partial / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise RunFolderError(
            f"cannot create the run folder {final}: {err.strerror or err}"
        ) from None
    return partial


def finish(partial: Path, final: Path) -> None:
    """Renames the complete run folder into place, replacing an old run
    (moved aside first, deleted after the rename)."""
    old = None
    if final.exists():
        old = final.with_name(f"{final.name}.old-{os.getpid()}")
        _remove(old)
        os.replace(final, old)
    os.replace(partial, final)
    if old is not None:
        _remove(old)


def write_json(path: Path, obj: Any) -> None:
    """Writes :obj:`obj` as JSON to :obj:`path` atomically (temporary file
    in the same folder, then rename)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(json.dumps(obj, indent=2))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save_figure(fig: Any, path: str | os.PathLike, dpi: int = 120) -> None:
    """Saves a matplotlib figure to :obj:`path` atomically (temporary file
    in the same folder, then rename) and closes it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    try:
        fig.savefig(tmp, dpi=dpi)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        plt.close(fig)
