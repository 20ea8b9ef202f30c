r"""Graphs and features on disk, memory-mapped: for graphs that outgrow RAM
and for processes (or machines) that share one saved graph.

Three pieces, core dependencies only:

- :meth:`HeteroCSR.save <pyg_multisage.graph.HeteroCSR.save>` /
  :meth:`HeteroCSR.load <pyg_multisage.graph.HeteroCSR.load>`: the CSR view
  the kernels read, as ``.npy`` files; loaded read-only memory-mapped, the
  kernels run on it unchanged.
- :func:`build_csr_from_shards`: the same directory written from edge files (``.npy``
  or Parquet shards) in two streaming passes, for graphs whose edge list
  does not fit in memory.
- :class:`MmapFeatureStore` / :class:`MmapGraphStore` (from
  :func:`save_data` and :func:`open_stores`): a PyG
  ``(FeatureStore, GraphStore)`` pair accepted by every sampler and loader of
  :mod:`pyg_multisage.sampler` and :mod:`pyg_multisage.loader`; walk and PPR
  samplers take the memory-mapped CSR from the graph store directly.

Layout of a directory written by :func:`save_data` (``save_dir``)::

    save_dir/
      graph/                 a saved HeteroCSR (also what build_csr_from_shards writes)
        manifest.json        format "pyg_multisage.HeteroCSR", version, meta:
                             node_types [[type, count], ...] in order,
                             edge_types [{edge_type, prefix "e<i>", num_edges,
                             weighted}], per-file dtype/shape/blake2b, and the
                             graph's fingerprint
        e<i>.indptr.npy      int64 [num_src + 1]
        e<i>.indices.npy     int32 (ids < 2**31 - 1) or int64 [num_edges]
        e<i>.weight.npy      float64 [num_edges], weighted relations only
      tables/                importance-neighbor edge lists (neighbor -> ego),
        manifest.json        format "pyg_multisage.EdgeTables", meta:
                             edge_types [{edge_type, prefix, size, ego_ptr}]
        e<i>.row.npy         int64 [E] neighbor ids, in stored order
        e<i>.col.npy         int64 [E] ego ids
        e<i>.ptr.npy         int64 [num_egos + 1] per-ego offsets, only when
                             the table is grouped by ego in importance order
                             (ego_ptr true): samplers gather from the maps
      features/              format "pyg_multisage.FeatureStore", meta:
        manifest.json        tensors [{group (node type or edge type), attr,
                             array "t<i>"}]
        t<i>.npy             one tensor: node features (x, y, masks; one row
                             per node) or edge attributes (edge_weight,
                             context; aligned with tables/, or with graph/'s
                             CSR order for graph relations)

Every directory is written under a temporary sibling name and renamed when
complete, so a failed write leaves nothing behind. Reading checks each file
against the manifest (present, dtype, shape, exact size) and names the file
that is missing or truncated; ``verify=True`` also re-hashes the files. The
fingerprint identifies a graph's content: tables computed from a graph can
record it and be checked against the graph they are attached to
(``HeteroCSR.load(path, fingerprint=...)``).
"""

from typing import Any

from pyg_multisage.storage.builder import build_csr_from_shards, iter_shard

__all__ = [
    "MmapFeatureStore",
    "MmapGraphStore",
    "build_csr_from_shards",
    "ego_order_ptr",
    "iter_shard",
    "open_stores",
    "save_data",
    "save_features",
]


def __getattr__(name: str) -> Any:
    # The PyG stores load on first use: building and loading graphs (the
    # out-of-core path, and every precompute worker) then never imports PyG.
    if name in __all__:
        from pyg_multisage.storage import stores

        return getattr(stores, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
