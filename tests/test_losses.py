"""Losses against brute-force float64 references (MultiSage Eq. 3, OmniSage Eq. 1)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pyg_multisage.losses import (
    CountMinSketch,
    MaxMarginLoss,
    SampledSoftmaxLoss,
    max_margin_loss,
    sampled_softmax_loss,
)


def ref_softmax(q, p, n, lam, log_q, in_batch, pid, nid, weight=None, mean=True):
    """Eq. 1 literally: loop over queries, list the candidates, mask hits."""
    q, p = np.asarray(q, np.float64), np.asarray(p, np.float64)
    n = np.zeros((0, q.shape[1])) if n is None else np.asarray(n, np.float64)
    b, k = len(q), len(n)
    lq = np.zeros(b + k) if log_q is None else np.asarray(log_q, np.float64)
    total = 0.0
    for i in range(b):
        pos = lam * q[i] @ p[i] - lq[i]
        scores = [pos]
        if in_batch:
            for j in range(b):
                if j != i and not (pid is not None and pid[j] == pid[i]):
                    scores.append(lam * q[i] @ p[j] - lq[j])
        for j in range(k):
            if not (nid is not None and nid[j] == pid[i]):
                scores.append(lam * q[i] @ n[j] - lq[b + j])
        s = np.array(scores)
        m = s.max()
        loss = -(pos - (m + np.log(np.exp(s - m).sum())))
        total += loss * (1.0 if weight is None else weight[i])
    return total / b if mean else total


def test_max_margin_matches_reference():
    gen = torch.Generator().manual_seed(0)
    q, p = torch.randn(6, 4, generator=gen), torch.randn(6, 4, generator=gen)
    n1, n3 = torch.randn(6, 4, generator=gen), torch.randn(6, 3, 4, generator=gen)
    ns = torch.randn(5, 4, generator=gen)
    qn, pn = q.double().numpy(), p.double().numpy()
    pos = (qn * pn).sum(1)
    ref1 = np.maximum(0, (qn * n1.double().numpy()).sum(1) - pos + 0.5).mean()
    ref3 = np.maximum(
        0, np.einsum("bd,bkd->bk", qn, n3.double().numpy()) - pos[:, None] + 0.5
    ).mean()
    refs = np.maximum(0, qn @ ns.double().numpy().T - pos[:, None] + 0.5).mean()
    assert max_margin_loss(q, p, n1, margin=0.5).item() == pytest.approx(ref1, rel=1e-5)
    assert max_margin_loss(q, p, n3, margin=0.5).item() == pytest.approx(ref3, rel=1e-5)
    shared = MaxMarginLoss(margin=0.5, shared_negatives=True)
    assert shared(q, p, ns).item() == pytest.approx(refs, rel=1e-5)
    assert "margin=0.5" in repr(shared)
    # A positive far above every negative gives zero loss and zero gradient.
    qq = torch.ones(2, 2, requires_grad=True)
    loss = max_margin_loss(qq, torch.full((2, 2), 10.0), torch.zeros(2, 2))
    loss.backward()
    assert loss.item() == 0.0 and qq.grad.abs().sum() == 0


def test_max_margin_bad_input():
    q = torch.randn(3, 4)
    with pytest.raises(ValueError, match="positive"):
        max_margin_loss(q, torch.randn(2, 4), torch.randn(3, 4))
    with pytest.raises(ValueError, match="negative"):
        max_margin_loss(q, q, torch.randn(5, 4))
    with pytest.raises(ValueError, match="negative"):
        max_margin_loss(q, q, torch.randn(3, 2, 5))
    with pytest.raises(TypeError, match="query"):
        max_margin_loss(q.long(), q, q)


@pytest.mark.parametrize("in_batch", [True, False])
@pytest.mark.parametrize("with_ids", [True, False])
@pytest.mark.parametrize("with_log_q", [True, False])
def test_sampled_softmax_matches_reference(in_batch, with_ids, with_log_q):
    gen = torch.Generator().manual_seed(1)
    b, k, d = 7, 5, 3
    q, p = torch.randn(b, d, generator=gen), torch.randn(b, d, generator=gen)
    n = torch.randn(k, d, generator=gen)
    pid = torch.tensor([0, 1, 1, 2, 3, 3, 3]) if with_ids else None
    nid = torch.tensor([1, 4, 3, 5, 0]) if with_ids else None
    lq = torch.randn(b + k, generator=gen) if with_log_q else None
    got = sampled_softmax_loss(
        q,
        p,
        n,
        temperature=1.7,
        log_q=lq,
        in_batch_negatives=in_batch,
        positive_ids=pid,
        negative_ids=nid,
    )
    ref = ref_softmax(
        q.numpy(),
        p.numpy(),
        n.numpy(),
        1.7,
        None if lq is None else lq.numpy(),
        in_batch,
        None if pid is None else pid.numpy(),
        None if nid is None else nid.numpy(),
    )
    assert got.item() == pytest.approx(ref, rel=1e-5)


def test_sampled_softmax_weight_sum_and_no_negatives():
    gen = torch.Generator().manual_seed(2)
    q, p = torch.randn(5, 4, generator=gen), torch.randn(5, 4, generator=gen)
    w = torch.rand(5, generator=gen)
    got = sampled_softmax_loss(q, p, weight=w, reduction="sum")
    ref = ref_softmax(
        q.numpy(), p.numpy(), None, 1.0, None, True, None, None, w.numpy(), False
    )
    assert got.item() == pytest.approx(ref, rel=1e-5)
    # Every candidate a duplicate of the positive: only the positive is left.
    same = torch.zeros(5, dtype=torch.long)
    assert sampled_softmax_loss(q, p, positive_ids=same).item() == pytest.approx(
        0.0, abs=1e-6
    )


def test_sampled_softmax_bad_input():
    q = torch.randn(4, 3)
    with pytest.raises(ValueError, match="log_q"):
        sampled_softmax_loss(q, q, torch.randn(2, 3), log_q=torch.zeros(4))
    with pytest.raises(ValueError, match="negatives"):
        sampled_softmax_loss(q, q, in_batch_negatives=False)
    with pytest.raises(ValueError, match="temperature"):
        sampled_softmax_loss(q, q, temperature=0.0)
    with pytest.raises(ValueError, match="chunk_size"):
        sampled_softmax_loss(q, q, chunk_size=0)
    with pytest.raises(ValueError, match="positive_ids"):
        sampled_softmax_loss(q, q, positive_ids=torch.arange(3))
    with pytest.raises(TypeError, match="positive_ids"):
        sampled_softmax_loss(q, q, positive_ids=torch.zeros(4))
    with pytest.raises(ValueError, match="negative_ids needs"):
        sampled_softmax_loss(q, q, torch.randn(2, 3), negative_ids=torch.arange(2))
    with pytest.raises(ValueError, match="reduction"):
        sampled_softmax_loss(q, q, reduction="none")
    with pytest.raises(ValueError, match="negatives must have 3 columns"):
        sampled_softmax_loss(q, q, torch.randn(2, 4))


def _grads(model, x, y, z, pid, nid, lq, chunk_size, in_batch, lam):
    model.zero_grad()
    lq_leaf = lq.clone().requires_grad_()
    loss = sampled_softmax_loss(
        model(x),
        model(y),
        model(z),
        temperature=lam,
        log_q=lq_leaf,
        chunk_size=chunk_size,
        in_batch_negatives=in_batch,
        positive_ids=pid,
        negative_ids=nid,
    )
    loss.backward()
    grads = [prm.grad.clone() for prm in model.parameters()] + [lq_leaf.grad]
    return loss.detach(), grads


@settings(max_examples=25, deadline=None)
@given(
    b=st.integers(1, 24),
    k=st.integers(1, 20),
    chunk=st.integers(1, 30),
    in_batch=st.booleans(),
    lam=st.floats(0.2, 5.0),
    seed=st.integers(0, 2**16),
)
def test_chunked_gradients_equal_unchunked(b, k, chunk, in_batch, lam, seed):
    """Algorithm 1: any chunk size gives the unchunked loss and gradients."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    d = 6
    model = torch.nn.Sequential(
        torch.nn.Linear(d, d), torch.nn.Tanh(), torch.nn.Linear(d, d)
    )
    x, y, z = (torch.randn(m, d, generator=gen) for m in (b, b, k))
    pid = torch.randint(0, 6, (b,), generator=gen)
    nid = torch.randint(0, 6, (k,), generator=gen)
    lq = torch.randn(b + k, generator=gen)
    l0, g0 = _grads(model, x, y, z, pid, nid, lq, None, in_batch, lam)
    l1, g1 = _grads(model, x, y, z, pid, nid, lq, chunk, in_batch, lam)
    assert torch.allclose(l0, l1, atol=1e-5, rtol=1e-5)
    for a, c in zip(g0, g1, strict=True):
        assert (a - c).abs().max().item() <= 1e-5


