"""HashedTextEmbedding (OmniSage §3.2) against a direct mean of table rows."""

from __future__ import annotations

import pytest
import torch

from pyg_multisage.nn.text import HashedTextEmbedding

TEXTS = [
    "Graph Mining with MultiSage.",
    "",
    "Piecewise Bézier volumes; μBE & Précis",
    "the the the",
    "a",
]


def test_embedding_bag_shapes_and_offsets():
    torch.manual_seed(0)
    emb = HashedTextEmbedding(257, 16)
    ids, offsets = emb.tokenizer(TEXTS)
    out = emb(ids, offsets)
    assert out.shape == (len(TEXTS), 16)
    # mean of the rows of each bag
    w = emb.bag.weight
    bounds = offsets.tolist() + [ids.numel()]
    for t in range(len(TEXTS)):
        seg = ids[bounds[t] : bounds[t + 1]]
        ref = w[seg].mean(0) if seg.numel() else torch.zeros(16)
        assert torch.allclose(out[t], ref, atol=1e-6)
    assert torch.equal(out[1], torch.zeros(16))  # empty text
    # raw texts give the same
    assert torch.allclose(emb(TEXTS), out)
    # sum mode with weights
    emb_sum = HashedTextEmbedding(257, 8, mode="sum")
    i2, o2 = emb_sum.tokenizer(["graph mining"])
    pw = torch.rand(i2.numel())
    ref = (emb_sum.bag.weight[i2] * pw[:, None]).sum(0)
    assert torch.allclose(emb_sum(i2, o2, pw)[0], ref, atol=1e-6)
    # gradients reach the table
    emb(TEXTS).sum().backward()
    assert emb.bag.weight.grad is not None and emb.bag.weight.grad.abs().sum() > 0
    assert "HashedTextEmbedding(257, 16" in repr(emb)
    assert "HashedTokenizer(num_buckets=257" in repr(emb.tokenizer)


def test_bad_input():
    emb = HashedTextEmbedding(10, 4)
    with pytest.raises(ValueError, match="outside"):
        emb(torch.tensor([3, 10]), torch.tensor([0]))
    with pytest.raises(TypeError, match="integer"):
        emb(torch.tensor([1.0]), torch.tensor([0]))
    with pytest.raises(ValueError, match="offsets must start"):
        emb(torch.tensor([1, 2]), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="mode"):
        HashedTextEmbedding(10, 4, mode="min")
