"""ppr_topk against exact personalized PageRank (dense linear solve)."""

from __future__ import annotations

import numba
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import pyg_multisage.sampling.ppr as ppr_mod
from pyg_multisage.graph import HeteroCSR
from pyg_multisage.sampling.ppr import (
    _merged_csr,
    _push_source,
    check_ppr_args,
    ppr_topk,
)

TOL = 2e-6  # float32 rounding of scores in [0, 1]

A_B = [("a", "ab", "b"), ("b", "rev_ab", "a")]
A_C = [("a", "ac", "c"), ("c", "rev_ac", "a")]
B_B = [("b", "bb", "b")]
ALL = A_B + A_C + B_B


def random_graph(seed: int, na: int = 14, nb: int = 9, nc: int = 6) -> HeteroCSR:
    """Types a, b, c; relations a-b, a-c (both directions) and b-b."""
    rng = np.random.default_rng(seed)

    def edges(n_src, n_dst, m):
        key = np.unique(rng.integers(0, n_src * n_dst, m))
        return torch.from_numpy(np.stack([key // n_dst, key % n_dst]))

    return HeteroCSR(
        {
            ("a", "ab", "b"): edges(na, nb, 30),
            ("a", "ac", "c"): edges(na, nc, 12),
            ("b", "bb", "b"): edges(nb, nb, 8),
        },
        {"a": na, "b": nb, "c": nc},
        undirected=True,
    )


def exact_ppr(csr: HeteroCSR, relations, alpha: float):
    """Dense PPR matrix Pi (row u = pi_u) with sinks kept until restart,
    the global offsets and the out-degrees, built from the per-relation CSRs."""
    off, acc = {}, 0
    for t in csr.node_types:
        off[t] = acc
        acc += csr.num_nodes[t]
    n = acc
    adj = np.zeros((n, n))
    for src_t, rel, dst_t in relations:
        c = csr[(src_t, rel, dst_t)]
        for u in range(c.num_src):
            for v in c.indices[c.indptr[u] : c.indptr[u + 1]]:
                adj[off[src_t] + u, off[dst_t] + v] += 1
    deg = adj.sum(1)
    trans = np.where(deg[:, None] > 0, adj / np.maximum(deg, 1)[:, None], 0.0)
    trans[deg == 0, deg == 0] = 1.0  # sink: the walk stays until restart
    pi = alpha * np.linalg.inv(np.eye(n) - (1 - alpha) * trans)
    return pi, off, deg


def dense_estimates(tables, csr, off, n):
    """p_hat as [S, n] from tables listing every node of every type."""
    first = next(iter(tables.values()))
    est = np.zeros((first.num_seeds, n))
    for t, tab in tables.items():
        for i in range(tab.num_seeds):
            nbr, w, _ = tab.row(i)
            est[i, off[t] + nbr.numpy()] = w.numpy()
    return est


ALL_K = {"a": 100, "b": 100, "c": 100}


@pytest.mark.parametrize("graph_seed", [0, 1, 2])
@pytest.mark.parametrize("relations", [ALL, A_B + B_B, [A_B[0], A_C[1]]])
@pytest.mark.parametrize("eps", [1e-2, 1e-3])
def test_push_error_bound_every_node(graph_seed, relations, eps):
    csr = random_graph(graph_seed)
    alpha = 0.2
    pi, off, deg = exact_ppr(csr, relations, alpha)
    n = pi.shape[0]
    seeds = np.arange(csr.num_nodes["a"])
    tables = ppr_topk(
        csr,
        seeds,
        source_type="a",
        relations=relations,
        top_k=ALL_K,
        alpha=alpha,
        eps=eps,
    )
    est = dense_estimates(tables, csr, off, n)
    # pi_s = p + sum_u r(u) pi_u with r(u) < eps d(u) at the end, hence
    # 0 <= pi_s(v) - p(v) <= eps * sum_u d(u) pi_u(v)  (= eps d(v) if undirected).
    bound = eps * deg @ pi
    gaps = []
    for i, s in enumerate(seeds):
        gs = off["a"] + s
        err = pi[gs] - est[i]
        err[gs] = 0.0  # the seed is never listed
        assert (err >= -TOL).all()
        assert (err <= bound + TOL).all()
        gaps.append(err.max())
    assert max(gaps) > 0  # the estimates are approximate, the bound is exercised
    if relations is ALL:  # undirected subgraph: the bound is eps * d(v)
        np.testing.assert_array_less(bound, eps * deg + 1e-9)


def merged_reference(csr: HeteroCSR, relations):
    """Row by row from the per-relation CSRs: the heads of every relation in
    turn and ``1 / d(head)`` (``-1`` for a sink) rounded to float32."""
    off, acc = {}, 0
    for t in csr.node_types:
        off[t] = acc
        acc += csr.num_nodes[t]
    rows = [[] for _ in range(acc)]
    for src_t, rel, dst_t in relations:
        c = csr[(src_t, rel, dst_t)]
        for u in range(c.num_src):
            heads = c.indices[c.indptr[u] : c.indptr[u + 1]]
            rows[off[src_t] + u].extend(off[dst_t] + int(w) for w in heads)
    deg = np.array([len(r) for r in rows])
    heads = np.array([w for r in rows for w in r], dtype=np.int64)
    inv = np.where(deg[heads] > 0, 1.0 / np.maximum(deg[heads], 1), -1.0)
    return np.concatenate([[0], np.cumsum(deg)]), heads, inv.astype(np.float32)


@pytest.mark.parametrize("seed,chunk", [(0, 1 << 18), (5, 4)])
def test_merged_csr_against_reference(seed, chunk, tmp_path, monkeypatch):
    monkeypatch.setattr(ppr_mod, "_MERGE_CHUNK", chunk)  # 4: rows in 2-4 chunks
    csr = random_graph(seed)
    for rels in (tuple(sorted(ALL)), tuple(sorted(A_B[:1] + A_C[:1] + B_B))):
        indptr, heads, inv = merged_reference(csr, rels)
        got_ptr, edges = _merged_csr(csr, rels)
        assert got_ptr.dtype == np.int32 and edges.dtype == np.int32
        np.testing.assert_array_equal(got_ptr, indptr)
        np.testing.assert_array_equal(edges[:, 0], heads)
        np.testing.assert_array_equal(edges.view(np.float32)[:, 1], inv)
        if rels != tuple(sorted(ALL)):  # a -> b, a -> c: b, c are sinks
            assert (edges.view(np.float32)[:, 1] == -1).any()
        folder = tmp_path / f"m{len(rels)}"
        folder.mkdir()
        on_disk = _merged_csr(csr, rels, folder)
        np.testing.assert_array_equal(np.load(folder / "indptr.npy"), got_ptr)
        np.testing.assert_array_equal(np.load(folder / "edges.npy"), edges)
        assert isinstance(on_disk[1], np.memmap)


def test_push_invariant_and_termination():
    csr = random_graph(3)
    for rels in (tuple(sorted(ALL)), tuple(sorted(A_B[:1] + A_C + B_B))):
        indptr, edges = _merged_csr(csr, rels)
        indices, inv_deg = edges[:, 0], edges.view(np.float32)[:, 1]
        alpha, eps = 0.15, 1e-3
        pi, off, deg = exact_ppr(csr, rels, alpha)
        n = len(indptr) - 1
        np.testing.assert_allclose(inv_deg, np.where(deg > 0, 1 / deg, -1)[indices])
        for s in range(0, n, 3):
            score = np.zeros(n, np.float32)
            resid = np.zeros(n, np.float32)
            queue = np.empty(n + 1, indices.dtype)
            touched = np.empty(n + 1, indices.dtype)
            scored = np.empty(n, indices.dtype)
            m, m_p, hops = _push_source(
                s,
                indptr,
                edges,
                edges.view(np.float32),
                alpha,
                eps,
                score,
                resid,
                queue,
                touched,
                scored,
            )
            p = score.astype(np.float64)
            # stored scaled by 1 / d; pushed nodes and sinks hold a tiny
            # negative marker (|r| <= 1e-30) that only flags them as touched
            assert (resid >= -1e-30).all()
            assert (resid[p > 0] != 0).all()
            r = np.maximum(resid.astype(np.float64), 0.0) * deg
            assert len(set(touched[:m].tolist())) == m
            assert sorted(touched[:m]) == np.flatnonzero(resid != 0).tolist()
            assert ((p > 0) | (r > 0)).sum() == m  # exactly the touched nodes
            assert sorted(scored[:m_p]) == np.flatnonzero(p > 0).tolist()
            # ACL invariant: pi_s = p + sum_u r(u) pi_u ; at the end r(u) < eps d(u)
            # (sinks absorb at once: r = 0 there).
            np.testing.assert_allclose(p + r @ pi, pi[s], atol=1e-5)
            assert (r < eps * deg + 1e-9).all()
            assert hops >= deg[s]
            np.testing.assert_allclose(p.sum() + r.sum(), 1.0, atol=1e-5)


def test_topk_sets_match_exact_where_separated():
    alpha, eps, k = 0.15, 1e-4, 3
    decided = 0
    for graph_seed in range(4):
        csr = random_graph(graph_seed, na=30, nb=20, nc=10)
        pi, off, deg = exact_ppr(csr, ALL, alpha)
        bound = eps * deg @ pi + TOL
        seeds = np.arange(csr.num_nodes["a"])
        tables = ppr_topk(
            csr,
            seeds,
            source_type="a",
            relations=ALL,
            top_k={"a": k, "b": k, "c": k},
            alpha=alpha,
            eps=eps,
        )
        for t, tab in tables.items():
            lo, hi = off[t], off[t] + csr.num_nodes[t]
            for i, s in enumerate(seeds):
                cand = [v for v in range(lo, hi) if v != off["a"] + s]
                score = pi[off["a"] + s]
                got = set((tab.row(i)[0].numpy() + lo).tolist())
                for v in cand:
                    # v must be listed if fewer than k others can reach its floor
                    rivals = sum(
                        score[u] >= score[v] - bound[v] for u in cand if u != v
                    )
                    if rivals < k and score[v] - bound[v] > TOL:
                        assert v in got
                        decided += 1
                    # v must be absent if k others surely beat it
                    better = sum(score[u] - bound[u] > score[v] for u in cand)
                    if better >= k:
                        assert v not in got
                        decided += 1
    assert decided > 500


def test_sink_absorbs_residual():
    # a -> b only: every b is a sink; each of the d neighbors gets (1-alpha)/d.
    csr = random_graph(5)
    alpha = 0.3
    tables = ppr_topk(
        csr,
        torch.arange(14),
        source_type="a",
        relations=[("a", "ab", "b")],
        top_k={"a": 5, "b": 9},
        alpha=alpha,
        eps=1e-6,
    )
    assert tables["a"].num_edges == 0
    deg = csr[("a", "ab", "b")].degree()
    for i in range(14):
        nbr, w, _ = tables["b"].row(i)
        c = csr[("a", "ab", "b")]
        assert sorted(nbr.tolist()) == sorted(c.indices[c.indptr[i] : c.indptr[i + 1]])
        np.testing.assert_allclose(w.numpy(), (1 - alpha) / deg[i], rtol=1e-6)


def test_relation_subset_restricts_walk():
    csr = random_graph(7)
    sub = HeteroCSR(
        {
            et: torch.from_numpy(
                np.stack(
                    [
                        np.repeat(np.arange(csr[et].num_src), csr[et].degree()),
                        csr[et].indices,
                    ]
                )
            )
            for et in A_B
        },
        csr.num_nodes,
    )
    kw = dict(source_type="a", top_k={"a": 6, "b": 4, "c": 3}, eps=1e-5)
    full = ppr_topk(csr, torch.arange(14), relations=A_B, **kw)
    only = ppr_topk(sub, torch.arange(14), relations=A_B, **kw)
    assert full["c"].num_edges == 0  # c is reachable only through a-c
    for t in "ab":
        assert torch.equal(full[t].ptr, only[t].ptr)
        assert torch.equal(full[t].neighbor, only[t].neighbor)
        assert torch.equal(full[t].weight, only[t].weight)
    with_c = ppr_topk(csr, torch.arange(14), relations=A_B + A_C, **kw)
    assert with_c["c"].num_edges > 0
    assert not torch.equal(with_c["a"].weight, full["a"].weight)


def test_edge_cases():
    csr = HeteroCSR(
        {("a", "ab", "b"): torch.tensor([[0, 0, 1], [0, 1, 1]])},
        {"a": 3, "b": 2},
        undirected=True,
    )
    rel = [("a", "ab", "b"), ("b", "rev_ab", "a")]
    out = ppr_topk(
        csr,
        torch.tensor([2, 0], dtype=torch.int32),
        source_type="a",
        relations=rel,
        top_k={"a": 2},
    )
    assert out["a"].seeds.dtype == torch.int64
    assert out["a"].degree().tolist() == [0, 1]  # node 2 is isolated
    assert set(out) == {"a"}
    big = ppr_topk(csr, [0], source_type="a", relations=rel, top_k={"a": 50})
    assert big["a"].degree().tolist() == [1]  # k above the 3 nodes: lowered
    assert out["a"].neighbor.tolist() == [1]
    out = ppr_topk(
        csr, [0, 1], source_type="a", relations=rel, top_k={"b": 2}, alpha=1.0
    )
    assert out["b"].num_edges == 0  # alpha = 1: all mass stays at the seed
    for a in (1.0, 1.0 - 1e-9):  # also with sinks, and 1 - alpha below float32
        out = ppr_topk(
            csr, [0, 1], source_type="a", relations=rel[:1], top_k={"b": 2}, alpha=a
        )
        assert out["b"].num_edges == 0
    out = ppr_topk(csr, [], source_type="a", relations=rel, top_k={"a": 2})
    assert out["a"].num_seeds == 0 and out["a"].ptr.tolist() == [0]


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(source_type="x"), ValueError, "source_type"),
        (dict(relations=[("a", "zz", "b")]), ValueError, "relations"),
        (dict(relations=("a", "ab", "b")), TypeError, "relations"),
        (dict(relations=[]), ValueError, "relations"),
        (dict(top_k={"x": 3}), ValueError, "top_k"),
        (dict(top_k={"a": -1}), ValueError, "top_k"),
        (dict(top_k={"a": 0}), ValueError, r"top_k\['a'\] must be >= 1, got 0"),
        (dict(top_k={"a": 1.5}), TypeError, "top_k"),
        (dict(top_k=[("a", 3)]), TypeError, "top_k"),
        (dict(alpha=0.0), ValueError, "alpha"),
        (dict(alpha=1.5), ValueError, "alpha"),
        (dict(eps=0.0), ValueError, "eps"),
        (dict(eps=-1e-4), ValueError, "eps"),
        (dict(seeds=torch.tensor([0.0])), TypeError, "seeds"),
        (dict(seeds=torch.tensor([14])), ValueError, "seeds"),
        (dict(seeds=torch.tensor([-1])), ValueError, "seeds"),
        (dict(num_threads=0), ValueError, "num_threads"),
    ],
)
def test_bad_input(kwargs, exc, match):
    csr = random_graph(0)
    args = dict(
        seeds=torch.tensor([0, 1]), source_type="a", relations=A_B, top_k={"a": 3}
    )
    args.update(kwargs)
    seeds = args.pop("seeds")
    with pytest.raises(exc, match=match):
        ppr_topk(csr, seeds, **args)
    with pytest.raises(TypeError, match="csr"):
        ppr_topk(None, [0], source_type="a", relations=A_B, top_k={"a": 1})


