"""Reductions over the neighbors of each ego: segments or scatters.

The loaders yield edges grouped by ego (and a ``SparseTensor`` ``adj_t`` is
grouped by row), so the per-ego reductions of the layers (the attention
softmax and the weighted sum of MultiSage Eq. 7) can run as segment
reductions over a row pointer ``ptr`` (``ptr[v]:ptr[v + 1]`` are the edges
of ego ``v``) instead of scatters over the ego index of every edge.
``benchmarks/segment.py`` measures both (docs/benchmarks.rst); on CPU the
segment softmax was the faster, the segment *sum* the slower, so:

* ``"segment_csr"`` (default when the optional ``torch_scatter`` package is
  installed and the edges are grouped by ego): the attention softmax reduces
  its max and sum with ``torch_scatter.segment_csr`` over the row pointer
  (through PyG's ``softmax(ptr=...)``), degrees come from the pointer, and
  the weighted sum of Eq. 7 stays on torch's ``index_add_``;
* ``"scatter"``: torch's ``scatter_reduce`` / ``index_add_`` over the ego
  index throughout: any edge order, no extra package.

Both give equal results up to float rounding.

:func:`use_backend` switches the backend for a block of code (tests and
benchmarks compare the two).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import Tensor
from torch_geometric.utils import softmax

try:  # optional: the [sparse] extra
    import torch_scatter
except ImportError:  # pragma: no cover - depends on the environment
    torch_scatter = None

BACKENDS = ("segment_csr", "scatter")
_backend = "segment_csr" if torch_scatter is not None else "scatter"


def backend() -> str:
    """The backend in use: ``"segment_csr"`` or ``"scatter"``."""
    return _backend


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[None]:
    """Run a block with backend :obj:`name` (``"segment_csr"`` needs
    ``torch_scatter``), then restore the previous one."""
    global _backend
    if name not in BACKENDS:
        raise ValueError(f"'name' must be one of {BACKENDS} (got {name!r})")
    if name == "segment_csr" and torch_scatter is None:
        raise ImportError(
            "backend 'segment_csr' needs the torch_scatter package "
            "(pip install 'pyg_multisage[sparse]', see the install docs)"
        )
    previous, _backend = _backend, name
    try:
        yield
    finally:
        _backend = previous


def ego_pointer(dst: Tensor, num_dst: int, ptr: Tensor | None = None) -> Tensor | None:
    """The row pointer ``[num_dst + 1]`` of edges grouped by ego, or
    :obj:`None` when the scatter backend is in use or the egos :obj:`dst`
    are not sorted (then the reductions scatter over :obj:`dst`). A pointer
    already known (a ``SparseTensor``'s ``rowptr``) is passed as :obj:`ptr`.
    Under ``torch.compile`` it is always :obj:`None` (torch_scatter's
    operators are opaque to the compiler; torch's scatters are not)."""
    if _backend != "segment_csr" or torch.compiler.is_compiling():
        return None
    if ptr is not None:
        return ptr
    if dst.numel() > 1 and not bool((dst[1:] >= dst[:-1]).all()):
        return None
    return torch._convert_indices_from_coo_to_csr(dst, num_dst)


def edge_softmax(logits: Tensor, dst: Tensor, ptr: Tensor | None, num_dst: int):
    """Softmax of ``[E, ...]`` logits over the edges of each ego (PyG's
    :func:`~torch_geometric.utils.softmax`: over the pointer it reduces with
    ``torch_scatter.segment_csr``, over the index with torch's scatters)."""
    if ptr is not None:
        return softmax(logits, None, ptr, num_nodes=num_dst, dim=0)
    return softmax(logits, dst, num_nodes=num_dst, dim=0)


def sum_by_ego(src: Tensor, dst: Tensor, num_dst: int) -> Tensor:
    """``out[v] = sum of src[e] over the edges e of ego v``, ``[num_dst, ...]``
    (zero for egos without edges). torch's ``index_add_`` in both backends:
    it beat ``torch_scatter.segment_csr`` in ``benchmarks/segment.py``."""
    out = src.new_zeros((num_dst, *src.shape[1:]))
    return out.index_add_(0, dst, src)


def degree(dst: Tensor, ptr: Tensor | None, num_dst: int) -> Tensor:
    """Number of edges of each ego, int64 ``[num_dst]``."""
    if ptr is not None:
        return ptr.diff()
    return torch.bincount(dst, minlength=num_dst)
