"""pyg_multisage: MultiSage and OmniSage for PyTorch Geometric."""

from pyg_multisage.graph import HeteroCSR

__version__ = "0.1.0"

__all__ = ["HeteroCSR", "__version__"]
