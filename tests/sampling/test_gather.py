import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyg_multisage.sampling.gather import row_positions


def reference(ptr, rows, limit):
    owner, pos = [], []
    for i, r in enumerate(rows):
        span = list(range(ptr[r], ptr[r + 1]))
        if limit is not None:
            span = span[:limit]
        owner += [i] * len(span)
        pos += span
    return owner, pos


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.integers(0, 5), min_size=1, max_size=10),
    st.data(),
    st.one_of(st.none(), st.integers(0, 4)),
)
def test_row_positions_match_reference(degrees, draw, limit):
    ptr = np.concatenate([[0], np.cumsum(degrees)]).astype(np.int64)
    rows = draw.draw(st.lists(st.integers(0, len(degrees) - 1), max_size=12))
    owner, pos = row_positions(ptr, np.array(rows, np.int64), limit)
    ref_owner, ref_pos = reference(ptr.tolist(), rows, limit)
    assert owner.tolist() == ref_owner
    assert pos.tolist() == ref_pos
    assert owner.dtype == pos.dtype == np.int64


def test_row_positions_reject_bad_rows_and_limit():
    ptr = np.array([0, 2, 3], np.int64)
    with pytest.raises(ValueError, match=r"rows must lie in \[0, 2\)"):
        row_positions(ptr, np.array([2]))
    with pytest.raises(ValueError, match="rows"):
        row_positions(ptr, np.array([-1]))
    with pytest.raises(ValueError, match="limit"):
        row_positions(ptr, np.array([0]), -1)
