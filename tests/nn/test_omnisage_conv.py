"""OmniSageConv: the transformer aggregator of OmniSage §3.2 / A.3.1."""

from __future__ import annotations

import pytest
import torch

from pyg_multisage.nn import OmniSageConv
from pyg_multisage.nn.conv.omnisage_conv import order_slots

PIN = ("pin", "ppr_pin", "pin")
BOARD = ("board", "ppr_board", "pin")


def make_conv(**kwargs):
    torch.manual_seed(0)
    kw = dict(hidden_channels=16, heads=2, mlp_channels=32)
    kw.update(kwargs)
    return OmniSageConv({"pin": 6, "board": 4}, 8, "pin", {PIN: 3, BOARD: 2}, **kw)


def graph():
    gen = torch.Generator().manual_seed(1)
    x = {
        "pin": torch.randn(6, 6, generator=gen),
        "board": torch.randn(5, 4, generator=gen),
    }
    ei = {
        PIN: torch.tensor([[1, 2, 3, 4, 5, 0], [0, 0, 0, 0, 1, 2]]),
        BOARD: torch.tensor([[0, 1, 2], [0, 2, 2]]),
    }
    ew = {PIN: torch.tensor([1.0, 3.0, 2.0, 5.0, 1.0, 4.0]), BOARD: torch.rand(3)}
    return x, ei, ew


def test_shapes_and_l2_norm():
    conv = make_conv()
    x, ei, ew = graph()
    out = conv(x, ei, ew)
    assert out.shape == (6, 8)
    assert torch.allclose(out.norm(dim=-1), torch.ones(6), atol=1e-6)
    assert conv(x, ei, ew, num_egos=3).shape == (3, 8)
    raw = make_conv(normalize=False)(x, ei, ew)
    assert not torch.allclose(raw.norm(dim=-1), torch.ones(6))
    assert conv.seq_len == 2 + 3 + 2
    assert "ego_type='pin'" in repr(conv)


def test_paper_defaults():
    conv = OmniSageConv({"pin": 4}, 8, "pin", {PIN: 2})
    layer = conv.encoder.layers[0]
    assert len(conv.encoder.layers) == 1
    assert layer.self_attn.num_heads == 12
    assert layer.self_attn.embed_dim == 768
    assert layer.linear1.out_features == 3072


def test_order_slots_by_weight_then_edge_order():
    ei = torch.tensor([[10, 11, 12, 13, 14, 15], [1, 0, 1, 1, 0, 1]])
    w = torch.tensor([1.0, 2.0, 3.0, 1.0, 2.0, 0.5])
    eid, ego, rank = order_slots(ei, w, num_egos=2, num_slots=3)
    # ego 0: edges 1, 4 (tie -> edge order); ego 1: 2 (3.0), 0 (1.0), 3 (1.0), 5 cut
    assert eid.tolist() == [1, 4, 2, 0, 3]
    assert ego.tolist() == [0, 0, 1, 1, 1]
    assert rank.tolist() == [0, 1, 0, 1, 2]
    eid, _, rank = order_slots(ei, None, num_egos=2, num_slots=1)
    assert eid.tolist() == [1, 0] and rank.tolist() == [0, 0]


def test_tokens_follow_importance_and_mask_empty_slots():
    conv = make_conv()
    x, ei, ew = graph()
    with torch.no_grad():
        seq, mask = conv.tokens(x, ei, ew)
        # Ego 0: pin neighbors by weight 4 (5.0), 2 (3.0), 3 (2.0); 1 is cut.
        for rank, u in enumerate([4, 2, 3]):
            w = torch.tensor([[5.0, 3.0, 2.0][rank]])
            token = (
                conv.proj["pin"](x["pin"][u])
                + conv.score(torch.log1p(w))
                + conv.slot_emb["pin__ppr_pin__pin"].weight[rank]
            )
            assert torch.allclose(seq[0, 2 + rank], token, atol=1e-6)
        # The CLS token starts from the ego (ego_cls=True, the default).
        ego = conv.proj["pin"](x["pin"])
        assert torch.allclose(seq[:, 0], conv.cls + ego, atol=1e-6)
        assert torch.allclose(seq[:, 1], ego + conv.self_emb, atol=1e-6)
        plain = make_conv(ego_cls=False)
        assert torch.allclose(plain.tokens(x, ei, ew)[0][:, 0], plain.cls.expand(6, -1))
    expected = torch.ones(6, 7, dtype=torch.bool)
    expected[:, :2] = False
    expected[0, 2:6] = False  # 3 pin slots, 1 board slot
    expected[1, 2] = False
    expected[2, [2, 5, 6]] = False
    assert torch.equal(mask, expected)


