import torch
from torch_geometric.transforms import BaseTransform

from pyg_multisage.datasets import synthetic_multipartite
from pyg_multisage.loader import ImportanceNeighborLoader
from pyg_multisage.nn import OmniSageConv


class CoEngagementNeighbors(BaseTransform):
    """Writes (target, 'co_engaged', target): the top-k co-engaged targets of
    every target, neighbor -> ego, grouped by ego, count descending."""

    def __init__(self, target: str, pairs: torch.Tensor, k: int = 10):
        self.target, self.pairs, self.k = target, pairs, k

    def forward(self, data):
        n = data[self.target].num_nodes
        a, b = torch.cat([self.pairs, self.pairs.flip(0)], dim=1)  # both ways
        keep = a != b  # an item is never its own neighbor
        key, count = torch.unique(b[keep] * n + a[keep], return_counts=True)
        ego, nbr = key // n, key % n
        # Sort by ego, then count descending, then neighbor id; keep the top k.
        order = torch.argsort(ego * (count.max() + 1) - count, stable=True)
        ego, nbr, count = ego[order], nbr[order], count[order]
        start = torch.searchsorted(ego, ego)  # first position of each ego
        top = torch.arange(ego.numel()) - start < self.k
        store = data[self.target, "co_engaged", self.target]
        store.edge_index = torch.stack([nbr[top], ego[top]])  # neighbor -> ego
        store.edge_weight = count[top].float()
        # Optional, for MultiSage: store.context (int64, -1 = none) and
        # store.context_type = "<context node type>".
        return data


data = synthetic_multipartite(num_targets=2000, num_contexts=200, seed=0)
engaged = data.train_pairs  # stand-in for logged co-engagement pairs
data = CoEngagementNeighbors("item", engaged, k=10)(data)

edge_type = ("item", "co_engaged", "item")
loader = ImportanceNeighborLoader(
    data, input_nodes="item", edge_types=[edge_type], batch_size=128
)
conv = OmniSageConv(
    {"item": 32},
    64,
    ego_type="item",
    num_slots={edge_type: 10},
    hidden_channels=64,
    heads=4,
    mlp_channels=128,
)
batch = next(iter(loader))
emb = conv(
    batch.x_dict,
    batch.edge_index_dict,
    batch.edge_weight_dict,
    num_egos=batch["item"].batch_size,
)
print(emb.shape)  # torch.Size([128, 64])