def _tables_equal(x, y):
    for t in x:
        assert torch.equal(x[t].ptr, y[t].ptr)
        assert torch.equal(x[t].neighbor, y[t].neighbor)
        assert torch.equal(x[t].weight, y[t].weight)


def _concat(parts):
    out = {}
    for t in parts[0]:
        ptr = [torch.zeros(1, dtype=torch.int64)]
        for p in parts:
            ptr.append(p[t].ptr[1:] + torch.cat(ptr)[-1])
        out[t] = type(parts[0][t])(
            seeds=torch.cat([p[t].seeds for p in parts]),
            ptr=torch.cat(ptr),
            neighbor=torch.cat([p[t].neighbor for p in parts]),
            weight=torch.cat([p[t].weight for p in parts]),
        )
    return out


@settings(max_examples=25, deadline=None)
@given(
    graph_seed=st.integers(0, 10_000),
    k=st.integers(1, 7),
    eps=st.sampled_from([1e-2, 1e-3, 1e-4]),
    alpha=st.floats(0.05, 1.0),
    split=st.integers(0, 40),
    rel_pick=st.sampled_from([ALL, A_B, A_B + B_B, [A_B[0], A_C[0]]]),
)
def test_properties(graph_seed, k, eps, alpha, split, rel_pick):
    csr = random_graph(graph_seed, na=25, nb=15, nc=8)
    rng = np.random.default_rng(graph_seed)
    seeds = torch.from_numpy(rng.integers(0, 25, 40))
    kw = dict(
        source_type="a",
        relations=rel_pick,
        top_k={"a": k, "b": k + 1, "c": k},
        alpha=alpha,
        eps=eps,
    )
    one = ppr_topk(csr, seeds, num_threads=1, **kw)
    for t, tab in one.items():
        assert tab.weight.dtype == torch.float32
        assert torch.equal(tab.seeds, seeds)
        assert (tab.degree() <= kw["top_k"][t]).all()
        if tab.num_edges:
            assert tab.neighbor.min() >= 0
            assert tab.neighbor.max() < csr.num_nodes[t]
            assert (tab.weight > 0).all()
        for i in range(tab.num_seeds):
            nbr, w, _ = tab.row(i)
            if t == "a":
                assert int(seeds[i]) not in nbr.tolist()
            assert len(set(nbr.tolist())) == len(nbr)
            order = sorted(zip((-w).tolist(), nbr.tolist(), strict=True))
            assert [v for _, v in order] == nbr.tolist()
    if numba.config.NUMBA_NUM_THREADS >= 2:
        _tables_equal(one, ppr_topk(csr, seeds, num_threads=2, **kw))
    parts = [ppr_topk(csr, seeds[:split], **kw), ppr_topk(csr, seeds[split:], **kw)]
    _tables_equal(one, _concat(parts))
    perm = torch.from_numpy(rng.permutation(len(seeds)))
    shuffled = ppr_topk(csr, seeds[perm], **kw)
    for t in one:  # same row for the same seed, whatever the order
        for j, i in enumerate(perm.tolist()):
            a, b = one[t].row(i), shuffled[t].row(j)
            assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