def test_padding_does_not_change_outputs():
    conv = make_conv().eval()
    x, ei, ew = graph()
    with torch.no_grad():
        seq, mask = conv.tokens(x, ei, ew)
        ref = conv.encoder(seq, src_key_padding_mask=mask)[:, 0]
        garbage = torch.where(mask.unsqueeze(-1), 100 * torch.randn_like(seq), seq)
        out = conv.encoder(garbage, src_key_padding_mask=mask)[:, 0]
    assert torch.allclose(ref, out, atol=1e-5)


def test_output_independent_of_other_egos_and_cut_neighbors():
    conv = make_conv().eval()
    x, ei, ew = graph()
    full = conv(x, ei, ew)
    # Only ego 1's edges: its embedding is unchanged (padding is inert).
    only1 = {et: e[:, e[1] == 1] for et, e in ei.items()}
    w1 = {et: ew[et][ei[et][1] == 1] for et in ei}
    assert torch.allclose(conv(x, only1, w1)[1], full[1], atol=1e-5)
    # Neighbor 1 of ego 0 has the lowest weight and falls beyond 3 slots.
    x2 = {k: v.clone() for k, v in x.items()}
    x2["pin"][1] += 10.0
    assert torch.allclose(conv(x2, ei, ew)[0], full[0], atol=1e-5)
    # Edge order does not matter, only the scores do.
    perm = torch.randperm(6)
    ei_p = {**ei, PIN: ei[PIN][:, perm]}
    ew_p = {**ew, PIN: ew[PIN][perm]}
    assert torch.allclose(conv(x, ei_p, ew_p), full, atol=1e-5)
    # Changing which neighbor is most important changes the embedding.
    ew_s = {**ew, PIN: torch.tensor([1.0, 3.0, 9.0, 5.0, 1.0, 4.0])}
    assert not torch.allclose(conv(x, ei, ew_s)[0], full[0], atol=1e-4)


def test_gradients_reach_every_parameter():
    conv = make_conv()
    x, ei, ew = graph()
    out = conv(x, ei, ew)
    (out * torch.randn_like(out)).sum().backward()
    for name, p in conv.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_bad_input():
    conv = make_conv()
    x, ei, ew = graph()
    with pytest.raises(ValueError, match="in_channels"):
        conv(dict(x, pin=torch.randn(6, 5)), ei, ew)
    with pytest.raises(KeyError, match="board"):
        conv({"pin": x["pin"]}, ei, ew)
    with pytest.raises(ValueError, match="egos"):
        conv(x, ei, ew, num_egos=1)
    with pytest.raises(ValueError, match="neighbor id 7"):
        conv(x, {**ei, BOARD: torch.tensor([[7], [0]])}, None)
    with pytest.raises(TypeError, match="int64"):
        conv(x, {**ei, PIN: ei[PIN].int()}, ew)
    with pytest.raises(ValueError, match="non-negative"):
        conv(x, ei, {**ew, PIN: -ew[PIN]})
    with pytest.raises(ValueError, match="point to the ego"):
        OmniSageConv({"pin": 6}, 8, "pin", {("pin", "r", "board"): 2})
    with pytest.raises(ValueError, match="divisible"):
        OmniSageConv({"pin": 6}, 8, "pin", {PIN: 2}, hidden_channels=10, heads=3)


def test_slots_for_absent_edge_types_are_refused():
    conv = make_conv()
    x, ei, ew = graph()
    with pytest.raises(ValueError, match=r"lacks the edge types \[\('board'"):
        conv(x, {PIN: ei[PIN]}, {PIN: ew[PIN]})
    # present but empty is fine and equals "no board neighbors"
    empty = {**ei, BOARD: torch.empty(2, 0, dtype=torch.long)}
    assert torch.isfinite(conv(x, empty, {PIN: ew[PIN]})).all()
    meta = (["pin", "board"], [PIN, BOARD])
    OmniSageConv({"pin": 6, "board": 4}, 8, "pin", {PIN: 3, BOARD: 2}, metadata=meta)
    typo = ("board", "ppr_bord", "pin")
    with pytest.raises(ValueError, match=r"ppr_bord.*metadata lacks"):
        OmniSageConv({"pin": 6, "board": 4}, 8, "pin", {typo: 2}, metadata=meta)


def _mean_cosine(z):
    c = z @ z.T
    return c[~torch.eye(len(z), dtype=torch.bool)].mean().item()


def test_default_embedder_does_not_start_collapsed():
    # Random, nearly orthogonal inputs: the literal stack (a constant CLS, 2-layer
    # ReLU projections and head) maps them into one direction at
    # initialization; the defaults keep them apart.
    gen = torch.Generator().manual_seed(3)
    x = {
        "pin": torch.randn(200, 6, generator=gen),
        "board": torch.randn(5, 4, generator=gen),
    }
    empty = {
        PIN: torch.empty(2, 0, dtype=torch.long),
        BOARD: torch.empty(2, 0, dtype=torch.long),
    }
    with torch.no_grad():
        new = _mean_cosine(make_conv(hidden_channels=64, heads=4)(x, empty))
        old = _mean_cosine(
            make_conv(
                hidden_channels=64, heads=4, proj_layers=2, head_layers=2, ego_cls=False
            )(x, empty)
        )
    assert old > 0.8 and new < 0.5
    with pytest.raises(ValueError, match="proj_layers"):
        make_conv(proj_layers=0)


