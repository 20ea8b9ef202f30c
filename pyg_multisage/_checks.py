"""Argument and tensor checks, with one set of error messages.

Every public function of the package validates its input here, in Python,
so that bad input raises a :class:`ValueError` or :class:`TypeError` naming
the argument instead of failing inside Numba or deep inside PyG. This module
is the bottom layer: it imports nothing else of the package.
"""

from __future__ import annotations

import numbers
from typing import Literal, overload

import numpy as np
import torch
from torch import Tensor


def as_index_array(x: object, name: str, num_nodes: int | None = None) -> np.ndarray:
    """Converts node ids (tensor, array, sequence or int) to ``int64 [N]``.

    Integer dtypes of any width are accepted and converted; floats and bools
    are refused. With :obj:`num_nodes`, every id must lie in ``[0, num_nodes)``.
    """
    if isinstance(x, Tensor):
        if x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
            raise TypeError(f"{name} must hold integer node ids, got {x.dtype}")
        arr = x.detach().cpu().numpy()
    elif isinstance(x, (numbers.Integral, np.integer)) and not isinstance(x, bool):
        arr = np.asarray([x])
    else:
        arr = np.asarray(x)
        if arr.size == 0:
            arr = arr.astype(np.int64)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must hold integer node ids, got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {list(arr.shape)}")
    arr = np.ascontiguousarray(arr, dtype=np.int64)
    if num_nodes is not None and arr.size:
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi >= num_nodes:
            bad = lo if lo < 0 else hi
            raise ValueError(f"{name} holds node id {bad}, outside [0, {num_nodes})")
    return arr


@overload
def check_int(
    x: object, name: str, minimum: int = 0, *, allow_none: Literal[False] = False
) -> int: ...
@overload
def check_int(
    x: object, name: str, minimum: int = 0, *, allow_none: Literal[True]
) -> int | None: ...
def check_int(
    x: object, name: str, minimum: int = 0, *, allow_none: bool = False
) -> int | None:
    """An ``int`` not below :obj:`minimum` (bools refused); :obj:`None` too
    when :obj:`allow_none`. The one integer check of the package: counts,
    sizes and limits use ``minimum=1``."""
    if x is None and allow_none:
        return None
    what = "an int or None" if allow_none else "an int"
    if isinstance(x, bool) or not isinstance(x, (numbers.Integral, np.integer)):
        raise TypeError(f"{name} must be {what}, got {type(x).__name__}")
    if x < minimum:
        bound = f">= {minimum} or None" if allow_none else f">= {minimum}"
        raise ValueError(f"{name} must be {bound}, got {x}")
    return int(x)


def check_float(
    x: object,
    name: str,
    low: float = 0.0,
    high: float = 1.0,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """A finite real number in the interval given (closed unless told)."""
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(x).__name__}")
    x = float(x)
    ok = np.isfinite(x) and (low < x if low_open else low <= x)
    ok = ok and (x < high if high_open else x <= high)
    if not ok:
        lb, hb = "(" if low_open else "[", ")" if high_open else "]"
        raise ValueError(f"{name} must lie in {lb}{low}, {high}{hb}, got {x}")
    return x


def check_seed(seed: object) -> int:
    """A random seed: any int in ``[0, 2**63)``."""
    if isinstance(seed, bool) or not isinstance(seed, (numbers.Integral, np.integer)):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if not 0 <= seed < 2**63:
        raise ValueError(f"seed must lie in [0, 2**63), got {seed}")
    return int(seed)


