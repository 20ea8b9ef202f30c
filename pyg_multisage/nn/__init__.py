"""Neural network layers and models of MultiSage and OmniSage."""

from pyg_multisage.nn.conv import MultiContextConv, MultiSageConv, OmniSageConv
from pyg_multisage.nn.models import MultiSage, OmniSage
from pyg_multisage.nn.text import HashedTextEmbedding

__all__ = [
    "MultiSageConv",
    "MultiContextConv",
    "OmniSageConv",
    "MultiSage",
    "OmniSage",
    "HashedTextEmbedding",
]
