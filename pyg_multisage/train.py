r"""A small, explicit training loop: one function, no framework.

:func:`fit` runs ``max_steps`` optimizer steps of a caller-supplied
``step_fn(batch) -> loss`` (a scalar tensor, or a dict of named losses), with

* Adam / AdamW and a linear-warmup + cosine-annealing learning rate
  (OmniSage A.3.3: AdamW, "linear warmup, cosine annealing");
* gradient clipping by global norm;
* automatic mixed precision on CUDA (``"fp16"`` with a gradient scaler, or
  ``"bf16"``); on CPU the request is ignored with a warning;
* seeded determinism on CPU (:func:`seed_everything`; the random states go
  into every checkpoint, so a resumed run continues the very same streams);
* a tqdm bar with running (exponentially smoothed) losses;
* ``eval_fn() -> dict`` every ``eval_every`` steps (model in eval mode, no
  gradients);
* checkpoints written atomically (temporary file, ``fsync``,
  :func:`os.replace`): a crash mid-save leaves the previous checkpoint
  intact; ``resume=True`` continues from the last one;
* the training curves saved as CSV and (with matplotlib) PNG.

Everything the loop does is visible in :func:`fit`'s body; the pieces
(:func:`make_optimizer`, :func:`warmup_cosine_schedule`,
:func:`save_checkpoint`, :func:`load_checkpoint`, :func:`save_curves`) can be
used on their own.
"""

from __future__ import annotations

import csv
import math
import os
import random
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

__all__ = [
    "TrainConfig",
    "TrainResult",
    "fit",
    "load_checkpoint",
    "make_optimizer",
    "save_checkpoint",
    "save_curves",
    "seed_everything",
    "warmup_cosine_factor",
    "warmup_cosine_schedule",
]

CHECKPOINT_NAME = "checkpoint.pt"


