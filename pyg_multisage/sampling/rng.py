"""The counter-based random generator shared by every random kernel.

A walk's random stream is a pure function of ``(seed, source node, walk
number)``: :func:`stream` hashes the three with SplitMix64 (Steele, Lea and
Flood, OOPSLA 2014) into a 64-bit state, and :func:`next_state` /
:func:`uniform` / :func:`randint` draw from it. No state is shared between
walks, so results do not depend on the thread count, the batch composition or
the order of the seeds. All functions are jitted and callable from Python, so
reference implementations in the tests read the very same streams; they cast
their arguments to ``uint64`` first, so plain Python ints (which Numba would
type as ``int64``) give the same stream as ``np.uint64`` values.
"""

import numba
import numpy as np

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_INV53 = 1.0 / 9007199254740992.0  # 2 ** -53


@numba.njit(cache=True, inline="always")
def mix64(z):
    """SplitMix64's finalizer: a bijective avalanche of a uint64."""
    z = np.uint64(z)
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@numba.njit(cache=True, inline="always")
def stream(seed, node, walk):
    """The initial state of walk ``walk`` from source ``node`` under ``seed``."""
    h = mix64(np.uint64(seed) + _GAMMA)
    h = mix64(h ^ (np.uint64(node) + _GAMMA))
    return mix64(h ^ (np.uint64(walk) * _GAMMA + _GAMMA))


@numba.njit(cache=True, inline="always")
def next_state(state):
    """Advances a state by one step; returns ``(new_state, 64 random bits)``."""
    state = np.uint64(state) + _GAMMA
    return state, mix64(state)


@numba.njit(cache=True, inline="always")
def uniform(bits):
    """A float in ``[0, 1)`` from 64 random bits (their top 53)."""
    return np.float64(np.uint64(bits) >> _S11) * _INV53


@numba.njit(cache=True, inline="always")
def randint(bits, n):
    """An integer in ``[0, n)`` from 64 random bits (``n >= 1``)."""
    i = np.int64(uniform(bits) * n)
    return i if i < n else n - 1
