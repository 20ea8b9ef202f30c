"""degree_prune: OmniSage Algorithm 2 in expectation, exactly per stream, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pyg_multisage.graph import HeteroCSR
from pyg_multisage.sampling.prune import degree_prune
from pyg_multisage.sampling.rng import next_state, stream, uniform

DEGREES = np.array([0, 1, 5, 10, 11, 30, 200, 1000, 5000])


def star_graph(degrees=DEGREES, shuffle_seed=0):
    """Source u has degrees[u] out-edges; edges shuffled so input order matters."""
    src = np.repeat(np.arange(len(degrees)), degrees)
    dst = np.concatenate([np.arange(d) for d in degrees])
    perm = np.random.default_rng(shuffle_seed).permutation(len(src))
    return torch.from_numpy(np.stack([src[perm], dst[perm]]))


def target_degree(d, alpha, d_min, d_max):
    return np.minimum(d, np.maximum(np.minimum(d**alpha, d_max), d_min))


def test_expected_kept_degree():
    ei = star_graph()
    alpha, d_min, d_max, runs = 0.86, 10, 500, 300
    kept = np.zeros(len(DEGREES))
    for seed in range(runs):
        mask = degree_prune(ei, alpha=alpha, d_min=d_min, d_max=d_max, seed=seed)
        kept += np.bincount(ei[0][mask].numpy(), minlength=len(DEGREES))
    mean = kept / runs
    expect = target_degree(DEGREES.astype(float), alpha, d_min, d_max)
    p = np.where(DEGREES > 0, expect / np.maximum(DEGREES, 1), 1.0)
    # Binomial(d, p) per run: 5 standard errors of the mean over the runs.
    sigma = np.sqrt(DEGREES * p * (1 - p) / runs)
    assert (np.abs(mean - expect) <= 5 * sigma + 1e-9).all(), (mean, expect)
    assert expect[-1] == d_max and expect[-2] == pytest.approx(1000**0.86)


def test_low_degree_untouched_and_limits():
    ei = star_graph()
    src = ei[0].numpy()
    for seed in range(5):
        mask = degree_prune(ei, alpha=0.5, d_min=11, d_max=50, seed=seed).numpy()
        assert mask[DEGREES[src] <= 11].all()
        assert not mask[DEGREES[src] > 11].all()
    # alpha = 1 with a large cap keeps everything; alpha = 0 keeps ~d_min.
    assert degree_prune(ei, alpha=1.0, d_min=0, d_max=10**6).all()
    mask = degree_prune(ei, alpha=0.0, d_min=3, d_max=10).numpy()
    kept = np.bincount(src[mask], minlength=len(DEGREES))
    assert kept[-1] < 30 and kept[2] < 5


def test_matches_stream_transcription():
    ei = star_graph(np.array([3, 40, 25]), shuffle_seed=1)
    alpha, d_min, d_max, seed = 0.7, 4, 20, 12345
    mask = degree_prune(ei, alpha=alpha, d_min=d_min, d_max=d_max, seed=seed).numpy()
    src = ei[0].numpy()
    for u in range(3):
        edges = np.flatnonzero(src == u)  # this node's edges in input order
        d = len(edges)
        if d <= d_min:
            assert mask[edges].all()
            continue
        p = min(max(min(d**alpha, d_max), d_min) / d, 1.0)
        state = np.uint64(stream(seed, u, 0))  # jitted calls return Python ints
        for e in edges:
            state, bits = next_state(state)
            state = np.uint64(state)
            assert mask[e] == (uniform(np.uint64(bits)) < p)


def test_deterministic_and_csr_input():
    ei = star_graph()
    a = degree_prune(ei, seed=7, d_min=5, d_max=100)
    assert a.dtype == torch.bool and a.shape == (ei.shape[1],)
    assert torch.equal(a, degree_prune(ei, seed=7, d_min=5, d_max=100))
    assert not torch.equal(a, degree_prune(ei, seed=8, d_min=5, d_max=100))
    # int32 input, explicit num_nodes, and the CSR (edges grouped by source).
    assert torch.equal(
        a, degree_prune(ei.to(torch.int32), len(DEGREES), seed=7, d_min=5, d_max=100)
    )
    csr = HeteroCSR({("u", "to", "v"): ei}, {"u": len(DEGREES), "v": 5000})
    c = csr[("u", "to", "v")]
    order = np.argsort(ei[0].numpy(), kind="stable")
    assert torch.equal(degree_prune(c, seed=7, d_min=5, d_max=100), a[order])
    # Another node's edges do not change a node's coins.
    sub = ei[:, ei[0] != 8]
    b = degree_prune(sub, len(DEGREES), seed=7, d_min=5, d_max=100)
    assert torch.equal(b, a[ei[0] != 8])
    empty = degree_prune(torch.zeros(2, 0, dtype=torch.long))
    assert empty.shape == (0,)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(alpha=1.5), ValueError, "alpha"),
        (dict(alpha=-0.1), ValueError, "alpha"),
        (dict(d_min=-1), ValueError, "d_min"),
        (dict(d_min=20, d_max=10), ValueError, "d_max"),
        (dict(d_min=2.5), TypeError, "d_min"),
        (dict(seed=-3), ValueError, "seed"),
        (dict(num_nodes=3), ValueError, "num_nodes"),
    ],
)
def test_bad_input(kwargs, exc, match):
    ei = star_graph()
    with pytest.raises(exc, match=match):
        degree_prune(ei, **kwargs)


def test_bad_edge_index():
    with pytest.raises(TypeError, match="edge_index_or_csr"):
        degree_prune(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="edge_index_or_csr"):
        degree_prune(torch.zeros(3, 3, dtype=torch.long))
    with pytest.raises(TypeError, match="edge_index_or_csr"):
        degree_prune([[0, 1], [1, 0]])
    with pytest.raises(ValueError, match="num_nodes"):
        degree_prune(torch.tensor([[-1, 0], [0, 1]]))
