r"""A small, explicit training loop: one function, no framework.

:func:`fit` runs ``max_steps`` optimizer steps of a caller-supplied
``step_fn(batch) -> loss`` (a scalar tensor, or a dict of named losses), with

* Adam / AdamW and a linear-warmup + cosine-annealing learning rate
  (OmniSage A.3.3: AdamW, "linear warmup, cosine annealing");
* gradient clipping by global norm;
* automatic mixed precision on CUDA (``"fp16"`` with a gradient scaler, or
  ``"bf16"``); on CPU the request is ignored with a warning;
* seeded determinism (:func:`seed_everything`, and PyTorch's deterministic
  algorithms while training: on CPU two runs with the same seed give
  bit-identical weights at any thread count; the random states go into every
  checkpoint, so a resumed run continues the very same streams);
* early stopping on a validation metric (``monitor``, ``patience``): the
  best weights are kept (``best.pt``) and restored at the end;
* interruption: SIGINT or SIGTERM finishes the current step, saves a
  checkpoint and raises :class:`TrainingInterrupted`; a non-finite loss
  raises :class:`TrainingDiverged` and keeps the last good checkpoint;
* a tqdm bar with running (exponentially smoothed) losses;
* ``eval_fn() -> dict`` every ``eval_every`` steps (model in eval mode, no
  gradients);
* checkpoints written atomically (temporary file, ``fsync``,
  :func:`os.replace`): a crash mid-save leaves the previous checkpoint
  intact; ``resume=True`` continues from the last one. Checkpoints hold
  tensors and plain Python data only and are read with
  ``torch.load(weights_only=True)``: a file carrying other objects (e.g. a
  pickled payload) is refused (:class:`CheckpointError`);
* the training curves saved as CSV and (with matplotlib) PNG.

Everything the loop does is visible in :func:`fit`'s body; the pieces
(:func:`make_optimizer`, :func:`warmup_cosine_schedule`,
:func:`save_checkpoint`, :func:`load_checkpoint`, :func:`save_curves`) can be
used on their own.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import math
import os
import random
import signal
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from pyg_multisage.checkpoint import (
    CheckpointError,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)

__all__ = [
    "CheckpointError",
    "TrainConfig",
    "TrainResult",
    "TrainingDiverged",
    "TrainingInterrupted",
    "deterministic_algorithms",
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
BEST_NAME = "best.pt"


class TrainingInterrupted(KeyboardInterrupt):
    """Raised by :func:`fit` after SIGINT or SIGTERM, once the current step
    has finished and (with ``output_dir``) a checkpoint has been saved.

    Attributes:
        step (int): Optimizer steps done.
        checkpoint (Path, optional): The checkpoint written, if any.
        signum (int): The signal received.
    """

    def __init__(self, step: int, checkpoint: Path | None, signum: int) -> None:
        name = signal.Signals(signum).name
        where = f"; checkpoint saved to {checkpoint}" if checkpoint else ""
        super().__init__(f"interrupted by {name} after step {step}{where}")
        self.step, self.checkpoint, self.signum = step, checkpoint, signum


class TrainingDiverged(FloatingPointError):
    """Raised by :func:`fit` when the loss is not finite. The step is not
    applied and the last checkpoint on disk (if any) is left as it was.

    Attributes:
        step (int): The 1-based step whose loss was not finite.
        checkpoint (Path, optional): The last good checkpoint, if one exists.
    """

    def __init__(self, step: int, loss: float, checkpoint: Path | None) -> None:
        kept = (
            f"the last good checkpoint {checkpoint} is kept"
            if checkpoint is not None and checkpoint.exists()
            else "no checkpoint had been written yet"
        )
        super().__init__(
            f"training diverged: loss is {loss} at step {step} ({kept}); "
            "lower the learning rate"
        )
        self.step, self.checkpoint = step, checkpoint


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
        deterministic (bool, optional): Train under
            :func:`deterministic_algorithms` (bit-identical runs on CPU at any
            thread count). (default: :obj:`True`)
        monitor (str, optional): Metric of ``eval_fn`` that early stopping
            and the best checkpoint follow (higher is better, e.g.
            :obj:`"MRR"`). (default: :obj:`None`, no early stopping)
        patience (int, optional): Stop after this many evaluations without
            an improvement of :obj:`monitor`; :obj:`None` trains all
            ``max_steps`` but still restores the best weights.
            (default: :obj:`None`)
        min_delta (float, optional): Smallest change of :obj:`monitor` that
            counts as an improvement. (default: :obj:`0.0`)
        writes (bool, optional): Whether this process writes the checkpoint,
            ``best.pt`` and the curves into :obj:`output_dir`. In a
            data-parallel job every process resumes from :obj:`output_dir`
            but only rank 0 writes (:mod:`pyg_multisage.distributed.train`).
            (default: :obj:`True`)
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
    deterministic: bool = True
    monitor: str | None = None
    patience: int | None = None
    min_delta: float = 0.0
    writes: bool = True

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
        if self.patience is not None:
            if self.patience < 1:
                raise ValueError(f"patience must be >= 1 or None, got {self.patience}")
            if self.monitor is None:
                raise ValueError("patience needs 'monitor', the metric to follow")
        if self.monitor is not None and self.eval_every is None:
            raise ValueError(f"monitor={self.monitor!r} needs eval_every")
        if not (math.isfinite(self.min_delta) and self.min_delta >= 0):
            raise ValueError(f"min_delta must be >= 0, got {self.min_delta}")


@dataclass
class TrainResult:
    """What :func:`fit` returns: one history row per step (``step``, ``lr``,
    the losses, and ``eval/<metric>`` at evaluation steps), the last
    evaluation, and the files written."""

    history: list[dict[str, float]]
    last_eval: dict[str, float] = field(default_factory=dict)
    checkpoint: Path | None = None
    curves: dict[str, Path] = field(default_factory=dict)
    best_step: int | None = None
    best_eval: dict[str, float] = field(default_factory=dict)
    stopped_early: bool = False


@contextlib.contextmanager
def deterministic_algorithms(enabled: bool = True) -> Iterator[None]:
    """Runs the block under :func:`torch.use_deterministic_algorithms`
    (``warn_only=True``: an op without a deterministic kernel warns instead
    of failing) and restores the previous setting afterwards.

    On CPU, PyTorch's default scatter/index-add kernels used by message
    passing sum in an order that depends on thread scheduling, so two runs
    with the same seed drift apart in the last bits; inside this block they
    are bit-identical at any thread count.
    """
    if not enabled:
        yield
        return
    was = torch.are_deterministic_algorithms_enabled()
    was_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was, warn_only=was_warn)


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
    with deterministic_algorithms(config.deterministic), _StopSignals() as stop:
        return _fit(
            model, step_fn, data, config, eval_fn, optimizer, scheduler, resume, stop
        )


class _StopSignals:
    """Turns SIGINT/SIGTERM into a flag that :func:`fit` reads between steps
    (a second signal interrupts at once). Installed only in the main thread;
    the previous handlers come back on exit."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signum: int | None = None
        self._old: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None:  # second signal: stop now
            raise KeyboardInterrupt
        self.signum = signum

    def __enter__(self) -> _StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


