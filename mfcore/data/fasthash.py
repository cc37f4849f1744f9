"""XXH64, the content key of the parse cache: a fast non-cryptographic 64-bit hash of a
file's bytes, compiled with Numba.

The parse cache must notice any change to a source file, also one that keeps its size
and modification time (:mod:`mfcore.data.cache`), so a cached load hashes the whole
file. SHA-256 costs about 15 ms for an ml-1m sized file (24 MB) even with the CPU's SHA
instructions, more than reading the cache; XXH64 (Yann Collet's algorithm, here from its
published specification) runs at memory speed, about 1.3 ms for the same file read
through a memory map. A key needs no resistance to a forger: whoever can write the
source file can change the ratings anyway, and a 64-bit hash that changes with every
accidental edit except with probability 2^-64 is what a cache needs. Words are read in
the machine's byte order (little-endian on x86 and ARM, where the values equal
reference XXH64's; a big-endian machine gets its own, self-consistent keys).
"""
from __future__ import annotations

import mmap

import numpy as np
from numba import njit

__all__ = ["xxh64", "file_xxh64"]

_P1 = np.uint64(0x9E3779B185EBCA87)
_P2 = np.uint64(0xC2B2AE3D27D4EB4F)
_P3 = np.uint64(0x165667B19E3779F9)
_P4 = np.uint64(0x85EBCA77C2B2AE63)
_P5 = np.uint64(0x27D4EB2F165667C5)


@njit(inline="always")
def _rotl(x, r):
    return (x << np.uint64(r)) | (x >> np.uint64(64 - r))


@njit(inline="always")
def _round(acc, word):
    return _rotl(acc + word * _P2, 31) * _P1


@njit(inline="always")
def _merge(h, acc):
    return (h ^ _round(np.uint64(0), acc)) * _P1 + _P4


@njit(cache=True, nogil=True)
def xxh64(buf, seed):
    """XXH64 of the bytes ``buf`` (a 1-D uint8 array whose data starts 8-byte aligned)
    with ``seed`` (uint64). Releases the GIL."""
    n = buf.size
    words = buf[:n // 8 * 8].view(np.uint64)
    i = 0
    if n >= 32:
        v1 = seed + _P1 + _P2
        v2 = seed + _P2
        v3 = seed
        v4 = seed - _P1
        for s in range(n // 32):
            v1 = _round(v1, words[4 * s])
            v2 = _round(v2, words[4 * s + 1])
            v3 = _round(v3, words[4 * s + 2])
            v4 = _round(v4, words[4 * s + 3])
        h = _rotl(v1, 1) + _rotl(v2, 7) + _rotl(v3, 12) + _rotl(v4, 18)
        h = _merge(_merge(_merge(_merge(h, v1), v2), v3), v4)
        i = n // 32 * 32
    else:
        h = seed + _P5
    h += np.uint64(n)
    while i + 8 <= n:
        h = _rotl(h ^ _round(np.uint64(0), words[i // 8]), 27) * _P1 + _P4
        i += 8
    if i + 4 <= n:
        w = (np.uint64(buf[i]) | np.uint64(buf[i + 1]) << np.uint64(8)
             | np.uint64(buf[i + 2]) << np.uint64(16) | np.uint64(buf[i + 3]) << np.uint64(24))
        h = _rotl(h ^ (w * _P1), 23) * _P2 + _P3
        i += 4
    while i < n:
        h = _rotl(h ^ (np.uint64(buf[i]) * _P5), 11) * _P1
        i += 1
    h ^= h >> np.uint64(33)
    h *= _P2
    h ^= h >> np.uint64(29)
    h *= _P3
    h ^= h >> np.uint64(32)
    return h


def file_xxh64(fh) -> str:
    """XXH64 (16 hex digits) of the whole file open as ``fh`` (binary), through a
    read-only memory map. OSError when it cannot be read."""
    size = fh.seek(0, 2)
    if size == 0:
        return f"{int(xxh64(np.zeros(0, np.uint8), np.uint64(0))):016x}"
    with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        view = np.frombuffer(mm, np.uint8)
        try:
            return f"{int(xxh64(view, np.uint64(0))):016x}"
        finally:
            del view  # the map cannot close while an array still exports it
