"""Neural network layers and models of MultiSage and OmniSage and the
baselines of the papers' tables. The package's one MLP builder is
:func:`pyg_multisage.nn.mlp.mlp`."""

from pyg_multisage.nn.conv import MultiContextConv, MultiSageConv, OmniSageConv
from pyg_multisage.nn.models import (
    GATEncoder,
    HANEncoder,
    MultiSage,
    OmniSage,
    PinSageEncoder,
    Retriever,
    SingleTypeEncoder,
    TextEncoder,
    embed,
)
from pyg_multisage.nn.text import HashedTextEmbedding

__all__ = [
    "MultiSageConv",
    "MultiContextConv",
    "OmniSageConv",
    "MultiSage",
    "OmniSage",
    "TextEncoder",
    "PinSageEncoder",
    "GATEncoder",
    "HANEncoder",
    "Retriever",
    "SingleTypeEncoder",
    "embed",
    "HashedTextEmbedding",
]
