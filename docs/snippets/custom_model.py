"""A model of your own in the main job: one class and one registry row.

``MeanNeighborEncoder`` averages the features of a target's contextual-walk
neighbors (GraphSAGE's mean aggregator, contexts ignored), concatenates the
target's own features and maps both through an MLP. Registered under the
name ``mean``, it trains and evaluates exactly like the built-in models.
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import HeteroData
from torch_geometric.utils import scatter

from pyg_multisage import experiment as ex
from pyg_multisage.convention import seed_edges
from pyg_multisage.nn.mlp import mlp


# The class: a loader batch in, [batch_size, d] L2-normalized embeddings out.
class MeanNeighborEncoder(nn.Module):
    def __init__(self, in_channels, hidden_channels, out_channels, target, edge_types):
        super().__init__()
        self.target, self.edge_types = target, list(edge_types)
        self.mlp = mlp([2 * in_channels, hidden_channels, out_channels])

    def forward(self, batch: HeteroData) -> Tensor:
        store = batch[self.target]
        x, bs = store.x, store.batch_size
        total = x.new_zeros(bs, x.size(1))
        count = x.new_zeros(bs, 1)
        # Only the edges that end in the seeds matter (one aggregation step).
        for _, edge_index, _, _ in seed_edges(batch, self.edge_types, bs):
            src, dst = edge_index
            total = total + scatter(x[src], dst, 0, bs, reduce="sum")
            ones = torch.ones(dst.numel(), 1, dtype=x.dtype)
            count = count + scatter(ones, dst, 0, bs, reduce="sum")
        mean = total / count.clamp(min=1)
        return F.normalize(self.mlp(torch.cat([x[:bs], mean], dim=-1)), dim=-1)


# The row: name -> (neighbor source, builder, description).
ex.REGISTRY["mean"] = ex.ModelSpec(
    ex.ContextualWalks(),
    lambda task, cfg, edge_types: MeanNeighborEncoder(
        *ex.channels(task, cfg), task.target, edge_types
    ),
    "mean of the walk neighbors' features, concatenated with the node's",
)

if __name__ in ("__main__", "snippet"):
    config = ex.RunConfig(
        dataset="synthetic",
        model="mean",
        steps=20,
        num_walks=20,
        synthetic={"num_targets": 400, "num_contexts": 40},
        progress=False,
    )
    result = ex.run(config)
    print(ex.format_table({"mean": result.metrics}))