@dataclass
class TrainConfig:
    r"""Settings of :func:`fit`.

    Args:
        max_steps (int): Number of optimizer steps.
        lr (float, optional): Peak learning rate (OmniSage A.3.3 uses
            0.005). (default: :obj:`5e-3`)
        optimizer (str, optional): :obj:`"adamw"` or :obj:`"adam"`.
            (default: :obj:`"adamw"`)
        weight_decay (float, optional): Weight decay. (default: :obj:`0.01`)
        betas (tuple[float, float], optional): Adam betas.
            (default: :obj:`(0.9, 0.999)`)
        warmup_steps (int, optional): Linear warmup steps.
            (default: :obj:`0`)
        min_lr_ratio (float, optional): Final learning rate of the cosine
            as a fraction of :obj:`lr`. (default: :obj:`0.0`)
        grad_clip (float, optional): Maximum global gradient norm;
            :obj:`None` disables clipping. (default: :obj:`1.0`)
        amp (str, optional): :obj:`"fp16"`, :obj:`"bf16"` or :obj:`None`.
            Used on CUDA only. (default: :obj:`None`)
        eval_every (int, optional): Run ``eval_fn`` every so many steps
            (and after the last). (default: :obj:`None`, only after the last)
        checkpoint_every (int, optional): Save a checkpoint every so many
            steps (and after the last) when :obj:`output_dir` is set.
            (default: :obj:`None`, only after the last)
        output_dir (str, optional): Folder of the checkpoint and the
            curves. (default: :obj:`None`, nothing written)
        seed (int, optional): Seed of :func:`seed_everything`.
            (default: :obj:`0`)
        device (str, optional): Device for AMP decisions; the caller moves
            model and data. (default: :obj:`"cpu"`)
        progress (bool, optional): Show a tqdm bar. (default: :obj:`True`)
        smoothing (float, optional): Smoothing of the running losses shown
            on the bar. (default: :obj:`0.9`)
    """

    max_steps: int
    lr: float = 5e-3
    optimizer: str = "adamw"
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0
    grad_clip: float | None = 1.0
    amp: str | None = None
    eval_every: int | None = None
    checkpoint_every: int | None = None
    output_dir: str | None = None
    seed: int = 0
    device: str = "cpu"
    progress: bool = True
    smoothing: float = 0.9

    def __post_init__(self) -> None:
        if self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {self.max_steps}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.optimizer not in ("adam", "adamw"):
            raise ValueError(
                f"optimizer must be 'adam' or 'adamw', got {self.optimizer!r}"
            )
        if self.amp not in (None, "fp16", "bf16"):
            raise ValueError(f"amp must be None, 'fp16' or 'bf16', got {self.amp!r}")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {self.warmup_steps}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError(
                f"min_lr_ratio must lie in [0, 1], got {self.min_lr_ratio}"
            )
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"grad_clip must be > 0 or None, got {self.grad_clip}")
        for name in ("eval_every", "checkpoint_every"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise ValueError(f"{name} must be >= 1 or None, got {v}")
        if not 0.0 <= self.smoothing < 1.0:
            raise ValueError(f"smoothing must lie in [0, 1), got {self.smoothing}")


@dataclass
class TrainResult:
    """What :func:`fit` returns: one history row per step (``step``, ``lr``,
    the losses, and ``eval/<metric>`` at evaluation steps), the last
    evaluation, and the files written."""

    history: list[dict[str, float]]
    last_eval: dict[str, float] = field(default_factory=dict)
    checkpoint: Path | None = None
    curves: dict[str, Path] = field(default_factory=dict)


def seed_everything(seed: int) -> None:
    """Seeds Python's, NumPy's and torch's (CPU and CUDA) generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - the global state user code reads
    torch.manual_seed(seed)


def make_optimizer(params: Iterable, config: TrainConfig) -> torch.optim.Optimizer:
    """Adam or AdamW as the config says."""
    cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return cls(
        params, lr=config.lr, betas=config.betas, weight_decay=config.weight_decay
    )


def warmup_cosine_factor(
    step: int, warmup_steps: int, total_steps: int, min_ratio: float = 0.0
) -> float:
    r"""Learning-rate factor of optimizer step :obj:`step` (0-based):
    :math:`(s + 1) / W` during the :math:`W` warmup steps, then
    :math:`r + (1 - r)\,\tfrac12\,(1 + \cos(\pi\,\tfrac{s - W}{T - W}))`
    down to :math:`r` = :obj:`min_ratio` at :math:`s = T`."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def warmup_cosine_schedule(
    optimizer: torch.optim.Optimizer,
    warmup_steps: int,
    total_steps: int,
    min_ratio: float = 0.0,
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warmup then cosine annealing (OmniSage A.3.3) as a
    :class:`~torch.optim.lr_scheduler.LambdaLR`; step it once per optimizer
    step."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: warmup_cosine_factor(s, warmup_steps, total_steps, min_ratio),
    )


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
    """Reads a checkpoint written by :func:`save_checkpoint` (a trusted
    file of your own: it holds the random states, so it is unpickled with
    ``weights_only=False``)."""
    return torch.load(Path(path), map_location=map_location, weights_only=False)


