"""The main job: sample, train, evaluate one model on a retrieval task.

One function, :func:`run`, drives everything the ``pyg-multisage train``
command and ``examples/dblp_comparison.py`` do, so that every model of the
comparison (MultiSage Table 2) gets the same data, neighbors, negatives,
loss and training budget:

1. load a dataset with query–positive pairs (:func:`load_task`, from
   :mod:`pyg_multisage.datasets.retrieval`);
2. tabulate the importance neighbors the model's row of :data:`REGISTRY`
   names, once (:func:`add_neighbors`): MultiSage's contextual walks
   (Alg. 2) through some or all context types, or OmniSage's PPR neighbors
   (§3.1.1);
3. build the model with its row's builder and train it on batches of
   ``(query, positive, random negatives)`` seeds cut by
   :class:`~pyg_multisage.loader.ImportanceNeighborLoader`'s sampler, with
   the sampled softmax of OmniSage Eq. 1 (in-batch plus random negatives) or
   MultiSage's max-margin loss (Eq. 3);
4. embed every target and compute the metrics of MultiSage §3.1 on the
   held-out pairs against the pool of all targets.

The models are rows of one table, :data:`REGISTRY` (name → neighbor
source, builder); the models themselves live in
:mod:`pyg_multisage.nn.models`. The graph baselines (PinSage-style, GAT, HAN)
read the *same* walk neighbors as MultiSage but ignore their dominant
contexts, so the comparison isolates the contextual mechanism, as in the
paper ("our implementation ... based on PinSage"). Adding a model is one
row and one class (``docs/extending.rst``).
"""

from pyg_multisage.datasets.retrieval import Task
from pyg_multisage.experiment.config import (
    DATASETS,
    SAVED_BEFORE,
    RunConfig,
    config_key,
    read_config,
)
from pyg_multisage.experiment.job import (
    VAL_METRICS,
    RunResult,
    SeedBatcher,
    budget,
    cap_pairs,
    embed_all,
    evaluate,
    hard_negative_curriculum,
    load_run,
    load_task,
    make_step,
    run,
    steps_per_epoch,
)
from pyg_multisage.experiment.registry import (
    MODELS,
    PPR,
    REGISTRY,
    ContextualWalks,
    ModelSpec,
    NeighborSource,
    NoNeighbors,
    add_neighbors,
    build_model,
    channels,
    model_edge_types,
)
from pyg_multisage.experiment.table import METRIC_COLUMNS, aggregate, format_table
from pyg_multisage.presets import PRESETS
from pyg_multisage.run_folder import RunFolderError, check_output_dir, partial_dir

__all__ = [
    "MODELS",
    "DATASETS",
    "METRIC_COLUMNS",
    "REGISTRY",
    "ModelSpec",
    "NeighborSource",
    "NoNeighbors",
    "ContextualWalks",
    "PPR",
    "RunConfig",
    "PRESETS",
    "RunResult",
    "Task",
    "load_task",
    "add_neighbors",
    "model_edge_types",
    "build_model",
    "channels",
    "SeedBatcher",
    "embed_all",
    "cap_pairs",
    "evaluate",
    "make_step",
    "steps_per_epoch",
    "budget",
    "VAL_METRICS",
    "hard_negative_curriculum",
    "run",
    "load_run",
    "read_config",
    "SAVED_BEFORE",
    "check_output_dir",
    "partial_dir",
    "RunFolderError",
    "config_key",
    "aggregate",
    "format_table",
]
