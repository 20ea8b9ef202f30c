"""Models: :class:`MultiSage`, :class:`OmniSage` and the baselines of the
papers' tables (:class:`TextEncoder`, :class:`PinSageEncoder`,
:class:`GATEncoder`, :class:`HANEncoder`), the retrieval wrappers of the main
job (:class:`Retriever`, :class:`FeatureSkip`, :class:`SingleTypeEncoder`)
and the one path that embeds every node (:func:`embed`)."""

from pyg_multisage.nn.models.embedding import embed
from pyg_multisage.nn.models.gat import GATEncoder
from pyg_multisage.nn.models.han import HANEncoder
from pyg_multisage.nn.models.multisage import MultiSage
from pyg_multisage.nn.models.omnisage import OmniSage
from pyg_multisage.nn.models.pinsage import PinSageEncoder
from pyg_multisage.nn.models.retriever import (
    FeatureSkip,
    Retriever,
    SingleTypeEncoder,
)
from pyg_multisage.nn.models.text_encoder import TextEncoder

__all__ = [
    "MultiSage",
    "OmniSage",
    "TextEncoder",
    "PinSageEncoder",
    "GATEncoder",
    "HANEncoder",
    "Retriever",
    "FeatureSkip",
    "SingleTypeEncoder",
    "embed",
]
