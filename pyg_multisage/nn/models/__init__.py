"""Models: :class:`MultiSage` and :class:`OmniSage`."""

from pyg_multisage.nn.models.multisage import MultiSage
from pyg_multisage.nn.models.omnisage import OmniSage

__all__ = ["MultiSage", "OmniSage"]