def save_curves(
    history: list[dict[str, float]], output_dir: str | os.PathLike, name: str = "curves"
) -> dict[str, Path]:
    """Writes the history as ``<name>.csv`` and, when matplotlib is
    installed, ``<name>.png`` (one panel per loss / metric over steps).

    Returns the paths written (keys ``"csv"`` and ``"png"``).
    """
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    columns: list[str] = []
    for row in history:
        columns += [k for k in row if k not in columns]
    paths = {"csv": out / f"{name}.csv"}
    with open(paths["csv"], "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for row in history:
            writer.writerow(row)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        warnings.warn(
            "matplotlib is not installed, so the training curves were saved as "
            "CSV only; `pip install matplotlib` (or pyg_multisage[plot]) for PNG",
            stacklevel=2,
        )
        return paths
    keys = [c for c in columns if c != "step"]
    if not keys:
        return paths
    fig, axes = plt.subplots(len(keys), 1, figsize=(7, 2.2 * len(keys)), squeeze=False)
    for ax, key in zip(axes[:, 0], keys, strict=True):
        pts = [(r["step"], r[key]) for r in history if key in r and r[key] is not None]
        if pts:
            xs, ys = zip(*pts, strict=True)
            ax.plot(xs, ys, marker="o" if len(pts) < 30 else None, markersize=3)
        ax.set_ylabel(key, fontsize=8)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("step")
    fig.tight_layout()
    paths["png"] = out / f"{name}.png"
    fig.savefig(paths["png"], dpi=100)
    plt.close(fig)
    return paths


def _rng_state() -> dict[str, Any]:
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),  # noqa: NPY002
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])  # noqa: NPY002
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _split_losses(
    out: Tensor | Mapping[str, Tensor],
) -> tuple[Tensor, dict[str, float]]:
    if isinstance(out, Tensor):
        if out.numel() != 1:
            raise ValueError(
                f"step_fn must return a scalar loss, got shape {list(out.shape)}"
            )
        return out.reshape(()), {}
    if isinstance(out, Mapping) and out:
        parts = {k: v for k, v in out.items() if k != "loss"}
        total = out["loss"] if "loss" in out else sum(parts.values())
        if not isinstance(total, Tensor) or total.numel() != 1:
            raise ValueError("step_fn's losses must be scalar tensors")
        return total.reshape(()), {
            k: float(v.detach() if isinstance(v, Tensor) else v)
            for k, v in parts.items()
        }
    raise TypeError(
        "step_fn must return a scalar tensor or a non-empty dict of losses, "
        f"got {type(out).__name__}"
    )


def _batches(data: Any, start: int) -> Callable[[int], Any]:
    """``step -> batch`` from a callable or a (re-iterated) iterable; on
    resume an iterable is advanced past the batches already used."""
    if callable(data) and not isinstance(data, Iterable):
        return data
    it: Iterator | None = None
    fresh = True

    def get(step: int) -> Any:
        nonlocal it, fresh
        while True:
            if it is None:
                it, fresh = iter(data), True
            try:
                batch = next(it)
            except StopIteration:
                if fresh:
                    raise ValueError("data yielded no batch") from None
                it = None
                continue
            fresh = False
            return batch

    for i in range(start):
        get(i)
    return get


