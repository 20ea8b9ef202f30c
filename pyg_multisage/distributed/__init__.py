"""Beyond one process: Ray-sharded precompute and batch inference,
partitioned walks over Ray actors, data-parallel training on Ray Train with
negatives gathered across workers, and nearest-neighbor retrieval.

Nothing here imports Ray, faiss or pyarrow until a function needs it; they
come with the extras ``[ray]``, ``[ann]`` and ``[parquet]``, and a function
that needs a missing one says how to install it.
"""

from pyg_multisage.distributed.inference import embed_nodes, read_embedding_folder
from pyg_multisage.distributed.precompute import (
    TableSpec,
    attach_tables,
    precompute,
    read_tables,
)

__all__ = [
    "TableSpec",
    "attach_tables",
    "embed_nodes",
    "precompute",
    "read_embedding_folder",
    "read_tables",
]
