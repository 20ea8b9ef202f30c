import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyg_multisage.sampling.relabel import relabel


def reference(seeds, others):
    node, first = list(seeds), {}
    for i, v in enumerate(seeds):
        first.setdefault(v, i)
    mapped = []
    for v in others:
        if v not in first:
            first[v] = len(node)
            node.append(v)
        mapped.append(first[v])
    return node, mapped


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.integers(0, 30), max_size=12),
    st.lists(st.integers(0, 60), max_size=40),
)
def test_relabel_matches_reference(seeds, others):
    node, mapped = relabel(np.array(seeds, np.int64), np.array(others, np.int64))
    ref_node, ref_mapped = reference(seeds, others)
    assert node.tolist() == ref_node
    assert mapped.tolist() == ref_mapped
    # the position map is clean for the next call
    node2, _ = relabel(np.array([], np.int64), np.array(others, np.int64))
    assert node2.tolist() == list(dict.fromkeys(others))


def test_relabel_grows_its_scratch_and_rejects_negative_ids():
    node, mapped = relabel(np.array([10**6]), np.array([5, 10**6, 5]))
    assert node.tolist() == [10**6, 5] and mapped.tolist() == [1, 0, 1]
    with pytest.raises(ValueError, match="non-negative"):
        relabel(np.array([1]), np.array([-2]))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 30), max_size=12),
    st.lists(st.integers(-1, 60), max_size=40),
)
def test_relabel_maps_missing_to_minus_one(seeds, others):
    node, mapped = relabel(
        np.array(seeds, np.int64), np.array(others, np.int64), missing=True
    )
    present = [v for v in others if v >= 0]
    ref_node, ref_present = reference(seeds, present)
    assert node.tolist() == ref_node
    it = iter(ref_present)
    assert mapped.tolist() == [-1 if v < 0 else next(it) for v in others]


def test_relabel_missing_still_rejects_other_negative_ids():
    with pytest.raises(ValueError, match="-1"):
        relabel(np.array([1]), np.array([-2]), missing=True)
    with pytest.raises(ValueError, match="non-negative"):
        relabel(np.array([-1]), np.array([0]), missing=True)
