"""torch_sparse SparseTensor adjacencies and torch_scatter segment reductions
in the layers and models: equal to the edge_index / scatter paths (forward
and gradients, 1e-6)."""

from __future__ import annotations

import copy

import pytest
import torch
import torch_geometric.transforms as T
from test_models import (
    BOARD_PIN,
    PIN,
    make_omnisage,
    multisage_batch,
    omnisage_batch,
)
from test_multisage_conv import ATTENTIONS, COMBINES, tiny_graph

from pyg_multisage.nn import MultiContextConv, MultiSage, MultiSageConv, OmniSageConv
from pyg_multisage.nn.conv import _segment

torch_sparse = pytest.importorskip("torch_sparse")
torch_scatter = pytest.importorskip("torch_scatter")
SparseTensor = torch_sparse.SparseTensor


def csr_order(edge_index: torch.Tensor) -> torch.Tensor:
    """Permutation that sorts edges by (ego, neighbor): SparseTensor order."""
    key = edge_index[1] * (int(edge_index[0].max()) + 1) + edge_index[0]
    return torch.argsort(key, stable=True)


def grads(module: torch.nn.Module, *inputs: torch.Tensor) -> dict:
    out = {n: p.grad.clone() for n, p in module.named_parameters()}
    out.update({f"input{i}": t.grad.clone() for i, t in enumerate(inputs)})
    return out


def assert_close_dicts(a: dict, b: dict, atol: float = 1e-6) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=atol), k


def run_conv(conv, x, xc, adj, ctx, w, upstream):
    """Forward and backward; returns output and every gradient."""
    conv.zero_grad()
    x = x.detach().clone().requires_grad_()
    xc = xc.detach().clone().requires_grad_()
    inputs = [x, xc]
    if w is not None:
        w = w.detach().clone().requires_grad_()
        inputs.append(w)
    if isinstance(adj, tuple):  # (row, col, value-or-None): build it here
        row, col, val = adj
        if val is not None:
            val = val.detach().clone().requires_grad_()
            inputs.append(val)
        adj = SparseTensor(row=row, col=col, value=val, sparse_sizes=(7, 7))
    out = conv(x, xc, adj, ctx, w)
    (out * upstream).sum().backward()
    return out.detach(), grads(conv, *inputs)


@pytest.mark.parametrize("combine", COMBINES)
@pytest.mark.parametrize("attention", ATTENTIONS)
@pytest.mark.parametrize("backend", _segment.BACKENDS)
def test_multisage_conv_sparsetensor_equals_edge_index(combine, attention, backend):
    torch.manual_seed(0)
    x, xc, ei, ctx, w = tiny_graph()
    conv = MultiSageConv(
        5, 6, heads=2, combine=combine, attention=attention, context_channels=3
    )
    upstream = torch.randn(7, 6)
    # Reference: the edge list in its own (unsorted) order, scatter backend.
    with _segment.use_backend("scatter"):
        expected, g_exp = run_conv(conv, x, xc, ei, ctx, w, upstream)
    perm = csr_order(ei)
    ei_s, ctx_s, w_s = ei[:, perm], ctx[perm], w[perm]
    g_exp["input2"] = g_exp["input2"][perm]  # edge-weight gradient, row-major
    with _segment.use_backend(backend):
        # Weights as the SparseTensor's values (ToSparseTensor's layout) ...
        out, g = run_conv(conv, x, xc, (ei_s[1], ei_s[0], w_s), ctx_s, None, upstream)
        assert torch.allclose(out, expected, atol=1e-6)
        assert_close_dicts(g, g_exp)
        # ... or as a separate tensor in row-major order.
        out, g = run_conv(conv, x, xc, (ei_s[1], ei_s[0], None), ctx_s, w_s, upstream)
        assert torch.allclose(out, expected, atol=1e-6)
        assert_close_dicts(g, g_exp)


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_segment_backend_equals_scatter_on_grouped_edge_index(attention):
    """The loaders' case: a plain edge_index already grouped by ego."""
    torch.manual_seed(1)
    x, xc, ei, ctx, w = tiny_graph()
    assert bool((ei[1].diff() >= 0).all())  # grouped by ego
    conv = MultiSageConv(5, 6, heads=3, attention=attention, context_channels=3)
    upstream = torch.randn(7, 6)
    with _segment.use_backend("scatter"):
        expected, g_exp = run_conv(conv, x, xc, ei, ctx, w, upstream)
    with _segment.use_backend("segment_csr"):
        assert _segment.ego_pointer(ei[1], 7) is not None
        out, g = run_conv(conv, x, xc, ei, ctx, w, upstream)
    assert torch.allclose(out, expected, atol=1e-6)
    assert_close_dicts(g, g_exp)


