import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pyg_multisage.sampling._topk import insert_packed_at, select_topk


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 5), min_size=0, max_size=40),
    st.integers(0, 12),
)
def test_select_topk_matches_sorting(scores, k):
    m = len(scores)
    ids = np.random.default_rng(m).permutation(100)[:m].astype(np.int64)
    s = np.asarray(scores, dtype=np.float64)
    heap = np.empty(max(k, 1), np.int64)
    out_i, out_s = np.empty(max(k, 1), np.int64), np.empty(max(k, 1), np.float64)
    n = select_topk(ids, s, m, k, heap, out_i, out_s)
    ref = sorted(zip(-s, ids, strict=True))[:k]
    assert n == len(ref)
    np.testing.assert_array_equal(out_i[:n], [i for _, i in ref])
    np.testing.assert_array_equal(out_s[:n], [-x for x, _ in ref])
    # the packed run: integer scores above (mask - id), positions alongside
    keys, at = np.empty(max(k, 1), np.uint64), np.empty(max(k, 1), np.int64)
    c = 0
    for j in range(m):
        key = (np.uint64(scores[j]) << np.uint64(32)) | np.uint64(2**32 - 1 - ids[j])
        c = insert_packed_at(keys, at, k, c, key, j)
    assert c == n
    np.testing.assert_array_equal(ids[at[:c]], out_i[:n])
    np.testing.assert_array_equal(keys[:c] >> np.uint64(32), out_s[:n])


def test_rng_streams_are_the_same_from_python_ints():
    from pyg_multisage.sampling import rng as _rng

    for state in (0, 5, 2**40 + 3, 2**62):
        new_a, bits_a = _rng.next_state(state)
        new_b, bits_b = _rng.next_state(np.uint64(state))
        assert int(new_a) == int(new_b) and int(bits_a) == int(bits_b)
        assert _rng.uniform(state) == _rng.uniform(np.uint64(state))
        assert int(_rng.mix64(state)) == int(_rng.mix64(np.uint64(state)))
