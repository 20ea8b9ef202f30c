"""contextual_walk (MultiSage Alg. 2) and pinsage_walk against references."""

from __future__ import annotations

from collections import Counter, defaultdict

import numba
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pyg_multisage.graph import HeteroCSR
from pyg_multisage.sampling.rng import next_state, randint, stream, uniform
from pyg_multisage.sampling.walks import (
    _vote,
    check_contextual_walk_args,
    check_pinsage_walk_args,
    contextual_walk,
    pinsage_walk,
)

THREADS = min(2, numba.config.NUMBA_NUM_THREADS)


# -- graphs ------------------------------------------------------------------------
def make_graph(
    num_t: int,
    num_c: int,
    tc: list[tuple[int, int]],
    ct: list[tuple[int, int]] | None = None,
    w_tc: list[float] | None = None,
    w_ct: list[float] | None = None,
) -> HeteroCSR:
    """Targets 't', contexts 'c'; ``ct`` defaults to the reverse of ``tc``."""
    if ct is None:
        ct = [(c, t) for t, c in tc]
        w_ct = w_tc if w_ct is None else w_ct
    ei_tc = torch.tensor(tc, dtype=torch.long).reshape(-1, 2).t()
    ei_ct = torch.tensor(ct, dtype=torch.long).reshape(-1, 2).t()
    weights = {}
    if w_tc is not None:
        weights[("t", "in", "c")] = torch.tensor(w_tc, dtype=torch.float64)
    if w_ct is not None:
        weights[("c", "has", "t")] = torch.tensor(w_ct, dtype=torch.float64)
    return HeteroCSR(
        {("t", "in", "c"): ei_tc, ("c", "has", "t"): ei_ct},
        {"t": num_t, "c": num_c},
        weights,
    )


def random_graph(
    rng: np.random.Generator, num_t: int, num_c: int, p: float, weighted: bool
) -> HeteroCSR:
    mask = rng.random((num_t, num_c)) < p
    t, c = np.nonzero(mask)
    tc = list(zip(t.tolist(), c.tolist(), strict=True))
    w = (rng.random(len(tc)) + 0.05).tolist() if weighted else None
    return make_graph(num_t, num_c, tc, w_tc=w)


# -- the reference: a plain transcription of Algorithm 2 ---------------------------
def draw(state):
    """The jitted ``next_state`` called from Python (uint64 in and out)."""
    state, bits = next_state(np.uint64(state))
    return np.uint64(state), np.uint64(bits)


def ref_pick(rel, node: int, bits) -> int:
    """One hop as the documented stream rule says (linear scan, no prefix array)."""
    lo, hi = int(rel.indptr[node]), int(rel.indptr[node + 1])
    if hi == lo:
        return -1
    if rel.weight is None:
        return int(rel.indices[lo + randint(bits, hi - lo)])
    total = 0.0
    for e in range(lo, hi):
        total += float(rel.weight[e])
    if not total > 0:
        return -1
    x = uniform(bits) * total
    acc = 0.0
    for e in range(lo, hi):
        acc += float(rel.weight[e])
        if acc > x:
            return int(rel.indices[e])
    return int(rel.indices[hi - 1])


def rand_walk(csr, v, walk, length, restart_prob, seed):
    """Algorithm 2, line 7: a random walk with restart from ``v``; returns the
    path since the last restart, ``[v, c1, t1, c2, t2, ...]`` (ending on a
    target node; a walk stuck at a node without neighbors stops there)."""
    tc, ct = csr.relation("t", "c"), csr.relation("c", "t")
    state = stream(seed, v, walk)
    path = [v]
    for step in range(length):
        if step > 0:
            state, bits = draw(state)
            if uniform(bits) < restart_prob:
                path = [v]
        state, bits = draw(state)
        c = ref_pick(tc, path[-1], bits)
        if c < 0:
            break
        state, bits = draw(state)
        u = ref_pick(ct, c, bits)
        if u < 0:
            break
        path += [c, u]
    return path


