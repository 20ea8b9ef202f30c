"""The ``pyg-multisage`` command: train, embed, evaluate, sample, precompute,
related.

Run ``pyg-multisage --help`` or ``pyg-multisage COMMAND --help``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from pyg_multisage import __version__
from pyg_multisage import experiment as ex
from pyg_multisage.nn.models import MultiSage
from pyg_multisage.presets import preset_overrides
from pyg_multisage.run_folder import RunFolderError, check_output_dir
from pyg_multisage.train import TrainingDiverged, TrainingInterrupted

DESCRIPTION = """\
MultiSage (KDD 2020) and OmniSage (KDD 2025) on PyTorch Geometric.

Typical session:
  pyg-multisage train --dataset dblp --model multisage --out runs/dblp-ms
  pyg-multisage evaluate --run runs/dblp-ms
  pyg-multisage related --run runs/dblp-ms --query 42 --context 3
  pyg-multisage embed --run runs/dblp-ms --out paper_emb.npy
  pyg-multisage index --embeddings paper_emb.npy --out paper.faiss
  pyg-multisage related --run runs/dblp-ms --query 42 --index paper.faiss

Scaling out (docs "Scaling out"): 'precompute' and 'embed --out FOLDER' write
Parquet shards by id range, in this process or with --ray on a Ray cluster.

