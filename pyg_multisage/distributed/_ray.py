"""Starting Ray and running an actor pool over id ranges (Ray Data
``map_batches``). Ray is imported only here, and only when called."""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from collections.abc import Sequence
from typing import Any

from tqdm.auto import tqdm


def require_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise ImportError(
            "sharded jobs need Ray: pip install 'pyg_multisage[ray]'"
        ) from None
    return ray


def init_ray(address: str | None = None, num_cpus: int | None = None) -> Any:
    """Connects to the Ray cluster at :obj:`address`, or starts a local one
    of :obj:`num_cpus` CPUs (default: all) without the dashboard and with
    workers' logs kept out of the terminal. A running session is reused."""
    ray = require_ray()
    if ray.is_initialized():
        return ray
    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        ray.init(
            num_cpus=num_cpus or os.cpu_count() or 1,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
            _temp_dir=os.path.join(tempfile.gettempdir(), "pyg_multisage_ray"),
        )
    return ray


def run_ranges(
    worker: type,
    worker_kwargs: dict[str, Any],
    ranges: Sequence[tuple[int, int]],
    *,
    num_workers: int,
    cpus_per_worker: float,
    progress: bool,
    desc: str,
    max_retries: int = 3,
    ranges_per_call: int = 1,
) -> list[dict[str, Any]]:
    """Runs ``worker(**worker_kwargs)`` as a pool of :obj:`num_workers` Ray
    actors over the id :obj:`ranges` (one range per call) and returns the
    rows the calls return (one per range). Each call hands an actor up to
    :obj:`ranges_per_call` consecutive ranges (Ray Data's cost per call is
    fixed, tens of milliseconds: group small ranges).

    An actor that dies (a killed process, a lost node) is restarted and its
    pending ranges are retried, at most :obj:`max_retries` times per actor
    (Ray Data's default is unbounded, which turns a range that kills its
    actor every time into an endless loop). An exception raised by the
    worker is not retried. Either failure raises a :class:`RuntimeError`
    that names the worker class and Ray's reason."""
    ray = require_ray()
    if num_workers < 1:
        raise ValueError(f"num_workers must be >= 1, got {num_workers}")
    if cpus_per_worker <= 0:
        raise ValueError(f"cpus_per_worker must be > 0, got {cpus_per_worker}")
    if max_retries < 0:
        raise ValueError(f"max_retries must be >= 0, got {max_retries}")
    if ranges_per_call < 1:
        raise ValueError(f"ranges_per_call must be >= 1, got {ranges_per_call}")
    # Our own bar reports progress; Ray's bars and INFO lines stay quiet.
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.ERROR)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    items = [{"lo": lo, "hi": hi} for lo, hi in ranges]
    calls = -(-len(items) // ranges_per_call)
    ds = ray.data.from_items(items, override_num_blocks=max(1, calls))
    with warnings.catch_warnings():
        # Ray 2.60 has no named parameter for the restart bound; passing it
        # as a remote argument is the only way, and warns.
        warnings.filterwarnings("ignore", message=".*ray_remote_args.*deprecated")
        ds = ds.map_batches(
            worker,
            fn_constructor_kwargs=worker_kwargs,
            batch_size=ranges_per_call,
            compute=ray.data.ActorPoolStrategy(size=num_workers),
            num_cpus=cpus_per_worker,
            max_restarts=max_retries,
            max_task_retries=max_retries,
        )
    total = sum(hi - lo for lo, hi in ranges)
    rows: list[dict[str, Any]] = []
    try:
        with tqdm(total=total, desc=desc, disable=not progress) as bar:
            for row in ds.iter_rows():
                rows.append(dict(row))
                bar.update(int(row["hi"]) - int(row["lo"]))
    except Exception as err:
        reason = str(err).strip().splitlines()
        reason = next((ln for ln in reversed(reason) if ln.strip()), type(err).__name__)
        raise RuntimeError(
            f"Ray job {worker.__name__} failed; nothing was written: {reason}"
        ) from err
    return rows