def ref_contextual(csr, v, num_walks, length, restart_prob, k, seed):
    """Algorithm 2, lines 4-17, with its defaultdicts (ctx defaults to 0)."""
    vis, ctx, dom = defaultdict(int), defaultdict(int), defaultdict(int)
    for i in range(num_walks):
        path = rand_walk(csr, v, i, length, restart_prob, seed)
        u = path[-1]
        if u == v:  # self visits are not counted
            continue
        vis[u] += 1
        if ctx[u] == path[1]:
            dom[u] += 1
        else:
            if dom[u] > 0:
                dom[u] -= 1
            else:
                dom[u] += 1
                ctx[u] = path[1]
    top = sorted(vis, key=lambda u: (-vis[u], u))[:k]
    return [(u, vis[u], ctx[u]) for u in top]


def ref_pinsage(csr, v, num_walks, traversals, term_prob, k, seed):
    """DGL PinSAGESampler semantics: every target reached after a traversal."""
    tc, ct = csr.relation("t", "c"), csr.relation("c", "t")
    vis = Counter()
    for i in range(num_walks):
        state, cur = stream(seed, v, i), v
        for step in range(traversals):
            if step > 0:
                state, bits = draw(state)
                if uniform(bits) < term_prob:
                    break
            state, bits = draw(state)
            c = ref_pick(tc, cur, bits)
            if c < 0:
                break
            state, bits = draw(state)
            cur = ref_pick(ct, c, bits)
            if cur < 0:
                break
            if cur != v:
                vis[cur] += 1
    top = sorted(vis, key=lambda u: (-vis[u], u))[:k]
    return [(u, vis[u]) for u in top]


def rows(table):
    out = []
    for i in range(table.num_seeds):
        nbr, w, ctx = table.row(i)
        ctx = [None] * len(nbr) if ctx is None else ctx.tolist()
        out.append(list(zip(nbr.tolist(), w.tolist(), ctx, strict=True)))
    return out


# -- exactness ---------------------------------------------------------------------
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("restart_prob", [0.0, 0.3, 1.0])
def test_contextual_walk_matches_algorithm_2(weighted, restart_prob):
    rng = np.random.default_rng(7)
    csr = random_graph(rng, 25, 8, 0.2, weighted)
    seeds = np.arange(25)
    table = contextual_walk(
        csr,
        seeds,
        target="t",
        context="c",
        num_walks=150,  # three lane groups (LANES = 64), the last one partial
        walk_length=3,
        restart_prob=restart_prob,
        num_neighbors=6,
        seed=11,
    )
    assert table.context is not None and table.context.dtype == torch.int64
    for v, row in zip(seeds, rows(table), strict=True):
        ref = ref_contextual(csr, int(v), 150, 3, restart_prob, 6, 11)
        assert row == [(u, float(n), c) for u, n, c in ref]


@pytest.mark.parametrize("weighted", [False, True])
def test_pinsage_walk_matches_reference(weighted):
    rng = np.random.default_rng(3)
    csr = random_graph(rng, 25, 8, 0.2, weighted)
    seeds = np.arange(25)
    table = pinsage_walk(
        csr,
        seeds,
        target="t",
        context="c",
        num_walks=140,  # three lane groups, the last one partial
        num_traversals=4,
        termination_prob=0.4,
        num_neighbors=7,
        seed=5,
    )
    assert table.context is None
    for v, row in zip(seeds, rows(table), strict=True):
        ref = ref_pinsage(csr, int(v), 140, 4, 0.4, 7, 5)
        assert row == [(u, float(n), None) for u, n in ref]


def test_zero_weight_edges_are_never_walked():
    # t0 -> c0 (weight 0), t0 -> c1 (weight 1); c0 -> t1, c1 -> t2.
    csr = make_graph(
        3,
        2,
        [(0, 0), (0, 1)],
        [(0, 1), (1, 2)],
        w_tc=[0.0, 1.0],
        w_ct=[1.0, 1.0],
    )
    t = contextual_walk(csr, [0], target="t", context="c", num_walks=50)
    assert t.neighbor.tolist() == [2] and t.context.tolist() == [1]
    assert t.weight.tolist() == [50.0]