@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("train", [False, True])
def test_cls_output_equals_full_encoder_forward_and_gradients(num_layers, train):
    # The last layer runs for the CLS query only; the reference runs the
    # whole torch.nn.TransformerEncoder and reads its CLS row.
    conv = make_conv(num_layers=num_layers, dropout=0.0).train(train)
    x, ei, ew = graph()
    seq, mask = conv.tokens(x, ei, ew)
    seq = (seq + 0.3 * torch.randn_like(seq)).detach().requires_grad_()
    ref = conv.encoder(seq, src_key_padding_mask=mask)[:, 0]
    out = conv.cls_output(seq, mask)
    assert torch.allclose(out, ref, atol=1e-6)
    weight = torch.randn_like(ref)
    ref_grads = torch.autograd.grad(
        (ref * weight).sum(), [seq, *conv.parameters()], allow_unused=True
    )
    grads = torch.autograd.grad(
        (out * weight).sum(), [seq, *conv.parameters()], allow_unused=True
    )
    for a, b in zip(ref_grads, grads, strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            assert torch.allclose(a, b, atol=1e-6)


def test_cls_output_applies_dropout_in_training_only():
    conv = make_conv(dropout=0.5)
    x, ei, ew = graph()
    with torch.no_grad():
        seq, mask = conv.tokens(x, ei, ew)
        conv.eval()
        ref = conv.encoder(seq, src_key_padding_mask=mask)[:, 0]
        assert torch.allclose(conv.cls_output(seq, mask), ref, atol=1e-6)
        conv.train()
        torch.manual_seed(3)
        a = conv.cls_output(seq, mask)
        assert not torch.allclose(a, ref, atol=1e-3)


def test_update_gate_starts_at_the_ego_alone_and_opens_to_the_ungated_layer():
    """With ``update_gate`` the CLS row's attention update is scaled by a
    per-channel gate that starts at zero: at initialization the embedding
    is ``head(x + FFN(norm2(x)))`` of the CLS input ``x = c + g(x_u)``
    (computed here by hand), whatever the neighbors; with the gate at one it
    is the ungated layer's output with the same weights."""
    gated = make_conv(update_gate=True).eval()
    x, ei, ew = graph()
    assert torch.equal(gated.update_gate, torch.zeros(16))
    layer = gated.encoder.layers[0]
    with torch.no_grad():
        cls_in = gated.cls + gated.proj["pin"](x["pin"])
        ref = cls_in + layer.linear2(torch.relu(layer.linear1(layer.norm2(cls_in))))
        ref = torch.nn.functional.normalize(gated.head(ref), dim=-1)
        out = gated(x, ei, ew)
        empty = {et: torch.empty(2, 0, dtype=torch.long) for et in ei}
        alone = gated(x, empty)
    assert torch.allclose(out, ref, atol=1e-6)
    assert torch.allclose(alone, out, atol=1e-6)

    ungated = make_conv().eval()
    state = {k: v for k, v in gated.state_dict().items() if k != "update_gate"}
    ungated.load_state_dict(state)
    with torch.no_grad():
        gated.update_gate.fill_(1.0)
        assert torch.allclose(gated(x, ei, ew), ungated(x, ei, ew), atol=1e-6)
        # Half open: the update enters at half its size.
        gated.update_gate.fill_(0.5)
        half = gated(x, ei, ew)
    assert not torch.allclose(half, ungated(x, ei, ew), atol=1e-4)
    assert not torch.allclose(half, out, atol=1e-4)


def test_update_gate_learns_to_open():
    """At zero the gate still gets a gradient (through the update it
    scales), so one optimizer step opens it and the neighbors then reach
    the embedding; the attention weights get theirs from that step on."""
    conv = make_conv(update_gate=True)
    x, ei, ew = graph()
    target = torch.randn(6, 8)
    loss = ((conv(x, ei, ew) - target) ** 2).sum()
    loss.backward()
    assert conv.update_gate.grad.abs().sum() > 0
    assert conv.encoder.layers[0].self_attn.in_proj_weight.grad.abs().sum() == 0
    opt = torch.optim.SGD(conv.parameters(), lr=0.1)
    opt.step()
    opt.zero_grad()
    assert conv.update_gate.abs().sum() > 0
    ((conv(x, ei, ew) - target) ** 2).sum().backward()
    assert conv.encoder.layers[0].self_attn.in_proj_weight.grad.abs().sum() > 0
    # A gated embedder without the gate's key in its checkpoint is an error.
    with pytest.raises(RuntimeError, match="update_gate"):
        make_conv(update_gate=True).load_state_dict(make_conv().state_dict())
