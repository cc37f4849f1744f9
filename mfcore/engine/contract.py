"""The kernel contract: what a model's compiled kernel receives and how it returns row
gradients.

Every kernel family (one module under :mod:`mfcore.kernels`) provides::

    touch(T, P, S, start, n, K)                     every row the samples read -> touch()
    forward_backward(T, P, S, start, n, R, ws, seed, step, training) -> sum of sq. errors
    predict(T, P, S, start, n, out, ws)             out[b] for samples start .. start+n-1

with

``T`` (:class:`~mfcore.engine.tables.Tables`)
    the parameter tables (one flat arena, addressed per table ``t``);
``P`` (:class:`Params`)
    the rest of the model: ``spec`` (int64 settings, a named layout per kernel), ``fspec``
    (float64 settings), ``theta`` (flat dense weights), ``state`` (non-trainable state,
    e.g. batch-norm moving averages), ``aux_i`` / ``aux_f`` (side data built once from the
    training data, e.g. each user's rated items as CSR);
``S`` (:class:`~mfcore.engine.samples.Samples`)
    the packed per-rating records: user, item, rating and the model's context columns;
``R`` (:class:`Grads`), ``K`` (:class:`Touched`), ``ws`` (float scratch sized by the model).

**Row gradients.** For one sample a kernel may produce gradients for any rows of any table:
it writes the gradient of the batch's MEAN squared error with respect to one row into a
small vector ``g`` (the row's columns) and calls :func:`emit` ``(T, R, t, r, g)``, once
per occurrence (a row read twice by one sample is emitted twice or summed first, as the
model's maths says). :func:`emit` adds the per-sample L2 term, accumulates the row's summed
gradient and, for Keras' Adam, the sum of squared occurrences, and zeroes ``g``. Dense
weights' gradients are added into ``R.gtheta``.

**Touched rows.** Before the forward pass the engine asks the kernel for every row the
batch will read (:func:`touch`); it brings those rows up to date (the lazy Keras-Adam
catch-up) before the kernel reads them, and the optimizer steps exactly those rows. The
``j``-th row touched in a step owns *slot* ``j`` of the gradient buffers (``R.G[j]``,
``R.G2[j]``): a batch's gradients sit in a few contiguous rows, not scattered over the
tables, and the optimizer reads them in order.
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import njit

from ..kernels import CORE, FAST
from .tables import start

__all__ = ["Params", "Grads", "Touched", "emit", "emit_scaled", "touch", "buffers", "arena_gradient",
           "G2_NONE", "G2_OCCURRENCES", "G2_SUM"]

#: the model's non-table arrays (see the module docstring)
Params = namedtuple("Params", "spec fspec theta state aux_i aux_f")

#: row-gradient sink: ``G``/``G2`` (slots x widest row; see "touched rows"), ``slot`` (one
#: int64 per global row: its slot in the current step; the same array as ``Touched.slot``),
#: ``gtheta`` shaped like theta; ``pen``/``scale``: 1-element float64 boxes (per-sample L2
#: penalty sum of the batch, and 2/n); ``g2_mode``: what ``G2`` receives (``G2_*``);
#: ``per_sample``: per-sample L2 on
Grads = namedtuple("Grads", "G G2 slot gtheta pen scale g2_mode per_sample")

#: the rows a batch touches: ``mark`` (one int64 per global row: the step it was last
#: touched), ``slot`` (its slot then), ``tab``/``rows`` (table and row of each slot),
#: ``count`` and ``step`` (1-element int64 boxes)
Touched = namedtuple("Touched", "mark slot tab rows count step")

def buffers(tables, theta, g2_mode, per_sample):
    """Fresh ``(Grads, Touched)`` for a model's tables (one slot per table row at most,
    plus an always-zero slot at the end)."""
    n_rows = tables.n_rows
    width = max([s.cols for s in tables.specs] + [1])
    dtype = tables.arena.W.dtype
    slot = np.zeros(n_rows, np.int64)
    R = Grads(np.zeros((n_rows + 1, width), dtype), np.zeros((n_rows + 1, width), dtype),
              slot, np.zeros_like(theta), np.zeros(1), np.zeros(1), g2_mode, per_sample)
    K = Touched(np.full(n_rows, -1, np.int64), slot, np.zeros(n_rows, np.int64),
                np.zeros(n_rows, np.int64), np.zeros(1, np.int64), np.zeros(1, np.int64))
    return R, K


def arena_gradient(T, R, K):
    """The summed row gradients of the step as an array shaped like the arena (tests)."""
    out = np.zeros_like(T.W)
    for j in range(int(K.count[0])):
        t, r = int(K.tab[j]), int(K.rows[j])
        base = int(T.off[t] + r * T.cols[t])
        out[base:base + int(T.cols[t])] = R.G[j, :int(T.cols[t])]
    return out


G2_NONE = 0         # plain SGD: no second moment
G2_OCCURRENCES = 1  # Keras' Adam: sum over occurrences of g^2
G2_SUM = 2          # textbook Adam: (sum of occurrences)^2, filled in by the engine


@njit(**CORE, inline="always", fastmath=FAST)
def _with_l2(T, R, s, c0, c, v):
    """``v`` (column ``c`` of an occurrence's gradient for the row starting at ``s`` of a
    table whose columns start at ``c0``) plus its per-sample L2 term ``2/n * l2 * (w -
    center)``; the penalty ``l2 (w - center)^2`` goes to ``R.pen``."""
    cc = c0 + np.uint64(c)
    l2 = T.l2s[cc]
    if l2 != 0.0:
        w = T.W[s + np.uint64(c)] - T.center[cc]
        R.pen[0] += l2 * w * w
        v += R.scale[0] * l2 * w
    return v


@njit(**CORE, inline="always", fastmath=FAST)
def emit(T, R, t, r, g):
    """Add one occurrence's gradient ``g`` (``T.cols[t]`` values) for row ``r`` of table
    ``t``: per-sample L2 ``2/n * l2 * (w - center)`` joins it first (and its penalty
    ``l2 (w - center)^2`` goes to ``R.pen``); then ``G += g`` and, for Keras' Adam,
    ``G2 += g^2``. Zeroes ``g``."""
    cols = T.cols[t]
    if R.per_sample:
        s = start(T, t, r)
        c0 = np.uint64(T.coff[t])
        for c in range(cols):
            g[c] = _with_l2(T, R, s, c0, c, g[c])
    j = np.uint64(R.slot[T.gid[t] + r])
    G, G2 = R.G[j], R.G2[j]
    if R.g2_mode == G2_OCCURRENCES:
        for c in range(cols):
            v = g[c]
            G[c] += v
            G2[c] += v * v
            g[c] = 0.0
    else:
        for c in range(cols):
            G[c] += g[c]
            g[c] = 0.0


@njit(**CORE, inline="always", fastmath=FAST)
def emit_scaled(T, R, t, r, d, x, k):
    """:func:`emit` of the gradient ``g[c] = d * x[c]`` for the first ``k`` columns and
    ``g[c] = d`` for the rest (a factor row times the output's gradient, then bias columns),
    without writing ``g`` out first: the same numbers as :func:`emit`, one pass fewer over
    the row (what batched MF spends its time on)."""
    cols = T.cols[t]
    j = np.uint64(R.slot[T.gid[t] + r])
    G, G2 = R.G[j], R.G2[j]
    occ = R.g2_mode == G2_OCCURRENCES
    if R.per_sample:
        s = start(T, t, r)
        c0 = np.uint64(T.coff[t])
        for c in range(cols):
            v = _with_l2(T, R, s, c0, c, d * x[c] if c < k else d)
            G[c] += v
            if occ:
                G2[c] += v * v
        return
    if occ:
        for c in range(k):
            v = d * x[c]
            G[c] += v
            G2[c] += v * v
        for c in range(k, cols):
            G[c] += d
            G2[c] += d * d
    else:
        for c in range(k):
            G[c] += d * x[c]
        for c in range(k, cols):
            G[c] += d


@njit(**CORE, inline="always")
def touch(T, K, t, r):
    """Record that the current batch reads row ``r`` of table ``t`` (once per step)."""
    gid = T.gid[t] + r
    if K.mark[gid] != K.step[0]:
        K.mark[gid] = K.step[0]
        c = K.count[0]
        K.slot[gid] = c
        K.tab[c] = t
        K.rows[c] = r
        K.count[0] = c + 1