class _EarlyStopping:
    """Follows ``config.monitor`` over evaluations: the best value, its step
    and evaluation, the evaluations since without improvement, and the best
    weights (in memory and, with an output folder, in ``best.pt``)."""

    def __init__(self, config: TrainConfig, path: Path | None) -> None:
        self.config, self.path = config, path
        self.value: float | None = None
        self.step: int | None = None
        self.eval: dict[str, float] = {}
        self.bad = 0
        self.weights: dict[str, Tensor] | None = None

    def observe(self, step: int, metrics: dict[str, float], model: nn.Module) -> bool:
        """Records an evaluation; returns whether patience has run out."""
        name = self.config.monitor
        if name is None:
            return False
        if name not in metrics:
            raise KeyError(
                f"eval_fn returned no {name!r} to monitor (it returned "
                f"{sorted(metrics)})"
            )
        value = metrics[name]
        if self.value is None or value > self.value + self.config.min_delta:
            self.value, self.step, self.eval, self.bad = value, step, metrics, 0
            self.weights = copy.deepcopy(model.state_dict())
            if self.path is not None and self.config.writes:
                save_checkpoint(self.path, {"step": step, "model": self.weights})
            return False
        self.bad += 1
        return self.config.patience is not None and self.bad >= self.config.patience

    def state_dict(self) -> dict[str, Any]:
        keys = ("value", "step", "eval", "bad")
        return {k: getattr(self, k) for k in keys}

    def load_state_dict(self, state: Mapping[str, Any], device: Any) -> None:
        self.value, self.step = state["value"], state["step"]
        self.eval, self.bad = dict(state["eval"]), int(state["bad"])
        if self.step is not None and self.path is not None:
            self.weights = load_checkpoint(self.path, map_location=device)["model"]