@pytest.mark.parametrize("graph_seed", [0, 3])
@pytest.mark.parametrize("eps", [1e-2, 1e-4, 1e-5])
@pytest.mark.parametrize("init_bits", [1, 12])
def test_hash_scratch_equals_dense(graph_seed, eps, init_bits, monkeypatch):
    """The hash-table scratch gives the dense kernel's rows and hop counts
    bit for bit: several node types, sinks (relation subsets without the
    reverse), ties, repeated and isolated seeds, and tables that start at 2
    slots and grow many times while seeds are pushed."""
    monkeypatch.setattr(ppr_mod, "_HASH_INIT_BITS", init_bits)
    csr = random_graph(graph_seed, na=30, nb=20, nc=10)
    seeds = np.concatenate([np.arange(30), [4, 4, 0]])
    for rels in (ALL, A_B + B_B, [A_B[0], A_C[0], A_C[1]]):
        kw = dict(
            source_type="a",
            relations=rels,
            top_k={"a": 5, "b": 3, "c": 40},
            eps=eps,
        )
        for nt in (1, 2) if numba.config.NUMBA_NUM_THREADS >= 2 else (1,):
            dense, hops_d = ppr_mod._ppr_topk(
                csr, seeds, scratch="dense", num_threads=nt, **kw
            )
            hashed, hops_h = ppr_mod._ppr_topk(
                csr, seeds, scratch="hash", num_threads=nt, **kw
            )
            _tables_equal(dense, hashed)
            np.testing.assert_array_equal(hops_d, hops_h)
        if eps <= 1e-4 and A_C[0] in rels:
            assert dense["c"].num_edges > 0


