"""A compressed-sparse-row view of a (heterogeneous) graph for the samplers.

:class:`HeteroCSR` is built once from a PyG :class:`~torch_geometric.data.HeteroData`
(or a homogeneous :class:`~torch_geometric.data.Data`) and holds, for every edge
type ``(src, rel, dst)``, the out-adjacency of the ``src`` nodes as plain numpy
arrays: row ``v`` lists the ``dst`` nodes that ``v`` points to. Every kernel in
:mod:`pyg_multisage.sampling` reads these arrays and nothing else.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np
from torch import Tensor

from pyg_multisage._arraydir import (
    ArrayDirError,
    AtomicDir,
    read_array_dir,
    write_manifest,
)
from pyg_multisage._checks import check_edge_index
from pyg_multisage.convention import EdgeType, is_importance_edge_type

if TYPE_CHECKING:  # PyG is imported where data is converted: the out-of-core
    # path (load, kernels) runs without it, which saves ~150 MB per process
    from torch_geometric.data import Data, HeteroData

T = TypeVar("T")

#: Node type used for a homogeneous :class:`~torch_geometric.data.Data`.
DEFAULT_NODE_TYPE = "node"
#: Manifest format of the folders of :meth:`HeteroCSR.derived`.
DERIVED_FORMAT = "pyg_multisage.derived"
#: Edge type used for a homogeneous :class:`~torch_geometric.data.Data`.
DEFAULT_EDGE_TYPE: EdgeType = ("node", "to", "node")


@dataclass(frozen=True)
class CSR:
    """Out-adjacency of one edge type in compressed sparse row form.

    Attributes:
        indptr (np.ndarray): ``int64 [num_src + 1]``; row ``v`` is
            ``indices[indptr[v]:indptr[v + 1]]``.
        indices (np.ndarray): ``int64 [E]`` destination node ids.
        weight (np.ndarray, optional): ``float64 [E]`` non-negative edge
            weights aligned with :obj:`indices`, or :obj:`None`.
        num_dst (int): number of destination nodes.
    """

    indptr: np.ndarray
    indices: np.ndarray
    weight: np.ndarray | None
    num_dst: int

    @property
    def num_src(self) -> int:
        return len(self.indptr) - 1

    @property
    def num_edges(self) -> int:
        return len(self.indices)

    def degree(self) -> np.ndarray:
        """Out-degree of every source node, ``int64 [num_src]``."""
        return np.diff(self.indptr)

    def transpose(self) -> CSR:
        """The reverse relation: row ``u`` lists the sources pointing to ``u``."""
        src = np.repeat(np.arange(self.num_src, dtype=np.int64), self.degree())
        return build_csr(self.indices, src, self.num_dst, self.num_src, self.weight)


def build_csr(
    src: np.ndarray,
    dst: np.ndarray,
    num_src: int,
    num_dst: int,
    weight: np.ndarray | None = None,
) -> CSR:
    """The CSR of the edges ``src[e] -> dst[e]`` (ids already checked to lie
    in range): ``int64`` arrays, rows keep the input order of their edges
    (a stable sort by source), :obj:`weight` reordered alike as ``float64``.

    The one CSR construction of the package. To map a per-edge result of the
    CSR back to the input order, build the CSR of the edge ids
    (``dst = np.arange(E)``): its ``indices`` are then the permutation.
    """
    src = np.asarray(src)
    order = np.argsort(src, kind="stable")
    counts = np.bincount(src, minlength=num_src)
    indptr = np.zeros(num_src + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    indices = np.ascontiguousarray(np.asarray(dst)[order], dtype=np.int64)
    w = None if weight is None else np.ascontiguousarray(weight[order], np.float64)
    return CSR(indptr, indices, w, int(num_dst))


def _as_edge_array(
    edge_index: Tensor | np.ndarray, edge_type: EdgeType, num_src: int, num_dst: int
) -> np.ndarray:
    """The checked ``int64 [2, E]`` array of one relation's edges."""
    if isinstance(edge_index, Tensor):
        edge_index = edge_index.detach().cpu()
    elif not isinstance(edge_index, np.ndarray):
        edge_index = np.asarray(edge_index)
    check_edge_index(edge_index, f"edge_index of {edge_type}", num_src, num_dst)
    if isinstance(edge_index, Tensor):
        edge_index = edge_index.numpy()
    return edge_index.astype(np.int64, copy=False)