@pytest.mark.filterwarnings("ignore:Full backward hook")
def test_chunked_is_one_backward_through_the_model():
    """The model's backward runs once, not once per chunk."""
    calls = []
    lin = torch.nn.Linear(4, 4)
    lin.register_full_backward_hook(lambda *a: calls.append(1))
    x = torch.randn(9, 4)
    emb = lin(x)
    loss = sampled_softmax_loss(emb, emb.flip(0), lin(torch.randn(3, 4)), chunk_size=2)
    calls.clear()
    loss.backward()
    assert len(calls) == 2  # one per lin() call above, no more
    # Inputs that need no gradient: the chunked loss is a plain value.
    with torch.no_grad():
        v = sampled_softmax_loss(emb, emb.flip(0), chunk_size=2)
    assert not v.requires_grad
    ref = sampled_softmax_loss(emb.detach(), emb.detach().flip(0))
    assert v.item() == pytest.approx(ref.item(), rel=1e-6)


def test_count_min_sketch_never_underestimates_and_bound_holds():
    """Pr[estimate > count + eps N] <= delta, over a Zipf stream."""
    rng = np.random.default_rng(0)
    stream = rng.zipf(1.3, size=20000) % 5000
    true = np.bincount(stream, minlength=5000)
    ids = np.flatnonzero(true)
    violations, checked = 0, 0
    for seed in range(5):
        cms = CountMinSketch(width=128, depth=3, seed=seed)
        for chunk in np.array_split(stream, 20):  # updated batch by batch
            cms.update(torch.from_numpy(chunk))
        assert int(cms.total) == len(stream)
        est = cms.estimate(torch.from_numpy(ids)).numpy()
        assert (est >= true[ids]).all()
        violations += int((est > true[ids] + cms.eps * len(stream)).sum())
        checked += len(ids)
    assert violations / checked <= cms.delta