class _Loop:
    """The state of one :func:`fit` call and its steps."""

    def __init__(
        self,
        model: nn.Module,
        step_fn: Callable[[Any], Tensor | Mapping[str, Tensor]],
        config: TrainConfig,
        eval_fn: Callable[[], Mapping[str, float]] | None,
        optimizer: torch.optim.Optimizer | None,
        scheduler: Any | None,
    ) -> None:
        if config.monitor is not None and eval_fn is None:
            raise ValueError(f"monitor={config.monitor!r} needs an eval_fn")
        self.model, self.step_fn, self.config, self.eval_fn = (
            model,
            step_fn,
            config,
            eval_fn,
        )
        self.device = torch.device(config.device)
        self.use_amp = config.amp is not None and self.device.type == "cuda"
        if config.amp is not None and not self.use_amp:
            warnings.warn(
                f"amp={config.amp!r} needs a CUDA device; training on "
                f"{self.device.type} in full precision",
                stacklevel=4,
            )
        self.amp_dtype = torch.bfloat16 if config.amp == "bf16" else torch.float16
        self.scaler = torch.amp.GradScaler(
            "cuda", enabled=self.use_amp and config.amp == "fp16"
        )
        self.optimizer = optimizer or make_optimizer(model.parameters(), config)
        self.scheduler = scheduler or warmup_cosine_schedule(
            self.optimizer, config.warmup_steps, config.max_steps, config.min_lr_ratio
        )
        out = Path(config.output_dir) if config.output_dir is not None else None
        self.out_dir = out
        self.ckpt_path = out / CHECKPOINT_NAME if out is not None else None
        self.history: list[dict[str, float]] = []
        self.last_eval: dict[str, float] = {}
        self.early = _EarlyStopping(config, out / BEST_NAME if out else None)
        self.stopped_early = False
        self.start = 0

    def restore(self) -> None:
        """Continues from the checkpoint in the output folder."""
        state = load_checkpoint(self.ckpt_path, map_location=self.device)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.history = list(state["history"])
        self.last_eval = dict(state["last_eval"])
        self.early.load_state_dict(state["early_stopping"], self.device)
        self.stopped_early = bool(state["stopped_early"])
        self.start = int(state["step"])
        set_rng_state(state["rng"])

    def save(self, step: int) -> None:
        save_checkpoint(
            self.ckpt_path,
            {
                "step": step,
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict(),
                "history": self.history,
                "last_eval": self.last_eval,
                "early_stopping": self.early.state_dict(),
                "stopped_early": self.stopped_early,
                "rng": rng_state(),
                "config": asdict(self.config),
            },
        )

    def optimize(self, batch: Any, step: int) -> tuple[dict[str, float], list[str]]:
        """One optimizer step on :obj:`batch`; the history row and the names
        of the logged loss parts."""
        opt, scaler = self.optimizer, self.scaler
        opt.zero_grad(set_to_none=True)
        with torch.autocast(
            self.device.type, dtype=self.amp_dtype, enabled=self.use_amp
        ):
            loss, parts = _split_losses(self.step_fn(batch))
        if not torch.isfinite(loss.detach()).item() and not scaler.is_enabled():
            raise TrainingDiverged(step + 1, loss.item(), self.ckpt_path)
        scaler.scale(loss).backward()
        row: dict[str, float] = {"step": step + 1, "lr": opt.param_groups[0]["lr"]}
        if self.config.grad_clip is not None:
            scaler.unscale_(opt)
            params = [p for g in opt.param_groups for p in g["params"]]
            norm = torch.nn.utils.clip_grad_norm_(params, self.config.grad_clip)
            row["grad_norm"] = float(norm)
        scaler.step(opt)
        scaler.update()
        self.scheduler.step()
        row["loss"] = float(loss.detach())
        row.update(parts)
        return row, list(parts)

    def evaluate(self, done: int, row: dict[str, float]) -> None:
        """Runs ``eval_fn`` when due at step :obj:`done` and follows the
        monitored metric."""
        every, last = self.config.eval_every, done == self.config.max_steps
        if self.eval_fn is None or not (last or (every and done % every == 0)):
            return
        self.model.eval()
        with torch.no_grad():
            self.last_eval = {k: float(v) for k, v in self.eval_fn().items()}
        self.model.train()
        row.update({f"eval/{k}": v for k, v in self.last_eval.items()})
        self.stopped_early = self.early.observe(done, self.last_eval, self.model)

    def checkpoint_due(self, done: int, stop: _StopSignals) -> bool:
        every = self.config.checkpoint_every
        return (
            self.ckpt_path is not None
            and self.config.writes
            and (
                done == self.config.max_steps
                or self.stopped_early
                or stop.signum is not None
                or (every is not None and done % every == 0)
            )
        )


