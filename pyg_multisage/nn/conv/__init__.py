"""Convolution layers: :class:`MultiSageConv`, :class:`MultiContextConv`,
:class:`OmniSageConv`."""

from pyg_multisage.nn.conv.multi_context_conv import MultiContextConv
from pyg_multisage.nn.conv.multisage_conv import MultiSageConv
from pyg_multisage.nn.conv.omnisage_conv import OmniSageConv

__all__ = ["MultiSageConv", "MultiContextConv", "OmniSageConv"]
