"""OmniSage tasks (§3.3, Eq. 2–6) with small nn.Linear / nn.Embedding embedders."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pyg_multisage.losses import sampled_softmax_loss
from pyg_multisage.tasks import (
    EntityEntityTask,
    EntityFeatureTask,
    MultiTaskObjective,
    PairSource,
    UserEntityTask,
)


@pytest.fixture(scope="module")
def embedders():
    torch.manual_seed(0)
    return nn.ModuleDict({"pin": nn.Embedding(20, 4), "board": nn.Embedding(6, 4)})


def test_pair_source_orientation_and_sampling():
    ei = torch.tensor([[5, 6, 7], [0, 0, 1]])  # neighbor -> ego
    src = PairSource.from_edge_index(
        "walk",
        ei,
        query_type="pin",
        positive_type="pin",
        edge_weight=torch.tensor([0, 1.0, 0]),
    )
    assert src.pairs.tolist() == [[0, 0, 1], [5, 6, 7]]
    gen = torch.Generator().manual_seed(0)
    drawn = src.sample(10, gen)
    assert drawn.tolist() == [[0] * 10, [6] * 10]  # only the weighted edge
    with pytest.raises(ValueError, match="shape"):
        PairSource("x", "pin", "pin", torch.zeros(3, 2, dtype=torch.long))
    with pytest.raises(TypeError, match="integer"):
        PairSource("x", "pin", "pin", torch.zeros(2, 2))
    with pytest.raises(ValueError, match="probability"):
        PairSource(
            "x", "pin", "pin", torch.zeros(2, 2, dtype=torch.long), probability=[0, 0]
        )


def test_entity_entity_equals_weighted_sum_of_sources(embedders):
    gen = torch.Generator().manual_seed(1)
    s1 = PairSource(
        "graph", "pin", "pin", torch.randint(0, 20, (2, 30), generator=gen), 0.5
    )
    s2 = PairSource(
        "engage",
        "board",
        "pin",
        torch.stack(
            [
                torch.randint(0, 6, (25,), generator=gen),
                torch.randint(0, 20, (25,), generator=gen),
            ]
        ),
        2.0,
    )
    task = EntityEntityTask(
        [s1, s2],
        {"pin": 20, "board": 6},
        num_negatives=7,
        temperature=3.0,
        chunk_size=4,
    )
    batch = task.sample(8, torch.Generator().manual_seed(5))
    again = task.sample(8, torch.Generator().manual_seed(5))
    assert torch.equal(batch.pairs["graph"], again.pairs["graph"])
    assert set(batch.negatives) == {"pin"} and batch.negatives["pin"].shape == (7,)
    calls = []

    def embed(t, ids):
        calls.append((t, ids))
        return embedders[t](ids)

    loss, parts = task(embed, batch)
    assert sorted(t for t, _ in calls) == ["board", "pin"]  # once per type
    assert all(torch.equal(ids, ids.unique()) for _, ids in calls)
    ref = {}
    for s in (s1, s2):
        q, p = batch.pairs[s.name]
        n = batch.negatives["pin"]
        ref[s.name] = sampled_softmax_loss(
            embedders[s.query_type](q),
            embedders["pin"](p),
            embedders["pin"](n),
            temperature=3.0,
            positive_ids=p,
            negative_ids=n,
        )
    assert parts["pair/graph"].item() == pytest.approx(ref["graph"].item(), rel=1e-5)
    expect = 0.5 * ref["graph"] + 2.0 * ref["engage"]
    assert loss.item() == pytest.approx(expect.item(), rel=1e-5)
    embedders.zero_grad()
    loss.backward()
    assert embedders["board"].weight.grad.abs().sum() > 0
    assert "graph: pin->pin (w=0.5)" in repr(task)


def test_entity_entity_log_q_and_bad_input(embedders):
    src = PairSource("g", "pin", "pin", torch.randint(0, 20, (2, 10)))
    task = EntityEntityTask([src], {"pin": 20}, num_negatives=3, log_q_correction=True)
    batch = task.sample(4)
    task(lambda t, i: embedders[t](i), batch)
    assert int(task.sketches["pin"].total) == 7  # 4 positives + 3 negatives
    with pytest.raises(ValueError, match="num_nodes"):
        EntityEntityTask([src], {"board": 3})
    with pytest.raises(ValueError, match=">= num_nodes"):
        EntityEntityTask([src], {"pin": 5})
    with pytest.raises(ValueError, match="unique"):
        EntityEntityTask([src, src], {"pin": 20})


def test_entity_feature_matches_eq3_with_missing_features_and_neighbors():
    torch.manual_seed(2)
    task = EntityFeatureTask(
        {"text": 5, "image": 3}, 4, hidden_channels=8, num_layers=4
    )
    linears = [m for m in task.encoders["text"] if isinstance(m, nn.Linear)]
    assert len(linears) == 4 and isinstance(task.encoders["text"][1], nn.ReLU)
    node_emb = torch.randn(3, 4, requires_grad=True)
    neg = torch.randn(2, 4)
    # Node 0 has text for itself and a neighbor's text, plus image; node 1 only
    # text; node 2 only image.
    text, image = torch.randn(3, 5), torch.randn(2, 3)
    owner = {"text": torch.tensor([0, 1, 0]), "image": torch.tensor([0, 2])}
    ids = torch.tensor([10, 11, 12])
    loss, parts = task(
        {"text": text, "image": image},
        node_emb,
        neg,
        owner=owner,
        node_ids=ids,
        negative_ids=torch.tensor([11, 99]),
    )
    # Independent reference: every row scores its own node against each
    # other node of the batch once and the random negatives, candidates
    # with the row's own id masked (negative 11 is node 1's id).
    count = [3.0, 1.0, 1.0]
    neg_ids = [11, 99]
    ref = 0.0
    for x, feat in (("text", text), ("image", image)):
        g = task.encoders[x](feat)
        for r, o in enumerate(owner[x].tolist()):
            pos = g[r] @ node_emb[o]
            others = [g[r] @ node_emb[j] for j in range(3) if ids[j] != ids[o]]
            others += [g[r] @ neg[j] for j in range(2) if neg_ids[j] != ids[o]]
            logits = torch.stack([pos, *others])
            ref = ref + (torch.logsumexp(logits, 0) - pos) / count[o]
    ref = ref / 3
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5)
    assert sum(parts.values()).item() == pytest.approx(loss.item(), rel=1e-5)
    loss.backward()
    assert node_emb.grad.abs().sum() > 0
    assert task.encoders["image"][0].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="unknown feature"):
        task({"audio": text}, node_emb)
    with pytest.raises(ValueError, match="owner"):
        task({"text": text}, node_emb, owner={"text": torch.tensor([0, 1, 3])})


def test_entity_feature_index_encodes_each_node_once():
    torch.manual_seed(4)
    task = EntityFeatureTask({"text": 5, "venue": 3}, 4, hidden_channels=8)
    node_emb = torch.randn(4, 4, requires_grad=True)
    neg = torch.randn(3, 4)
    text, venue = torch.randn(6, 5), torch.randn(2, 3)
    t = torch.tensor
    index = {"text": t([0, 1, 2, 3, 5, 5, 1]), "venue": t([1, 1, 0])}
    owner = {"text": t([0, 1, 2, 3, 0, 2, 3]), "venue": t([0, 1, 3])}
    kw = dict(owner=owner, node_ids=torch.arange(4), negative_ids=t([7, 8, 1]))
    loss, _ = task({"text": text, "venue": venue}, node_emb, neg, index=index, **kw)
    (grad,) = torch.autograd.grad(loss, node_emb)
    rows = {x: f[index[x]] for x, f in (("text", text), ("venue", venue))}
    ref, _ = task(rows, node_emb, neg, **kw)
    (ref_grad,) = torch.autograd.grad(ref, node_emb)
    assert loss.item() == pytest.approx(ref.item(), rel=1e-6)
    assert torch.allclose(grad, ref_grad, atol=1e-6)
    # Node 4 of the text matrix is read by no row: it is not encoded.
    calls = []
    hook = lambda module, args, out: calls.append(args[0].shape)  # noqa: E731
    task.encoders["text"].register_forward_hook(hook)
    task({"text": text}, node_emb, index={"text": index["text"]}, owner=owner)
    assert calls == [torch.Size([5, 5])]
    with pytest.raises(ValueError, match=r"index\['text'\] must point"):
        task({"text": text}, node_emb, index={"text": torch.tensor([6])})
    with pytest.raises(ValueError, match="not in features"):
        task({"text": text}, node_emb, index={"venue": torch.tensor([0])})


def test_user_entity_causal_padding_and_gradients():
    torch.manual_seed(3)
    embedder = nn.Linear(6, 4)
    task = UserEntityTask(4, max_length=5, hidden_channels=8, num_layers=2, heads=2)
    task.eval()
    raw = torch.randn(3, 5, 6)
    mask = torch.tensor(
        [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 1, 0, 0, 0]], dtype=torch.bool
    )
    seq = embedder(raw)
    u = task.user_embeddings(seq)
    # Causality: changing position 3 leaves U_0..U_2 unchanged.
    raw2 = raw.clone()
    raw2[:, 3] += 5.0
    u2 = task.user_embeddings(embedder(raw2))
    assert torch.allclose(u[:, :3], u2[:, :3], atol=1e-5)
    assert not torch.allclose(u[:, 3], u2[:, 3])
    future = embedder(torch.randn(3, 6))
    ids = torch.arange(15).view(3, 5)
    loss, parts = task(
        seq, mask, seq_ids=ids, future=future, future_ids=torch.tensor([20, 21, 22])
    )
    # Reference: next pairs (b, t) with t, t+1 valid; future for every valid t.
    qi = [(b, t) for b in range(3) for t in range(4) if mask[b, t] and mask[b, t + 1]]
    ref_next = sampled_softmax_loss(
        torch.stack([u[b, t] for b, t in qi]),
        torch.stack([seq[b, t + 1] for b, t in qi]),
        positive_ids=torch.tensor([int(ids[b, t + 1]) for b, t in qi]),
    )
    vi = [(b, t) for b in range(3) for t in range(5) if mask[b, t]]
    ref_fut = sampled_softmax_loss(
        torch.stack([u[b, t] for b, t in vi]),
        torch.stack([future[b] for b, _ in vi]),
        positive_ids=torch.tensor([20 + b for b, _ in vi]),
    )
    assert parts["next"].item() == pytest.approx(ref_next.item(), rel=1e-5)
    assert parts["future"].item() == pytest.approx(ref_fut.item(), rel=1e-5)
    # Padding content is ignored.
    raw3 = raw.clone()
    raw3[1, 3:] = 100.0
    raw3[2, 2:] = -7.0
    loss3, _ = task(
        embedder(raw3),
        mask,
        seq_ids=ids,
        future=future,
        future_ids=torch.tensor([20, 21, 22]),
    )
    assert loss3.item() == pytest.approx(loss.item(), rel=1e-5)
    # Gradients flow into the embedder that produced P.
    loss.backward()
    assert embedder.weight.grad.abs().sum() > 0
    assert task.lin_in.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="right-padded"):
        task(seq, torch.tensor([[0, 1, 1, 1, 1]] * 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="max_length"):
        task.user_embeddings(torch.randn(1, 6, 4))


def test_user_entity_without_future_ids_masks_own_future():
    torch.manual_seed(4)
    task = UserEntityTask(
        4, max_length=3, hidden_channels=8, num_layers=1, heads=2
    ).eval()
    seq, fut = torch.randn(2, 3, 4), torch.randn(2, 4)
    mask = torch.ones(2, 3, dtype=torch.bool)
    _, parts = task(seq, mask, future=fut)
    u = task.user_embeddings(seq).reshape(6, 4)
    user = torch.tensor([0, 0, 0, 1, 1, 1])
    ref = sampled_softmax_loss(u, fut[user], positive_ids=user)
    assert parts["future"].item() == pytest.approx(ref.item(), rel=1e-5)


def test_multi_task_objective_eq6():
    obj = MultiTaskObjective(lambda_p=2.0, lambda_f=0.5, lambda_s=3.0)
    a, b, c, d = (torch.tensor(v, requires_grad=True) for v in (1.0, 2.0, 3.0, 4.0))
    total, parts = obj(pair=a, feat=b, next=c, future=d)
    assert total.item() == 2.0 + 1.0 + 3.0 * 7.0
    assert set(parts) == {"pair", "feat", "next", "future"}
    assert obj(feat=b)[0].item() == 1.0
    with pytest.raises(ValueError, match="at least one"):
        obj()
    with pytest.raises(ValueError, match="lambda_f"):
        MultiTaskObjective(lambda_f=-1)
