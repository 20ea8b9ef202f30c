"""The main job: sample, train, evaluate one model on a retrieval task.

One function, :func:`run`, drives everything the ``pyg-multisage train``
command and ``examples/dblp_comparison.py`` do, so that every model of the
comparison (MultiSage Table 2) gets the same data, neighbors, negatives,
loss and training budget:

1. load a dataset with query–positive pairs (:func:`load_task`);
2. tabulate importance neighbors once (:func:`add_neighbors`): MultiSage's
   contextual walks (Alg. 2) for every context type, or OmniSage's PPR
   neighbors (§3.1.1);
3. train the model on batches of ``(query, positive, random negatives)``
   seeds cut by :class:`~pyg_multisage.loader.ImportanceNeighborLoader`'s
   sampler, with the sampled softmax of OmniSage Eq. 1 (in-batch plus random
   negatives) or MultiSage's max-margin loss (Eq. 3);
4. embed every target and compute the metrics of MultiSage §3.1 on the
   held-out pairs against the pool of all targets.

The graph baselines (PinSage-style, GAT, HAN) read the *same* walk neighbors
as MultiSage but ignore their dominant contexts, so the comparison isolates
the contextual mechanism, as in the paper ("our implementation ... based on
PinSage").
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import HeteroData
from torch_geometric.nn import GATConv, HANConv
from torch_geometric.utils import scatter

from pyg_multisage import convention
from pyg_multisage.convention import EdgeType, ppr_edge_type
from pyg_multisage.loader import ImportanceNeighborLoader
from pyg_multisage.losses import max_margin_loss, sampled_softmax_loss
from pyg_multisage.metrics import retrieval_metrics
from pyg_multisage.nn.models import MultiSage, OmniSage
from pyg_multisage.train import TrainConfig, fit, load_checkpoint
from pyg_multisage.transforms import ContextualWalkNeighbors, PPRNeighbors

MODELS = ("text", "pinsage", "gat", "han", "multisage", "multisage-2", "omnisage")
DATASETS = ("synthetic", "dblp", "ogbn-mag")
METRIC_COLUMNS = (
    "MRR",
    "REC@1",
    "REC@10",
    "DC+",
    "DC*",
    "DE+",
    "DE*",
    "INT",
    "UNI",
    "JAC",
)


@dataclass
class RunConfig:
    """Settings of one run of the main job (the ``train`` command's flags).

    Args:
        dataset (str): ``synthetic``, ``dblp`` or ``ogbn-mag``.
        model (str): One of :data:`MODELS`. ``multisage`` uses every context
            type of the dataset (MultiSage-3 on DBLP: venue + term),
            ``multisage-2`` only the first (venue).
        root (str, optional): Dataset folder (processed files go there).
        raw_dir (str, optional): Folder of raw files read in place (DBLP).
        steps (int): Optimizer steps. batch_size (int): pairs per step.
        num_negatives (int): random negatives per step, shared by the batch.
        loss (str): ``softmax`` (OmniSage Eq. 1) or ``margin`` (MultiSage
            Eq. 3).
        temperature (float): :math:`\\lambda` of the sampled softmax.
        num_walks, walk_length, restart_prob, num_neighbors: contextual walk
            (MultiSage Alg. 2) settings shared by every graph model.
        ppr_eps, ppr_alpha, ppr_top_k: OmniSage's PPR neighbors.
        max_eval_pairs (int): score a seeded subset of at most this many
            evaluation pairs (``0``: all).
        target_relu (bool), act (str), combine (str), attention (str):
            MultiSage's layer options (:class:`~pyg_multisage.nn.MultiSageConv`).
            The defaults (no ReLU on the last target layer, the zero-centred
            ``tanh`` for Eq. 7's sigmoid) were chosen on DBLP's *validation*
            pairs: the literal equations keep every output non-negative with
            a common offset and the cosines in a narrow band (MultiSage-3
            val MRR 0.028 with the sigmoid at 400 steps, 0.048 with tanh at
            300; see ``docs/comparison.rst``).
    """

    dataset: str = "synthetic"
    model: str = "multisage"
    root: str | None = None
    raw_dir: str | None = None
    output_dir: str | None = None
    seed: int = 0
    steps: int = 400
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
    combine: str = "mask"
    act: str = "tanh"
    attention: str | None = "three_way"
    num_walks: int = 100
    walk_length: int = 3
    restart_prob: float = 0.5
    num_neighbors: int = 10
    ppr_alpha: float = 0.15
    ppr_eps: float = 1e-4
    ppr_top_k: int = 20
    eval_every: int | None = None
    eval_split: str = "test"
    max_eval_pairs: int = 0
    progress: bool = True
    synthetic: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {DATASETS}, got {self.dataset!r}")
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, got {self.model!r}")
        if self.loss not in ("softmax", "margin"):
            raise ValueError(f"loss must be 'softmax' or 'margin', got {self.loss!r}")
        if self.eval_split not in ("val", "test"):
            raise ValueError(
                f"eval_split must be 'val' or 'test', got {self.eval_split!r}"
            )
        for name in ("steps", "batch_size", "num_neighbors", "num_walks"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


@dataclass
class Task:
    """A retrieval task: a graph whose ``target`` nodes are embedded, the
    ``contexts`` node types between them, and query–positive pairs."""

    data: HeteroData
    target: str
    contexts: list[str]
    pairs: dict[str, Tensor]
    names: list[str] | None = None


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------
def load_task(config: RunConfig) -> Task:
    """Loads :obj:`config.dataset` as a :class:`Task`."""
    if config.dataset == "synthetic":
        from pyg_multisage.datasets import synthetic_multipartite

        kwargs = {"num_targets": 5000, "num_contexts": 500, "seed": 0}
        kwargs.update(config.synthetic)
        data = synthetic_multipartite(**kwargs)
        target = kwargs.get("target", "item")
        contexts = [kwargs.get("context", "board")]
        names = None
    elif config.dataset == "dblp":
        from pyg_multisage.datasets.dblp import DBLP, find_dblp_raw

        raw_dir = config.raw_dir or find_dblp_raw()
        root = config.root or os.path.join(
            os.path.expanduser("~"), ".cache", "pyg_multisage", "dblp"
        )
        data = DBLP(root, raw_dir=raw_dir)[0]
        target, contexts = "paper", ["venue", "term"]
        names = list(data["paper"].title)
    else:
        from pyg_multisage.datasets.ogbn_mag import citation_pairs, ogbn_mag

        if config.root is None:
            raise ValueError("ogbn-mag needs --root, the folder of PyG's OGB_MAG")
        data = ogbn_mag(config.root, keep_citations=True)
        # Retrieval pairs: citing -> cited paper, split by the citing paper's
        # official (time) split; citations leave the graph.
        for split, pairs in citation_pairs(data).items():
            data[f"{split}_pairs"] = pairs
        target, contexts = "paper", ["field_of_study", "author"]
        names = None
    pairs = {}
    for split in ("train", "val", "test"):
        key = f"{split}_pairs"
        if key not in data:
            raise ValueError(f"dataset {config.dataset!r} has no {key}")
        pairs[split] = data[key]
    return Task(data, target, contexts, pairs, names)


def walk_edge_types(
    task: Task, contexts: Sequence[str] | None = None
) -> list[EdgeType]:
    return convention.walk_edge_types(task.target, contexts or task.contexts)


def ppr_edge_types(task: Task) -> list[EdgeType]:
    return [ppr_edge_type(t, "ctx", task.target) for t in [task.target, *task.contexts]]


def add_neighbors(task: Task, config: RunConfig) -> HeteroData:
    """Writes the importance-neighbor edges the model needs into the graph."""
    data = task.data
    if config.model == "text":
        return data
    if config.model == "omnisage":
        rels = [
            et
            for et in data.edge_types
            if task.target in (et[0], et[2]) and {et[0], et[2]} & set(task.contexts)
        ]
        top_k = {task.target: config.ppr_top_k}
        top_k.update({c: max(1, config.ppr_top_k // 4) for c in task.contexts})
        transform = PPRNeighbors(
            task.target,
            {"ctx": rels},
            {"ctx": top_k},
            alpha=config.ppr_alpha,
            eps=config.ppr_eps,
            progress=config.progress,
        )
        return transform(data)
    transform = ContextualWalkNeighbors(
        task.target,
        task.contexts,
        num_walks=config.num_walks,
        walk_length=config.walk_length,
        restart_prob=config.restart_prob,
        num_neighbors=config.num_neighbors,
        seed=config.seed,
        progress=config.progress,
    )
    return transform(data)


# ---------------------------------------------------------------------------
# Baseline encoders (the models of MultiSage Table 2 besides MultiSage)
# ---------------------------------------------------------------------------
def _mlp(in_channels: int, hidden: int, out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(in_channels, hidden), nn.ReLU(), nn.Linear(hidden, out)
    )


def _seed_edges(batch: HeteroData, edge_types: Sequence[EdgeType], batch_size: int):
    for et in edge_types:
        if et not in batch.edge_types:
            continue
        store = batch[et]
        keep = store.edge_index[1] < batch_size
        weight = store.get("edge_weight")
        yield et, store.edge_index[:, keep], None if weight is None else weight[keep]


class TextEncoder(nn.Module):
    """Text-only baseline: an MLP on the target's own features."""

    def __init__(self, in_channels: int, hidden: int, out: int, target: str):
        super().__init__()
        self.target = target
        self.mlp = _mlp(in_channels, hidden, out)

    def forward(self, batch: HeteroData) -> Tensor:
        store = batch[self.target]
        return F.normalize(self.mlp(store.x[: store.batch_size]), dim=-1)


class PinSageEncoder(nn.Module):
    """PinSage-style baseline: importance pooling (visit-count weighted mean)
    of the random-walk neighbors, concatenated with the node, then a dense
    layer and L2 normalization (PinSage's CONVOLVE); contexts ignored."""

    def __init__(
        self, in_channels: int, hidden: int, out: int, target: str, edge_types
    ):
        super().__init__()
        self.target, self.edge_types = target, list(edge_types)
        self.q = nn.Sequential(nn.Linear(in_channels, hidden), nn.ReLU())
        self.self_lin = nn.Sequential(nn.Linear(in_channels, hidden), nn.ReLU())
        self.out = _mlp(2 * hidden, hidden, out)

    def forward(self, batch: HeteroData) -> Tensor:
        store = batch[self.target]
        bs = store.batch_size
        h = self.q(store.x)
        agg = h.new_zeros(bs, h.size(1))
        total = h.new_zeros(bs, 1)
        for _, ei, w in _seed_edges(batch, self.edge_types, bs):
            w = torch.ones(ei.size(1), device=h.device) if w is None else w
            agg = agg + scatter(h[ei[0]] * w[:, None], ei[1], 0, bs, reduce="sum")
            total = total + scatter(w[:, None], ei[1], 0, bs, reduce="sum")
        agg = agg / total.clamp(min=1e-12)
        z = self.out(torch.cat([self.self_lin(store.x[:bs]), agg], dim=-1))
        return F.normalize(z, dim=-1)


class GATEncoder(nn.Module):
    """GAT baseline: multi-head graph attention over the same walk neighbors
    (one relation, contexts ignored) plus a self term."""

    def __init__(self, in_channels, hidden, out, target, edge_types, heads: int = 4):
        super().__init__()
        self.target, self.edge_types = target, list(edge_types)
        self.proj = nn.Sequential(nn.Linear(in_channels, hidden), nn.ReLU())
        self.conv = GATConv(
            hidden, out, heads=heads, concat=False, add_self_loops=False
        )
        self.self_lin = nn.Linear(hidden, out)

    def forward(self, batch: HeteroData) -> Tensor:
        store = batch[self.target]
        bs = store.batch_size
        h = self.proj(store.x)
        edges = [ei for _, ei, _ in _seed_edges(batch, self.edge_types, bs)]
        ei = torch.cat(edges, 1) if edges else h.new_zeros(2, 0, dtype=torch.long)
        z = self.conv((h, h[:bs]), ei) + self.self_lin(h[:bs])
        return F.normalize(z, dim=-1)


class HANEncoder(nn.Module):
    """HAN baseline (PyG's :class:`~torch_geometric.nn.HANConv`): node-level
    attention per metapath and semantic attention across metapaths. The
    metapath instances target–context–target are the walk neighbors via each
    context type (paper–venue–paper, paper–term–paper)."""

    def __init__(self, in_channels, hidden, out, target, edge_types, heads: int = 4):
        super().__init__()
        self.target, self.edge_types = target, list(edge_types)
        self.proj = nn.Sequential(nn.Linear(in_channels, hidden), nn.ReLU())
        self.conv = HANConv(
            hidden, out, metadata=([target], self.edge_types), heads=heads
        )
        self.self_lin = nn.Linear(hidden, out)

    def forward(self, batch: HeteroData) -> Tensor:
        store = batch[self.target]
        bs = store.batch_size
        h = self.proj(store.x)
        ei_dict = {et: ei for et, ei, _ in _seed_edges(batch, self.edge_types, bs)}
        for et in self.edge_types:
            ei_dict.setdefault(et, h.new_zeros(2, 0, dtype=torch.long))
        out = self.conv({self.target: h}, ei_dict)[self.target]
        z = self.self_lin(h[:bs])
        if out is not None:
            z = z + out[:bs]
        return F.normalize(z, dim=-1)


class _OmniSageTarget(nn.Module):
    """OmniSage's embedder of the target type, called on a batch."""

    def __init__(self, model: OmniSage, target: str):
        super().__init__()
        self.model, self.target = model, target

    def forward(self, batch: HeteroData) -> Tensor:
        return self.model(batch, self.target)


class Retriever(nn.Module):
    """An encoder and the learned scale :math:`\\lambda` of the sampled
    softmax (CLIP-style, :math:`\\lambda = e^{s}`, clamped to ``[1, 100]``).

    Encoders differ in how spread their cosine similarities are (MultiSage's
    sigmoid outputs of Eq. 7 are non-negative, so its cosines live in a
    narrow band); learning :math:`\\lambda` lets every model of the
    comparison find its own scale under the same loss, instead of tuning a
    fixed temperature per model."""

    def __init__(self, encoder: nn.Module, temperature: float, learn: bool = True):
        super().__init__()
        self.encoder = encoder
        log_t = torch.tensor(float(temperature)).log()
        self.log_scale = nn.Parameter(log_t, requires_grad=learn)

    def forward(self, batch: HeteroData) -> Tensor:
        return self.encoder(batch)

    @property
    def scale(self) -> Tensor:
        return self.log_scale.exp().clamp(1.0, 100.0)


def build_model(task: Task, config: RunConfig) -> Retriever:
    """The encoder of :obj:`config.model` (``batch -> [batch_size, d]``, L2
    normalized) in a :class:`Retriever`."""
    return Retriever(
        build_encoder(task, config), config.temperature, learn=config.learn_temperature
    )


def build_encoder(task: Task, config: RunConfig) -> nn.Module:
    """The encoder of :obj:`config.model`: ``batch -> [batch_size, d]``, L2
    normalized."""
    data, t = task.data, task.target
    in_ch = data[t].x.size(-1)
    hid, out = config.hidden_channels, config.out_channels
    torch.manual_seed(config.seed)
    if config.model == "text":
        return TextEncoder(in_ch, hid, out, t)
    walks = walk_edge_types(task)
    if config.model == "pinsage":
        return PinSageEncoder(in_ch, hid, out, t, walks)
    if config.model == "gat":
        return GATEncoder(in_ch, hid, out, t, walks, heads=config.heads)
    if config.model == "han":
        return HANEncoder(in_ch, hid, out, t, walks, heads=config.heads)
    if config.model in ("multisage", "multisage-2"):
        contexts = task.contexts if config.model == "multisage" else task.contexts[:1]
        return MultiSage(
            in_ch,
            {c: data[c].x.size(-1) for c in contexts},
            out_channels=out,
            hidden_channels=(hid,),
            target=t,
            heads=config.heads,
            target_relu=config.target_relu,
            combine=config.combine,
            attention=config.attention,
            act=config.act,
        )
    slots = {
        et: (config.ppr_top_k if et[0] == t else max(1, config.ppr_top_k // 4))
        for et in ppr_edge_types(task)
    }
    model = OmniSage(
        {nt: data[nt].x.size(-1) for nt in [t, *task.contexts]},
        out,
        {t: slots},
        hidden_channels=hid,
        heads=config.heads,
        num_layers=1,
        mlp_channels=2 * hid,
    )
    return _OmniSageTarget(model, t)


def model_edge_types(task: Task, config: RunConfig) -> list[EdgeType]:
    if config.model == "text":
        return []
    if config.model == "omnisage":
        return ppr_edge_types(task)
    if config.model == "multisage-2":
        return walk_edge_types(task, task.contexts[:1])
    return walk_edge_types(task)


# ---------------------------------------------------------------------------
# Batches, training, evaluation
# ---------------------------------------------------------------------------
class SeedBatcher:
    """Cuts a loader batch (seeds first) for any list of target ids, with the
    sampler of :class:`~pyg_multisage.loader.ImportanceNeighborLoader`."""

    def __init__(self, data: HeteroData, target: str, edge_types: Sequence[EdgeType]):
        self.target = target
        if edge_types:
            self.loader = ImportanceNeighborLoader(
                data, input_nodes=target, edge_types=list(edge_types), batch_size=1
            )
        else:
            self.loader = None
            self.x = data[target].x

    def __call__(self, seeds: Tensor) -> HeteroData:
        if self.loader is None:
            batch = HeteroData()
            batch[self.target].x = self.x[seeds]
            batch[self.target].n_id = seeds
            batch[self.target].batch_size = seeds.numel()
            return batch
        out = self.loader.collate_fn(seeds)
        return out if isinstance(out, HeteroData) else self.loader.filter_fn(out)


@torch.no_grad()
def embed_all(
    model: nn.Module, batcher: SeedBatcher, num_nodes: int, batch_size: int = 1024
) -> Tensor:
    """Embeddings of every target, ``[num_nodes, d]``."""
    was = model.training
    model.eval()
    outs = [
        model(batcher(torch.arange(i, min(i + batch_size, num_nodes))))
        for i in range(0, num_nodes, batch_size)
    ]
    model.train(was)
    return torch.cat(outs)


def cap_pairs(pairs: Tensor, max_pairs: int, seed: int = 0) -> Tensor:
    """A seeded uniform subset of at most :obj:`max_pairs` pairs (order
    kept); all of them when :obj:`max_pairs` is ``0``."""
    if max_pairs <= 0 or pairs.size(1) <= max_pairs:
        return pairs
    gen = torch.Generator().manual_seed(seed)
    keep = torch.randperm(pairs.size(1), generator=gen)[:max_pairs].sort().values
    return pairs[:, keep]


def evaluate(emb: Tensor, pairs: Tensor) -> dict[str, float]:
    """MultiSage §3.1 metrics of ``pairs`` (query, positive) against the pool
    of all targets."""
    return retrieval_metrics(
        emb[pairs[0]],
        emb[pairs[1]],
        emb,
        positive_index=pairs[1],
        query_index=pairs[0],
    )


def make_step(model: Retriever, batcher: SeedBatcher, task: Task, config: RunConfig):
    """``(data(step), step_fn)`` for :func:`pyg_multisage.train.fit`: each step
    draws ``batch_size`` training pairs and ``num_negatives`` random targets
    (a pure function of the seed and the step, so a resumed run repeats it)."""
    pairs = task.pairs["train"]
    num_nodes = task.data[task.target].num_nodes
    b, k = config.batch_size, config.num_negatives

    def data(step: int) -> tuple[HeteroData, Tensor]:
        gen = torch.Generator().manual_seed(config.seed * 1_000_003 + step)
        idx = torch.randint(0, pairs.size(1), (b,), generator=gen)
        neg = torch.randint(0, num_nodes, (k,), generator=gen)
        ids = torch.cat([pairs[0, idx], pairs[1, idx], neg])
        return batcher(ids), ids

    def step_fn(item: tuple[HeteroData, Tensor]) -> Tensor:
        batch, ids = item
        z = model(batch)
        q, p, n = z[:b], z[b : 2 * b], z[2 * b :]
        if config.loss == "margin":
            return max_margin_loss(q, p, n, margin=config.margin, shared_negatives=True)
        # lambda * q^T v with a learned lambda: scale the queries.
        return sampled_softmax_loss(
            q * model.scale,
            p,
            n,
            positive_ids=ids[b : 2 * b],
            negative_ids=ids[2 * b :],
        )

    return data, step_fn


@dataclass
class RunResult:
    config: RunConfig
    metrics: dict[str, float]
    history: list[dict[str, float]]
    output_dir: Path | None
    model: nn.Module
    embeddings: Tensor


def run(config: RunConfig, task: Task | None = None) -> RunResult:
    """Samples, trains and evaluates one model; writes the checkpoint,
    ``metrics.json``, ``config.json`` and the curves (CSV, PNG) to
    :obj:`config.output_dir` when set."""
    task = task or load_task(config)
    task = Task(
        add_neighbors(task, config), task.target, task.contexts, task.pairs, task.names
    )
    model = build_model(task, config)
    batcher = SeedBatcher(task.data, task.target, model_edge_types(task, config))
    data, step_fn = make_step(model, batcher, task, config)
    num_nodes = task.data[task.target].num_nodes

    def eval_fn() -> dict[str, float]:
        emb = embed_all(model, batcher, num_nodes)
        return {k: evaluate(emb, task.pairs["val"])[k] for k in ("MRR", "REC@10")}

    out_dir = Path(config.output_dir) if config.output_dir else None
    train_cfg = TrainConfig(
        max_steps=config.steps,
        lr=config.lr,
        weight_decay=config.weight_decay,
        warmup_steps=min(config.warmup_steps, config.steps - 1),
        eval_every=config.eval_every,
        output_dir=str(out_dir) if out_dir else None,
        seed=config.seed,
        progress=config.progress,
    )
    result = fit(
        model,
        step_fn,
        data,
        train_cfg,
        eval_fn=eval_fn if config.eval_every else None,
        resume=False,
    )
    emb = embed_all(model, batcher, num_nodes)
    pairs = cap_pairs(task.pairs[config.eval_split], config.max_eval_pairs, config.seed)
    metrics = evaluate(emb, pairs)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
        (out_dir / "config.json").write_text(json.dumps(asdict(config), indent=2))
    return RunResult(config, metrics, result.history, out_dir, model, emb)


def load_run(
    run_dir: str | os.PathLike,
) -> tuple[RunConfig, Task, nn.Module, SeedBatcher]:
    """Rebuilds a trained run from its folder (config, graph, weights)."""
    run_dir = Path(run_dir)
    cfg_file = run_dir / "config.json"
    if not cfg_file.is_file():
        raise FileNotFoundError(f"{run_dir} holds no config.json: not a training run")
    config = RunConfig(**json.loads(cfg_file.read_text()))
    config.progress = False
    task = load_task(config)
    task = Task(
        add_neighbors(task, config), task.target, task.contexts, task.pairs, task.names
    )
    model = build_model(task, config)
    state = load_checkpoint(run_dir / "checkpoint.pt")
    model.load_state_dict(state["model"])
    model.eval()
    batcher = SeedBatcher(task.data, task.target, model_edge_types(task, config))
    return config, task, model, batcher


def format_table(
    rows: dict[str, dict[str, Any]], columns: Sequence[str] = METRIC_COLUMNS
) -> str:
    """A plain-text table of MultiSage Table 2's columns, one row per model.
    A cell is a float or a ``{"mean": ..., "std": ...}`` dict."""

    def cell(v: Any, col: str) -> str:
        fmt = "{:.2f}" if col in ("INT", "UNI") else "{:.4f}"
        if isinstance(v, dict):
            return f"{fmt.format(v['mean'])}±{fmt.format(v['std'])}"
        return fmt.format(v)

    head = ["model", *columns]
    body = [[name, *(cell(r[c], c) for c in columns)] for name, r in rows.items()]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body, strict=True)]
    line = lambda xs: "  ".join(
        str(x).rjust(w) for x, w in zip(xs, widths, strict=True)
    )
    return "\n".join([line(head), line(["-" * w for w in widths]), *map(line, body)])
