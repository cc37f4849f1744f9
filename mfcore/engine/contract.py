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
gradient ``G`` and, for Keras' Adam, the sum of squared occurrences ``G2``, and zeroes
``g``. Dense weights' gradients are added into ``R.gtheta``.

**Touched rows.** Before the forward pass the engine asks the kernel for every row the
batch will read (:func:`touch`); it brings those rows up to date (the lazy Keras-Adam
catch-up) before the kernel reads them, and the optimizer steps exactly those rows.
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import njit

from ..kernels import CORE, FAST
from .tables import start

__all__ = ["Params", "Grads", "Touched", "emit", "touch", "G2_NONE", "G2_OCCURRENCES",
           "G2_SUM"]

#: the model's non-table arrays (see the module docstring)
Params = namedtuple("Params", "spec fspec theta state aux_i aux_f")

#: row-gradient sink: ``G``/``G2`` shaped like the arena, ``gtheta`` like theta;
#: ``pen``/``scale``: 1-element float64 boxes (per-sample L2 penalty sum of the batch, and
#: 2/n); ``g2_mode``: what ``G2`` receives (``G2_*``); ``per_sample``: per-sample L2 on
Grads = namedtuple("Grads", "G G2 gtheta pen scale g2_mode per_sample")

#: the rows a batch touches: ``mark`` (one int64 per global row: the step it was last
#: touched), ``tab``/``rows`` (table and row of each touched row), ``count`` and ``step``
#: (1-element int64 boxes)
Touched = namedtuple("Touched", "mark tab rows count step")

G2_NONE = 0         # plain SGD: no second moment
G2_OCCURRENCES = 1  # Keras' Adam: sum over occurrences of g^2
G2_SUM = 2          # textbook Adam: (sum of occurrences)^2, filled in by the engine


@njit(**CORE, inline="always", fastmath=FAST)
def emit(T, R, t, r, g):
    """Add one occurrence's gradient ``g`` (``T.cols[t]`` values) for row ``r`` of table
    ``t``: per-sample L2 ``2/n * l2 * (w - center)`` joins it first (and its penalty
    ``l2 (w - center)^2`` goes to ``R.pen``); then ``G += g`` and, for Keras' Adam,
    ``G2 += g^2``. Zeroes ``g``."""
    cols = T.cols[t]
    s = start(T, t, r)
    if R.per_sample:
        c0 = np.uint64(T.coff[t])
        for c in range(cols):
            cc = c0 + np.uint64(c)
            l2 = T.l2s[cc]
            if l2 != 0.0:
                w = T.W[s + np.uint64(c)] - T.center[cc]
                R.pen[0] += l2 * w * w
                g[c] += R.scale[0] * l2 * w
    G, G2 = R.G, R.G2
    if R.g2_mode == G2_OCCURRENCES:
        for c in range(cols):
            j = s + np.uint64(c)
            v = g[c]
            G[j] += v
            G2[j] += v * v
            g[c] = 0.0
    else:
        for c in range(cols):
            G[s + np.uint64(c)] += g[c]
            g[c] = 0.0


@njit(**CORE, inline="always")
def touch(T, K, t, r):
    """Record that the current batch reads row ``r`` of table ``t`` (once per step)."""
    gid = T.gid[t] + r
    if K.mark[gid] != K.step[0]:
        K.mark[gid] = K.step[0]
        c = K.count[0]
        K.tab[c] = t
        K.rows[c] = r
        K.count[0] = c + 1