Datasets: 'synthetic' (planted facets, no download), 'dblp' (AMiner DBLP; raw
files from --raw-dir, $PYG_MULTISAGE_DBLP or downloaded into --root),
'ogbn-mag' (PyG's OGB_MAG folder in --root).

Errors are one line with exit status 2; training interrupted by SIGINT or
SIGTERM saves a checkpoint, prints the resume command and exits 130 / 143.
"""


class _Formatter(
    argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter
):
    """Keeps the description's line breaks and shows every default."""


class CLIError(Exception):
    """A user error: printed as one line, exit status 2."""


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dataset", choices=ex.DATASETS, default="synthetic", help="which graph"
    )
    p.add_argument("--root", help="dataset folder (processed files are kept there)")
    p.add_argument("--raw-dir", help="folder of raw DBLP files read in place")
    p.add_argument(
        "--force-reload",
        action="store_true",
        help="rebuild DBLP's processed file even if it matches the raw files",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument(
        "--synthetic-size",
        type=int,
        default=5000,
        help="targets of the synthetic graph (contexts: a tenth of it)",
    )


def _train_parser(sub: Any) -> None:
    p = sub.add_parser(
        "train",
        help="sample neighbors, train a model, evaluate, save a run folder",
        description="Samples importance neighbors, trains one model on the "
        "dataset's query-positive pairs, prints MultiSage Table 2's columns "
        "and writes checkpoint.pt, metrics.json, config.json and curves "
        "(CSV, PNG) into --out. The run is written into OUT.partial and "
        "renamed to OUT when complete; an interrupted run (Ctrl-C, SIGTERM) "
        "keeps its last checkpoint there and continues with --resume OUT.",
    )
    _add_data_args(p)
    p.add_argument(
        "--model", choices=tuple(ex.REGISTRY), default="multisage", help="model"
    )
    p.add_argument("--out", help="run folder (default runs/DATASET-MODEL-sSEED)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing run in --out (refused otherwise)",
    )
    p.add_argument(
        "--resume",
        metavar="RUN",
        help="continue the interrupted run RUN (its saved settings) to the "
        "result an uninterrupted run gives",
    )
    p.add_argument(
        "--preset",
        metavar="NAME",
        help=f"named settings {tuple(ex.PRESETS)}: 'paper' takes each paper's "
        "stated settings for the model (MultiSage App. B, OmniSage A.3; "
        "docs/paper_settings.rst); flags given explicitly win",
    )
    budget = p.add_mutually_exclusive_group()
    budget.add_argument(
        "--steps", type=int, help="optimizer steps (default 400 without --epochs)"
    )
    budget.add_argument(
        "--epochs",
        type=float,
        help="budget in epochs (passes over the training pairs), validated "
        "--evals-per-epoch times per epoch; the best weights are kept",
    )
    p.add_argument(
        "--evals-per-epoch", type=int, default=1, help="validations per epoch"
    )
    p.add_argument(
        "--patience",
        type=int,
        help="stop after this many validations without a better validation MRR",
    )
    p.add_argument(
        "--temperature", type=float, default=20.0, help="initial softmax temperature"
    )
    p.add_argument(
        "--feature-skip",
        action="store_true",
        help="learned linear skip path from the raw features (every model)",
    )
    p.add_argument(
        "--hard-negatives",
        type=int,
        default=0,
        help="PinSage's hard-negative curriculum: at most N per query",
    )
    p.add_argument("--batch-size", type=int, default=128, help="pairs per step")
    p.add_argument("--negatives", type=int, default=256, help="random negatives/step")
    p.add_argument("--lr", type=float, default=3e-3, help="peak learning rate")
    p.add_argument("--loss", choices=("softmax", "margin"), default="softmax")
    p.add_argument("--num-walks", type=int, default=100, help="walks per node")
    p.add_argument("--num-neighbors", type=int, default=10, help="neighbors kept")
    p.add_argument("--eval-every", type=int, help="validate every N steps")
    p.add_argument(
        "--checkpoint-every",
        type=int,
        help="save a checkpoint every N steps (default: --eval-every, else 50)",
    )
    p.add_argument("--split", choices=("val", "test"), default="test")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument(
        "--workers",
        type=int,
        help="data-parallel training on N Ray Train workers (negatives "
        "gathered across workers; resumes from --out's checkpoint); default: "
        "one process",
    )
    p.add_argument(
        "--ray-address", help="a running Ray cluster for --workers (default: local)"
    )


def _evaluate_parser(sub: Any) -> None:
    p = sub.add_parser("evaluate", help="metrics of a trained run on a split")
    p.add_argument("--run", required=True, help="run folder written by 'train'")
    p.add_argument("--split", choices=("val", "test"), default="test")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _embed_parser(sub: Any) -> None:
    p = sub.add_parser(
        "embed",
        help="embeddings of all targets to .npy/.parquet or a Parquet folder",
        description="Embeds every target of a trained run. --out FILE.npy or "
        "FILE.parquet: one file from this process; --out FOLDER (no suffix): "
        "Parquet shards (id, embedding) by id range, written by this process "
        "or, with --ray, by a Ray actor pool.",
    )
    p.add_argument("--run", required=True, help="run folder written by 'train'")
    p.add_argument("--out", required=True, help="file (.npy, .parquet) or folder")
    p.add_argument("--batch-size", type=int, default=8192, help="ids per shard")
    _add_ray_args(p)


def _precompute_parser(sub: Any) -> None:
    p = sub.add_parser(
        "precompute",
        help="importance-neighbor tables of every target to Parquet shards",
        description="Saves the graph as a memory-mappable CSR (--csr, reused "
        "when it exists) and tabulates the importance neighbors of every "
        "target (contextual walks, PinSage visit counts or PPR) into --out: "
        "Parquet shards by seed range, identical whatever the number of "
        "workers. With --ray, a Ray actor pool does the work, each actor "
        "memory-mapping the CSR.",
    )
    _add_data_args(p)
    p.add_argument(
        "--csr", help="saved CSR folder (made if missing; not with --partitions)"
    )
    p.add_argument(
        "--out",
        required=True,
        help="output folder of Parquet shards (with --partitions: a .pt file "
        "as 'sample' writes)",
    )
    p.add_argument("--sampler", choices=("walk", "pinsage", "ppr"), default="walk")
    p.add_argument("--num-walks", type=int, default=100)
    p.add_argument("--num-neighbors", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=4096, help="seeds per shard")
    _add_ray_args(p)
    p.add_argument(
        "--partitions",
        type=int,
        help="cut the graph into P node-range parts, one worker per part that "
        "memory-maps only its part (walk and pinsage samplers; tables equal "
        "the single-process ones for any P)",
    )
    p.add_argument(
        "--parts-dir",
        help="with --partitions: folder for the parts (must not exist; default: "
        "a temporary folder, removed afterwards)",
    )
    p.add_argument(
        "--engine",
        choices=("ray", "local"),
        default="ray",
        help="with --partitions: Ray actors, or workers inside this process",
    )


def _index_parser(sub: Any) -> None:
    p = sub.add_parser(
        "index",
        help="build a nearest-neighbor index (faiss HNSW) from saved embeddings",
        description="L2-normalizes the embeddings and builds a faiss HNSW "
        "inner-product index (scores are cosines), written atomically. "
        "Needs the [ann] extra.",
    )
    p.add_argument(
        "--embeddings", required=True, help="output of 'embed' (.npy/.parquet/folder)"
    )
    p.add_argument("--out", required=True, help="index file to write")
    p.add_argument("--m", type=int, default=32, help="HNSW graph degree")
    p.add_argument("--ef-construction", type=int, default=200)
    p.add_argument("--ef-search", type=int, default=128, help="stored search depth")


def _sample_parser(sub: Any) -> None:
    p = sub.add_parser(
        "sample",
        help="precompute neighbor tables to a file, or load one back",
        description="Tabulates importance neighbors of every target (contextual "
        "walks, PinSage visit counts or PPR) and saves them with torch.save; "
        "--load prints a saved file's summary and first rows.",
    )
    _add_data_args(p)
    p.add_argument("--sampler", choices=("walk", "pinsage", "ppr"), default="walk")
    p.add_argument("--num-walks", type=int, default=100)
    p.add_argument("--num-neighbors", type=int, default=20)
    p.add_argument(
        "--alpha", type=float, default=0.15, help="PPR restart probability (ppr)"
    )
    p.add_argument("--eps", type=float, default=1e-4, help="PPR push tolerance (ppr)")
    p.add_argument("--out", help="output file (.pt)")
    p.add_argument("--load", help="a file written by 'sample' to inspect")


def _related_parser(sub: Any) -> None:
    p = sub.add_parser(
        "related",
        help="nearest targets of a query, optionally within a context (Fig. 7)",
        description="Ranks all targets by cosine similarity to --query. With "
        "--context (a MultiSage run), query and candidates are both masked by "
        "that context node (Eq. 5): contextualized recommendation, MultiSage "
        "Fig. 7.",
    )
    p.add_argument("--run", required=True, help="run folder written by 'train'")
    p.add_argument("--query", type=int, required=True, help="target node id")
    p.add_argument("--context", type=int, help="context node id")
    p.add_argument("--context-type", help="context node type (default: the first)")
    p.add_argument("-k", type=int, default=10, help="how many to show")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument(
        "--index",
        help="faiss index from 'index': search it (memory-mapped) instead of "
        "scoring every target; with --context, its candidates are re-ranked",
    )
    p.add_argument(
        "--candidates",
        type=int,
        default=200,
        help="with --index and --context: index candidates to re-rank",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pyg-multisage",
        description=DESCRIPTION,
        formatter_class=_Formatter,
    )
    parser.add_argument(
        "--version", action="version", version=f"pyg-multisage {__version__}"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add = sub.add_parser
    sub.add_parser = lambda *a, **k: _add(
        *a, formatter_class=argparse.ArgumentDefaultsHelpFormatter, **k
    )

    _train_parser(sub)
    _evaluate_parser(sub)
    _embed_parser(sub)
    _precompute_parser(sub)
    _index_parser(sub)
    _sample_parser(sub)
    _related_parser(sub)
    return parser


def _add_ray_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ray", action="store_true", help="run on a Ray actor pool")
    p.add_argument(
        "--ray-address", help="a running Ray cluster (default: start a local one)"
    )
    p.add_argument("--workers", type=int, default=2, help="Ray actors")
    p.add_argument(
        "--cpus-per-worker", type=float, default=0.5, help="CPUs Ray reserves/actor"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")


# ---------------------------------------------------------------------------
def _synthetic(args: argparse.Namespace) -> dict[str, int]:
    n = args.synthetic_size
    if n < 20:
        raise CLIError(f"--synthetic-size must be >= 20, got {n}")
    return {"num_targets": n, "num_contexts": max(n // 10, 2)}


def _force_reload(args: argparse.Namespace) -> None:
    """``--force-reload``: rebuild the processed DBLP file that the command
    then loads (same root and raw folder as :func:`experiment.load_task`)."""
    if not args.force_reload:
        return
    if args.dataset != "dblp":
        raise CLIError("--force-reload applies to --dataset dblp only")
    from pyg_multisage.datasets.dblp import DBLP, find_dblp_raw

    root = args.root or os.path.join(
        os.path.expanduser("~"), ".cache", "pyg_multisage", "dblp"
    )
    DBLP(root, raw_dir=args.raw_dir or find_dblp_raw(), force_reload=True)


def _check_output_file(path: Path, flag: str = "--out") -> None:
    """Fails before any work when :obj:`path` cannot be written: it is a
    folder, an ancestor is a regular file, or its folder is not writable
    (tried by creating and removing a temporary file there)."""
    if path.is_dir():
        raise CLIError(f"{flag} {path} is a folder, not a file")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise CLIError(f"{flag} {path}: {parent} is a file, not a folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise CLIError(
            f"{flag} {path}: cannot write into {path.parent} ({err.strerror or err})"
        ) from None


def _atomic_write(path: Path, write) -> None:
    """Calls ``write(file_object)`` on a temporary file next to
    :obj:`path`, then renames it over :obj:`path` (never half-written)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


#: ``train`` flags that a resumed run takes from its saved config.json.
_RUN_FLAGS = (
    "dataset", "root", "raw_dir", "seed", "synthetic_size", "model", "out",
    "steps", "epochs", "evals_per_epoch", "patience", "temperature",
    "feature_skip", "hard_negatives",
    "batch_size", "negatives", "lr", "loss", "num_walks",
    "num_neighbors", "eval_every", "checkpoint_every", "split", "overwrite",
    "workers", "ray_address", "preset",
)  # fmt: skip

#: ``train`` flags a preset may set: flag dest -> RunConfig field.
_PRESET_FIELDS = {
    "steps": "steps", "batch_size": "batch_size", "negatives": "num_negatives",
    "lr": "lr", "loss": "loss", "num_walks": "num_walks",
    "num_neighbors": "num_neighbors", "eval_every": "eval_every",
    "checkpoint_every": "checkpoint_every", "split": "eval_split",
}  # fmt: skip


def _explicit_fields(argv: Sequence[str]) -> set[str]:
    """RunConfig fields whose ``train`` flag :obj:`argv` gives explicitly
    (re-parsed with every such flag defaulting to :obj:`None`)."""
    parser = build_parser()
    train = parser._subparsers._group_actions[0].choices["train"]
    train.set_defaults(**dict.fromkeys(_PRESET_FIELDS))
    given = parser.parse_args(list(argv))
    return {f for d, f in _PRESET_FIELDS.items() if getattr(given, d) is not None}


def _apply_preset(args: argparse.Namespace, kw: dict) -> dict:
    """:obj:`kw` (RunConfig settings from the flags) with the settings of
    ``--preset`` for the model, except those whose flag was given."""
    if args.preset is None:
        return kw
    try:
        preset = preset_overrides(args.preset, args.model)
    except ValueError as err:
        raise CLIError(f"--preset: {err}") from None
    explicit = _explicit_fields(getattr(args, "argv", None) or sys.argv[1:])
    return {**kw, **{k: v for k, v in preset.items() if k not in explicit}}


def _resume_config(args: argparse.Namespace) -> ex.RunConfig:
    defaults = build_parser()._subparsers._group_actions[0].choices["train"]
    changed = [
        f"--{name.replace('_', '-')}"
        for name in _RUN_FLAGS
        if getattr(args, name) != defaults.get_default(name)
    ]
    if changed:
        raise CLIError(
            f"--resume continues the run with its saved settings; drop "
            f"{', '.join(changed)}"
        )
    cfg_file = ex.partial_dir(args.resume) / "config.json"
    if not cfg_file.is_file():
        ex.check_output_dir(args.resume, resume=True)  # raises the reason
    try:
        config = ex.read_config(cfg_file)
    except ValueError as err:
        raise CLIError(str(err)) from None
    config.progress = not args.quiet
    return config


#: RunConfig settings named by their ``train`` flag in error messages.
_FLAG_OF = {
    "num_negatives": "--negatives",
    "batch_size": "--batch-size",
    "num_walks": "--num-walks",
    "num_neighbors": "--num-neighbors",
    "eval_every": "--eval-every",
    "checkpoint_every": "--checkpoint-every",
    "steps": "--steps",
    "epochs": "--epochs",
    "evals_per_epoch": "--evals-per-epoch",
    "patience": "--patience",
    "hard_negatives": "--hard-negatives",
    "lr": "--lr",
}


def _run_config(**kw) -> ex.RunConfig:
    """:class:`experiment.RunConfig`, its errors naming the ``train`` flag."""
    try:
        return ex.RunConfig(**kw)
    except ValueError as err:
        name = str(err).split(" ", 1)[0]
        if name in _FLAG_OF:
            raise CLIError(f"{_FLAG_OF[name]}: {err}") from None
        raise


def _flag_settings(args: argparse.Namespace, out: str) -> dict:
    """The RunConfig settings the ``train`` flags give."""
    return dict(
        dataset=args.dataset,
        model=args.model,
        root=args.root,
        raw_dir=args.raw_dir,
        output_dir=out,
        seed=args.seed,
        steps=args.steps,
        epochs=args.epochs,
        evals_per_epoch=args.evals_per_epoch,
        patience=args.patience,
        temperature=args.temperature,
        feature_skip=args.feature_skip,
        hard_negatives=args.hard_negatives,
        batch_size=args.batch_size,
        num_negatives=args.negatives,
        lr=args.lr,
        loss=args.loss,
        num_walks=args.num_walks,
        num_neighbors=args.num_neighbors,
        eval_every=args.eval_every,
        checkpoint_every=args.checkpoint_every,
        eval_split=args.split,
        progress=not args.quiet,
        synthetic=_synthetic(args),
    )


def cmd_train(args: argparse.Namespace) -> int:
    if args.resume:
        config = _resume_config(args)
        out = config.output_dir
    else:
        out = args.out or f"runs/{args.dataset}-{args.model}-s{args.seed}"
        config = _run_config(
            **_apply_preset(args, _flag_settings(args, out)),
        )
        if args.force_reload:  # re-processing takes minutes: check --out first
            try:
                check_output_dir(out, overwrite=args.overwrite, create=False)
            except RunFolderError as err:
                raise CLIError(str(err)) from None
        _force_reload(args)
    if args.workers is not None or args.ray_address:
        if args.ray_address and args.workers is None:
            raise CLIError("--ray-address needs --workers")
        if args.workers < 1:
            raise CLIError(f"--workers must be >= 1, got {args.workers}")
        if config.batch_size < args.workers:
            raise CLIError(
                f"--batch-size ({config.batch_size}) must be >= --workers "
                f"({args.workers}): each worker takes a slice of every step's pairs"
            )
        from pyg_multisage.distributed.train import (
            DistributedTrainingError,
            train_distributed,
        )

        try:
            result = train_distributed(
                config, workers=args.workers, address=args.ray_address
            )
        except ImportError as err:
            raise CLIError(str(err)) from None
        except DistributedTrainingError as err:  # the job failed, not the input
            print(f"pyg-multisage train: {err}", file=sys.stderr)
            return 1
    else:
        resume_cmd = f"pyg-multisage train --resume {out}"
        try:
            result = ex.run(config, resume=bool(args.resume), overwrite=args.overwrite)
        except TrainingInterrupted as err:
            print(
                f"pyg-multisage train: {err}; resume with: {resume_cmd}",
                file=sys.stderr,
            )
            return 128 + err.signum
        except KeyboardInterrupt as err:
            signum = getattr(err, "signum", signal.SIGINT)
            where = ex.partial_dir(out)
            hint = (
                f"; the run so far is in {where}; resume with: {resume_cmd}"
                if (where / "config.json").is_file()
                else ""
            )
            name = signal.Signals(signum).name
            print(f"pyg-multisage train: interrupted by {name}{hint}", file=sys.stderr)
            return 128 + signum
    print(
        f"\n{config.dataset} / {config.model} ({config.eval_split} pairs, "
        "pool = all targets)"
    )
    print(ex.format_table({config.model: result.metrics}))
    best_epoch = getattr(result, "best_epoch", None)
    if best_epoch is not None:
        val = max(r["MRR"] for r in result.val_curve)
        stop = ", stopped early" if result.stopped_early else ""
        print(
            f"\nbest validation MRR {val:.4f} at epoch {best_epoch:.2f} "
            f"(step {result.best_step}{stop}): these weights are reported"
        )
    print(f"\nrun folder: {out}  (checkpoint.pt, metrics.json, curves.png)")
    return 0


def _load(run: str, quiet: bool = True):
    try:
        return ex.load_run(run, progress=not quiet)
    except FileNotFoundError as err:
        raise CLIError(str(err)) from None


def cmd_evaluate(args: argparse.Namespace) -> int:
    path = Path(args.run) / f"metrics_{args.split}.json"
    if Path(args.run, "config.json").is_file():
        _check_output_file(path, "--run")
    config, task, model, batcher = _load(args.run, args.quiet)
    emb = ex.embed_all(
        model, batcher, task.data[task.target].num_nodes, progress=not args.quiet
    )
    metrics = ex.evaluate(emb, task.pairs[args.split])
    print(ex.format_table({config.model: metrics}))
    _atomic_write(path, lambda f: f.write(json.dumps(metrics, indent=2).encode()))
    print(f"saved {path}")
    return 0


def _check_ray_args(args: argparse.Namespace) -> None:
    if args.workers < 1:
        raise CLIError(f"--workers must be >= 1, got {args.workers}")
    if args.cpus_per_worker <= 0:
        raise CLIError(f"--cpus-per-worker must be > 0, got {args.cpus_per_worker}")
    if args.batch_size < 1:
        raise CLIError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.ray_address and not args.ray:
        raise CLIError("--ray-address needs --ray")


def _ray_kwargs(args: argparse.Namespace) -> dict:
    return dict(
        batch_size=args.batch_size,
        ray=args.ray,
        num_workers=args.workers,
        cpus_per_worker=args.cpus_per_worker,
        address=args.ray_address,
        progress=not args.quiet,
    )


def cmd_embed(args: argparse.Namespace) -> int:
    out = Path(args.out)
    _check_ray_args(args)
    if out.suffix == "":
        from pyg_multisage.distributed import embed_nodes, read_embedding_folder

        if not (Path(args.run) / "config.json").is_file():
            raise CLIError(f"--run {args.run} holds no config.json: not a training run")
        embed_nodes(args.run, out, **_ray_kwargs(args))
        ids, emb = read_embedding_folder(out)
        print(f"saved {len(ids)} x {emb.shape[1]} embeddings to {out}/")
        return 0
    if out.suffix not in (".npy", ".parquet"):
        raise CLIError(
            f"--out must end in .npy or .parquet, or be a folder, got {out.name!r}"
        )
    if args.ray:
        raise CLIError(
            "--ray writes a Parquet folder: give --out a name without suffix"
        )
    if out.suffix == ".parquet":
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise CLIError(
                f"--out {out}: writing .parquet needs pyarrow: "
                "pip install 'pyg_multisage[parquet]'"
            ) from None
    _check_output_file(out)
    config, task, model, batcher = _load(args.run, args.quiet)
    emb = ex.embed_all(
        model, batcher, task.data[task.target].num_nodes, progress=not args.quiet
    ).numpy()
    if out.suffix == ".npy":
        import numpy as np

        _atomic_write(out, lambda f: np.save(f, emb))
    else:
        table = pa.table(
            {"id": range(len(emb)), "embedding": pa.array(list(emb.astype("float32")))}
        )
        _atomic_write(out, lambda f: pq.write_table(table, f))
    print(f"saved {emb.shape[0]} x {emb.shape[1]} {task.target} embeddings to {out}")
    return 0


def load_tables(path: str | os.PathLike) -> dict:
    """:func:`~pyg_multisage.sampling.table.load_neighbor_tables`, its
    errors naming ``--load``."""
    from pyg_multisage.sampling.table import TableFileError, load_neighbor_tables

    try:
        return load_neighbor_tables(path)
    except TableFileError as err:
        raise CLIError(f"--load {err}") from None


def cmd_sample(args: argparse.Namespace) -> int:
    if args.load:
        if args.out:
            raise CLIError(
                "give either --out (save tables) or --load (inspect), not both"
            )
        obj = load_tables(args.load)
        print(f"{args.load}: {obj['sampler']} neighbors of '{obj['target']}'")
        for name, table in obj["tables"].items():
            print(f"  {name}: {table}")
            nbr, w, ctx = table.row(0)
            extra = "" if ctx is None else f", context {ctx[:5].tolist()}"
            print(f"    row of {int(table.seeds[0])}: {nbr[:5].tolist()}{extra}")
        return 0
    if not args.out:
        raise CLIError("give --out FILE.pt to save tables, or --load FILE.pt")
    for flag, value in (
        ("--num-walks", args.num_walks),
        ("--num-neighbors", args.num_neighbors),
    ):
        if value < 1:
            raise CLIError(f"{flag} must be >= 1, got {value}")
    if not 0 < args.alpha < 1:
        raise CLIError(f"--alpha must be in (0, 1), got {args.alpha}")
    if not args.eps > 0:
        raise CLIError(f"--eps must be > 0, got {args.eps}")
    out = Path(args.out)
    _check_output_file(out)
    _force_reload(args)
    from pyg_multisage.graph import HeteroCSR
    from pyg_multisage.sampling import contextual_walk, pinsage_walk, ppr_topk

    config = ex.RunConfig(
        dataset=args.dataset,
        root=args.root,
        raw_dir=args.raw_dir,
        seed=args.seed,
        synthetic=_synthetic(args),
    )
    task = ex.load_task(config)
    seeds = torch.arange(task.data[task.target].num_nodes)
    kw = dict(
        num_walks=args.num_walks, num_neighbors=args.num_neighbors, seed=args.seed
    )
    if args.sampler == "walk":
        csr = HeteroCSR.from_data(task.data)
        tables = contextual_walk(
            csr, seeds, target=task.target, context=task.contexts, **kw
        )
    elif args.sampler == "pinsage":
        csr = HeteroCSR.from_data(task.data)
        tables = {
            c: pinsage_walk(csr, seeds, target=task.target, context=c, **kw)
            for c in task.contexts
        }
    else:
        csr = HeteroCSR.from_data(task.data, undirected=True)
        rels = [et for et in csr.edge_types if task.target in (et[0], et[2])]
        top_k = {t: args.num_neighbors for t in [task.target, *task.contexts]}
        tables = ppr_topk(
            csr,
            seeds,
            source_type=task.target,
            relations=rels,
            top_k=top_k,
            alpha=args.alpha,
            eps=args.eps,
        )
    from pyg_multisage.sampling.table import save_neighbor_tables

    save_neighbor_tables(out, args.sampler, task.target, tables)
    total = sum(t.num_edges for t in tables.values())
    print(f"saved {len(tables)} table(s), {total} neighbor entries, to {out}")
    return 0


def _names(store) -> list[str] | None:
    """Display names of a node type (``title`` or ``name``), if the dataset
    has them."""
    for key in ("title", "name"):
        names = getattr(store, key, None) if key in store else None
        if isinstance(names, list | tuple) and len(names) == store.num_nodes:
            return list(names)
    return None


def _precompute_partitioned(args: argparse.Namespace) -> int:
    import tempfile

    from pyg_multisage.distributed.partitioned import (
        PartitionedWalkError,
        partition_graph,
        precompute_partitioned,
    )
    from pyg_multisage.graph import HeteroCSR

    if args.partitions < 1:
        raise CLIError(f"--partitions must be >= 1, got {args.partitions}")
    if args.parts_dir and Path(args.parts_dir).exists():
        raise CLIError(f"--parts-dir {args.parts_dir!r} exists; give a new folder")
    config = ex.RunConfig(
        dataset=args.dataset,
        root=args.root,
        raw_dir=args.raw_dir,
        seed=args.seed,
        synthetic=_synthetic(args),
    )
    task = ex.load_task(config)
    csr = HeteroCSR.from_data(task.data)
    with tempfile.TemporaryDirectory(prefix="pyg-multisage-parts-") as tmp:
        parts = partition_graph(
            csr, args.parts_dir or Path(tmp) / "parts", args.partitions
        )
        try:
            tables = precompute_partitioned(
                parts,
                args.out,
                target=task.target,
                contexts=task.contexts,
                sampler=args.sampler,
                num_walks=args.num_walks,
                num_neighbors=args.num_neighbors,
                seed=args.seed,
                engine=args.engine,
            )
        except (ImportError, PartitionedWalkError) as err:
            raise CLIError(str(err)) from None
    total = sum(t.num_edges for t in tables.values())
    print(
        f"saved {len(tables)} table(s), {total} neighbor entries, to {args.out} "
        f"({args.partitions} parts, engine {args.engine})"
    )
    return 0


def cmd_related(args: argparse.Namespace) -> int:
    if args.context_type is not None and args.context is None:
        raise CLIError("--context-type needs --context (a context node id)")
    if args.k < 1:
        raise CLIError(f"-k must be >= 1, got {args.k}")
    config, task, model, batcher = _load(args.run, args.quiet)
    n = task.data[task.target].num_nodes
    if not 0 <= args.query < n:
        raise CLIError(
            f"--query must be a {task.target} id in [0, {n}), got {args.query}"
        )
    if args.k > n - 1:
        raise CLIError(
            f"-k must be at most {n - 1} (the other {task.target}s), got {args.k}"
        )
    if args.candidates < 1:
        raise CLIError(f"--candidates must be >= 1, got {args.candidates}")
    names = task.names
    label = lambda i: f"{i:>6}  {names[i]}" if names else f"{i:>6}"
    index = None
    if args.index is not None:
        from pyg_multisage.distributed import ann

        index = ann.load_index(args.index, mmap=True)
    ctype = encoder = None
    if args.context is not None:
        encoder = model.encoder
        if not isinstance(encoder, MultiSage):
            raise CLIError("--context needs a MultiSage run (--model multisage)")
        ctype = args.context_type or encoder.context_types[0]
        if ctype not in encoder.context_types:
            raise CLIError(f"--context-type must be one of {encoder.context_types}")
        nc = task.data[ctype].num_nodes
        if not 0 <= args.context < nc:
            raise CLIError(
                f"--context must be a {ctype} id in [0, {nc}), got {args.context}"
            )
    title = f"related to {label(args.query)}"
    if ctype is not None:
        ctx_names = _names(task.data[ctype])
        ctx_label = f"{args.context}" + (
            f" ({ctx_names[args.context]})" if ctx_names else ""
        )
        title += f"\n  within {ctype} {ctx_label}"
    if index is not None:
        # The query's embedding, then the index's nearest ids (itself dropped).
        with torch.no_grad():
            q = model(batcher(torch.tensor([args.query]))).numpy()
        want = args.k + 1 if ctype is None else max(args.candidates, args.k + 1)
        scores, ids = ann.search(
            index, q, min(want, index.ntotal), source=f"--index {args.index}"
        )
        keep = (ids[0] >= 0) & (ids[0] != args.query)
        cand = torch.from_numpy(ids[0][keep].copy())
        if ctype is None:
            top = cand[: args.k].tolist()
            shown = dict(zip(top, scores[0][keep][: args.k].tolist(), strict=True))
        else:
            # Re-rank the candidates by the contextual embeddings (Eq. 5).
            x = task.data[task.target].x
            x_ctx = task.data[ctype].x[args.context]
            with torch.no_grad():
                zq = encoder.contextual_embedding(x[[args.query]], x_ctx, ctype)
                zc = encoder.contextual_embedding(x[cand], x_ctx, ctype)
            s = zc @ zq[0]
            order = s.argsort(descending=True)[: args.k]
            top = cand[order].tolist()
            shown = dict(zip(top, s[order].tolist(), strict=True))
        print(title + f"\n  (index {args.index})")
        for rank, i in enumerate(top, 1):
            print(f"{rank:>3}. {shown[i]:.3f} {label(i)}")
        return 0
    if ctype is None:
        emb = ex.embed_all(model, batcher, n, progress=not args.quiet)
    else:
        x_ctx = task.data[ctype].x[args.context]
        emb = encoder.contextual_embedding(task.data[task.target].x, x_ctx, ctype)
    scores = emb @ emb[args.query]
    scores[args.query] = float("-inf")
    top = scores.topk(args.k).indices.tolist()
    print(title)
    for rank, i in enumerate(top, 1):
        print(f"{rank:>3}. {float(scores[i]):.3f} {label(i)}")
    return 0


def cmd_precompute(args: argparse.Namespace) -> int:
    if args.partitions is None:
        return _precompute_sharded(args)
    if args.sampler == "ppr":
        raise CLIError("--partitions runs the walk and pinsage samplers, not ppr")
    if args.csr:
        raise CLIError("--csr and --partitions exclude each other")
    return _precompute_partitioned(args)


def _precompute_sharded(args: argparse.Namespace) -> int:
    from pyg_multisage.distributed import TableSpec, precompute
    from pyg_multisage.graph import HeteroCSR

    _check_ray_args(args)
    if not args.csr:
        raise CLIError("--csr is required (the saved CSR folder, made if missing)")
    for flag in ("num_walks", "num_neighbors"):
        if getattr(args, flag) < 1:
            name = "--" + flag.replace("_", "-")
            raise CLIError(f"{name} must be >= 1, got {getattr(args, flag)}")
    if Path(args.out).exists():
        raise CLIError(f"--out {args.out} already exists")
    config = ex.RunConfig(
        dataset=args.dataset,
        root=args.root,
        raw_dir=args.raw_dir,
        seed=args.seed,
        synthetic=_synthetic(args),
    )
    task = ex.load_task(config)
    csr_dir = Path(args.csr)
    undirected = args.sampler == "ppr"
    if not csr_dir.exists():
        HeteroCSR.from_data(task.data, undirected=undirected).save(csr_dir)
        print(f"saved the graph's CSR to {csr_dir}/")
    csr = HeteroCSR.load(csr_dir)
    if args.sampler == "ppr":
        rels = [et for et in csr.edge_types if task.target in (et[0], et[2])]
        top_k = {t: args.num_neighbors for t in [task.target, *task.contexts]}
        spec = TableSpec(
            "ppr", task.target, relation_subsets={"ctx": rels}, top_k={"ctx": top_k}
        )
    else:
        contexts = task.contexts if args.sampler == "walk" else task.contexts[:1]
        spec = TableSpec(
            args.sampler,
            task.target,
            contexts,
            num_walks=args.num_walks,
            num_neighbors=args.num_neighbors,
            seed=args.seed,
        )
    out = precompute(csr_dir, spec, args.out, **_ray_kwargs(args))
    types = ", ".join(et[1] for et in spec.edge_types())
    where = f"Ray ({args.workers} workers)" if args.ray else "this process"
    print(f"saved {types} tables of every {task.target} to {out}/ ({where})")
    return 0


def cmd_index(args: argparse.Namespace) -> int:
    from pyg_multisage.distributed import ann

    if args.m < 2 or args.ef_construction < 2 or args.ef_search < 1:
        raise CLIError("--m and --ef-construction must be >= 2, --ef-search >= 1")
    try:
        ids, vectors = ann.read_embeddings(args.embeddings)
    except (ValueError, FileNotFoundError) as err:
        raise CLIError(f"--embeddings: {err}") from None
    index = ann.build_index(
        vectors,
        args.out,
        ids=ids,
        m=args.m,
        ef_construction=args.ef_construction,
        ef_search=args.ef_search,
    )
    print(f"indexed {index.ntotal} vectors of width {index.d} in {args.out}")
    return 0


COMMANDS = {
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "embed": cmd_embed,
    "sample": cmd_sample,
    "precompute": cmd_precompute,
    "index": cmd_index,
    "related": cmd_related,
}


class _Terminated(KeyboardInterrupt):
    """SIGTERM outside training (training saves a checkpoint first)."""

    signum = signal.SIGTERM


def _on_sigterm(signum: int, frame: object) -> None:
    raise _Terminated()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pyg-multisage`` console script.

    Exit status: 0 done; 2 a user error or a diverged training run, printed
    as one line; 128 + the signal number (130 SIGINT, 143 SIGTERM) when
    interrupted (``train`` prints where its checkpoint is and the resume
    command)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv  # which flags were given explicitly (train --preset)
    old = None
    if threading.current_thread() is threading.main_thread():
        old = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return COMMANDS[args.command](args)
    except (
        CLIError,
        ValueError,
        TypeError,
        OSError,
        ImportError,
        RuntimeError,
        TrainingDiverged,
    ) as err:
        print(f"pyg-multisage {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        signum = getattr(err, "signum", signal.SIGINT)
        name = signal.Signals(signum).name
        print(f"pyg-multisage {args.command}: interrupted by {name}", file=sys.stderr)
        return 128 + signum
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)


if __name__ == "__main__":
    sys.exit(main())
