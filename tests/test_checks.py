"""Shared argument checks (pyg_multisage._checks)."""

from __future__ import annotations

import pytest
import torch

from pyg_multisage._checks import check_finite


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_check_finite_names_the_first_bad_row(bad):
    x = torch.zeros(5, 3)
    x[3, 1] = bad
    x[4, 0] = bad
    with pytest.raises(
        ValueError, match=r"feat holds NaN or infinite values in 2 rows \(first: 3\)"
    ):
        check_finite(x, "feat")


def test_check_finite_passes_finite_values_whose_sum_overflows():
    # The fast path sums; an overflowing sum falls back to the exact check.
    for x in (torch.full((4, 2), 3e38), torch.full((8,), 60000.0, dtype=torch.float16)):
        assert not torch.isfinite(x.sum())
        assert check_finite(x, "x") is x
    inf_pair = torch.tensor([3e38, 3e38, -float("inf")])
    with pytest.raises(ValueError, match="first: 2"):
        check_finite(inf_pair, "x")


def test_check_finite_ignores_empty_and_integer_tensors():
    assert check_finite(torch.empty(0, 4), "x").shape == (0, 4)
    ids = torch.tensor([1, 2])
    assert check_finite(ids, "ids") is ids