def check_matrix(x: object, name: str) -> None:
    """A floating-point ``torch.Tensor`` of shape ``[N, d]`` (embeddings)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 2:
        raise ValueError(
            f"{name} must be two-dimensional [N, d], got shape {list(x.shape)}"
        )
    if not x.is_floating_point():
        raise TypeError(f"{name} must be floating point, got {x.dtype}")


def check_ids(ids: object, name: str) -> Tensor:
    """Node ids as a one-dimensional ``int64`` tensor, kept on its device.

    Unlike :func:`as_index_array`, the ids stay a tensor (on the GPU if they
    are there); integer dtypes of any width are accepted, floats and bools
    refused, and every id must be non-negative.
    """
    if not isinstance(ids, Tensor):
        ids = torch.as_tensor(ids)
    if ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer ids, got {ids.dtype}")
    if ids.dim() != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {list(ids.shape)}")
    ids = ids.to(torch.int64)
    if ids.numel() and int(ids.min()) < 0:
        raise ValueError(f"{name} must hold non-negative ids, got {int(ids.min())}")
    return ids


def check_aligned(x: object, name: str, like: Tensor, like_name: str) -> None:
    """A floating-point matrix of the shape of :obj:`like` (row :math:`i` of
    one belongs to row :math:`i` of the other, e.g. positives of queries)."""
    check_matrix(x, name)
    if x.shape != like.shape:
        raise ValueError(
            f"{name} must have the shape of {like_name} {list(like.shape)}, "
            f"got {list(x.shape)}"
        )


def check_edge_index(
    edge_index: object,
    name: str = "edge_index",
    num_src: int | None = None,
    num_dst: int | None = None,
    *,
    int64: bool = False,
    roles: tuple[str, str] = ("source", "target"),
    size_names: tuple[str | None, str | None] = (None, None),
) -> None:
    """A ``[2, E]`` integer tensor or array of edges ``edge_index[0] ->
    edge_index[1]``; the one edge-index check of the package.

    :obj:`int64` demands ``int64`` (PyG layers); with :obj:`num_src` /
    :obj:`num_dst` the ids of row 0 / row 1 must lie in ``[0, num)``
    (:obj:`roles` names the rows in the message, :obj:`size_names` the
    arguments the bounds came from, if any). Nothing is converted.
    """
    if isinstance(edge_index, Tensor):
        dtype = edge_index.dtype
        integral = not (
            edge_index.is_floating_point()
            or edge_index.is_complex()
            or dtype == torch.bool
        )
        is64 = dtype == torch.int64
    elif isinstance(edge_index, np.ndarray):
        dtype = edge_index.dtype
        integral = dtype != np.bool_ and np.issubdtype(dtype, np.integer)
        is64 = dtype == np.int64
    else:
        raise TypeError(
            f"{name} must be a [2, num_edges] integer tensor, got "
            f"{type(edge_index).__name__}"
        )
    if not integral:
        raise TypeError(f"{name} must hold integer node ids, got {dtype}")
    if int64 and not is64:
        raise TypeError(f"{name} must be int64, got {dtype}")
    if edge_index.ndim != 2 or edge_index.shape[0] != 2:
        raise ValueError(
            f"{name} must have shape [2, num_edges], got {list(edge_index.shape)}"
        )
    if edge_index.shape[1] == 0:
        return
    for row, n, role, size in zip(
        (0, 1), (num_src, num_dst), roles, size_names, strict=True
    ):
        if n is None:
            continue
        lo, hi = int(edge_index[row].min()), int(edge_index[row].max())
        if lo < 0 or hi >= n:
            bad = lo if lo < 0 else hi
            of = f" ({size})" if size else ""
            raise ValueError(f"{name} holds {role} id {bad}, outside [0, {n}){of}")


def check_finite(x: Tensor, name: str) -> Tensor:
    """Refuses a float tensor holding NaN or infinite values, naming
    :obj:`name` and the first bad row; other dtypes pass.

    One summing pass decides (a NaN or infinity makes the sum non-finite);
    only a non-finite sum, which finite values can also give by overflowing,
    is checked element by element."""
    if x.is_floating_point() or x.is_complex():
        if x.numel() == 0 or bool(torch.isfinite(x.sum())):
            return x
        finite = torch.isfinite(x)
        if not bool(finite.all()):
            where = ""
            if x.dim():
                rows = (~finite).reshape(x.size(0), -1).any(-1).nonzero().flatten()
                where = f" in {rows.numel()} rows (first: {int(rows[0])})"
            raise ValueError(f"{name} holds NaN or infinite values{where}")
    return x


def batch_features(batch: object, node_type: object, owner: str) -> Tensor:
    """The features ``batch[node_type].x`` of a loader batch, refusing a
    node type the batch lacks, a store without ``x`` and non-finite values
    (NaN features would otherwise give NaN embeddings), each with an error
    naming :obj:`owner` and the node type."""
    node_types = list(getattr(batch, "node_types", []))
    if not isinstance(node_type, str) or node_type not in node_types:
        raise ValueError(
            f"{owner}: node type {node_type!r} is not in the batch "
            f"(node types: {node_types})"
        )
    store = batch[node_type]  # type: ignore[index]
    x = store.get("x")
    if not isinstance(x, Tensor):
        raise ValueError(f"{owner}: batch[{node_type!r}] has no features 'x'")
    return check_finite(x, f"{owner}: batch[{node_type!r}].x")