# -- the dominant-context rule ---------------------------------------------------------
def vote_stream(contexts):
    """Reference: Algorithm 2's streaming rule (lines 9-15) in plain Python,
    the dominant context of one (seed, neighbor) pair, -1 for no walk."""
    ctx, dom = -1, 0
    for c in contexts:
        if c == ctx:
            dom += 1
        elif dom > 0:
            dom -= 1
        else:
            ctx, dom = c, 1
    return ctx


@numba.njit
def kernel_vote_stream(contexts):
    """The kernel's vote step (context ids stored + 1) over one stream."""
    ctx = np.zeros(1, np.int64)
    dom = np.zeros(1, np.int64)
    for c in contexts:
        _vote(ctx, dom, 0, c + 1)
    return ctx[0] - 1


@pytest.mark.parametrize(
    "stream_, expected",
    [
        ([], -1),
        ([4], 4),
        ([1, 1, 2, 2, 3], 3),  # a tie cancels out: the last one wins
        ([1, 2, 1], 1),
        ([2, 1, 1, 1, 2, 2], 1),  # 1 leads, 2 only cancels it back to zero
        ([5, 5, 5, 6, 7, 8, 9], 9),  # plurality 5 lost: no strict majority
        ([3, 1, 3, 2, 3, 3, 1], 3),  # strict majority is always found
    ],
)
def test_vote_stream_on_crafted_streams(stream_, expected):
    assert vote_stream(stream_) == expected
    assert kernel_vote_stream(np.asarray(stream_, dtype=np.int64)) == expected


def first_contexts(csr, v, num_walks, seed):
    return [rand_walk(csr, v, i, 1, 0.0, seed)[1] for i in range(num_walks)]


def test_dominant_context_follows_the_forced_stream():
    # Seed 0 sees contexts 0, 1, 2 (uniformly); each leads only to target 1, so
    # every walk ends in 1 and the vote runs over the walks' first contexts.
    csr = make_graph(2, 3, [(0, 0), (0, 1), (0, 2)], [(0, 1), (1, 1), (2, 1)])
    differs_from_plurality = 0
    for seed in range(40):
        t = contextual_walk(
            csr, [0], target="t", context="c", num_walks=7, walk_length=1, seed=seed
        )
        seq = first_contexts(csr, 0, 7, seed)
        assert t.neighbor.tolist() == [1] and t.weight.tolist() == [7.0]
        assert t.context.tolist() == [vote_stream(np.asarray(seq))]
        counts = Counter(seq)
        best = max(counts.values())
        if counts[t.context.item()] < best:
            differs_from_plurality += 1
        if best > len(seq) / 2:  # a strict majority is always the result
            assert counts[t.context.item()] == best
    # The kernel runs the streaming rule, not an exact plurality count.
    assert differs_from_plurality > 0


def test_dominant_context_with_a_heavy_majority():
    csr = make_graph(
        2, 3, [(0, 0), (0, 1), (0, 2)], [(0, 1), (1, 1), (2, 1)], [8, 1, 1], [1, 1, 1]
    )
    t = contextual_walk(csr, [0], target="t", context="c", num_walks=300, seed=1)
    assert t.context.tolist() == [0]


def test_first_context_is_taken_after_the_last_restart():
    # Seed 0 -> {c0, c1}; c0 -> t1 only, c1 -> t2 only; t1, t2 -> c2 -> t3.
    # Every walk of length 2 ends in t3 (no restart) or in t1/t2 (restart
    # before traversal 2); the context of t3 is the seed's side context and of
    # t1 (t2) is c0 (c1): the one after the restart.
    tc = [(0, 0), (0, 1), (1, 2), (2, 2), (3, 2)]
    ct = [(0, 1), (1, 2), (2, 3)]
    csr = make_graph(4, 3, tc, ct)
    t = contextual_walk(csr, [0], target="t", context="c", num_walks=400, walk_length=2)
    got = dict(zip(t.neighbor.tolist(), t.context.tolist(), strict=True))
    assert set(got) == {1, 2, 3}
    assert got[1] == 0 and got[2] == 1 and got[3] in (0, 1)


