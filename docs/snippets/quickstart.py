import torch

from pyg_multisage.datasets import synthetic_multipartite
from pyg_multisage.loader import ImportanceLinkLoader
from pyg_multisage.losses import sampled_softmax_loss
from pyg_multisage.nn import MultiSage
from pyg_multisage.transforms import ContextualWalkNeighbors

# A target-context graph: items (targets) saved to boards (contexts).
data = synthetic_multipartite(num_targets=2000, num_contexts=200, seed=0)
# 1. Transform: contextual walks (MultiSage Alg. 2) write (item, walk_via_board, item).
data = ContextualWalkNeighbors("item", "board", num_neighbors=10)(data)
# 2. Loader: query-positive pairs; batches hold both ends' walk neighbors.
pairs = (("item", "related", "item"), data.train_pairs)
loader = ImportanceLinkLoader(
    data, edge_label_index=pairs, batch_size=256, shuffle=True
)
# 3. Model: one MultiSage convolution over the walk neighbors and their contexts
#    (target_relu=False keeps the embedding space from collapsing, see the docs).
model = MultiSage(32, {"board": 32}, 64, target="item", heads=2, target_relu=False)
optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
# 4. Loss steps: sampled softmax with in-batch negatives (OmniSage Eq. 1).
for batch in loader:
    emb = model(batch)  # [nodes in batch, 64], L2-normalized
    query, positive = batch["item", "related", "item"].edge_label_index
    loss = sampled_softmax_loss(emb[query], emb[positive], temperature=10.0)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
print(f"last loss {loss.item():.3f}")