def fit(
    model: nn.Module,
    step_fn: Callable[[Any], Tensor | Mapping[str, Tensor]],
    data: Iterable | Callable[[int], Any],
    config: TrainConfig,
    *,
    eval_fn: Callable[[], Mapping[str, float]] | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
    resume: bool = True,
) -> TrainResult:
    r"""Trains :obj:`model` for ``config.max_steps`` optimizer steps.

    Each step: draw a batch (``data(step)`` when :obj:`data` is a callable,
    else the next item of the iterable, restarted when exhausted); zero the
    gradients; ``step_fn(batch)`` under autocast (CUDA with ``config.amp``);
    backward (scaled for fp16); clip; optimizer and scheduler step; record
    the losses. A dict of losses is summed unless it holds a ``"loss"``
    entry, which is then the total; the other entries are logged.

    With ``config.output_dir`` and :obj:`resume`, an existing checkpoint
    there is loaded first (model, optimizer, scheduler, scaler, random
    states, history) and training continues from its step. For a resumed
    run to match an uninterrupted one exactly, give :obj:`data` as a
    callable of the step (or an iterable that yields the same sequence each
    time it is iterated).

    Args:
        model (torch.nn.Module): The parameters trained (everything
            ``step_fn`` uses with gradients should be in it: embedders,
            task heads, the user-entity transformer).
        step_fn (callable): ``batch -> loss`` or ``batch -> dict``.
        data (iterable or callable): Batches.
        config (TrainConfig): Settings.
        eval_fn (callable, optional): ``() -> dict`` of metrics.
            (default: :obj:`None`)
        optimizer (torch.optim.Optimizer, optional): Overrides the config's
            Adam/AdamW. (default: :obj:`None`)
        scheduler (optional): Overrides the warmup-cosine schedule; stepped
            once per optimizer step. (default: :obj:`None`)
        resume (bool, optional): Continue from ``output_dir``'s checkpoint
            if one exists. (default: :obj:`True`)
    """
    from tqdm.auto import tqdm

    seed_everything(config.seed)
    device = torch.device(config.device)
    use_amp = config.amp is not None and device.type == "cuda"
    if config.amp is not None and not use_amp:
        warnings.warn(
            f"amp={config.amp!r} needs a CUDA device; training on {device.type} "
            "in full precision",
            stacklevel=2,
        )
    amp_dtype = torch.bfloat16 if config.amp == "bf16" else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and config.amp == "fp16")
    if optimizer is None:
        optimizer = make_optimizer(model.parameters(), config)
    if scheduler is None:
        scheduler = warmup_cosine_schedule(
            optimizer, config.warmup_steps, config.max_steps, config.min_lr_ratio
        )

    out_dir = Path(config.output_dir) if config.output_dir is not None else None
    ckpt_path = out_dir / CHECKPOINT_NAME if out_dir is not None else None
    history: list[dict[str, float]] = []
    last_eval: dict[str, float] = {}
    start = 0
    if resume and ckpt_path is not None and ckpt_path.exists():
        state = load_checkpoint(ckpt_path, map_location=device)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        history = list(state["history"])
        last_eval = dict(state.get("last_eval", {}))
        start = int(state["step"])
        _set_rng_state(state["rng"])

    def checkpoint(step: int) -> None:
        save_checkpoint(
            ckpt_path,
            {
                "step": step,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "history": history,
                "last_eval": last_eval,
                "rng": _rng_state(),
                "config": asdict(config),
            },
        )

    get_batch = _batches(data, start)
    running: dict[str, float] = {}
    bar = tqdm(
        total=config.max_steps,
        initial=start,
        disable=not config.progress,
        desc="train",
        dynamic_ncols=True,
    )
    model.train()
    for step in range(start, config.max_steps):
        batch = get_batch(step)
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
            loss, parts = _split_losses(step_fn(batch))
        if not torch.isfinite(loss.detach()).item() and not scaler.is_enabled():
            raise FloatingPointError(f"loss is {loss.item()} at step {step + 1}")
        scaler.scale(loss).backward()
        row: dict[str, float] = {
            "step": step + 1,
            "lr": optimizer.param_groups[0]["lr"],
        }
        if config.grad_clip is not None:
            scaler.unscale_(optimizer)
            params = [p for g in optimizer.param_groups for p in g["params"]]
            norm = torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
            row["grad_norm"] = float(norm)
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        row["loss"] = float(loss.detach())
        row.update(parts)

        done = step + 1
        last = done == config.max_steps
        if eval_fn is not None and (
            last or (config.eval_every is not None and done % config.eval_every == 0)
        ):
            model.eval()
            with torch.no_grad():
                last_eval = {k: float(v) for k, v in eval_fn().items()}
            model.train()
            row.update({f"eval/{k}": v for k, v in last_eval.items()})
        history.append(row)

        a = config.smoothing
        for k in ("loss", *parts):
            running[k] = (
                row[k] if k not in running else a * running[k] + (1 - a) * row[k]
            )
        post = {k: f"{v:.4g}" for k, v in running.items()}
        post.update({k: f"{v:.4g}" for k, v in list(last_eval.items())[:3]})
        bar.set_postfix(post, refresh=False)
        bar.update(1)

        if ckpt_path is not None and (
            last
            or (
                config.checkpoint_every is not None
                and done % config.checkpoint_every == 0
            )
        ):
            checkpoint(done)
    bar.close()

    curves: dict[str, Path] = {}
    if out_dir is not None:
        curves = save_curves(history, out_dir)
    return TrainResult(history, last_eval, ckpt_path, curves)