def test_count_min_sketch_exact_without_collisions_and_log_q():
    cms = CountMinSketch.from_error(eps=1e-4, delta=1e-3, seed=3)
    assert cms.width == math.ceil(math.e / 1e-4) and cms.depth == 7
    assert cms.log_q(torch.tensor([1, 2])).tolist() == [0.0, 0.0]  # empty sketch
    cms.update(torch.tensor([5, 5, 7]), counts=torch.tensor([2, 1, 1]))
    assert cms.estimate(torch.tensor([5, 7, 9])).tolist() == [3, 1, 0]
    lq = cms.log_q(torch.tensor([5, 7, 9]))
    assert torch.allclose(lq, torch.log(torch.tensor([3 / 4, 1 / 4, 1 / 4])))
    state = cms.state_dict()
    other = CountMinSketch(width=cms.width, depth=cms.depth, seed=99)
    other.load_state_dict(state)
    assert other.estimate(torch.tensor([5])).item() == 3
    with pytest.raises(ValueError, match="ids"):
        cms.update(torch.tensor([-1]))
    with pytest.raises(TypeError, match="ids"):
        cms.estimate(torch.tensor([1.0]))
    with pytest.raises(ValueError, match="width"):
        CountMinSketch(width=0)
    cms.reset()
    assert int(cms.total) == 0


def test_sampled_softmax_module_updates_sketch():
    gen = torch.Generator().manual_seed(4)
    q, p, n = (torch.randn(m, 3, generator=gen) for m in (4, 4, 2))
    pid, nid = torch.tensor([0, 1, 2, 2]), torch.tensor([5, 6])
    loss_fn = SampledSoftmaxLoss(
        temperature=2.0, chunk_size=3, sketch=CountMinSketch(1024, 3)
    )
    got = loss_fn(q, p, n, positive_ids=pid, negative_ids=nid)
    assert int(loss_fn.sketch.total) == 6
    lq = loss_fn.sketch.log_q(torch.cat([pid, nid]))
    ref = ref_softmax(q, p, n, 2.0, lq.numpy(), True, pid.numpy(), nid.numpy())
    assert got.item() == pytest.approx(ref, rel=1e-5)
    loss_fn.eval()
    loss_fn(q, p, n, positive_ids=pid, negative_ids=nid)
    assert int(loss_fn.sketch.total) == 6  # evaluation leaves the sketch alone
    assert "chunk_size=3" in repr(loss_fn)


@pytest.mark.parametrize("in_batch", [True, False])
def test_chunked_weighted_sum_and_dtypes(in_batch):
    gen = torch.Generator().manual_seed(5)
    q, p, n = (torch.randn(m, 4, generator=gen, dtype=torch.float64) for m in (9, 9, 5))
    w = torch.rand(9, generator=gen, dtype=torch.float64)
    pid = torch.randint(0, 4, (9,), generator=gen)
    out = []
    for chunk in (None, 2):
        leaves = [x.clone().requires_grad_() for x in (q, p, n)]
        loss = sampled_softmax_loss(
            *leaves,
            chunk_size=chunk,
            weight=w,
            reduction="sum",
            positive_ids=pid,
            in_batch_negatives=in_batch,
        )
        (3.0 * loss).backward()  # an outer factor reaches the chunked gradients
        out.append((loss.detach(), [x.grad for x in leaves]))
    assert out[1][0].dtype == torch.float64
    assert torch.allclose(out[0][0], out[1][0], rtol=1e-12)
    for a, b in zip(out[0][1], out[1][1], strict=True):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-12)
    # bfloat16 embeddings: computed in float32, gradients handed back in bf16.
    qb = q.to(torch.bfloat16).requires_grad_()
    loss = sampled_softmax_loss(qb, p.to(torch.bfloat16), chunk_size=4)
    loss.backward()
    assert loss.dtype == torch.float32 and qb.grad.dtype == torch.bfloat16
    ref = sampled_softmax_loss(qb.detach().float(), p.to(torch.bfloat16).float())
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5)
