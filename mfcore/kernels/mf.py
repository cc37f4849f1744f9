"""Matrix factorisation family: ``mf``, ``mfb``, ``mfbs``.

Tables: ``users`` (t=0) rows ``[p_u (k factors), b_u]``, ``items`` (t=1) rows
``[q_i (k), b_i]`` (bias columns only with ``bias``). Prediction::

    z = p_u . q_i (+ b_u + b_i)        y_hat = z,  or  y_hat = scale * sigmoid(z) if sigmoid

Backward for the batch mean of (y_hat - y)^2 over n samples::

    d = 2 (y_hat - y) / n  *  (1, or scale * s (1 - s) with s = sigmoid(z))
    dp_u = d q_i,  dq_i = d p_u,  db_u = db_i = d

Settings: ``spec`` laid out by :data:`SPEC`, ``fspec = [scale]``; workspace: one row
gradient per table (``2 * (k + 1)`` floats).
"""

import numpy as np
from numba import njit

from ..engine.contract import emit, touch as touch_row
from ..engine.samples import ITEM, RATING, USER
from ..layout import fields
from . import FAST
from .output import output

USERS, ITEMS = 0, 1
SPEC = fields("MFSpec", "k bias sigmoid")


@njit(cache=True, inline="always", fastmath=FAST)
def _z(W, ub, ib, k, bias):
    z = W[ub] * W[ib]
    for f in range(1, k):
        z += W[ub + f] * W[ib + f]
    if bias:
        z += W[ub + k] + W[ib + k]
    return z


@njit(cache=True)
def touch(T, P, S, start, n, K):
    for j in range(start, start + n):
        touch_row(T, K, USERS, S.X[j, USER])
        touch_row(T, K, ITEMS, S.X[j, ITEM])


@njit(cache=True, fastmath=FAST)
def forward_backward(T, P, S, start, n, R, ws, seed, step, training):
    k, bias, sig = P.spec[SPEC.k], P.spec[SPEC.bias] != 0, P.spec[SPEC.sigmoid] != 0
    scale = P.fspec[0]
    W = T.W
    cu, ci = T.cols[USERS], T.cols[ITEMS]
    gu = ws[0:cu]
    gi = ws[cu:cu + ci]
    sse = 0.0
    two_over_n = 2.0 / n
    for b in range(n):
        j = start + b
        u = S.X[j, USER]
        i = S.X[j, ITEM]
        ub = T.off[USERS] + u * cu
        ib = T.off[ITEMS] + i * ci
        z = _z(W, ub, ib, k, bias)
        p, dz_dp = output(z, sig, scale)
        err = p - S.Xf[j, RATING]
        sse += err * err
        d = two_over_n * err * dz_dp
        for f in range(k):
            gu[f] = d * W[ib + f]
        if bias:
            gu[k] = d
        emit(T, R, USERS, u, gu)
        for f in range(k):
            gi[f] = d * W[ub + f]
        if bias:
            gi[k] = d
        emit(T, R, ITEMS, i, gi)
    return sse


@njit(cache=True, fastmath=FAST)
def predict(T, P, S, start, n, out, ws):
    k, bias, sig = P.spec[SPEC.k], P.spec[SPEC.bias] != 0, P.spec[SPEC.sigmoid] != 0
    scale = P.fspec[0]
    cu, ci = T.cols[USERS], T.cols[ITEMS]
    for b in range(n):
        j = start + b
        z = _z(T.W, T.off[USERS] + S.X[j, USER] * cu, T.off[ITEMS] + S.X[j, ITEM] * ci, k,
               bias)
        out[b] = output(z, sig, scale)[0]


@njit(cache=True, fastmath=FAST)
def sgd_epoch(T, P, S, lr):
    """Classic per-sample SGD (batch 1) over the records of ``S`` in their order, fused.

    Per rating: the gradient of ``(y_hat - y)^2 + l2 (|U[u]|^2 + |I[i]|^2)`` (per-sample L2
    on the two rows the rating touches, per-column coefficients of the tables) from the
    current weights, then ``w -= lr * g``. Returns the sum of per-sample losses (with
    penalty).
    """
    k, bias, sig = P.spec[SPEC.k], P.spec[SPEC.bias] != 0, P.spec[SPEC.sigmoid] != 0
    scale = P.fspec[0]
    W = T.W
    cols = k + 1 if bias else k
    cu, ci = T.cols[USERS], T.cols[ITEMS]
    l2u = T.l2s[T.coff[USERS]:T.coff[USERS] + cu]
    l2i = T.l2s[T.coff[ITEMS]:T.coff[ITEMS] + ci]
    reg = False
    for c in range(cols):
        reg = reg or l2u[c] != 0 or l2i[c] != 0
    # per-column decay factors: w - lr * (d * x + 2 l2 w) = (1 - 2 lr l2) w - lr d x
    keep_u = np.empty(cols, W.dtype)
    keep_i = np.empty(cols, W.dtype)
    for c in range(cols):
        keep_u[c] = 1.0 - 2.0 * lr * l2u[c]
        keep_i[c] = 1.0 - 2.0 * lr * l2i[c]
    sbuf = np.empty(1, W.dtype)
    total = 0.0
    pen = 0.0
    for j in range(S.X.shape[0]):
        ub = T.off[USERS] + S.X[j, USER] * cu
        ib = T.off[ITEMS] + S.X[j, ITEM] * ci
        z = _z(W, ub, ib, k, bias)
        p, dz_dp = output(z, sig, scale)
        err = p - S.Xf[j, RATING]
        total += err * err
        sbuf[0] = lr * 2.0 * err * dz_dp
        step = sbuf[0]  # in the tables' dtype: float32 arithmetic in the update loop
        if reg:
            for f in range(cols):
                pu = W[ub + f]
                qi = W[ib + f]
                pen += l2u[f] * pu * pu + l2i[f] * qi * qi
        if reg:
            for f in range(k):
                pu = W[ub + f]
                qi = W[ib + f]
                W[ub + f] = keep_u[f] * pu - step * qi
                W[ib + f] = keep_i[f] * qi - step * pu
        else:
            for f in range(k):
                pu = W[ub + f]
                qi = W[ib + f]
                W[ub + f] = pu - step * qi
                W[ib + f] = qi - step * pu
        if bias:
            W[ub + k] = keep_u[k] * W[ub + k] - step
            W[ib + k] = keep_i[k] * W[ib + k] - step
    return total + pen
