"""Named settings of the main job: each paper's stated hyper-parameters.

A preset maps a model name (a row of
:data:`pyg_multisage.experiment.REGISTRY`) to overrides of
:class:`~pyg_multisage.experiment.RunConfig`; ``"*"`` holds the overrides of
any model not named. Use it through
:meth:`RunConfig.from_preset <pyg_multisage.experiment.RunConfig.from_preset>`
or ``pyg-multisage train --preset NAME`` (explicit flags win)::

    from pyg_multisage.experiment import RunConfig, run

    config = RunConfig.from_preset("paper", model="multisage", dataset="dblp")

Presets:

* ``default``: no overrides (the documented :class:`RunConfig` defaults,
  chosen on DBLP validation pairs under a 2-core CPU budget).
* ``paper``: MultiSage Appendix B for MultiSage and the Table 2 baselines
  (text, PinSage-style, GAT, HAN), OmniSage Appendix A.3 for OmniSage, as
  far as a 2-core CPU allows. What each paper states, what we scale down and
  why is tabulated in ``docs/paper_settings.rst``.

This module is plain data (no imports from the package), so every layer may
read it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PRESETS", "PAPER_MULTISAGE", "PAPER_OMNISAGE", "preset_overrides"]

#: MultiSage (KDD 2020) Appendix B, "Training details", OAG setting, for the
#: main job's MultiSage rows. Scaled down: ``num_walks`` (paper
#: :math:`\kappa` = 10K walks per node) to 1,000, and the 100K training
#: iterations to the main job's ``steps`` (not set here).
PAPER_MULTISAGE: dict[str, Any] = {
    # "300 -> 256 -> 128 for OAG": target FNN hidden 256, embedding 128.
    "hidden_channels": 256,
    "out_channels": 128,
    # "we set the number of attention heads to 10".
    "heads": 10,
    # "the training batch size to 256".
    "batch_size": 256,
    # "Adam optimizer with learning rate 0.0001" (no weight decay stated:
    # AdamW with weight decay 0 is Adam).
    "lr": 1e-4,
    "weight_decay": 0.0,
    "warmup_steps": 0,
    # Eq. 3: max-margin ranking loss (the margin delta is not stated).
    "loss": "margin",
    # "zeta, kappa, xi and s ... 10, 10K, 128, and 20"; "restarted with
    # probability 0.1 at each target node". kappa scaled down 10x.
    "walk_length": 10,
    "num_walks": 1000,
    "num_neighbors": 20,
    "restart_prob": 0.1,
    # The literal Eq. 4 / Eq. 7: ReLU on the last target layer, sigmoid.
    "target_relu": True,
    "act": "sigmoid",
    "combine": "mask",
    # Eq. 4: one W_t for every target node, egos and neighbors alike.
    "share_weights": True,
    "attention": "three_way",
}

#: OmniSage (KDD 2025) Appendix A.3 for the main job's ``omnisage`` row.
#: Scaled down: the aggregator width (768, 12 heads, MLP 3072) to 192 with
#: 12 heads (the main job's MLP is twice the width: 384).
PAPER_OMNISAGE: dict[str, Any] = {
    # A.3.3 "Learning rate: 0.005"; "linear warmup, cosine annealing";
    # "Optimizer: AdamW" (the main job's schedule and optimizer).
    "lr": 5e-3,
    # A.3.1 "1-layer transformer aggregator with 12 heads" (width scaled).
    "heads": 12,
    "hidden_channels": 192,
    # §3.2 Eq. 1: sampled softmax with in-batch and random negatives;
    # A.2.5 Table 12 measures 1K and 10K random negatives.
    "loss": "softmax",
    "num_negatives": 1000,
    # §3.2: the CLS output of the transformer, no gate on its update.
    "update_gate": False,
}

#: Preset name -> model name (or ``"*"``: any other model) -> overrides.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "default": {"*": {}},
    "paper": {
        "*": {k: v for k, v in PAPER_MULTISAGE.items() if k != "heads"},
        # The 10 heads are MultiSage's attention heads; the baselines keep
        # theirs (PyG's HANConv needs heads to divide the 256 channels).
        "multisage": dict(PAPER_MULTISAGE),
        "multisage-2": dict(PAPER_MULTISAGE),
        "omnisage": dict(PAPER_OMNISAGE),
    },
}


def preset_overrides(name: str, model: str) -> dict[str, Any]:
    """The :class:`RunConfig` overrides of preset :obj:`name` for
    :obj:`model` (a copy).

    Raises:
        ValueError: :obj:`name` is not a key of :data:`PRESETS`.
    """
    if name not in PRESETS:
        raise ValueError(f"preset must be one of {tuple(PRESETS)}, got {name!r}")
    table = PRESETS[name]
    return dict(table.get(model, table.get("*", {})))