def test_segment_helpers_against_scatter():
    gen = torch.Generator().manual_seed(2)
    dst = torch.tensor([0, 0, 0, 2, 2, 3, 5, 5])  # egos 1 and 4 without edges
    src = torch.randn(dst.numel(), 4, generator=gen)
    with _segment.use_backend("segment_csr"):
        ptr = _segment.ego_pointer(dst, 6)
        assert ptr.tolist() == [0, 3, 3, 5, 6, 6, 8]
        seg = _segment.sum_by_ego(src, dst, 6)
        sm = _segment.edge_softmax(src, dst, ptr, 6)
        assert _segment.degree(dst, ptr, 6).tolist() == [3, 0, 2, 1, 0, 2]
        # An ungrouped index has no pointer: the scatter path is taken.
        assert _segment.ego_pointer(dst.flip(0), 6) is None
    with _segment.use_backend("scatter"):
        assert _segment.ego_pointer(dst, 6) is None
        ref = torch_scatter.segment_csr(src, ptr, reduce="sum")
        sm_ref = _segment.edge_softmax(src, dst, None, 6)
    expected = torch.zeros(6, 4)
    for e, v in enumerate(dst.tolist()):
        expected[v] += src[e]
    assert torch.allclose(seg, expected, atol=1e-6)
    assert torch.allclose(ref, expected, atol=1e-6)
    assert torch.allclose(sm, sm_ref, atol=1e-6)
    with pytest.raises(ValueError, match="name"):
        with _segment.use_backend("csr"):
            pass
    assert _segment.backend() in _segment.BACKENDS


def test_sparsetensor_attention_weights_and_errors():
    x, xc, ei, ctx, w = tiny_graph()
    conv = MultiSageConv(5, 6, heads=2, context_channels=3)
    perm = csr_order(ei)
    ei_s, ctx_s, w_s = ei[:, perm], ctx[perm], w[perm]
    _, (_, alpha) = conv(x, xc, ei, ctx, w, return_attention_weights=True)
    adj = SparseTensor(row=ei_s[1], col=ei_s[0], value=w_s, sparse_sizes=(7, 7))
    _, adj_alpha = conv(x, xc, adj, ctx_s, return_attention_weights=True)
    # As PyG's attention layers: the adjacency with alpha [E, heads] as values.
    assert isinstance(adj_alpha, SparseTensor)
    row, col, value = adj_alpha.coo()
    assert torch.equal(row, ei_s[1]) and torch.equal(col, ei_s[0])
    assert torch.allclose(value, alpha[perm], atol=1e-6)
    with pytest.raises(ValueError, match="given twice"):
        conv(x, xc, adj, ctx_s, w_s)
    with pytest.raises(TypeError, match="1-D floating"):
        conv(x, xc, adj.set_value(ctx_s, layout="coo"), ctx_s)
    with pytest.raises(ValueError, match="shape"):
        conv(x, xc, adj.sparse_resize((7, 8)), ctx_s)
    with pytest.raises(ValueError, match="context_index"):
        conv(x, xc, adj, ctx_s[:-1])


