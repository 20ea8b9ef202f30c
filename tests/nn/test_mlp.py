"""The one MLP builder (pyg_multisage.nn.mlp)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pyg_multisage.nn.mlp import mlp


def test_layers_and_parameters_match_a_hand_built_sequential():
    torch.manual_seed(0)
    got = mlp([5, 7, 3])
    torch.manual_seed(0)
    ref = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 3))
    assert [type(m) for m in got] == [nn.Linear, nn.ReLU, nn.Linear]
    # Same creation order under one seed: same parameters, same state keys.
    assert got.state_dict().keys() == ref.state_dict().keys()
    for a, b in zip(got.state_dict().values(), ref.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    x = torch.randn(4, 5)
    assert torch.equal(got(x), ref(x))


def test_act_last_and_deeper_stacks():
    block = mlp([4, 6], act_last=True)
    assert [type(m) for m in block] == [nn.Linear, nn.ReLU]
    assert (block(torch.randn(10, 4)) >= 0).all()
    deep = mlp([4, 8, 8, 8, 2])
    kinds = [type(m) for m in deep]
    assert kinds == [nn.Linear, nn.ReLU] * 3 + [nn.Linear]
    assert [m.out_features for m in deep if isinstance(m, nn.Linear)] == [8, 8, 8, 2]


def test_single_size_is_identity():
    assert isinstance(mlp([4]), nn.Identity)
    assert isinstance(mlp([4], act_last=True), nn.Identity)


@pytest.mark.parametrize(
    "channels, error, match",
    [
        ([], ValueError, "at least the input size"),
        ([4, 0], ValueError, r"channels\[1\] must be >= 1"),
        ([4, 2.5], TypeError, r"channels\[1\] must be an int"),
        (4, TypeError, "sequence of ints"),
        ("44", TypeError, "sequence of ints"),
    ],
)
def test_bad_channels(channels, error, match):
    with pytest.raises(error, match=match):
        mlp(channels)
