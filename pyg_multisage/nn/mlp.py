"""The one MLP builder of the package: ``Linear → ReLU → … → Linear``."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from pyg_multisage._checks import check_int


def mlp(channels: Sequence[int], act_last: bool = False) -> nn.Module:
    r"""A multi-layer perceptron
    :math:`\mathbf{W}_L \, \mathrm{ReLU}(\cdots \mathrm{ReLU}(\mathbf{W}_1
    \mathbf{x} + \mathbf{b}_1) \cdots) + \mathbf{b}_L` as a
    :class:`torch.nn.Sequential` of :class:`~torch.nn.Linear` and
    :class:`~torch.nn.ReLU` modules.

    Every MLP of the package is made here: the feature networks of MultiSage
    Eq. 4, OmniSage's projections and head (§3.2) and feature encoders
    :math:`g_x` (§3.3.2, A.3.2: ReLU, no normalization), and the baselines'
    dense layers. The linear layers are created first to last, so a seeded
    model initializes the same way whatever builds it, and the state-dict
    keys are the plain indices of the sequence (``0.weight``, ``2.weight``,
    ...).

    Args:
        channels (Sequence[int]): Input size followed by the output size of
            every linear layer, e.g. ``[300, 256, 128]`` for two layers.
            A single entry (no layer) gives :class:`~torch.nn.Identity`.
        act_last (bool, optional): Put a ReLU after the last linear layer too
            (a hidden block such as the first :math:`K-1` layers of Eq. 4).
            (default: :obj:`False`)

    Example::

        >>> mlp([16, 32, 8])
        Sequential(
          (0): Linear(in_features=16, out_features=32, bias=True)
          (1): ReLU()
          (2): Linear(in_features=32, out_features=8, bias=True)
        )
    """
    if isinstance(channels, (str, bytes)) or not isinstance(channels, Sequence):
        raise TypeError(
            f"channels must be a sequence of ints, got {type(channels).__name__}"
        )
    if len(channels) == 0:
        raise ValueError("channels must hold at least the input size, got []")
    sizes = [check_int(c, f"channels[{i}]", 1) for i, c in enumerate(channels)]
    if len(sizes) == 1:
        return nn.Identity()
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if act_last or i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def encode_rows(module: nn.Module, x: Tensor, index: Tensor) -> Tensor:
    """``module(x[index])`` with each distinct row of :obj:`x` encoded once:
    for row-wise modules (an :func:`mlp`) over rows that repeat, such as
    the features of neighbors shared by many egos of a batch."""
    read, row = torch.unique(index, return_inverse=True)
    return module(x[read])[row]
