r"""Hashed word- and character-n-gram text features (OmniSage §3.2).

OmniSage embeds raw text with "a simple shared hash-based embedding [34]
applied to :math:`n`-gram tokenized text" (Svenstrup et al., *Hash
embeddings for efficient word representations*, NeurIPS 2017). This module
is the data half: :class:`HashedTokenizer` turns texts into bucket ids of
their word :math:`n`-grams and boundary-marked character :math:`n`-grams, as
the flat ``(ids, offsets)`` pair :class:`torch.nn.EmbeddingBag` takes, or as
a dense bag-of-buckets matrix (the datasets' node features). The learned
half, :class:`~pyg_multisage.nn.text.HashedTextEmbedding`, sums (or
averages) the vectors of a text's buckets.

The hash is **ours and deterministic** -- never Python's per-process salted
:func:`hash` -- so the same text gets the same ids in every process, on every
machine and in every run. It is 64-bit FNV-1a (Fowler, Noll, Vo) taken over
the Unicode code points of the :math:`n`-gram string (one code point per
step, so for ASCII text it equals the textbook FNV-1a over bytes):

.. math::
    h_0 = \mathrm{0xcbf29ce484222325}, \qquad
    h_{i+1} = (h_i \oplus c_i) \cdot \mathrm{0x100000001b3}
    \bmod 2^{64},

and the bucket is :math:`h \bmod B`. The hashed string is the :math:`n`-gram
prefixed with a namespace character, ``"\x01"`` for word :math:`n`-grams
(words joined by one space) and ``"\x02"`` for character :math:`n`-grams of
``"<" + word + ">"`` (fastText's boundary markers), so that a word and an
equal character :math:`n`-gram never share a bucket by construction. With
``num_hashes`` :math:`k > 1`, each :math:`n`-gram also gets buckets
:math:`\mathrm{mix64}(h + j\gamma) \bmod B` for :math:`j = 1, \ldots, k-1`
(SplitMix64's finalizer), the multiple-hash scheme of hash embeddings.

Normalisation: texts are lower-cased (``lowercase=True``) and split into
words at every character that is not a letter or digit.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numba
import numpy as np
import torch
from numba import prange
from torch import Tensor

from pyg_multisage._checks import check_int
from pyg_multisage.sampling.rng import mix64

__all__ = [
    "fnv1a_64",
    "ngrams",
    "tokenize",
    "HashedTokenizer",
]

FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
WORD_TAG = "\x01"
CHAR_TAG = "\x02"

_FNV_OFFSET = np.uint64(FNV_OFFSET)
_FNV_PRIME = np.uint64(FNV_PRIME)
_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_WORD = re.compile(r"[^\W_]+")
_MASK = (1 << 64) - 1


def fnv1a_64(text: str) -> int:
    r"""64-bit FNV-1a of :obj:`text` over its Unicode code points.

    The pure-Python reference of the hash the tokenizer's kernel computes.

    Args:
        text (str): the string to hash.

    Returns:
        int: the hash in :math:`[0, 2^{64})`.
    """
    h = FNV_OFFSET
    for ch in text:
        h = ((h ^ ord(ch)) * FNV_PRIME) & _MASK
    return h


def _ngram_range(value: int | tuple[int, int] | None, name: str) -> tuple[int, int]:
    """``None``/0 -> (0, 0) (off); ``n`` -> (1, n) for words; (lo, hi) as is."""
    if value is None:
        return 0, 0
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair (min, max), got {value}")
        lo = check_int(value[0], f"{name}[0]", 1)
        hi = check_int(value[1], f"{name}[1]", lo)
        return lo, hi
    n = check_int(value, name, 0)
    return (0, 0) if n == 0 else (n, n)


def _words(text: str, lowercase: bool) -> list[str]:
    if not isinstance(text, str):
        raise TypeError(f"texts must be strings, got {type(text).__name__}")
    return _WORD.findall(text.lower() if lowercase else text)


def ngrams(
    text: str,
    word_ngrams: int | tuple[int, int] | None = 2,
    char_ngrams: int | tuple[int, int] | None = (3, 5),
    lowercase: bool = True,
) -> list[str]:
    r"""The namespaced :math:`n`-gram strings of :obj:`text`, in id order.

    First the word :math:`n`-grams (for :math:`n` from low to high, by
    position), then the character :math:`n`-grams of each word in turn
    (``"<" + word + ">"``; :math:`n` from low to high, by position).

    Args:
        text (str): the text.
        word_ngrams (int or (int, int), optional): word :math:`n`-gram
            orders; an int :math:`N` means :math:`1, \ldots, N`, ``0`` or
            ``None`` none. (default: :obj:`2`)
        char_ngrams (int or (int, int), optional): character :math:`n`-gram
            orders (inclusive range); ``0`` or ``None`` none.
            (default: :obj:`(3, 5)`)
        lowercase (bool, optional): lower-case first. (default: :obj:`True`)
    """
    wlo, whi = _word_range(word_ngrams)
    clo, chi = _ngram_range(char_ngrams, "char_ngrams")
    words = _words(text, lowercase)
    out: list[str] = []
    if whi:
        for n in range(wlo, whi + 1):
            for i in range(len(words) - n + 1):
                out.append(WORD_TAG + " ".join(words[i : i + n]))
    if chi:
        for w in words:
            marked = "<" + w + ">"
            for n in range(clo, chi + 1):
                for i in range(len(marked) - n + 1):
                    out.append(CHAR_TAG + marked[i : i + n])
    return out


def _word_range(value: int | tuple[int, int] | None) -> tuple[int, int]:
    if isinstance(value, (tuple, list)) or value is None:
        return _ngram_range(value, "word_ngrams")
    n = check_int(value, "word_ngrams", 0)
    return (0, 0) if n == 0 else (1, n)


def tokenize(
    text: str,
    num_buckets: int = 2**20,
    word_ngrams: int | tuple[int, int] | None = 2,
    char_ngrams: int | tuple[int, int] | None = (3, 5),
    lowercase: bool = True,
) -> list[int]:
    r"""Bucket ids of one text's :math:`n`-grams (see :func:`ngrams`).

    A pure-Python path; :class:`HashedTokenizer` gives the same ids for many
    texts at once, much faster.

    Args:
        text (str): the text.
        num_buckets (int, optional): number of hash buckets :math:`B`.
            (default: :obj:`2**20`)
        word_ngrams (int or (int, int), optional): see :func:`ngrams`.
            (default: :obj:`2`)
        char_ngrams (int or (int, int), optional): see :func:`ngrams`.
            (default: :obj:`(3, 5)`)
        lowercase (bool, optional): lower-case first. (default: :obj:`True`)
    """
    num_buckets = check_int(num_buckets, "num_buckets", 1)
    grams = ngrams(text, word_ngrams, char_ngrams, lowercase)
    return [fnv1a_64(g) % num_buckets for g in grams]


# --------------------------------------------------------------------------
# Numba kernels over flat arrays of code points.
# cps:      uint32 [C]  code points of all words, concatenated
# word_ptr: int64 [W+1] word w is cps[word_ptr[w]:word_ptr[w+1]]
# text_ptr: int64 [T+1] text t owns words text_ptr[t]:text_ptr[t+1]
# --------------------------------------------------------------------------


@numba.njit(cache=True, inline="always")
def _feed(h, c):
    return (h ^ np.uint64(c)) * _FNV_PRIME


@numba.njit(cache=True)
def _count_one(word_ptr, w0, w1, wlo, whi, clo, chi):
    nw = w1 - w0
    count = 0
    if whi > 0:
        for n in range(wlo, whi + 1):
            if nw >= n:
                count += nw - n + 1
    if chi > 0:
        for w in range(w0, w1):
            m = word_ptr[w + 1] - word_ptr[w] + 2
            for n in range(clo, chi + 1):
                if m >= n:
                    count += m - n + 1
    return count


@numba.njit(cache=True, parallel=True)
def _count_kernel(word_ptr, text_ptr, wlo, whi, clo, chi):
    num_texts = text_ptr.size - 1
    counts = np.zeros(num_texts, dtype=np.int64)
    for t in prange(num_texts):
        counts[t] = _count_one(
            word_ptr, text_ptr[t], text_ptr[t + 1], wlo, whi, clo, chi
        )
    return counts


@numba.njit(cache=True)
def _emit(out, pos, h, num_buckets, num_hashes):
    out[pos] = np.int64(h % np.uint64(num_buckets))
    for j in range(1, num_hashes):
        g = mix64(h + np.uint64(j) * _GAMMA)
        out[pos + j] = np.int64(g % np.uint64(num_buckets))
    return pos + num_hashes


@numba.njit(cache=True, parallel=True)
def _hash_kernel(
    cps, word_ptr, text_ptr, offsets, wlo, whi, clo, chi, num_buckets, num_hashes
):
    num_texts = text_ptr.size - 1
    out = np.empty(offsets[num_texts], dtype=np.int64)
    for t in prange(num_texts):
        pos = offsets[t]
        w0 = text_ptr[t]
        w1 = text_ptr[t + 1]
        if whi > 0:
            for n in range(wlo, whi + 1):
                for i in range(w0, w1 - n + 1):
                    h = _feed(_FNV_OFFSET, 1)
                    for k in range(n):
                        if k > 0:
                            h = _feed(h, 32)
                        for c in range(word_ptr[i + k], word_ptr[i + k + 1]):
                            h = _feed(h, cps[c])
                    pos = _emit(out, pos, h, num_buckets, num_hashes)
        if chi > 0:
            for w in range(w0, w1):
                start = word_ptr[w]
                m = word_ptr[w + 1] - start + 2  # with '<' and '>'
                for n in range(clo, chi + 1):
                    for i in range(m - n + 1):
                        h = _feed(_FNV_OFFSET, 2)
                        for k in range(i, i + n):
                            if k == 0:
                                c = np.uint32(60)  # '<'
                            elif k == m - 1:
                                c = np.uint32(62)  # '>'
                            else:
                                c = cps[start + k - 1]
                            h = _feed(h, c)
                        pos = _emit(out, pos, h, num_buckets, num_hashes)
    return out


class HashedTokenizer:
    r"""Batched hashed :math:`n`-gram tokenizer (OmniSage §3.2).

    Maps each text to the bucket ids of its word :math:`n`-grams and
    character :math:`n`-grams (see the module docstring for the exact,
    process-independent hash and :func:`ngrams` for the order), in a
    parallel Numba kernel. Calling it returns ``(ids, offsets)`` for
    :class:`torch.nn.EmbeddingBag`: text :math:`t` owns
    ``ids[offsets[t]:offsets[t + 1]]`` (``offsets`` has :math:`T` entries,
    the last bag running to the end); :meth:`bag` gives a dense
    :math:`[T, B]` bag-of-buckets matrix instead.

    Args:
        num_buckets (int): number of hash buckets :math:`B`.
        word_ngrams (int or (int, int), optional): word :math:`n`-gram
            orders; an int :math:`N` means :math:`1, \ldots, N`, ``0`` or
            ``None`` none. (default: :obj:`2`)
        char_ngrams (int or (int, int), optional): inclusive range of
            character :math:`n`-gram orders over ``"<" + word + ">"``;
            ``0`` or ``None`` none. (default: :obj:`(3, 5)`)
        lowercase (bool, optional): lower-case texts first.
            (default: :obj:`True`)
        num_hashes (int, optional): buckets per :math:`n`-gram (the
            multiple hash functions of hash embeddings). (default: :obj:`1`)
    """

    def __init__(
        self,
        num_buckets: int,
        word_ngrams: int | tuple[int, int] | None = 2,
        char_ngrams: int | tuple[int, int] | None = (3, 5),
        lowercase: bool = True,
        num_hashes: int = 1,
    ) -> None:
        self.num_buckets = check_int(num_buckets, "num_buckets", 1)
        if self.num_buckets >= 2**63:
            raise ValueError("num_buckets must be below 2**63")
        self.word_ngrams = _word_range(word_ngrams)
        self.char_ngrams = _ngram_range(char_ngrams, "char_ngrams")
        if self.word_ngrams[1] == 0 and self.char_ngrams[1] == 0:
            raise ValueError("word_ngrams and char_ngrams cannot both be off")
        self.lowercase = bool(lowercase)
        self.num_hashes = check_int(num_hashes, "num_hashes", 1)

    def _flatten(self, texts: Sequence[str]) -> tuple[np.ndarray, ...]:
        if isinstance(texts, str):
            raise TypeError("texts must be a sequence of strings, not one string")
        words_per_text = [_words(t, self.lowercase) for t in texts]
        text_ptr = np.zeros(len(words_per_text) + 1, dtype=np.int64)
        np.cumsum([len(w) for w in words_per_text], out=text_ptr[1:])
        flat = [w for words in words_per_text for w in words]
        word_ptr = np.zeros(len(flat) + 1, dtype=np.int64)
        np.cumsum([len(w) for w in flat], out=word_ptr[1:])
        cps = np.frombuffer(
            "".join(flat).encode("utf-32-le", "surrogatepass"), dtype=np.uint32
        )
        return np.ascontiguousarray(cps), word_ptr, text_ptr

    def ids_and_ptr(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(ids int64 [N], ptr int64 [T + 1])`` as NumPy arrays (CSR form)."""
        cps, word_ptr, text_ptr = self._flatten(texts)
        (wlo, whi), (clo, chi) = self.word_ngrams, self.char_ngrams
        counts = _count_kernel(word_ptr, text_ptr, wlo, whi, clo, chi)
        ptr = np.zeros(counts.size + 1, dtype=np.int64)
        np.cumsum(counts * self.num_hashes, out=ptr[1:])
        ids = _hash_kernel(
            cps,
            word_ptr,
            text_ptr,
            ptr,
            wlo,
            whi,
            clo,
            chi,
            self.num_buckets,
            self.num_hashes,
        )
        return ids, ptr

    def __call__(self, texts: Sequence[str]) -> tuple[Tensor, Tensor]:
        """``(ids [N], offsets [T])`` int64 tensors for ``EmbeddingBag``."""
        ids, ptr = self.ids_and_ptr(texts)
        return torch.from_numpy(ids), torch.from_numpy(ptr[:-1].copy())

    def bag(self, texts: Sequence[str], norm: str | None = "l2") -> Tensor:
        r"""A dense ``float32 [T, B]`` bag of hashed :math:`n`-grams.

        Entry :math:`(t, b)` counts the :math:`n`-grams of text :math:`t`
        falling in bucket :math:`b`; rows are then scaled to unit L2 norm
        (``norm='l2'``), to sum 1 (``'l1'``), or left as counts (``None``).
        Texts without any :math:`n`-gram give zero rows.
        """
        if norm not in ("l1", "l2", None):
            raise ValueError(f"norm must be 'l1', 'l2' or None, got {norm!r}")
        ids, ptr = self.ids_and_ptr(texts)
        num_texts = ptr.size - 1
        rows = np.repeat(np.arange(num_texts, dtype=np.int64), np.diff(ptr))
        counts = np.bincount(
            rows * self.num_buckets + ids, minlength=num_texts * self.num_buckets
        ).astype(np.float32)
        x = torch.from_numpy(counts.reshape(num_texts, self.num_buckets))
        if norm is not None:
            p = 2 if norm == "l2" else 1
            x = x / x.norm(p=p, dim=1, keepdim=True).clamp_min(1e-12)
        return x

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(num_buckets={self.num_buckets}, "
            f"word_ngrams={self.word_ngrams}, char_ngrams={self.char_ngrams}, "
            f"num_hashes={self.num_hashes})"
        )