# -- pinsage_walk converges to the exact transition probabilities -----------------
@pytest.mark.parametrize("weighted", [False, True])
def test_pinsage_frequencies_converge_to_exact_probabilities(weighted):
    rng = np.random.default_rng(0)
    num_t, num_c = 6, 4
    tc = [(t, c) for t in range(num_t) for c in range(num_c) if (t + c) % 3 != 0]
    w = (rng.random(len(tc)) + 0.2).tolist() if weighted else [1.0] * len(tc)
    csr = make_graph(num_t, num_c, tc, w_tc=w if weighted else None)
    a = np.zeros((num_t, num_c))
    for (t, c), x in zip(tc, w, strict=True):
        a[t, c] = x
    p_tc = a / a.sum(1, keepdims=True)
    p_ct = a.T / a.T.sum(1, keepdims=True)
    step = p_tc @ p_ct  # one traversal target -> context -> target
    walks, traversals, term = 40_000, 3, 0.5
    expected = np.zeros((num_t, num_t))
    power = np.eye(num_t)
    for t in range(1, traversals + 1):
        power = power @ step
        expected += walks * (1 - term) ** (t - 1) * power
    table = pinsage_walk(
        csr,
        np.arange(num_t),
        target="t",
        context="c",
        num_walks=walks,
        num_traversals=traversals,
        termination_prob=term,
        num_neighbors=num_t,
        seed=2024,
    )
    for v in range(num_t):
        nbr, cnt, _ = table.row(v)
        observed = np.zeros(num_t)
        observed[nbr.numpy()] = cnt.numpy()
        exp = expected[v].copy()
        exp[v] = 0.0  # self visits are not counted
        # The count of u is a sum of `walks` i.i.d. per-walk counts X in
        # [0, traversals], so Var <= walks * E[X^2] <= traversals * E[count].
        # Tolerance: 5 standard deviations of that bound (fixed seed).
        tol = 5 * np.sqrt(traversals * exp) + 1e-9
        assert np.all(np.abs(observed - exp) <= tol), (v, observed, exp)
        assert observed[v] == 0


# -- properties on random graphs ---------------------------------------------------
graph_params = st.fixed_dictionaries(
    {
        "num_t": st.integers(1, 14),
        "num_c": st.integers(1, 6),
        "p": st.floats(0.0, 0.8),
        "weighted": st.booleans(),
        "graph_seed": st.integers(0, 2**16),
        "num_seeds": st.integers(0, 150),
        "num_walks": st.integers(1, 30),
        "length": st.integers(1, 4),
        "prob": st.sampled_from([0.0, 0.25, 0.5, 1.0]),
        "k": st.integers(1, 6),
        "seed": st.integers(0, 2**40),
    }
)


def _neighbor_sets(rel):
    return [
        set(rel.indices[rel.indptr[v] : rel.indptr[v + 1]].tolist())
        for v in range(rel.num_src)
    ]


def _check_table(table, seeds, num_t, k, max_count):
    assert table.seeds.tolist() == list(seeds)
    assert table.neighbor.dtype == torch.int64 and table.weight.dtype == torch.float32
    assert int(table.ptr[-1]) == table.num_edges
    for i, v in enumerate(seeds):
        nbr, w, _ = table.row(i)
        assert len(nbr) <= k
        assert ((nbr >= 0) & (nbr < num_t)).all()
        assert (nbr != v).all()
        pairs = list(zip((-w).tolist(), nbr.tolist(), strict=True))
        assert pairs == sorted(pairs) and len(set(nbr.tolist())) == len(nbr)
        assert (w >= 1).all() and float(w.sum()) <= max_count