def test_multicontext_conv_sparsetensor():
    torch.manual_seed(3)
    x, xc, ei, ctx, w = tiny_graph()
    conv = MultiContextConv(5, 6, {"venue": 3, "term": 3}, heads=2)
    perm = csr_order(ei)
    adj = SparseTensor(row=ei[1, perm], col=ei[0, perm], sparse_sizes=(7, 7))
    sub = ei[:, :4]  # second context type: a subset of the edges
    sub_adj = SparseTensor(row=sub[1], col=sub[0], sparse_sizes=(7, 7))
    ref = conv(
        x,
        {"venue": xc, "term": xc},
        {"venue": ei, "term": sub},
        {"venue": ctx, "term": ctx[:4]},
        {"venue": w, "term": w[:4]},
    )
    out = conv(
        x,
        {"venue": xc, "term": xc},
        {"venue": adj, "term": sub_adj},
        {"venue": ctx[perm], "term": ctx[:4]},
        {"venue": w[perm], "term": w[:4]},
    )
    assert torch.allclose(out, ref, atol=1e-6)


def omni_graph():
    gen = torch.Generator().manual_seed(1)
    et_pin = ("pin", "ppr_pin", "pin")
    et_board = ("board", "ppr_board", "pin")
    x = {
        "pin": torch.randn(6, 6, generator=gen),
        "board": torch.randn(5, 4, generator=gen),
    }
    ei = {
        et_pin: torch.tensor([[1, 2, 3, 4, 5, 0, 3], [0, 0, 0, 0, 1, 2, 2]]),
        et_board: torch.tensor([[4, 1, 2], [2, 0, 2]]),
    }
    ew = {k: torch.rand(v.size(1), generator=gen) + 0.1 for k, v in ei.items()}
    return x, ei, ew


def test_omnisage_conv_sparsetensor_equals_edge_index():
    torch.manual_seed(0)
    x, ei, ew = omni_graph()
    slots = {et: 3 for et in ei}
    conv = OmniSageConv(
        {"pin": 6, "board": 4}, 8, "pin", slots, hidden_channels=16, heads=2
    )
    upstream = torch.randn(6, 8)

    def run(adj_dict, w_dict):
        conv.zero_grad()
        out = conv(x, adj_dict, w_dict)
        (out * upstream).sum().backward()
        return out.detach(), grads(conv)

    expected, g_exp = run(ei, ew)
    adj, adj_w, w_sorted = {}, {}, {}
    for et, e in ei.items():
        perm = csr_order(e)
        size = (6, x[et[0]].size(0))
        adj[et] = SparseTensor(row=e[1, perm], col=e[0, perm], sparse_sizes=size)
        adj_w[et] = adj[et].set_value(ew[et][perm], layout="coo")
        w_sorted[et] = ew[et][perm]
    for adj_dict, w_dict in ((adj_w, None), (adj, w_sorted)):
        out, g = run(adj_dict, w_dict)
        assert torch.allclose(out, expected, atol=1e-6)
        assert_close_dicts(g, g_exp)
    with pytest.raises(ValueError, match="given twice"):
        conv(x, adj_w, w_sorted)


def test_multisage_model_on_to_sparse_tensor_batch():
    """PyG's ToSparseTensor sorts every edge attribute (context) into the
    adjacency's row-major order and moves edge_weight into its values."""
    torch.manual_seed(0)
    batch = multisage_batch([3, 7, 11, 0])
    model = MultiSage(10, {"venue": 7}, out_channels=8, hidden_channels=(12,), heads=2)
    ref = model(batch)
    sparse = T.ToSparseTensor()(copy.deepcopy(batch))
    store = sparse["paper", "walk_via_venue", "paper"]
    assert "adj_t" in store and "edge_index" not in store
    assert "edge_weight" not in store  # moved into adj_t's values
    out = model(sparse)
    assert torch.allclose(out, ref, atol=1e-6)
    out.sum().backward()
    g = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    ref.sum().backward()
    for n, p in model.named_parameters():
        assert torch.allclose(g[n], p.grad, atol=1e-6), n


def test_omnisage_model_on_to_sparse_tensor_batch():
    model = make_omnisage()
    batch = omnisage_batch()
    ref = model(batch)
    sparse = T.ToSparseTensor()(copy.deepcopy(batch))
    assert "adj_t" in sparse[PIN] and "adj_t" in sparse[BOARD_PIN]
    assert torch.allclose(model(sparse), ref, atol=1e-6)