def test_auto_scratch_takes_hash_above_the_limit(monkeypatch):
    calls = []
    real = ppr_mod._ppr_kernel_hash

    def spy(*args):
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(ppr_mod, "_ppr_kernel_hash", spy)
    csr = random_graph(1)
    kw = dict(source_type="a", relations=ALL, top_k={"a": 3, "b": 2})
    want = ppr_topk(csr, np.arange(14), **kw)
    assert calls == []  # 29 nodes: dense
    monkeypatch.setattr(ppr_mod, "DENSE_SCRATCH_LIMIT", 8 * 29)
    _tables_equal(want, ppr_topk(csr, np.arange(14), num_threads=1, **kw))
    assert calls == [1]
    with pytest.raises(ValueError, match="scratch must be one of"):
        ppr_topk(csr, [0], scratch="sparse", **kw)


def test_topk_truncation_matches_full_ranking():
    # k below the number of reached nodes: each row is the head of the full
    # ranking (score desc, id asc), per type, including tied scores
    csr = random_graph(5, na=30, nb=20, nc=10)
    kw = dict(source_type="a", relations=ALL, alpha=0.15, eps=1e-4)
    seeds = np.arange(30)
    full = ppr_topk(csr, seeds, top_k={"a": 60, "b": 60, "c": 60}, **kw)
    for k in (1, 3, 7):
        cut = ppr_topk(csr, seeds, top_k={"a": k, "b": k, "c": k}, **kw)
        for t in full:
            for i in range(len(seeds)):
                nbr, w, _ = full[t].row(i)
                c_nbr, c_w, _ = cut[t].row(i)
                assert torch.equal(c_nbr, nbr[:k]) and torch.equal(c_w, w[:k])
    # a star: every leaf of the seed's star has the same score
    leaves = 9
    star = HeteroCSR(
        {("a", "ab", "b"): torch.tensor([[0] * leaves, list(range(leaves))])},
        {"a": 1, "b": leaves},
        undirected=True,
    )
    rels = [("a", "ab", "b"), ("b", "rev_ab", "a")]
    tab = ppr_topk(star, [0], source_type="a", relations=rels, top_k={"b": 4})["b"]
    nbr, w, _ = tab.row(0)
    assert nbr.tolist() == [0, 1, 2, 3]
    assert (w == w[0]).all() and w[0] > 0


def test_argument_checks_without_and_with_the_graph():
    csr = random_graph(0)
    rels = [A_B[0], A_B[0]]
    args = check_ppr_args("a", rels, {"a": np.int64(3)}, 1, 1e-3)
    assert args == dict(
        source_type="a", relations=(A_B[0],), top_k={"a": 3}, alpha=1.0, eps=1e-3
    )
    check_ppr_args("x", [("x", "y", "z")], {"x": 1})  # no graph: names pass
    with pytest.raises(ValueError, match="source_type"):
        check_ppr_args("x", A_B, {"a": 1}, csr=csr)
    with pytest.raises(ValueError, match="relations"):
        check_ppr_args("a", [("a", "zz", "b")], {"a": 1}, csr=csr)
    with pytest.raises(TypeError, match="relations entry"):
        check_ppr_args("a", [("a", "b")], {"a": 1})
    with pytest.raises(ValueError, match="eps"):
        check_ppr_args("a", A_B, {"a": 1}, eps=1e-13)
