"""Per-rating records, packed: what the epoch loop and the kernels read.

Every rating becomes one row of 32-bit words in ONE array, so a shuffle moves one small
record instead of a word in each of several arrays, and a kernel reads a rating's
fields from one cache line::

    X[j, USER]    user index (int32)        X[j, ITEM]    item index (int32)
    Xf[j, RATING] rating (float32)          X[j, 3:] / Xf[j, 3:]  the model's context

``Xf`` is the same memory as ``X`` seen as float32, so integer context (a day or a time
bin) and float context (a deviation in days) share the record. A model's kernel module
names its context columns (e.g. ``BIN = 3``); :func:`pack` lays out a record.
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import njit

from ..kernels import CORE
from ..kernels.rng import epoch_state, xorshift

__all__ = ["Samples", "USER", "ITEM", "RATING", "FIRST_CONTEXT", "pack", "empty_like",
           "shuffle_into", "shuffle_range", "copy_into"]

USER, ITEM, RATING = 0, 1, 2
FIRST_CONTEXT = 3

#: ``X`` (n, width) int32 records and ``Xf``, the same records as float32
Samples = namedtuple("Samples", "X Xf")


def pack(users, items, ratings=None, context=()) -> Samples:
    """Records for ``n`` ratings: ``users``/``items`` (dense indices), ``ratings`` (None:
    zeros, for prediction) and ``context``, a sequence of length-n arrays stored from
    column 3 on (integer arrays as int32, float arrays as float32)."""
    n = len(users)
    X = np.empty((n, FIRST_CONTEXT + len(context)), np.int32)
    Xf = X.view(np.float32)
    X[:, USER] = users
    X[:, ITEM] = items
    Xf[:, RATING] = 0.0 if ratings is None else ratings
    for c, col in enumerate(context, FIRST_CONTEXT):
        col = np.asarray(col)
        if col.dtype.kind == "f":
            Xf[:, c] = col
        else:
            X[:, c] = col
    return Samples(X, Xf)


def empty_like(s: Samples) -> Samples:
    X = np.empty_like(s.X)
    return Samples(X, X.view(np.float32))


@njit(**CORE)
def shuffle_into(X, seed, epoch, out):
    """Write the records of ``X`` into ``out`` in a uniformly random order fixed by
    (seed, epoch): a copy, then Fisher-Yates, so that the epoch then reads its records
    sequentially. The index in ``[0, i]`` comes from Lemire's multiply-shift of the
    generator's high 32 bits (bias below i / 2^32)."""
    n, w = X.shape
    s = epoch_state(seed, epoch)
    if w == 3:  # the common record (user, item, rating), moved without a loop
        for j in range(n):
            out[j, 0], out[j, 1], out[j, 2] = X[j, 0], X[j, 1], X[j, 2]
        for i in range(n - 1, 0, -1):
            s = xorshift(s)
            r = np.int64(((s >> np.uint64(32)) * np.uint64(i + 1)) >> np.uint64(32))
            t0, t1, t2 = out[i, 0], out[i, 1], out[i, 2]
            out[i, 0], out[i, 1], out[i, 2] = out[r, 0], out[r, 1], out[r, 2]
            out[r, 0], out[r, 1], out[r, 2] = t0, t1, t2
        return
    for j in range(n):
        for c in range(w):
            out[j, c] = X[j, c]
    for i in range(n - 1, 0, -1):
        s = xorshift(s)
        r = np.int64(((s >> np.uint64(32)) * np.uint64(i + 1)) >> np.uint64(32))
        for c in range(w):
            tmp = out[i, c]
            out[i, c] = out[r, c]
            out[r, c] = tmp


@njit(**CORE)
def shuffle_range(X, start, end, state):
    """Put records ``start .. end-1`` of ``X`` in a uniformly random order, in place
    (Fisher-Yates from the xorshift64 state ``state``): the grid of blocks and the user
    runs arrange each block or run so once, which the epochs then visit in strided
    orders."""
    w = X.shape[1]
    m = end - start
    for a in range(m - 1):
        j = start + a
        state = xorshift(state)
        r = j + np.int64(((state >> np.uint64(32)) * np.uint64(m - a)) >> np.uint64(32))
        if w == 3:  # the common record (user, item, rating), swapped without a loop
            t0, t1, t2 = X[j, 0], X[j, 1], X[j, 2]
            X[j, 0], X[j, 1], X[j, 2] = X[r, 0], X[r, 1], X[r, 2]
            X[r, 0], X[r, 1], X[r, 2] = t0, t1, t2
        else:
            for c in range(w):
                t = X[j, c]
                X[j, c] = X[r, c]
                X[r, c] = t


@njit(**CORE)
def copy_into(X, out):
    """The records in data order."""
    n, w = X.shape
    for j in range(n):
        for c in range(w):
            out[j, c] = X[j, c]
