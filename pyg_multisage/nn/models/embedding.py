"""The one path that embeds every node: run a model over batches, place each
batch's seed embeddings at their global node ids."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor
from torch_geometric.data import HeteroData
from tqdm.auto import tqdm

#: A node type, or how to read it from a batch (e.g. OmniSage's seeded type).
NodeTypeOf = str | Callable[[HeteroData], str]


@torch.no_grad()
def embed(
    model: torch.nn.Module,
    batches: Iterable[HeteroData],
    node_type: NodeTypeOf,
    num_nodes: int | None = None,
    *,
    forward: Callable[[HeteroData], Tensor] | None = None,
    out_channels: int = 0,
    device: torch.device | str | None = None,
    progress: bool = False,
    desc: str = "embed",
) -> Tensor:
    """Embeddings of the seeds of every batch, ``[num_nodes, d]``, row
    ``i`` for global node id ``i``.

    A batch follows the loaders' format: its seeds are the first
    ``batch[node_type].batch_size`` nodes of :obj:`node_type`, and
    ``batch[node_type].n_id`` holds their global ids. :obj:`model` (or
    :obj:`forward`) maps a batch to ``[batch_size, d]`` embeddings of its
    seeds. The model runs in evaluation mode without gradients; its training
    mode is restored afterwards. Rows of ids that no batch seeds are zero.

    This is how :meth:`MultiSage.embed
    <pyg_multisage.nn.models.MultiSage.embed>`, :meth:`OmniSage.embed
    <pyg_multisage.nn.models.OmniSage.embed>` and the main job
    (:func:`pyg_multisage.experiment.embed_all`) embed every node.

    Args:
        model (torch.nn.Module): The model; switched to ``eval()`` while
            embedding.
        batches (Iterable[HeteroData]): A loader, or any iterable of batches.
        node_type (str or Callable[[HeteroData], str]): The seeds' node type,
            or a function that reads it from a batch.
        num_nodes (int, optional): Rows of the output; at least one more than
            the largest id seen. (default: number of rows needed)
        forward (Callable, optional): Call this instead of ``model(batch)``,
            e.g. to pass a node type. (default: :obj:`None`)
        out_channels (int, optional): Width of the (all-zero) result when no
            batch comes. (default: :obj:`0`)
        device (torch.device or str, optional): Move each batch here first;
            the result is on the CPU. (default: :obj:`None`)
        progress (bool, optional): Show a progress bar. (default: :obj:`False`)
        desc (str, optional): The bar's label. (default: :obj:`"embed"`)
    """
    if num_nodes is not None and num_nodes < 0:
        raise ValueError(f"num_nodes must be >= 0, got {num_nodes}")
    call = forward if forward is not None else model
    type_of = node_type if callable(node_type) else (lambda _batch: node_type)
    was_training = model.training
    model.eval()
    ids, outs = [], []
    try:
        for batch in tqdm(batches, desc=desc, disable=not progress):
            if device is not None:
                batch = batch.to(device)
            out = call(batch)
            ids.append(batch[type_of(batch)].n_id[: out.size(0)].cpu())
            outs.append(out.cpu())
    finally:
        model.train(was_training)
    if not outs:
        return torch.zeros(num_nodes or 0, out_channels)
    ids_t, outs_t = torch.cat(ids), torch.cat(outs)
    rows = int(ids_t.max()) + 1 if ids_t.numel() else 0
    rows = max(rows, num_nodes or 0)
    result = outs_t.new_zeros(rows, outs_t.size(1))
    result[ids_t] = outs_t
    return result


def loader_num_nodes(loader: object, node_type: str | None) -> int | None:
    """The number of :obj:`node_type` nodes of a loader's graph
    (``loader.data``), or :obj:`None` when it has none to tell."""
    data = getattr(loader, "data", None)
    if data is None or node_type is None:
        return None
    try:
        return int(data[node_type].num_nodes)
    except (KeyError, TypeError, AttributeError):
        return None
