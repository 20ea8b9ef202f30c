"""MultiSageConv and MultiContextConv: Eq. 5-7 / Alg. 1 of MultiSage."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch_geometric import EdgeIndex
from torch_geometric.utils import scatter

from pyg_multisage.nn import MultiContextConv, MultiSageConv

COMBINES = ["mask", "trans", "concat"]
ATTENTIONS = ["three_way", "diff", None]


def tiny_graph(seed: int = 0, num_nodes: int = 7, num_ctx: int = 4, fin: int = 5):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(num_nodes, fin, generator=gen)
    xc = torch.randn(num_ctx, 3, generator=gen)
    # Ego 6 has no neighbors; edge 3 and 6 have no context.
    edge_index = torch.tensor([[1, 2, 3, 0, 4, 5, 2, 0], [0, 0, 0, 1, 1, 2, 3, 3]])
    context = torch.tensor([0, 2, 1, -1, 3, 0, -1, 2])
    weight = torch.rand(edge_index.size(1), generator=gen) + 0.1
    return x, xc, edge_index, context, weight


def dense_reference(conv: MultiSageConv, x, xc, edge_index, context, weight=None):
    """Eq. 4 (last layer), 5, 6, 7 and Alg. 1 written ego by ego."""
    with torch.no_grad():
        z = x @ conv.lin_t.weight.T + conv.lin_t.bias
        z = F.relu(z) if conv.target_relu else z
        zn = z  # neighbors: W_t shared (Eq. 4) or their own W_n
        if not conv.share_weights:
            zn = x @ conv.lin_n.weight.T + conv.lin_n.bias
            zn = F.relu(zn) if conv.target_relu else zn
        zc = F.relu(xc @ conv.lin_c.weight.T + conv.lin_c.bias)
        act = torch.sigmoid if conv.act == "sigmoid" else torch.tanh
        D, A, Fo = conv.heads, conv.attention_channels, conv.out_channels

        def comb(zt, c):
            if c is None:
                c = torch.ones(Fo) if conv.combine == "mask" else torch.zeros(Fo)
            if conv.combine == "mask":
                return zt * c
            if conv.combine == "trans":
                return zt + c
            cat = torch.cat([zt, c])
            return F.relu(conv.lin_p.weight @ cat + conv.lin_p.bias)

        out = torch.zeros(x.size(0), Fo)
        for v in range(x.size(0)):
            edges = [e for e in range(edge_index.size(1)) if edge_index[1, e] == v]
            if not edges:
                h = 2 * act(comb(z[v], None))
            else:
                logits = torch.zeros(len(edges), D)
                for k, e in enumerate(edges):
                    u, o = int(edge_index[0, e]), int(context[e])
                    c = zc[o] if o >= 0 else None
                    for d in range(D):
                        if conv.attention == "three_way":
                            W_at = conv.lin_at.weight[d * A : (d + 1) * A]
                            W_ac = conv.lin_ac.weight[d * A : (d + 1) * A]
                            ctx = W_ac @ zc[o] if o >= 0 else torch.zeros(A)
                            hid = F.leaky_relu(
                                W_at @ z[v] + ctx + W_at @ zn[u], conv.negative_slope
                            )
                            logits[k, d] = conv.att[0, d] @ hid
                        elif conv.attention == "diff":
                            logits[k, d] = -torch.linalg.norm(
                                comb(z[v], c) - comb(zn[u], c)
                            )
                        if weight is not None:
                            logits[k, d] += torch.log(weight[e])
                alpha = torch.softmax(logits, dim=0).mean(dim=1)
                zv, zu = torch.zeros(Fo), torch.zeros(Fo)
                for k, e in enumerate(edges):
                    u, o = int(edge_index[0, e]), int(context[e])
                    c = zc[o] if o >= 0 else None
                    zv += alpha[k] * comb(z[v], c)
                    zu += alpha[k] * comb(zn[u], c)
                h = act(zv) + act(zu)
            # as F.normalize: an all-zero h (every ReLU off) stays zero
            out[v] = h / h.norm().clamp_min(1e-12) if conv.normalize else h
        return out


@pytest.mark.parametrize("combine", COMBINES)
@pytest.mark.parametrize("attention", ATTENTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("target_relu, act", [(True, "sigmoid"), (False, "tanh")])
@pytest.mark.parametrize("share_weights", [True, False])
def test_matches_dense_reference(
    combine, attention, weighted, target_relu, act, share_weights
):
    torch.manual_seed(1)
    x, xc, ei, ctx, w = tiny_graph()
    conv = MultiSageConv(
        5,
        6,
        heads=3,
        combine=combine,
        attention=attention,
        context_channels=3,
        attention_channels=4,
        target_relu=target_relu,
        act=act,
        share_weights=share_weights,
    )
    weight = w if weighted else None
    out = conv(x, xc, ei, ctx, edge_weight=weight)
    ref = dense_reference(conv, x, xc, ei, ctx, weight)
    assert out.shape == (7, 6)
    assert (out - ref).abs().max() <= 1e-5


def test_separate_neighbor_weights_are_used():
    """``share_weights=False`` embeds neighbors with W_n: another output
    than the shared layer with the same other weights, the same one once
    W_n = W_t."""
    torch.manual_seed(11)
    x, xc, ei, ctx, w = tiny_graph()
    conv = MultiSageConv(5, 6, heads=2, context_channels=3, share_weights=False)
    shared = MultiSageConv(5, 6, heads=2, context_channels=3)
    state = conv.state_dict()
    shared.load_state_dict({k: v for k, v in state.items() if "lin_n" not in k})
    assert (shared(x, xc, ei, ctx, w) - conv(x, xc, ei, ctx, w)).abs().max() > 1e-3
    with torch.no_grad():
        conv.lin_n.weight.copy_(conv.lin_t.weight)
        conv.lin_n.bias.copy_(conv.lin_t.bias)
    diff = shared(x, xc, ei, ctx, w) - conv(x, xc, ei, ctx, w)
    assert diff.abs().max() <= 1e-6


def test_unnormalized_matches_reference_and_isolated_ego():
    torch.manual_seed(2)
    x, xc, ei, ctx, _ = tiny_graph()
    conv = MultiSageConv(5, 6, heads=2, normalize=False, context_channels=3)
    out = conv(x, xc, ei, ctx)
    assert (out - dense_reference(conv, x, xc, ei, ctx)).abs().max() <= 1e-5
    z6 = F.relu(conv.lin_t(x[6]))
    assert torch.allclose(out[6], 2 * torch.sigmoid(z6))  # self-loop, no context


def test_no_edges_and_no_contexts_is_finite():
    conv = MultiSageConv(5, 4, heads=2, context_channels=3)
    x = torch.randn(3, 5)
    empty = torch.empty(2, 0, dtype=torch.long)
    out = conv(x, torch.randn(0, 3), empty, torch.empty(0, dtype=torch.long))
    assert out.shape == (3, 4) and torch.isfinite(out).all()
    # Edges whose contexts are all missing, with an empty context matrix.
    ei = torch.tensor([[1, 2], [0, 0]])
    out = conv(x, torch.randn(0, 3), ei, torch.tensor([-1, -1]))
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("combine", COMBINES)
@pytest.mark.parametrize("attention", ATTENTIONS)
def test_bipartite_shapes_and_heads(combine, attention):
    conv = MultiSageConv(
        5, 8, heads=4, combine=combine, attention=attention, context_channels=3
    )
    x_src, x_dst = torch.randn(10, 5), torch.randn(3, 5)
    ei = torch.tensor([[0, 4, 9, 7, 2], [0, 0, 1, 2, 2]])
    ctx = torch.tensor([0, 1, -1, 3, 2])
    out, (ei_out, alpha) = conv(
        (x_src, x_dst), torch.randn(4, 3), ei, ctx, return_attention_weights=True
    )
    assert out.shape == (3, 8)
    assert alpha.shape == (5, 4)
    assert torch.equal(ei_out, ei)
    assert torch.allclose(out.norm(dim=-1), torch.ones(3))


def test_bipartite_equals_homogeneous_on_egos():
    torch.manual_seed(3)
    x, xc, ei, ctx, w = tiny_graph()
    conv = MultiSageConv(5, 6, heads=2, context_channels=3)
    full = conv(x, xc, ei, ctx, w)
    keep = ei[1] < 3
    part = conv((x, x[:3]), xc, ei[:, keep], ctx[keep], w[keep])
    assert torch.allclose(full[:3], part, atol=1e-6)


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_attention_sums_to_one_per_ego_and_head(attention):
    x, xc, ei, ctx, w = tiny_graph()
    conv = MultiSageConv(5, 6, heads=3, attention=attention, context_channels=3)
    _, (ei_out, alpha) = conv(x, xc, ei, ctx, w, return_attention_weights=True)
    sums = scatter(alpha, ei_out[1], dim=0, dim_size=7, reduce="sum")
    has = torch.bincount(ei[1], minlength=7) > 0
    assert torch.allclose(sums[has], torch.ones(int(has.sum()), 3), atol=1e-6)
    assert (alpha >= 0).all()
    if attention is None:  # weighted mean: alpha = w / sum(w)
        wsum = scatter(w, ei[1], dim=0, dim_size=7)
        assert torch.allclose(alpha[:, 0], w / wsum[ei[1]], atol=1e-6)


def _sorted_by_ego(ei, *per_edge):
    key = ei[1] * 1000 + ei[0]
    perm = torch.argsort(key)
    return ei[:, perm], [t[perm] for t in per_edge]


def test_sparse_adjacency_and_edge_index_agree():
    torch.manual_seed(4)
    x, xc, ei, ctx, w = tiny_graph()
    conv = MultiSageConv(5, 6, heads=2, context_channels=3)
    ei_s, (ctx_s, w_s) = _sorted_by_ego(ei, ctx, w)
    expected, (_, alpha) = conv(x, xc, ei_s, ctx_s, w_s, return_attention_weights=True)
    coo = torch.sparse_coo_tensor(
        torch.stack([ei_s[1], ei_s[0]]), torch.ones(ei_s.size(1)), (7, 7)
    ).coalesce()
    csr = coo.to_sparse_csr()
    for adj in (coo, csr):
        out, (ei_out, alpha_out) = conv(
            x, xc, adj, ctx_s, w_s, return_attention_weights=True
        )
        assert torch.equal(ei_out, ei_s)
        assert torch.allclose(out, expected, atol=1e-6)
        assert torch.allclose(alpha_out, alpha, atol=1e-6)
    # PyG's EdgeIndex in any order is a plain edge list.
    out = conv(x, xc, EdgeIndex(ei, sparse_size=(7, 7)), ctx, w)
    assert torch.allclose(out, conv(x, xc, ei, ctx, w), atol=1e-6)
    uncoalesced = torch.sparse_coo_tensor(
        torch.stack([ei[1], ei[0]]), torch.ones(ei.size(1)), (7, 7)
    )
    with pytest.raises(ValueError, match="coalesce"):
        conv(x, xc, uncoalesced, ctx, w)
    with pytest.raises(ValueError, match="shape"):
        conv(x, xc, torch.sparse_coo_tensor(size=(7, 6)).coalesce(), ctx[:0])


def test_torch_sparse_sparsetensor():
    SparseTensor = pytest.importorskip("torch_sparse").SparseTensor

    x, xc, ei, ctx, w = tiny_graph()
    conv = MultiSageConv(5, 6, heads=2, context_channels=3)
    ei_s, (ctx_s, w_s) = _sorted_by_ego(ei, ctx, w)
    adj = SparseTensor(row=ei_s[1], col=ei_s[0], sparse_sizes=(7, 7))
    assert torch.allclose(
        conv(x, xc, adj, ctx_s, w_s), conv(x, xc, ei_s, ctx_s, w_s), atol=1e-6
    )


@pytest.mark.parametrize("combine", COMBINES)
def test_permutation_equivariance(combine):
    torch.manual_seed(5)
    x, xc, ei, ctx, w = tiny_graph()
    conv = MultiSageConv(5, 6, heads=3, combine=combine, context_channels=3)
    out = conv(x, xc, ei, ctx, w)
    perm = torch.randperm(7)  # new node i is old node perm[i]
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(7)
    cperm = torch.randperm(4)
    cinv = torch.empty_like(cperm)
    cinv[cperm] = torch.arange(4)
    eperm = torch.randperm(ei.size(1))
    ctx_new = torch.where(ctx >= 0, cinv[ctx.clamp(min=0)], ctx)
    out_p = conv(x[perm], xc[cperm], inv[ei][:, eperm], ctx_new[eperm], w[eperm])
    assert torch.allclose(out_p, out[perm], atol=1e-6)


@pytest.mark.parametrize("combine", COMBINES)
@pytest.mark.parametrize("attention", ATTENTIONS)
@pytest.mark.parametrize("share_weights", [True, False])
def test_gradients_reach_every_parameter(combine, attention, share_weights):
    torch.manual_seed(6)
    x, xc, ei, ctx, w = tiny_graph()
    conv = MultiSageConv(
        5,
        6,
        heads=2,
        combine=combine,
        attention=attention,
        context_channels=3,
        share_weights=share_weights,
    )
    out = conv(x, xc, ei, ctx, w)
    (out * torch.randn_like(out)).sum().backward()
    for name, p in conv.named_parameters():
        assert p.grad is not None, name
        assert p.grad.abs().sum() > 0, name


def test_bad_input_errors():
    x, xc, ei, ctx, w = tiny_graph()
    conv = MultiSageConv(5, 6, context_channels=3)
    with pytest.raises(ValueError, match="context_index"):
        conv(x, xc, ei, torch.tensor([0, 1, 4, 0, 0, 0, 0, 0]))  # 4 >= 4
    with pytest.raises(ValueError, match="context_index"):
        conv(x, xc, ei, torch.tensor([0, 1, -2, 0, 0, 0, 0, 0]))
    with pytest.raises(ValueError, match="context_index"):
        conv(x, xc, ei, ctx[:-1])
    with pytest.raises(TypeError, match="int64"):
        conv(x, xc, ei, ctx.int())
    with pytest.raises(TypeError, match="int64"):
        conv(x, xc, ei.int(), ctx)
    with pytest.raises(ValueError, match="in_channels"):
        conv(torch.randn(7, 4), xc, ei, ctx)
    with pytest.raises(ValueError, match="context_channels"):
        conv(x, torch.randn(4, 5), ei, ctx)
    with pytest.raises(TypeError, match="floating"):
        conv(x.long(), xc, ei, ctx)
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, xc, ei + 7, ctx)
    with pytest.raises(ValueError, match="edge_weight"):
        conv(x, xc, ei, ctx, -w)
    with pytest.raises(ValueError, match="edge_weight"):
        conv(x, xc, ei, ctx, w[:-1])
    with pytest.raises(ValueError, match="combine"):
        MultiSageConv(5, 6, combine="add")
    with pytest.raises(ValueError, match="attention"):
        MultiSageConv(5, 6, attention="gat")
    with pytest.raises(ValueError, match="in_channels"):
        MultiSageConv((5, 4), 6)


def test_repr_and_reset():
    conv = MultiSageConv(5, 6, heads=2, combine="trans")
    assert repr(conv) == (
        "MultiSageConv(5, 6, heads=2, combine='trans', attention='three_way', "
        "share_weights=True)"
    )
    assert "share_weights=False" in repr(MultiSageConv(5, 6, share_weights=False))
    before = conv.att.detach().clone()
    conv.reset_parameters()
    assert not torch.equal(before, conv.att)


def test_torch_compile_cpu():
    """Dynamo graph capture (aot_eager backend: cheap, no C++ build)."""
    torch.manual_seed(7)
    x, xc, ei, ctx, w = tiny_graph()
    conv = MultiSageConv(5, 6, heads=2, context_channels=3)
    expected = conv(x, xc, ei, ctx, w)
    compiled = torch.compile(conv, backend="aot_eager")
    out = compiled(x, xc, ei, ctx, w)
    assert torch.allclose(out, expected, atol=1e-5)
    out.sum().backward()
    assert conv.att.grad is not None


@pytest.mark.slow
def test_torch_compile_inductor_cpu():
    """The default inductor backend (builds C++ kernels, ~30 s)."""
    torch.manual_seed(7)
    x, xc, ei, ctx, w = tiny_graph()
    conv = MultiSageConv(5, 6, heads=2, context_channels=3)
    expected = conv(x, xc, ei, ctx, w)
    out = torch.compile(conv)(x, xc, ei, ctx, w)
    assert torch.allclose(out, expected, atol=1e-5)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():  # pragma: no cover - needs a GPU
    x, xc, ei, ctx, w = tiny_graph()
    conv = MultiSageConv(5, 6, heads=3, context_channels=3)
    expected = conv(x, xc, ei, ctx, w)
    dev = torch.device("cuda")
    out = conv.to(dev)(x.to(dev), xc.to(dev), ei.to(dev), ctx.to(dev), w.to(dev))
    assert torch.allclose(out.cpu(), expected, atol=1e-5)


def test_multi_context_sum_of_per_context_convs():
    torch.manual_seed(8)
    x = torch.randn(6, 5)
    xcs = {"venue": torch.randn(3, 4), "keyword": torch.randn(5, 2)}
    eis = {
        "venue": torch.tensor([[1, 2, 3], [0, 0, 1]]),
        "keyword": torch.tensor([[4, 5, 0, 1], [0, 2, 2, 3]]),
    }
    cis = {"venue": torch.tensor([0, 2, -1]), "keyword": torch.tensor([4, 0, 1, 3])}
    conv = MultiContextConv(5, 6, {"venue": 4, "keyword": 2}, heads=2)
    out, att = conv(x, xcs, eis, cis, return_attention_weights=True)
    parts = [conv.convs[c](x, xcs[c], eis[c], cis[c]) for c in ("venue", "keyword")]
    assert torch.allclose(out, F.normalize(parts[0] + parts[1], dim=-1), atol=1e-6)
    assert set(att) == {"venue", "keyword"} and att["keyword"][1].shape == (4, 2)
    # Each context type has its own parameters.
    assert conv.convs["venue"].lin_t.weight is not conv.convs["keyword"].lin_t.weight
    mean = MultiContextConv(5, 6, {"venue": 4, "keyword": 2}, aggr="mean")
    assert mean(x, xcs, eis, cis).shape == (6, 6)
    with pytest.raises(KeyError, match="keyword"):
        conv(x, xcs, {"venue": eis["venue"]}, cis)
    with pytest.raises(ValueError, match="aggr"):
        MultiContextConv(5, 6, {"venue": 4}, aggr="max")
