"""The hashed n-gram tokenizer (pyg_multisage.text) against references."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pyg_multisage.text import (
    HashedTokenizer,
    fnv1a_64,
    ngrams,
    tokenize,
)

TEXTS = [
    "Graph Mining with MultiSage.",
    "",
    "Piecewise Bézier volumes; μBE & Précis",
    "the the the",
    "a",
]


def test_fnv1a_published_vectors():
    # Test vectors of the FNV reference suite (64-bit FNV-1a).
    assert fnv1a_64("") == 0xCBF29CE484222325
    assert fnv1a_64("a") == 0xAF63DC4C8601EC8C
    assert fnv1a_64("foobar") == 0x85944171F73967E8


def test_known_ngrams():
    got = ngrams("Graph, mining!", word_ngrams=2, char_ngrams=(3, 4))
    words = ["\x01graph", "\x01mining", "\x01graph mining"]
    chars_graph = ["<gr", "gra", "rap", "aph", "ph>", "<gra", "grap", "raph", "aph>"]
    chars_mining = ["<mi", "min", "ini", "nin", "ing", "ng>"]
    chars_mining += ["<min", "mini", "inin", "ning", "ing>"]
    assert got == words + ["\x02" + g for g in chars_graph + chars_mining]
    # a short word: the whole marked word is its only 3-gram
    assert ngrams("A", word_ngrams=1, char_ngrams=3) == ["\x01a", "\x02<a>"]
    assert ngrams("Ab", word_ngrams=(2, 2), char_ngrams=None) == []
    assert ngrams("Ab cD", word_ngrams=(2, 2), char_ngrams=None) == ["\x01ab cd"]
    assert ngrams("Ab", word_ngrams=1, char_ngrams=None, lowercase=False) == ["\x01Ab"]
    assert tokenize("graph", 97, 1, None) == [fnv1a_64("\x01graph") % 97]


@pytest.mark.parametrize(
    "word_ngrams,char_ngrams", [(2, (3, 5)), (1, None), (0, 3), ((2, 3), (2, 6))]
)
def test_batched_equals_reference(word_ngrams, char_ngrams):
    tok = HashedTokenizer(1009, word_ngrams, char_ngrams)
    ids, offsets = tok(TEXTS)
    ref = [tokenize(t, 1009, word_ngrams, char_ngrams) for t in TEXTS]
    assert ids.dtype == torch.long and offsets.dtype == torch.long
    assert offsets.tolist() == [sum(len(r) for r in ref[:i]) for i in range(len(ref))]
    assert ids.tolist() == [i for r in ref for i in r]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text(max_size=30), max_size=6), st.integers(1, 5000))
def test_batched_equals_reference_random(texts, num_buckets):
    tok = HashedTokenizer(num_buckets)
    ids, ptr = tok.ids_and_ptr(texts)
    ref = [tokenize(t, num_buckets) for t in texts]
    assert ids.tolist() == [i for r in ref for i in r]
    assert ptr[-1] == ids.size and len(ptr) == len(texts) + 1


def test_num_hashes():
    one = HashedTokenizer(50_000)
    three = HashedTokenizer(50_000, num_hashes=3)
    ids1, _ = one.ids_and_ptr(TEXTS)
    ids3, ptr3 = three.ids_and_ptr(TEXTS)
    assert ids3.size == 3 * ids1.size
    assert ids3.reshape(-1, 3)[:, 0].tolist() == ids1.tolist()
    # the extra hashes differ from the first almost always
    assert (ids3.reshape(-1, 3)[:, 1] != ids1).mean() > 0.9


_CHILD = """
import json, sys
from pyg_multisage.text import HashedTokenizer
ids, off = HashedTokenizer(4096, num_hashes=2)(json.loads(sys.argv[1]))
print(json.dumps([ids.tolist(), off.tolist(), hash("salted")]))
"""


def test_deterministic_across_processes():
    ids, off = HashedTokenizer(4096, num_hashes=2)(TEXTS)
    seed = "1" if os.environ.get("PYTHONHASHSEED") != "1" else "2"
    res = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(TEXTS)],
        env=dict(os.environ, PYTHONHASHSEED=seed),
        capture_output=True,
        text=True,
        check=True,
    )
    child_ids, child_off, child_hash = json.loads(res.stdout)
    assert child_hash != hash("salted")  # Python's own hash did change
    assert child_ids == ids.tolist()
    assert child_off == off.tolist()


def test_bag():
    tok = HashedTokenizer(64, word_ngrams=1, char_ngrams=None)
    x = tok.bag(["b a a", "", "a"], norm=None)
    a, b = tokenize("a", 64, 1, None)[0], tokenize("b", 64, 1, None)[0]
    expected = torch.zeros(3, 64)
    expected[0, a] += 2
    expected[0, b] += 1
    expected[2, a] = 1
    assert torch.equal(x, expected)
    x2 = tok.bag(["b a a", "", "a"])
    assert torch.allclose(x2.norm(dim=1), torch.tensor([1.0, 0.0, 1.0]))
    x1 = tok.bag(["b a a"], norm="l1")
    assert torch.allclose(x1.sum(), torch.tensor(1.0))
    with pytest.raises(ValueError, match="norm"):
        tok.bag(["a"], norm="l3")


def test_bad_tokenizer_input():
    with pytest.raises(ValueError, match="num_buckets"):
        HashedTokenizer(0)
    with pytest.raises(TypeError, match="num_buckets"):
        HashedTokenizer(1.5)
    with pytest.raises(ValueError, match="both be off"):
        HashedTokenizer(10, 0, None)
    with pytest.raises(ValueError, match="char_ngrams"):
        HashedTokenizer(10, 1, (1, 2, 3))
    with pytest.raises(ValueError, match=r"char_ngrams\[1\]"):
        HashedTokenizer(10, 1, (4, 2))
    with pytest.raises(TypeError, match="sequence of strings"):
        HashedTokenizer(10)("abc")
    with pytest.raises(TypeError, match="texts must be strings"):
        HashedTokenizer(10)(["abc", 3])