@settings(max_examples=40, deadline=None)
@given(graph_params)
def test_walk_properties_and_determinism(prm):
    rng = np.random.default_rng(prm["graph_seed"])
    csr = random_graph(rng, prm["num_t"], prm["num_c"], prm["p"], prm["weighted"])
    seeds = rng.integers(0, prm["num_t"], prm["num_seeds"])
    ctx_args = dict(
        target="t",
        context="c",
        num_walks=prm["num_walks"],
        walk_length=prm["length"],
        restart_prob=prm["prob"],
        num_neighbors=prm["k"],
        seed=prm["seed"],
    )
    pin_args = dict(
        target="t",
        context="c",
        num_walks=prm["num_walks"],
        num_traversals=prm["length"],
        termination_prob=prm["prob"],
        num_neighbors=prm["k"],
        seed=prm["seed"],
    )
    adj_tc = _neighbor_sets(csr.relation("t", "c"))
    adj_ct = _neighbor_sets(csr.relation("c", "t"))
    for fn, args, max_count in [
        (contextual_walk, ctx_args, prm["num_walks"]),
        (pinsage_walk, pin_args, prm["num_walks"] * prm["length"]),
    ]:
        one = fn(csr, seeds, num_threads=1, **args)
        _check_table(one, seeds.tolist(), prm["num_t"], prm["k"], max_count)
        if one.context is not None:
            for i, v in enumerate(seeds):
                nbr, _, ctx = one.row(i)
                for u, c in zip(nbr.tolist(), ctx.tolist(), strict=True):
                    # path[1] is a context of the seed (the walk restarts there)
                    assert c in adj_tc[v]
                    if prm["prob"] == 1.0 or prm["length"] == 1:
                        assert u in adj_ct[c]  # one traversal: v -> c -> u
        many = fn(csr, seeds, num_threads=THREADS, **args)
        assert rows(many) == rows(one)
        # Any batch split and any seed order give the same rows.
        cut = len(seeds) // 3
        parts = [fn(csr, seeds[:cut], **args), fn(csr, seeds[cut:], **args)]
        assert rows(parts[0]) + rows(parts[1]) == rows(one)
        perm = rng.permutation(len(seeds))
        shuffled = fn(csr, seeds[perm], **args)
        assert rows(shuffled) == [rows(one)[j] for j in perm]


def test_several_context_types_give_one_table_each():
    rng = np.random.default_rng(1)
    tc = rng.integers(0, [10, 4], (30, 2))
    tv = rng.integers(0, [10, 3], (20, 2))
    csr = HeteroCSR(
        {
            ("t", "in", "c"): torch.from_numpy(tc.T),
            ("t", "at", "v"): torch.from_numpy(tv.T),
        },
        {"t": 10, "c": 4, "v": 3},
        undirected=True,
    )
    both = contextual_walk(csr, torch.arange(10), target="t", context=["c", "v"])
    assert set(both) == {"c", "v"}
    for ctype in ("c", "v"):
        single = contextual_walk(csr, torch.arange(10), target="t", context=ctype)
        assert rows(both[ctype]) == rows(single)
        assert int(both[ctype].context.max()) < csr.num_nodes[ctype]


# -- inputs ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small():
    return make_graph(5, 2, [(0, 0), (1, 0), (2, 1), (3, 1), (0, 1)])


KERNELS = [
    (contextual_walk, "walk_length", "restart_prob"),
    (pinsage_walk, "num_traversals", "termination_prob"),
]


@pytest.mark.parametrize("fn, length, prob", KERNELS)
def test_bad_input(small, fn, length, prob):
    ok = dict(target="t", context="c")
    with pytest.raises(ValueError, match="seeds"):
        fn(small, [0, 5], **ok)
    with pytest.raises(ValueError, match="seeds"):
        fn(small, torch.tensor([-1]), **ok)
    with pytest.raises(TypeError, match="seeds"):
        fn(small, torch.tensor([0.0, 1.0]), **ok)
    with pytest.raises(TypeError, match="seeds"):
        fn(small, torch.tensor([True]), **ok)
    with pytest.raises(ValueError, match="seeds"):
        fn(small, torch.zeros(2, 2, dtype=torch.long), **ok)
    with pytest.raises(ValueError, match="target"):
        fn(small, [0], target="paper", context="c")
    with pytest.raises(ValueError, match="context"):
        fn(small, [0], target="t", context="venue")
    with pytest.raises(ValueError, match="num_neighbors"):
        fn(small, [0], num_neighbors=0, **ok)
    with pytest.raises(TypeError, match="num_neighbors"):
        fn(small, [0], num_neighbors=2.0, **ok)
    with pytest.raises(ValueError, match="num_walks"):
        fn(small, [0], num_walks=0, **ok)
    with pytest.raises(ValueError, match=length):
        fn(small, [0], **{length: 0}, **ok)
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match=prob):
            fn(small, [0], **{prob: bad}, **ok)
    with pytest.raises(ValueError, match="seed"):
        fn(small, [0], seed=-1, **ok)
    with pytest.raises(TypeError, match="csr"):
        fn(object(), [0], **ok)
    # visit counts and ids share the 64 bits of the top-k keys
    with pytest.raises(ValueError, match="num_walks=2305843009213693952"):
        fn(small, [0], num_walks=2**61, **ok)


