"""Argument and tensor checks, with one set of error messages.

Every public function of the package validates its input here, in Python,
so that bad input raises a :class:`ValueError` or :class:`TypeError` naming
the argument instead of failing inside Numba or deep inside PyG. This module
is the bottom layer: it imports nothing else of the package.
"""

from __future__ import annotations

import numbers

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


def check_int(x: object, name: str, minimum: int = 0) -> int:
    """An ``int`` not below :obj:`minimum` (bools refused)."""
    if isinstance(x, bool) or not isinstance(x, (numbers.Integral, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(x).__name__}")
    if x < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {x}")
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