class HeteroCSR:
    r"""Per-relation CSR arrays and node counts of a heterogeneous graph.

    Args:
        edge_index_dict (Mapping[EdgeType, Tensor]): ``[2, E]`` integer edge
            indices per edge type ``(src, rel, dst)``.
        num_nodes_dict (Mapping[str, int]): number of nodes of every type.
        edge_weight_dict (Mapping[EdgeType, Tensor], optional): non-negative
            ``[E]`` weights for some edge types; walks on a weighted relation
            step proportionally to weight. (default: :obj:`None`)
        undirected (bool, optional): if :obj:`True`, add the reverse of every
            relation: ``(dst, 'rev_' + rel, src)`` between different node types
            (unless that reverse is already present), or the symmetric closure
            of a relation between nodes of one type, as PyG's
            :class:`~torch_geometric.transforms.ToUndirected` does.
            (default: :obj:`False`)

    Memory: ``indptr`` and ``indices`` (plus ``weight``) per relation, i.e. at
    most the size of the ``edge_index`` they came from, twice that with
    :obj:`undirected=True`.
    """

    def __init__(
        self,
        edge_index_dict: Mapping[EdgeType, Tensor | np.ndarray],
        num_nodes_dict: Mapping[str, int],
        edge_weight_dict: Mapping[EdgeType, Tensor | np.ndarray] | None = None,
        undirected: bool = False,
    ) -> None:
        self.num_nodes: dict[str, int] = {}
        for node_type, n in num_nodes_dict.items():
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
                raise ValueError(
                    f"number of '{node_type}' nodes must be a non-negative int, "
                    f"got {n!r}"
                )
            self.num_nodes[node_type] = int(n)
        edge_weight_dict = dict(edge_weight_dict or {})
        for et in edge_weight_dict:
            if et not in edge_index_dict:
                raise ValueError(f"edge_weight_dict names unknown edge type {et}")

        self._csr: dict[EdgeType, CSR] = {}
        self._cache: dict[object, object] = {}
        for edge_type, edge_index in edge_index_dict.items():
            edge_type = tuple(edge_type)
            if len(edge_type) != 3:
                raise ValueError(f"edge type must be (src, rel, dst), got {edge_type}")
            src_t, _, dst_t = edge_type
            for t in (src_t, dst_t):
                if t not in self.num_nodes:
                    raise ValueError(
                        f"edge type {edge_type} names node type '{t}', which has "
                        f"no node count (known: {sorted(self.num_nodes)})"
                    )
            n_src, n_dst = self.num_nodes[src_t], self.num_nodes[dst_t]
            ei = _as_edge_array(edge_index, edge_type, n_src, n_dst)
            w = edge_weight_dict.get(edge_type)
            if w is not None:
                w = _as_weight_array(w, ei.shape[1], edge_type)
            src, dst = ei[0], ei[1]
            if undirected and src_t == dst_t:
                src, dst = np.concatenate([src, dst]), np.concatenate([dst, src])
                if w is not None:
                    w = np.concatenate([w, w])
                src, dst, w = _coalesce(src, dst, w, n_dst)
            self._csr[edge_type] = build_csr(src, dst, n_src, n_dst, w)

        if undirected:
            for edge_type in list(self._csr):
                src_t, rel, dst_t = edge_type
                if src_t == dst_t or self._find(dst_t, src_t) is not None:
                    continue
                rev = (dst_t, f"rev_{rel}", src_t)
                self._csr[rev] = self._csr[edge_type].transpose()

    @classmethod
    def from_data(
        cls,
        data: HeteroData | Data,
        *,
        undirected: bool = False,
        edge_weight_attr: str = "edge_weight",
        edge_types: Iterable[EdgeType] | None = None,
        include_importance: bool = False,
    ) -> HeteroCSR:
        """Builds the view from PyG data.

        A homogeneous :class:`Data` becomes node type ``'node'`` and edge type
        ``('node', 'to', 'node')``. Edge attribute :obj:`edge_weight_attr`, when
        present and one-dimensional, becomes the relation's weight.
        :obj:`edge_types` restricts the view to some edge types; otherwise
        every edge type is taken except importance-neighbor edges written by
        our transforms (:func:`is_importance_edge_type`), unless
        :obj:`include_importance` is set: they are samples *of* the graph,
        not its structure.
        """
        from torch_geometric.data import Data, HeteroData

        if isinstance(data, HeteroData):
            num_nodes = {t: data[t].num_nodes for t in data.node_types}
            for t, n in num_nodes.items():
                if n is None:
                    raise ValueError(f"node type '{t}' has no num_nodes or features")
            if edge_types is None:
                chosen = [
                    et
                    for et in data.edge_types
                    if include_importance or not is_importance_edge_type(data, et)
                ]
            else:
                chosen = list(edge_types)
            eis, ews = {}, {}
            for et in chosen:
                et = tuple(et)
                if et not in data.edge_types:
                    raise ValueError(
                        f"edge type {et} is not in the data (has {data.edge_types})"
                    )
                store = data[et]
                eis[et] = store.edge_index
                w = getattr(store, edge_weight_attr, None)
                if isinstance(w, Tensor) and w.dim() == 1:
                    ews[et] = w
            return cls(eis, num_nodes, ews, undirected=undirected)
        if isinstance(data, Data):
            if data.edge_index is None:
                raise ValueError("data has no edge_index")
            n = data.num_nodes
            w = getattr(data, edge_weight_attr, None)
            ews = (
                {DEFAULT_EDGE_TYPE: w} if isinstance(w, Tensor) and w.dim() == 1 else {}
            )
            return cls(
                {DEFAULT_EDGE_TYPE: data.edge_index},
                {DEFAULT_NODE_TYPE: n},
                ews,
                undirected=undirected,
            )
        raise TypeError(f"data must be HeteroData or Data, got {type(data).__name__}")

    # -- access ----------------------------------------------------------------
    @property
    def node_types(self) -> list[str]:
        return list(self.num_nodes)

    @property
    def edge_types(self) -> list[EdgeType]:
        return list(self._csr)

    def __contains__(self, edge_type: EdgeType) -> bool:
        return tuple(edge_type) in self._csr

    def __getitem__(self, edge_type: EdgeType) -> CSR:
        edge_type = tuple(edge_type)
        if edge_type not in self._csr:
            raise KeyError(
                f"edge type {edge_type} is not in the graph (has {self.edge_types})"
            )
        return self._csr[edge_type]

    def check_node_type(self, node_type: str, name: str = "node type") -> None:
        """Raises a :class:`ValueError` naming :obj:`name` if the type is unknown."""
        if not isinstance(node_type, str):
            raise TypeError(f"{name} must be a str, got {type(node_type).__name__}")
        if node_type not in self.num_nodes:
            raise ValueError(
                f"{name} '{node_type}' is not in the graph "
                f"(node types: {self.node_types})"
            )

    def check_edge_type(self, edge_type: EdgeType, name: str = "edge type") -> EdgeType:
        """Returns :obj:`edge_type` as a tuple, or raises naming :obj:`name`."""
        if not isinstance(edge_type, (tuple, list)) or len(edge_type) != 3:
            raise TypeError(
                f"{name} must be a (src, rel, dst) tuple, got {edge_type!r}"
            )
        edge_type = tuple(edge_type)
        if edge_type not in self._csr:
            raise ValueError(
                f"{name} {edge_type} is not in the graph (edge types: "
                f"{self.edge_types})"
            )
        return edge_type

    def _find(self, src_type: str, dst_type: str) -> EdgeType | None:
        found = [et for et in self._csr if et[0] == src_type and et[2] == dst_type]
        return found[0] if len(found) == 1 else None

    def relation(self, src_type: str, dst_type: str) -> CSR:
        """The CSR of the single relation from :obj:`src_type` to :obj:`dst_type`.

        When only the opposite direction is stored it is transposed (and kept).
        Raises if there is none or several: name the edge type then.
        """
        self.check_node_type(src_type, "source node type")
        self.check_node_type(dst_type, "destination node type")
        found = [et for et in self._csr if et[0] == src_type and et[2] == dst_type]
        if len(found) > 1:
            raise ValueError(
                f"several relations lead from '{src_type}' to '{dst_type}' "
                f"({found}); name one edge type"
            )
        if found:
            return self._csr[found[0]]
        back = [et for et in self._csr if et[0] == dst_type and et[2] == src_type]
        if len(back) != 1:
            raise ValueError(
                f"no single relation connects '{src_type}' and '{dst_type}' "
                f"(edge types: {self.edge_types})"
            )
        src_t, rel, dst_t = back[0]
        rev = (dst_t, f"rev_{rel}", src_t)
        self._csr[rev] = self._csr[back[0]].transpose()
        return self._csr[rev]

    def cached(self, key: object, build: Callable[[], T]) -> T:
        """Derived arrays (merged relations, prefix sums of weights) built once
        per view: returns ``build()`` the first time :obj:`key` is asked for."""
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    def __repr__(self) -> str:
        nodes = ", ".join(f"{t}={n}" for t, n in self.num_nodes.items())
        edges = ", ".join(f"{et}={c.num_edges}" for et, c in self._csr.items())
        return f"{self.__class__.__name__}(nodes: {nodes}; edges: {edges})"

    # -- arrays in, arrays out (saved, memory-mapped) ------------------------------
    #: Fingerprint of the saved graph this view was loaded from (else None).
    fingerprint: str | None = None
    #: Where derived arrays too large for memory (the merged graph of
    #: :func:`~pyg_multisage.sampling.ppr_topk`) are saved and memory-mapped:
    #: ``<graph directory>/derived`` for a view loaded with ``mmap=True``,
    #: else None (derived arrays stay in memory). Set it to another directory
    #: before the first kernel call when the graph's own is read-only, or to
    #: None to keep them in memory.
    derived_dir: Path | None = None

    def derived(
        self,
        name: str,
        meta: Mapping[str, object],
        write: Callable[[Path], list[str]],
    ) -> dict[str, np.ndarray] | None:
        """Derived arrays saved beside a memory-mapped graph: the memory maps
        of ``<derived_dir>/<name>``, written first by ``write(folder)`` (which
        saves ``<array>.npy`` files there and returns the array names) when
        the folder does not exist yet. Returns None where the view keeps
        derived arrays in memory (no :attr:`derived_dir`, or no
        :attr:`fingerprint` to tie them to).

        The folder is written atomically (a temporary sibling renamed when
        complete: an interrupted build leaves nothing), its manifest records
        this graph's fingerprint and :obj:`meta`, and reading checks both: a
        folder made for another graph or other arguments is an error naming
        it. When two processes build the same folder at once, the second to
        finish reads the first one's. A :attr:`derived_dir` that cannot be
        written (read-only graph directory) gives a :class:`UserWarning`
        naming it, and None.
        """
        if self.derived_dir is None or self.fingerprint is None:
            return None
        folder = Path(self.derived_dir) / name
        want = {"graph": self.fingerprint, **json.loads(json.dumps(meta))}
        if not folder.exists():
            try:
                with AtomicDir(folder) as tmp:
                    names = write(tmp.path)
                    write_manifest(tmp.path, DERIVED_FORMAT, want, names)
                    tmp.commit()
            except FileExistsError:
                pass  # another process finished it first: read theirs
            except OSError as err:
                warnings.warn(
                    f"cannot write derived arrays to {folder} ({err}); they are "
                    f"built in memory instead (set HeteroCSR.derived_dir to a "
                    f"writable directory)",
                    stacklevel=3,
                )
                return None
        manifest, arrays = read_array_dir(folder, DERIVED_FORMAT, mmap=True)
        if manifest["meta"] != want:
            raise ArrayDirError(
                f"{folder} holds arrays derived for {manifest['meta']}, not for "
                f"{want}: remove it (it is rebuilt on the next call)"
            )
        return arrays

    @classmethod
    def from_csr(
        cls,
        csr_dict: Mapping[EdgeType, CSR],
        num_nodes_dict: Mapping[str, int],
        validate: bool = True,
    ) -> HeteroCSR:
        """A view over ready CSR arrays, used as they are (no copy): memory
        maps from :meth:`load` or the streaming builder of
        :mod:`pyg_multisage.storage`. ``indices`` may be ``int32`` (the
        kernels read either). With :obj:`validate`, checks shapes, that
        ``indptr`` is non-decreasing from 0 to ``len(indices)`` and that
        every index lies in ``[0, num_dst)`` (reads every array once)."""
        self = cls.__new__(cls)
        self.num_nodes = {}
        for node_type, n in num_nodes_dict.items():
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
                raise ValueError(
                    f"number of '{node_type}' nodes must be a non-negative int, "
                    f"got {n!r}"
                )
            self.num_nodes[node_type] = int(n)
        self._csr, self._cache = {}, {}
        for et, c in csr_dict.items():
            et = tuple(et)
            if len(et) != 3 or any(t not in self.num_nodes for t in (et[0], et[2])):
                raise ValueError(
                    f"edge type {et} must be (src, rel, dst) over the node types "
                    f"{list(self.num_nodes)}"
                )
            n_src, n_dst = self.num_nodes[et[0]], self.num_nodes[et[2]]
            if c.indptr.shape != (n_src + 1,) or c.num_dst != n_dst:
                raise ValueError(
                    f"CSR of {et} has {c.indptr.shape[0] - 1} rows and {c.num_dst} "
                    f"columns, expected {n_src} and {n_dst}"
                )
            if c.weight is not None and c.weight.shape != c.indices.shape:
                raise ValueError(f"weight of {et} is not aligned with its indices")
            if validate:
                _check_csr_arrays(c, et)
            self._csr[et] = c
        return self

    def save(
        self,
        path: str | os.PathLike,
        *,
        index_dtype: str = "auto",
        overwrite: bool = False,
    ) -> str:
        """Writes the view to the directory :obj:`path` and returns its
        fingerprint.

        Layout: ``manifest.json`` (node types in order with their counts,
        every edge type with its file prefix, edge count and whether it is
        weighted; dtype, shape and digest of every file; the fingerprint)
        and per edge type ``e<i>.indptr.npy`` (``int64``), ``e<i>.indices.npy``
        and, when weighted, ``e<i>.weight.npy`` (``float64``). The directory
        is written under a temporary name and renamed when complete.

        Args:
            path (str or Path): the directory to create.
            index_dtype (str, optional): ``'auto'`` stores ``indices`` as
                ``int32`` when the destination ids fit (half the bytes; the
                kernels walk ``int32``), ``'int64'`` keeps them ``int64``.
                (default: ``'auto'``)
            overwrite (bool, optional): replace an existing directory.
                (default: :obj:`False`)
        """
        if index_dtype not in ("auto", "int64"):
            raise ValueError(
                f"index_dtype must be 'auto' or 'int64', got {index_dtype!r}"
            )
        with AtomicDir(path, overwrite=overwrite) as tmp:
            names = []
            for i, c in enumerate(self._csr.values()):
                small = index_dtype == "auto" and c.num_dst < 2**31 - 1
                parts = {
                    "indptr": np.asarray(c.indptr, np.int64),
                    "indices": np.asarray(c.indices, np.int32 if small else np.int64),
                }
                if c.weight is not None:
                    parts["weight"] = np.asarray(c.weight, np.float64)
                for part, arr in parts.items():
                    np.save(tmp.path / f"e{i}.{part}.npy", arr)
                    names.append(f"e{i}.{part}")
            fp = write_manifest(tmp.path, CSR_FORMAT, self._meta(), names)
            tmp.commit()
        return fp

    def _meta(self) -> dict:
        return csr_meta(
            self.num_nodes,
            [(et, c.num_edges, c.weight is not None) for et, c in self._csr.items()],
        )

    @classmethod
    def load(
        cls,
        path: str | os.PathLike,
        mmap: bool = True,
        *,
        verify: bool = False,
        fingerprint: str | None = None,
        derived_dir: str | os.PathLike | None = None,
    ) -> HeteroCSR:
        """Reads a directory written by :meth:`save` (or by
        :func:`pyg_multisage.storage.build_csr_from_shards`).

        With :obj:`mmap` the arrays are read-only memory maps: the operating
        system pages them in as the kernels touch them, and processes that
        load the same directory share those pages. Every file listed in the
        manifest must exist with its dtype, shape and exact size, or an error
        names the file. :obj:`verify` re-hashes every file and checks every
        index (reads the whole graph once). :obj:`fingerprint`, when given,
        must equal the saved graph's (a guard against a directory of another
        graph). The fingerprint is kept as :attr:`fingerprint`.
        :obj:`derived_dir` (default: ``<path>/derived`` with :obj:`mmap`) is
        where arrays derived from the graph are saved and mapped in turn
        (:meth:`derived`); without :obj:`mmap` they stay in memory unless it
        is given.
        """
        manifest, arrays = read_array_dir(path, CSR_FORMAT, mmap=mmap, verify=verify)
        if fingerprint is not None and manifest["fingerprint"] != fingerprint:
            raise ValueError(
                f"{path} holds graph {manifest['fingerprint']}, expected "
                f"{fingerprint} (fingerprint)"
            )
        meta = manifest["meta"]
        num_nodes = {t: n for t, n in meta["node_types"]}
        csrs = {}
        for rel in meta["edge_types"]:
            et, p = tuple(rel["edge_type"]), rel["prefix"]
            need = [f"{p}.indptr", f"{p}.indices"] + [f"{p}.weight"] * rel["weighted"]
            missing = [n for n in need if n not in arrays]
            if missing:
                raise ValueError(f"{path}: manifest lacks arrays {missing} of {et}")
            c = CSR(
                arrays[f"{p}.indptr"],
                arrays[f"{p}.indices"],
                arrays.get(f"{p}.weight") if rel["weighted"] else None,
                num_nodes[et[2]],
            )
            if c.num_edges != rel["num_edges"]:
                raise ValueError(
                    f"{path}: {p}.indices.npy has {c.num_edges} edges, the "
                    f"manifest says {rel['num_edges']} for {et}"
                )
            csrs[et] = c
        out = cls.from_csr(csrs, num_nodes, validate=verify)
        out.fingerprint = manifest["fingerprint"]
        if derived_dir is not None:
            out.derived_dir = Path(derived_dir)
        elif mmap:
            out.derived_dir = Path(path) / "derived"
        return out