def test_no_relation_between_target_and_context():
    csr = HeteroCSR(
        {("t", "in", "c"): torch.tensor([[0], [0]])}, {"t": 2, "c": 1, "x": 3}
    )
    for fn in (contextual_walk, pinsage_walk):
        with pytest.raises(ValueError, match="context.*'t'.*'x'"):
            fn(csr, [0], target="t", context="x")


def test_context_argument_forms(small):
    with pytest.raises(TypeError, match="context"):
        contextual_walk(small, [0], target="t", context=[])
    with pytest.raises(ValueError, match="context"):
        contextual_walk(small, [0], target="t", context=["c", "c"])
    with pytest.raises(TypeError, match="context"):
        pinsage_walk(small, [0], target="t", context=["c"])


@pytest.mark.parametrize("fn", [contextual_walk, pinsage_walk])
def test_int32_and_numpy_seeds_are_accepted(small, fn):
    ref = fn(small, torch.tensor([0, 1, 2]), target="t", context="c")
    for seeds in (
        torch.tensor([0, 1, 2], dtype=torch.int32),
        np.array([0, 1, 2], dtype=np.int16),
        [0, 1, 2],
    ):
        assert rows(fn(small, seeds, target="t", context="c")) == rows(ref)
    assert fn(small, 3, target="t", context="c").seeds.tolist() == [3]


@pytest.mark.parametrize("fn", [contextual_walk, pinsage_walk])
def test_isolated_seeds_and_empty_graphs(fn):
    # Target 4 has no context; graph without edges; graph without nodes.
    csr = make_graph(5, 2, [(0, 0), (1, 0), (2, 1)])
    t = fn(csr, [4, 0, 4], target="t", context="c")
    assert t.degree().tolist()[0] == 0 and t.degree().tolist()[2] == 0
    assert t.row(1)[0].tolist() == [1]
    empty = make_graph(3, 2, [])
    t = fn(empty, [0, 1, 2], target="t", context="c")
    assert t.num_seeds == 3 and t.num_edges == 0 and t.ptr.tolist() == [0] * 4
    none = make_graph(0, 0, [])
    t = fn(none, torch.zeros(0, dtype=torch.long), target="t", context="c")
    assert t.num_seeds == 0 and t.ptr.tolist() == [0]
    with pytest.raises(ValueError, match="seeds"):
        fn(none, [0], target="t", context="c")


def test_argument_checks_without_and_with_the_graph(small):
    args = check_contextual_walk_args("t", ["c"], np.int64(7), 2, 1, 3, np.int32(5))
    assert args == dict(
        target="t",
        context=["c"],
        num_walks=7,
        walk_length=2,
        restart_prob=1.0,
        num_neighbors=3,
        seed=5,
    )
    assert type(args["num_walks"]) is int and type(args["restart_prob"]) is float
    # no graph: unknown node types pass; with the graph they are named
    check_pinsage_walk_args("paper", "venue")
    with pytest.raises(ValueError, match="target 'paper'"):
        check_pinsage_walk_args("paper", "c", csr=small)
    with pytest.raises(ValueError, match="context 'venue'"):
        check_contextual_walk_args("t", ["c", "venue"], csr=small)
    with pytest.raises(ValueError, match="walk_length"):
        check_contextual_walk_args("t", "c", walk_length=0)
