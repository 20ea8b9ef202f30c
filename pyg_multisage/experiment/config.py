"""The settings of one run of the main job (:class:`RunConfig`) and how
they are saved and compared: :func:`read_config` rebuilds a run folder's
``config.json`` (older folders get :data:`SAVED_BEFORE`'s values),
:func:`config_key` is the part of a config that decides a result."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pyg_multisage.datasets.retrieval import RETRIEVAL_TASKS
from pyg_multisage.experiment.registry import REGISTRY
from pyg_multisage.presets import preset_overrides

DATASETS = tuple(RETRIEVAL_TASKS)


@dataclass
class RunConfig:
    """Settings of one run of the main job (the ``train`` command's flags).

    Args:
        dataset (str): ``synthetic``, ``dblp`` or ``ogbn-mag``.
        model (str): A row of :data:`REGISTRY`. ``multisage`` uses every context
            type of the dataset (MultiSage-3 on DBLP: venue + term),
            ``multisage-2`` only the first (venue); ``pinsage-2`` is
            PinSage-style over the same first-context walks (the ablation
            that gives PinSage-style MultiSage-2's information).
        root (str, optional): Dataset folder (processed files go there).
        raw_dir (str, optional): Folder of raw files read in place (DBLP).
        steps (int, optional): Optimizer steps (default: 400 when
            :obj:`epochs` is not given either).
        epochs (float, optional): The budget in epochs instead of steps: an
            epoch is one pass over the training pairs,
            ``ceil(num_train_pairs / batch_size)`` steps
            (:func:`steps_per_epoch`). Give :obj:`steps` or :obj:`epochs`,
            not both.
        patience (int, optional): Early stopping: stop after this many
            validations without a better validation MRR. Every run that
            validates keeps the best weights (by validation MRR) and is
            reported with them (:attr:`RunResult.best_epoch`).
        evals_per_epoch (int): Validations per epoch when :obj:`epochs` is
            given and :obj:`eval_every` is not.
        batch_size (int): pairs per step.
        num_negatives (int): random negatives per step, shared by the batch.
        loss (str): ``softmax`` (OmniSage Eq. 1) or ``margin`` (MultiSage
            Eq. 3).
        temperature (float): :math:`\\lambda` of the sampled softmax.
        num_walks, walk_length, restart_prob, num_neighbors: contextual walk
            (MultiSage Alg. 2) settings shared by every graph model.
        ppr_eps, ppr_alpha, ppr_top_k: OmniSage's PPR neighbors.
        eval_every (int, optional): validate every so many steps.
        checkpoint_every (int, optional): save a checkpoint every so many
            steps (default: :obj:`eval_every`, else every 50 steps), so an
            interrupted run loses little (:func:`run` with ``resume=True``).
        max_eval_pairs (int): score a seeded subset of at most this many
            evaluation pairs (``0``: all).
        max_val_pairs (int): validate on a seeded subset of at most this many
            validation pairs (``0``: all).
        target_relu (bool), act (str), combine (str), share_weights (bool),
        attention (str):
            MultiSage's layer options (:class:`~pyg_multisage.nn.MultiSageConv`).
            The defaults (no ReLU on the last target layer, the zero-centred
            ``tanh`` for Eq. 7's sigmoid, Eq. 5's additive ``trans``
            combination, neighbors embedded with their own last layer
            instead of the egos' ``W_t``) were chosen on DBLP's *validation*
            pairs: the literal equations keep every output non-negative with
            a common offset and the cosines in a narrow band, the venue mask
            of ``mask`` gates the paper's own embedding by one of 20 venues,
            and with shared weights the neighbors weigh as much as the paper
            itself (the validation numbers are in ``docs/comparison.rst``).
        feature_skip (bool): Add a learned linear skip path from the raw
            target features to every model's output before the final
            normalization (:class:`~pyg_multisage.nn.models.FeatureSkip`),
            the same for every model.
        hard_negatives (int): PinSage's hard-negative curriculum: at most so
            many hard negatives per query (``0``: off), one more every
            ``hard_negative_epochs`` epochs, none in the first
            (:class:`~pyg_multisage.losses.HardNegativeCurriculum`; an epoch
            is ``ceil(train pairs / batch_size)`` steps). They are drawn
            uniformly from ranks ``hard_negative_band = (lo, hi)`` of the
            query's Pixie visit-count ranking
            (:func:`~pyg_multisage.references.pixie_visit_counts`,
            ``hard_negative_walks`` walks per context type, the walk
            settings of the Pixie reference otherwise).
        lambda_pair, lambda_feat, lambda_seq (float): OmniSage Eq. 6's
            weights (lambda_p, lambda_f, lambda_s) of the
            entity–entity, entity–feature and user–entity tasks (rows with
            an :mod:`~pyg_multisage.objectives` objective; default ``1``
            each, the paper gives no values). ``lambda_seq`` only matters
            for datasets with user sequences.
        log_q (bool): the count-min-sketch logQ correction of Eq. 1
            (``sketch_width`` columns, depth 4).
        chunk_size (int, optional): queries per chunk of the chunked
            softmax (Alg. 1); :obj:`None`: unchunked.
        feature_hidden_channels, feature_layers (int): the feature encoders
            g_x (A.3.2: 4 layers of 1,024; narrower here for CPU).
        proj_layers (int): layers of the OmniSage rows' token projections
            (§3.2: the features "are then passed through an MLP";
            :class:`~pyg_multisage.nn.OmniSageConv`'s ``proj_layers``). Two
            (one hidden ReLU layer) chosen on DBLP's validation pairs: 1.31×
            the linear projection's MRR after 2 epochs without neighbors
            (``docs/omnisage.rst``).
        update_gate (bool): the OmniSage rows' zero-initialized gate on the
            CLS token's attention update (:class:`~pyg_multisage.nn.OmniSageConv`'s
            ``update_gate``; not in the paper), chosen on DBLP's validation
            pairs (``docs/omnisage.rst``). Rows without neighbor slots
            (``omnisage-nograph``) are built without it: there it would only
            damp the ego's own update.
        user_batch_size, user_max_length, user_layers (int): users per step,
            t_max and causal transformer layers of the
            user–entity task (A.3.2: 4 layers).

    Named settings (each paper's stated hyper-parameters, ``docs/paper_settings.rst``)
    come from :meth:`from_preset`.
    """

    dataset: str = "synthetic"
    model: str = "multisage"
    root: str | None = None
    raw_dir: str | None = None
    output_dir: str | None = None
    seed: int = 0
    steps: int | None = None
    epochs: float | None = None
    patience: int | None = None
    evals_per_epoch: int = 1
    batch_size: int = 128
    num_negatives: int = 256
    lr: float = 3e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 20
    loss: str = "softmax"
    temperature: float = 20.0
    learn_temperature: bool = True
    margin: float = 0.1
    hidden_channels: int = 128
    out_channels: int = 128
    heads: int = 4
    target_relu: bool = False
    combine: str = "trans"
    share_weights: bool = False
    act: str = "tanh"
    feature_skip: bool = False
    hard_negatives: int = 0
    hard_negative_band: tuple[int, int] = (100, 500)
    hard_negative_epochs: float = 1.0
    hard_negative_walks: int = 200
    attention: str | None = "three_way"
    num_walks: int = 100
    walk_length: int = 3
    restart_prob: float = 0.5
    num_neighbors: int = 10
    ppr_alpha: float = 0.15
    ppr_eps: float = 1e-4
    ppr_top_k: int = 20
    eval_every: int | None = None
    checkpoint_every: int | None = None
    eval_split: str = "test"
    max_eval_pairs: int = 0
    max_val_pairs: int = 0
    progress: bool = True
    synthetic: dict[str, Any] = field(default_factory=dict)
    # --- OmniSage's multi-task objective (Eq. 6), rows with an objective ---
    lambda_pair: float = 1.0
    lambda_feat: float = 1.0
    lambda_seq: float = 1.0
    log_q: bool = True
    chunk_size: int | None = 64
    sketch_width: int = 2**16
    feature_hidden_channels: int = 256
    feature_layers: int = 4
    proj_layers: int = 2
    update_gate: bool = True
    user_batch_size: int = 32
    user_max_length: int = 8
    user_layers: int = 2

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> RunConfig:
        """A config with the settings of preset :obj:`name`
        (:data:`pyg_multisage.presets.PRESETS`) for the model
        ``overrides["model"]`` (default ``multisage``), then
        :obj:`overrides` on top (explicit settings win).

        ``RunConfig.from_preset("paper", model="omnisage", steps=2000)``
        trains OmniSage with OmniSage A.3's settings, as far as this machine
        allows (``docs/paper_settings.rst``).

        Raises:
            ValueError: unknown preset, or an invalid resulting setting.
        """
        model = overrides.get("model", cls.model)
        values = preset_overrides(name, model)
        values.update(overrides)
        return cls(**values)

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {DATASETS}, got {self.dataset!r}")
        if self.model not in REGISTRY:
            raise ValueError(
                f"model must be one of {tuple(REGISTRY)}, got {self.model!r}"
            )
        if self.loss not in ("softmax", "margin"):
            raise ValueError(f"loss must be 'softmax' or 'margin', got {self.loss!r}")
        if self.eval_split not in ("val", "test"):
            raise ValueError(
                f"eval_split must be 'val' or 'test', got {self.eval_split!r}"
            )
        if self.steps is not None and self.epochs is not None:
            raise ValueError(
                f"give steps or epochs, not both (got steps={self.steps}, "
                f"epochs={self.epochs})"
            )
        if self.epochs is not None and not self.epochs > 0:
            raise ValueError(f"epochs must be > 0, got {self.epochs}")
        if self.steps is None and self.epochs is None:
            self.steps = 400
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be >= 1 or None, got {self.patience}")
        if self.patience is not None and self.epochs is None and not self.eval_every:
            raise ValueError("patience needs validations: set epochs or eval_every")
        names = ("batch_size", "num_neighbors", "num_walks", "evals_per_epoch")
        if self.steps is not None:
            names = ("steps", *names)
        for name in names:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.num_negatives < 0:
            raise ValueError(
                f"num_negatives must be >= 0 (0: in-batch negatives only), "
                f"got {self.num_negatives}"
            )
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        for name in ("eval_every", "checkpoint_every"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1 or None, got {value}")
        for name in ("max_eval_pairs", "max_val_pairs"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.hard_negatives < 0:
            raise ValueError(f"hard_negatives must be >= 0, got {self.hard_negatives}")
        band = self.hard_negative_band
        if (
            not isinstance(band, (tuple, list))
            or len(band) != 2
            or not all(isinstance(b, int) and not isinstance(b, bool) for b in band)
            or not 0 <= band[0] < band[1]
        ):
            raise ValueError(
                f"hard_negative_band must be two integers 0 <= lo < hi, got {band!r}"
            )
        self.hard_negative_band = (int(band[0]), int(band[1]))
        if not self.hard_negative_epochs > 0:
            raise ValueError(
                f"hard_negative_epochs must be > 0, got {self.hard_negative_epochs}"
            )
        if self.hard_negative_walks < 1:
            raise ValueError(
                f"hard_negative_walks must be >= 1, got {self.hard_negative_walks}"
            )
        for name in ("lambda_pair", "lambda_feat", "lambda_seq"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.chunk_size is not None and self.chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1 or None, got {self.chunk_size}")
        for name in (
            "sketch_width",
            "feature_layers",
            "proj_layers",
            "user_batch_size",
            "user_layers",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.user_max_length < 1:
            raise ValueError(
                f"user_max_length must be >= 1, got {self.user_max_length}"
            )


#: Settings added after runs were saved with the behaviour of another value:
#: a saved config without the field gets the value its run was trained with
#: (the default :obj:`RunConfig` now has may differ).
SAVED_BEFORE: dict[str, Any] = {
    "proj_layers": 1,
    "update_gate": False,
    "share_weights": True,
}


def read_config(path: str | os.PathLike) -> RunConfig:
    """The :class:`RunConfig` saved as JSON at :obj:`path` (a run folder's
    ``config.json``); fields that configs saved before them lack take
    :data:`SAVED_BEFORE`'s values, so an older run rebuilds as it trained.

    Raises:
        ValueError: the file is not a run configuration.
    """
    path = Path(path)
    try:
        values = json.loads(path.read_text())
        return RunConfig(**{**SAVED_BEFORE, **values})
    except (TypeError, ValueError) as err:  # JSONDecodeError is a ValueError
        raise ValueError(f"{path}: not a run configuration ({err})") from None


def config_key(config: RunConfig) -> dict[str, Any]:
    """The settings that decide a run's result, as plain JSON values (tuples
    become lists): :obj:`config` without ``progress``, ``raw_dir`` and
    ``output_dir``. A cached result is reusable when its saved key equals
    this one."""
    skip = ("progress", "raw_dir", "output_dir")
    key = {k: v for k, v in asdict(config).items() if k not in skip}
    return json.loads(json.dumps(key))