def _fit(
    model: nn.Module,
    step_fn: Callable[[Any], Tensor | Mapping[str, Tensor]],
    data: Iterable | Callable[[int], Any],
    config: TrainConfig,
    eval_fn: Callable[[], Mapping[str, float]] | None,
    optimizer: torch.optim.Optimizer | None,
    scheduler: Any | None,
    resume: bool,
    stop: _StopSignals,
) -> TrainResult:
    from tqdm.auto import tqdm

    seed_everything(config.seed)
    loop = _Loop(model, step_fn, config, eval_fn, optimizer, scheduler)
    if resume and loop.ckpt_path is not None and loop.ckpt_path.exists():
        loop.restore()
    get_batch = _batches(data, loop.start)
    running: dict[str, float] = {}
    bar = tqdm(
        total=config.max_steps,
        initial=loop.start,
        disable=not config.progress,
        desc="train",
        dynamic_ncols=True,
    )
    model.train()
    step = loop.start
    with bar:
        while step < config.max_steps and not loop.stopped_early:
            row, parts = loop.optimize(get_batch(step), step)
            step += 1
            loop.evaluate(step, row)
            loop.history.append(row)
            a = config.smoothing
            for k in ("loss", *parts):
                old = running.get(k, row[k])
                running[k] = a * old + (1 - a) * row[k]
            post = {k: f"{v:.4g}" for k, v in running.items()}
            post.update({k: f"{v:.4g}" for k, v in list(loop.last_eval.items())[:3]})
            bar.set_postfix(post, refresh=False)
            bar.update(1)
            if loop.checkpoint_due(step, stop):
                loop.save(step)
            if stop.signum is not None:
                raise TrainingInterrupted(step, loop.ckpt_path, stop.signum)

    if loop.early.weights is not None:
        model.load_state_dict(loop.early.weights)
    curves: dict[str, Path] = {}
    if loop.out_dir is not None and config.writes:
        curves = save_curves(loop.history, loop.out_dir)
    return TrainResult(
        loop.history,
        loop.last_eval,
        loop.ckpt_path,
        curves,
        best_step=loop.early.step,
        best_eval=dict(loop.early.eval),
        stopped_early=loop.stopped_early,
    )
