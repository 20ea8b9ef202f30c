"""Metrics against brute-force numpy references (MultiSage §3.1, OmniSage §4.2.1)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pyg_multisage import metrics
from pyg_multisage.metrics import (
    random_ranking_metrics,
    recall_at_k,
    retrieval_metrics,
)


def _unit(x):
    x = np.asarray(x, np.float64)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm == 0, 1.0, norm)


def ref_metrics(q, p, pool, pos_idx, qry_idx, ks, ms, k_top, tol=1e-6):
    """Definitions of MultiSage §3.1, one query at a time."""
    qn, pn, un = _unit(q), _unit(p), _unit(pool)
    n = len(un)
    excl = int(pos_idx is not None or qry_idx is not None)
    k_top = min(k_top, n - excl)
    ranks, ints, unis, jacs = [], [], [], []
    for i in range(len(qn)):
        s = un @ qn[i]
        s_pos = qn[i] @ pn[i]
        skip = {int(x[i]) for x in (pos_idx, qry_idx) if x is not None}
        ranks.append(
            1 + sum(1 for j in range(n) if j not in skip and s[j] >= s_pos - tol)
        )

        def top(scores, own):
            order = sorted(
                (j for j in range(n) if j != own), key=lambda j: (-scores[j], j)
            )
            return set(order[:k_top])

        a = top(s, None if qry_idx is None else int(qry_idx[i]))
        b = top(un @ pn[i], None if pos_idx is None else int(pos_idx[i]))
        ints.append(len(a & b))
        unis.append(len(a | b))
        jacs.append(len(a & b) / len(a | b))
    ranks = np.array(ranks)
    out = {"MRR": np.mean(1.0 / np.ceil(ranks / ms))}
    for k in ks:
        out[f"REC@{k}"] = np.mean(ranks <= k)
    out["DC+"] = np.mean(1 - (qn * pn).sum(1))
    out["DE+"] = np.mean(np.linalg.norm(qn - pn, axis=1))
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    out["DC*"] = np.mean([1 - un[i] @ un[j] for i, j in pairs])
    out["DE*"] = np.mean([np.linalg.norm(un[i] - un[j]) for i, j in pairs])
    out["INT"], out["UNI"], out["JAC"] = np.mean(ints), np.mean(unis), np.mean(jacs)
    return out, ranks


def _assert_close(got, ref):
    assert set(got) == set(ref)
    for key in ref:
        assert got[key] == pytest.approx(ref[key], abs=1e-6), key


@pytest.mark.parametrize("overlap_k", [6, 0])
@pytest.mark.parametrize("with_index", [True, False])
def test_retrieval_metrics_match_reference(with_index, overlap_k):
    """Against the NumPy reference; ``topk_overlap_k=0`` (validation passes)
    leaves the ranking metrics and distances as they are and makes
    ``INT``/``UNI``/``JAC`` ``nan``."""
    gen = torch.Generator().manual_seed(0)
    pool = torch.randn(40, 5, generator=gen)
    qi = torch.randint(0, 40, (9,), generator=gen)
    pi = torch.randint(0, 40, (9,), generator=gen)
    query, positive = pool[qi], pool[pi] + 0.3 * torch.randn(9, 5, generator=gen)
    kw = dict(positive_index=pi, query_index=qi) if with_index else {}
    kw.update(ks=(1, 3, 10), mrr_scale=4, topk_overlap_k=overlap_k)
    got = retrieval_metrics(
        query, positive, pool, query_chunk_size=4, pool_chunk_size=7, **kw
    )
    ref, _ = ref_metrics(
        query.numpy(),
        positive.numpy(),
        pool.numpy(),
        pi.numpy() if with_index else None,
        qi.numpy() if with_index else None,
        (1, 3, 10),
        4,
        6,
    )
    if overlap_k == 0:
        for key in ("INT", "UNI", "JAC"):
            assert math.isnan(got[key])
            ref[key] = got[key] = 0.0
    _assert_close(got, ref)
    # Chunking never changes the result.
    whole = retrieval_metrics(query, positive, pool, **kw)
    if overlap_k == 0:
        whole.update(INT=0.0, UNI=0.0, JAC=0.0)
    assert whole == pytest.approx(got, abs=1e-9)


def test_ties_rank_pessimistically_and_topk_prefers_lower_index():
    e = np.eye(4, dtype=np.float32)
    # Pool rows: 0..3 axis vectors, 4 = copy of e0, 5 = copy of e0, 6 = all-halves.
    pool = np.stack([e[0], e[1], e[2], e[3], e[0], e[0], np.full(4, 0.5, np.float32)])
    query = np.stack([e[0], e[1]])
    positive = np.stack([e[0], np.full(4, 0.5, np.float32)])
    pi, qi = np.array([0, 6]), np.array([4, 1])
    t = torch.from_numpy
    args = (t(query), t(positive), t(pool))
    kw = dict(positive_index=t(pi), query_index=t(qi), ks=(1, 2, 3), mrr_scale=1)
    got = retrieval_metrics(*args, **kw, topk_overlap_k=2)
    ref, ranks = ref_metrics(query, positive, pool, pi, qi, (1, 2, 3), 1, 2)
    _assert_close(got, ref)
    # Query 0 (row 4): positive row 0 excluded, own row excluded; row 5 ties
    # with the positive (cos 1) so ranks above it: R = 2. Query 1 (e1, row 1
    # excluded): the positive scores 0.5; nothing else reaches it: R = 1.
    assert ranks.tolist() == [2, 1]
    assert got["REC@1"] == 0.5 and got["MRR"] == pytest.approx(0.75)
    # Top-2 of query 0: rows 0 and 5 tie with 4 excluded -> {0, 5}; of its
    # positive (row 0 excluded): {4, 5}. Query 1 (row 1 excluded): row 6, then
    # row 0 of the five rows tied at 0; its positive (row 6 excluded): rows 0
    # and 1 of six tied at 0.5. Each pair overlaps in 1 of a union of 3.
    assert (got["INT"], got["UNI"], got["JAC"]) == (1.0, 3.0, pytest.approx(1 / 3))
    # Without the overlap metrics the ties rank the same.
    ranking_only = retrieval_metrics(*args, **kw, topk_overlap_k=0)
    for key in ("INT", "UNI", "JAC"):
        assert math.isnan(ranking_only.pop(key))
    assert ranking_only == {k: v for k, v in got.items() if k in ranking_only}


def test_distance_metrics_sampled_and_exact():
    gen = torch.Generator().manual_seed(1)
    pool = torch.randn(300, 8, generator=gen)
    q, p = pool[:20], pool[20:40]
    exact = retrieval_metrics(q, p, pool, num_distance_pairs=10**6)
    a = retrieval_metrics(q, p, pool, num_distance_pairs=20000, seed=3)
    b = retrieval_metrics(q, p, pool, num_distance_pairs=20000, seed=3)
    c = retrieval_metrics(q, p, pool, num_distance_pairs=20000, seed=4)
    assert a == b  # seeded
    assert a["DE*"] != c["DE*"]
    assert a["DC*"] == exact["DC*"]  # DC* is always exact
    assert a["DE*"] == pytest.approx(exact["DE*"], abs=0.01)
    un = _unit(pool.numpy())
    d = np.linalg.norm(un[:, None] - un[None], axis=2)
    assert exact["DE*"] == pytest.approx(d.sum() / (300 * 299), abs=1e-6)
    # Identical embeddings everywhere: all distances vanish, JAC is 1.
    same = torch.ones(5, 3)
    m = retrieval_metrics(same[:2], same[:2], same, topk_overlap_k=3)
    assert m["DC*"] == pytest.approx(0, abs=1e-6) and m["DE*"] == pytest.approx(
        0, abs=1e-6
    )
    assert m["JAC"] == 1.0 and m["REC@1"] == 0.0  # pessimistic: 5 ties above


def test_recall_at_k_matches_reference_with_ties():
    gen = torch.Generator().manual_seed(2)
    q, p = torch.randn(30, 4, generator=gen), torch.randn(30, 4, generator=gen)
    n = torch.randn(50, 4, generator=gen)
    n[0] = p[0]  # exact tie with query 0's positive counts against it
    qn, pn, nn = (x.double().numpy() for x in (q, p, n))
    cnt = (qn @ nn.T >= (qn * pn).sum(1, keepdims=True) - 0).sum(1)
    for k in (1, 5, 10):
        assert recall_at_k(q, p, n, k, chunk_size=7) == pytest.approx(np.mean(cnt < k))
    single = recall_at_k(q[:1], p[:1], n[:1], 1)
    assert single == 0.0


def test_metrics_bad_input():
    x = torch.randn(4, 3)
    with pytest.raises(ValueError, match="positive"):
        retrieval_metrics(x, torch.randn(3, 3), x)
    with pytest.raises(ValueError, match="pool"):
        retrieval_metrics(x, x, torch.randn(5, 2))
    with pytest.raises(ValueError, match="positive_index"):
        retrieval_metrics(x, x, x, positive_index=torch.tensor([0, 1, 2, 4]))
    with pytest.raises(TypeError, match="query_index"):
        retrieval_metrics(x, x, x, query_index=torch.zeros(4))
    with pytest.raises(ValueError, match="ks"):
        retrieval_metrics(x, x, x, ks=(0,))
    with pytest.raises(ValueError, match="mrr_scale"):
        retrieval_metrics(x, x, x, mrr_scale=0)
    with pytest.raises(ValueError, match="topk_overlap_k"):
        retrieval_metrics(x, x, x, topk_overlap_k=-1)
    with pytest.raises(TypeError, match="query"):
        retrieval_metrics(x.long(), x, x)
    with pytest.raises(ValueError, match="k must"):
        recall_at_k(x, x, x, 0)
    assert math.isfinite(retrieval_metrics(x, x, x)["MRR"])
    bad = x.clone()
    bad[2, 1] = float("nan")
    with pytest.raises(ValueError, match="pool holds non-finite values .* row 2"):
        retrieval_metrics(x, x, bad)
    with pytest.raises(ValueError, match="query holds non-finite"):
        retrieval_metrics(bad, x, x)
    with pytest.raises(ValueError, match="positive holds non-finite"):
        recall_at_k(x, bad * float("inf"), x, 1)


@pytest.mark.parametrize("n, scale", [(2, 10.0), (7, 3.0), (40, 10.0)])
def test_random_ranking_is_the_mean_over_every_rank(n, scale):
    """Pool rows on a circle; the query is row 0 and positive p has exactly
    p - 1 competitors above it, so the n - 1 pairs take every rank 1..n-1
    once: their mean metrics are the expectation under a random ranking
    with C = n - 2 competitors."""
    angle = torch.arange(n, dtype=torch.float64) * (1.5 / n)
    pool = torch.stack([angle.cos(), angle.sin()], 1)
    pos = torch.arange(1, n)
    qry = torch.zeros(n - 1, dtype=torch.long)
    ks = (1, 3, 10)
    got = retrieval_metrics(
        pool[qry],
        pool[pos],
        pool,
        positive_index=pos,
        query_index=qry,
        ks=ks,
        mrr_scale=scale,
    )
    ref = random_ranking_metrics(n - 2, ks=ks, mrr_scale=scale)
    assert set(ref) == {"MRR", "REC@1", "REC@3", "REC@10"}
    for key, value in ref.items():
        assert value == pytest.approx(got[key], abs=1e-12), key
    # Per-pair counts average; a list equals its value repeated.
    both = random_ranking_metrics(torch.tensor([n - 2, 5]), ks=ks, mrr_scale=scale)
    five = random_ranking_metrics(5, ks=ks, mrr_scale=scale)
    assert both["MRR"] == pytest.approx((ref["MRR"] + five["MRR"]) / 2)
    assert random_ranking_metrics(0)["MRR"] == 1.0  # no competitor: rank 1


def test_random_ranking_closed_form_and_bad_input():
    ref = random_ranking_metrics(99)  # ranks 1..100, M_s = 10
    expect = sum(1 / math.ceil(r / 10) for r in range(1, 101)) / 100
    assert ref["MRR"] == pytest.approx(expect)
    assert ref["REC@1"] == pytest.approx(0.01) and ref["REC@10"] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="num_competitors"):
        random_ranking_metrics(-1)
    with pytest.raises(ValueError, match="at least one"):
        random_ranking_metrics([])
    with pytest.raises(ValueError, match="ks"):
        random_ranking_metrics(5, ks=(0,))


def test_topk_keys_equals_keys_of_whole_rows():
    """The overlap metrics key only each row's float top-(K + 16) candidates
    unless ties reach past them: on scores from a handful of values (ties
    everywhere, across the candidate cut), excluded entries (``-inf``) and a
    NaN, the K best keys equal those of the whole rows."""
    gen = torch.Generator().manual_seed(5)
    s = torch.randint(0, 6, (7, 300), generator=gen).float() / 4 - 0.5
    s[1] = torch.randn(300, generator=gen)  # no ties: candidates only
    s[2, :40] = 9.0  # 40 tied at the top
    s[3, torch.randperm(300, generator=gen)[:250]] = -math.inf  # 50 left
    s[4, 17] = math.nan
    s = s + 0.0
    index = torch.arange(1000, 1300)
    for k in (1, 5, 20, 60, 284, 300):
        got = metrics._topk_keys(s, index, k).sort(1).values
        ref = metrics._excluded_keys(s, index).topk(k, dim=1).values.sort(1).values
        assert torch.equal(got, ref), k


@pytest.mark.parametrize("pool_chunk", [64, 1000])
def test_overlap_metrics_same_as_keying_whole_rows(pool_chunk, monkeypatch):
    """End to end, with exact and near-duplicate pool rows: the same metrics
    as keying every score (the definition)."""
    gen = torch.Generator().manual_seed(6)
    pool = torch.randn(300, 6, generator=gen)
    pool[100:140] = pool[7]
    pool[200:210] = pool[9] * (1 + 1e-7)
    qi = torch.tensor([7, 100, 9, 3, 120, 250])
    pi = torch.tensor([120, 7, 205, 4, 101, 9])
    args = (pool[qi], pool[pi] + 0.01 * torch.randn(6, 6, generator=gen), pool)
    kw = dict(positive_index=pi, query_index=qi, pool_chunk_size=pool_chunk)
    for k_top in (5, 20, 60):
        got = retrieval_metrics(*args, topk_overlap_k=k_top, **kw)
        with monkeypatch.context() as mp:
            mp.setattr(
                metrics,
                "_topk_keys",
                lambda sc, ix, k: metrics._excluded_keys(sc, ix).topk(k, dim=1).values,
            )
            ref = retrieval_metrics(*args, topk_overlap_k=k_top, **kw)
        assert got == ref