def _as_weight_array(
    w: Tensor | np.ndarray, num_edges: int, et: EdgeType
) -> np.ndarray:
    if isinstance(w, Tensor):
        w = w.detach().cpu().numpy()
    w = np.asarray(w)
    if w.shape != (num_edges,):
        raise ValueError(
            f"edge weight of {et} must have shape [{num_edges}], got {list(w.shape)}"
        )
    if not np.issubdtype(w.dtype, np.number) or np.iscomplexobj(w):
        raise TypeError(f"edge weight of {et} must be real numbers, got {w.dtype}")
    w = w.astype(np.float64, copy=False)
    if num_edges and (not np.isfinite(w).all() or w.min() < 0):
        raise ValueError(f"edge weight of {et} must be finite and non-negative")
    return w


def _coalesce(
    src: np.ndarray, dst: np.ndarray, w: np.ndarray | None, n_dst: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Removes duplicate (src, dst) pairs, keeping the largest weight."""
    key = src * max(n_dst, 1) + dst
    if w is None:
        key = np.unique(key)
        return key // max(n_dst, 1), key % max(n_dst, 1), None
    order = np.lexsort((-w, key))
    key, w = key[order], w[order]
    first = np.ones(len(key), dtype=bool)
    first[1:] = key[1:] != key[:-1]
    key, w = key[first], w[first]
    return key // max(n_dst, 1), key % max(n_dst, 1), w


#: ``format`` of a saved :class:`HeteroCSR`'s manifest.
CSR_FORMAT = "pyg_multisage.HeteroCSR"


def csr_meta(
    num_nodes: Mapping[str, int], relations: Iterable[tuple[EdgeType, int, bool]]
) -> dict:
    """The ``meta`` of a saved :class:`HeteroCSR`'s manifest: node types in
    order with counts, and per edge type ``(edge type, edge count, weighted)``
    its file prefix ``e<i>``."""
    return {
        "node_types": [[t, int(n)] for t, n in num_nodes.items()],
        "edge_types": [
            {
                "edge_type": list(et),
                "prefix": f"e{i}",
                "num_edges": int(e),
                "weighted": bool(w),
            }
            for i, (et, e, w) in enumerate(relations)
        ],
    }


def _check_csr_arrays(c: CSR, et: EdgeType) -> None:
    """Checks offsets and index range of one CSR (reads its arrays)."""
    ip = c.indptr
    if ip[0] != 0 or ip[-1] != c.num_edges:
        raise ValueError(
            f"indptr of {et} must run from 0 to {c.num_edges}, got {ip[0]}..{ip[-1]}"
        )
    if len(ip) > 1 and (np.diff(ip) < 0).any():
        raise ValueError(f"indptr of {et} decreases")
    if c.num_edges:
        lo, hi = c.indices.min(), c.indices.max()
        if lo < 0 or hi >= c.num_dst:
            raise ValueError(
                f"indices of {et} hold ids outside [0, {c.num_dst}): {lo}..{hi}"
            )
    if c.weight is not None and c.num_edges:
        if not np.isfinite(c.weight).all() or c.weight.min() < 0:
            raise ValueError(f"weight of {et} must be finite and non-negative")
